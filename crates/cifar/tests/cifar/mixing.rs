//! Mixup and CutMix as timm computes them: pixel values, lambda against the pixels that
//! changed, soft targets, and the loss a soft-target cross-entropy takes from them.

use cnnzoo_cifar::{CifarError, MixKind, MixOutcome, Mixup, smoothed_one_hot};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// Random-looking but fixed values for `len` pixels.
fn pixels(len: usize, salt: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919 + salt * 104_729) % 1_000) as f32 / 250.0 - 2.0)
        .collect()
}

/// `mixup` of a `[batch, channels, height, width]` batch of `images` with the generator of
/// `seed`.
fn mix(
    mixup: &Mixup,
    images: &mut [f32],
    (batch, channels, height, width): (usize, usize, usize, usize),
    labels: &[usize],
    seed: u64,
) -> cnnzoo_cifar::Result<MixOutcome> {
    mixup.apply(
        images,
        batch,
        channels,
        height,
        width,
        labels,
        &mut rng(seed),
    )
}

fn rng(seed: u64) -> Xoshiro256PlusPlus {
    Xoshiro256PlusPlus::seed_from_u64(seed)
}

/// `-sum(t * log_softmax(z))` of one row, in f64.
fn soft_cross_entropy(logits: &[f64], targets: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f64::MIN, f64::max);
    let log_sum = logits.iter().map(|z| (z - max).exp()).sum::<f64>().ln() + max;
    -logits
        .iter()
        .zip(targets)
        .map(|(z, &t)| f64::from(t) * (z - log_sum))
        .sum::<f64>()
}

#[test]
fn smoothed_one_hot_rows_hold_on_and_off_values() {
    // Smoothing 0.2 over 4 classes: off = 0.05, on = 1 - 0.2 + 0.05 = 0.85.
    let targets = smoothed_one_hot(&[2, 0], 4, 0.2).expect("labels in range");
    assert_eq!(targets, [0.05, 0.05, 0.85, 0.05, 0.85, 0.05, 0.05, 0.05]);
    assert_eq!(
        smoothed_one_hot(&[1], 3, 0.0).expect("in range"),
        [0.0, 1.0, 0.0]
    );
    assert!(matches!(
        smoothed_one_hot(&[0, 4], 4, 0.1),
        Err(CifarError::LabelOutOfRange {
            index: 1,
            label: 4,
            num_classes: 4
        })
    ));
}

#[test]
fn every_target_row_sums_to_one() {
    let configs = [
        Mixup::new(10),
        Mixup {
            mixup_alpha: 0.0,
            cutmix_alpha: 1.0,
            ..Mixup::new(100)
        },
        Mixup {
            mixup_alpha: 0.8,
            cutmix_alpha: 1.0,
            prob: 0.5,
            label_smoothing: 0.0,
            ..Mixup::new(100)
        },
    ];
    let (batch, channels, height, width) = (5, 3, 6, 7);
    let labels = [3, 9, 0, 9, 1];
    for mixup in configs {
        for seed in 0..200 {
            let mut images = pixels(batch * channels * height * width, seed);
            let outcome = mix(
                &mixup,
                &mut images,
                (batch, channels, height, width),
                &labels,
                seed as u64,
            )
            .expect("shapes and labels are valid");
            assert_eq!(outcome.targets.len(), batch * mixup.num_classes);
            for row in outcome.targets.chunks(mixup.num_classes) {
                let sum: f64 = row.iter().map(|&t| f64::from(t)).sum();
                assert!((sum - 1.0).abs() <= 1e-6, "{mixup:?} seed {seed}: {sum}");
                assert!(row.iter().all(|t| (0.0..=1.0).contains(t)));
            }
        }
    }
}

