//! `cnnzoo predict`: the top classes of image files under a checkpoint.
//!
//! Each file is decoded (PNG, JPEG, BMP or WebP, recognised from its content), converted to RGB
//! (grey replicated, alpha dropped, as PIL's `convert("RGB")` does), its shorter side resized to
//! the model's input size with bilinear filtering (widened when shrinking, as PIL and
//! torchvision do, so a large photo is averaged rather than sampled), centre-cropped to a square
//! (torchvision's `Resize(size)` + `CenterCrop(size)`), and normalised with the checkpoint's
//! dataset statistics. A file that cannot be read is reported by name and the others are still
//! predicted; the command then fails.
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use serde::Serialize;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

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
    /// auto, cpu, ndarray, wgpu, vulkan, metal or dx12.
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

/// An 8-bit RGB image, rows top to bottom.
#[derive(Debug)]
struct Rgb {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

fn read_image(path: &Path) -> Result<Rgb, String> {
    if path.is_dir() {
        return Err("is a folder, not an image".into());
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => format!("cannot read the file: {e}"),
    })?;
    decode(&bytes)
}

/// Decodes by content, whatever the file is called.
fn decode(bytes: &[u8]) -> Result<Rgb, String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let options = DecoderOptions::default().png_set_strip_to_8bit(true);
        let mut decoder = zune_png::PngDecoder::new_with_options(ZCursor::new(bytes), options);
        let pixels = decoder.decode_raw().map_err(|e| undecodable("PNG", e))?;
        let (width, height) = decoder.dimensions().unwrap_or_default();
        to_rgb(width, height, pixels, decoder.colorspace(), "PNG")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
        let pixels = decoder.decode().map_err(|e| undecodable("JPEG", e))?;
        let (width, height) = decoder
            .info()
            .map(|i| (usize::from(i.width), usize::from(i.height)))
            .unwrap_or_default();
        to_rgb(width, height, pixels, decoder.output_colorspace(), "JPEG")
    } else if bytes.starts_with(b"BM") {
        let mut decoder = zune_bmp::BmpDecoder::new(ZCursor::new(bytes));
        let pixels = decoder
            .decode()
            .map_err(|e| undecodable("BMP", format!("{e:?}")))?;
        let (width, height) = decoder.dimensions().unwrap_or_default();
        to_rgb(width, height, pixels, decoder.colorspace(), "BMP")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        let webp_error = |e: image_webp::DecodingError| undecodable("WebP", e);
        let mut decoder =
            image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).map_err(webp_error)?;
        let (width, height) = decoder.dimensions();
        let mut pixels = vec![0; decoder.output_buffer_size().unwrap_or_default()];
        decoder.read_image(&mut pixels).map_err(webp_error)?;
        let colorspace = if decoder.has_alpha() {
            ColorSpace::RGBA
        } else {
            ColorSpace::RGB
        };
        to_rgb(
            width as usize,
            height as usize,
            pixels,
            Some(colorspace),
            "WebP",
        )
    } else {
        Err("not an image cnnzoo reads (PNG, JPEG, BMP or WebP)".into())
    }
}

/// The decoders' messages carry quotes and trailing newlines; the user gets one clean line.
fn undecodable(format: &str, detail: impl std::fmt::Display) -> String {
    let detail = detail.to_string();
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "cannot decode the {format} image: {}",
        detail.trim_matches('"')
    )
}

/// Grey is replicated and alpha dropped; other colour spaces are refused rather than guessed.
fn to_rgb(
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    colorspace: Option<ColorSpace>,
    format: &str,
) -> Result<Rgb, String> {
    let colorspace = colorspace.unwrap_or(ColorSpace::Unknown);
    let channels = colorspace.num_components();
    if width == 0 || height == 0 || pixels.len() != width * height * channels {
        return Err(format!(
            "the {format} image decodes to {} bytes, not {width}x{height} pixels of {colorspace:?}",
            pixels.len()
        ));
    }
    // Where red, green and blue sit among a pixel's `channels` bytes.
    let [r, g, b] = match colorspace {
        ColorSpace::RGB | ColorSpace::RGBA => [0, 1, 2],
        ColorSpace::BGR | ColorSpace::BGRA => [2, 1, 0],
        ColorSpace::ARGB => [1, 2, 3],
        ColorSpace::Luma | ColorSpace::LumaA => [0, 0, 0],
        other => {
            return Err(format!(
                "the {format} image is in the {other:?} colour space, which cnnzoo does not convert"
            ));
        }
    };
    let rgb: Vec<u8> = if colorspace == ColorSpace::RGB {
        // Already in order: kept as decoded, without a copy.
        pixels
    } else {
        pixels
            .chunks_exact(channels)
            .flat_map(|p| [p[r], p[g], p[b]])
            .collect()
    };
    Ok(Rgb {
        width,
        height,
        pixels: rgb,
    })
}

