//! `cnnzoo eval`: top-1, top-5 and per-class accuracy of a checkpoint on one split.
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use cnnzoo_cifar::CifarBatch;
use cnnzoo_models::Model;
use serde::Serialize;

use crate::atomic;
use crate::checkpoint;
use crate::data;
use crate::device;
use crate::report;

#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub top1: f64,
    pub top5: f64,
    pub n: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

impl Evaluation {
    /// Correct / total per true class, in percent.
    pub fn per_class(&self) -> Vec<f64> {
        self.confusion
            .iter()
            .enumerate()
            .map(|(c, row)| {
                let total: usize = row.iter().sum();
                if total == 0 {
                    0.0
                } else {
                    100.0 * row[c] as f64 / total as f64
                }
            })
            .collect()
    }
}

/// Runs the model in inference mode over every batch of `loader`.
pub fn evaluate(
    model: &Model,
    loader: &Arc<dyn DataLoader<CifarBatch>>,
    device: &Device,
) -> Result<Evaluation> {
    let loader = loader.to_device(device);
    let mut confusion: Vec<Vec<usize>> = Vec::new();
    let (mut top1, mut top5, mut n) = (0usize, 0usize, 0usize);
    for batch in loader.iter() {
        let batch = batch.map_err(|e| anyhow::anyhow!("cannot read a batch: {e}"))?;
        let logits = model.forward(batch.images);
        let [rows, classes] = logits.dims();
        if confusion.is_empty() {
            confusion = vec![vec![0; classes]; classes];
        }
        let logits = logits
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("cannot read logits: {e:?}"))?;
        let targets = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| anyhow::anyhow!("cannot read labels: {e:?}"))?;
        for (row, &target) in logits.chunks(classes).zip(&targets).take(rows) {
            let target = target as usize;
            let rank = row.iter().filter(|&&v| v > row[target]).count();
            top1 += usize::from(rank == 0);
            top5 += usize::from(rank < 5);
            let predicted = argmax(row);
            confusion[target][predicted] += 1;
            n += 1;
        }
    }
    if n == 0 {
        bail!("the split holds no images to evaluate");
    }
    Ok(Evaluation {
        top1: 100.0 * top1 as f64 / n as f64,
        top5: 100.0 * top5 as f64 / n as f64,
        n,
        confusion,
    })
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}

pub struct EvalRequest {
    pub checkpoint: PathBuf,
    pub split: data::Split,
    pub data_dir: Option<PathBuf>,
    pub device: String,
    pub batch_size: usize,
    pub json: bool,
    /// Where to draw the confusion heat map (PNG).
    pub confusion: Option<PathBuf>,
}

pub fn run(request: EvalRequest) -> Result<()> {
    if let Some(path) = &request.confusion {
        check_writable(path)?;
    }
    let selected = device::select(&request.device)?;
    let (classifier, meta) = checkpoint::load(&request.checkpoint, &selected.device)?;
    let data_dir = crate::config::resolve_data_dir(request.data_dir.as_deref());
    let data = data::load_cifar10(&data_dir, meta.val_fraction, meta.split_seed)?;
    let set = data.split(request.split)?;
    let loader = data::eval_loader(set, request.batch_size, &selected.device)?;
    let result = evaluate(&classifier.model, &loader, &selected.device)?;
    if let Some(path) = &request.confusion {
        let classes = &meta.dataset.classes;
        let mut title = format!(
            "{} on the {} split: top-1 {:.2}% of {} images",
            meta.model,
            request.split.name(),
            result.top1,
            crate::models_cmd::group_thousands(result.n)
        );
        if matches!(request.split, data::Split::Test)
            && let Some(reference) = report::reference_test_top1(&meta.model, classes.len())
        {
            title.push_str(&format!(" (SPEC §4 reference {reference:.2}%)"));
        }
        let png = report::confusion_png(&result, classes, &title)?;
        atomic::write_bytes(path, &png)
            .with_context(|| format!("cannot write the confusion heat map {}", path.display()))?;
    }
    if request.json {
        let per_class: serde_json::Map<String, serde_json::Value> = meta
            .dataset
            .classes
            .iter()
            .zip(result.per_class())
            .map(|(c, a)| (c.clone(), serde_json::json!(a)))
            .collect();
        let out = serde_json::json!({
            "checkpoint": request.checkpoint,
            "model": meta.model,
            "split": request.split.name(),
            "top1": result.top1,
            "top5": result.top5,
            "n": result.n,
            "per_class": per_class,
            "confusion": result.confusion,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} ({}) on the {} split, {} images:",
        request.checkpoint.display(),
        meta.model,
        request.split.name(),
        result.n
    );
    println!("top-1 {:.2}%  top-5 {:.2}%", result.top1, result.top5);
    println!("{:<12} {:>9} {:>14}", "class", "accuracy", "correct/total");
    for ((class, accuracy), (c, row)) in meta
        .dataset
        .classes
        .iter()
        .zip(result.per_class())
        .zip(result.confusion.iter().enumerate())
    {
        let correct = format!("{}/{}", row[c], row.iter().sum::<usize>());
        println!("{class:<12} {accuracy:>8.2}% {correct:>14}");
    }
    if let Some(path) = &request.confusion {
        println!("confusion heat map: {}", path.display());
    }
    Ok(())
}

/// Fails before the evaluation, not after it, when the picture could not be written.
fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!(
            "--confusion {}: is a folder; name a .png file",
            path.display()
        );
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        bail!(
            "--confusion {}: the folder {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}
