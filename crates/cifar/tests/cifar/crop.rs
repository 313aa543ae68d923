//! The padded random crop: pixels of every padding mode worked out by hand, and the spread of
//! the crop positions.

use cnnzoo_cifar::PaddingMode::{self, Constant, Edge, Reflect};
use cnnzoo_cifar::RandomCrop;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;

/// A 3x4x4 ramp: channel `c`, row `y`, column `x` holds `16c + 4y + x`.
fn ramp() -> Vec<u8> {
    (0..48).collect()
}

/// The `crop` (height, width) at (`top`, `left`) of `image` (`size` per channel) padded by
/// `padding` in `mode`, with fill values 7, 8, 9.
fn padded_crop(
    image: &[u8],
    size: (usize, usize),
    (padding, mode): (usize, PaddingMode),
    (top, left): (usize, usize),
    crop: (usize, usize),
) -> Vec<u8> {
    let random_crop = RandomCrop {
        height: crop.0,
        width: crop.1,
        padding,
        padding_mode: mode,
        fill: [7, 8, 9],
    };
    let mut out = vec![255; image.len() / (size.0 * size.1) * crop.0 * crop.1];
    random_crop.apply(image, size.0, size.1, top, left, &mut out);
    out
}

/// A 4x4 crop of the ramp padded by 2 in `mode`, at (`top`, `left`) of the padded 8x8 image.
fn crop_ramp(mode: PaddingMode, top: usize, left: usize) -> Vec<u8> {
    padded_crop(&ramp(), (4, 4), (2, mode), (top, left), (4, 4))
}

/// The 4x4 rows of `text`, split by `|`.
fn rows(text: &str) -> Vec<u8> {
    text.split(['|', ' '])
        .filter(|word| !word.is_empty())
        .map(|word| word.parse().unwrap())
        .collect()
}

#[test]
fn every_padding_mode_gives_the_pixels_worked_out_by_hand() {
    // (mode, crop position in the padded image, channel, the plane's rows).
    let planes = [
        // From (0, 0) the crop reads source rows and columns -2, -1, 0, 1: constant padding
        // fills each channel with its value, reflection mirrors without repeating the edge
        // (2, 1, 0, 1), the edge mode repeats it (0, 0, 0, 1).
        (Constant, (0, 0), 0, "7 7 7 7 | 7 7 7 7 | 7 7 0 1 | 7 7 4 5"),
        (
            Constant,
            (0, 0),
            1,
            "8 8 8 8 | 8 8 8 8 | 8 8 16 17 | 8 8 20 21",
        ),
        (Reflect, (0, 0), 0, "10 9 8 9 | 6 5 4 5 | 2 1 0 1 | 6 5 4 5"),
        (Edge, (0, 0), 0, "0 0 0 1 | 0 0 0 1 | 0 0 0 1 | 4 4 4 5"),
        // From (4, 4), the last position: source rows and columns 2, 3, 4, 5, which reflect to
        // 2, 3, 2, 1 and clamp to 2, 3, 3, 3.
        (
            Constant,
            (4, 4),
            2,
            "42 43 9 9 | 46 47 9 9 | 9 9 9 9 | 9 9 9 9",
        ),
        (
            Reflect,
            (4, 4),
            1,
            "26 27 26 25 | 30 31 30 29 | 26 27 26 25 | 22 23 22 21",
        ),
        (
            Edge,
            (4, 4),
            2,
            "42 43 43 43 | 46 47 47 47 | 46 47 47 47 | 46 47 47 47",
        ),
    ];
    for (mode, (top, left), channel, text) in planes {
        let out = crop_ramp(mode, top, left);
        let context = format!("{mode:?} at ({top}, {left}), channel {channel}");
        assert_eq!(out[channel * 16..][..16], rows(text), "{context}");
    }
    // From (2, 2) the crop is the image itself.
    assert_eq!(crop_ramp(Constant, 2, 2), ramp());
}

#[test]
fn padding_wider_than_the_image_folds_as_numpy_does() {
    // np.pad([0, 1, 2], 5, 'reflect') == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]: the mirror
    // image repeats every 4 pixels. A 1x1x3 row, padded by 5 and cropped whole.
    let crop = |mode| padded_crop(&[0, 1, 2], (1, 3), (5, mode), (0, 0), (11, 13));
    let reflected = crop(Reflect);
    // A single row reflects to itself in every padded row.
    for out_row in reflected.chunks(13) {
        assert_eq!(out_row, [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2, 1]);
    }
    let edged = crop(Edge);
    assert_eq!(&edged[..13], [0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2]);
    let constant = crop(Constant);
    // One channel: its fill is the first value, 7.
    assert_eq!(constant.iter().filter(|&&pixel| pixel != 7).count(), 3);
    assert_eq!(
        &constant[5 * 13..][..13],
        [7, 7, 7, 7, 7, 0, 1, 2, 7, 7, 7, 7, 7]
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
            Constant => (0..=last).contains(&at).then_some(at as usize),
            Edge => Some(at.clamp(0, last) as usize),
            // The padding is below the side here, so one reflection is enough.
            Reflect => Some(if at < 0 {
                -at
            } else if at > last {
                2 * last - at
            } else {
                at
            } as usize),
        }
    };
    for mode in [Constant, Reflect, Edge] {
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
                "constant" => Constant,
                "reflect" => Reflect,
                "edge" => Edge,
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
