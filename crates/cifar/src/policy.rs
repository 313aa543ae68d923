//! torchvision's automatic augmentation policies (`torchvision/transforms/autoaugment.py`):
//! AutoAugment with its three learned policies, RandAugment and TrivialAugmentWide, drawing
//! from a caller's generator so that a run can seed each image's choices from its coordinates.
//!
//! The tables and the magnitude of each bin are torchvision's, value for value; the draws have
//! torchvision's distributions but come from `rand`, so the same seed does not give PyTorch's
//! choices.

use rand::{Rng, RngExt};

use crate::error::{CifarError, Result};
use crate::image_ops::{ImageOp, apply_checked, check_size};

/// An operation without its magnitude: what the policy tables and the augmentation spaces name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// [`ImageOp::Identity`].
    Identity,
    /// [`ImageOp::ShearX`].
    ShearX,
    /// [`ImageOp::ShearY`].
    ShearY,
    /// [`ImageOp::TranslateX`].
    TranslateX,
    /// [`ImageOp::TranslateY`].
    TranslateY,
    /// [`ImageOp::Rotate`].
    Rotate,
    /// [`ImageOp::Brightness`].
    Brightness,
    /// [`ImageOp::Color`].
    Color,
    /// [`ImageOp::Contrast`].
    Contrast,
    /// [`ImageOp::Sharpness`].
    Sharpness,
    /// [`ImageOp::Posterize`].
    Posterize,
    /// [`ImageOp::Solarize`].
    Solarize,
    /// [`ImageOp::AutoContrast`].
    AutoContrast,
    /// [`ImageOp::Equalize`].
    Equalize,
    /// [`ImageOp::Invert`].
    Invert,
}

/// The operations RandAugment and TrivialAugmentWide choose from uniformly, in the order of
/// their `_augmentation_space` (no Invert, unlike AutoAugment's).
pub const RANDOM_OPS: [OpKind; 14] = [
    OpKind::Identity,
    OpKind::ShearX,
    OpKind::ShearY,
    OpKind::TranslateX,
    OpKind::TranslateY,
    OpKind::Rotate,
    OpKind::Brightness,
    OpKind::Color,
    OpKind::Contrast,
    OpKind::Sharpness,
    OpKind::Posterize,
    OpKind::Solarize,
    OpKind::AutoContrast,
    OpKind::Equalize,
];

impl OpKind {
    /// Whether the policies negate the magnitude at random (with probability 1/2).
    pub fn signed(self) -> bool {
        matches!(
            self,
            Self::ShearX
                | Self::ShearY
                | Self::TranslateX
                | Self::TranslateY
                | Self::Rotate
                | Self::Brightness
                | Self::Color
                | Self::Contrast
                | Self::Sharpness
        )
    }

    /// The operation with `magnitude`, as `_apply_op` turns its float argument into one: the
    /// posterize bits are `int(magnitude)`; operations without a magnitude ignore it.
    pub fn with_magnitude(self, magnitude: f64) -> ImageOp {
        match self {
            Self::Identity => ImageOp::Identity,
            Self::ShearX => ImageOp::ShearX(magnitude),
            Self::ShearY => ImageOp::ShearY(magnitude),
            Self::TranslateX => ImageOp::TranslateX(magnitude),
            Self::TranslateY => ImageOp::TranslateY(magnitude),
            Self::Rotate => ImageOp::Rotate(magnitude),
            Self::Brightness => ImageOp::Brightness(magnitude),
            Self::Color => ImageOp::Color(magnitude),
            Self::Contrast => ImageOp::Contrast(magnitude),
            Self::Sharpness => ImageOp::Sharpness(magnitude),
            // The saturating cast maps anything outside 0..=255 to an edge; the spaces give 2..=8.
            Self::Posterize => ImageOp::Posterize(magnitude.trunc() as u8),
            Self::Solarize => ImageOp::Solarize(magnitude),
            Self::AutoContrast => ImageOp::AutoContrast,
            Self::Equalize => ImageOp::Equalize,
            Self::Invert => ImageOp::Invert,
        }
    }
}

