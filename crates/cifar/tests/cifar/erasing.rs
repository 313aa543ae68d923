//! Random erasing and Cutout: box sizes and shapes within their ranges, the values each mode
//! writes, and images left bit for bit alone when nothing is drawn.

use cnnzoo_cifar::{CropParams, Cutout, ErasingValue, Occlusion, RandomErasing};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// A CHW image whose every value differs from 0 and from its neighbours.
fn image(channels: usize, height: usize, width: usize) -> Vec<f32> {
    (0..channels * height * width)
        .map(|i| 1.0 + i as f32 / 7.0)
        .collect()
}

/// Whether pixel (`y`, `x`) lies in `region`.
fn inside(region: &CropParams, y: usize, x: usize) -> bool {
    (region.top..region.top + region.height).contains(&y)
        && (region.left..region.left + region.width).contains(&x)
}

/// Calls `check(before, after, channel, y, x)` on every value of a `height` x `width` image.
fn each_value(
    before: &[f32],
    after: &[f32],
    height: usize,
    width: usize,
    mut check: impl FnMut(f32, f32, usize, usize, usize),
) {
    for (i, (&b, &a)) in before.iter().zip(after).enumerate() {
        let plane = i % (height * width);
        check(b, a, i / (height * width), plane / width, plane % width);
    }
}

/// `erasing` applied to a copy of `original` with the generator of `seed`: the copy and the box.
fn erase_seeded(
    erasing: &RandomErasing,
    original: &[f32],
    (height, width): (usize, usize),
    seed: u64,
) -> (Vec<f32>, Option<CropParams>) {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut erased = original.to_vec();
    let region = erasing.apply(&mut erased, height, width, &mut rng);
    (erased, region)
}

/// Erases a 3-channel `height` x `width` image with the default random erasing at p = 1 filling
/// with `value`, once per seed; checks that every value outside the box is left bit for bit,
/// and calls `check(region, erased)` with the box and the `(channel, value)` of every value
/// inside it.
fn erase_each_seed(
    value: ErasingValue,
    (height, width): (usize, usize),
    seeds: std::ops::Range<u64>,
    mut check: impl FnMut(&CropParams, Vec<(usize, f32)>),
) {
    let erasing = RandomErasing {
        p: 1.0,
        value,
        ..RandomErasing::default()
    };
    let original = image(3, height, width);
    for seed in seeds {
        let (erased, region) = erase_seeded(&erasing, &original, (height, width), seed);
        let region = region.expect("the box fits");
        let mut inside_values = Vec::new();
        each_value(
            &original,
            &erased,
            height,
            width,
            |before, after, channel, y, x| {
                if inside(&region, y, x) {
                    inside_values.push((channel, after));
                } else {
                    assert_eq!(after.to_bits(), before.to_bits());
                }
            },
        );
        check(&region, inside_values);
    }
}

/// Mean and biased variance.
fn moments(values: &[f64]) -> (f64, f64) {
    let count = values.len() as f64;
    let mean = values.iter().sum::<f64>() / count;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
    (mean, variance)
}

#[test]
fn erased_boxes_have_the_area_and_ratio_asked_for_and_zeros_inside() {
    let (height, width) = (20, 30);
    let area = (height * width) as f64;
    let (mut smallest, mut largest) = (f64::MAX, 0.0f64);
    // A box between 2% and 33% always fits in 20x30 within 10 attempts.
    erase_each_seed(
        ErasingValue::Zero,
        (height, width),
        0..2_000,
        |region, erased| {
            let (h, w) = (region.height as f64, region.width as f64);
            assert!(region.height < height && region.width < width, "{region:?}");
            assert!(region.top + region.height <= height && region.left + region.width <= width);
            // The drawn area A and ratio r satisfy 0.02 <= A / 600 <= 0.33 and 0.3 <= r <= 3.3
            // before h = round(sqrt(A r)) and w = round(sqrt(A / r)): allow half a pixel either way.
            assert!((h + 0.5) * (w + 0.5) >= 0.02 * area, "{region:?}");
            assert!((h - 0.5) * (w - 0.5) <= 0.33 * area, "{region:?}");
            assert!((h + 0.5) / (w - 0.5) >= 0.3, "{region:?}");
            assert!((h - 0.5) / (w + 0.5) <= 3.3, "{region:?}");
            smallest = smallest.min(h * w / area);
            largest = largest.max(h * w / area);
            assert_eq!(erased.len(), 3 * region.height * region.width);
            assert!(erased.iter().all(|&(_, value)| value == 0.0));
        },
    );
    // Both ends of the area range are reached.
    assert!(smallest < 0.03 && largest > 0.3, "{smallest} {largest}");
}

