//! The CLI's use of the cifar crate: the train/validation/test splits of a data folder and the
//! loaders over them.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use cnnzoo_cifar::{
    CifarBatch, CifarBatcher, CifarDataset, CifarKind, CifarSet, EpochLoader, FetchOptions,
    Normalization, split_train_val,
};
use serde::{Deserialize, Serialize};

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

/// `[data]`: which data set a run trains on and how its images are read. The older keys
/// `data_dir`, `val_fraction` and `workers` stay top-level, where the shipped configs and the
/// `config.toml` of existing runs have them; `root` is `data_dir` by another name, for a config
/// that keeps everything about the data in one place (`data_dir` and `--data-dir` win).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    #[serde(default)]
    pub dataset: DatasetName,
    /// The data folder, when neither `data_dir` nor `--data-dir` gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// CIFAR-100's fine (100) or coarse (20 super-classes) labels; not for CIFAR-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    /// Per-channel mean of the pixels scaled to [0, 1]; default the data set's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation; default the data set's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<[f32; 3]>,
    /// Threads preparing the batches of the final evaluation (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_workers: Option<usize>,
}

/// The data sets a run can train on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    #[default]
    Cifar10,
    Cifar100,
}

/// Which of CIFAR-100's labellings a run trains on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Labels {
    #[default]
    Fine,
    Coarse,
}

impl Labels {
    /// For `skip_serializing_if`: the checkpoints of fine-labelled runs stay as they were.
    pub fn is_fine(&self) -> bool {
        *self == Self::Fine
    }
}

/// Threads of an evaluation loader when nothing says otherwise (`cnnzoo eval`, which has no
/// config, always).
pub const EVAL_WORKERS: usize = 2;

impl DataConfig {
    /// For `skip_serializing_if`: without `[data]` the resolved config is what it always was.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// The cifar crate's data set with its labelling.
    pub fn kind(&self) -> CifarKind {
        match (self.dataset, self.labels) {
            (DatasetName::Cifar10, _) => CifarKind::Cifar10,
            (DatasetName::Cifar100, Some(Labels::Coarse)) => CifarKind::Cifar100Coarse,
            (DatasetName::Cifar100, _) => CifarKind::Cifar100,
        }
    }

    /// The data set as titles name it.
    pub fn title(&self) -> &'static str {
        match self.kind() {
            CifarKind::Cifar100Coarse => "CIFAR-100 (coarse labels)",
            kind => kind.name(),
        }
    }

    /// The configured statistics; `None` means the data set's own (see [`load`]).
    pub fn normalization(&self) -> Result<Option<Normalization>> {
        match (self.mean, self.std) {
            (Some(mean), Some(std)) => Ok(Some(Normalization { mean, std })),
            (None, None) => Ok(None),
            _ => bail!("data.mean and data.std go together: set both or neither"),
        }
    }

    pub fn eval_workers(&self) -> usize {
        self.eval_workers.unwrap_or(EVAL_WORKERS)
    }

    /// Checks the keys of `[data]`; the message names the key and the value.
    pub fn validate(&self) -> Result<()> {
        if let (DatasetName::Cifar10, Some(labels)) = (self.dataset, self.labels) {
            let labels = toml::Value::try_from(labels)?;
            bail!(
                "data.labels = {labels} is for CIFAR-100 only, but data.dataset is \"cifar10\" (one set of 10 labels); remove data.labels or set data.dataset = \"cifar100\""
            );
        }
        if let Some(std) = self.std
            && !std.iter().all(|s| s.is_finite() && *s > 0.0)
        {
            bail!("data.std must be three positive numbers (got {std:?})");
        }
        if let Some(mean) = self.mean
            && !mean.iter().all(|m| m.is_finite())
        {
            bail!("data.mean must be three finite numbers (got {mean:?})");
        }
        if self.eval_workers == Some(0) {
            bail!("data.eval_workers must be at least 1 (got 0)");
        }
        self.normalization().map(|_| ())
    }
}

pub struct Data {
    pub kind: CifarKind,
    pub train: CifarSet,
    pub val: CifarSet,
    pub test: CifarSet,
    pub classes: Vec<String>,
    /// What every batch is normalised with, and what the checkpoint records.
    pub normalization: Normalization,
}

/// Reads `kind` from `dir` (an archive in place, downloaded if missing) and splits off the
/// validation images exactly as training did. Without a `normalization`, CIFAR-10 takes the
/// SPEC's statistics and CIFAR-100 those of all its training images, as the reference computes
/// them (the same whatever `val_fraction` is, so evaluation can rely on the checkpoint's).
pub fn load(
    kind: CifarKind,
    dir: &Path,
    val_fraction: f64,
    seed: u64,
    normalization: Option<Normalization>,
) -> Result<Data> {
    let data = cnnzoo_cifar::load(kind, dir, &FetchOptions::from_env())?;
    let normalization = normalization.unwrap_or_else(|| match kind {
        CifarKind::Cifar10 => Normalization::CIFAR10,
        CifarKind::Cifar100 | CifarKind::Cifar100Coarse => Normalization::from_set(&data.train),
    });
    let (train, val) = split_train_val(&data.train, val_fraction, seed)?;
    Ok(Data {
        kind,
        classes: data.train.classes.clone(),
        train,
        val,
        test: data.test,
        normalization,
    })
}

