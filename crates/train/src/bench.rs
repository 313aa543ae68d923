//! `cnnzoo bench`: training and inference throughput of the zoo's models on one device.
//!
//! The measured step is the one `train` runs: the same `Classifier` (forward, cross-entropy,
//! backward in its `TrainStep`), the same optimizer and schedule from the model's shipped recipe,
//! stepped through burn-train's `Learner` exactly as its training epoch does. Inference is the
//! `InferenceStep` of the validation snapshot (`valid()`), as burn-train's validation epoch runs
//! it. Inputs are random, so no data set is needed; the data loader is measured on its own with
//! random images through the training `EpochLoader`.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::train::{InferenceStep, Learner};
use cnnzoo_cifar::{CifarBatch, CifarDataset, CifarSet, EpochLoader, IMAGE_BYTES, Normalization};
use cnnzoo_models::{MODELS, ModelEntry, lookup};
use serde::{Deserialize, Serialize};

use crate::classifier::Classifier;
use crate::config::{OptimizerConfig, TrainConfig};
use crate::data;
use crate::device::{self, SelectedDevice};
use crate::optim;
use crate::peak_memory::peak_rss_mb;
use crate::recipes::recipe_for;
use crate::schedule::EpochSchedule;

const NUM_CLASSES: usize = 10;
/// Training images in an epoch of the reference split (45,000 of CIFAR-10's 50,000): only
/// positions the schedule's milestones, which a benchmark never reaches.
const TRAIN_IMAGES: usize = 45_000;
/// Batches of random images the loader is timed on.
const LOADER_BATCHES: usize = 16;
/// Models with a larger input are ImageNet-sized: minutes per step on a CPU.
const CIFAR_SIDE: usize = 32;

/// What `cnnzoo bench` is asked to do.
#[derive(clap::Args, Clone, Debug)]
pub struct BenchRequest {
    /// Model name (see `cnnzoo models`), or `all`; with --config, the config's model by default.
    #[arg(long, required_unless_present = "config")]
    pub model: Option<String>,
    /// A training config whose recipe (optimizer, augmentation, mixing) the bench uses instead of
    /// the model's shipped one: the loader figure is then that recipe's augmentation.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// auto, cpu, ndarray, wgpu, vulkan, metal, dx12, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Training batch size.
    #[arg(long, default_value_t = 128, value_parser = at_least_one())]
    pub batch: usize,
    /// Inference batch size.
    #[arg(long, default_value_t = 256, value_parser = at_least_one())]
    pub infer_batch: usize,
    /// Timed steps (training and inference each), after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub steps: usize,
    /// Untimed steps first (kernel selection, autotuning, allocator warm-up).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// With `--model all`, also run the ImageNet-sized models on a CPU device.
    #[arg(long)]
    pub large: bool,
    /// Print one JSON object per model.
    // How the binary prints the figures; the measurement does not depend on it.
    #[arg(long)]
    pub json: bool,
}

fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// The device and the models a bench request measures.
pub struct BenchPlan {
    pub device: SelectedDevice,
    pub models: Vec<&'static ModelEntry>,
    /// ImageNet-sized models left out of `--model all` on a CPU (without `--large`).
    pub skipped: Vec<&'static ModelEntry>,
}

/// One model's figures; a line of `cnnzoo bench --json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchFigures {
    pub model: String,
    /// The device name asked for.
    pub device: String,
    pub device_description: String,
    /// The processor, as /proc/cpuinfo names it (`None` where there is no such file).
    #[serde(default)]
    pub cpu: Option<String>,
    /// The instruction set cnnzoo's CPU kernels run (`avx512`, `avx2` or `scalar`) on the flex
    /// CPU device; `None` on the others.
    #[serde(default)]
    pub isa: Option<String>,
    pub batch: usize,
    pub infer_batch: usize,
    pub steps: usize,
    pub warmup: usize,
    pub threads: usize,
    pub optimizer: String,
    pub train_img_s: f64,
    pub train_step_ms: f64,
    /// The first warm-up step, compilation and autotuning included (`None` without warm-up).
    pub first_step_ms: Option<f64>,
    pub infer_img_s: f64,
    /// `None` for input sizes the CIFAR loader does not produce.
    pub loader_img_s: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub final_loss: f32,
}

