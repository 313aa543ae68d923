//! The image operations and magnitude tables against torchvision's own outputs
//! (`scripts/make_augment_fixtures.py`), the pad and erase fixtures' consistency, and the speed
//! of AutoAugment.

use std::collections::BTreeMap;

use cnnzoo_cifar::{
    AutoAugmentPolicy, IMAGE_BYTES, ImageOp, MagnitudeSpace, Normalization, OpKind, PolicyKind,
    RANDOM_OPS, apply_op, apply_op_into, normalize_into,
};

use crate::records::{Record, read_records};

/// torchvision's name of an operation.
fn op_kind(name: &str) -> OpKind {
    match name {
        "Identity" => OpKind::Identity,
        "ShearX" => OpKind::ShearX,
        "ShearY" => OpKind::ShearY,
        "TranslateX" => OpKind::TranslateX,
        "TranslateY" => OpKind::TranslateY,
        "Rotate" => OpKind::Rotate,
        "Brightness" => OpKind::Brightness,
        "Color" => OpKind::Color,
        "Contrast" => OpKind::Contrast,
        "Sharpness" => OpKind::Sharpness,
        "Posterize" => OpKind::Posterize,
        "Solarize" => OpKind::Solarize,
        "AutoContrast" => OpKind::AutoContrast,
        "Equalize" => OpKind::Equalize,
        "Invert" => OpKind::Invert,
        other => panic!("unknown operation {other}"),
    }
}

/// A fill written as "R,G,B".
fn parse_fill(text: &str) -> [u8; 3] {
    let values: Vec<u8> = text.split(',').map(|v| v.parse().expect("fill")).collect();
    values.try_into().expect("three fill values")
}