#[test]
fn cutmix_lambda_is_the_fraction_of_pixels_kept() {
    let (channels, height, width) = (3, 7, 9);
    let plane = height * width;
    let mixup = Mixup {
        mixup_alpha: 0.0,
        cutmix_alpha: 1.0,
        label_smoothing: 0.0,
        ..Mixup::new(2)
    };
    let mut cut = 0;
    for seed in 0..500 {
        // Image 0 is all 1 and image 1 all -2, so a pixel's value says where it came from.
        let mut images = vec![1.0; channels * plane];
        images.extend(vec![-2.0f32; channels * plane]);
        let outcome = mixup
            .apply(
                &mut images,
                2,
                channels,
                height,
                width,
                &[0, 1],
                &mut rng(seed),
            )
            .expect("valid");
        let (first, second) = images.split_at(channels * plane);
        let changed = first[..plane].iter().filter(|&&v| v == -2.0).count();
        assert_eq!(outcome.lambda, 1.0 - changed as f64 / plane as f64);
        // Every channel changed at the same pixels, and image 1 got exactly image 0's pixels.
        for channel in 0..channels {
            for i in 0..plane {
                let moved = first[i] == -2.0;
                assert_eq!(first[channel * plane + i], if moved { -2.0 } else { 1.0 });
                assert_eq!(second[channel * plane + i], if moved { 1.0 } else { -2.0 });
            }
        }
        // Unsmoothed targets: image 0 is lambda class 0 and 1 - lambda class 1.
        let (keep, take) = (outcome.lambda as f32, (1.0 - outcome.lambda) as f32);
        assert_eq!(outcome.targets, [keep, take, take, keep]);
        let expected_kind = if changed > 0 {
            MixKind::CutMix
        } else {
            MixKind::None
        };
        assert_eq!(outcome.kind, expected_kind);
        cut += usize::from(changed > 0);
    }
    // Beta(1, 1) lambdas cut a box of some pixels almost every time.
    assert!(cut > 400, "{cut}");
}

#[test]
fn mixup_blends_each_image_with_its_mirror() {
    let (batch, channels, height, width) = (3, 2, 4, 5);
    let image_len = channels * height * width;
    let mixup = Mixup::new(10);
    let mut lambdas = Vec::new();
    for seed in 0..300 {
        let original = pixels(batch * image_len, seed as usize);
        let mut images = original.clone();
        let outcome = mixup
            .apply(
                &mut images,
                batch,
                channels,
                height,
                width,
                &[1, 2, 3],
                &mut rng(seed),
            )
            .expect("valid");
        assert_eq!(outcome.kind, MixKind::Mixup);
        let lambda = outcome.lambda;
        let (keep, take) = (lambda as f32, (1.0 - lambda) as f32);
        for i in 0..image_len {
            let (a, b, c) = (
                original[i],
                original[image_len + i],
                original[2 * image_len + i],
            );
            // timm's f32 arithmetic exactly, and lam * a + (1 - lam) * c to within rounding.
            assert_eq!(images[i], a * keep + c * take);
            assert_eq!(images[2 * image_len + i], c * keep + a * take);
            let exact = lambda * f64::from(a) + (1.0 - lambda) * f64::from(c);
            assert!((f64::from(images[i]) - exact).abs() < 1e-5);
            // The middle image of an odd batch mixes with itself.
            assert!((images[image_len + i] - b).abs() < 1e-5);
        }
        lambdas.push(lambda);
    }
    // Beta(1, 1) is uniform on [0, 1]: mean 1/2.
    let mean = lambdas.iter().sum::<f64>() / lambdas.len() as f64;
    assert!((mean - 0.5).abs() < 0.06, "{mean}");
}

#[test]
fn probability_zero_leaves_images_alone_with_smoothed_targets() {
    let (batch, channels, height, width) = (4, 3, 5, 5);
    let mixup = Mixup {
        cutmix_alpha: 1.0,
        prob: 0.0,
        ..Mixup::new(5)
    };
    let labels = [4, 0, 2, 2];
    for seed in 0..50 {
        let original = pixels(batch * channels * height * width, seed as usize);
        let mut images = original.clone();
        let outcome = mix(
            &mixup,
            &mut images,
            (batch, channels, height, width),
            &labels,
            seed,
        )
        .expect("valid");
        assert_eq!(outcome.kind, MixKind::None);
        assert_eq!(outcome.lambda, 1.0);
        assert_eq!(images, original);
        // Smoothing 0.1 over 5 classes: off 0.02, on 0.92.
        let expected = smoothed_one_hot(&labels, 5, 0.1).expect("in range");
        assert_eq!(outcome.targets, expected);
        assert_eq!(&expected[..5], [0.02, 0.02, 0.02, 0.02, 0.92]);
    }
}

