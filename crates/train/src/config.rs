//! The training configuration: a TOML file, command-line overrides on top, validated before any
//! work starts, and written back resolved into the run folder.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::augment_config::{AugmentConfig, EmaConfig, check_label_smoothing, is_zero};
use crate::data::DataConfig;
use crate::grad_clip::GradClip;
use crate::parallel::Parallel;
use crate::run_dir::RunDir;
use crate::schedule::AnnealStrategy;

/// Everything a training run needs besides the data itself.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// A registry model name (`cnnzoo models` lists them).
    pub model: String,
    #[serde(default = "defaults::epochs")]
    pub epochs: usize,
    #[serde(default = "defaults::batch_size")]
    pub batch_size: usize,
    #[serde(default = "defaults::seed")]
    pub seed: u64,
    /// Fraction of the training images held out for validation, in [0, 1).
    #[serde(default = "defaults::val_fraction")]
    pub val_fraction: f64,
    /// Threads preparing batches.
    #[serde(default = "defaults::workers")]
    pub workers: usize,
    /// `auto`, `cpu`, `ndarray`, `wgpu`, `vulkan`, `metal`, `dx12`, `cuda` or `cuda:N`.
    #[serde(default = "defaults::device")]
    pub device: String,
    /// Several devices training together (see [`crate::parallel`]): a list (`"cpu,cpu"`,
    /// `"cuda:0,cuda:1"`) or a count of `device`'s kind (`"2"`); unset, `device` alone.
    pub devices: Option<String>,
    /// How several devices share a step: `auto`, `ddp` or `multi`.
    #[serde(default, skip_serializing_if = "Parallel::is_auto")]
    pub parallel: Parallel,
    /// Where the data set lives or is downloaded to (default `data.root`, else `CNNZOO_DATA`,
    /// else `./data`).
    pub data_dir: Option<PathBuf>,
    /// `[data]`: the data set (CIFAR-10, CIFAR-100 or a folder of images), its labels,
    /// statistics, image size and evaluation workers; absent from a resolved config that keeps
    /// the defaults.
    #[serde(default, skip_serializing_if = "DataConfig::is_default")]
    pub data: DataConfig,
    /// The run folder (default `runs/<model>`).
    pub output: Option<PathBuf>,
    pub optimizer: OptimizerConfig,
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Hyper-parameters of the model that differ from the registry variant's defaults.
    #[serde(default, skip_serializing_if = "toml::Table::is_empty")]
    pub model_params: toml::Table,
    /// What the run records besides summary.csv and curves.png.
    #[serde(default)]
    pub log: LogConfig,
    /// Training augmentation; without it, the SPEC's flip + random-resized crop.
    pub augment: Option<AugmentConfig>,
    /// Label smoothing of the training loss (timm's `--smoothing`), in [0, 1); 0 is off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub label_smoothing: f64,
    /// An exponential moving average of the weights, validated and kept instead of them.
    pub ema: Option<EmaConfig>,
}

/// `[log]`: the run's logs for other tools.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// TensorBoard event files in the run folder's `tb/` (see [`crate::tensorboard`]).
    #[serde(default = "defaults::tensorboard")]
    pub tensorboard: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            tensorboard: defaults::tensorboard(),
        }
    }
}

mod defaults {
    pub fn epochs() -> usize {
        180
    }
    pub fn batch_size() -> usize {
        128
    }
    pub fn seed() -> u64 {
        42
    }
    pub fn val_fraction() -> f64 {
        0.1
    }
    pub fn workers() -> usize {
        2
    }
    pub fn tensorboard() -> bool {
        true
    }
    pub fn device() -> String {
        "auto".into()
    }
    pub fn gamma() -> f64 {
        0.1
    }
    pub fn weight_decay() -> f64 {
        0.0
    }
    pub fn betas() -> [f64; 2] {
        [0.9, 0.999]
    }
    pub fn eps() -> f64 {
        1e-8
    }
}

