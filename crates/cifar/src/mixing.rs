//! Batch-level Mixup and CutMix with soft targets, as timm's `timm.data.mixup.Mixup` in mode
//! 'batch' with `correct_lam`: one lambda per batch, each image mixed with its mirror in the
//! batch (`x.flip(0)`), and targets that a soft-target cross-entropy takes as they are.
//!
//! The arithmetic follows timm's f32 tensors (`x * lam + x.flip(0) * (1 - lam)` with both
//! factors rounded to f32), so a loss computed from these targets is the one timm would see.

use rand::{Rng, RngExt};
use rand_distr::Beta;

use crate::augment::CropParams;
use crate::erasing::{centred_box, region_rows};
use crate::error::{CifarError, Result};

/// timm's one-hot targets with label smoothing, `batch * num_classes` values row-major: each
/// row holds `off = smoothing / num_classes` everywhere and `1 - smoothing + off` at its label,
/// so it sums to 1. Smoothing 0 gives plain one-hot rows.
///
/// A label outside `0..num_classes` is an error rather than a silently empty row.
pub fn smoothed_one_hot(labels: &[usize], num_classes: usize, smoothing: f64) -> Result<Vec<f32>> {
    let off = smoothing / num_classes as f64;
    let on = (1.0 - smoothing + off) as f32;
    let mut targets = vec![off as f32; labels.len() * num_classes];
    for (index, &label) in labels.iter().enumerate() {
        if label >= num_classes {
            return Err(CifarError::LabelOutOfRange {
                index,
                label,
                num_classes,
            });
        }
        targets[index * num_classes + label] = on;
    }
    Ok(targets)
}

/// Which mixing a batch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MixKind {
    /// Images untouched, targets the smoothed one-hot, lambda 1.
    None,
    /// Each image blended with its mirror in the batch.
    Mixup,
    /// A box of each image replaced by the same box of its mirror in the batch.
    CutMix,
}

/// A mixed batch's soft targets and how it was mixed.
#[derive(Debug, Clone, PartialEq)]
pub struct MixOutcome {
    /// `batch * num_classes` targets, row-major, each row summing to 1.
    pub targets: Vec<f32>,
    /// The weight of each image's own label; for CutMix the fraction of its pixels it kept.
    pub lambda: f64,
    /// What was done to the images.
    pub kind: MixKind,
}

/// timm's `Mixup` in mode 'batch' (with `correct_lam`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mixup {
    /// Mixup's Beta(alpha, alpha) parameter; 0 (or less) turns Mixup off.
    pub mixup_alpha: f64,
    /// CutMix's Beta(alpha, alpha) parameter; 0 (or less) turns CutMix off.
    pub cutmix_alpha: f64,
    /// Probability that a batch is mixed at all (timm's `mix_prob`).
    pub prob: f64,
    /// Probability of CutMix rather than Mixup when both are on.
    pub switch_prob: f64,
    /// Label smoothing of the targets, mixed or not.
    pub label_smoothing: f64,
    /// Columns of the targets.
    pub num_classes: usize,
}

impl Mixup {
    /// timm's defaults for `num_classes` classes: Mixup with alpha 1, no CutMix, every batch
    /// mixed, switch probability 0.5, label smoothing 0.1.
    pub fn new(num_classes: usize) -> Self {
        Self {
            mixup_alpha: 1.0,
            cutmix_alpha: 0.0,
            prob: 1.0,
            switch_prob: 0.5,
            label_smoothing: 0.1,
            num_classes,
        }
    }

    /// timm's `_params_per_batch`: whether to mix (`U(0, 1) < prob`), whether by CutMix
    /// (`U(0, 1) < switch_prob` when both alphas are on, else whichever is on) and lambda from
    /// Beta(alpha, alpha). Lambda 1 means no mixing, as when both alphas are off.
    fn draw(&self, rng: &mut impl Rng) -> (f64, MixKind) {
        if rng.random::<f64>() >= self.prob {
            return (1.0, MixKind::None);
        }
        let kind = match (self.mixup_alpha > 0.0, self.cutmix_alpha > 0.0) {
            (true, true) if rng.random::<f64>() < self.switch_prob => MixKind::CutMix,
            (true, _) => MixKind::Mixup,
            (false, true) => MixKind::CutMix,
            (false, false) => return (1.0, MixKind::None),
        };
        let alpha = match kind {
            MixKind::CutMix => self.cutmix_alpha,
            MixKind::Mixup | MixKind::None => self.mixup_alpha,
        };
        // An alpha so extreme that Beta refuses it or yields no number in [0, 1] mixes nothing.
        let lambda = Beta::new(alpha, alpha)
            .map(|beta| rng.sample(beta))
            .ok()
            .filter(|lambda| (0.0..=1.0).contains(lambda))
            .unwrap_or(1.0);
        (lambda, kind)
    }