#[test]
fn switch_probability_chooses_between_mixup_and_cutmix() {
    let kinds = |switch_prob| {
        let mixup = Mixup {
            cutmix_alpha: 1.0,
            switch_prob,
            ..Mixup::new(10)
        };
        (0..1_000)
            .map(|seed| {
                let mut images = pixels(2 * 3 * 32 * 32, 0);
                let outcome = mixup
                    .apply(&mut images, 2, 3, 32, 32, &[0, 1], &mut rng(seed))
                    .expect("valid");
                outcome.kind
            })
            .collect::<Vec<_>>()
    };
    let count = |kinds: &[MixKind], kind| kinds.iter().filter(|&&k| k == kind).count();
    assert_eq!(count(&kinds(0.0), MixKind::Mixup), 1_000);
    // CutMix's box can come out empty (lambda near 1), which leaves the batch unmixed.
    assert_eq!(count(&kinds(1.0), MixKind::Mixup), 0);
    let even = kinds(0.5);
    let (mixed, cut) = (count(&even, MixKind::Mixup), count(&even, MixKind::CutMix));
    assert!((430..=570).contains(&mixed) && cut > 400, "{mixed} {cut}");
}

#[test]
fn soft_target_cross_entropy_matches_the_value_by_hand() {
    // Both images get logits z = (ln 2, 0, 0): softmax (1/2, 1/4, 1/4), so
    // log_softmax = (-ln 2, -2 ln 2, -2 ln 2) and a row t costs ln 2 * (t0 + 2 t1 + 2 t2)
    // = ln 2 * (2 - t0) for rows summing to 1.
    let logits = [2f64.ln(), 0.0, 0.0];
    let ln2 = std::f64::consts::LN_2;
    let mixup = Mixup {
        label_smoothing: 0.3,
        ..Mixup::new(3)
    };
    for seed in 0..20 {
        let mut images = pixels(2 * 3 * 4 * 4, seed as usize);
        let outcome = mixup
            .apply(&mut images, 2, 3, 4, 4, &[0, 1], &mut rng(seed))
            .expect("valid");
        assert_eq!(outcome.kind, MixKind::Mixup);
        let rows: Vec<f64> = outcome
            .targets
            .chunks(3)
            .map(|row| soft_cross_entropy(&logits, row))
            .collect();
        // Smoothing 0.3 over 3 classes: off 0.1, on 0.8. Row 0 (label 0, mixed with label 1)
        // has t0 = 0.8 lam + 0.1 (1 - lam) = 0.1 + 0.7 lam and costs ln 2 * (1.9 - 0.7 lam);
        // row 1 (label 1, mixed with label 0) has t0 = 0.8 - 0.7 lam and costs
        // ln 2 * (1.2 + 0.7 lam).
        let lambda = outcome.lambda;
        assert!(
            (rows[0] - ln2 * (1.9 - 0.7 * lambda)).abs() < 1e-6,
            "{rows:?}"
        );
        assert!(
            (rows[1] - ln2 * (1.2 + 0.7 * lambda)).abs() < 1e-6,
            "{rows:?}"
        );
        // The batch mean, which SoftTargetCrossEntropy returns, is 3.1 / 2 * ln 2
        // = 1.55 * 0.693147... = 1.0743781, whatever lambda was drawn.
        let mean = (rows[0] + rows[1]) / 2.0;
        assert!((mean - 1.074_378_1).abs() < 1e-6, "{mean}");
    }

    // Unmixed (prob 0): row 0 is (0.8, 0.1, 0.1) and costs 1.2 ln 2 = 0.8317766.
    let unmixed = Mixup { prob: 0.0, ..mixup };
    let mut images = pixels(2 * 3 * 4 * 4, 0);
    let outcome = unmixed
        .apply(&mut images, 2, 3, 4, 4, &[0, 1], &mut rng(0))
        .expect("valid");
    let loss = soft_cross_entropy(&logits, &outcome.targets[..3]);
    assert!((loss - 0.831_776_6).abs() < 1e-6, "{loss}");
}

#[test]
fn bad_shapes_and_labels_are_errors_that_change_nothing() {
    let mixup = Mixup::new(3);
    let original = pixels(2 * 3 * 2 * 2, 1);
    let mut images = original.clone();
    let result = mixup.apply(&mut images, 2, 3, 2, 2, &[0, 3], &mut rng(0));
    assert!(matches!(
        result,
        Err(CifarError::LabelOutOfRange {
            index: 1,
            label: 3,
            ..
        })
    ));
    let result = mixup.apply(&mut images, 2, 3, 2, 2, &[0], &mut rng(0));
    assert!(matches!(
        result,
        Err(CifarError::BatchShape {
            what: "labels",
            found: 1,
            expected: 2
        })
    ));
    let result = mixup.apply(&mut images, 2, 3, 3, 2, &[0, 1], &mut rng(0));
    assert!(matches!(
        result,
        Err(CifarError::BatchShape {
            what: "images",
            found: 24,
            expected: 36
        })
    ));
    assert_eq!(images, original);
}