/// `[optimizer]`. Both optimizers also take `grad_clip` (`{ norm = 1.0 }`: the global norm of all
/// gradients is scaled down to at most 1.0, as `torch.nn.utils.clip_grad_norm_`; `{ value = 0.5 }`:
/// each gradient element is clamped to [-0.5, 0.5], as `clip_grad_value_`; default none) and
/// `no_decay_norm_bias` (true: no weight decay on parameters of at most one dimension, i.e.
/// batch-norm weights and every bias, timm's rule; default false, weight decay on all).
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum OptimizerConfig {
    /// PyTorch's SGD: momentum without dampening, optional Nesterov (needs a momentum above 0),
    /// L2 weight decay.
    Sgd {
        lr: f64,
        #[serde(default)]
        momentum: f64,
        #[serde(default)]
        nesterov: bool,
        #[serde(default = "defaults::weight_decay")]
        weight_decay: f64,
        grad_clip: Option<GradClip>,
        #[serde(default)]
        no_decay_norm_bias: bool,
    },
    /// AdamW with decoupled weight decay.
    Adamw {
        lr: f64,
        #[serde(default = "defaults::weight_decay")]
        weight_decay: f64,
        #[serde(default = "defaults::betas")]
        betas: [f64; 2],
        #[serde(default = "defaults::eps")]
        eps: f64,
        grad_clip: Option<GradClip>,
        #[serde(default)]
        no_decay_norm_bias: bool,
    },
}

impl OptimizerConfig {
    pub fn lr(&self) -> f64 {
        match self {
            Self::Sgd { lr, .. } | Self::Adamw { lr, .. } => *lr,
        }
    }

    pub fn set_lr(&mut self, value: f64) {
        match self {
            Self::Sgd { lr, .. } | Self::Adamw { lr, .. } => *lr = value,
        }
    }

    pub fn grad_clip(&self) -> Option<GradClip> {
        match self {
            Self::Sgd { grad_clip, .. } | Self::Adamw { grad_clip, .. } => *grad_clip,
        }
    }

    pub fn no_decay_norm_bias(&self) -> bool {
        match self {
            Self::Sgd {
                no_decay_norm_bias, ..
            }
            | Self::Adamw {
                no_decay_norm_bias, ..
            } => *no_decay_norm_bias,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    #[default]
    Constant,
    /// PyTorch's MultiStepLR: the rate is multiplied by `gamma` after each milestone epoch.
    Multistep,
    /// Cosine annealing from the base rate to `min_lr` over the run (after warm-up).
    Cosine,
    /// PyTorch's OneCycleLR (two phases): from `max_lr / div_factor` up to `max_lr` over the
    /// first `pct_start` of the steps, then down to `max_lr / div_factor / final_div_factor` at
    /// the last step. It is its own warm-up, so `warmup_epochs` must stay 0. PyTorch also
    /// cycles the momentum inversely; cnnzoo does not (burn's SGD has a fixed momentum).
    Onecycle,
}

impl ScheduleKind {
    /// Whether the curve is laid over all the epochs, so that another epoch count changes the
    /// rate of steps already taken.
    pub fn spans_the_run(self) -> bool {
        matches!(self, Self::Cosine | Self::Onecycle)
    }
}

/// The learning-rate schedule, in epochs; converted to optimizer steps when training starts.
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    #[serde(default)]
    pub name: ScheduleKind,
    /// Epochs after which the rate drops (multistep).
    #[serde(default)]
    pub milestones: Vec<usize>,
    #[serde(default = "defaults::gamma")]
    pub gamma: f64,
    /// Epochs of linear warm-up from 0 to the base rate, before the schedule proper.
    #[serde(default)]
    pub warmup_epochs: usize,
    /// Final rate of the cosine schedule.
    #[serde(default)]
    pub min_lr: f64,
    /// The peak rate of onecycle (default: the optimizer's `lr`).
    pub max_lr: Option<f64>,
    /// The fraction of the steps onecycle spends rising to `max_lr`, in (0, 1) (default 0.3).
    pub pct_start: Option<f64>,
    /// onecycle starts at `max_lr / div_factor` (default 25).
    pub div_factor: Option<f64>,
    /// onecycle ends at its start rate divided by this (default 1e4).
    pub final_div_factor: Option<f64>,
    /// `cos` or `linear`: onecycle's curve between its rates (default `cos`).
    pub anneal_strategy: Option<AnnealStrategy>,
}

/// A config without a `[schedule]` table gets what an empty table gives: a constant rate.
impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            name: ScheduleKind::default(),
            milestones: Vec::new(),
            gamma: defaults::gamma(),
            warmup_epochs: 0,
            min_lr: 0.0,
            max_lr: None,
            pct_start: None,
            div_factor: None,
            final_div_factor: None,
            anneal_strategy: None,
        }
    }
}

