//! torchvision's operations on uint8 RGB images (`torchvision.transforms.functional` on uint8
//! tensors, torchvision >= 0.15): the building blocks of AutoAugment, RandAugment and
//! TrivialAugmentWide (`policy`).
//!
//! Images are channel-major (CHW) bytes as in the CIFAR files, of any height x width. Each
//! operation reproduces torchvision's arithmetic, not only its intent, so that a model trained
//! here sees the images a PyTorch run would: blends are computed in single precision, clamped
//! and truncated to bytes as `_blend`'s `.to(uint8)` does; warps follow `_gen_affine_grid` and
//! `grid_sample`'s nearest mode in single precision from the inverse matrix that
//! `_get_inverse_affine_matrix` computes in double; equalisation uses the same integer steps.
//! `scripts/make_augment_fixtures.py` records torchvision's outputs that the tests compare to.

use crate::error::{CifarError, Result};
use crate::set::CHANNELS;

/// One operation with its magnitude as torchvision's `_apply_op` receives it.
///
/// Factors and angles are `f64` because Python hands them over as doubles; where torch computes
/// in single precision the operation rounds them as torch does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ImageOp {
    /// Leaves the image as it is.
    Identity,
    /// Shears along x by `atan(m)` about the top-left corner (`F.affine` with
    /// `shear=[degrees(atan(m)), 0]` and `center=[0, 0]`): row `y` moves by about `-m * y`.
    ShearX(f64),
    /// Shears along y by `atan(m)` about the top-left corner: column `x` moves by about `-m * x`.
    ShearY(f64),
    /// Moves the image right by `int(m)` pixels (truncated towards zero, as `_apply_op` does).
    TranslateX(f64),
    /// Moves the image down by `int(m)` pixels (truncated towards zero).
    TranslateY(f64),
    /// Rotates counter-clockwise by `m` degrees about the image centre (`F.rotate`).
    Rotate(f64),
    /// `F.adjust_brightness` with factor `1 + m`: blends with black.
    Brightness(f64),
    /// `F.adjust_saturation` with factor `1 + m`: blends with the image's greyscale.
    Color(f64),
    /// `F.adjust_contrast` with factor `1 + m`: blends with the mean grey level.
    Contrast(f64),
    /// `F.adjust_sharpness` with factor `1 + m`: blends with a 3x3 smoothing of the image.
    Sharpness(f64),
    /// `F.posterize`: keeps the top `bits` bits of each value (8 or more keep the image).
    Posterize(u8),
    /// `F.solarize`: inverts the values at or above the threshold.
    Solarize(f64),
    /// `F.autocontrast`: stretches each channel to the full range.
    AutoContrast,
    /// `F.equalize`: equalises each channel's histogram.
    Equalize,
    /// `F.invert`: `255 - value`.
    Invert,
}

/// Applies `op` in place to the 3 x `height` x `width` image `pixels` (CHW); pixels that a warp
/// brings in from outside the image get `fill` (R, G, B).
///
/// The warps and [`ImageOp::Sharpness`] read a copy of the image, the one allocation; the other
/// operations need none.
pub fn apply_op(
    op: ImageOp,
    pixels: &mut [u8],
    height: usize,
    width: usize,
    fill: [u8; 3],
) -> Result<()> {
    check_size(pixels.len(), height, width)?;
    apply_checked(op, pixels, height, width, fill);
    Ok(())
}

/// Applies `op` to `input` and writes the result into `output`, both 3 x `height` x `width`
/// (CHW), without allocating.
pub fn apply_op_into(
    op: ImageOp,
    input: &[u8],
    output: &mut [u8],
    height: usize,
    width: usize,
    fill: [u8; 3],
) -> Result<()> {
    check_size(input.len(), height, width)?;
    check_size(output.len(), height, width)?;
    if let Some(matrix) = warp_matrix(op, height, width) {
        warp(input, output, height, width, &matrix, fill);
    } else if let ImageOp::Sharpness(magnitude) = op {
        sharpen(input, output, height, width, 1.0 + magnitude);
    } else {
        output.copy_from_slice(input);
        point_op(op, output, height * width);
    }
    Ok(())
}

