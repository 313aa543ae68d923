//! Training augmentation and normalisation of single square RGB images (CIFAR's 3x32x32 or a
//! folder data set's) on the CPU.
//!
//! The random choices follow torchvision (`RandomHorizontalFlip`, then
//! `RandomResizedCrop.get_params`), and the resampling follows PyTorch's bilinear
//! `interpolate(..., align_corners=False)` on float data, with the flip folded into the source
//! coordinates and the normalisation into the write, so each output value is computed once.

use rand::{Rng, RngExt};

use crate::seed::{Purpose, rng_for};
use crate::set::{CHANNELS, CifarSet, IMAGE_SIDE};

/// Per-channel mean of the CIFAR-10 training images scaled to [0, 1] (SPEC §3).
#[allow(
    clippy::excessive_precision,
    reason = "the SPEC's digits as published, rounded to f32 by the compiler"
)]
pub const CIFAR10_MEAN: [f32; 3] = [0.491_399_68, 0.482_158_41, 0.446_530_91];
/// Per-channel standard deviation of the CIFAR-10 training images scaled to [0, 1] (SPEC §3).
pub const CIFAR10_STD: [f32; 3] = [0.247_032_23, 0.243_485_13, 0.261_587_84];

/// Per-channel normalisation applied after scaling pixels to [0, 1]: `(x / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalization {
    /// Mean per channel (R, G, B).
    pub mean: [f32; 3],
    /// Standard deviation per channel (R, G, B).
    pub std: [f32; 3],
}

impl Normalization {
    /// The SPEC's CIFAR-10 statistics.
    pub const CIFAR10: Self = Self {
        mean: CIFAR10_MEAN,
        std: CIFAR10_STD,
    };

    /// Scaling to [0, 1] only.
    pub const UNIT: Self = Self {
        mean: [0.0; 3],
        std: [1.0; 3],
    };

    /// Mean and (population) standard deviation per channel of `set`, as the reference
    /// computes them from the training images; use it for CIFAR-100.
    pub fn from_set(set: &CifarSet) -> Self {
        let mut statistics = ChannelStatistics::default();
        for image in set.images.chunks_exact(set.image_bytes().max(1)) {
            statistics.add(image);
        }
        statistics.normalization()
    }

    /// `(x / 255 - mean) / std` as one multiply-add `x * scale + offset` per channel, which
    /// keeps divisions out of the per-pixel loops (within a few ulp of the two-step formula).
    fn affine(&self) -> Affine {
        let mut affine = Affine {
            scale: [1.0; 3],
            offset: [0.0; 3],
        };
        for (channel, (mean, std)) in self.mean.iter().zip(&self.std).enumerate() {
            affine.scale[channel] = 1.0 / (255.0 * std);
            affine.offset[channel] = -mean / std;
        }
        affine
    }

    /// The normalised value of a pixel value in [0, 255] of `channel`.
    pub fn apply(&self, channel: usize, value: f32) -> f32 {
        let affine = self.affine();
        value * affine.scale[channel] + affine.offset[channel]
    }
}

/// Running sums of the pixel values per channel of square CHW images, for their mean and
/// standard deviation.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChannelStatistics {
    sums: [u64; 3],
    squares: [u64; 3],
    pixels_per_channel: u64,
}

impl ChannelStatistics {
    pub(crate) fn add(&mut self, image: &[u8]) {
        let plane_pixels = image.len() / CHANNELS;
        for (channel, plane) in image.chunks_exact(plane_pixels.max(1)).enumerate() {
            for &pixel in plane {
                let pixel = u64::from(pixel);
                self.sums[channel] += pixel;
                self.squares[channel] += pixel * pixel;
            }
        }
        self.pixels_per_channel += plane_pixels as u64;
    }

