//! The 25 sub-policies of each of AutoAugment's learned policies, as torchvision lists them in
//! `AutoAugment._get_policies`: (operation, probability, magnitude bin of 10).

use crate::policy::OpKind::{
    AutoContrast, Brightness, Color, Contrast, Equalize, Invert, Posterize, Rotate, Sharpness,
    ShearX, ShearY, Solarize, TranslateX, TranslateY,
};
use crate::policy::{OpKind, PolicyStep, SubPolicy};

/// A step whose operation takes its magnitude from `bin`.
const fn with(op: OpKind, probability: f32, bin: u8) -> PolicyStep {
    PolicyStep {
        op,
        probability,
        magnitude_bin: Some(bin),
    }
}

/// A step whose operation has no magnitude.
const fn bare(op: OpKind, probability: f32) -> PolicyStep {
    PolicyStep {
        op,
        probability,
        magnitude_bin: None,
    }
}

/// torchvision's `AutoAugmentPolicy.IMAGENET`.
pub(crate) const IMAGENET: [SubPolicy; 25] = [
    [with(Posterize, 0.4, 8), with(Rotate, 0.6, 9)],
    [with(Solarize, 0.6, 5), bare(AutoContrast, 0.6)],
    [bare(Equalize, 0.8), bare(Equalize, 0.6)],
    [with(Posterize, 0.6, 7), with(Posterize, 0.6, 6)],
    [bare(Equalize, 0.4), with(Solarize, 0.2, 4)],
    [bare(Equalize, 0.4), with(Rotate, 0.8, 8)],
    [with(Solarize, 0.6, 3), bare(Equalize, 0.6)],
    [with(Posterize, 0.8, 5), bare(Equalize, 1.0)],
    [with(Rotate, 0.2, 3), with(Solarize, 0.6, 8)],
    [bare(Equalize, 0.6), with(Posterize, 0.4, 6)],
    [with(Rotate, 0.8, 8), with(Color, 0.4, 0)],
    [with(Rotate, 0.4, 9), bare(Equalize, 0.6)],
    [bare(Equalize, 0.0), bare(Equalize, 0.8)],
    [bare(Invert, 0.6), bare(Equalize, 1.0)],
    [with(Color, 0.6, 4), with(Contrast, 1.0, 8)],
    [with(Rotate, 0.8, 8), with(Color, 1.0, 2)],
    [with(Color, 0.8, 8), with(Solarize, 0.8, 7)],
    [with(Sharpness, 0.4, 7), bare(Invert, 0.6)],
    [with(ShearX, 0.6, 5), bare(Equalize, 1.0)],
    [with(Color, 0.4, 0), bare(Equalize, 0.6)],
    [bare(Equalize, 0.4), with(Solarize, 0.2, 4)],
    [with(Solarize, 0.6, 5), bare(AutoContrast, 0.6)],
    [bare(Invert, 0.6), bare(Equalize, 1.0)],
    [with(Color, 0.6, 4), with(Contrast, 1.0, 8)],
    [bare(Equalize, 0.8), bare(Equalize, 0.6)],
];

/// torchvision's `AutoAugmentPolicy.CIFAR10`.
pub(crate) const CIFAR10: [SubPolicy; 25] = [
    [bare(Invert, 0.1), with(Contrast, 0.2, 6)],
    [with(Rotate, 0.7, 2), with(TranslateX, 0.3, 9)],
    [with(Sharpness, 0.8, 1), with(Sharpness, 0.9, 3)],
    [with(ShearY, 0.5, 8), with(TranslateY, 0.7, 9)],
    [bare(AutoContrast, 0.5), bare(Equalize, 0.9)],
    [with(ShearY, 0.2, 7), with(Posterize, 0.3, 7)],
    [with(Color, 0.4, 3), with(Brightness, 0.6, 7)],
    [with(Sharpness, 0.3, 9), with(Brightness, 0.7, 9)],
    [bare(Equalize, 0.6), bare(Equalize, 0.5)],
    [with(Contrast, 0.6, 7), with(Sharpness, 0.6, 5)],
    [with(Color, 0.7, 7), with(TranslateX, 0.5, 8)],
    [bare(Equalize, 0.3), bare(AutoContrast, 0.4)],
    [with(TranslateY, 0.4, 3), with(Sharpness, 0.2, 6)],
    [with(Brightness, 0.9, 6), with(Color, 0.2, 8)],
    [with(Solarize, 0.5, 2), bare(Invert, 0.0)],
    [bare(Equalize, 0.2), bare(AutoContrast, 0.6)],
    [bare(Equalize, 0.2), bare(Equalize, 0.6)],
    [with(Color, 0.9, 9), bare(Equalize, 0.6)],
    [bare(AutoContrast, 0.8), with(Solarize, 0.2, 8)],
    [with(Brightness, 0.1, 3), with(Color, 0.7, 0)],
    [with(Solarize, 0.4, 5), bare(AutoContrast, 0.9)],
    [with(TranslateY, 0.9, 9), with(TranslateY, 0.7, 9)],
    [bare(AutoContrast, 0.9), with(Solarize, 0.8, 3)],
    [bare(Equalize, 0.8), bare(Invert, 0.1)],
    [with(TranslateY, 0.7, 9), bare(AutoContrast, 0.9)],
];

