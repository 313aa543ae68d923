//! Image files to square uint8 images: decoding (PNG, JPEG, BMP or WebP, recognised from the
//! content, whatever the file is called), conversion to RGB (grey replicated, alpha dropped, as
//! PIL's `convert("RGB")` does), and torchvision's `Resize(size)` + `CenterCrop(crop)` with PIL's
//! bilinear filter (widened when shrinking, so a large photo is averaged rather than sampled).
//! `cnnzoo predict` and the folder data sets' cache both go through [`read_image`] and
//! [`resize_center_crop`], so a prediction sees what evaluation saw.
//!
//! zune-* and image-webp rather than the `image` crate: `image` enables default features of
//! num-traits and flate2 (through png), which burn also uses, and that would rebuild the whole
//! burn stack.
use std::path::Path;

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (RGBRGB...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// The image in the file at `path`; the error is one line, without the path (the caller names
/// the file).
pub fn read_image(path: &Path) -> Result<RgbImage, String> {
    if path.is_dir() {
        return Err("is a folder, not an image".into());
    }
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        _ => format!("cannot read the file: {e}"),
    })?;
    decode_image(&bytes)
}

/// Decodes by content, whatever the file is called.
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage, String> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let options = DecoderOptions::default().png_set_strip_to_8bit(true);
        let mut decoder = zune_png::PngDecoder::new_with_options(ZCursor::new(bytes), options);
        let pixels = decoder.decode_raw().map_err(|e| undecodable("PNG", e))?;
        let (width, height) = decoder.dimensions().unwrap_or_default();
        to_rgb(width, height, pixels, decoder.colorspace(), "PNG")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
        let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
        let pixels = decoder.decode().map_err(|e| undecodable("JPEG", e))?;
        let (width, height) = decoder
            .info()
            .map(|i| (usize::from(i.width), usize::from(i.height)))
            .unwrap_or_default();
        to_rgb(width, height, pixels, decoder.output_colorspace(), "JPEG")
    } else if bytes.starts_with(b"BM") {
        let mut decoder = zune_bmp::BmpDecoder::new(ZCursor::new(bytes));
        let pixels = decoder
            .decode()
            .map_err(|e| undecodable("BMP", format!("{e:?}")))?;
        let (width, height) = decoder.dimensions().unwrap_or_default();
        to_rgb(width, height, pixels, decoder.colorspace(), "BMP")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        let webp_error = |e: image_webp::DecodingError| undecodable("WebP", e);
        let mut decoder =
            image_webp::WebPDecoder::new(std::io::Cursor::new(bytes)).map_err(webp_error)?;
        let (width, height) = decoder.dimensions();
        let mut pixels = vec![0; decoder.output_buffer_size().unwrap_or_default()];
        decoder.read_image(&mut pixels).map_err(webp_error)?;
        let colorspace = if decoder.has_alpha() {
            ColorSpace::RGBA
        } else {
            ColorSpace::RGB
        };
        to_rgb(
            width as usize,
            height as usize,
            pixels,
            Some(colorspace),
            "WebP",
        )
    } else {
        Err("not an image cnnzoo reads (PNG, JPEG, BMP or WebP)".into())
    }
}

/// The decoders' messages carry quotes and trailing newlines; the user gets one clean line.
fn undecodable(format: &str, detail: impl std::fmt::Display) -> String {
    let detail = detail.to_string();
    let detail = detail.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(
        "cannot decode the {format} image: {}",
        detail.trim_matches('"')
    )
}

/// Grey is replicated and alpha dropped; other colour spaces are refused rather than guessed.
fn to_rgb(
    width: usize,
    height: usize,
    pixels: Vec<u8>,
    colorspace: Option<ColorSpace>,
    format: &str,
) -> Result<RgbImage, String> {
    let colorspace = colorspace.unwrap_or(ColorSpace::Unknown);
    let channels = colorspace.num_components();
    if width == 0 || height == 0 || pixels.len() != width * height * channels {
        return Err(format!(
            "the {format} image decodes to {} bytes, not {width}x{height} pixels of {colorspace:?}",
            pixels.len()
        ));
    }
    // Where red, green and blue sit among a pixel's `channels` bytes.
    let [r, g, b] = match colorspace {
        ColorSpace::RGB | ColorSpace::RGBA => [0, 1, 2],
        ColorSpace::BGR | ColorSpace::BGRA => [2, 1, 0],
        ColorSpace::ARGB => [1, 2, 3],
        ColorSpace::Luma | ColorSpace::LumaA => [0, 0, 0],
        other => {
            return Err(format!(
                "the {format} image is in the {other:?} colour space, which cnnzoo does not convert"
            ));
        }
    };
    let rgb: Vec<u8> = if colorspace == ColorSpace::RGB {
        // Already in order: kept as decoded, without a copy.
        pixels
    } else {
        pixels
            .chunks_exact(channels)
            .flat_map(|p| [p[r], p[g], p[b]])
            .collect()
    };
    Ok(RgbImage {
        width,
        height,
        pixels: rgb,
    })
}