    /// The population statistics scaled to [0, 1]; a constant channel keeps std 1 rather than
    /// dividing by zero.
    pub(crate) fn normalization(&self) -> Normalization {
        let count = self.pixels_per_channel.max(1) as f64;
        let mut normalization = Normalization::UNIT;
        let statistics = normalization.mean.iter_mut().zip(&mut normalization.std);
        for ((mean, std), (&sum, &square)) in statistics.zip(self.sums.iter().zip(&self.squares)) {
            let m = sum as f64 / count;
            let variance = (square as f64 / count - m * m).max(0.0);
            *mean = (m / 255.0) as f32;
            if variance > 0.0 {
                *std = (variance.sqrt() / 255.0) as f32;
            }
        }
        normalization
    }
}

/// `x * scale + offset` per channel.
#[derive(Debug, Clone, Copy)]
struct Affine {
    scale: [f32; 3],
    offset: [f32; 3],
}

impl Affine {
    /// Leaves values as they are, exactly.
    const IDENTITY: Self = Self {
        scale: [1.0; 3],
        offset: [0.0; 3],
    };
}

/// A rectangle in pixels: a crop, or the box that erasing, cutout or CutMix overwrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CropParams {
    /// First row.
    pub top: usize,
    /// First column.
    pub left: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl CropParams {
    /// The whole `height` x `width` image.
    pub fn full(height: usize, width: usize) -> Self {
        Self {
            top: 0,
            left: 0,
            height,
            width,
        }
    }

    /// The rectangle moved and shrunk to lie inside a `side` x `side` image, at least 1x1.
    fn clamped(self, side: usize) -> Self {
        let height = self.height.clamp(1, side);
        let width = self.width.clamp(1, side);
        Self {
            top: self.top.min(side - height),
            left: self.left.min(side - width),
            height,
            width,
        }
    }
}

/// torchvision's `RandomResizedCrop`: a crop of random area and aspect ratio, resized to
/// `size` x `size`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomResizedCrop {
    /// Range of the crop's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the crop's width / height, sampled log-uniformly.
    pub ratio: (f64, f64),
    /// Side of the output.
    pub size: usize,
}

impl Default for RandomResizedCrop {
    /// The SPEC's crop: area in [0.8, 1], ratio in [0.9, 1.1], 32x32 output.
    fn default() -> Self {
        Self {
            scale: (0.8, 1.0),
            ratio: (0.9, 1.1),
            size: IMAGE_SIDE,
        }
    }
}

/// `a + (b - a) * u` with `u` uniform in [0, 1) in single precision, as `torch.Tensor.uniform_`.
pub(crate) fn uniform_f32(rng: &mut impl Rng, low: f32, high: f32) -> f32 {
    low + (high - low) * rng.random::<f32>()
}

/// Python's `int(round(x))`: halves go to the even neighbour; NaN and negatives give 0.
pub(crate) fn python_round(value: f64) -> usize {
    value.round_ties_even().max(0.0) as usize
}

impl RandomResizedCrop {
    /// torchvision's `RandomResizedCrop.get_params` for an image of `height` x `width`.
    ///
    /// Up to 10 attempts: area = `height * width * U(scale)`, ratio = `exp(U(ln ratio))`
    /// (sampled in single precision like torch), `w = round(sqrt(area * ratio))`,
    /// `h = round(sqrt(area / ratio))`; the first with `0 < w <= width` and `0 < h <= height` is
    /// placed uniformly. Otherwise a centre crop whose ratio is clamped to the range.
    pub fn sample_params(&self, rng: &mut impl Rng, height: usize, width: usize) -> CropParams {
        let area = (height * width) as f64;
        let log_low = (self.ratio.0 as f32).ln();
        let log_high = (self.ratio.1 as f32).ln();
        for _ in 0..10 {
            let target_area =
                area * f64::from(uniform_f32(rng, self.scale.0 as f32, self.scale.1 as f32));
            let aspect_ratio = f64::from(uniform_f32(rng, log_low, log_high).exp());
            let w = python_round((target_area * aspect_ratio).sqrt());
            let h = python_round((target_area / aspect_ratio).sqrt());
            if 0 < w && w <= width && 0 < h && h <= height {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return CropParams {
                    top,
                    left,
                    height: h,
                    width: w,
                };
            }
        }
        let in_ratio = width as f64 / height as f64;
        let min_ratio = self.ratio.0.min(self.ratio.1);
        let max_ratio = self.ratio.0.max(self.ratio.1);
        let (h, w) = if in_ratio < min_ratio {
            (python_round(width as f64 / min_ratio), width)
        } else if in_ratio > max_ratio {
            (height, python_round(height as f64 * max_ratio))
        } else {
            (height, width)
        };
        CropParams {
            top: height.saturating_sub(h) / 2,
            left: width.saturating_sub(w) / 2,
            height: h,
            width: w,
        }
    }
}

