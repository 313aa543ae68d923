//! Images and labels in memory.

use crate::source::Source;

/// Side of a CIFAR image in pixels.
pub const IMAGE_SIDE: usize = 32;
/// Colour channels of a CIFAR image.
pub const CHANNELS: usize = 3;
/// Pixels of one channel.
pub const CHANNEL_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
/// Bytes of one image: 1024 red, then 1024 green, then 1024 blue, each plane row-major.
pub const IMAGE_BYTES: usize = CHANNELS * CHANNEL_PIXELS;

/// A set of CIFAR images with their labels, stored as in the files.
#[derive(Clone, PartialEq, Eq)]
pub struct CifarSet {
    /// `len() * IMAGE_BYTES` bytes: image `i` is `images[i * IMAGE_BYTES..(i + 1) * IMAGE_BYTES]`,
    /// channel-major (CHW) as in the files.
    pub images: Vec<u8>,
    /// One label per image, in `0..classes.len()`.
    pub labels: Vec<u8>,
    /// Class names in label order.
    pub classes: Vec<String>,
}

impl std::fmt::Debug for CifarSet {
    /// Sizes and classes, not the megabytes of pixels.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CifarSet")
            .field("len", &self.len())
            .field("image_bytes", &self.images.len())
            .field("classes", &self.classes)
            .finish()
    }
}

impl CifarSet {
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
        let start = index.checked_mul(IMAGE_BYTES)?;
        self.images.get(start..start.checked_add(IMAGE_BYTES)?)
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
        let mut images = Vec::with_capacity(indices.len() * IMAGE_BYTES);
        let mut labels = Vec::with_capacity(indices.len());
        for &index in indices {
            if let (Some(image), Some(&label)) = (self.image(index), self.labels.get(index)) {
                images.extend_from_slice(image);
                labels.push(label);
            }
        }
        CifarSet {
            images,
            labels,
            classes: self.classes.clone(),
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