/// Which of torchvision's `_augmentation_space` tables gives the magnitudes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MagnitudeSpace {
    /// AutoAugment's and RandAugment's: shear to 0.3, translation to 150/331 of the side,
    /// rotation to 30 degrees, colour factors to 0.9, posterize from 8 to 4 bits.
    Standard,
    /// TrivialAugmentWide's: shear to 0.99, translation to 32 pixels whatever the size,
    /// rotation to 135 degrees, colour factors to 0.99, posterize from 8 to 2 bits.
    Wide,
}

impl MagnitudeSpace {
    /// The unsigned magnitude of `op` at `bin` of `num_bins` for a `height` x `width` image,
    /// as the float `_augmentation_space` holds (torch's single-precision `linspace`); 0 for the
    /// operations without a magnitude. `bin` must be below `num_bins`, and `num_bins` at least 2.
    pub fn magnitude(
        self,
        op: OpKind,
        bin: usize,
        num_bins: usize,
        height: usize,
        width: usize,
    ) -> f64 {
        let wide = self == Self::Wide;
        let range = |standard: f64, wide_end: f64| if wide { wide_end } else { standard };
        let linspace_to = |end: f64| f64::from(linspace(0.0, end as f32, num_bins, bin));
        match op {
            OpKind::ShearX | OpKind::ShearY => linspace_to(range(0.3, 0.99)),
            OpKind::TranslateX => linspace_to(range(150.0 / 331.0 * width as f64, 32.0)),
            OpKind::TranslateY => linspace_to(range(150.0 / 331.0 * height as f64, 32.0)),
            OpKind::Rotate => linspace_to(range(30.0, 135.0)),
            OpKind::Brightness | OpKind::Color | OpKind::Contrast | OpKind::Sharpness => {
                linspace_to(range(0.9, 0.99))
            }
            OpKind::Posterize => {
                // `8 - (arange(n) / ((n - 1) / k)).round()`, the division in single precision.
                let levels = range(4.0, 6.0);
                let divisor = ((num_bins as f64 - 1.0) / levels) as f32;
                8.0 - f64::from((bin as f32 / divisor).round_ties_even())
            }
            OpKind::Solarize => f64::from(linspace(255.0, 0.0, num_bins, bin)),
            OpKind::Identity | OpKind::AutoContrast | OpKind::Equalize | OpKind::Invert => 0.0,
        }
    }
}

/// Element `index` of `torch.linspace(start, end, steps)` in single precision: from the start
/// in the first half and from the end in the second, as torch's CPU kernel computes it.
fn linspace(start: f32, end: f32, steps: usize, index: usize) -> f32 {
    if steps <= 1 {
        return start;
    }
    let step = (end - start) / (steps - 1) as f32;
    if index < steps / 2 {
        start + step * index as f32
    } else {
        end - step * (steps - 1 - index) as f32
    }
}

/// One step of an AutoAugment sub-policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyStep {
    /// The operation.
    pub op: OpKind,
    /// Probability of applying it, compared in single precision as torch does.
    pub probability: f32,
    /// Its magnitude bin of 10 in [`MagnitudeSpace::Standard`]; `None` for the operations
    /// without a magnitude.
    pub magnitude_bin: Option<u8>,
}

/// Two steps applied in order, each with its own probability.
pub type SubPolicy = [PolicyStep; 2];

/// The policies AutoAugment learned on three data sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AutoAugmentPolicy {
    /// Learned on CIFAR-10.
    Cifar10,
    /// Learned on ImageNet.
    ImageNet,
    /// Learned on SVHN.
    Svhn,
}

/// AutoAugment's number of magnitude bins.
const AUTO_AUGMENT_BINS: usize = 10;

