//! `[augment]` and `[ema]`: the augmentation and weight-averaging parts of a modern recipe, with
//! torchvision's and timm's names and defaults. Every part is off unless the config sets it; a
//! config without `[augment]` trains with the SPEC's flip + random-resized crop, exactly as
//! before these sections existed.
//!
//! The order an image goes through is fixed, as in torchvision's and timm's training transforms:
//! geometry (`random_crop` or `random_resized_crop`), then the policy (`auto_augment`,
//! `rand_augment` or `trivial_augment_wide`), then `hflip`, then normalisation, then
//! `random_erasing` and `cutout`; mixup or cutmix then mixes whole batches.
use anyhow::{Result, bail};
use cnnzoo_cifar::{
    AutoAugmentPolicy, Cutout, ErasingValue, Geometry, HorizontalFlip, Mixup, PaddingMode,
    PolicyKind, RandomCrop, RandomErasing, RandomResizedCrop, TrainTransform,
};
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

/// `[augment]`: what the training images go through. Absent from a config, the SPEC's flip +
/// random-resized crop (see the module docs).
#[skip_serializing_none]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// torchvision's `RandomCrop(size, padding, padding_mode, fill)`: the CIFAR standard is
    /// `{ padding = 4 }`.
    pub random_crop: Option<RandomCropConfig>,
    /// torchvision's `RandomResizedCrop(size, scale, ratio)`.
    pub random_resized_crop: Option<RandomResizedCropConfig>,
    /// torchvision's `AutoAugment` with one of its learned policies.
    pub auto_augment: Option<AutoAugmentName>,
    /// torchvision's `RandAugment(num_ops, magnitude, num_magnitude_bins)`.
    pub rand_augment: Option<RandAugmentConfig>,
    /// torchvision's `TrivialAugmentWide(num_magnitude_bins)`.
    pub trivial_augment_wide: Option<TrivialAugmentConfig>,
    /// torchvision's `RandomHorizontalFlip(p)`.
    pub hflip: Option<HflipConfig>,
    /// torchvision's `RandomErasing(p, scale, ratio, value)`, on the normalised image.
    pub random_erasing: Option<RandomErasingConfig>,
    /// DeVries & Taylor's cutout: one square hole, on the normalised image.
    pub cutout: Option<CutoutConfig>,
    /// timm's `mixup_alpha`: Beta(alpha, alpha) mixing weights; 0 for no mixup.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mixup_alpha: f64,
    /// timm's `cutmix_alpha`: Beta(alpha, alpha) box areas; 0 for no cutmix.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cutmix_alpha: f64,
    /// timm's `mix_prob`: the probability that a batch is mixed at all.
    #[serde(default = "defaults::mix_prob")]
    pub mix_prob: f64,
    /// timm's `switch_prob`: with both alphas set, the probability of cutmix over mixup.
    #[serde(default = "defaults::switch_prob")]
    pub switch_prob: f64,
}

