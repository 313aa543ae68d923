//! The CLI's use of the cifar crate: the train/validation/test splits of a data folder and the
//! loaders over them.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use cnnzoo_cifar::{
    CifarBatch, CifarBatcher, CifarDataset, CifarKind, CifarSet, DEFAULT_CROP_PCT, EpochLoader,
    FetchOptions, FolderOptions, Normalization, default_cache_dir, load_folder, split_train_val,
};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::augment_config::mixing;

use crate::checkpoint::{CheckpointMeta, DatasetInfo};
use crate::config::TrainConfig;
use crate::parallel::Placement;

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
/// `config.toml` of existing runs have them; `root`, `val_fraction` and `workers` here are the
/// same settings by other names, for a config that keeps everything about the data in one place
/// (`data_dir` and `--data-dir` win over `root`; the other two may only be set once).
#[skip_serializing_none]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    #[serde(default)]
    pub dataset: DatasetName,
    /// The data folder, when neither `data_dir` nor `--data-dir` gives one.
    pub root: Option<PathBuf>,
    /// CIFAR-100's fine (100) or coarse (20 super-classes) labels; not for CIFAR-10.
    pub labels: Option<Labels>,
    /// Per-channel mean of the pixels scaled to [0, 1]; default the data set's own.
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation; default the data set's own.
    pub std: Option<[f32; 3]>,
    /// The top-level `val_fraction` by its `[data]` name, moved there when the config is read.
    #[serde(default, skip_serializing)]
    pub val_fraction: Option<f64>,
    /// The top-level `workers` by its `[data]` name, moved there when the config is read.
    #[serde(default, skip_serializing)]
    pub workers: Option<usize>,
    /// Threads preparing the batches of the final evaluation (default 2).
    pub eval_workers: Option<usize>,
    /// Side of the images of a folder data set (default: the model's input size).
    pub image_size: Option<usize>,
    /// Share of the evaluation resize that a folder data set's centre crop keeps: images are
    /// resized to `image_size / crop_pct`, then cropped to `image_size` (default 0.875).
    pub crop_pct: Option<f64>,
    /// Leave out (and count) files of a folder data set that cannot be decoded.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_bad_images: bool,
    /// Where a folder data set's decoded images are cached (default CNNZOO_CACHE_DIR, else
    /// ~/.cache/cnnzoo).
    pub cache_dir: Option<PathBuf>,
}

/// The data sets a run can train on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetName {
    #[default]
    Cifar10,
    Cifar100,
    /// `root/<class>/<image>`, torchvision's `ImageFolder`.
    Folder,
}