impl AutoAugmentPolicy {
    /// The 25 sub-policies, in torchvision's order.
    pub fn sub_policies(self) -> &'static [SubPolicy; 25] {
        match self {
            Self::Cifar10 => &crate::policy_tables::CIFAR10,
            Self::ImageNet => &crate::policy_tables::IMAGENET,
            Self::Svhn => &crate::policy_tables::SVHN,
        }
    }
}

/// An automatic augmentation policy with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// AutoAugment: one of the policy's 25 sub-policies uniformly, each of its two steps with
    /// its probability.
    AutoAugment(AutoAugmentPolicy),
    /// RandAugment: `num_ops` operations uniformly from [`RANDOM_OPS`], each at bin `magnitude`
    /// of `num_magnitude_bins` in [`MagnitudeSpace::Standard`].
    RandAugment {
        /// Operations applied one after another.
        num_ops: usize,
        /// The bin of every operation's magnitude, below `num_magnitude_bins`.
        magnitude: usize,
        /// Bins of each magnitude range, at least 2.
        num_magnitude_bins: usize,
    },
    /// TrivialAugmentWide: one operation uniformly from [`RANDOM_OPS`] at a uniform bin of
    /// `num_magnitude_bins` in [`MagnitudeSpace::Wide`].
    TrivialAugmentWide {
        /// Bins of each magnitude range, at least 2.
        num_magnitude_bins: usize,
    },
}

impl PolicyKind {
    /// torchvision's default RandAugment: 2 operations at bin 9 of 31.
    pub const RAND_AUGMENT: Self = Self::RandAugment {
        num_ops: 2,
        magnitude: 9,
        num_magnitude_bins: 31,
    };

    /// torchvision's default TrivialAugmentWide: 31 bins.
    pub const TRIVIAL_AUGMENT_WIDE: Self = Self::TrivialAugmentWide {
        num_magnitude_bins: 31,
    };

    /// An error unless the parameters are ones torchvision accepts: a magnitude bin that
    /// exists, and at least 2 bins (with 1, torchvision's posterize range divides by zero).
    pub fn validate(&self) -> Result<()> {
        let (policy, magnitude, bins) = match *self {
            Self::AutoAugment(_) => return Ok(()),
            Self::RandAugment {
                magnitude,
                num_magnitude_bins,
                ..
            } => ("RandAugment", Some(magnitude), num_magnitude_bins),
            Self::TrivialAugmentWide { num_magnitude_bins } => {
                ("TrivialAugmentWide", None, num_magnitude_bins)
            }
        };
        let detail = if bins < 2 {
            format!("num_magnitude_bins {bins} is below 2")
        } else if let Some(magnitude) = magnitude.filter(|&m| m >= bins) {
            format!("magnitude {magnitude} is past the last of {bins} bins")
        } else {
            return Ok(());
        };
        Err(CifarError::BadPolicy { policy, detail })
    }

