//! torchvision's `RandomCrop(size, padding, padding_mode, fill)` on uint8 CHW images, the
//! classic CIFAR augmentation (32x32 crops of the image padded by 4).
//!
//! The padded image is never built: each output row and column maps to a source index (or to
//! the fill), so the interior of a crop is one `copy_from_slice` per row and only the few
//! padded pixels at its borders are looked up one by one.

use rand::{Rng, RngExt};

use crate::set::IMAGE_SIDE;

/// How the pixels outside the image are made up, as torchvision's `padding_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PaddingMode {
    /// The fill value of each channel.
    #[default]
    Constant,
    /// The image mirrored about its edge pixel, which is not repeated (`[2, 1, | 0, 1, 2]`), as
    /// torchvision's and numpy's 'reflect'.
    Reflect,
    /// The edge pixel repeated (`[0, 0, | 0, 1, 2]`), as torchvision's 'edge'.
    Edge,
}

impl PaddingMode {
    /// The source index along an axis of `len` pixels that stands in for coordinate `at` (which
    /// may lie outside `0..len`), or `None` for the fill.
    ///
    /// Reflect folds any distance, as numpy does: the mirrored image repeats with period
    /// `2 * (len - 1)`.
    fn source(self, at: isize, len: usize) -> Option<usize> {
        let last = len.checked_sub(1)?;
        match self {
            _ if (0..len as isize).contains(&at) => Some(at as usize),
            Self::Constant => None,
            Self::Edge => Some(if at < 0 { 0 } else { last }),
            Self::Reflect if last == 0 => Some(0),
            Self::Reflect => {
                let period = 2 * last as isize;
                let folded = at.rem_euclid(period) as usize;
                Some(if folded > last {
                    2 * last - folded
                } else {
                    folded
                })
            }
        }
    }
}

/// torchvision's `RandomCrop`: pad every side by `padding`, then cut a `height` x `width` window
/// at a uniformly drawn position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RandomCrop {
    /// Rows of the output.
    pub height: usize,
    /// Columns of the output.
    pub width: usize,
    /// Pixels added on each of the four sides before cropping.
    pub padding: usize,
    /// How the added pixels are made up.
    pub padding_mode: PaddingMode,
    /// The added pixels' value per channel (R, G, B) in [`PaddingMode::Constant`].
    pub fill: [u8; 3],
}

impl Default for RandomCrop {
    /// The usual CIFAR crop: `RandomCrop(32, padding=4)` with black padding.
    fn default() -> Self {
        Self {
            height: IMAGE_SIDE,
            width: IMAGE_SIDE,
            padding: 4,
            padding_mode: PaddingMode::Constant,
            fill: [0; 3],
        }
    }
}

/// How one output axis maps to a source axis: output coordinate `o` reads source coordinate
/// `start + o`; `o` in `inside` reads inside the image, the rest is padding.
#[derive(Debug, Clone)]
struct AxisMap {
    start: isize,
    inside: std::ops::Range<usize>,
}

impl AxisMap {
    /// Output coordinates `0..out_len` starting `offset` pixels into the padded axis of a
    /// `len`-pixel image padded by `padding`.
    fn new(offset: usize, padding: usize, len: usize, out_len: usize) -> Self {
        let start = offset as isize - padding as isize;
        let clip = |at: isize| at.clamp(0, out_len as isize) as usize;
        let first = clip(-start);
        let end = clip(len as isize - start).max(first);
        Self {
            start,
            inside: first..end,
        }
    }
}

impl RandomCrop {
    /// torchvision's `RandomCrop.get_params` on the padded image of a `height` x `width` source:
    /// `(top, left)` of the window in the padded image, each uniform in `0..=padded - size`;
    /// no draw at all when the window is the whole padded image.
    ///
    /// Where the padded image is smaller than the window (torchvision refuses), the window sits
    /// at 0 and reaches past the padding, which is made up in the same way.
    pub fn sample(&self, rng: &mut impl Rng, height: usize, width: usize) -> (usize, usize) {
        let spare_rows = (height + 2 * self.padding).saturating_sub(self.height);
        let spare_columns = (width + 2 * self.padding).saturating_sub(self.width);
        if spare_rows == 0 && spare_columns == 0 {
            return (0, 0);
        }
        let top = rng.random_range(0..=spare_rows);
        let left = rng.random_range(0..=spare_columns);
        (top, left)
    }

    /// Writes the `self.height` x `self.width` window at (`top`, `left`) of the padded image into
    /// `out` (CHW uint8), for a `src` of `height` x `width` pixels per channel (CHW uint8).
    ///
    /// The channels are as many as whole planes fit in both `src` and `out`; channels past the
    /// third are filled with 0 in [`PaddingMode::Constant`]. An empty source writes the fill.
    pub fn apply(
        &self,
        src: &[u8],
        height: usize,
        width: usize,
        top: usize,
        left: usize,
        out: &mut [u8],
    ) {
        let out_plane = self.height * self.width;
        if out_plane == 0 {
            return;
        }
        let rows = AxisMap::new(top, self.padding, height, self.height);
        let columns = AxisMap::new(left, self.padding, width, self.width);
        let src_plane = height * width;
        for (channel, plane_out) in out.chunks_exact_mut(out_plane).enumerate() {
            let Some(plane_in) = src.get(channel * src_plane..(channel + 1) * src_plane) else {
                break;
            };
            let fill = self.fill.get(channel).copied().unwrap_or(0);
            for (y, row_out) in plane_out.chunks_exact_mut(self.width).enumerate() {
                match self.padding_mode.source(rows.start + y as isize, height) {
                    Some(row) => {
                        let row_in = &plane_in[row * width..][..width];
                        self.crop_row(row_in, &columns, fill, row_out);
                    }
                    None => row_out.fill(fill),
                }
            }
        }
    }

    /// One output row from source row `row_in`: the inside copied in one piece, the padding on
    /// either side looked up pixel by pixel.
    fn crop_row(&self, row_in: &[u8], columns: &AxisMap, fill: u8, row_out: &mut [u8]) {
        let inside = columns.inside.clone();
        let padded = |x: usize| {
            let source = self
                .padding_mode
                .source(columns.start + x as isize, row_in.len());
            source.map_or(fill, |column| row_in[column])
        };
        for (x, pixel) in row_out[..inside.start].iter_mut().enumerate() {
            *pixel = padded(x);
        }
        if !inside.is_empty() {
            // Inside means `start + x` lies in `0..row_in.len()`.
            let first = (columns.start + inside.start as isize) as usize;
            row_out[inside.clone()].copy_from_slice(&row_in[first..][..inside.len()]);
        }
        for (x, pixel) in row_out.iter_mut().enumerate().skip(inside.end) {
            *pixel = padded(x);
        }
    }
}