/// What a run's images are: a CIFAR data set, or a folder of images at a size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DataSource {
    Cifar(CifarKind),
    Folder { image_size: usize, crop_pct: f64 },
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

    /// The data set with its labelling, or the folder at its image size (by default
    /// `model_input_size`, the model's own).
    pub fn source(&self, model_input_size: usize) -> DataSource {
        match (self.dataset, self.labels) {
            (DatasetName::Cifar10, _) => DataSource::Cifar(CifarKind::Cifar10),
            (DatasetName::Cifar100, Some(Labels::Coarse)) => {
                DataSource::Cifar(CifarKind::Cifar100Coarse)
            }
            (DatasetName::Cifar100, _) => DataSource::Cifar(CifarKind::Cifar100),
            (DatasetName::Folder, _) => DataSource::Folder {
                image_size: self.image_size.unwrap_or(model_input_size),
                crop_pct: self.crop_pct.unwrap_or(DEFAULT_CROP_PCT),
            },
        }
    }

    /// The data set as titles name it.
    pub fn title(&self) -> &'static str {
        match self.source(0) {
            DataSource::Cifar(CifarKind::Cifar100Coarse) => "CIFAR-100 (coarse labels)",
            DataSource::Cifar(kind) => kind.name(),
            DataSource::Folder { .. } => "a folder of images",
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
        if let (DatasetName::Cifar10 | DatasetName::Folder, Some(labels)) =
            (self.dataset, self.labels)
        {
            let labels = toml::Value::try_from(labels)?;
            let dataset = toml::Value::try_from(self.dataset)?;
            bail!(
                "data.labels = {labels} is for CIFAR-100 only, but data.dataset is {dataset} (one set of labels); remove data.labels or set data.dataset = \"cifar100\""
            );
        }
        if self.dataset != DatasetName::Folder {
            let folder_keys = [
                ("image_size", self.image_size.is_some()),
                ("crop_pct", self.crop_pct.is_some()),
                ("skip_bad_images", self.skip_bad_images),
                ("cache_dir", self.cache_dir.is_some()),
            ];
            if let Some((key, _)) = folder_keys.iter().find(|(_, set)| *set) {
                bail!(
                    "data.{key} is for folder data sets (data.dataset = \"folder\"); CIFAR's images are 32x32 and need no decoding: remove data.{key}"
                );
            }
        }
        if let Some(size) = self.image_size
            && !(8..=1024).contains(&size)
        {
            bail!("data.image_size must be between 8 and 1024 pixels (got {size})");
        }
        if let Some(crop) = self.crop_pct
            && !(crop > 0.0 && crop <= 1.0)
        {
            bail!("data.crop_pct must be in (0, 1] (got {crop})");
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
    pub source: DataSource,
    pub train: CifarSet,
    pub val: CifarSet,
    pub test: CifarSet,
    pub classes: Vec<String>,
    /// What every batch is normalised with, and what the checkpoint records.
    pub normalization: Normalization,
    /// The data folder, which a folder data set's checkpoint records for `eval`.
    pub root: PathBuf,
    /// Whether undecodable files were left out rather than refused.
    pub skip_bad_images: bool,
}

/// Which images to read, and how.
pub struct DataRequest {
    pub source: DataSource,
    pub dir: PathBuf,
    pub val_fraction: f64,
    pub seed: u64,
    /// `None`: the data set's own statistics.
    pub normalization: Option<Normalization>,
    pub skip_bad_images: bool,
    pub cache_dir: PathBuf,
}

impl DataRequest {
    /// What a training config reads from `dir`, for a model whose own input size is
    /// `model_input_size`.
    pub fn for_config(config: &TrainConfig, dir: PathBuf, model_input_size: usize) -> Result<Self> {
        Ok(Self {
            source: config.data.source(model_input_size),
            dir,
            val_fraction: config.val_fraction,
            seed: config.seed,
            normalization: config.data.normalization()?,
            skip_bad_images: config.data.skip_bad_images,
            cache_dir: (config.data.cache_dir.clone()).unwrap_or_else(default_cache_dir),
        })
    }

    /// What a checkpoint was trained on, split as training split it, read from `dir`; files
    /// that cannot be decoded are left out when the run left them out or `skip_bad_images`.
    pub fn for_checkpoint(meta: &CheckpointMeta, dir: PathBuf, skip_bad_images: bool) -> Self {
        let dataset = &meta.dataset;
        let source = match (dataset.name.as_str(), dataset.labels) {
            ("folder", _) => DataSource::Folder {
                image_size: dataset.input_size,
                crop_pct: dataset.crop_pct.unwrap_or(DEFAULT_CROP_PCT),
            },
            ("cifar100", Labels::Coarse) => DataSource::Cifar(CifarKind::Cifar100Coarse),
            ("cifar100", Labels::Fine) => DataSource::Cifar(CifarKind::Cifar100),
            // Imported weights of other data sets are evaluated on CIFAR-10, as before.
            _ => DataSource::Cifar(CifarKind::Cifar10),
        };
        Self {
            source,
            dir,
            val_fraction: meta.val_fraction,
            seed: meta.split_seed,
            normalization: Some(Normalization {
                mean: dataset.mean,
                std: dataset.std,
            }),
            skip_bad_images: skip_bad_images || dataset.skip_bad_images,
            cache_dir: default_cache_dir(),
        }
    }
}

/// Reads the request's images and splits off the validation images exactly as training did.
/// Without a `normalization`, CIFAR-10 takes the SPEC's statistics, and CIFAR-100 and folders
/// those of their training images (CIFAR-100: all of them, as the reference computes them,
/// whatever `val_fraction` is; a folder: its training split's, computed when its cache is built).
pub fn load(request: &DataRequest) -> Result<Data> {
    match request.source {
        DataSource::Cifar(kind) => {
            let data = cnnzoo_cifar::load(kind, &request.dir, &FetchOptions::from_env())?;
            let normalization = request.normalization.unwrap_or_else(|| match kind {
                CifarKind::Cifar10 => Normalization::CIFAR10,
                CifarKind::Cifar100 | CifarKind::Cifar100Coarse => {
                    Normalization::from_set(&data.train)
                }
            });
            let (train, val) = split_train_val(&data.train, request.val_fraction, request.seed)?;
            Ok(Data {
                source: request.source,
                classes: data.train.classes.clone(),
                train,
                val,
                test: data.test,
                normalization,
                root: request.dir.clone(),
                skip_bad_images: false,
            })
        }
        DataSource::Folder {
            image_size,
            crop_pct,
        } => {
            let options = FolderOptions {
                image_size,
                crop_pct,
                val_fraction: request.val_fraction,
                seed: request.seed,
                skip_bad_images: request.skip_bad_images,
                cache_dir: request.cache_dir.clone(),
                verbose: true,
            };
            let folder = load_folder(&request.dir, &options)?;
            Ok(Data {
                source: request.source,
                train: folder.train,
                val: folder.val,
                test: folder.test,
                classes: folder.classes,
                normalization: request.normalization.unwrap_or(folder.normalization),
                root: folder.root,
                skip_bad_images: request.skip_bad_images,
            })
        }
    }
}

impl Data {
    /// What the checkpoint records about the data; `model_input_size` is the input size of
    /// CIFAR runs (a folder's is its image size).
    pub fn info(&self, model_input_size: usize) -> DatasetInfo {
        let cifar = |name: &str, labels| (name.to_owned(), labels, model_input_size, None, None);
        let (name, labels, input_size, crop_pct, root) = match self.source {
            DataSource::Cifar(CifarKind::Cifar10) => cifar("cifar10", Labels::Fine),
            DataSource::Cifar(CifarKind::Cifar100) => cifar("cifar100", Labels::Fine),
            DataSource::Cifar(CifarKind::Cifar100Coarse) => cifar("cifar100", Labels::Coarse),
            DataSource::Folder {
                image_size,
                crop_pct,
            } => (
                "folder".to_owned(),
                Labels::Fine,
                image_size,
                Some(crop_pct),
                Some(self.root.clone()),
            ),
        };
        DatasetInfo {
            name,
            labels,
            classes: self.classes.clone(),
            mean: self.normalization.mean,
            std: self.normalization.std,
            input_size,
            crop_pct,
            root,
            skip_bad_images: self.skip_bad_images,
        }
    }

    /// An error listing how the classes of `expected` (a checkpoint's) and the data's differ,
    /// if they do: a checkpoint is never silently evaluated against other classes.
    pub fn check_classes(&self, expected: &[String]) -> Result<()> {
        if self.classes == expected {
            return Ok(());
        }
        let missing: Vec<&str> = (expected.iter())
            .filter(|c| !self.classes.contains(c))
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = (self.classes.iter())
            .filter(|c| !expected.contains(c))
            .map(String::as_str)
            .collect();
        let mut differences = Vec::new();
        if !missing.is_empty() {
            differences.push(format!("missing from the data: {}", missing.join(", ")));
        }
        if !extra.is_empty() {
            differences.push(format!("not in the checkpoint: {}", extra.join(", ")));
        }
        if differences.is_empty() {
            differences.push("the same names in another order, so the labels differ".into());
        }
        bail!(
            "the checkpoint was trained on {} classes and {} holds {}: {}",
            expected.len(),
            self.root.display(),
            self.classes.len(),
            differences.join("; ")
        )
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
            match (self.source, split) {
                (DataSource::Folder { .. }, Split::Test) => bail!(
                    "{} has no test/ folder: evaluate with --split val, or add root/test/<class>/<image>",
                    self.root.display()
                ),
                _ => bail!(
                    "the {} split holds no images (was the run trained with val_fraction 0?)",
                    split.name()
                ),
            }
        }
        Ok(set)
    }
}

