//! Self-describing checkpoints: `NAME.bpk` holds the weights (a burnpack record of
//! [`Classifier`]) and `NAME.bpk.json` beside it says which model they belong to, with its
//! hyper-parameters and the data statistics, so `eval` and `predict` need only the path.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::Device;
use cnnzoo_models::{ModelConfig, lookup};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::atomic;
use crate::augment_config::EmaConfig;
use crate::classifier::Classifier;
use crate::data::Labels;
use crate::ema::Ema;

pub const FORMAT: &str = "cnnzoo-checkpoint/1";

#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub name: String,
    /// CIFAR-100's labelling, so `eval` reads the labels the weights were trained on; absent
    /// (fine) in the sidecars of CIFAR-10 runs and of runs from before CIFAR-100.
    #[serde(default, skip_serializing_if = "Labels::is_fine")]
    pub labels: Labels,
    pub classes: Vec<String>,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub input_size: usize,
    /// A folder data set's evaluation crop: images are resized to `input_size / crop_pct` and
    /// centre-cropped to `input_size`; absent for CIFAR, whose images are the input size.
    pub crop_pct: Option<f64>,
    /// A folder data set's folder, where `eval` reads it from without `--data-dir`.
    pub root: Option<PathBuf>,
    /// Whether the run left out image files that cannot be decoded, which `eval` then does too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skip_bad_images: bool,
}

impl DatasetInfo {
    /// The side images are resized to before the centre crop, as evaluation does.
    pub fn eval_resize(&self) -> usize {
        cnnzoo_cifar::eval_resize(self.input_size, self.crop_pct.unwrap_or(1.0))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    pub format: String,
    /// Registry name of the model.
    pub model: String,
    pub config: ModelConfig,
    pub dataset: DatasetInfo,
    /// Epoch the weights come from, for trained checkpoints.
    #[serde(default)]
    pub epoch: Option<usize>,
    #[serde(default)]
    pub val_top1: Option<f64>,
    /// How the training images were split, so `eval --split val` sees the same validation images.
    #[serde(default = "default_seed")]
    pub split_seed: u64,
    #[serde(default = "default_val_fraction")]
    pub val_fraction: f64,
    /// Whether the record holds the moving average of the weights too (`[ema]`), which eval
    /// and predict then run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ema: bool,
}

fn default_seed() -> u64 {
    42
}

fn default_val_fraction() -> f64 {
    0.1
}

pub fn meta_path(checkpoint: &Path) -> PathBuf {
    let mut name = checkpoint.file_name().unwrap_or_default().to_os_string();
    name.push(".json");
    checkpoint.with_file_name(name)
}

/// Writes the sidecar; the weights file is written separately (and first).
pub fn write_meta(checkpoint: &Path, meta: &CheckpointMeta) -> Result<()> {
    let text =
        serde_json::to_string_pretty(meta).context("cannot serialise checkpoint metadata")?;
    atomic::write_bytes(&meta_path(checkpoint), text.as_bytes())
}

pub fn read_meta(checkpoint: &Path) -> Result<CheckpointMeta> {
    let path = meta_path(checkpoint);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{}: no cnnzoo metadata beside it (expected {}); cnnzoo checkpoints are written by `cnnzoo train` or `cnnzoo import`",
            checkpoint.display(),
            path.display()
        )
    })?;
    let meta: CheckpointMeta = serde_json::from_str(&text)
        .with_context(|| format!("{}: not valid cnnzoo checkpoint metadata", path.display()))?;
    if meta.format != FORMAT {
        bail!(
            "{}: unsupported checkpoint format '{}' (this cnnzoo reads {FORMAT})",
            path.display(),
            meta.format
        );
    }
    Ok(meta)
}

/// Builds the model the checkpoint describes and loads its weights onto `device`.
pub fn load(checkpoint: &Path, device: &Device) -> Result<(Classifier, CheckpointMeta)> {
    match std::fs::metadata(checkpoint) {
        Err(_) => bail!("{}: no such checkpoint file", checkpoint.display()),
        Ok(m) if m.is_dir() => bail!(
            "{}: is a folder, not a checkpoint file",
            checkpoint.display()
        ),
        Ok(m) if m.len() == 0 => bail!("{}: the checkpoint file is empty", checkpoint.display()),
        Ok(_) => {}
    }
    let meta = read_meta(checkpoint)?;
    lookup(&meta.model).map_err(|e| anyhow::anyhow!("{}: {e}", checkpoint.display()))?;
    let model = meta.config.init(device);
    // The average's decay only matters to training; loading needs the slot for its weights.
    let ema = meta.ema.then(|| Ema::new(&model, EmaConfig::default()));
    let classifier = Classifier {
        ema,
        ..Classifier::new(model)
    };
    let record = ModuleRecord::load(checkpoint).map_err(|e| {
        anyhow::anyhow!(
            "{}: cannot read the weights ({e}); the file may be truncated or not a burnpack record",
            checkpoint.display()
        )
    })?;
    let classifier = classifier.try_load_record(record).map_err(|e| {
        let found = stored_family(checkpoint)
            .map(|family| format!(" (the file holds a {family} network)"))
            .unwrap_or_default();
        anyhow::anyhow!(
            "{}: the weights do not fit model '{}' described beside it{found}: {}",
            checkpoint.display(),
            meta.model,
            shorten(&e.to_string())
        )
    })?;
    Ok((classifier, meta))
}

/// The architecture a record was saved from: its tensor paths start with `model.<Family>.`, the
/// [`cnnzoo_models::Model`] variant.
fn stored_family(checkpoint: &Path) -> Option<String> {
    let reader = burn_pack::Reader::from_file_exact(checkpoint).ok()?;
    let names = reader.tensor_names();
    let family = names.first()?.split('.').nth(1)?;
    Some(family.to_string())
}

/// Long tensor lists are cut to a readable length.
fn shorten(message: &str) -> String {
    const LIMIT: usize = 600;
    if message.len() <= LIMIT {
        message.to_string()
    } else {
        let cut = (0..=LIMIT)
            .rev()
            .find(|&i| message.is_char_boundary(i))
            .unwrap_or(0);
        format!("{} …", &message[..cut])
    }
}
