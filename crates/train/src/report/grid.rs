//! A grid of small images, each drawn `scale` times larger with a gap between cells: what
//! `cnnzoo augment` writes so that a recipe can be checked by eye.
use anyhow::{Result, bail};

use super::png::encode_rgb;

/// Pixels between cells and around the grid.
const GAP: usize = 4;
/// The background between cells.
const BACKGROUND: u8 = 255;

/// The PNG of `rows` x `columns` RGB images of `side` x `side` pixels (`cells` in row order, each
/// channel-major as the CIFAR files store it), each pixel drawn as a `scale` x `scale` square.
pub fn image_grid(
    cells: &[Vec<u8>],
    (rows, columns): (usize, usize),
    side: usize,
    scale: usize,
) -> Result<Vec<u8>> {
    if cells.len() != rows * columns || cells.iter().any(|c| c.len() != 3 * side * side) {
        bail!(
            "a {rows}x{columns} grid needs {} images of 3x{side}x{side} pixels",
            rows * columns
        );
    }
    let cell = side * scale;
    let width = columns * (cell + GAP) + GAP;
    let height = rows * (cell + GAP) + GAP;
    let mut rgb = vec![BACKGROUND; width * height * 3];
    for (index, image) in cells.iter().enumerate() {
        let (left, top) = (
            GAP + index % columns * (cell + GAP),
            GAP + index / columns * (cell + GAP),
        );
        for y in 0..cell {
            for x in 0..cell {
                let source = y / scale * side + x / scale;
                let target = ((top + y) * width + left + x) * 3;
                for channel in 0..3 {
                    rgb[target + channel] = image[channel * side * side + source];
                }
            }
        }
    }
    encode_rgb(width as u32, height as u32, &rgb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::decode;

    #[test]
    fn each_cell_lands_where_its_row_and_column_say_scaled() {
        // Two 2x2 images side by side: pure red and pure blue.
        let red = [vec![255u8; 4], vec![0; 4], vec![0; 4]].concat();
        let blue = [vec![0u8; 4], vec![0; 4], vec![255; 4]].concat();
        let png = image_grid(&[red, blue], (1, 2), 2, 3).unwrap();
        let (width, height, rgb) = decode(&png);
        assert_eq!((width, height), (2 * (6 + GAP) + GAP, 6 + 2 * GAP));
        let pixel = |x: usize, y: usize| &rgb[(y * width + x) * 3..][..3];
        assert_eq!(pixel(GAP, GAP), [255, 0, 0]);
        assert_eq!(pixel(GAP + 5, GAP + 5), [255, 0, 0]);
        assert_eq!(pixel(2 * GAP + 6, GAP), [0, 0, 255]);
        assert_eq!(pixel(0, 0), [BACKGROUND; 3]);
        assert!(image_grid(&[vec![0; 12]], (1, 2), 2, 3).is_err());
    }
}
