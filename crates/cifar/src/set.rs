//! Images and labels in memory, or memory-mapped from a folder data set's cache.

use std::ops::Deref;
use std::sync::Arc;

use crate::source::Source;

/// Side of a CIFAR image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels of a CIFAR image.
pub const CHANNELS: usize = 3;
/// Pixels of one channel.
pub const CHANNEL_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Bytes of one image: 1024 red, then 1024 green, then 1024 blue, each plane row-major.
pub const IMAGE_BYTES: usize = CHANNELS * CHANNEL_PIXELS;

/// The pixel bytes of a set: owned, or a range of a memory-mapped cache file, so a folder data
/// set larger than memory is paged in as epochs read it.
#[derive(Clone)]
pub struct Pixels(Store);

#[derive(Clone)]
enum Store {
    Owned(Vec<u8>),
    Mapped {
        map: Arc<memmap2::Mmap>,
        start: usize,
        len: usize,
    },
}

impl Pixels {
    /// `len` bytes of `map` from `start`; `None` when the range is not inside the map.
    pub(crate) fn mapped(map: Arc<memmap2::Mmap>, start: usize, len: usize) -> Option<Self> {
        (start.checked_add(len)? <= map.len()).then_some(Self(Store::Mapped { map, start, len }))
    }
}

impl Deref for Pixels {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match &self.0 {
            Store::Owned(bytes) => bytes,
            Store::Mapped { map, start, len } => &map[*start..*start + *len],
        }
    }
}

impl From<Vec<u8>> for Pixels {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Store::Owned(bytes))
    }
}

impl std::fmt::Debug for Pixels {
    /// The size, not the megabytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pixels({} bytes)", self.len())
    }
}

impl PartialEq for Pixels {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Pixels {}

/// A set of square RGB images with their labels: CIFAR's 32x32 as in the files, or a folder
/// data set's images at its `image_size`.
#[derive(Clone, PartialEq, Eq)]
pub struct CifarSet {
    /// `len() * image_bytes()` bytes: image `i` is `images[i * image_bytes()..][..image_bytes()]`,
    /// channel-major (CHW) as in the CIFAR files.
    pub images: Pixels,
    /// One label per image, in `0..classes.len()`.
    pub labels: Vec<u8>,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Side of every image in pixels ([`IMAGE_SIDE`] for CIFAR).
    pub side: usize,
}

impl std::fmt::Debug for CifarSet {
    /// Sizes and classes, not the megabytes of pixels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CifarSet")
            .field("len", &self.len())
            .field("side", &self.side)
            .field("image_bytes", &self.images.len())
            .field("classes", &self.classes)
            .finish()
    }
}

impl CifarSet {
    /// A set of 32x32 CIFAR images.
    pub fn cifar(images: Vec<u8>, labels: Vec<u8>, classes: Vec<String>) -> Self {
        Self {
            images: images.into(),
            labels,
            classes,
            side: IMAGE_SIDE,
        }
    }

    /// Bytes of one image: `3 * side * side`.
    pub fn image_bytes(&self) -> usize {
        CHANNELS * self.side * self.side
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.classes.len()
    }

    /// The bytes of image `index` (CHW), or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let bytes = self.image_bytes();
        let start = index.checked_mul(bytes)?;
        self.images.get(start..start.checked_add(bytes)?)
    }

    /// How many images each class has, indexed by label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for &label in &self.labels {
            if let Some(count) = counts.get_mut(usize::from(label)) {
                *count += 1;
            }
        }
        counts
    }

    /// The images at `indices`, in that order; indices past the end are skipped.
    pub fn subset(&self, indices: &[usize]) -> CifarSet {
        let mut images = Vec::with_capacity(indices.len() * self.image_bytes());
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            if let (Some(image), Some(&label)) = (self.image(index), self.labels.get(index)) {
                images.extend_from_slice(image);
                labels.push(label);
            }
        }
        CifarSet {
            images: images.into(),
            labels,
            classes: self.classes.clone(),
            side: self.side,
        }
    }
}

/// The training and test sets of a data set, and where they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarData {
    /// All training images (split off a validation set with [`crate::split_train_val`]).
    pub train: CifarSet,
    /// The test images.
    pub test: CifarSet,
    /// The folder or archive the batches were read from.
    pub source: Source,
}