/// [`apply_op`] once the buffer's size is known to be right.
pub(crate) fn apply_checked(
    op: ImageOp,
    pixels: &mut [u8],
    height: usize,
    width: usize,
    fill: [u8; 3],
) {
    if let Some(matrix) = warp_matrix(op, height, width) {
        let source = pixels.to_vec();
        warp(&source, pixels, height, width, &matrix, fill);
    } else if let ImageOp::Sharpness(magnitude) = op {
        let source = pixels.to_vec();
        sharpen(&source, pixels, height, width, 1.0 + magnitude);
    } else {
        point_op(op, pixels, height * width);
    }
}

/// An error unless `len` is the size of a 3 x `height` x `width` image.
pub(crate) fn check_size(len: usize, height: usize, width: usize) -> Result<()> {
    let expected = CHANNELS
        .checked_mul(height)
        .and_then(|n| n.checked_mul(width));
    if expected == Some(len) {
        return Ok(());
    }
    Err(CifarError::ImageSize {
        height,
        width,
        expected: expected.unwrap_or(usize::MAX),
        len,
    })
}

/// The operations that look at one pixel (or one channel's statistics) at a time, in place on
/// an image of `plane` pixels per channel.
fn point_op(op: ImageOp, pixels: &mut [u8], plane: usize) {
    match op {
        ImageOp::Brightness(magnitude) => {
            let blend = Blend::new(1.0 + magnitude);
            let table: [u8; 256] = std::array::from_fn(|v| blend.apply(v as f32, 0.0));
            map(pixels, &table);
        }
        ImageOp::Color(magnitude) => saturate(pixels, plane, Blend::new(1.0 + magnitude)),
        ImageOp::Contrast(magnitude) => {
            let mean = mean_grey(pixels, plane);
            let blend = Blend::new(1.0 + magnitude);
            let table: [u8; 256] = std::array::from_fn(|v| blend.apply(v as f32, mean));
            map(pixels, &table);
        }
        ImageOp::Posterize(bits) => {
            // torchvision's mask -2^(8 - bits) keeps the top `bits` bits.
            let mask = if bits >= 8 {
                u8::MAX
            } else {
                !(u8::MAX >> bits)
            };
            pixels.iter_mut().for_each(|value| *value &= mask);
        }
        ImageOp::Solarize(threshold) => {
            // `img >= threshold` compares in single precision.
            let threshold = threshold as f32;
            let table: [u8; 256] = std::array::from_fn(|v| {
                if v as f32 >= threshold {
                    255 - v as u8
                } else {
                    v as u8
                }
            });
            map(pixels, &table);
        }
        ImageOp::AutoContrast => {
            for channel in pixels.chunks_exact_mut(plane.max(1)) {
                map(channel, &autocontrast_table(channel));
            }
        }
        ImageOp::Equalize => {
            for channel in pixels.chunks_exact_mut(plane.max(1)) {
                if let Some(table) = equalize_table(channel) {
                    map(channel, &table);
                }
            }
        }
        ImageOp::Invert => pixels.iter_mut().for_each(|value| *value = 255 - *value),
        // The warps and sharpness never get here; the identity has nothing to do.
        ImageOp::Identity
        | ImageOp::ShearX(_)
        | ImageOp::ShearY(_)
        | ImageOp::TranslateX(_)
        | ImageOp::TranslateY(_)
        | ImageOp::Rotate(_)
        | ImageOp::Sharpness(_) => {}
    }
}

/// Replaces every value by its entry in `table`.
fn map(values: &mut [u8], table: &[u8; 256]) {
    for value in values {
        *value = table[usize::from(*value)];
    }
}