    /// Mixes `images` (`batch` normalised f32 CHW images of `channels` x `height` x `width`, in
    /// place) and returns the soft targets of `labels` (one per image).
    ///
    /// Image `i` mixes with image `batch - 1 - i` (the batch reversed), so an odd batch's middle
    /// image mixes with itself. CutMix draws its box as timm's `rand_bbox` (side
    /// `int(side * sqrt(1 - lambda))`, centre uniform over the image, clipped) and then sets
    /// lambda to the fraction of pixels each image kept. Errors, before anything is changed, on
    /// buffers that do not match the shape and on labels outside `0..num_classes`.
    #[allow(
        clippy::too_many_arguments,
        reason = "the buffer's shape, spelt out as the caller's tensor has it"
    )]
    pub fn apply(
        &self,
        images: &mut [f32],
        batch: usize,
        channels: usize,
        height: usize,
        width: usize,
        labels: &[usize],
        rng: &mut impl Rng,
    ) -> Result<MixOutcome> {
        let image_len = channels.saturating_mul(height).saturating_mul(width);
        check_len("labels", labels.len(), batch)?;
        check_len("images", images.len(), batch.saturating_mul(image_len))?;
        let smoothed = smoothed_one_hot(labels, self.num_classes, self.label_smoothing)?;

        let (mut lambda, mut kind) = self.draw(rng);
        if lambda == 1.0 {
            kind = MixKind::None;
        }
        match kind {
            MixKind::None => {}
            MixKind::Mixup => blend(images, image_len, lambda),
            MixKind::CutMix => {
                let region = cutmix_box(rng, lambda, height, width);
                let area = region.height * region.width;
                lambda = 1.0 - area as f64 / (height * width).max(1) as f64;
                if area == 0 {
                    kind = MixKind::None;
                }
                paste(images, image_len, height * width, width, &region);
            }
        }
        let targets = if kind == MixKind::None {
            smoothed
        } else {
            mix_targets(&smoothed, self.num_classes, lambda)
        };
        Ok(MixOutcome {
            targets,
            lambda,
            kind,
        })
    }
}

/// An error unless a buffer holds the `expected` number of values.
fn check_len(what: &'static str, found: usize, expected: usize) -> Result<()> {
    if found == expected {
        Ok(())
    } else {
        Err(CifarError::BatchShape {
            what,
            found,
            expected,
        })
    }
}

/// Calls `mix` on each image and its mirror in the batch (`image_len` values each), then on the
/// middle image of an odd batch alone.
fn for_each_pair(
    images: &mut [f32],
    image_len: usize,
    mut mix: impl FnMut(&mut [f32], Option<&mut [f32]>),
) {
    let mut rest = images;
    while rest.len() >= 2 * image_len.max(1) {
        let (first, tail) = rest.split_at_mut(image_len);
        let (middle, last) = tail.split_at_mut(tail.len() - image_len);
        mix(first, Some(last));
        rest = middle;
    }
    if !rest.is_empty() {
        mix(rest, None);
    }
}

/// Mixup in place: `x * lambda + x.flip(0) * (1 - lambda)` with both factors in f32, as timm's
/// `x.mul_(lam).add_(x.flip(0).mul_(1 - lam))`.
fn blend(images: &mut [f32], image_len: usize, lambda: f64) {
    let keep = lambda as f32;
    let take = (1.0 - lambda) as f32;
    for_each_pair(images, image_len, |first, last| match last {
        Some(last) => {
            for (a, b) in first.iter_mut().zip(last) {
                (*a, *b) = (*a * keep + *b * take, *b * keep + *a * take);
            }
        }
        None => {
            for a in first {
                *a = *a * keep + *a * take;
            }
        }
    });
}

/// timm's `rand_bbox`: a box of `int(height * r)` x `int(width * r)` with `r = sqrt(1 - lambda)`,
/// centred uniformly over the image and clipped.
fn cutmix_box(rng: &mut impl Rng, lambda: f64, height: usize, width: usize) -> CropParams {
    if height == 0 || width == 0 {
        return CropParams::full(0, 0);
    }
    let cut_ratio = (1.0 - lambda).sqrt();
    let cut = (
        (height as f64 * cut_ratio) as usize,
        (width as f64 * cut_ratio) as usize,
    );
    let centre = (rng.random_range(0..height), rng.random_range(0..width));
    centred_box(centre, cut, (height, width))
}

/// CutMix in place: `region` of every channel of each image swapped with its mirror's (the
/// middle image of an odd batch keeps its own).
fn paste(images: &mut [f32], image_len: usize, plane: usize, width: usize, region: &CropParams) {
    if plane == 0 {
        return;
    }
    for_each_pair(images, image_len, |first, last| {
        let Some(last) = last else { return };
        let planes = first
            .chunks_exact_mut(plane)
            .zip(last.chunks_exact_mut(plane));
        for (plane_a, plane_b) in planes {
            let rows_a = region_rows(plane_a, width, region);
            for (row_a, row_b) in rows_a.zip(region_rows(plane_b, width, region)) {
                row_a.swap_with_slice(row_b);
            }
        }
    });
}

/// timm's `mixup_target` from smoothed one-hot rows: row `i` becomes
/// `row_i * lambda + row_(batch - 1 - i) * (1 - lambda)` in f32.
fn mix_targets(smoothed: &[f32], num_classes: usize, lambda: f64) -> Vec<f32> {
    let keep = lambda as f32;
    let take = (1.0 - lambda) as f32;
    let rows: Vec<&[f32]> = smoothed.chunks_exact(num_classes.max(1)).collect();
    rows.iter()
        .zip(rows.iter().rev())
        .flat_map(|(own, mirror)| own.iter().zip(*mirror).map(|(a, b)| a * keep + b * take))
        .collect()
}