    /// Draws the operations to apply to a `height` x `width` image, in order, with their signed
    /// magnitudes: what [`PolicyKind::apply`] applies from the same generator state.
    ///
    /// The draws follow torchvision's: AutoAugment draws the sub-policy, then both
    /// probabilities, then both signs; RandAugment draws per operation the operation, then a
    /// sign only if it is signed; TrivialAugmentWide the operation, a bin, then a sign only if
    /// signed. A sign of zero (probability 1/2) negates.
    pub fn sample_ops(
        &self,
        rng: &mut impl Rng,
        height: usize,
        width: usize,
    ) -> Result<Vec<ImageOp>> {
        self.validate()?;
        let mut ops = Vec::new();
        match *self {
            Self::AutoAugment(policy) => {
                let sub_policies = policy.sub_policies();
                let chosen = &sub_policies[rng.random_range(0..sub_policies.len())];
                let draws: [f32; 2] = [rng.random(), rng.random()];
                let negate: [bool; 2] = [rng.random(), rng.random()];
                for ((step, draw), negate) in chosen.iter().zip(draws).zip(negate) {
                    if draw <= step.probability {
                        let magnitude = step.magnitude_bin.map_or(0.0, |bin| {
                            MagnitudeSpace::Standard.magnitude(
                                step.op,
                                usize::from(bin),
                                AUTO_AUGMENT_BINS,
                                height,
                                width,
                            )
                        });
                        let sign = if step.op.signed() && negate {
                            -1.0
                        } else {
                            1.0
                        };
                        ops.push(step.op.with_magnitude(sign * magnitude));
                    }
                }
            }
            Self::RandAugment {
                num_ops,
                magnitude,
                num_magnitude_bins,
            } => {
                for _ in 0..num_ops {
                    let op = RANDOM_OPS[rng.random_range(0..RANDOM_OPS.len())];
                    let space = MagnitudeSpace::Standard;
                    let value = space.magnitude(op, magnitude, num_magnitude_bins, height, width);
                    ops.push(op.with_magnitude(signed(op, value, rng)));
                }
            }
            Self::TrivialAugmentWide { num_magnitude_bins } => {
                let op = RANDOM_OPS[rng.random_range(0..RANDOM_OPS.len())];
                // torchvision draws a bin only for the operations whose magnitudes are a range.
                let bin = if has_magnitude(op) {
                    rng.random_range(0..num_magnitude_bins)
                } else {
                    0
                };
                let space = MagnitudeSpace::Wide;
                let value = space.magnitude(op, bin, num_magnitude_bins, height, width);
                ops.push(op.with_magnitude(signed(op, value, rng)));
            }
        }
        Ok(ops)
    }

    /// Applies the policy in place to the 3 x `height` x `width` image `pixels` (CHW), drawing
    /// from `rng`; warps fill with `fill` (R, G, B).
    pub fn apply(
        &self,
        pixels: &mut [u8],
        height: usize,
        width: usize,
        fill: [u8; 3],
        rng: &mut impl Rng,
    ) -> Result<()> {
        check_size(pixels.len(), height, width)?;
        for op in self.sample_ops(rng, height, width)? {
            apply_checked(op, pixels, height, width, fill);
        }
        Ok(())
    }
}

/// Whether `op` has a range of magnitudes in the augmentation spaces (Posterize's is of bits).
pub(crate) fn has_magnitude(op: OpKind) -> bool {
    op.signed() || matches!(op, OpKind::Posterize | OpKind::Solarize)
}