/// Values given on the command line; each replaces the file's (`--model`, which also picks the
/// recipe, is `TrainRequest`'s).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Overrides {
    /// Epochs to train.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per training step.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Base learning rate.
    // A negative value reaches the config's check, which says what is allowed, instead of being
    // read as an unknown flag.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Seed of the initial weights, the validation split, the data order and the augmentation.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Folder with the data set (default data.root, else CNNZOO_DATA, else ./data); downloaded
    /// if missing.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    // The help as an attribute: as a doc comment, rustdoc would read `<model>` as an HTML tag.
    #[arg(long, help = "Run folder (default runs/<model>)")]
    pub output: Option<PathBuf>,
    /// auto, cpu, ndarray, wgpu, vulkan, metal, dx12, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Train on several devices: cuda:0,cuda:1 (or cpu,cpu), or N for the first N of --device's
    /// kind; batch_size is the global batch, split evenly across them.
    #[arg(long)]
    pub devices: Option<String>,
    /// How several devices share a step: ddp (NCCL all-reduce, CUDA only), multi (gradients
    /// summed on the first device) or auto (ddp where it can run).
    // The values are named in the help: listed with their doc comments, clap would switch every
    // option's help onto a line of its own.
    #[arg(long, value_enum, hide_possible_values = true)]
    pub parallel: Option<Parallel>,
    /// Fraction of the training images held out for validation, in [0, 1).
    #[arg(long)]
    pub val_fraction: Option<f64>,
    /// Threads preparing batches.
    #[arg(long)]
    pub workers: Option<usize>,
    // The help as an attribute: as a doc comment, rustdoc would read `[60,120]` as a link.
    #[arg(
        long = "set",
        value_name = "KEY=VALUE",
        help = "Any key of the config, as KEY=VALUE with a TOML value (optimizer.lr=0.05, \
                schedule.milestones=[60,120], optimizer.name=adam); repeatable, applied after \
                --config and before the flags above"
    )]
    pub set: Vec<String>,
}

impl TrainConfig {
    /// This config with each `--set KEY=VALUE` applied to its TOML tree in turn; a key that does
    /// not exist or a value of the wrong type is refused as in a file, naming the argument.
    pub fn with_settings(self, settings: &[String]) -> Result<Self> {
        let mut config = self;
        for setting in settings {
            let (key, value) = setting.split_once('=').with_context(|| {
                format!("--set {setting}: expected KEY=VALUE (e.g. --set optimizer.lr=0.05)")
            })?;
            let mut tree = toml::Table::try_from(&config).context("cannot serialise the config")?;
            set_key(&mut tree, key.trim(), parse_value(value.trim()))
                .with_context(|| format!("--set {setting}"))?;
            config = Self::from_toml(&toml::to_string(&tree)?)
                .with_context(|| format!("--set {setting}"))?;
        }
        Ok(config)
    }

    /// Parses a config file; errors name the file, the key and the line.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Errors quote the line, so they name the key: `line 2 (epochs = "two"): invalid type ...`.
    /// `data.val_fraction` and `data.workers` are the top-level keys by their `[data]` names.
    pub fn from_toml(text: &str) -> Result<Self> {
        let mut config: Self = Self::parse_toml(text)?;
        let top_level = toml::from_str::<toml::Table>(text).unwrap_or_default();
        let moved = [
            (
                "val_fraction",
                config
                    .data
                    .val_fraction
                    .take()
                    .map(|v| config.val_fraction = v),
            ),
            (
                "workers",
                config.data.workers.take().map(|w| config.workers = w),
            ),
        ];
        for (key, moved) in moved {
            if moved.is_some() && top_level.contains_key(key) {
                bail!("{key} and data.{key} are the same setting: keep one of them");
            }
        }
        Ok(config)
    }

