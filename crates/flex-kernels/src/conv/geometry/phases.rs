//! The phase planes of `Geometry::phase_stride`: an image split by stride `s` into `s * s`
//! planes of the output's size, and added back.
use super::Geometry;

impl Geometry {
    /// Splits each channel of `image` into its `stride * stride` phase planes (`phase_stride`),
    /// one after the other in `phases`.
    pub(super) fn split_phases(&self, stride: usize, image: &[f32], phases: &mut [f32]) {
        let phase_len = self.spatial.out_height * self.spatial.out_width;
        for (y, pixels) in image.chunks_exact(self.spatial.width).enumerate() {
            let first = self.phase_row_start(stride, y);
            if stride == 2 {
                // Pairs, so that the loop vectorises.
                let (even, odd) = phases[first..].split_at_mut(phase_len);
                let rows = even.iter_mut().zip(odd.iter_mut());
                for ((even, odd), pair) in rows.zip(pixels.chunks_exact(2)) {
                    (*even, *odd) = (pair[0], pair[1]);
                }
                continue;
            }
            for (column_phase, row) in phases[first..]
                .chunks_mut(phase_len)
                .take(stride)
                .enumerate()
            {
                let taps = pixels[column_phase..].iter().step_by(stride);
                row.iter_mut()
                    .zip(taps)
                    .for_each(|(phase, pixel)| *phase = *pixel);
            }
        }
    }

    /// The inverse of `split_phases`, adding: `image += interleave(phases)`.
    pub(super) fn add_phases(&self, stride: usize, phases: &[f32], image: &mut [f32]) {
        let phase_len = self.spatial.out_height * self.spatial.out_width;
        let width = self.spatial.width;
        for (y, pixels) in image.chunks_exact_mut(width).enumerate() {
            let first = self.phase_row_start(stride, y);
            if stride == 2 {
                let (even, odd) = (&phases[first..], &phases[first + phase_len..]);
                for ((pair, even), odd) in pixels.chunks_exact_mut(2).zip(even).zip(odd) {
                    pair[0] += *even;
                    pair[1] += *odd;
                }
                continue;
            }
            for column_phase in 0..stride {
                let row = &phases[first + column_phase * phase_len..][..self.spatial.out_width];
                let taps = pixels[column_phase..].iter_mut().step_by(stride);
                taps.zip(row).for_each(|(pixel, phase)| *pixel += *phase);
            }
        }
    }

    /// Where image row `y`'s pixels of column phase 0 start in the phase planes.
    fn phase_row_start(&self, stride: usize, y: usize) -> usize {
        let phase_len = self.spatial.out_height * self.spatial.out_width;
        let (plane, y_in_plane) = (y / self.spatial.height, y % self.spatial.height);
        let (row_phase, phase_row) = (y_in_plane % stride, y_in_plane / stride);
        (plane * stride * stride + row_phase * stride) * phase_len
            + phase_row * self.spatial.out_width
    }
}