/// torchvision's `RandomHorizontalFlip`: mirror left-right with probability `p`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HorizontalFlip {
    /// Probability of a flip.
    pub p: f64,
}

impl Default for HorizontalFlip {
    /// The SPEC's flip probability, 0.5.
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl HorizontalFlip {
    /// Whether to flip: `torch.rand(1) < p`.
    pub fn sample(&self, rng: &mut impl Rng) -> bool {
        rng.random::<f32>() < self.p as f32
    }
}

/// The random choices for one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AugmentParams {
    /// Mirror left-right before cropping.
    pub flip: bool,
    /// The crop, in the coordinates of the (flipped) image.
    pub crop: CropParams,
}

impl AugmentParams {
    /// No flip and the whole `side` x `side` image: resampling reproduces the input exactly.
    pub fn identity(side: usize) -> Self {
        Self {
            flip: false,
            crop: CropParams::full(side, side),
        }
    }
}

/// The SPEC's training augmentation: horizontal flip, then random resized crop.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Augmentation {
    /// The flip, drawn first.
    pub flip: HorizontalFlip,
    /// The crop, drawn second.
    pub crop: RandomResizedCrop,
}

impl Augmentation {
    /// Draws the flip, then the crop of a `side` x `side` image, from `rng`.
    pub fn sample(&self, rng: &mut impl Rng, side: usize) -> AugmentParams {
        let flip = self.flip.sample(rng);
        let crop = self.crop.sample_params(rng, side, side);
        AugmentParams { flip, crop }
    }

    /// The choices for training image `index` (of `side` pixels) in `epoch` of a run seeded
    /// with `seed`: the same whichever worker, batch or resumed run asks.
    pub fn params_for(&self, seed: u64, epoch: usize, index: usize, side: usize) -> AugmentParams {
        let mut rng = rng_for(seed, Purpose::Augment, &[epoch as u64, index as u64]);
        self.sample(&mut rng, side)
    }
}

/// Source pixels and weights of one output coordinate along one axis.
#[derive(Debug, Clone, Copy)]
struct Tap {
    first: usize,
    second: usize,
    first_weight: f32,
    second_weight: f32,
}

/// PyTorch's `compute_source_index_and_lambda` (bilinear, align_corners=False) for an axis of
/// `length` source pixels starting at `start`, resampled to `out_len`, in single precision.
/// `mirror` maps each source pixel `p` to `side - 1 - p` (a flip before the crop).
fn axis_taps(start: usize, length: usize, out_len: usize, mirror: Option<usize>) -> Vec<Tap> {
    let place = |offset: usize| {
        let pixel = start + offset;
        if let Some(side) = mirror {
            side - 1 - pixel
        } else {
            pixel
        }
    };
    let scale = length as f32 / out_len as f32;
    (0..out_len)
        .map(|out| {
            if length == out_len {
                return Tap {
                    first: place(out),
                    second: place(out),
                    first_weight: 1.0,
                    second_weight: 0.0,
                };
            }
            let source = (scale * (out as f32 + 0.5) - 0.5).max(0.0);
            let index = (source.floor() as usize).min(length - 1);
            let lambda = (source - index as f32).clamp(0.0, 1.0);
            let next = if index < length - 1 { index + 1 } else { index };
            Tap {
                first: place(index),
                second: place(next),
                first_weight: 1.0 - lambda,
                second_weight: lambda,
            }
        })
        .collect()
}