/// `magnitude`, negated with probability 1/2 if `op` is signed (drawing nothing otherwise).
fn signed(op: OpKind, magnitude: f64, rng: &mut impl Rng) -> f64 {
    if op.signed() && rng.random::<bool>() {
        -magnitude
    } else {
        magnitude
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image_ops::apply_op;
    use crate::seed::{Purpose, rng_for};

    /// A generator of the kind the loader uses.
    fn rng(index: u64) -> impl Rng + Clone {
        rng_for(7, Purpose::Augment, &[index])
    }

    /// A 32x32 image whose pixels differ, so that every operation changes something.
    fn image() -> Vec<u8> {
        (0..3 * 32 * 32).map(|i| (i * 37 % 251) as u8).collect()
    }

    /// torchvision's name of an operation, from its `Debug` form.
    fn name(op: &ImageOp) -> String {
        let text = format!("{op:?}");
        text.split('(').next().unwrap_or_default().to_owned()
    }

    #[test]
    fn the_same_generator_gives_the_same_image_and_another_index_another() {
        let policies = [
            PolicyKind::AutoAugment(AutoAugmentPolicy::Cifar10),
            PolicyKind::AutoAugment(AutoAugmentPolicy::ImageNet),
            PolicyKind::AutoAugment(AutoAugmentPolicy::Svhn),
            PolicyKind::RAND_AUGMENT,
            PolicyKind::TRIVIAL_AUGMENT_WIDE,
        ];
        for policy in policies {
            let mut differ = 0;
            let augmented = |epoch, index| {
                let mut pixels = image();
                let mut rng = rng_for(1, Purpose::Augment, &[epoch, index]);
                policy.apply(&mut pixels, 32, 32, [0; 3], &mut rng).unwrap();
                pixels
            };
            for index in 0..20 {
                let (first, second, other) = (
                    augmented(2, index),
                    augmented(2, index),
                    augmented(3, index),
                );
                assert_eq!(first, second, "{policy:?} {index}");
                differ += usize::from(first != other);
            }
            assert!(
                differ >= 10,
                "{policy:?}: epochs 2 and 3 agree on {differ} of 20"
            );
        }
    }

    #[test]
    fn magnitudes_are_torchvisions_at_a_few_bins() {
        let standard = |op, bin, bins| MagnitudeSpace::Standard.magnitude(op, bin, bins, 32, 32);
        let wide = |op, bin| MagnitudeSpace::Wide.magnitude(op, bin, 31, 32, 32);
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
        assert!(close(standard(OpKind::ShearX, 9, 10), 0.3));
        assert!(close(standard(OpKind::ShearY, 3, 10), 0.1));
        assert!(close(
            standard(OpKind::TranslateX, 9, 10),
            150.0 / 331.0 * 32.0
        ));
        assert!(close(
            MagnitudeSpace::Standard.magnitude(OpKind::TranslateY, 9, 10, 20, 28),
            150.0 / 331.0 * 20.0
        ));
        assert!(close(standard(OpKind::Rotate, 9, 31), 9.0));
        assert!(close(standard(OpKind::Brightness, 5, 10), 0.5));
        assert!(close(standard(OpKind::Solarize, 0, 10), 255.0));
        assert!(close(standard(OpKind::Solarize, 9, 10), 0.0));
        let posterize: Vec<f64> = (0..10)
            .map(|b| standard(OpKind::Posterize, b, 10))
            .collect();
        assert_eq!(
            posterize,
            [8.0, 8.0, 7.0, 7.0, 6.0, 6.0, 5.0, 5.0, 4.0, 4.0]
        );
        assert_eq!(standard(OpKind::Posterize, 9, 31), 7.0);
        assert!(close(wide(OpKind::ShearX, 30), 0.99));
        assert!(close(wide(OpKind::TranslateX, 15), 16.0));
        assert!(close(wide(OpKind::Rotate, 20), 90.0));
        assert_eq!(wide(OpKind::Posterize, 30), 2.0);
        assert_eq!(wide(OpKind::Posterize, 2), 8.0);
        assert_eq!(wide(OpKind::Posterize, 3), 7.0);
        assert_eq!(wide(OpKind::Equalize, 7), 0.0);
    }

    #[test]
    fn rand_augment_applies_exactly_num_ops_operations_in_order() {
        for num_ops in 0..5 {
            let policy = PolicyKind::RandAugment {
                num_ops,
                magnitude: 20,
                num_magnitude_bins: 31,
            };
            for index in 0..50 {
                let ops = policy.sample_ops(&mut rng(index), 32, 32).unwrap();
                assert_eq!(ops.len(), num_ops);
                // What `apply` does is those operations, one after another.
                let mut expected = image();
                for &op in &ops {
                    apply_op(op, &mut expected, 32, 32, [1, 2, 3]).unwrap();
                }
                let mut applied = image();
                policy
                    .apply(&mut applied, 32, 32, [1, 2, 3], &mut rng(index))
                    .unwrap();
                assert_eq!(applied, expected, "{ops:?}");
                if num_ops == 0 {
                    assert_eq!(applied, image());
                }
            }
        }
        // The default bin 9 of 31: a rotation of 9 degrees either way, Posterize to 7 bits.
        let mut seen = BTreeMap::<String, Vec<ImageOp>>::new();
        for index in 0..400 {
            for op in PolicyKind::RAND_AUGMENT
                .sample_ops(&mut rng(index), 32, 32)
                .unwrap()
            {
                seen.entry(name(&op)).or_default().push(op);
            }
        }
        assert_eq!(seen.len(), RANDOM_OPS.len(), "{:?}", seen.keys());
        let rotations = &seen["Rotate"];
        assert!(rotations.contains(&ImageOp::Rotate(9.0)));
        assert!(rotations.contains(&ImageOp::Rotate(-9.0)));
        assert!(
            seen["Posterize"]
                .iter()
                .all(|&op| op == ImageOp::Posterize(7))
        );
    }

    #[test]
    fn auto_augment_applies_each_step_with_its_probability() {
        let draws = 20_000;
        for policy in [
            AutoAugmentPolicy::Cifar10,
            AutoAugmentPolicy::ImageNet,
            AutoAugmentPolicy::Svhn,
        ] {
            let kind = PolicyKind::AutoAugment(policy);
            let mut applied = 0usize;
            let (mut negative, mut signed) = (0usize, 0usize);
            for index in 0..draws {
                for op in kind.sample_ops(&mut rng(index), 32, 32).unwrap() {
                    applied += 1;
                    if let ImageOp::ShearX(m) | ImageOp::Rotate(m) | ImageOp::TranslateY(m) = op
                        && m != 0.0
                    {
                        signed += 1;
                        negative += usize::from(m < 0.0);
                    }
                }
            }
            let expected: f32 = policy
                .sub_policies()
                .iter()
                .flatten()
                .map(|s| s.probability)
                .sum();
            let mean = applied as f64 / draws as f64;
            assert!(
                (mean - f64::from(expected) / 25.0).abs() < 0.03,
                "{policy:?}: {mean} operations per image"
            );
            let share = negative as f64 / signed as f64;
            assert!((share - 0.5).abs() < 0.05, "{policy:?}: {share} negative");
        }
    }

    #[test]
    fn trivial_augment_wide_applies_one_operation_over_the_whole_range() {
        let mut rotations = Vec::new();
        let mut kinds = BTreeMap::<String, usize>::new();
        for index in 0..3000 {
            let ops = PolicyKind::TRIVIAL_AUGMENT_WIDE
                .sample_ops(&mut rng(index), 32, 32)
                .unwrap();
            assert_eq!(ops.len(), 1);
            *kinds.entry(name(&ops[0])).or_default() += 1;
            if let ImageOp::Rotate(degrees) = ops[0] {
                rotations.push(degrees);
            }
        }
        assert_eq!(kinds.len(), RANDOM_OPS.len(), "{kinds:?}");
        assert!(kinds.values().all(|&count| count > 150), "{kinds:?}");
        let extreme = rotations.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
        assert_eq!(extreme, 135.0);
        assert!(rotations.iter().any(|&d| d < 0.0) && rotations.iter().any(|&d| d > 0.0));
    }

    #[test]
    fn parameters_torchvision_refuses_are_errors() {
        let bad = [
            PolicyKind::RandAugment {
                num_ops: 2,
                magnitude: 31,
                num_magnitude_bins: 31,
            },
            PolicyKind::RandAugment {
                num_ops: 2,
                magnitude: 0,
                num_magnitude_bins: 1,
            },
            PolicyKind::TrivialAugmentWide {
                num_magnitude_bins: 0,
            },
        ];
        for policy in bad {
            let error = policy.validate().unwrap_err();
            assert!(matches!(error, CifarError::BadPolicy { .. }), "{error}");
            let mut pixels = image();
            assert!(
                policy
                    .apply(&mut pixels, 32, 32, [0; 3], &mut rng(0))
                    .is_err()
            );
            assert_eq!(pixels, image());
        }
        assert!(PolicyKind::RAND_AUGMENT.validate().is_ok());
        let mut short = vec![0u8; 100];
        let error = PolicyKind::RAND_AUGMENT
            .apply(&mut short, 32, 32, [0; 3], &mut rng(0))
            .unwrap_err();
        assert!(matches!(error, CifarError::ImageSize { .. }), "{error}");
    }
}