/// The data set a checkpoint was trained on, from its sidecar: CIFAR-100 with the labelling it
/// records, else CIFAR-10 (which imported weights of other data sets are evaluated on, as
/// before).
pub fn kind_of(dataset: &DatasetInfo) -> CifarKind {
    match (dataset.name.as_str(), dataset.labels) {
        ("cifar100", Labels::Coarse) => CifarKind::Cifar100Coarse,
        ("cifar100", Labels::Fine) => CifarKind::Cifar100,
        _ => CifarKind::Cifar10,
    }
}

impl Data {
    pub fn info(&self, input_size: usize) -> DatasetInfo {
        let (name, labels) = match self.kind {
            CifarKind::Cifar10 => ("cifar10", Labels::Fine),
            CifarKind::Cifar100 => ("cifar100", Labels::Fine),
            CifarKind::Cifar100Coarse => ("cifar100", Labels::Coarse),
        };
        DatasetInfo {
            name: name.into(),
            labels,
            classes: self.classes.clone(),
            mean: self.normalization.mean,
            std: self.normalization.std,
            input_size,
        }
    }

    /// Every image of `set` in order, without augmentation, normalised as training did.
    pub fn eval_loader(
        &self,
        set: &CifarSet,
        batch_size: usize,
        workers: usize,
        device: &Device,
    ) -> Result<Arc<dyn DataLoader<CifarBatch>>> {
        let batcher = CifarBatcher::eval().with_normalization(self.normalization);
        Ok(Arc::new(
            EpochLoader::new(CifarDataset::new(set.clone()), batcher, batch_size, device)?
                .num_workers(workers),
        ))
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
        train_batcher(config, data.classes.len(), data.normalization)?,
        config.batch_size,
        config.workers,
        device,
    )?
    .with_start_epoch(start_epoch);
    let valid = data.eval_loader(&data.val, config.batch_size, config.workers, device)?;
    Ok(Loaders {
        train: Arc::new(train),
        valid,
    })
}

/// The training batcher of `config`: the SPEC's augmentation unless `[augment]` sets a recipe,
/// with soft targets when it mixes batches or `label_smoothing` is set.
pub fn train_batcher(
    config: &TrainConfig,
    num_classes: usize,
    normalization: Normalization,
) -> Result<CifarBatcher> {
    let batcher = match &config.augment {
        None => CifarBatcher::train(config.seed).with_normalization(normalization),
        Some(augment) => CifarBatcher::recipe(augment.transform(), normalization, config.seed)?,
    };
    Ok(
        match mixing(config.augment.as_ref(), config.label_smoothing, num_classes) {
            Some(mixup) => batcher.with_soft_targets(mixup),
            None => batcher,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<TrainConfig> {
        let config = TrainConfig::from_toml(&format!(
            "model = \"resnet\"\n{extra}\n[optimizer]\nname = \"sgd\"\nlr = 0.1\n"
        ))?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn without_data_the_resolved_config_has_no_data_table() {
        let plain = config("").unwrap();
        assert_eq!(plain.data.kind(), CifarKind::Cifar10);
        assert!(!plain.to_toml().unwrap().contains("data"));
        let explicit = config("data.dataset = \"cifar10\"").unwrap();
        assert_eq!(explicit, plain);
    }

    #[test]
    fn dataset_and_labels_pick_the_kind() {
        let fine = config("data.dataset = \"cifar100\"").unwrap();
        assert_eq!(fine.data.kind(), CifarKind::Cifar100);
        assert!(
            fine.to_toml()
                .unwrap()
                .contains("[data]\ndataset = \"cifar100\"")
        );
        let coarse = config("data = { dataset = \"cifar100\", labels = \"coarse\" }").unwrap();
        assert_eq!(coarse.data.kind(), CifarKind::Cifar100Coarse);
        assert_eq!(coarse.data.title(), "CIFAR-100 (coarse labels)");
        let error = config("data.labels = \"fine\"").unwrap_err().to_string();
        assert!(
            error.contains("data.labels = \"fine\" is for CIFAR-100 only"),
            "{error}"
        );
    }

    #[test]
    fn data_dir_wins_over_data_root() {
        let root = config("data.root = \"/srv/cifar\"").unwrap();
        assert_eq!(root.data_dir(), Path::new("/srv/cifar"));
        let both = config("data_dir = \"/here\"\ndata.root = \"/srv/cifar\"").unwrap();
        assert_eq!(both.data_dir(), Path::new("/here"));
    }

    #[test]
    fn statistics_go_together_and_must_be_usable() {
        let set = config("data = { mean = [0.5, 0.4, 0.3], std = [0.2, 0.2, 0.25] }").unwrap();
        assert_eq!(
            set.data.normalization().unwrap(),
            Some(Normalization {
                mean: [0.5, 0.4, 0.3],
                std: [0.2, 0.2, 0.25]
            })
        );
        let error = config("data.mean = [0.5, 0.4, 0.3]")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("data.mean and data.std go together"),
            "{error}"
        );
        let error = config("data = { mean = [0.5, 0.4, 0.3], std = [0.2, 0.0, 0.25] }")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("data.std must be three positive numbers"),
            "{error}"
        );
        let error = config("data.eval_workers = 0").unwrap_err().to_string();
        assert!(
            error.contains("data.eval_workers must be at least 1"),
            "{error}"
        );
    }
}