/// Flips, crops and bilinearly resamples a square image to `size` x `size`, writing
/// `affine` of each resampled pixel value (in [0, 255]) into `out` (CHW).
///
/// Separable, as PyTorch computes it: each source row of the crop is first interpolated along
/// x, then output rows blend two of those along y, so the arithmetic is PyTorch's
/// `wy0 * (wx0 * a + wx1 * b) + wy1 * (wx0 * c + wx1 * d)` and the second pass vectorises.
fn resample_with(
    image: &[u8],
    params: &AugmentParams,
    size: usize,
    out: &mut [f32],
    affine: Affine,
) {
    let size = size.max(1);
    let side = side_of(image);
    let crop = params.crop.clamped(side);
    let columns = axis_taps(crop.left, crop.width, size, params.flip.then_some(side));
    let rows = axis_taps(crop.top, crop.height, size, None);
    let mut along_x = vec![0.0f32; side * size];
    let planes_out = out.chunks_exact_mut(size * size);
    let planes_in = image.chunks_exact(side * side);
    for (channel, (plane_out, plane_in)) in planes_out.zip(planes_in).enumerate() {
        for source_row in crop.top..crop.top + crop.height {
            let input = &plane_in[source_row * side..][..side];
            let target = &mut along_x[source_row * size..][..size];
            for (value, column) in target.iter_mut().zip(&columns) {
                *value = f32::from(input[column.first]) * column.first_weight
                    + f32::from(input[column.second]) * column.second_weight;
            }
        }
        let (scale, offset) = (affine.scale[channel], affine.offset[channel]);
        for (row_out, row) in plane_out.chunks_exact_mut(size).zip(&rows) {
            let upper = &along_x[row.first * size..][..size];
            let lower = &along_x[row.second * size..][..size];
            for ((pixel_out, &top), &bottom) in row_out.iter_mut().zip(upper).zip(lower) {
                let pixel = top * row.first_weight + bottom * row.second_weight;
                *pixel_out = pixel * scale + offset;
            }
        }
    }
}

/// The side of a square 3-channel image of `image.len()` bytes.
pub(crate) fn side_of(image: &[u8]) -> usize {
    (image.len() / CHANNELS).isqrt()
}

/// The augmented image (square, CHW) in raw pixel values (0 to 255, not rounded),
/// `3 * size * size` floats.
///
/// With [`AugmentParams::identity`] and `size` the image's side the output equals the input
/// exactly.
pub fn resample(image: &[u8], params: &AugmentParams, size: usize) -> Vec<f32> {
    let mut out = vec![0.0; CHANNELS * size * size];
    resample_with(image, params, size, &mut out, Affine::IDENTITY);
    out
}

/// The augmented image, normalised, written into `out` (`3 * size * size` floats, CHW).
pub fn resample_normalized_into(
    image: &[u8],
    params: &AugmentParams,
    size: usize,
    normalization: &Normalization,
    out: &mut [f32],
) {
    resample_with(image, params, size, out, normalization.affine());
}

/// The image (square, CHW) without augmentation, normalised, written into `out` (as many
/// floats as the image has bytes).
pub fn normalize_into(image: &[u8], normalization: &Normalization, out: &mut [f32]) {
    let affine = normalization.affine();
    let plane = image.len() / CHANNELS;
    let planes_out = out.chunks_exact_mut(plane);
    let planes_in = image.chunks_exact(plane);
    for (channel, (plane_out, plane_in)) in planes_out.zip(planes_in).enumerate() {
        let (scale, offset) = (affine.scale[channel], affine.offset[channel]);
        for (pixel_out, &pixel) in plane_out.iter_mut().zip(plane_in) {
            *pixel_out = f32::from(pixel) * scale + offset;
        }
    }
}
