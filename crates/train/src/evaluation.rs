//! Top-1, top-5 and the confusion matrix of a model over a loader: what `eval` reports and what
//! `train` records for its best epoch.
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use cnnzoo_cifar::CifarBatch;
use cnnzoo_models::Model;
use serde::Serialize;

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