/// Selects the device and the models to measure.
pub fn plan(request: &BenchRequest) -> Result<BenchPlan> {
    let device = device::select(&request.device)?;
    #[allow(deprecated)]
    let on_cpu = device.device == Device::flex() || device.device == Device::ndarray();
    let model = match (&request.model, &request.config) {
        (Some(model), _) => model.clone(),
        (None, Some(path)) => TrainConfig::from_file(path)?.model,
        (None, None) => bail!("give --model (or --config, whose model is then measured)"),
    };
    let (models, skipped) = if model == "all" {
        MODELS
            .iter()
            .partition(|m| request.large || !on_cpu || m.input_size <= CIFAR_SIDE)
    } else {
        (vec![lookup(&model)?], Vec::new())
    };
    Ok(BenchPlan {
        device,
        models,
        skipped,
    })
}

/// The processor's model name from /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = cpuinfo.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// Measures one model of the plan.
pub fn measure(
    entry: &'static ModelEntry,
    selected: &SelectedDevice,
    request: &BenchRequest,
) -> Result<BenchFigures> {
    bench_model(entry, selected, request).with_context(|| format!("bench of {}", entry.name))
}

/// Measures one model in a process of its own (`exe bench --model NAME --json`), so that its
/// peak memory is its own: pages the models before it freed stay in the allocator's keeping
/// (ResNet-20's peak read 614 MB after GoogLeNet's run, 241 MB alone).
pub fn measure_apart(
    exe: &Path,
    entry: &'static ModelEntry,
    request: &BenchRequest,
) -> Result<BenchFigures> {
    let numbers = [
        ("--batch", request.batch),
        ("--infer-batch", request.infer_batch),
        ("--steps", request.steps),
        ("--warmup", request.warmup),
    ];
    let mut command = Command::new(exe);
    command.args([
        "bench",
        "--model",
        entry.name,
        "--device",
        &request.device,
        "--json",
    ]);
    for (flag, value) in numbers {
        command.args([flag, &value.to_string()]);
    }
    if let Some(config) = &request.config {
        command.arg("--config").arg(config);
    }
    let output = command.stderr(Stdio::inherit()).output().with_context(|| {
        format!(
            "cannot start {} for the bench of {}",
            exe.display(),
            entry.name
        )
    })?;
    if !output.status.success() {
        bail!("the bench of {} failed ({})", entry.name, output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| {
        format!(
            "the bench of {} printed {line:?}, not its figures",
            entry.name
        )
    })
}

fn bench_model(
    entry: &'static ModelEntry,
    selected: &SelectedDevice,
    request: &BenchRequest,
) -> Result<BenchFigures> {
    let config = match &request.config {
        Some(path) => {
            let config = TrainConfig::from_file(path)?;
            config
                .validate()
                .with_context(|| format!("invalid configuration from {}", path.display()))?;
            config
        }
        None => recipe_for(entry.name)?,
    };
    let device = &selected.device;
    let autodiff = device.clone().autodiff();
    device.seed(config.seed);
    let classifier = Classifier::new(entry.config(NUM_CLASSES).init(&autodiff));
    let steps_per_epoch = (TRAIN_IMAGES / request.batch).max(1);
    let schedule = EpochSchedule::new(
        &config.schedule,
        config.optimizer.lr(),
        steps_per_epoch,
        config.epochs,
    );
    let optimizer = optim::build_optimizer(&config.optimizer, &classifier);
    let mut learner = Learner::new(classifier, optimizer, schedule);

    // Training: one batch reused, as the loader's cost is measured apart.
    let batch = random_batch(request.batch, entry.input_size, &autodiff);
    let mut loss = None;
    // The first step alone, read back: on a GPU it pays for compiling and autotuning every
    // kernel the model needs (less on a second run, whose autotune results are cached).
    let mut first_step_ms = None;
    for step in 0..request.warmup {
        let started = Instant::now();
        loss = Some(train_step(&mut learner, batch.clone()));
        if step == 0
            && let Some(first) = loss.take()
        {
            read_scalar(first)?;
            first_step_ms = Some(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    if let Some(loss) = loss.take() {
        read_scalar(loss)?;
    }
    let started = Instant::now();
    for _ in 0..request.steps {
        loss = Some(train_step(&mut learner, batch.clone()));
    }
    // Reading the last loss back waits for every queued kernel on lazy (GPU) backends.
    let final_loss = match loss {
        Some(loss) => read_scalar(loss)?,
        None => bail!("--steps must be at least 1"),
    };
    let train_time = started.elapsed();

    // Inference: the validation snapshot, as burn-train's validation epoch runs it.
    let model = learner.model().valid();
    let batch = random_batch(request.infer_batch, entry.input_size, device);
    let infer = |model: &Classifier| InferenceStep::step(model, batch.clone()).kept.loss;
    for _ in 0..request.warmup {
        read_scalar(infer(&model))?;
    }
    let started = Instant::now();
    let mut last = None;
    for _ in 0..request.steps {
        last = Some(infer(&model));
    }
    if let Some(loss) = last {
        read_scalar(loss)?;
    }
    let infer_time = started.elapsed();

    let loader_img_s = loader_rate(request.batch, entry.input_size, &config, &autodiff)?;
    Ok(BenchFigures {
        model: entry.name.to_string(),
        device: request.device.clone(),
        device_description: selected.description.clone(),
        cpu: cpu_model(),
        isa: (selected.device == Device::flex())
            .then(|| cnnzoo_flex_kernels::isa::active().name().to_string()),
        batch: request.batch,
        infer_batch: request.infer_batch,
        steps: request.steps,
        warmup: request.warmup,
        threads: threads(),
        optimizer: match config.optimizer {
            OptimizerConfig::Sgd { .. } => "sgd",
            OptimizerConfig::Adamw { .. } => "adamw",
        }
        .to_string(),
        train_img_s: rate(request.batch * request.steps, train_time),
        train_step_ms: train_time.as_secs_f64() * 1e3 / request.steps as f64,
        first_step_ms,
        infer_img_s: rate(request.infer_batch * request.steps, infer_time),
        loader_img_s,
        peak_rss_mb: peak_rss_mb(),
        final_loss,
    })
}

/// Forward, loss and backward (`TrainStep`), then the schedule and optimizer steps, in the
/// order of burn-train's single-device training epoch. Returns the loss, still on the device.
fn train_step(learner: &mut Learner<Classifier>, batch: CifarBatch) -> Tensor<1> {
    let output = learner.train_step(batch);
    learner.lr_step();
    learner.optimizer_step(output.grads);
    output.item.loss
}

fn read_scalar(tensor: Tensor<1>) -> Result<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the loss back from the device: {e:?}"))?
        .first()
        .copied()
        .context("the loss tensor is empty")
}

/// Standard-normal images and labels cycling through the classes.
fn random_batch(size: usize, side: usize, device: &Device) -> CifarBatch {
    let images = Tensor::random(
        [size, 3, side, side],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let labels: Vec<i64> = (0..size).map(|i| (i % NUM_CLASSES) as i64).collect();
    let targets = Tensor::from_data(TensorData::new(labels, [size]), device);
    CifarBatch {
        images,
        targets,
        soft_targets: None,
    }
}

/// Augmented training batches per second of the training loader (`train`'s workers, the
/// recipe's augmentation and mixing, normalisation, upload to the device) over random 32x32
/// images; `None` for other input sizes, which the CIFAR loader does not produce.
fn loader_rate(
    batch: usize,
    side: usize,
    config: &TrainConfig,
    device: &Device,
) -> Result<Option<f64>> {
    if side != CIFAR_SIDE {
        return Ok(None);
    }
    let count = batch * LOADER_BATCHES;
    // A cheap deterministic byte pattern: the augmentation's cost does not depend on the pixels.
    let images = (0..count * IMAGE_BYTES)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let set = CifarSet::cifar(
        images,
        (0..count).map(|i| (i % NUM_CLASSES) as u8).collect(),
        (0..NUM_CLASSES).map(|c| format!("class{c}")).collect(),
    );
    let loader = EpochLoader::train_with(
        CifarDataset::new(set),
        data::train_batcher(config, NUM_CLASSES, Normalization::CIFAR10)?,
        batch,
        config.workers,
        device,
    )?;
    let epoch = |loader: &EpochLoader| -> Result<Duration> {
        let started = Instant::now();
        for batch in loader.iter() {
            batch.map_err(|e| anyhow::anyhow!("the loader failed: {e}"))?;
        }
        Ok(started.elapsed())
    };
    epoch(&loader)?;
    let best = epoch(&loader)?.min(epoch(&loader)?);
    Ok(Some(rate(loader.num_items(), best)))
}

fn rate(images: usize, time: Duration) -> f64 {
    images as f64 / time.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// The threads the CPU backend and the loaders may use.
pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
