//! Uncompressed 24-bit BMP files, for folder data sets whose every pixel a test knows (shared
//! with the loader benchmark).

/// A BMP of `width` x `height` pixels given as interleaved RGB rows, top row first.
pub fn bmp(width: usize, height: usize, rgb: &[u8]) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let pixels = row * height;
    let mut file = Vec::with_capacity(54 + pixels);
    file.extend(b"BM");
    file.extend(((54 + pixels) as u32).to_le_bytes());
    file.extend([0; 4]);
    file.extend(54u32.to_le_bytes());
    file.extend(40u32.to_le_bytes());
    file.extend((width as i32).to_le_bytes());
    // Positive: rows stored bottom-up, as most writers store them.
    file.extend((height as i32).to_le_bytes());
    file.extend(1u16.to_le_bytes());
    file.extend(24u16.to_le_bytes());
    file.extend([0; 24]);
    for line in rgb.chunks_exact(width * 3).rev() {
        let start = file.len();
        file.extend(line.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]));
        file.resize(start + row, 0);
    }
    file
}