    fn parse_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let message = e.message().trim_end();
            match e.span() {
                Some(span) => {
                    let start = span.start.min(text.len());
                    let line = text.as_bytes()[..start]
                        .iter()
                        .filter(|&&b| b == b'\n')
                        .count()
                        + 1;
                    let source = text.lines().nth(line - 1).unwrap_or("").trim();
                    anyhow::anyhow!("line {line} ({source}): {message}")
                }
                None => anyhow::anyhow!("{message}"),
            }
        })
    }

    /// SGD with the reference's multi-step schedule, for a model without a shipped recipe
    /// (see [`crate::recipes::recipe_for`]).
    pub fn reference_sgd(model: &str) -> Self {
        Self {
            model: model.to_string(),
            epochs: defaults::epochs(),
            batch_size: defaults::batch_size(),
            seed: defaults::seed(),
            val_fraction: defaults::val_fraction(),
            workers: defaults::workers(),
            device: defaults::device(),
            devices: None,
            parallel: Parallel::default(),
            data_dir: None,
            data: DataConfig::default(),
            output: None,
            optimizer: OptimizerConfig::Sgd {
                lr: 0.1,
                momentum: 0.9,
                nesterov: false,
                weight_decay: 1e-4,
                grad_clip: None,
                no_decay_norm_bias: false,
            },
            schedule: ScheduleConfig {
                name: ScheduleKind::Multistep,
                milestones: vec![100, 150],
                ..ScheduleConfig::default()
            },
            model_params: toml::Table::new(),
            log: LogConfig::default(),
            augment: None,
            label_smoothing: 0.0,
            ema: None,
        }
    }

    pub fn apply(&mut self, o: &Overrides) {
        if let Some(v) = o.epochs {
            self.epochs = v;
        }
        if let Some(v) = o.batch_size {
            self.batch_size = v;
        }
        if let Some(v) = o.lr {
            self.optimizer.set_lr(v);
        }
        if let Some(v) = o.seed {
            self.seed = v;
        }
        if let Some(v) = &o.data_dir {
            self.data_dir = Some(v.clone());
        }
        if let Some(v) = &o.output {
            self.output = Some(v.clone());
        }
        if let Some(v) = &o.device {
            self.device = v.clone();
        }
        if let Some(v) = &o.devices {
            self.devices = Some(v.clone());
        }
        if let Some(v) = o.parallel {
            self.parallel = v;
        }
        if let Some(v) = o.val_fraction {
            self.val_fraction = v;
        }
        if let Some(v) = o.workers {
            self.workers = v;
        }
    }

    /// What is valid but likely not meant, to say once before training starts.
    pub fn warnings(&self) -> Vec<String> {
        // Milestone m lowers the rate from epoch m + 1 on: at or past the last epoch it never does.
        let late: Vec<usize> = (self.schedule.milestones.iter())
            .copied()
            .filter(|&m| m >= self.epochs)
            .collect();
        if late.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "schedule.milestones {late:?} lie at or beyond the last epoch ({}): the learning rate never drops there; set milestones within the {} epochs in the config's [schedule]",
            self.epochs, self.epochs
        )]
    }

    /// Checks every value a run depends on; the message names the key and the value.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            bail!("epochs must be at least 1 (got 0)");
        }
        if self.batch_size == 0 {
            bail!("batch_size must be at least 1 (got 0)");
        }
        if self.workers == 0 {
            bail!("workers must be at least 1 (got 0)");
        }
        let lr = self.optimizer.lr();
        if !(lr.is_finite() && lr > 0.0) {
            bail!("optimizer.lr must be a positive number (got {lr})");
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            bail!("val_fraction must be in [0, 1) (got {})", self.val_fraction);
        }
        self.data.validate()?;
        match &self.optimizer {
            OptimizerConfig::Sgd {
                momentum,
                weight_decay,
                nesterov,
                ..
            } => {
                if !(0.0..1.0).contains(momentum) {
                    bail!("optimizer.momentum must be in [0, 1) (got {momentum})");
                }
                if *nesterov && *momentum == 0.0 {
                    bail!(
                        "optimizer.nesterov needs a momentum above 0 (got optimizer.momentum = {momentum}), as PyTorch's SGD does"
                    );
                }
                check_weight_decay(*weight_decay)?;
            }
            OptimizerConfig::Adamw {
                weight_decay,
                betas,
                eps,
                ..
            } => {
                check_weight_decay(*weight_decay)?;
                if betas.iter().any(|b| !(0.0..1.0).contains(b)) {
                    bail!("optimizer.betas must both be in [0, 1) (got {betas:?})");
                }
                if eps.is_nan() || *eps <= 0.0 {
                    bail!("optimizer.eps must be positive (got {eps})");
                }
            }
        }
        if let Some(clip) = self.optimizer.grad_clip() {
            clip.validate()?;
        }
        let s = &self.schedule;
        if !(s.gamma > 0.0 && s.gamma <= 1.0) {
            bail!("schedule.gamma must be in (0, 1] (got {})", s.gamma);
        }
        if s.name == ScheduleKind::Multistep && s.milestones.is_empty() {
            bail!("schedule.milestones must list at least one epoch for the multistep schedule");
        }
        if s.name != ScheduleKind::Multistep && !s.milestones.is_empty() {
            bail!(
                "schedule.milestones only applies to the multistep schedule (schedule.name is {:?})",
                s.name
            );
        }
        if let Some(pair) = s.milestones.windows(2).find(|w| w[0] >= w[1]) {
            bail!(
                "schedule.milestones must be strictly increasing (got {:?}: {} then {})",
                s.milestones,
                pair[0],
                pair[1]
            );
        }
        if s.milestones.first() == Some(&0) {
            bail!(
                "schedule.milestones must be epochs of at least 1 (got {:?})",
                s.milestones
            );
        }
        if !(s.min_lr >= 0.0 && s.min_lr < lr) {
            bail!(
                "schedule.min_lr must be in [0, optimizer.lr) (got {})",
                s.min_lr
            );
        }
        if let Some(augment) = &self.augment {
            augment.validate()?;
        }
        check_label_smoothing(self.label_smoothing)?;
        if let Some(ema) = &self.ema {
            ema.validate()?;
        }
        s.validate_one_cycle(lr)?;
        if s.warmup_epochs >= self.epochs {
            bail!(
                "schedule.warmup_epochs ({}) must be fewer than epochs ({})",
                s.warmup_epochs,
                self.epochs
            );
        }
        Ok(())
    }

    pub fn run_dir(&self) -> RunDir {
        RunDir::new(
            self.output
                .clone()
                .unwrap_or_else(|| Path::new("runs").join(&self.model)),
        )
    }

    /// `data_dir` (or `--data-dir`), else `data.root`, else as [`resolve_data_dir`].
    pub fn data_dir(&self) -> PathBuf {
        resolve_data_dir(self.data_dir.as_deref().or(self.data.root.as_deref()))
    }

    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).context("cannot serialise the resolved config")
    }

    /// Every key of the resolved config with its value, dotted (`optimizer.lr`,
    /// `schedule.milestones`), in key order: what TensorBoard's hparams and `--resume`'s
    /// comparison see.
    pub fn flat_keys(&self) -> Result<Vec<(String, toml::Value)>> {
        let table = toml::Table::try_from(self).context("cannot serialise the resolved config")?;
        let mut out = Vec::new();
        flatten("", &table, &mut out);
        Ok(out)
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, out),
            value => out.push((name, value.clone())),
        }
    }
}