/// torchvision's `_blend(img1, img2, ratio)` for uint8 images:
/// `ratio * img1 + (1 - ratio) * img2` in single precision (each factor rounded to `f32` by
/// torch, `1 - ratio` computed in double by Python first), clamped to [0, 255] and truncated.
#[derive(Debug, Clone, Copy)]
struct Blend {
    ratio: f32,
    complement: f32,
}

impl Blend {
    fn new(ratio: f64) -> Self {
        Self {
            ratio: ratio as f32,
            complement: (1.0 - ratio) as f32,
        }
    }

    #[inline]
    fn apply(self, image: f32, other: f32) -> u8 {
        // `as u8` truncates towards zero, as `.to(torch.uint8)` does after the clamp.
        (self.ratio * image + self.complement * other).clamp(0.0, 255.0) as u8
    }
}

/// `rgb_to_grayscale` of one pixel: `0.2989 r + 0.587 g + 0.114 b` in single precision, summed
/// left to right and truncated to a byte.
#[inline]
fn grey(red: u8, green: u8, blue: u8) -> u8 {
    (0.2989f32 * f32::from(red) + 0.587f32 * f32::from(green) + 0.114f32 * f32::from(blue)) as u8
}

/// The three planes of an image of `plane` pixels per channel.
fn planes(pixels: &[u8], plane: usize) -> (&[u8], &[u8], &[u8]) {
    let (red, rest) = pixels.split_at(plane);
    let (green, blue) = rest.split_at(plane);
    (red, green, blue)
}

/// `adjust_contrast`'s mean: the mean of the (truncated) greyscale image, in single precision.
/// The sum is exact here and in torch for images of up to 65,793 pixels, where an `f32` still
/// holds it.
fn mean_grey(pixels: &[u8], plane: usize) -> f32 {
    let (red, green, blue) = planes(pixels, plane);
    let sum: u64 = red
        .iter()
        .zip(green)
        .zip(blue)
        .map(|((&r, &g), &b)| u64::from(grey(r, g, b)))
        .sum();
    sum as f32 / plane.max(1) as f32
}

/// `adjust_saturation`: each channel blended with the pixel's greyscale.
fn saturate(pixels: &mut [u8], plane: usize, blend: Blend) {
    let (red, rest) = pixels.split_at_mut(plane);
    let (green, blue) = rest.split_at_mut(plane);
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let grey = f32::from(grey(*r, *g, *b));
        *r = blend.apply(f32::from(*r), grey);
        *g = blend.apply(f32::from(*g), grey);
        *b = blend.apply(f32::from(*b), grey);
    }
}

/// `autocontrast` of one channel as a table: `(v - min) * (255 / (max - min))` in single
/// precision, truncated; a constant channel stays as it is (torchvision's infinite scale).
fn autocontrast_table(channel: &[u8]) -> [u8; 256] {
    let low = channel.iter().copied().min().unwrap_or(0);
    let high = channel.iter().copied().max().unwrap_or(0);
    if low == high {
        return std::array::from_fn(|v| v as u8);
    }
    let scale = 255.0f32 / (f32::from(high) - f32::from(low));
    let low = f32::from(low);
    std::array::from_fn(|v| ((v as f32 - low) * scale).clamp(0.0, 255.0) as u8)
}

/// `_scale_channel`'s table for one channel, or `None` where torchvision leaves the channel as
/// it is: the step is the count of all values but the brightest present ones over 255 (floored),
/// and value `v` maps to `(count below v + step / 2) / step`, at most 255.
fn equalize_table(channel: &[u8]) -> Option<[u8; 256]> {
    let mut histogram = [0u64; 256];
    for &value in channel {
        histogram[usize::from(value)] += 1;
    }
    let brightest = histogram.iter().rposition(|&count| count > 0)?;
    let step = (channel.len() as u64 - histogram[brightest]) / 255;
    if step == 0 {
        return None;
    }
    let mut table = [0u8; 256];
    let mut below = 0u64;
    for (entry, &count) in table.iter_mut().zip(&histogram) {
        *entry = ((below + step / 2) / step).min(255) as u8;
        below += count;
    }
    Some(table)
}