pub struct Loaders {
    pub train: Arc<dyn DataLoader<CifarBatch>>,
    pub valid: Arc<dyn DataLoader<CifarBatch>>,
}

/// The augmented, shuffled training loader numbered from `start_epoch` (so a resumed run sees
/// the batches it would have seen) and the plain validation loader. On several devices the
/// training loader's batches are each device's share of the global batch, and its epoch is cut
/// to whole global batches, so that every device's slice of it has as many batches.
pub fn training_loaders(
    data: &Data,
    config: &TrainConfig,
    start_epoch: usize,
    placement: &Placement,
) -> Result<Loaders> {
    let device = &placement.main().device;
    let train = EpochLoader::train_with(
        CifarDataset::new(data.train.clone()),
        train_batcher(config, data.classes.len(), data.normalization)?,
        placement.per_device_batch(config.batch_size)?,
        config.workers,
        device,
    )?
    .with_shards(placement.count())
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
    use std::path::Path;

    use super::*;

    fn config(extra: &str) -> Result<TrainConfig> {
        let config = TrainConfig::from_toml(&format!(
            "model = \"resnet\"\n{extra}\n[optimizer]\nname = \"sgd\"\nlr = 0.1\n"
        ))?;
        config.validate()?;
        Ok(config)
    }

    /// Asserts that `extra` is refused with an error that says `expected`.
    fn assert_refused(extra: &str, expected: impl AsRef<str>) {
        let error = config(extra).unwrap_err().to_string();
        assert!(error.contains(expected.as_ref()), "{extra}: {error}");
    }

    #[test]
    fn without_data_the_resolved_config_has_no_data_table() {
        let plain = config("").unwrap();
        assert_eq!(plain.data.source(32), DataSource::Cifar(CifarKind::Cifar10));
        assert!(!plain.to_toml().unwrap().contains("data"));
        let explicit = config("data.dataset = \"cifar10\"").unwrap();
        assert_eq!(explicit, plain);
    }

    #[test]
    fn dataset_and_labels_pick_the_kind() {
        let fine = config("data.dataset = \"cifar100\"").unwrap();
        assert_eq!(fine.data.source(32), DataSource::Cifar(CifarKind::Cifar100));
        assert!(
            fine.to_toml()
                .unwrap()
                .contains("[data]\ndataset = \"cifar100\"")
        );
        let coarse = config("data = { dataset = \"cifar100\", labels = \"coarse\" }").unwrap();
        assert_eq!(
            coarse.data.source(32),
            DataSource::Cifar(CifarKind::Cifar100Coarse)
        );
        assert_eq!(coarse.data.title(), "CIFAR-100 (coarse labels)");
        assert_refused(
            "data.labels = \"fine\"",
            "data.labels = \"fine\" is for CIFAR-100 only",
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
        assert_refused(
            "data.mean = [0.5, 0.4, 0.3]",
            "data.mean and data.std go together",
        );
        assert_refused(
            "data = { mean = [0.5, 0.4, 0.3], std = [0.2, 0.0, 0.25] }",
            "data.std must be three positive numbers",
        );
        assert_refused(
            "data.eval_workers = 0",
            "data.eval_workers must be at least 1",
        );
    }

    #[test]
    fn a_folder_takes_the_model_size_unless_told_and_folder_keys_need_a_folder() {
        let folder = config("data = { dataset = \"folder\", root = \"/photos\" }").unwrap();
        assert_eq!(
            folder.data.source(224),
            DataSource::Folder {
                image_size: 224,
                crop_pct: 0.875
            }
        );
        let sized =
            config("data = { dataset = \"folder\", image_size = 64, crop_pct = 0.9 }").unwrap();
        assert_eq!(
            sized.data.source(224),
            DataSource::Folder {
                image_size: 64,
                crop_pct: 0.9
            }
        );
        for (key, value) in [
            ("image_size", "64"),
            ("crop_pct", "0.9"),
            ("skip_bad_images", "true"),
            ("cache_dir", "\"/tmp\""),
        ] {
            assert_refused(
                &format!("data.{key} = {value}"),
                format!("data.{key} is for folder data sets"),
            );
        }
        assert_refused(
            "data = { dataset = \"folder\", image_size = 4 }",
            "data.image_size must be between 8 and 1024",
        );
        assert_refused(
            "data = { dataset = \"folder\", crop_pct = 1.5 }",
            "data.crop_pct must be in (0, 1]",
        );
    }

    #[test]
    fn val_fraction_and_workers_under_data_are_the_top_level_keys() {
        let moved = config("data = { val_fraction = 0.2, workers = 3 }").unwrap();
        assert_eq!((moved.val_fraction, moved.workers), (0.2, 3));
        assert_eq!(moved.data, DataConfig::default());
        assert_refused(
            "val_fraction = 0.1\ndata.val_fraction = 0.2",
            "val_fraction and data.val_fraction are the same setting",
        );
    }
}
