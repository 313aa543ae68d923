//! burn's `Dataset` over a [`CifarSet`] and the `Batcher` that augments, normalises and stacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::augment::{Augmentation, Normalization, normalize_into, resample_normalized_into};
use crate::error::CifarError;
use crate::set::{CHANNELS, CifarSet, IMAGE_BYTES, IMAGE_SIDE};

/// One image with its label and its index in the set (which seeds its augmentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarItem {
    /// 3x32x32 pixels, channel-major as in the files.
    pub image: [u8; IMAGE_BYTES],
    /// The class.
    pub label: usize,
    /// Position in the set.
    pub index: usize,
}

/// A [`CifarSet`] as a burn [`Dataset`]; cloning shares the images.
#[derive(Debug, Clone)]
pub struct CifarDataset {
    set: Arc<CifarSet>,
}

impl CifarDataset {
    /// Wraps a set.
    pub fn new(set: CifarSet) -> Self {
        Self { set: Arc::new(set) }
    }

    /// Wraps a shared set.
    pub fn from_shared(set: Arc<CifarSet>) -> Self {
        Self { set }
    }

    /// The set.
    pub fn set(&self) -> &CifarSet {
        &self.set
    }
}

impl Dataset<CifarItem> for CifarDataset {
    /// The item at `index`; an index past the end is an error rather than a panic.
    fn get(&self, index: usize) -> Result<CifarItem, DatasetError> {
        let out_of_range = || {
            DatasetError::new(CifarError::IndexOutOfRange {
                index,
                len: self.set.len(),
            })
        };
        let pixels = self.set.image(index).ok_or_else(out_of_range)?;
        let label = *self.set.labels.get(index).ok_or_else(out_of_range)?;
        let mut image = [0u8; IMAGE_BYTES];
        image.copy_from_slice(pixels);
        Ok(CifarItem {
            image,
            label: usize::from(label),
            index,
        })
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

/// A batch: images `[B, 3, 32, 32]` (normalised f32) and class targets `[B]`.
#[derive(Debug, Clone)]
pub struct CifarBatch {
    /// The images.
    pub images: Tensor<4>,
    /// The class of each image (what the accuracy counts).
    pub targets: Tensor<1, Int>,
    /// What the training loss aims at when it is not the one-hot class: a distribution over the
    /// classes per image `[B, classes]`, from label smoothing or mixup/cutmix.
    pub soft_targets: Option<Tensor<2>>,
}

/// Turns items into a [`CifarBatch`], augmenting them when training.
///
/// The augmentation of an item depends only on (seed, epoch, item index), so batches do not
/// depend on which worker built them or on what came before.
#[derive(Debug, Clone)]
pub struct CifarBatcher {
    augmentation: Option<Augmentation>,
    normalization: Normalization,
    seed: u64,
    epoch: Arc<AtomicUsize>,
}

impl CifarBatcher {
    /// A batcher with the given augmentation (`None`: none) and normalisation.
    pub fn new(
        augmentation: Option<Augmentation>,
        normalization: Normalization,
        seed: u64,
    ) -> Self {
        Self {
            augmentation,
            normalization,
            seed,
            epoch: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// The SPEC's training batcher: flip + random resized crop, CIFAR-10 normalisation.
    pub fn train(seed: u64) -> Self {
        Self::new(Some(Augmentation::default()), Normalization::CIFAR10, seed)
    }

    /// The SPEC's evaluation batcher: no augmentation, CIFAR-10 normalisation.
    pub fn eval() -> Self {
        Self::new(None, Normalization::CIFAR10, 0)
    }

    /// Replaces the normalisation (e.g. with [`Normalization::from_set`] for CIFAR-100).
    pub fn with_normalization(mut self, normalization: Normalization) -> Self {
        self.normalization = normalization;
        self
    }

    /// The augmentation, if any.
    pub fn augmentation(&self) -> Option<&Augmentation> {
        self.augmentation.as_ref()
    }

    /// The normalisation.
    pub fn normalization(&self) -> &Normalization {
        &self.normalization
    }

    /// The augmentation seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The epoch [`Batcher::batch`] augments for (shared by clones); [`crate::EpochLoader`]
    /// passes its own epoch instead.
    pub fn epoch(&self) -> usize {
        self.epoch.load(Ordering::Relaxed)
    }

    /// Sets the epoch [`Batcher::batch`] augments for, for use with burn's own loaders.
    pub fn set_epoch(&self, epoch: usize) {
        self.epoch.store(epoch, Ordering::Relaxed);
    }

    /// Writes the items' images, augmented for `epoch` and normalised, into `out`
    /// (`items.len() * 3072` floats, `[B, 3, 32, 32]` order).
    pub fn fill_images(&self, items: &[CifarItem], epoch: usize, out: &mut [f32]) {
        for (item, image_out) in items.iter().zip(out.chunks_exact_mut(IMAGE_BYTES)) {
            match &self.augmentation {
                Some(augmentation) => {
                    let params = augmentation.params_for(self.seed, epoch, item.index);
                    resample_normalized_into(
                        &item.image,
                        &params,
                        IMAGE_SIDE,
                        &self.normalization,
                        image_out,
                    );
                }
                None => normalize_into(&item.image, &self.normalization, image_out),
            }
        }
    }

    /// The batch of `items` for `epoch` on `device`.
    pub fn batch_for_epoch(
        &self,
        items: &[CifarItem],
        epoch: usize,
        device: &Device,
    ) -> CifarBatch {
        let count = items.len();
        let mut pixels = vec![0.0f32; count * IMAGE_BYTES];
        self.fill_images(items, epoch, &mut pixels);
        let targets: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let images = Tensor::from_data(
            TensorData::new(pixels, [count, CHANNELS, IMAGE_SIDE, IMAGE_SIDE]),
            device,
        );
        let targets = Tensor::from_data(TensorData::new(targets, [count]), device);
        CifarBatch {
            images,
            targets,
            soft_targets: None,
        }
    }
}

impl Batcher<CifarItem, CifarBatch> for CifarBatcher {
    fn batch(&self, items: Vec<CifarItem>, device: &Device) -> CifarBatch {
        self.batch_for_epoch(&items, self.epoch(), device)
    }
}