#[test]
fn every_operation_matches_torchvision_within_one_grey_level() {
    let records = read_records("ops.bin.gz");
    let inputs: BTreeMap<usize, &Record> = records
        .iter()
        .filter(|r| r.field("kind") == "input")
        .map(|r| (r.parse("image"), r))
        .collect();
    let mut checked = BTreeMap::<String, usize>::new();
    let mut failures = Vec::new();
    for (case, record) in records
        .iter()
        .filter(|r| r.field("kind") == "op")
        .enumerate()
    {
        let input = inputs[&record.parse::<usize>("image")];
        let (height, width) = (input.shape[1], input.shape[2]);
        let name = record.field("op");
        let op = op_kind(name).with_magnitude(record.parse("magnitude"));
        let fill = parse_fill(record.field("fill"));
        // Both entry points, alternately: in place and into a buffer.
        let mut output = input.bytes().to_vec();
        if case % 2 == 0 {
            apply_op(op, &mut output, height, width, fill).expect("apply");
        } else {
            apply_op_into(op, input.bytes(), &mut output, height, width, fill).expect("apply");
        }
        let expected = record.bytes();
        let differences = output.iter().zip(expected).filter(|(a, b)| a != b).count();
        let worst = output
            .iter()
            .zip(expected)
            .map(|(&a, &b)| a.abs_diff(b))
            .max()
            .unwrap_or(0);
        // The blends truncate a single-precision sum whose order of operations torch may
        // change (SIMD, fused multiply-adds), which can put a value a hair either side of an
        // integer: one grey level, for a few bytes (rounding instead of truncating, also within
        // a level, would change about half of them). Everything else is exact: the warps pick
        // the same source pixel (a different one would differ by far more than 1), and the rest
        // is integers. On the machine that wrote the fixtures every byte matched.
        let blend = matches!(
            op,
            ImageOp::Brightness(_)
                | ImageOp::Color(_)
                | ImageOp::Contrast(_)
                | ImageOp::Sharpness(_)
                | ImageOp::AutoContrast
        );
        if worst > u8::from(blend) || differences > expected.len() / 100 {
            let key = &record.key;
            failures.push(format!(
                "{key}: {differences} bytes differ, by up to {worst}"
            ));
        }
        *checked.entry(name.to_owned()).or_default() += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every operation was in the fixtures, on each of the three images.
    assert_eq!(checked.len(), 15, "{checked:?}");
    assert_eq!(checked.values().sum::<usize>(), 3 * 93, "{checked:?}");
}

#[test]
fn magnitude_spaces_match_torchvisions_at_every_bin() {
    let records = read_records("spaces.bin.gz");
    let mut ops_per_space = BTreeMap::<String, Vec<OpKind>>::new();
    for record in &records {
        let policy = record.field("policy");
        let space = match policy {
            "TrivialAugmentWide" => MagnitudeSpace::Wide,
            _ => MagnitudeSpace::Standard,
        };
        let (bins, height, width) = (
            record.parse::<usize>("bins"),
            record.parse("height"),
            record.parse("width"),
        );
        let op = op_kind(record.field("op"));
        assert_eq!(op.signed(), record.field("signed") == "1", "{}", record.key);
        let expected = record.floats();
        // Operations without a magnitude hold one 0, the others one value per bin.
        assert!(
            expected.len() == 1 || expected.len() == bins,
            "{}",
            record.key
        );
        for (bin, &value) in expected.iter().enumerate() {
            let magnitude = space.magnitude(op, bin, bins, height, width);
            // torch's `linspace` computes a long range's elements in SIMD chunks whose rounding
            // depends on the CPU's vector width, so the last bit may differ from the scalar
            // formula here: at most 2 units in the last place of a single-precision value.
            let ulps = (magnitude as f32).to_bits().abs_diff(value.to_bits());
            assert!(
                ulps <= 2 || magnitude as f32 == value,
                "{} bin {bin}: {magnitude} vs {value}",
                record.key
            );
            // They are single-precision values, as torch's are.
            assert_eq!(f64::from(magnitude as f32), magnitude, "{}", record.key);
        }
        ops_per_space
            .entry(format!("{policy} {bins} {height}x{width}"))
            .or_default()
            .push(op);
    }
    for (space, ops) in &ops_per_space {
        if space.starts_with("AutoAugment") {
            let mut expected: Vec<OpKind> = RANDOM_OPS[1..].to_vec();
            expected.push(OpKind::Invert);
            assert_eq!(*ops, expected, "{space}");
        } else {
            assert_eq!(*ops, RANDOM_OPS, "{space}");
        }
    }
    assert_eq!(ops_per_space.len(), 8);
}

/// The pad and erase fixtures, which other code is checked against, hold what they say: crops
/// are windows of the padded images, padding keeps the image in the middle, erasing zeroes the
/// box and nothing else, and the normalised image is this crate's normalisation.
#[test]
fn pad_and_erase_fixtures_are_consistent() {
    let records = read_records("pad_erase.bin.gz");
    let find = |key: &str| {
        records
            .iter()
            .find(|r| r.key == key)
            .unwrap_or_else(|| panic!("no record {key}"))
    };
    let input = find("kind=input image=0").bytes();
    let mut pads = 0;
    for padded in records.iter().filter(|r| r.field("kind") == "pad") {
        assert_eq!(padded.shape, [3, 40, 40]);
        let bytes = padded.bytes();
        for channel in 0..3 {
            for y in 0..32 {
                let row = &bytes[channel * 1600 + (y + 4) * 40 + 4..][..32];
                assert_eq!(
                    row,
                    &input[channel * 1024 + y * 32..][..32],
                    "{}",
                    padded.key
                );
            }
        }
        if padded.field("mode") == "constant" {
            let fill: u8 = padded.parse("fill");
            assert!(bytes[..40 * 4].iter().all(|&v| v == fill), "{}", padded.key);
        }
        for crop in records.iter().filter(|r| {
            r.field("kind") == "pad_crop"
                && r.field("mode") == padded.field("mode")
                && r.field("fill") == padded.field("fill")
        }) {
            let (top, left): (usize, usize) = (crop.parse("top"), crop.parse("left"));
            for channel in 0..3 {
                for y in 0..32 {
                    let window = &bytes[channel * 1600 + (top + y) * 40 + left..][..32];
                    assert_eq!(&crop.bytes()[channel * 1024 + y * 32..][..32], window);
                }
            }
            pads += 1;
        }
    }
    assert_eq!(pads, 16);

    let normalized = find("kind=normalized image=0").floats();
    let image: &[u8; IMAGE_BYTES] = input.try_into().expect("a 32x32 image");
    let mut ours = vec![0.0f32; IMAGE_BYTES];
    normalize_into(image, &Normalization::CIFAR10, &mut ours);
    for (a, b) in ours.iter().zip(normalized) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    let mut erasures = 0;
    for erased in records.iter().filter(|r| r.field("kind") == "erase") {
        let [i, j, h, w] = ["i", "j", "h", "w"].map(|name| erased.parse::<usize>(name));
        for (index, (&value, &original)) in erased.floats().iter().zip(normalized).enumerate() {
            let (y, x) = (index % 1024 / 32, index % 32);
            let inside = (i..i + h).contains(&y) && (j..j + w).contains(&x);
            assert_eq!(value, if inside { 0.0 } else { original }, "{}", erased.key);
        }
        erasures += 1;
    }
    assert_eq!(erasures, 4);
}

/// Single-threaded throughput of AutoAugment(CIFAR-10) on 10,000 32x32 images drawn as in
/// training; run it optimised, e.g.
/// `cargo test -p cnnzoo-cifar --test cifar --config 'profile.dev.package.cnnzoo-cifar.opt-level=3'
/// -- --ignored --nocapture auto_augment_speed`.
#[test]
#[ignore = "a timing, not a check; run it by hand in an optimised build"]
fn auto_augment_speed() {
    let policy = PolicyKind::AutoAugment(AutoAugmentPolicy::Cifar10);
    let data = crate::common::mini();
    let images = &data.test.images;
    let count = 10_000;
    let mut pixels = vec![0u8; IMAGE_BYTES];
    let mut checksum = 0u64;
    let start = std::time::Instant::now();
    for index in 0..count {
        let offset = index % (images.len() / IMAGE_BYTES) * IMAGE_BYTES;
        pixels.copy_from_slice(&images[offset..offset + IMAGE_BYTES]);
        let mut rng =
            <rand::rngs::Xoshiro256PlusPlus as rand::SeedableRng>::seed_from_u64(index as u64);
        policy
            .apply(&mut pixels, 32, 32, [0; 3], &mut rng)
            .expect("apply");
        checksum += u64::from(pixels[index % IMAGE_BYTES]);
    }
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "AutoAugment(CIFAR-10): {count} images in {seconds:.3} s, {:.0} images/s (checksum {checksum})",
        count as f64 / seconds
    );
}
