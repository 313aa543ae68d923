//! `cnnzoo predict`: the top classes of image files under a checkpoint.
//!
//! Each file is decoded, resized and centre-cropped as the data crate's `decode` module does
//! (torchvision's `Resize(input / crop_pct)` + `CenterCrop(input)`: a folder data set's
//! evaluation protocol, and for CIFAR checkpoints the shorter side straight to the input size),
//! and normalised with the checkpoint's dataset statistics. A file that cannot be read is
//! reported by name and the others are still predicted; the command then fails.
use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use cnnzoo_cifar::{Normalization, RgbImage, normalize_into, read_image, resize_center_crop};
use serde::Serialize;

use crate::checkpoint::{self, DatasetInfo};
use crate::device;
use crate::run_dir;

/// Images per forward pass: bounds memory for long file lists.
const BATCH: usize = 64;

/// What `cnnzoo predict` is asked to do.
#[derive(clap::Args, Clone, Debug)]
pub struct PredictRequest {
    /// A checkpoint written by `cnnzoo train` (best.bpk) or `cnnzoo import`, or a run folder
    /// (its best.bpk).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Image files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    pub top_k: usize,
    /// Print one JSON object.
    // How the binary prints the report; the predictions do not depend on it.
    #[arg(long)]
    pub json: bool,
    /// auto, cpu, ndarray, wgpu, vulkan, metal, dx12, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Ranked {
    pub class: String,
    pub index: usize,
    pub probability: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub file: PathBuf,
    /// The most probable classes, most probable first.
    pub top: Vec<Ranked>,
}

/// A file that could not be predicted.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub file: PathBuf,
    /// What went wrong, naming the file.
    pub message: String,
}

/// The predictions of every image file; serialises to `cnnzoo predict --json`.
#[derive(Clone, Debug, Serialize)]
pub struct PredictReport {
    pub checkpoint: PathBuf,
    pub model: String,
    pub predictions: Vec<Prediction>,
    pub errors: Vec<Failure>,
}

impl PredictReport {
    /// Fails, naming them, when some files could not be predicted.
    pub fn ensure_every_file_predicted(&self) -> Result<()> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = self
            .errors
            .iter()
            .map(|f| f.file.display().to_string())
            .collect();
        bail!(
            "{} of {} files could not be predicted: {}",
            self.errors.len(),
            self.errors.len() + self.predictions.len(),
            names.join(", ")
        );
    }
}

/// Predicts every file that is an image; the others are reported in the result, not as an error.
pub fn run(request: &PredictRequest) -> Result<PredictReport> {
    if request.top_k == 0 {
        bail!("--top-k must be at least 1");
    }
    let selected = device::select(&request.device)?;
    let checkpoint_file = run_dir::checkpoint_of(&request.checkpoint);
    let (classifier, meta) = checkpoint::load(&checkpoint_file, &selected.device)?;
    let dataset = &meta.dataset;

    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for file in &request.files {
        match read_image(file).map(|image| prepare(&image, dataset)) {
            Ok(pixels) => inputs.push((file.clone(), pixels)),
            Err(error) => errors.push(Failure {
                file: file.clone(),
                message: format!("{}: {error}", file.display()),
            }),
        }
    }

    let side = dataset.input_size;
    let mut predictions = Vec::new();
    for chunk in inputs.chunks(BATCH) {
        let pixels: Vec<f32> = chunk.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let images = Tensor::<1>::from_floats(pixels.as_slice(), &selected.device).reshape([
            chunk.len(),
            3,
            side,
            side,
        ]);
        let probabilities = softmax(classifier.inference_model().forward(images), 1)
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("cannot read the probabilities: {e:?}"))?;
        let classes = probabilities.len() / chunk.len();
        for ((file, _), row) in chunk.iter().zip(probabilities.chunks(classes)) {
            predictions.push(Prediction {
                file: file.clone(),
                top: top_k(row, request.top_k, &dataset.classes),
            });
        }
    }
    Ok(PredictReport {
        checkpoint: checkpoint_file,
        model: meta.model,
        predictions,
        errors,
    })
}

/// The `k` most probable classes, most probable first (all of them if there are fewer).
fn top_k(row: &[f32], k: usize, names: &[String]) -> Vec<Ranked> {
    let mut order: Vec<usize> = (0..row.len()).collect();
    order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(k)
        .map(|index| Ranked {
            class: names
                .get(index)
                .cloned()
                .unwrap_or_else(|| index.to_string()),
            index,
            probability: f64::from(row[index]),
        })
        .collect()
}

/// The model's input: the image as evaluation sees it (see [`DatasetInfo::eval_resize`]),
/// normalised with the checkpoint's statistics, channels first.
fn prepare(image: &RgbImage, dataset: &DatasetInfo) -> Vec<f32> {
    let side = dataset.input_size;
    let pixels = resize_center_crop(image, dataset.eval_resize(), side);
    let mut out = vec![0f32; pixels.len()];
    let normalization = Normalization {
        mean: dataset.mean,
        std: dataset.std,
    };
    normalize_into(&pixels, &normalization, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_input_is_the_normalised_evaluation_crop() {
        let image = RgbImage {
            width: 4,
            height: 4,
            pixels: (0..16u8).flat_map(|v| [v * 10, 0, 255 - v * 10]).collect(),
        };
        let dataset = DatasetInfo {
            name: "folder".into(),
            labels: crate::data::Labels::Fine,
            classes: vec![],
            mean: [0.5; 3],
            std: [0.25; 3],
            input_size: 2,
            crop_pct: Some(0.5),
            root: None,
            skip_bad_images: false,
        };
        // Resized to 2 / 0.5 = 4 (unchanged), then the centre 2x2: red 50, 60, 90, 100.
        let input = prepare(&image, &dataset);
        for (value, red) in input.iter().zip([50.0f32, 60.0, 90.0, 100.0]) {
            let want = (red / 255.0 - 0.5) / 0.25;
            assert!((value - want).abs() < 1e-5, "{value} vs {want}");
        }
    }

    #[test]
    fn top_k_orders_by_probability_and_stops_at_the_class_count() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let top = top_k(&[0.2, 0.5, 0.3], 5, &names);
        let classes: Vec<&str> = top.iter().map(|r| r.class.as_str()).collect();
        assert_eq!(classes, ["b", "c", "a"]);
        assert_eq!(top[0].index, 1);
        assert!((top[0].probability - 0.5).abs() < 1e-7);
    }
}