/// The model's input: shorter side resized to `input_size`, centre crop, normalised, channels
/// first.
fn prepare(image: &Rgb, dataset: &DatasetInfo) -> Vec<f32> {
    let side = dataset.input_size;
    // torchvision's Resize(int): the shorter side becomes `side`, the longer keeps the aspect
    // ratio (truncated); CenterCrop then rounds its offsets half to even.
    let (short, long) = if image.width <= image.height {
        (image.width, image.height)
    } else {
        (image.height, image.width)
    };
    let long_resized = ((side * long) / short).max(side);
    let (width, height) = if image.width <= image.height {
        (side, long_resized)
    } else {
        (long_resized, side)
    };
    let left = ((width - side) as f64 / 2.0).round_ties_even() as usize;
    let top = ((height - side) as f64 / 2.0).round_ties_even() as usize;

    let columns = filter(image.width, width);
    let rows = filter(image.height, height);
    let mut out = vec![0f32; 3 * side * side];
    // Horizontal pass over every source row, for the kept columns only.
    let mut horizontal = vec![0f32; image.height * side * 3];
    for y in 0..image.height {
        let row = &image.pixels[y * image.width * 3..(y + 1) * image.width * 3];
        for x in 0..side {
            let (first, weights) = &columns[left + x];
            let mut sum = [0f32; 3];
            for (w, p) in weights.iter().zip(row[first * 3..].chunks_exact(3)) {
                for (s, &v) in sum.iter_mut().zip(p) {
                    *s += w * f32::from(v);
                }
            }
            // PIL rounds to 8 bits after each pass; so does this, to give torchvision's input.
            horizontal[(y * side + x) * 3..(y * side + x) * 3 + 3]
                .copy_from_slice(&sum.map(|v| v.round().clamp(0.0, 255.0)));
        }
    }
    for y in 0..side {
        let (first, weights) = &rows[top + y];
        for x in 0..side {
            for c in 0..3 {
                let value: f32 = weights
                    .iter()
                    .enumerate()
                    .map(|(i, w)| w * horizontal[((first + i) * side + x) * 3 + c])
                    .sum();
                let value = value.round().clamp(0.0, 255.0) / 255.0;
                out[(c * side + y) * side + x] = (value - dataset.mean[c]) / dataset.std[c];
            }
        }
    }
    out
}

/// Bilinear (triangle) filter weights from `from` samples to `to`, PIL's way: sample centres at
/// half-pixel offsets, and when shrinking the triangle widened by the scale, so every source
/// pixel contributes. Per output sample: the first source index and the normalised weights.
fn filter(from: usize, to: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = from as f64 / to as f64;
    let widen = scale.max(1.0);
    (0..to)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let first = (centre - widen + 0.5).floor().max(0.0) as usize;
            let end = ((centre + widen + 0.5).floor() as usize).clamp(first + 1, from);
            let weights: Vec<f64> = (first..end)
                .map(|j| (1.0 - ((j as f64 - centre + 0.5) / widen).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            let weights = weights
                .iter()
                .map(|w| {
                    if total > 0.0 {
                        (w / total) as f32
                    } else {
                        1.0 / weights.len() as f32
                    }
                })
                .collect();
            (first, weights)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(side: usize) -> DatasetInfo {
        DatasetInfo {
            name: "test".into(),
            labels: crate::data::Labels::Fine,
            classes: vec![],
            mean: [0.0; 3],
            std: [1.0; 3],
            input_size: side,
        }
    }

    #[test]
    fn a_uniform_image_stays_uniform_at_any_size() {
        for (w, h) in [(7, 5), (32, 32), (100, 40), (3, 90)] {
            let image = Rgb {
                width: w,
                height: h,
                pixels: [51u8, 102, 204].repeat(w * h),
            };
            let out = prepare(&image, &dataset(8));
            for (c, want) in [0.2f32, 0.4, 0.8].iter().enumerate() {
                for v in &out[c * 64..(c + 1) * 64] {
                    assert!((v - want).abs() < 1e-5, "{w}x{h}: {v} vs {want}");
                }
            }
        }
    }

    #[test]
    fn same_size_is_the_identity_and_shrinking_uses_pils_weights() {
        let pixels: Vec<u8> = (0..16u8).flat_map(|v| [v * 10, 0, 255 - v * 10]).collect();
        let image = Rgb {
            width: 4,
            height: 4,
            pixels,
        };
        let same = prepare(&image, &dataset(4));
        // The red plane (channels first) is the pixel values, in order.
        for (i, value) in same.iter().take(16).enumerate() {
            assert!((value - (i as f32 * 10.0) / 255.0).abs() < 1e-6);
        }
        // 4 -> 2: the triangle widened to +-2 pixels around the output's centre (source
        // position 1.0) weighs pixels 0, 1, 2 by 0.75, 0.75, 0.25, normalised to 3/7, 3/7, 1/7
        // along each axis. Red is 40y + 10x: the horizontal pass gives 40y + 50/7, rounded to
        // 40y + 7, and the vertical one (3 * 7 + 3 * 47 + 87) / 7 = 35.57, rounded to 36.
        let half = prepare(&image, &dataset(2));
        assert!((half[0] - 36.0 / 255.0).abs() < 1e-6, "{}", half[0] * 255.0);
    }

    #[test]
    fn the_centre_of_a_wide_image_is_kept() {
        // 3 wide, 1 high, to 1x1: the middle column only.
        let image = Rgb {
            width: 3,
            height: 1,
            pixels: vec![0, 0, 0, 255, 255, 255, 0, 0, 0],
        };
        let out = prepare(&image, &dataset(1));
        assert_eq!(out, vec![1.0, 1.0, 1.0]);
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

    #[test]
    fn files_are_recognised_by_content() {
        assert!(
            decode(b"hello, world")
                .unwrap_err()
                .contains("PNG, JPEG, BMP or WebP")
        );
        assert!(
            decode(b"\x89PNG\r\n\x1a\nbroken")
                .unwrap_err()
                .contains("cannot decode the PNG")
        );
        assert!(
            decode(&[0xFF, 0xD8, 0xFF, 0, 1])
                .unwrap_err()
                .contains("JPEG")
        );
    }
}
