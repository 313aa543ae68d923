//! Occlusion of one normalised f32 CHW image: torchvision's `RandomErasing` (a box of random
//! area and aspect ratio, filled with zeros or noise) and DeVries & Taylor's `Cutout` (a
//! fixed-size square of zeros).
//!
//! Both run after normalisation, so 0 is the data set's mean colour and the noise is on the
//! scale of the normalised pixels, as in torchvision's and the Cutout paper's pipelines.

use rand::{Rng, RngExt};
use rand_distr::StandardNormal;

use crate::augment::{CropParams, python_round, uniform_f32};

/// `torch.rand(1) < p`: whether an augmentation applied with probability `p` fires.
fn fires(rng: &mut impl Rng, p: f64) -> bool {
    rng.random::<f32>() < p as f32
}

/// The rows of `region` in one `width`-pixel-wide plane, clipped to the plane.
pub(crate) fn region_rows<'a>(
    plane: &'a mut [f32],
    width: usize,
    region: &CropParams,
) -> impl Iterator<Item = &'a mut [f32]> {
    let left = region.left.min(width);
    let right = region.left.saturating_add(region.width).min(width);
    plane
        .chunks_exact_mut(width.max(1))
        .skip(region.top)
        .take(region.height)
        .map(move |row| &mut row[left..right])
}

/// A `box_height` x `box_width` box centred on (`centre_y`, `centre_x`) and clipped to a
/// `height` x `width` image, as Cutout's and timm's `rand_bbox` arithmetic: rows
/// `clip(cy - bh / 2)..clip(cy + bh / 2)`, so an odd side loses a pixel.
pub(crate) fn centred_box(
    (centre_y, centre_x): (usize, usize),
    (box_height, box_width): (usize, usize),
    (height, width): (usize, usize),
) -> CropParams {
    let top = centre_y.saturating_sub(box_height / 2).min(height);
    let bottom = centre_y.saturating_add(box_height / 2).clamp(top, height);
    let left = centre_x.saturating_sub(box_width / 2).min(width);
    let right = centre_x.saturating_add(box_width / 2).clamp(left, width);
    CropParams {
        top,
        left,
        height: bottom - top,
        width: right - left,
    }
}

/// What [`RandomErasing`] writes into its box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ErasingValue {
    /// 0, the mean colour of normalised data (torchvision's default `value=0`).
    #[default]
    Zero,
    /// A fresh standard normal value per erased pixel and channel (torchvision's
    /// `value='random'`, timm's mode 'pixel').
    Random,
    /// One standard normal value per channel for the whole box (timm's mode 'rand').
    PerChannel,
}

impl ErasingValue {
    /// Fills `region` of every channel of `image` (CHW, `height` x `width` per channel),
    /// drawing the noise in channel, row, column order.
    fn fill(
        self,
        image: &mut [f32],
        (height, width): (usize, usize),
        region: &CropParams,
        rng: &mut impl Rng,
    ) {
        for plane in image.chunks_exact_mut((height * width).max(1)) {
            let channel_value = match self {
                Self::PerChannel => rng.sample(StandardNormal),
                Self::Zero | Self::Random => 0.0,
            };
            for pixel in region_rows(plane, width, region).flatten() {
                *pixel = match self {
                    Self::Random => rng.sample(StandardNormal),
                    Self::Zero | Self::PerChannel => channel_value,
                };
            }
        }
    }
}

/// An augmentation that draws a box of the image and fills it: [`RandomErasing`] and
/// [`Cutout`].
pub trait Occlusion {
    /// Whether to occlude, then the box; `None` leaves the image as it is.
    fn sample(&self, rng: &mut impl Rng, height: usize, width: usize) -> Option<CropParams>;

    /// What the box is filled with.
    fn value(&self) -> ErasingValue;