/// `adjust_sharpness`: the image blended with its smoothing by [[1, 1, 1], [1, 5, 1], [1, 1, 1]]
/// / 13, whose one-pixel border is the image itself; images of 2 rows or columns or fewer stay
/// as they are. Writes `output` from `input`.
fn sharpen(input: &[u8], output: &mut [u8], height: usize, width: usize, factor: f64) {
    if height <= 2 || width <= 2 {
        output.copy_from_slice(input);
        return;
    }
    let blend = Blend::new(factor);
    let plane = height * width;
    for (source, target) in input
        .chunks_exact(plane)
        .zip(output.chunks_exact_mut(plane))
    {
        for (y, (row_in, row_out)) in source
            .chunks_exact(width)
            .zip(target.chunks_exact_mut(width))
            .enumerate()
        {
            let border_row = y == 0 || y == height - 1;
            for (x, (&value, out)) in row_in.iter().zip(row_out.iter_mut()).enumerate() {
                let smooth = if border_row || x == 0 || x == width - 1 {
                    value
                } else {
                    smoothed(source, width, y, x)
                };
                *out = blend.apply(f32::from(value), f32::from(smooth));
            }
        }
    }
}

/// The smoothing at interior pixel (`y`, `x`), rounded as `_cast_squeeze_out` rounds torch's
/// single-precision convolution. `sum / 13` is never within 1/26 of a half, far beyond the
/// convolution's rounding error, so the integer `(sum + 6) / 13` is the same rounding.
#[inline]
fn smoothed(plane: &[u8], width: usize, y: usize, x: usize) -> u8 {
    let at = |row: usize, column: usize| u32::from(plane[row * width + column]);
    let mut sum = 4 * at(y, x);
    for row in y - 1..=y + 1 {
        sum += at(row, x - 1) + at(row, x) + at(row, x + 1);
    }
    ((sum + 6) / 13) as u8
}

/// The inverse affine matrix (output pixel to input pixel, in coordinates centred on the image)
/// that `F.affine` and `F.rotate` hand to the tensor backend, or `None` for the operations that
/// are not warps.
fn warp_matrix(op: ImageOp, height: usize, width: usize) -> Option<[f64; 6]> {
    // `center=[0, 0]` of the shears, in the centred coordinates `F.affine` converts it to.
    let corner = [-0.5 * width as f64, -0.5 * height as f64];
    let shear_degrees = |magnitude: f64| magnitude.atan().to_degrees();
    let matrix = match op {
        ImageOp::ShearX(m) => inverse_affine(corner, 0.0, [0.0; 2], [shear_degrees(m), 0.0]),
        ImageOp::ShearY(m) => inverse_affine(corner, 0.0, [0.0; 2], [0.0, shear_degrees(m)]),
        ImageOp::TranslateX(m) => inverse_affine([0.0; 2], 0.0, [m.trunc(), 0.0], [0.0; 2]),
        ImageOp::TranslateY(m) => inverse_affine([0.0; 2], 0.0, [0.0, m.trunc()], [0.0; 2]),
        // `F.rotate` negates the angle for the affine convention.
        ImageOp::Rotate(degrees) => inverse_affine([0.0; 2], -degrees, [0.0; 2], [0.0; 2]),
        _ => return None,
    };
    Some(matrix)
}