#[test]
fn erasing_probability_zero_or_no_fitting_box_leaves_the_image_alone() {
    let original = image(3, 8, 8);
    let never = RandomErasing {
        p: 0.0,
        value: ErasingValue::Random,
        ..RandomErasing::default()
    };
    // 90% to 100% of a 3x3 image cannot be under 3x3, so every attempt fails.
    let impossible = RandomErasing {
        p: 1.0,
        scale: (0.9, 1.0),
        ..RandomErasing::default()
    };
    for seed in 0..200 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut image = original.clone();
        assert_eq!(never.apply(&mut image, 8, 8, &mut rng), None);
        let mut small = original[..27].to_vec();
        assert_eq!(impossible.apply(&mut small, 3, 3, &mut rng), None);
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&image), bits(&original));
        assert_eq!(bits(&small), bits(&original[..27]));
    }

    // p = 0.5 erases about half the images.
    let half = RandomErasing::default();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(3);
    let erased = (0..4_000)
        .filter(|_| half.sample(&mut rng, 32, 32).is_some())
        .count();
    // 2,000 expected, sigma about 32.
    assert!((1_850..=2_150).contains(&erased), "{erased}");
}

#[test]
fn random_values_are_fresh_standard_normals_per_pixel() {
    let mut values = Vec::new();
    erase_each_seed(ErasingValue::Random, (32, 32), 0..100, |_, erased| {
        values.extend(erased.into_iter().map(|(_, value)| f64::from(value)));
    });
    let count = values.len() as f64;
    let (mean, variance) = moments(&values);
    assert!(count > 10_000.0, "{count}");
    assert!(
        mean.abs() < 0.05 && (variance - 1.0).abs() < 0.05,
        "{mean} {variance}"
    );
    // No two erased values alike: each pixel draws its own.
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    assert!(sorted.len() as f64 > 0.99 * count);
}

#[test]
fn per_channel_values_are_one_standard_normal_per_channel() {
    let mut channel_values = Vec::new();
    erase_each_seed(ErasingValue::PerChannel, (16, 24), 0..2_000, |_, erased| {
        let mut seen = [None; 3];
        for (channel, value) in erased {
            assert_eq!(*seen[channel].get_or_insert(value), value);
        }
        let seen = seen.map(|value| value.expect("every channel has erased pixels"));
        assert!(seen[0] != seen[1] && seen[1] != seen[2], "{seen:?}");
        channel_values.extend(seen.map(f64::from));
    });
    let (mean, variance) = moments(&channel_values);
    assert!(
        mean.abs() < 0.06 && (variance - 1.0).abs() < 0.08,
        "{mean} {variance}"
    );
}

#[test]
fn cutout_holes_are_clipped_at_the_borders() {
    let (height, width) = (10, 12);
    let cutout = Cutout { size: 6, p: 1.0 };
    let original = image(2, height, width);
    let mut holes = std::collections::BTreeSet::new();
    for seed in 0..3_000 {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut cut = original.clone();
        let hole = cutout
            .apply(&mut cut, height, width, &mut rng)
            .expect("p = 1");
        each_value(&original, &cut, height, width, |before, after, _, y, x| {
            if inside(&hole, y, x) {
                assert_eq!(after, 0.0);
            } else {
                assert_eq!(after.to_bits(), before.to_bits());
            }
        });
        holes.insert((hole.top, hole.height, hole.left, hole.width));
    }
    // Centre row cy gives rows clip(cy - 3)..clip(cy + 3): 0..3, 0..4, 0..5, 0..6, 1..7, ...,
    // 4..10, 5..10, 6..10. So a hole in the top-left corner is 3x3 and one in the bottom-right
    // corner 4x4, and every (rows, columns) pair occurs.
    let rows: Vec<(usize, usize)> = (0..height)
        .map(|cy: usize| {
            let top = cy.saturating_sub(3);
            (top, (cy + 3).min(height) - top)
        })
        .collect();
    assert_eq!(rows[0], (0, 3));
    assert_eq!(rows[9], (6, 4));
    let columns: Vec<(usize, usize)> = (0..width)
        .map(|cx: usize| {
            let left = cx.saturating_sub(3);
            (left, (cx + 3).min(width) - left)
        })
        .collect();
    let expected: std::collections::BTreeSet<_> = rows
        .iter()
        .flat_map(|&(top, h)| columns.iter().map(move |&(left, w)| (top, h, left, w)))
        .collect();
    assert_eq!(holes, expected);
    assert!(holes.contains(&(0, 3, 0, 3)) && holes.contains(&(6, 4, 8, 4)));
}

#[test]
fn cutout_odd_sides_and_probability() {
    // The paper's code cuts y - 5 / 2 .. y + 5 / 2: 4 pixels a side away from the borders.
    let odd = Cutout { size: 5, p: 1.0 };
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(11);
    let mut largest = 0;
    for _ in 0..500 {
        let hole = odd.sample(&mut rng, 32, 32).expect("p = 1");
        assert!(hole.height <= 4 && hole.width <= 4, "{hole:?}");
        largest = largest.max(hole.height * hole.width);
    }
    assert_eq!(largest, 16);

    let never = Cutout { size: 16, p: 0.0 };
    let original = image(3, 32, 32);
    let mut untouched = original.clone();
    assert_eq!(never.apply(&mut untouched, 32, 32, &mut rng), None);
    assert_eq!(untouched, original);
    let sometimes = Cutout { size: 16, p: 0.25 };
    let cut = (0..4_000)
        .filter(|_| sometimes.sample(&mut rng, 32, 32).is_some())
        .count();
    // 1,000 expected, sigma about 27.
    assert!((880..=1_120).contains(&cut), "{cut}");
}
