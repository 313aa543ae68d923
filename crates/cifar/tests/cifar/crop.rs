//! The padded random crop: pixels of every padding mode worked out by hand, and the spread of
//! the crop positions.

use cnnzoo_cifar::{PaddingMode, RandomCrop};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// A 3x4x4 ramp: channel `c`, row `y`, column `x` holds `16c + 4y + x`.
fn ramp() -> Vec<u8> {
    (0..48).collect()
}

/// A 4x4 crop of the ramp padded by 2 in `mode`, at (`top`, `left`) of the padded 8x8 image.
fn crop_ramp(mode: PaddingMode, top: usize, left: usize) -> Vec<u8> {
    let crop = RandomCrop {
        height: 4,
        width: 4,
        padding: 2,
        padding_mode: mode,
        fill: [7, 8, 9],
    };
    let mut out = vec![255; 48];
    crop.apply(&ramp(), 4, 4, top, left, &mut out);
    out
}

/// Plane `channel` of a 3x4x4 output, as rows.
fn plane(out: &[u8], channel: usize) -> Vec<Vec<u8>> {
    out[channel * 16..][..16]
        .chunks(4)
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn constant_padding_fills_each_channel_with_its_value() {
    // From (0, 0) the crop reads source rows and columns -2, -1, 0, 1.
    let out = crop_ramp(PaddingMode::Constant, 0, 0);
    assert_eq!(
        plane(&out, 0),
        [[7, 7, 7, 7], [7, 7, 7, 7], [7, 7, 0, 1], [7, 7, 4, 5]]
    );
    assert_eq!(
        plane(&out, 1),
        [[8, 8, 8, 8], [8, 8, 8, 8], [8, 8, 16, 17], [8, 8, 20, 21]]
    );
    // From (4, 4), the last position: source rows and columns 2, 3, 4, 5.
    let out = crop_ramp(PaddingMode::Constant, 4, 4);
    assert_eq!(
        plane(&out, 2),
        [[42, 43, 9, 9], [46, 47, 9, 9], [9, 9, 9, 9], [9, 9, 9, 9]]
    );
    // From (2, 2) the crop is the image itself.
    assert_eq!(crop_ramp(PaddingMode::Constant, 2, 2), ramp());
}

#[test]
fn reflect_padding_mirrors_without_repeating_the_edge() {
    // Source -2, -1, 0, 1 reflect to 2, 1, 0, 1.
    let out = crop_ramp(PaddingMode::Reflect, 0, 0);
    assert_eq!(
        plane(&out, 0),
        [[10, 9, 8, 9], [6, 5, 4, 5], [2, 1, 0, 1], [6, 5, 4, 5]]
    );
    // Source 2, 3, 4, 5 reflect to 2, 3, 2, 1.
    let out = crop_ramp(PaddingMode::Reflect, 4, 4);
    assert_eq!(
        plane(&out, 1),
        [
            [26, 27, 26, 25],
            [30, 31, 30, 29],
            [26, 27, 26, 25],
            [22, 23, 22, 21]
        ]
    );
}

#[test]
fn edge_padding_repeats_the_edge_pixel() {
    // Source -2, -1, 0, 1 clamp to 0, 0, 0, 1.
    let out = crop_ramp(PaddingMode::Edge, 0, 0);
    assert_eq!(
        plane(&out, 0),
        [[0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 1], [4, 4, 4, 5]]
    );
    // Source 2, 3, 4, 5 clamp to 2, 3, 3, 3.
    let out = crop_ramp(PaddingMode::Edge, 4, 4);
    assert_eq!(
        plane(&out, 2),
        [
            [42, 43, 43, 43],
            [46, 47, 47, 47],
            [46, 47, 47, 47],
            [46, 47, 47, 47]
        ]
    );
}

#[test]
fn padding_wider_than_the_image_folds_as_numpy_does() {
    // np.pad([0, 1, 2], 5, 'reflect') == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]: the mirror
    // image repeats every 4 pixels. A 1x1x3 row, padded by 5 and cropped whole.
    let row = [0u8, 1, 2];
    let crop = |mode| {
        let crop = RandomCrop {
            height: 11,
            width: 13,
            padding: 5,
            padding_mode: mode,
            fill: [9, 9, 9],
        };
        let mut out = vec![255; 11 * 13];
        crop.apply(&row, 1, 3, 0, 0, &mut out);
        out
    };
    let reflected = crop(PaddingMode::Reflect);
    // A single row reflects to itself in every padded row.
    for out_row in reflected.chunks(13) {
        assert_eq!(out_row, [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
    }
    let edged = crop(PaddingMode::Edge);
    assert_eq!(&edged[..13], [0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2]);
    let constant = crop(PaddingMode::Constant);
    assert_eq!(constant.iter().filter(|&&pixel| pixel != 9).count(), 3);
    assert_eq!(
        &constant[5 * 13..][..13],
        [9, 9, 9, 9, 9, 0, 1, 2, 9, 9, 9, 9, 9]
    );
}

#[test]
fn positions_cover_exactly_zero_to_twice_the_padding() {
    let crop = RandomCrop::default();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
    let mut tops = [0usize; 9];
    let mut lefts = [0usize; 9];
    let draws = 9_000;
    for _ in 0..draws {
        let (top, left) = crop.sample(&mut rng, 32, 32);
        assert!(top <= 8 && left <= 8, "({top}, {left})");
        tops[top] += 1;
        lefts[left] += 1;
    }
    // Uniform over 9 positions: 1,000 each, give or take a generous 4 sigma (about 120).
    for count in tops.iter().chain(&lefts) {
        assert!((880..=1_120).contains(count), "{tops:?} {lefts:?}");
    }

    // A non-square image and window: rows in 0..=(6 + 4 - 5), columns in 0..=(10 + 4 - 7).
    let crop = RandomCrop {
        height: 5,
        width: 7,
        padding: 2,
        ..RandomCrop::default()
    };
    let (mut max_top, mut max_left) = (0, 0);
    for _ in 0..2_000 {
        let (top, left) = crop.sample(&mut rng, 6, 10);
        max_top = max_top.max(top);
        max_left = max_left.max(left);
    }
    assert_eq!((max_top, max_left), (5, 7));

    // The window is the whole padded image: no choice, and no draw.
    let whole = RandomCrop {
        padding: 0,
        ..RandomCrop::default()
    };
    let mut untouched = Xoshiro256PlusPlus::seed_from_u64(7);
    assert_eq!(whole.sample(&mut untouched, 32, 32), (0, 0));
    assert_eq!(untouched, Xoshiro256PlusPlus::seed_from_u64(7));
}

#[test]
fn every_position_and_mode_matches_a_materialised_padded_image() {
    // The padded 5x7 image built the slow way, cropped 4x6 at every position.
    let (height, width, padding) = (5, 7, 3);
    let src: Vec<u8> = (0..3 * height * width).map(|value| value as u8).collect();
    let index = |at: isize, len: usize, mode| -> Option<usize> {
        let last = len as isize - 1;
        match mode {
            PaddingMode::Constant => (0..=last).contains(&at).then_some(at as usize),
            PaddingMode::Edge => Some(at.clamp(0, last) as usize),
            // The padding is below the side here, so one reflection is enough.
            PaddingMode::Reflect => Some(if at < 0 {
                -at
            } else if at > last {
                2 * last - at
            } else {
                at
            } as usize),
        }
    };
    for mode in [
        PaddingMode::Constant,
        PaddingMode::Reflect,
        PaddingMode::Edge,
    ] {
        let crop = RandomCrop {
            height: 4,
            width: 6,
            padding,
            padding_mode: mode,
            fill: [200, 201, 202],
        };
        for top in 0..=height + 2 * padding - 4 {
            for left in 0..=width + 2 * padding - 6 {
                let mut out = vec![0; 3 * 4 * 6];
                crop.apply(&src, height, width, top, left, &mut out);
                for (i, &pixel) in out.iter().enumerate() {
                    let (channel, y, x) = (i / 24, i / 6 % 4, i % 6);
                    let row = index(top as isize + y as isize - padding as isize, height, mode);
                    let column = index(left as isize + x as isize - padding as isize, width, mode);
                    let expected = match (row, column) {
                        (Some(row), Some(column)) => src[channel * 35 + row * width + column],
                        _ => 200 + channel as u8,
                    };
                    assert_eq!(pixel, expected, "{mode:?} ({top}, {left}) pixel {i}");
                }
            }
        }
    }
}

/// torchvision's `F.pad` by 4 in each mode, cropped back to 32x32 at fixed positions
/// (`scripts/make_augment_fixtures.py`): the same bytes.
#[test]
fn every_padding_mode_matches_torchvisions_pad_then_crop() {
    let records = crate::records::read_records("pad_erase.bin.gz");
    let input = records
        .iter()
        .find(|r| r.key == "kind=input image=0")
        .expect("the input image")
        .bytes();
    let mut checked = 0;
    for case in records.iter().filter(|r| r.field("kind") == "pad_crop") {
        let fill: u8 = case.parse("fill");
        let crop = RandomCrop {
            padding: case.parse("padding"),
            padding_mode: match case.field("mode") {
                "constant" => PaddingMode::Constant,
                "reflect" => PaddingMode::Reflect,
                "edge" => PaddingMode::Edge,
                other => panic!("{}: unknown mode {other}", case.key),
            },
            fill: [fill; 3],
            ..RandomCrop::default()
        };
        let mut out = vec![0u8; input.len()];
        crop.apply(
            input,
            32,
            32,
            case.parse("top"),
            case.parse("left"),
            &mut out,
        );
        assert_eq!(out, case.bytes(), "{}", case.key);
        checked += 1;
    }
    assert_eq!(checked, 16, "four modes at four positions");
}
