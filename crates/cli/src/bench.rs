//! `cnnzoo bench`: training and inference throughput of the zoo's models on one device.
//!
//! The measured step is the one `train` runs: the same `Classifier` (forward, cross-entropy,
//! backward in its `TrainStep`), the same optimizer and schedule from the model's shipped recipe,
//! stepped through burn-train's `Learner` exactly as its training epoch does. Inference is the
//! `InferenceStep` of the validation snapshot (`valid()`), as burn-train's validation epoch runs
//! it. Inputs are random, so no data set is needed; the data loader is measured on its own with
//! random images through the training `EpochLoader`.
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::train::{InferenceStep, Learner};
use cnnzoo_cifar::{CifarBatch, CifarDataset, CifarSet, EpochLoader, IMAGE_BYTES};
use cnnzoo_models::{MODELS, ModelEntry, lookup};
use serde_json::json;

use crate::classifier::Classifier;
use crate::config::TrainConfig;
use crate::device::{self, SelectedDevice};
use crate::optim;
use crate::schedule::EpochSchedule;

const NUM_CLASSES: usize = 10;
/// Training images in an epoch of the reference split (45,000 of CIFAR-10's 50,000): only
/// positions the schedule's milestones, which a benchmark never reaches.
const TRAIN_IMAGES: usize = 45_000;
/// Batches of random images the loader is timed on.
const LOADER_BATCHES: usize = 16;
/// Models with a larger input are ImageNet-sized: minutes per step on a CPU.
const CIFAR_SIDE: usize = 32;

pub struct BenchRequest {
    /// A registry name, or `all`.
    pub model: String,
    pub device: String,
    pub batch: usize,
    pub infer_batch: usize,
    pub steps: usize,
    pub warmup: usize,
    /// Also run ImageNet-sized models on a CPU device with `--model all`.
    pub large: bool,
    pub json: bool,
}

/// One model's figures.
struct Figures {
    train_img_s: f64,
    train_step_ms: f64,
    infer_img_s: f64,
    /// `None` for input sizes the CIFAR loader does not produce.
    loader_img_s: Option<f64>,
    peak_rss_mb: Option<f64>,
    final_loss: f32,
}

pub fn run(request: BenchRequest) -> Result<()> {
    let selected = device::select(&request.device)?;
    #[allow(deprecated)]
    let on_cpu = selected.device == Device::flex() || selected.device == Device::ndarray();
    let (entries, skipped): (Vec<&ModelEntry>, Vec<&ModelEntry>) = if request.model == "all" {
        MODELS
            .iter()
            .partition(|m| request.large || !on_cpu || m.input_size <= CIFAR_SIDE)
    } else {
        (vec![lookup(&request.model)?], Vec::new())
    };
    if !request.json {
        println!(
            "cnnzoo bench on {}: batch {}, inference batch {}, {} warm-up + {} timed steps, {} threads",
            selected.description,
            request.batch,
            request.infer_batch,
            request.warmup,
            request.steps,
            threads()
        );
    }
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|m| m.name).collect();
        eprintln!(
            "note: skipped the ImageNet-sized models on the CPU ({}); add --large to run them",
            names.join(", ")
        );
    }
    for entry in entries {
        let figures = bench_model(entry, &selected, &request)
            .with_context(|| format!("bench of {}", entry.name))?;
        if request.json {
            let line = json!({
                "model": entry.name,
                "device": request.device,
                "device_description": selected.description,
                "batch": request.batch,
                "infer_batch": request.infer_batch,
                "steps": request.steps,
                "warmup": request.warmup,
                "threads": threads(),
                "optimizer": optimizer_name(entry),
                "train_img_s": figures.train_img_s,
                "train_step_ms": figures.train_step_ms,
                "infer_img_s": figures.infer_img_s,
                "loader_img_s": figures.loader_img_s,
                "peak_rss_mb": figures.peak_rss_mb,
                "final_loss": figures.final_loss,
            });
            println!("{line}");
        } else {
            let loader = figures.loader_img_s.map_or_else(
                || "n/a".into(),
                |r| format!("{r:.0} img/s ({:.0}x train)", r / figures.train_img_s),
            );
            println!(
                "{:<14} train {:>8.1} img/s ({:.0} ms/step)  infer {:>8.1} img/s  loader {loader}  peak RSS {}",
                entry.name,
                figures.train_img_s,
                figures.train_step_ms,
                figures.infer_img_s,
                figures
                    .peak_rss_mb
                    .map_or_else(|| "unknown".into(), |mb| format!("{mb:.0} MB"))
            );
        }
    }
    Ok(())
}

fn bench_model(
    entry: &ModelEntry,
    selected: &SelectedDevice,
    request: &BenchRequest,
) -> Result<Figures> {
    reset_peak_rss();
    let config = TrainConfig::recipe_for(entry.name);
    let device = &selected.device;
    let autodiff = device.clone().autodiff();
    device.seed(config.seed);
    let classifier = Classifier {
        model: entry.config(NUM_CLASSES).init(&autodiff),
    };
    let steps_per_epoch = (TRAIN_IMAGES / request.batch).max(1);
    let schedule = EpochSchedule::new(
        &config.schedule,
        config.optimizer.lr(),
        steps_per_epoch,
        config.epochs,
    );
    let mut learner = Learner::new(
        classifier,
        optim::build_optimizer(&config.optimizer),
        schedule,
    );

    // Training: one batch reused, as the loader's cost is measured apart.
    let batch = random_batch(request.batch, entry.input_size, &autodiff);
    let mut loss = None;
    for _ in 0..request.warmup {
        loss = Some(train_step(&mut learner, batch.clone()));
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
    let infer = |model: &Classifier| InferenceStep::step(model, batch.clone()).loss;
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
    Ok(Figures {
        train_img_s: rate(request.batch * request.steps, train_time),
        train_step_ms: train_time.as_secs_f64() * 1e3 / request.steps as f64,
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
    CifarBatch { images, targets }
}

/// Augmented training batches per second of the training loader (`train`'s workers, flip +
/// random resized crop + normalisation, upload to the device) over random 32x32 images; `None`
/// for other input sizes, which the CIFAR loader does not produce.
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
    let set = CifarSet {
        images,
        labels: (0..count).map(|i| (i % NUM_CLASSES) as u8).collect(),
        classes: (0..NUM_CLASSES).map(|c| format!("class{c}")).collect(),
    };
    let loader = EpochLoader::train(
        CifarDataset::new(set),
        batch,
        config.workers,
        config.seed,
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

fn optimizer_name(entry: &ModelEntry) -> &'static str {
    match TrainConfig::recipe_for(entry.name).optimizer {
        crate::config::OptimizerConfig::Sgd { .. } => "sgd",
        crate::config::OptimizerConfig::Adamw { .. } => "adamw",
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Linux resets the peak resident set size (`VmHWM`) when "5" is written to `clear_refs`, so each
/// model of `--model all` reports its own peak; elsewhere the peak stays the process's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