/// What an empty `[augment]` gives: every part off.
impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            random_crop: None,
            random_resized_crop: None,
            auto_augment: None,
            rand_augment: None,
            trivial_augment_wide: None,
            hflip: None,
            random_erasing: None,
            cutout: None,
            mixup_alpha: 0.0,
            cutmix_alpha: 0.0,
            mix_prob: defaults::mix_prob(),
            switch_prob: defaults::switch_prob(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomCropConfig {
    /// Pixels added on every side before the crop back to the image's size.
    pub padding: usize,
    #[serde(default)]
    pub padding_mode: PaddingModeName,
    /// The colour of `constant` padding, R, G, B.
    #[serde(default)]
    pub fill: [u8; 3],
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaddingModeName {
    #[default]
    Constant,
    /// Mirrored without repeating the edge pixel (numpy's and torchvision's `reflect`).
    Reflect,
    /// The edge pixel repeated.
    Edge,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCropConfig {
    /// The crop's area as a fraction of the image's; the SPEC's [0.8, 1] by default.
    #[serde(default = "defaults::rrc_scale")]
    pub scale: [f64; 2],
    /// The crop's width / height, drawn log-uniformly; the SPEC's [0.9, 1.1] by default.
    #[serde(default = "defaults::rrc_ratio")]
    pub ratio: [f64; 2],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoAugmentName {
    Cifar10,
    Imagenet,
    Svhn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandAugmentConfig {
    #[serde(default = "defaults::num_ops")]
    pub num_ops: usize,
    #[serde(default = "defaults::magnitude")]
    pub magnitude: usize,
    #[serde(default = "defaults::num_magnitude_bins")]
    pub num_magnitude_bins: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrivialAugmentConfig {
    #[serde(default = "defaults::num_magnitude_bins")]
    pub num_magnitude_bins: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HflipConfig {
    #[serde(default = "defaults::half")]
    pub p: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomErasingConfig {
    #[serde(default = "defaults::half")]
    pub p: f64,
    #[serde(default = "defaults::erasing_scale")]
    pub scale: [f64; 2],
    #[serde(default = "defaults::erasing_ratio")]
    pub ratio: [f64; 2],
    #[serde(default)]
    pub value: ErasingValueName,
}

/// What fills an erased box of the normalised image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErasingValueName {
    /// 0, the data set's mean colour.
    #[default]
    Zero,
    /// A standard normal value per pixel (torchvision's `value='random'`, timm's `pixel`).
    Random,
    /// One standard normal value per channel (timm's `rand`).
    PerChannel,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoutConfig {
    /// Side of the square hole; 16 is DeVries & Taylor's for CIFAR-10.
    pub size: usize,
    #[serde(default = "defaults::one")]
    pub p: f64,
}

/// `[ema]`: an exponential moving average of the weights (timm's `ModelEmaV2`), validated,
/// checkpointed and tested in place of the trained weights.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmaConfig {
    /// Weight of the average at each step: `ema = decay * ema + (1 - decay) * weights`.
    #[serde(default = "defaults::ema_decay")]
    pub decay: f64,
    /// timm's warm-up: the decay of step n is `min(decay, (1 + n) / (10 + n))`, so the early
    /// average follows the fast-moving weights instead of the random initialisation.
    #[serde(default = "defaults::yes")]
    pub warmup: bool,
}

mod defaults {
    pub fn mix_prob() -> f64 {
        1.0
    }
    pub fn switch_prob() -> f64 {
        0.5
    }
    pub fn rrc_scale() -> [f64; 2] {
        [0.8, 1.0]
    }
    pub fn rrc_ratio() -> [f64; 2] {
        [0.9, 1.1]
    }
    pub fn num_ops() -> usize {
        2
    }
    pub fn magnitude() -> usize {
        9
    }
    pub fn num_magnitude_bins() -> usize {
        31
    }
    pub fn half() -> f64 {
        0.5
    }
    pub fn one() -> f64 {
        1.0
    }
    pub fn erasing_scale() -> [f64; 2] {
        [0.02, 0.33]
    }
    pub fn erasing_ratio() -> [f64; 2] {
        [0.3, 3.3]
    }
    pub fn ema_decay() -> f64 {
        0.9999
    }
    pub fn yes() -> bool {
        true
    }
}

/// serde's `skip_serializing_if` for settings whose zero means off.
pub(crate) fn is_zero(value: &f64) -> bool {
    *value == 0.0
}

fn check_probability(key: &str, p: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&p) {
        bail!("{key} must be in [0, 1] (got {p})");
    }
    Ok(())
}

/// `[low, high]` with `0 < low <= high`, finite.
fn check_range(key: &str, [low, high]: [f64; 2]) -> Result<()> {
    if !(low > 0.0 && low <= high && high.is_finite()) {
        bail!("{key} must be [low, high] with 0 < low <= high (got [{low}, {high}])");
    }
    Ok(())
}

impl AugmentConfig {
    /// Checks every value; the message names the key and the value.
    pub fn validate(&self) -> Result<()> {
        if self.random_crop.is_some() && self.random_resized_crop.is_some() {
            bail!(
                "augment.random_crop and augment.random_resized_crop exclude each other: keep one"
            );
        }
        let policies = [
            ("auto_augment", self.auto_augment.is_some()),
            ("rand_augment", self.rand_augment.is_some()),
            ("trivial_augment_wide", self.trivial_augment_wide.is_some()),
        ];
        let set: Vec<&str> = policies.iter().filter(|p| p.1).map(|p| p.0).collect();
        if set.len() > 1 {
            bail!(
                "augment.{} exclude each other: keep one policy",
                set.join(" and augment.")
            );
        }
        if let Some(crop) = &self.random_resized_crop {
            check_range("augment.random_resized_crop.scale", crop.scale)?;
            if crop.scale[1] > 1.0 {
                bail!(
                    "augment.random_resized_crop.scale must lie within (0, 1] (got {:?})",
                    crop.scale
                );
            }
            check_range("augment.random_resized_crop.ratio", crop.ratio)?;
        }
        if let Some(rand) = &self.rand_augment {
            if rand.num_magnitude_bins < 2 {
                bail!(
                    "augment.rand_augment.num_magnitude_bins must be at least 2 (got {})",
                    rand.num_magnitude_bins
                );
            }
            if rand.magnitude >= rand.num_magnitude_bins {
                bail!(
                    "augment.rand_augment.magnitude must be below num_magnitude_bins ({}) (got {})",
                    rand.num_magnitude_bins,
                    rand.magnitude
                );
            }
        }
        if let Some(trivial) = &self.trivial_augment_wide
            && trivial.num_magnitude_bins < 2
        {
            bail!(
                "augment.trivial_augment_wide.num_magnitude_bins must be at least 2 (got {})",
                trivial.num_magnitude_bins
            );
        }
        if let Some(flip) = &self.hflip {
            check_probability("augment.hflip.p", flip.p)?;
        }
        if let Some(erasing) = &self.random_erasing {
            check_probability("augment.random_erasing.p", erasing.p)?;
            check_range("augment.random_erasing.scale", erasing.scale)?;
            check_range("augment.random_erasing.ratio", erasing.ratio)?;
        }
        if let Some(cutout) = &self.cutout {
            check_probability("augment.cutout.p", cutout.p)?;
            if cutout.size == 0 {
                bail!("augment.cutout.size must be at least 1 pixel (got 0)");
            }
        }
        for (key, alpha) in [
            ("augment.mixup_alpha", self.mixup_alpha),
            ("augment.cutmix_alpha", self.cutmix_alpha),
        ] {
            if !(alpha >= 0.0 && alpha.is_finite()) {
                bail!("{key} must be zero (off) or positive (got {alpha})");
            }
        }
        check_probability("augment.mix_prob", self.mix_prob)?;
        check_probability("augment.switch_prob", self.switch_prob)
    }

    /// Whether batches are mixed (mixup or cutmix), which makes the targets soft.
    pub fn mixes(&self) -> bool {
        self.mix_prob > 0.0 && (self.mixup_alpha > 0.0 || self.cutmix_alpha > 0.0)
    }
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self {
            decay: defaults::ema_decay(),
            warmup: defaults::yes(),
        }
    }
}

impl EmaConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..1.0).contains(&self.decay) {
            bail!("ema.decay must be in [0, 1) (got {})", self.decay);
        }
        Ok(())
    }

    /// The decay of the update after `updates` earlier ones.
    pub fn decay_at(&self, updates: u64) -> f64 {
        if self.warmup {
            let n = updates as f64;
            self.decay.min((1.0 + n) / (10.0 + n))
        } else {
            self.decay
        }
    }
}

impl AugmentConfig {
    /// The per-image transform in the cifar crate's terms.
    pub fn transform(&self) -> TrainTransform {
        let geometry = match (&self.random_crop, &self.random_resized_crop) {
            (Some(crop), _) => Geometry::RandomCrop(RandomCrop {
                padding: crop.padding,
                padding_mode: match crop.padding_mode {
                    PaddingModeName::Constant => PaddingMode::Constant,
                    PaddingModeName::Reflect => PaddingMode::Reflect,
                    PaddingModeName::Edge => PaddingMode::Edge,
                },
                fill: crop.fill,
                ..RandomCrop::default()
            }),
            (None, Some(crop)) => Geometry::RandomResizedCrop(RandomResizedCrop {
                scale: (crop.scale[0], crop.scale[1]),
                ratio: (crop.ratio[0], crop.ratio[1]),
                ..RandomResizedCrop::default()
            }),
            (None, None) => Geometry::None,
        };
        let policy = if let Some(name) = self.auto_augment {
            Some(PolicyKind::AutoAugment(match name {
                AutoAugmentName::Cifar10 => AutoAugmentPolicy::Cifar10,
                AutoAugmentName::Imagenet => AutoAugmentPolicy::ImageNet,
                AutoAugmentName::Svhn => AutoAugmentPolicy::Svhn,
            }))
        } else if let Some(rand) = self.rand_augment {
            Some(PolicyKind::RandAugment {
                num_ops: rand.num_ops,
                magnitude: rand.magnitude,
                num_magnitude_bins: rand.num_magnitude_bins,
            })
        } else {
            self.trivial_augment_wide
                .map(|trivial| PolicyKind::TrivialAugmentWide {
                    num_magnitude_bins: trivial.num_magnitude_bins,
                })
        };
        TrainTransform {
            geometry,
            policy,
            fill: self.random_crop.map_or([0; 3], |crop| crop.fill),
            flip: self.hflip.map(|flip| HorizontalFlip { p: flip.p }),
            erasing: self.random_erasing.map(|erasing| RandomErasing {
                p: erasing.p,
                scale: (erasing.scale[0], erasing.scale[1]),
                ratio: (erasing.ratio[0], erasing.ratio[1]),
                value: match erasing.value {
                    ErasingValueName::Zero => ErasingValue::Zero,
                    ErasingValueName::Random => ErasingValue::Random,
                    ErasingValueName::PerChannel => ErasingValue::PerChannel,
                },
            }),
            cutout: self.cutout.map(|cutout| Cutout {
                size: cutout.size,
                p: cutout.p,
            }),
        }
    }
}

/// timm's `Mixup` for a recipe's `[augment]` and `label_smoothing`: `None` when targets stay
/// the classes (no mixing and no smoothing).
pub fn mixing(
    augment: Option<&AugmentConfig>,
    label_smoothing: f64,
    num_classes: usize,
) -> Option<Mixup> {
    let mixes = augment.is_some_and(AugmentConfig::mixes);
    if !mixes && label_smoothing == 0.0 {
        return None;
    }
    let augment = augment.cloned().unwrap_or_default();
    Some(Mixup {
        mixup_alpha: augment.mixup_alpha,
        cutmix_alpha: augment.cutmix_alpha,
        prob: augment.mix_prob,
        switch_prob: augment.switch_prob,
        label_smoothing,
        num_classes,
    })
}

/// The label smoothing of the training loss, in [0, 1).
pub fn check_label_smoothing(value: f64) -> Result<()> {
    if !(0.0..1.0).contains(&value) {
        bail!("label_smoothing must be in [0, 1) (got {value})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<AugmentConfig> {
        let config: AugmentConfig = toml::from_str(text)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn an_empty_section_turns_everything_off() {
        let config = parse("").unwrap();
        assert_eq!(config, AugmentConfig::default());
        assert!(!config.mixes());
        assert!(config.hflip.is_none() && config.random_resized_crop.is_none());
    }

    #[test]
    fn defaults_are_torchvisions_and_timms() {
        let config = parse(
            "random_crop = { padding = 4 }\nhflip = {}\nrand_augment = {}\nrandom_erasing = {}\nmixup_alpha = 0.8",
        )
        .unwrap();
        let crop = config.random_crop.unwrap();
        assert_eq!(
            (crop.padding, crop.padding_mode, crop.fill),
            (4, PaddingModeName::Constant, [0, 0, 0])
        );
        assert_eq!(config.hflip.unwrap().p, 0.5);
        let rand = config.rand_augment.unwrap();
        assert_eq!(
            (rand.num_ops, rand.magnitude, rand.num_magnitude_bins),
            (2, 9, 31)
        );
        let erasing = config.random_erasing.unwrap();
        assert_eq!(
            (erasing.p, erasing.scale, erasing.ratio, erasing.value),
            (0.5, [0.02, 0.33], [0.3, 3.3], ErasingValueName::Zero)
        );
        assert_eq!((config.mix_prob, config.switch_prob), (1.0, 0.5));
        assert!(config.mixes());
    }

    #[test]
    fn contradictions_and_bad_values_name_their_keys() {
        for (text, expected) in [
            (
                "auto_augment = \"cifar10\"\ntrivial_augment_wide = {}",
                "augment.auto_augment and augment.trivial_augment_wide exclude each other",
            ),
            (
                "random_crop = { padding = 4 }\nrandom_resized_crop = {}",
                "exclude each other",
            ),
            (
                "hflip = { p = 1.5 }",
                "augment.hflip.p must be in [0, 1] (got 1.5)",
            ),
            (
                "rand_augment = { magnitude = 31 }",
                "augment.rand_augment.magnitude must be below num_magnitude_bins (31) (got 31)",
            ),
            (
                "cutout = { size = 0 }",
                "augment.cutout.size must be at least 1",
            ),
            (
                "mixup_alpha = -1.0",
                "augment.mixup_alpha must be zero (off) or positive",
            ),
            (
                "random_erasing = { scale = [0.5, 0.1] }",
                "augment.random_erasing.scale must be [low, high]",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        let error = parse("auto_augment = \"cifar100\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("cifar100"), "{error}");
    }

    #[test]
    fn the_ema_decay_warms_up_as_timms() {
        let ema = EmaConfig {
            decay: 0.999,
            warmup: true,
        };
        assert_eq!(ema.decay_at(0), 0.1);
        assert_eq!(ema.decay_at(90), 0.91);
        assert_eq!(ema.decay_at(1_000_000), 0.999);
        let plain = EmaConfig {
            warmup: false,
            ..ema
        };
        assert_eq!(plain.decay_at(0), 0.999);
    }
}
