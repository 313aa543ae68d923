//! CIFAR-10, CIFAR-100 and folders of the user's images for cnnzoo: from a data folder (an
//! extracted folder, an archive read in place, a download, or `root/<class>/<image>`) to
//! augmented, normalised burn batches, exactly as the reference pipeline (SPEC §3). Nothing is
//! written into the data folder except a download; a folder data set's decoded images are
//! cached elsewhere ([`default_cache_dir`]).
//!
//! ```no_run
//! use cnnzoo_cifar::{CifarDataset, EpochLoader, load_cifar10, split_train_val};
//! # fn main() -> Result<(), cnnzoo_cifar::CifarError> {
//! let data = load_cifar10(std::path::Path::new("./data"))?;
//! let (train, val) = split_train_val(&data.train, 0.1, 42)?;
//! let device = burn::tensor::Device::flex();
//! let train = EpochLoader::train(CifarDataset::new(train), 128, 2, 42, &device)?;
//! let val = EpochLoader::eval(CifarDataset::new(val), 128, 2, &device)?;
//! # let _ = (train, val);
//! # Ok(())
//! # }
//! ```
//!
//! Where each concern lives (the modules are private; what they make public is re-exported here):
//! - `kind`: the two data sets (CIFAR-100 with either labelling), their file names, URLs, md5s and class names ([`CifarKind`]).
//! - `source`: where the data comes from: an extracted folder, an archive or a download
//!   ([`locate`], [`Source`]); the resumable, md5-verified download ([`download`],
//!   [`md5_of_file`]).
//! - `files`: the files of a [`Source`] by name: read from a folder, or streamed once from an
//!   archive into memory, which also refuses malformed archives.
//! - `parse`: reading and validating the batch files of the binary and the python formats from
//!   either ([`read_source`]).
//! - `pickle`: the minimal pickle reader under the python format, which runs no code.
//! - `set`: images and labels in memory or mapped from a cache ([`CifarSet`], [`Pixels`],
//!   [`CifarData`]).
//! - `decode`: image files to square uint8 images, as PIL and torchvision resize and crop them
//!   ([`read_image`], [`resize_center_crop`]).
//! - `folder`: folder data sets with `ImageFolder`'s conventions ([`load_folder`]).
//! - `folder_cache`: the memory-mapped cache of a folder split's decoded images.
//! - `split`: the seeded train/validation split ([`split_train_val`]).
//! - `augment`: flip, random resized crop and normalisation of one image ([`Augmentation`]).
//! - `crop`: torchvision's padded random crop of one uint8 image ([`RandomCrop`]).
//! - `erasing`: random erasing and Cutout of one normalised image ([`RandomErasing`],
//!   [`Cutout`]).
//! - `mixing`: timm's batch Mixup/CutMix and smoothed soft targets ([`Mixup`],
//!   [`smoothed_one_hot`]).
//! - `image_ops`: torchvision's uint8 operations on one image of any size ([`ImageOp`],
//!   [`apply_op`]).
//! - `policy`: AutoAugment, RandAugment and TrivialAugmentWide on top of them ([`PolicyKind`]),
//!   with AutoAugment's tables in `policy_tables`.
//! - `pipeline`: a recipe's transform of one training image, all of the above in torchvision's
//!   order ([`TrainTransform`]).
//! - `batch`: burn's `Dataset` and the `Batcher` that augments, normalises and stacks
//!   ([`CifarDataset`], [`CifarBatcher`]).
//! - `loader`: exact, resumable epochs with worker threads ([`EpochLoader`]).
//! - `seed`: the random streams per seed, purpose, epoch and index that make resumes exact.
//! - `error`: the one error type, whose messages name the file or value at fault ([`CifarError`]).
//! - here: [`load`], [`load_cifar10`] and [`load_cifar100`], which put `source` and `parse`
//!   together.

mod augment;
mod batch;
mod crop;
mod decode;
mod erasing;
mod error;
mod files;
mod folder;
mod folder_cache;
mod image_ops;
mod kind;
mod loader;
mod mixing;
mod parse;
mod pickle;
mod pipeline;
mod policy;
mod policy_tables;
mod seed;
mod set;
mod source;
mod split;

use std::path::Path;

pub use augment::{
    AugmentParams, Augmentation, CIFAR10_MEAN, CIFAR10_STD, CropParams, HorizontalFlip,
    Normalization, RandomResizedCrop, normalize_into, resample, resample_normalized_into,
};
pub use batch::{CifarBatch, CifarBatcher, CifarDataset, CifarItem, ImageAugment};
pub use crop::{PaddingMode, RandomCrop};
pub use decode::{RgbImage, decode_image, read_image, resize_center_crop};
pub use erasing::{Cutout, ErasingValue, Occlusion, RandomErasing};
pub use error::{CifarError, Result};
pub use folder::{
    CACHE_DIR_ENV, DEFAULT_CROP_PCT, FolderData, FolderOptions, IMAGE_EXTENSIONS,
    MAX_FOLDER_CLASSES, default_cache_dir, eval_resize, load_folder,
};
pub use image_ops::{ImageOp, apply_op, apply_op_into};
pub use kind::{Archive, CifarKind};
pub use loader::{EpochLoader, FIRST_EPOCH};
pub use mixing::{MixKind, MixOutcome, Mixup, smoothed_one_hot};
pub use parse::{parse_binary_batch, parse_python_batch, read_source};
pub use pipeline::{Geometry, TrainTransform};
pub use policy::{
    AutoAugmentPolicy, MagnitudeSpace, OpKind, PolicyKind, PolicyStep, RANDOM_OPS, SubPolicy,
};
pub use set::{CHANNEL_PIXELS, CHANNELS, CifarData, CifarSet, IMAGE_BYTES, IMAGE_SIDE, Pixels};
pub use source::{
    DATA_DIR_ENV, DEFAULT_DATA_DIR, FetchOptions, Source, URL_ENV, data_dir_from_env, download,
    locate, md5_of_file, part_path,
};
pub use split::{DEFAULT_VAL_FRACTION, split_indices, split_train_val, val_count};

/// Loads `kind` from `data_dir`, downloading it first when there is none (see [`locate`] for the
/// order in which sources are tried); an archive is read in place.
pub fn load(kind: CifarKind, data_dir: &Path, options: &FetchOptions) -> Result<CifarData> {
    read_source(kind, &locate(kind, data_dir, options)?)
}

/// Loads CIFAR-10 from `data_dir` with [`FetchOptions::from_env`].
pub fn load_cifar10(data_dir: &Path) -> Result<CifarData> {
    load(CifarKind::Cifar10, data_dir, &FetchOptions::from_env())
}

/// Loads CIFAR-100 (fine labels) from `data_dir` with [`FetchOptions::from_env`]; its coarse
/// labels are [`CifarKind::Cifar100Coarse`] through [`load`].
pub fn load_cifar100(data_dir: &Path) -> Result<CifarData> {
    load(CifarKind::Cifar100, data_dir, &FetchOptions::from_env())
}