/// `_get_inverse_affine_matrix` with scale 1, in double precision and in Python's order of
/// operations: rotation and shear inverted, then the translation and centre applied.
fn inverse_affine(center: [f64; 2], angle: f64, translate: [f64; 2], shear: [f64; 2]) -> [f64; 6] {
    let rotation = angle.to_radians();
    let (shear_x, shear_y) = (shear[0].to_radians(), shear[1].to_radians());
    let [cx, cy] = center;
    let [tx, ty] = translate;
    let a = (rotation - shear_y).cos() / shear_y.cos();
    let b = -(rotation - shear_y).cos() * shear_x.tan() / shear_y.cos() - rotation.sin();
    let c = (rotation - shear_y).sin() / shear_y.cos();
    let d = -(rotation - shear_y).sin() * shear_x.tan() / shear_y.cos() + rotation.cos();
    let mut m = [d, -b, 0.0, -c, a, 0.0];
    m[2] += m[0] * (-cx - tx) + m[1] * (-cy - ty);
    m[5] += m[3] * (-cx - tx) + m[4] * (-cy - ty);
    m[2] += cx;
    m[5] += cy;
    m
}

/// Resamples `input` into `output` through the inverse `matrix` with nearest neighbours, as
/// `_gen_affine_grid` then `grid_sample(mode="nearest", align_corners=False)` do in single
/// precision: the grid point of output pixel (x, y) is `(x - w/2 + 1/2, y - h/2 + 1/2)`, the
/// matrix rescaled by `(w/2, h/2)` maps it to normalised coordinates, which map back to pixels
/// as `(g + 1) * size / 2 - 1/2` and round half to even. Sources outside the image get `fill`.
///
/// Only multiplications and additions run per pixel; the trigonometry is in `matrix`.
fn warp(
    input: &[u8],
    output: &mut [u8],
    height: usize,
    width: usize,
    matrix: &[f64; 6],
    fill: [u8; 3],
) {
    let plane = height * width;
    let half_width = (0.5 * width as f64) as f32;
    let half_height = (0.5 * height as f64) as f32;
    // `theta.transpose(1, 2) / [w/2, h/2]`: the matrix in single precision, then divided.
    let theta: [f32; 6] = std::array::from_fn(|i| {
        let half = if i < 3 { half_width } else { half_height };
        matrix[i] as f32 / half
    });
    let (source_width, source_height) = (width as f32, height as f32);
    for y in 0..height {
        let grid_y = y as f32 - half_height + 0.5;
        for x in 0..width {
            let grid_x = x as f32 - half_width + 0.5;
            let normal_x = grid_x * theta[0] + grid_y * theta[1] + theta[2];
            let normal_y = grid_x * theta[3] + grid_y * theta[4] + theta[5];
            let source_x = ((normal_x + 1.0) * half_width - 0.5).round_ties_even();
            let source_y = ((normal_y + 1.0) * half_height - 0.5).round_ties_even();
            let target = y * width + x;
            let inside =
                (0.0..source_width).contains(&source_x) && (0.0..source_height).contains(&source_y);
            if inside {
                let source = source_y as usize * width + source_x as usize;
                for channel in 0..CHANNELS {
                    output[channel * plane + target] = input[channel * plane + source];
                }
            } else {
                for (channel, &value) in fill.iter().enumerate() {
                    output[channel * plane + target] = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3 x 4 x 5 image whose values all differ.
    fn small() -> Vec<u8> {
        (0..60).map(|i| (i * 4 + 3) as u8).collect()
    }

    #[test]
    fn a_wrong_buffer_size_is_an_error_not_a_panic() {
        let mut pixels = vec![0u8; 10];
        let error = apply_op(ImageOp::Invert, &mut pixels, 4, 5, [0; 3]).unwrap_err();
        assert!(matches!(
            error,
            CifarError::ImageSize {
                expected: 60,
                len: 10,
                ..
            }
        ));
        assert!(apply_op(ImageOp::Invert, &mut [], usize::MAX, 2, [0; 3]).is_err());
    }

    #[test]
    fn translations_by_whole_pixels_move_the_image_and_fill_the_rest() {
        let input = small();
        let mut output = vec![0u8; 60];
        apply_op_into(
            ImageOp::TranslateX(2.9),
            &input,
            &mut output,
            4,
            5,
            [7, 8, 9],
        )
        .unwrap();
        for channel in 0..3 {
            for y in 0..4 {
                for x in 0..5 {
                    let expected = if x < 2 {
                        [7, 8, 9][channel]
                    } else {
                        input[channel * 20 + y * 5 + x - 2]
                    };
                    assert_eq!(
                        output[channel * 20 + y * 5 + x],
                        expected,
                        "{channel} {y} {x}"
                    );
                }
            }
        }
        let mut moved = input.clone();
        apply_op(ImageOp::TranslateY(-1.5), &mut moved, 4, 5, [0; 3]).unwrap();
        assert_eq!(moved[..15], input[5..20]);
        assert_eq!(moved[15..20], [0; 5]);
    }

    #[test]
    fn a_half_turn_reverses_the_pixels() {
        let input = small();
        let mut output = input.clone();
        apply_op(ImageOp::Rotate(180.0), &mut output, 4, 5, [0; 3]).unwrap();
        for (rotated, original) in output.chunks(20).zip(input.chunks(20)) {
            let reversed: Vec<u8> = original.iter().rev().copied().collect();
            assert_eq!(rotated, reversed);
        }
    }

    #[test]
    fn point_operations_match_values_worked_by_hand() {
        let mut pixels = vec![10, 200, 128, 10, 200, 128, 10, 200, 128];
        apply_op(ImageOp::Solarize(128.0), &mut pixels, 1, 3, [0; 3]).unwrap();
        assert_eq!(pixels[..3], [10, 55, 127]);
        apply_op(ImageOp::Posterize(2), &mut pixels, 1, 3, [0; 3]).unwrap();
        assert_eq!(pixels[..3], [0, 0, 64]);
        let mut pixels = vec![100, 150, 200, 0, 0, 0, 7, 7, 7];
        apply_op(ImageOp::AutoContrast, &mut pixels, 1, 3, [0; 3]).unwrap();
        // 0, 50 * 2.55 = 127.5 -> 127, 255; constant channels stay.
        assert_eq!(pixels, [0, 127, 255, 0, 0, 0, 7, 7, 7]);
        // 1.5 * 101 = 151.5 -> 151 (truncated), 1.5 * 200 clamps to 255.
        let mut pixels = vec![101, 200, 0];
        apply_op(ImageOp::Brightness(0.5), &mut pixels, 1, 1, [0; 3]).unwrap();
        assert_eq!(pixels, [151, 255, 0]);
    }

    #[test]
    fn sharpness_keeps_the_border_and_blends_the_interior() {
        // One bright pixel in the middle of a 3x3 image: its smoothing is (5 * 130) / 13 = 50,
        // so factor 2 gives 2 * 130 - 50 = 210; the border is blended with itself.
        let mut pixels = vec![0u8; 27];
        for channel in 0..3 {
            pixels[channel * 9 + 4] = 130;
        }
        apply_op(ImageOp::Sharpness(1.0), &mut pixels, 3, 3, [0; 3]).unwrap();
        for channel in 0..3 {
            let plane = &pixels[channel * 9..][..9];
            assert_eq!(plane, [0, 0, 0, 0, 210, 0, 0, 0, 0]);
        }
    }

    #[test]
    fn equalize_spreads_the_histogram_with_torchvisions_step() {
        // 256 values: 255 zeros and one 255. step = 255 / 255 = 1, so 0 -> 0 and 255 -> 255.
        let mut channel = vec![0u8; 256];
        channel[0] = 255;
        let table = equalize_table(&channel).unwrap();
        assert_eq!((table[0], table[255]), (0, 255));
        // Two values only: the step is the darker count / 255, zero for small images.
        assert!(equalize_table(&[3, 3, 9, 9]).is_none());
    }
}
