//! PNG encoding of an RGB picture: adaptive Sub/Up filtering, zlib through flate2, and the three
//! chunks. Not zune-png's encoder (the decoder `predict` uses): version 0.5 writes stored,
//! uncompressed deflate blocks only, so curves.png would take its raw 3.2 MB (1200 x 900 x 3
//! bytes) where this encoder writes 55 KB. Not the `png` crate: it turns on flate2's default
//! backend next to burn's zlib-rs, and that rebuilds every crate above flate2.
use std::io::Write;

use anyhow::{Context, Result};

/// The PNG file of a `width` x `height` picture whose rows of RGB bytes are `rgb`.
pub(super) fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Vec<u8>> {
    let stride = width as usize * 3;
    let mut filtered = Vec::with_capacity((stride + 1) * height as usize);
    let mut previous = vec![0u8; stride];
    for row in rgb.chunks_exact(stride) {
        let sub: Vec<u8> = (0..stride)
            .map(|i| row[i].wrapping_sub(if i >= 3 { row[i - 3] } else { 0 }))
            .collect();
        let up: Vec<u8> = row
            .iter()
            .zip(&previous)
            .map(|(a, b)| a.wrapping_sub(*b))
            .collect();
        let cost = |v: &[u8]| {
            v.iter()
                .map(|&b| u64::from((b as i8).unsigned_abs()))
                .sum::<u64>()
        };
        let (kind, bytes) = if cost(&sub) <= cost(&up) {
            (1u8, sub)
        } else {
            (2u8, up)
        };
        filtered.push(kind);
        filtered.extend(bytes);
        previous.copy_from_slice(row);
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&filtered)
        .context("cannot compress the picture")?;
    let idat = zlib.finish().context("cannot compress the picture")?;

    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    // 8 bits per channel, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend([8, 2, 0, 0, 0]);
    for (kind, data) in [
        (b"IHDR", &ihdr[..]),
        (b"IDAT", &idat[..]),
        (b"IEND", &[][..]),
    ] {
        png.extend((data.len() as u32).to_be_bytes());
        png.extend(kind);
        png.extend(data);
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        png.extend(crc.finalize().to_be_bytes());
    }
    Ok(png)
}