    /// Draws as [`Self::sample`] and fills the box in every channel of `image` (normalised
    /// f32, CHW, `height` x `width` per channel), drawing any noise after the box in channel,
    /// row, column order. Returns the box, clipped to the image, or `None` when the image was
    /// left bit for bit as it was.
    fn apply(
        &self,
        image: &mut [f32],
        height: usize,
        width: usize,
        rng: &mut impl Rng,
    ) -> Option<CropParams> {
        let region = self.sample(rng, height, width)?;
        self.value().fill(image, (height, width), &region, rng);
        Some(region)
    }
}

/// torchvision's `RandomErasing(p, scale, ratio, value)` on a normalised image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RandomErasing {
    /// Probability that an image is erased at all.
    pub p: f64,
    /// Range of the box's area as a fraction of the image's.
    pub scale: (f64, f64),
    /// Range of the box's height / width, sampled log-uniformly.
    pub ratio: (f64, f64),
    /// What the box is filled with.
    pub value: ErasingValue,
}

impl Default for RandomErasing {
    /// torchvision's defaults: p 0.5, area 2% to 33%, ratio 0.3 to 3.3, zeros.
    fn default() -> Self {
        Self {
            p: 0.5,
            scale: (0.02, 0.33),
            ratio: (0.3, 3.3),
            value: ErasingValue::Zero,
        }
    }
}

impl Occlusion for RandomErasing {
    /// Whether to erase (`torch.rand(1) < p`), then torchvision's `RandomErasing.get_params`
    /// for a `height` x `width` image; `None` leaves the image as it is.
    ///
    /// Up to 10 attempts: area = `height * width * U(scale)`, ratio = `exp(U(ln ratio))` (in
    /// single precision like torch), `h = round(sqrt(area * ratio))`,
    /// `w = round(sqrt(area / ratio))`; the first with `h < height` and `w < width` is placed
    /// uniformly. When none fits torchvision returns the image unchanged, and so does this.
    fn sample(&self, rng: &mut impl Rng, height: usize, width: usize) -> Option<CropParams> {
        if !fires(rng, self.p) {
            return None;
        }
        let area = (height * width) as f64;
        let log_low = (self.ratio.0 as f32).ln();
        let log_high = (self.ratio.1 as f32).ln();
        for _ in 0..10 {
            let erase_area =
                area * f64::from(uniform_f32(rng, self.scale.0 as f32, self.scale.1 as f32));
            let aspect_ratio = f64::from(uniform_f32(rng, log_low, log_high).exp());
            let h = python_round((erase_area * aspect_ratio).sqrt());
            let w = python_round((erase_area / aspect_ratio).sqrt());
            if h < height && w < width {
                let top = rng.random_range(0..=height - h);
                let left = rng.random_range(0..=width - w);
                return Some(CropParams {
                    top,
                    left,
                    height: h,
                    width: w,
                });
            }
        }
        None
    }

    fn value(&self) -> ErasingValue {
        self.value
    }
}

/// Cutout (DeVries & Taylor 2017) as in the paper's CIFAR code: one square hole of side `size`
/// centred on a uniformly drawn pixel, clipped at the borders, set to 0 on the normalised image
/// (the mean colour).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cutout {
    /// Side of the hole in pixels; the paper's code cuts `2 * (size / 2)`, so an odd side loses
    /// one pixel.
    pub size: usize,
    /// Probability that an image gets its hole (the paper: always).
    pub p: f64,
}

impl Default for Cutout {
    /// The paper's CIFAR-10 setting: a 16x16 hole in every image (CIFAR-100 used 8).
    fn default() -> Self {
        Self { size: 16, p: 1.0 }
    }
}

impl Occlusion for Cutout {
    /// Whether to cut (`torch.rand(1) < p`), then the hole's centre row and column, each uniform
    /// over the image; `None` for no hole (also for an image without pixels).
    fn sample(&self, rng: &mut impl Rng, height: usize, width: usize) -> Option<CropParams> {
        if !fires(rng, self.p) || height == 0 || width == 0 {
            return None;
        }
        let centre = (rng.random_range(0..height), rng.random_range(0..width));
        Some(centred_box(centre, (self.size, self.size), (height, width)))
    }

    fn value(&self) -> ErasingValue {
        ErasingValue::Zero
    }
}
