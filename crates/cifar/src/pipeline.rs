//! A recipe's training transform of one image, in the order torchvision's and timm's training
//! transforms use: geometry (a padded random crop or a random-resized crop), then the automatic
//! augmentation policy, then the horizontal flip, all on uint8 pixels; then normalisation; then
//! random erasing and Cutout on the normalised image. Mixup/CutMix, which mixes whole batches,
//! comes after, in the batcher.
//!
//! The SPEC's own augmentation ([`Augmentation`](crate::Augmentation): flip, then a
//! random-resized crop resampled straight into the normalised output) keeps its faster fused path
//! and its random stream; this pipeline is for configured recipes.
use rand::Rng;

use crate::augment::{
    AugmentParams, HorizontalFlip, Normalization, RandomResizedCrop, normalize_into, resample,
    side_of,
};
use crate::crop::RandomCrop;
use crate::erasing::{Cutout, Occlusion, RandomErasing};
use crate::error::Result;
use crate::policy::PolicyKind;

/// How the image is cropped first.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Geometry {
    /// The whole image as it is.
    None,
    RandomCrop(RandomCrop),
    RandomResizedCrop(RandomResizedCrop),
}

/// One recipe's per-image training transform (see the module docs for the order).
#[derive(Debug, Clone, PartialEq)]
pub struct TrainTransform {
    pub geometry: Geometry,
    pub policy: Option<PolicyKind>,
    /// The colour the policy's geometric operations fill uncovered pixels with.
    pub fill: [u8; 3],
    pub flip: Option<HorizontalFlip>,
    pub erasing: Option<RandomErasing>,
    pub cutout: Option<Cutout>,
}

impl TrainTransform {
    /// Every part off: the image is only normalised.
    pub fn identity() -> Self {
        Self {
            geometry: Geometry::None,
            policy: None,
            fill: [0; 3],
            flip: None,
            erasing: None,
            cutout: None,
        }
    }

    /// An error naming what torchvision would refuse in the policy's parameters; training checks
    /// this before its first batch.
    pub fn validate(&self) -> Result<()> {
        self.policy.as_ref().map_or(Ok(()), PolicyKind::validate)
    }

    /// Transforms `image` (square uint8, CHW: CIFAR's 3x32x32 or a folder data set's) into
    /// `out` (as many normalised floats, the same size), drawing every random choice from `rng`
    /// in pipeline order.
    pub fn apply(
        &self,
        image: &[u8],
        normalization: &Normalization,
        rng: &mut impl Rng,
        out: &mut [f32],
    ) {
        let side = side_of(image);
        let mut pixels = image.to_vec();
        match &self.geometry {
            Geometry::None => {}
            Geometry::RandomCrop(crop) => {
                // The crop keeps the image's size, as `RandomCrop(image_size, padding)` does.
                let crop = RandomCrop {
                    height: side,
                    width: side,
                    ..*crop
                };
                let (top, left) = crop.sample(rng, side, side);
                crop.apply(image, side, side, top, left, &mut pixels);
            }
            Geometry::RandomResizedCrop(crop) => {
                let params = AugmentParams {
                    flip: false,
                    crop: crop.sample_params(rng, side, side),
                };
                // torchvision resizes a uint8 image in floats and rounds back to uint8.
                let resized = resample(image, &params, side);
                for (pixel, value) in pixels.iter_mut().zip(resized) {
                    *pixel = value.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        if let Some(policy) = &self.policy {
            // The buffer is 3 x side x side and `validate` accepted the policy: nothing left to
            // refuse.
            let applied = policy.apply(&mut pixels, side, side, self.fill, rng);
            debug_assert!(applied.is_ok(), "{applied:?}");
        }
        if let Some(flip) = &self.flip
            && flip.sample(rng)
        {
            for row in pixels.chunks_exact_mut(side) {
                row.reverse();
            }
        }
        normalize_into(&pixels, normalization, out);
        if let Some(erasing) = &self.erasing {
            erasing.apply(out, side, side, rng);
        }
        if let Some(cutout) = &self.cutout {
            cutout.apply(out, side, side, rng);
        }
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::Xoshiro256PlusPlus;

    use super::*;
    use crate::crop::PaddingMode;
    use crate::set::{IMAGE_BYTES, IMAGE_SIDE};

    fn ramp() -> [u8; IMAGE_BYTES] {
        std::array::from_fn(|i| (i % 251) as u8)
    }

    #[test]
    fn the_identity_only_normalises() {
        let image = ramp();
        let mut ours = vec![0.0; IMAGE_BYTES];
        let mut plain = vec![0.0; IMAGE_BYTES];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        TrainTransform::identity().apply(&image, &Normalization::CIFAR10, &mut rng, &mut ours);
        normalize_into(&image, &Normalization::CIFAR10, &mut plain);
        for (a, b) in ours.iter().zip(&plain) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn a_certain_flip_mirrors_every_row_after_the_crop() {
        let image = ramp();
        let crop = RandomCrop {
            padding: 0,
            padding_mode: PaddingMode::Constant,
            ..RandomCrop::default()
        };
        let transform = TrainTransform {
            geometry: Geometry::RandomCrop(crop),
            flip: Some(HorizontalFlip { p: 1.0 }),
            ..TrainTransform::identity()
        };
        let mut out = vec![0.0; IMAGE_BYTES];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        transform.apply(&image, &Normalization::UNIT, &mut rng, &mut out);
        for (row_out, row_in) in out
            .chunks_exact(IMAGE_SIDE)
            .zip(image.chunks_exact(IMAGE_SIDE))
        {
            for (&value, &pixel) in row_out.iter().zip(row_in.iter().rev()) {
                assert!(
                    (value - f32::from(pixel) / 255.0).abs() < 1e-6,
                    "{value} vs {pixel}"
                );
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_image_and_another_seed_another() {
        let image = ramp();
        let transform = TrainTransform {
            geometry: Geometry::RandomCrop(RandomCrop::default()),
            flip: Some(HorizontalFlip { p: 0.5 }),
            erasing: Some(RandomErasing {
                p: 1.0,
                ..RandomErasing::default()
            }),
            ..TrainTransform::identity()
        };
        let run = |seed| {
            let mut out = vec![0.0; IMAGE_BYTES];
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
            transform.apply(&image, &Normalization::CIFAR10, &mut rng, &mut out);
            out
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
