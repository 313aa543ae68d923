//! The CLI's use of the cifar crate: the train/validation/test splits of a data folder and the
//! loaders over them.
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;
use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use cnnzoo_cifar::{
    CIFAR10_MEAN, CIFAR10_STD, CifarBatch, CifarBatcher, CifarDataset, CifarSet, EpochLoader,
    Normalization, split_train_val,
};

use crate::augment_config::mixing;

use crate::checkpoint::DatasetInfo;
use crate::config::TrainConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Self::Train => "train",
            Self::Val => "val",
            Self::Test => "test",
        }
    }
}

pub struct Data {
    pub train: CifarSet,
    pub val: CifarSet,
    pub test: CifarSet,
    pub classes: Vec<String>,
}

/// Reads CIFAR-10 from `dir` (an archive in place, downloaded if missing) and splits off the
/// validation images exactly as training did.
pub fn load_cifar10(dir: &Path, val_fraction: f64, seed: u64) -> Result<Data> {
    let data = cnnzoo_cifar::load_cifar10(dir)?;
    let (train, val) = split_train_val(&data.train, val_fraction, seed)?;
    Ok(Data {
        classes: data.train.classes.clone(),
        train,
        val,
        test: data.test,
    })
}

impl Data {
    pub fn info(&self, input_size: usize) -> DatasetInfo {
        DatasetInfo {
            name: "cifar10".into(),
            classes: self.classes.clone(),
            mean: CIFAR10_MEAN,
            std: CIFAR10_STD,
            input_size,
        }
    }

    pub fn split(&self, split: Split) -> Result<&CifarSet> {
        let set = match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
            Split::Test => &self.test,
        };
        if set.is_empty() {
            anyhow::bail!(
                "the {} split holds no images (was the run trained with val_fraction 0?)",
                split.name()
            );
        }
        Ok(set)
    }
}

pub struct Loaders {
    pub train: Arc<dyn DataLoader<CifarBatch>>,
    pub valid: Arc<dyn DataLoader<CifarBatch>>,
}

/// The augmented, shuffled training loader numbered from `start_epoch` (so a resumed run sees
/// the batches it would have seen) and the plain validation loader.
pub fn training_loaders(
    data: &Data,
    config: &TrainConfig,
    start_epoch: usize,
    device: &Device,
) -> Result<Loaders> {
    let train = EpochLoader::train_with(
        CifarDataset::new(data.train.clone()),
        train_batcher(config, data.classes.len())?,
        config.batch_size,
        config.workers,
        device,
    )?
    .with_start_epoch(start_epoch);
    let valid = EpochLoader::eval(
        CifarDataset::new(data.val.clone()),
        config.batch_size,
        config.workers,
        device,
    )?;
    Ok(Loaders {
        train: Arc::new(train),
        valid: Arc::new(valid),
    })
}

/// The training batcher of `config`: the SPEC's augmentation unless `[augment]` sets a recipe,
/// with soft targets when it mixes batches or `label_smoothing` is set.
pub fn train_batcher(config: &TrainConfig, num_classes: usize) -> Result<CifarBatcher> {
    let batcher = match &config.augment {
        None => CifarBatcher::train(config.seed),
        Some(augment) => {
            CifarBatcher::recipe(augment.transform(), Normalization::CIFAR10, config.seed)?
        }
    };
    Ok(
        match mixing(config.augment.as_ref(), config.label_smoothing, num_classes) {
            Some(mixup) => batcher.with_soft_targets(mixup),
            None => batcher,
        },
    )
}

/// Every image of `set` in order, without augmentation.
pub fn eval_loader(
    set: &CifarSet,
    batch_size: usize,
    device: &Device,
) -> Result<Arc<dyn DataLoader<CifarBatch>>> {
    Ok(Arc::new(EpochLoader::eval(
        CifarDataset::new(set.clone()),
        batch_size,
        2,
        device,
    )?))
}