/// torchvision's `Resize(resize)` then `CenterCrop(crop)` on a PIL image: the shorter side
/// becomes `resize` (the longer keeps the aspect ratio, truncated), a centred `crop` x `crop`
/// square is kept (offsets rounded half to even), and the result is `3 * crop * crop` bytes,
/// channels first. `crop` must not exceed `resize`.
pub fn resize_center_crop(image: &RgbImage, resize: usize, crop: usize) -> Vec<u8> {
    let resize = resize.max(crop).max(1);
    let (short, long) = if image.width <= image.height {
        (image.width, image.height)
    } else {
        (image.height, image.width)
    };
    let long_resized = ((resize * long) / short.max(1)).max(resize);
    let (width, height) = if image.width <= image.height {
        (resize, long_resized)
    } else {
        (long_resized, resize)
    };
    let left = ((width - crop) as f64 / 2.0).round_ties_even() as usize;
    let top = ((height - crop) as f64 / 2.0).round_ties_even() as usize;

    let columns = filter(image.width, width);
    let rows = filter(image.height, height);
    let mut out = vec![0u8; 3 * crop * crop];
    // Horizontal pass over every source row, for the kept columns only.
    let mut horizontal = vec![0f32; image.height * crop * 3];
    for y in 0..image.height {
        let row = &image.pixels[y * image.width * 3..(y + 1) * image.width * 3];
        for x in 0..crop {
            let (first, weights) = &columns[left + x];
            let mut sum = [0f32; 3];
            for (w, p) in weights.iter().zip(row[first * 3..].chunks_exact(3)) {
                for (s, &v) in sum.iter_mut().zip(p) {
                    *s += w * f32::from(v);
                }
            }
            // PIL rounds to 8 bits after each pass; so does this, to give torchvision's input.
            horizontal[(y * crop + x) * 3..(y * crop + x) * 3 + 3]
                .copy_from_slice(&sum.map(|v| v.round().clamp(0.0, 255.0)));
        }
    }
    for y in 0..crop {
        let (first, weights) = &rows[top + y];
        for x in 0..crop {
            for c in 0..3 {
                let value: f32 = weights
                    .iter()
                    .enumerate()
                    .map(|(i, w)| w * horizontal[((first + i) * crop + x) * 3 + c])
                    .sum();
                out[(c * crop + y) * crop + x] = value.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    out
}

/// Bilinear (triangle) filter weights from `from` samples to `to`, PIL's way: sample centres at
/// half-pixel offsets, and when shrinking the triangle widened by the scale, so every source
/// pixel contributes. Per output sample: the first source index and the normalised weights.
fn filter(from: usize, to: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = from as f64 / to as f64;
    let widen = scale.max(1.0);
    (0..to)
        .map(|i| {
            let centre = (i as f64 + 0.5) * scale;
            let first = (centre - widen + 0.5).floor().max(0.0) as usize;
            let end = ((centre + widen + 0.5).floor() as usize).clamp(first + 1, from);
            let weights: Vec<f64> = (first..end)
                .map(|j| (1.0 - ((j as f64 - centre + 0.5) / widen).abs()).max(0.0))
                .collect();
            let total: f64 = weights.iter().sum();
            let weights = weights
                .iter()
                .map(|w| {
                    if total > 0.0 {
                        (w / total) as f32
                    } else {
                        1.0 / weights.len() as f32
                    }
                })
                .collect();
            (first, weights)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uniform_image_stays_uniform_at_any_size() {
        for (w, h) in [(7, 5), (32, 32), (100, 40), (3, 90)] {
            let image = RgbImage {
                width: w,
                height: h,
                pixels: [51u8, 102, 204].repeat(w * h),
            };
            for (resize, crop) in [(8, 8), (9, 8)] {
                let out = resize_center_crop(&image, resize, crop);
                for (c, want) in [51u8, 102, 204].iter().enumerate() {
                    assert!(
                        out[c * 64..(c + 1) * 64].iter().all(|v| v == want),
                        "{w}x{h}"
                    );
                }
            }
        }
    }

    #[test]
    fn same_size_is_the_identity_and_shrinking_uses_pils_weights() {
        let pixels: Vec<u8> = (0..16u8).flat_map(|v| [v * 10, 0, 255 - v * 10]).collect();
        let image = RgbImage {
            width: 4,
            height: 4,
            pixels,
        };
        let same = resize_center_crop(&image, 4, 4);
        // The red plane (channels first) is the pixel values, in order.
        let red: Vec<u8> = (0..16u8).map(|v| v * 10).collect();
        assert_eq!(same[..16], red[..]);
        // 4 -> 2: the triangle widened to +-2 pixels around the output's centre (source
        // position 1.0) weighs pixels 0, 1, 2 by 0.75, 0.75, 0.25, normalised to 3/7, 3/7, 1/7
        // along each axis. Red is 40y + 10x: the horizontal pass gives 40y + 50/7, rounded to
        // 40y + 7, and the vertical one (3 * 7 + 3 * 47 + 87) / 7 = 35.57, rounded to 36.
        assert_eq!(resize_center_crop(&image, 2, 2)[0], 36);
        // Resize to 4 then crop the centre 2x2: rows and columns 1 and 2 of the original.
        assert_eq!(resize_center_crop(&image, 4, 2)[..4], [50, 60, 90, 100]);
    }

    #[test]
    fn the_centre_of_a_wide_image_is_kept() {
        // 3 wide, 1 high, to 1x1: the middle column only.
        let image = RgbImage {
            width: 3,
            height: 1,
            pixels: vec![0, 0, 0, 255, 255, 255, 0, 0, 0],
        };
        assert_eq!(resize_center_crop(&image, 1, 1), vec![255, 255, 255]);
    }

    #[test]
    fn files_are_recognised_by_content() {
        assert!(
            decode_image(b"hello, world")
                .unwrap_err()
                .contains("PNG, JPEG, BMP or WebP")
        );
        assert!(
            decode_image(b"\x89PNG\r\n\x1a\nbroken")
                .unwrap_err()
                .contains("cannot decode the PNG")
        );
        assert!(
            decode_image(&[0xFF, 0xD8, 0xFF, 0, 1])
                .unwrap_err()
                .contains("JPEG")
        );
    }
}
