//! burn's `Dataset` over a [`CifarSet`] and the `Batcher` that augments, normalises and stacks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::augment::side_of;
use crate::augment::{Augmentation, Normalization, normalize_into, resample_normalized_into};
use crate::error::{CifarError, Result};
use crate::mixing::Mixup;
use crate::pipeline::TrainTransform;
use crate::seed::{Purpose, rng_for};
use crate::set::{CHANNELS, CifarSet};

/// One image with its label and its index in the set (which seeds its augmentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CifarItem {
    /// 3 x side x side pixels (3x32x32 for CIFAR), channel-major as in the CIFAR files.
    pub image: Vec<u8>,
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
        Ok(CifarItem {
            image: pixels.to_vec(),
            label: usize::from(label),
            index,
        })
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

/// A batch: images `[B, 3, side, side]` (normalised f32; side 32 for CIFAR) and class targets
/// `[B]`.
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
    augment: ImageAugment,
    normalization: Normalization,
    /// Mixup/CutMix and label smoothing: when set, batches carry soft targets.
    soft_targets: Option<Mixup>,
    seed: u64,
    epoch: Arc<AtomicUsize>,
}

/// What a batcher does to each image before it stacks them.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageAugment {
    /// Nothing but normalisation (evaluation).
    None,
    /// The SPEC's flip + random-resized crop, resampled straight into the normalised output.
    Spec(Augmentation),
    /// A configured recipe's transform.
    Recipe(TrainTransform),
}

impl CifarBatcher {
    /// A batcher with the given augmentation (`None`: none) and normalisation.
    pub fn new(
        augmentation: Option<Augmentation>,
        normalization: Normalization,
        seed: u64,
    ) -> Self {
        Self {
            augment: augmentation.map_or(ImageAugment::None, ImageAugment::Spec),
            normalization,
            soft_targets: None,
            seed,
            epoch: Arc::new(AtomicUsize::new(1)),
        }
    }

    /// A training batcher for a configured recipe's `transform` of each image.
    pub fn recipe(
        transform: TrainTransform,
        normalization: Normalization,
        seed: u64,
    ) -> Result<Self> {
        transform.validate()?;
        Ok(Self {
            augment: ImageAugment::Recipe(transform),
            ..Self::new(None, normalization, seed)
        })
    }

    /// Mixes each batch with `mixing` (Mixup/CutMix and label smoothing), whose soft targets
    /// the batches then carry.
    pub fn with_soft_targets(mut self, mixing: Mixup) -> Self {
        self.soft_targets = Some(mixing);
        self
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

    /// What each image goes through.
    pub fn augment(&self) -> &ImageAugment {
        &self.augment
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
    /// (as many floats as the images have bytes, `[B, 3, side, side]` order). The images are
    /// of one size, as a set's are.
    pub fn fill_images(&self, items: &[CifarItem], epoch: usize, out: &mut [f32]) {
        let image_len = items.first().map_or(1, |item| item.image.len()).max(1);
        for (item, image_out) in items.iter().zip(out.chunks_exact_mut(image_len)) {
            match &self.augment {
                ImageAugment::Spec(augmentation) => {
                    let side = side_of(&item.image);
                    let params = augmentation.params_for(self.seed, epoch, item.index, side);
                    resample_normalized_into(
                        &item.image,
                        &params,
                        side,
                        &self.normalization,
                        image_out,
                    );
                }
                ImageAugment::Recipe(transform) => {
                    let mut rng = rng_for(
                        self.seed,
                        Purpose::Augment,
                        &[epoch as u64, item.index as u64],
                    );
                    transform.apply(&item.image, &self.normalization, &mut rng, image_out);
                }
                ImageAugment::None => normalize_into(&item.image, &self.normalization, image_out),
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
        let side = items.first().map_or(0, |item| side_of(&item.image));
        let mut pixels = vec![0.0f32; count * CHANNELS * side * side];
        self.fill_images(items, epoch, &mut pixels);
        let soft_targets = self.soft_targets.as_ref().map(|mixup| {
            let labels: Vec<usize> = items.iter().map(|item| item.label).collect();
            // One stream per batch, named by its first image: batches of an epoch are disjoint.
            let first = items.first().map_or(0, |item| item.index as u64);
            let mut rng = rng_for(self.seed, Purpose::Mix, &[epoch as u64, first]);
            let mixed = mixup
                .apply(&mut pixels, count, CHANNELS, side, side, &labels, &mut rng)
                .expect("labels are checked against the classes when the set is read");
            Tensor::from_data(
                TensorData::new(mixed.targets, [count, mixup.num_classes]),
                device,
            )
        });
        let targets: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let images = Tensor::from_data(
            TensorData::new(pixels, [count, CHANNELS, side, side]),
            device,
        );
        let targets = Tensor::from_data(TensorData::new(targets, [count]), device);
        CifarBatch {
            images,
            targets,
            soft_targets,
        }
    }
}

impl Batcher<CifarItem, CifarBatch> for CifarBatcher {
    fn batch(&self, items: Vec<CifarItem>, device: &Device) -> CifarBatch {
        self.batch_for_epoch(&items, self.epoch(), device)
    }
}