/// torchvision's `AutoAugmentPolicy.SVHN`.
pub(crate) const SVHN: [SubPolicy; 25] = [
    [with(ShearX, 0.9, 4), bare(Invert, 0.2)],
    [with(ShearY, 0.9, 8), bare(Invert, 0.7)],
    [bare(Equalize, 0.6), with(Solarize, 0.6, 6)],
    [bare(Invert, 0.9), bare(Equalize, 0.6)],
    [bare(Equalize, 0.6), with(Rotate, 0.9, 3)],
    [with(ShearX, 0.9, 4), bare(AutoContrast, 0.8)],
    [with(ShearY, 0.9, 8), bare(Invert, 0.4)],
    [with(ShearY, 0.9, 5), with(Solarize, 0.2, 6)],
    [bare(Invert, 0.9), bare(AutoContrast, 0.8)],
    [bare(Equalize, 0.6), with(Rotate, 0.9, 3)],
    [with(ShearX, 0.9, 4), with(Solarize, 0.3, 3)],
    [with(ShearY, 0.8, 8), bare(Invert, 0.7)],
    [bare(Equalize, 0.9), with(TranslateY, 0.6, 6)],
    [bare(Invert, 0.9), bare(Equalize, 0.6)],
    [with(Contrast, 0.3, 3), with(Rotate, 0.8, 4)],
    [bare(Invert, 0.8), with(TranslateY, 0.0, 2)],
    [with(ShearY, 0.7, 6), with(Solarize, 0.4, 8)],
    [bare(Invert, 0.6), with(Rotate, 0.8, 4)],
    [with(ShearY, 0.3, 7), with(TranslateX, 0.9, 3)],
    [with(ShearX, 0.1, 6), bare(Invert, 0.6)],
    [with(Solarize, 0.7, 2), with(TranslateY, 0.6, 7)],
    [with(ShearY, 0.8, 4), bare(Invert, 0.8)],
    [with(ShearX, 0.7, 9), with(TranslateY, 0.8, 3)],
    [with(ShearY, 0.8, 5), bare(AutoContrast, 0.7)],
    [with(ShearX, 0.7, 2), bare(Invert, 0.1)],
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AutoAugmentPolicy;

    #[test]
    fn auto_augment_tables_are_torchvisions() {
        let step = |op, probability, bin| PolicyStep {
            op,
            probability,
            magnitude_bin: bin,
        };
        let cifar10 = AutoAugmentPolicy::Cifar10.sub_policies();
        let imagenet = AutoAugmentPolicy::ImageNet.sub_policies();
        let svhn = AutoAugmentPolicy::Svhn.sub_policies();
        use OpKind::*;
        assert_eq!(
            cifar10[0],
            [step(Invert, 0.1, None), step(Contrast, 0.2, Some(6))]
        );
        assert_eq!(
            cifar10[3],
            [step(ShearY, 0.5, Some(8)), step(TranslateY, 0.7, Some(9))]
        );
        assert_eq!(
            cifar10[24],
            [
                step(TranslateY, 0.7, Some(9)),
                step(AutoContrast, 0.9, None)
            ]
        );
        assert_eq!(
            imagenet[0],
            [step(Posterize, 0.4, Some(8)), step(Rotate, 0.6, Some(9))]
        );
        assert_eq!(
            imagenet[18],
            [step(ShearX, 0.6, Some(5)), step(Equalize, 1.0, None)]
        );
        assert_eq!(
            svhn[15],
            [step(Invert, 0.8, None), step(TranslateY, 0.0, Some(2))]
        );
        assert_eq!(
            svhn[22],
            [step(ShearX, 0.7, Some(9)), step(TranslateY, 0.8, Some(3))]
        );
        // Sums over each whole table, from torchvision 0.29's `AutoAugment(policy).policies`:
        // probabilities, magnitude bins, and steps without a magnitude.
        let totals = |table: &[SubPolicy; 25]| {
            let steps = table.iter().flatten();
            let probability: f32 = steps.clone().map(|s| s.probability).sum();
            let bins: usize = steps
                .clone()
                .filter_map(|s| s.magnitude_bin)
                .map(usize::from)
                .sum();
            let bare = steps.filter(|s| s.magnitude_bin.is_none()).count();
            ((probability * 10.0).round() as u32, bins, bare)
        };
        assert_eq!(totals(cifar10), (265, 187, 19));
        assert_eq!(totals(imagenet), (310, 159, 22));
        assert_eq!(totals(svhn), (329, 143, 21));
        // A step has a magnitude exactly when its operation has a range of them.
        for step in [cifar10, imagenet, svhn].into_iter().flatten().flatten() {
            assert_eq!(
                step.magnitude_bin.is_some(),
                crate::policy::has_magnitude(step.op),
                "{step:?}"
            );
        }
    }
}
