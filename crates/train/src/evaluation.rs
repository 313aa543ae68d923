//! Top-1, top-5 and the confusion matrix of a model over a loader: what `eval` reports and what
//! `train` records for its best epoch, counted by [`crate::accuracy`]'s rule.
use std::sync::Arc;

use anyhow::{Result, bail};
use burn::data::dataloader::DataLoader;
use burn::tensor::Device;
use cnnzoo_cifar::CifarBatch;
use cnnzoo_models::Model;
use serde::Serialize;

use crate::accuracy::{predicted_class, target_rank};
use crate::tta::Tta;

#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub top1: f64,
    pub top5: f64,
    pub n: usize,
    /// `confusion[true][predicted]` counts, of the rows whose logits were all finite.
    pub confusion: Vec<Vec<usize>>,
    /// Rows with a NaN or infinite logit: wrong at every k, and in no cell of `confusion`.
    pub nonfinite: usize,
    /// Those rows by true class.
    #[serde(skip)]
    pub nonfinite_by_class: Vec<usize>,
}

impl Evaluation {
    /// The images of class `c`, whatever their logits.
    pub fn class_total(&self, c: usize) -> usize {
        self.confusion[c].iter().sum::<usize>() + self.nonfinite_by_class[c]
    }

    /// Correct / total per true class, in percent.
    pub fn per_class(&self) -> Vec<f64> {
        (0..self.confusion.len())
            .map(|c| match self.class_total(c) {
                0 => 0.0,
                total => 100.0 * self.confusion[c][c] as f64 / total as f64,
            })
            .collect()
    }
}

/// Runs the model in inference mode over every batch of `loader`, each batch's logits with `tta`.
pub fn evaluate(
    model: &Model,
    loader: &Arc<dyn DataLoader<CifarBatch>>,
    device: &Device,
    tta: Tta,
) -> Result<Evaluation> {
    let loader = loader.to_device(device);
    let mut confusion: Vec<Vec<usize>> = Vec::new();
    let mut nonfinite_by_class: Vec<usize> = Vec::new();
    let (mut top1, mut top5, mut n) = (0usize, 0usize, 0usize);
    for batch in loader.iter() {
        let batch = batch.map_err(|e| anyhow::anyhow!("cannot read a batch: {e}"))?;
        let logits = tta.logits(model, batch.images);
        let [rows, classes] = logits.dims();
        if confusion.is_empty() {
            confusion = vec![vec![0; classes]; classes];
            nonfinite_by_class = vec![0; classes];
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
            n += 1;
            let (Some(rank), Some(predicted)) =
                (target_rank(row, target), predicted_class(row, target))
            else {
                nonfinite_by_class[target] += 1;
                continue;
            };
            top1 += usize::from(rank < 1);
            top5 += usize::from(rank < 5);
            confusion[target][predicted] += 1;
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
        nonfinite: nonfinite_by_class.iter().sum(),
        nonfinite_by_class,
    })
}
