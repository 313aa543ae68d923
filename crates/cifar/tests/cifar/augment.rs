//! Crop statistics, exactness of the identity, bilinear values worked out by hand, and
//! normalisation.

use cnnzoo_cifar::{
    AugmentParams, Augmentation, CIFAR10_MEAN, CIFAR10_STD, CropParams, IMAGE_BYTES, IMAGE_SIDE,
    Normalization, RandomResizedCrop, normalize_into, resample, resample_normalized_into,
};
use rand::SeedableRng;

use crate::common::{mini, synthetic_image};

#[test]
fn crop_and_flip_statistics_match_the_spec() {
    let augmentation = Augmentation::default();
    let draws = 10_000;
    let mut flips = 0;
    let (mut min_area, mut max_area) = (f64::MAX, 0.0f64);
    let (mut min_ratio, mut max_ratio) = (f64::MAX, 0.0f64);
    let mut area_sum = 0.0;
    for index in 0..draws {
        let params = augmentation.params_for(42, 1, index, 32);
        let crop = params.crop;
        flips += usize::from(params.flip);
        assert!(crop.height >= 1 && crop.width >= 1);
        assert!(
            crop.top + crop.height <= 32 && crop.left + crop.width <= 32,
            "{crop:?}"
        );
        let (h, w) = (crop.height as f64, crop.width as f64);
        // The sampled area A and ratio r satisfy 0.8 <= A / 1024 <= 1 and 0.9 <= r <= 1.1
        // before w = round(sqrt(A r)) and h = round(sqrt(A / r)); undo the rounding with
        // half a pixel either way.
        assert!((w + 0.5) * (h + 0.5) >= 0.8 * 1024.0, "{crop:?}");
        assert!((w - 0.5) * (h - 0.5) <= 1024.0, "{crop:?}");
        assert!(
            (w + 0.5) / (h - 0.5) >= 0.9 && (w - 0.5) / (h + 0.5) <= 1.1,
            "{crop:?}"
        );
        let area = w * h / 1024.0;
        let ratio = w / h;
        area_sum += area;
        min_area = min_area.min(area);
        max_area = max_area.max(area);
        min_ratio = min_ratio.min(ratio);
        max_ratio = max_ratio.max(ratio);
    }
    let flip_rate = flips as f64 / draws as f64;
    assert!((flip_rate - 0.5).abs() < 0.03, "flip rate {flip_rate}");
    // Area is uniform in [0.8, 1] but crops over 32 pixels a side are rejected, so the mean
    // sits a little under 0.9; both ends of both ranges are reached.
    let mean_area = area_sum / draws as f64;
    assert!((0.85..0.92).contains(&mean_area), "mean area {mean_area}");
    assert!(min_area < 0.8 && max_area == 1.0, "{min_area} {max_area}");
    assert!(
        min_ratio < 0.92 && max_ratio > 1.08,
        "{min_ratio} {max_ratio}"
    );

    // Pure function of (seed, epoch, index).
    assert_eq!(
        augmentation.params_for(42, 3, 17, 32),
        augmentation.params_for(42, 3, 17, 32)
    );
    let epochs_differ = (0..20)
        .any(|i| augmentation.params_for(42, 1, i, 32) != augmentation.params_for(42, 2, i, 32));
    assert!(epochs_differ);
}

#[test]
fn impossible_crops_fall_back_to_the_clamped_centre_crop() {
    // Every attempt asks for more than the whole image: torchvision's fallback.
    let too_big = RandomResizedCrop {
        scale: (2.0, 3.0),
        ratio: (0.9, 1.1),
        size: 32,
    };
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(1);
    assert_eq!(
        too_big.sample_params(&mut rng, 32, 32),
        CropParams::full(32, 32)
    );
    // A wide image: the ratio is clamped to 1.1 and the crop centred.
    let wide = too_big.sample_params(&mut rng, 20, 40);
    assert_eq!(
        wide,
        CropParams {
            top: 0,
            left: 9,
            height: 20,
            width: 22
        }
    );
    // A tall image: the ratio is clamped to 0.9; round(20 / 0.9) = round(22.2) = 22.
    let tall = too_big.sample_params(&mut rng, 40, 20);
    assert_eq!(
        tall,
        CropParams {
            top: 9,
            left: 0,
            height: 22,
            width: 20
        }
    );
}

#[test]
fn identity_parameters_reproduce_the_input_exactly() {
    for image in [synthetic_image(3), first_mini_image()] {
        let out = resample(&image, &AugmentParams::identity(32), IMAGE_SIDE);
        let expected: Vec<f32> = image.iter().map(|&p| f32::from(p)).collect();
        assert_eq!(out, expected);

        // A flip of the whole image is an exact mirror.
        let flipped = AugmentParams {
            flip: true,
            crop: CropParams::full(32, 32),
        };
        let out = resample(&image, &flipped, IMAGE_SIDE);
        for c in 0..3 {
            for y in 0..32 {
                for x in 0..32 {
                    let mirrored = image[c * 1024 + y * 32 + (31 - x)];
                    assert_eq!(out[c * 1024 + y * 32 + x], f32::from(mirrored));
                }
            }
        }
    }
}

fn first_mini_image() -> [u8; IMAGE_BYTES] {
    let mut image = [0u8; IMAGE_BYTES];
    image.copy_from_slice(mini().train.image(0).expect("an image"));
    image
}