/// A TOML value, or the text itself for a bare word (`adam`, `cpu`), as a user types it.
fn parse_value(text: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("value = {text}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// Puts `value` at the dotted `key`, creating the tables on the way.
fn set_key(tree: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let mut parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.iter().any(|part| part.is_empty()) {
        bail!("'{key}' is not a key (parts are separated by single dots)");
    }
    let last = parts.pop().expect("split gives at least one part");
    let mut table = tree;
    for (depth, part) in parts.iter().enumerate() {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .with_context(|| format!("{} is a value, not a table", parts[..=depth].join(".")))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

fn check_weight_decay(weight_decay: f64) -> Result<()> {
    if !(weight_decay >= 0.0 && weight_decay.is_finite()) {
        bail!("optimizer.weight_decay must be zero or positive (got {weight_decay})");
    }
    Ok(())
}

/// `--data-dir`, else `CNNZOO_DATA`, else `./data`.
pub fn resolve_data_dir(flag: Option<&Path>) -> PathBuf {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("CNNZOO_DATA").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_without_a_schedule_table_is_valid_and_constant() {
        let config =
            TrainConfig::from_toml("model = \"resnet\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1\n")
                .unwrap();
        assert_eq!(
            config.schedule,
            TrainConfig::from_toml(
                "model = \"resnet\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1\n[schedule]\n"
            )
            .unwrap()
            .schedule
        );
        assert_eq!(config.schedule.name, ScheduleKind::Constant);
        assert_eq!(config.schedule.gamma, 0.1);
        config.validate().unwrap();
    }
}