#[test]
fn bilinear_upsampling_matches_values_worked_out_by_hand() {
    // Crop the top-left 16x16 of channel 0 and resample it to 32x32: a 2x upsample.
    // PyTorch (align_corners=False): source = (out + 0.5) * 16/32 - 0.5, clamped at 0;
    // i0 = floor(source), i1 = min(i0 + 1, 15), weights (1 - frac, frac).
    //   out 0 -> source -0.25 -> 0        : pixel 0
    //   out 1 -> source  0.25 -> i0 0     : 0.75 p0 + 0.25 p1
    //   out 2 -> source  0.75 -> i0 0     : 0.25 p0 + 0.75 p1
    //   out 31 -> source 15.25 -> i0 15   : pixel 15 (i1 clamps to 15)
    let mut image = [0u8; IMAGE_BYTES];
    image[0] = 0; // (y 0, x 0)
    image[1] = 100; // (y 0, x 1)
    image[32] = 40; // (y 1, x 0)
    image[33] = 200; // (y 1, x 1)
    image[15] = 60; // (y 0, x 15)
    image[15 * 32 + 15] = 80; // (y 15, x 15)
    let params = AugmentParams {
        flip: false,
        crop: CropParams {
            top: 0,
            left: 0,
            height: 16,
            width: 16,
        },
    };
    let out = resample(&image, &params, 32);
    let at = |y: usize, x: usize| out[y * 32 + x];
    assert_eq!(at(0, 0), 0.0);
    // Row 0, column 1: 0.75 * 0 + 0.25 * 100.
    assert_eq!(at(0, 1), 25.0);
    // Row 0, column 2: 0.25 * 0 + 0.75 * 100.
    assert_eq!(at(0, 2), 75.0);
    // Row 1 (rows 0 and 1 weighted 0.75 / 0.25), column 2 (columns 0 and 1 weighted
    // 0.25 / 0.75): 0.75 * (0.25 * 0 + 0.75 * 100) + 0.25 * (0.25 * 40 + 0.75 * 200) = 96.25.
    assert_eq!(at(1, 2), 96.25);
    // Row 2 (0.25 / 0.75), column 1 (0.75 / 0.25):
    // 0.25 * (0.75 * 0 + 0.25 * 100) + 0.75 * (0.75 * 40 + 0.25 * 200) = 66.25.
    assert_eq!(at(2, 1), 66.25);
    // The last output column reads column 15 only; the last output pixel reads (15, 15) only.
    assert_eq!(at(0, 31), 60.0);
    assert_eq!(at(31, 31), 80.0);

    // Bilinear interpolation reproduces a linear ramp exactly: with p(y, x) = 10 y + 3 x the
    // output at (Y, X) is 10 sy + 3 sx with s = clamp(out / 2 - 0.25, 0, 15).
    let mut ramp = [0u8; IMAGE_BYTES];
    for y in 0..16 {
        for x in 0..16 {
            ramp[y * 32 + x] = (10 * y + 3 * x) as u8;
        }
    }
    let out = resample(&ramp, &params, 32);
    for y in 0..32 {
        for x in 0..32 {
            let source = |o: usize| (o as f32 / 2.0 - 0.25).clamp(0.0, 15.0);
            let expected = 10.0 * source(y) + 3.0 * source(x);
            assert!((out[y * 32 + x] - expected).abs() < 1e-4, "({y}, {x})");
        }
    }
}

#[test]
fn a_flipped_offset_crop_reads_the_mirrored_columns() {
    // Flip, then crop columns 4..12 of the flipped image = columns 27 down to 20 of the
    // original. With an 8-wide crop resampled to 32, output column 1 is
    // source 1.5 * 0.25 - 0.5 = -0.125 -> 0: the flipped image's column 4, original column 27.
    let image = synthetic_image(11);
    let params = AugmentParams {
        flip: true,
        crop: CropParams {
            top: 2,
            left: 4,
            height: 32 - 2,
            width: 8,
        },
    };
    let out = resample(&image, &params, 32);
    // Rows: 30 -> 32, source = (y + 0.5) * 30 / 32 - 0.5; for y = 0 that is -0.03125 -> row 0
    // of the crop, i.e. image row 2.
    assert_eq!(out[1], f32::from(image[2 * 32 + 27]));
    // Output column 5: source 5.5 * 0.25 - 0.5 = 0.875 -> flipped columns 4 and 5
    // (original 27 and 26) weighted 0.125 / 0.875.
    let expected = 0.125 * f32::from(image[2 * 32 + 27]) + 0.875 * f32::from(image[2 * 32 + 26]);
    assert!((out[5] - expected).abs() < 1e-4);
}

#[test]
fn normalisation_is_the_spec_formula() {
    let image = synthetic_image(5);
    let mut out = vec![0.0; IMAGE_BYTES];
    normalize_into(&image, &Normalization::CIFAR10, &mut out);
    for (i, (&value, &pixel)) in out.iter().zip(&image).enumerate() {
        let c = i / 1024;
        let expected =
            (f64::from(pixel) / 255.0 - f64::from(CIFAR10_MEAN[c])) / f64::from(CIFAR10_STD[c]);
        assert!((f64::from(value) - expected).abs() < 1e-5, "{i}");
    }
    // The augmenting path normalises the same way.
    let mut augmented = vec![0.0; IMAGE_BYTES];
    resample_normalized_into(
        &image,
        &AugmentParams::identity(32),
        32,
        &Normalization::CIFAR10,
        &mut augmented,
    );
    assert_eq!(augmented, out);
}

#[test]
fn mini_statistics_are_close_to_the_spec_constants() {
    // The SPEC constants are the statistics of the 50,000 training images; the 4,065 of the
    // mini set are a sample of them.
    let stats = Normalization::from_set(&mini().train);
    for c in 0..3 {
        assert!((stats.mean[c] - CIFAR10_MEAN[c]).abs() < 0.01, "{stats:?}");
        assert!((stats.std[c] - CIFAR10_STD[c]).abs() < 0.01, "{stats:?}");
    }
}
