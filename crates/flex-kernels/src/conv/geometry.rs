//! The gemm path of [`super`]: one convolution's sizes, im2col and col2im over tiles of output
//! positions, and the three products as gemm calls.
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ConvOptions;
use burn::tensor::DType;
use rayon::prelude::*;

use crate::batch_norm::ConvNorms;
use crate::same_conv3x3::SameConv3x3;
use crate::{Window2d, par_write, summed, zeroed};

mod phases;

/// The patch matrix of one gemm holds about this many floats (256 KiB, half of a core's L2
/// cache on the 2-core machine the figures come from): a band of 14 output rows at ResNet-20's
/// first stage. Against 1 MiB this took that stage's weight gradient from 23.9 to 17.6 ms and its
/// forward pass from 16.7 to 15.2 ms.
const TILE_FLOATS: usize = 1 << 16;

/// Output positions per gemm, at least, where the patch matrix would allow fewer: ResNet-20's
/// 16x16 stage keeps whole images, and its 8x8 stage goes four images to a gemm. Against
/// `TILE_FLOATS` alone, ResNet-20 trains 5-9% faster.
const MIN_TILE_COLUMNS: usize = 256;

/// One convolution's sizes, for f32 NCHW tensors and a single group.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Geometry {
    batch: usize,
    channels_in: usize,
    channels_out: usize,
    spatial: Window2d,
}

impl Geometry {
    /// `None` where the gemm kernels do not apply and burn's own must run.
    pub(super) fn of(
        x: &FlexTensor,
        weight: &FlexTensor,
        options: &ConvOptions<2>,
    ) -> Option<Self> {
        if options.groups != 1 || x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
            return None;
        }
        let [batch, channels_in, height, width] = dims4(x)?;
        let [channels_out, weight_channels, kh, kw] = dims4(weight)?;
        let sizes = [batch, channels_in, height, width, channels_out, kh, kw];
        if weight_channels != channels_in || sizes.contains(&0) {
            return None;
        }
        let spatial = Window2d::new(
            [height, width],
            [kh, kw],
            options.stride,
            options.padding,
            options.dilation,
        )?;
        Some(Self {
            batch,
            channels_in,
            channels_out,
            spatial,
        })
    }

    pub(super) fn input_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels_in,
            self.spatial.height,
            self.spatial.width,
        ]
    }

    pub(super) fn weight_shape(&self) -> [usize; 4] {
        let [kh, kw] = self.spatial.kernel;
        [self.channels_out, self.channels_in, kh, kw]
    }

    pub(super) fn output_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels_out,
            self.spatial.out_height,
            self.spatial.out_width,
        ]
    }

    /// Rows of the patch matrix: one per input channel and kernel tap.
    fn patch_len(&self) -> usize {
        self.channels_in * self.spatial.kernel[0] * self.spatial.kernel[1]
    }

    fn image_len(&self) -> usize {
        self.channels_in * self.spatial.height * self.spatial.width
    }

    fn out_image_len(&self) -> usize {
        self.channels_out * self.spatial.out_height * self.spatial.out_width
    }

    /// Output positions per gemm: enough for a patch matrix of about `TILE_FLOATS`, and never
    /// fewer than `MIN_TILE_COLUMNS`.
    fn tile_columns(&self) -> usize {
        (TILE_FLOATS / self.patch_len().max(1)).max(MIN_TILE_COLUMNS)
    }

    /// Whole images per gemm: one where an image has more output positions than a tile (it is
    /// then cut into bands of rows), else as many as fill a tile. A pointwise convolution keeps
    /// one image per gemm, reading the image in place: copying several into one patch matrix
    /// made GoogleNet's inference 5% slower.
    fn images_per_tile(&self) -> usize {
        if self.is_pointwise() {
            return 1;
        }
        let plane = self.spatial.out_height * self.spatial.out_width;
        (self.tile_columns() / plane.max(1)).clamp(1, self.batch.max(1))
    }

    /// The bands of output rows each gemm covers in each of its images: one band of every row
    /// where a tile holds several images.
    fn row_bands(&self) -> impl Iterator<Item = (usize, usize)> + use<> {
        let rows_per_band = (self.tile_columns() / self.spatial.out_width.max(1)).max(1);
        let out_height = self.spatial.out_height;
        (0..out_height)
            .step_by(rows_per_band)
            .map(move |start| (start, (start + rows_per_band).min(out_height)))
    }

    /// The direct kernels of `same_conv3x3`, for a 3x3 kernel at stride 1 with one pixel of
    /// padding on every side; each product asks them whether they run at the active level.
    fn same_conv3x3(&self) -> Option<SameConv3x3> {
        let same_3x3 = self.spatial.kernel == [3, 3]
            && self.spatial.stride == [1, 1]
            && self.spatial.padding == [1, 1]
            && self.spatial.dilation == [1, 1]
            && (self.spatial.out_height, self.spatial.out_width)
                == (self.spatial.height, self.spatial.width);
        let direct = SameConv3x3 {
            batch: self.batch,
            channels_in: self.channels_in,
            channels_out: self.channels_out,
            height: self.spatial.height,
            width: self.spatial.width,
        };
        same_3x3.then_some(direct)
    }

    /// A 1x1 kernel at stride 1 without padding (GoogleNet's and DenseNet's bottlenecks): the
    /// image itself, `[C, H*W]`, is the patch matrix.
    fn is_pointwise(&self) -> bool {
        self.spatial.kernel == [1, 1]
            && self.spatial.stride == [1, 1]
            && (self.spatial.out_height, self.spatial.out_width)
                == (self.spatial.height, self.spatial.width)
            && self.spatial.padding == [0, 0]
    }

    /// The patch matrix of output rows `band` of `images` (one or more whole images),
    /// `[C*kh*kw, images * rows * OW]` with each image's columns after the previous image's: a
    /// view of a single image for a pointwise convolution, else written into `buffer` by im2col.
    fn patches<'a>(
        &self,
        images: &'a [f32],
        band: (usize, usize),
        (buffer, phases): (&'a mut Vec<f32>, &mut Vec<f32>),
    ) -> Matrix<'a> {
        let count = images.len() / self.image_len();
        if self.is_pointwise() && count == 1 {
            let plane = self.spatial.height * self.spatial.width;
            return Matrix::row_major(&images[band.0 * self.spatial.width..], plane);
        }
        let band_columns = (band.1 - band.0) * self.spatial.out_width;
        let columns = count * band_columns;
        let cols = scratch(buffer, self.patch_len() * columns);
        for (index, image) in images.chunks_exact(self.image_len()).enumerate() {
            let image = match self.phase_stride() {
                Some(stride) => {
                    let phases = scratch(phases, image.len());
                    self.split_phases(stride, image, phases);
                    &*phases
                }
                None => image,
            };
            self.im2col(image, band, (cols, columns), index * band_columns);
        }
        Matrix::row_major(cols, columns)
    }

    /// For kernel tap `(i, j)` over output rows `band`, where every output row reads one input row
    /// shifted by a fixed number of columns (stride 1, output rows as wide as input rows: the
    /// 3x3 convolutions of ResNet, DenseNet and GoogleNet, Inception v3's 1x7): the tap's patch
    /// row is then a single run of the image plane with some columns zeroed, which im2col and
    /// col2im move in one go rather than one short output row at a time. At ResNet-20's 8x8
    /// stage, row by row, im2col took a quarter of the forward pass. Where `phase_stride`
    /// applies, the same holds on one of the phase planes, whose index comes first.
    fn shifted_span(
        &self,
        (start, end): (usize, usize),
        (i, j): (usize, usize),
    ) -> Option<(usize, Span)> {
        let [row_offset, column_offset] = [(i, 0), (j, 1)].map(|(tap, axis)| {
            (tap * self.spatial.dilation[axis]) as isize - self.spatial.padding[axis] as isize
        });
        let (stride, height, width) = match self.phase_stride() {
            Some(stride) => (stride, self.spatial.out_height, self.spatial.out_width),
            None if self.spatial.stride == [1, 1]
                && self.spatial.dilation[1] == 1
                && self.spatial.out_width == self.spatial.width =>
            {
                (1, self.spatial.height, self.spatial.width)
            }
            None => return None,
        };
        // Input position s * o + offset = s * (o + shift) + phase.
        let s = stride as isize;
        let (row_shift, column_shift) = (row_offset.div_euclid(s), column_offset.div_euclid(s));
        let phase = (row_offset.rem_euclid(s) * s + column_offset.rem_euclid(s)) as usize;
        // Output rows [lo, hi) of the band read plane rows oy + row_shift inside the plane.
        let lo = (-row_shift).clamp(start as isize, end as isize);
        let hi = (height as isize - row_shift).clamp(lo, end as isize);
        let span = Span {
            rows: (lo as usize - start, hi as usize - start),
            plane_start: (lo + row_shift) * width as isize + column_shift,
            plane_len: height * width,
            width,
            column_shift,
        };
        Some((phase, span))
    }

    /// `Some(s)` where the stride is `s > 1` on both axes without dilation, and the input is `s`
    /// times the output on both (a 3x3 stride-2 convolution padded by 1, a 1x1 stride-2
    /// projection, over even sizes): split into `s * s` phase planes of the output's size,
    /// `x[s * y + a][s * x + b]` in phase `a * s + b`, every tap reads one phase plane shifted by
    /// whole rows and columns, so im2col and col2im move shifted spans there. Row by row, with
    /// a strided copy per output row and tap, im2col was 5% of PreAct ResNet-20's step.
    fn phase_stride(&self) -> Option<usize> {
        let spatial = &self.spatial;
        let stride = spatial.stride[0];
        (stride > 1
            && spatial.stride == [stride, stride]
            && spatial.dilation == [1, 1]
            && spatial.height == stride * spatial.out_height
            && spatial.width == stride * spatial.out_width)
            .then_some(stride)
    }

    /// Writes the patches of output rows `[start, end)` of one image (split into its phase
    /// planes where `phase_stride` applies) into the columns from
    /// `column` on of `cols`, a matrix with rows of `row_len` values and one row per channel and
    /// kernel tap; zeros where a tap falls into the padding.
    fn im2col(
        &self,
        image: &[f32],
        band: (usize, usize),
        cols: (&mut [f32], usize),
        column: usize,
    ) {
        let plane = self.spatial.height * self.spatial.width;
        for (c, tap, patch_row) in self.patch_rows(cols, column, band) {
            let channel = &image[c * plane..][..plane];
            if let Some((phase, span)) = self.shifted_span(band, tap) {
                span.copy(&channel[phase * span.plane_len..], patch_row);
                continue;
            }
            // Zeros where the tap falls into the padding: between the runs and after the last.
            let mut written = 0;
            for (entries, first) in self.input_runs(band, tap) {
                patch_row[written..entries.start].fill(0.0);
                written = entries.end;
                let values = &mut patch_row[entries];
                if self.spatial.stride[1] == 1 {
                    values.copy_from_slice(&channel[first..][..values.len()]);
                } else {
                    let taps = channel[first..].iter().step_by(self.spatial.stride[1]);
                    for (value, tap) in values.iter_mut().zip(taps) {
                        *value = *tap;
                    }
                }
            }
            patch_row[written..].fill(0.0);
        }
    }

    /// The adjoint of `im2col`: adds each patch entry back onto the input pixel it came from,
    /// through phase planes in `phases` where `phase_stride` applies. Entries of taps that fall
    /// into the padding may be overwritten.
    fn col2im_add(
        &self,
        cols: (&mut [f32], usize),
        column: usize,
        band: (usize, usize),
        (image, phases): (&mut [f32], &mut Vec<f32>),
    ) {
        let Some(stride) = self.phase_stride() else {
            return self.col2im_add_planes(cols, column, band, image);
        };
        let phases = scratch(phases, image.len());
        phases.fill(0.0);
        self.col2im_add_planes(cols, column, band, phases);
        self.add_phases(stride, phases, image);
    }

    /// `col2im_add` onto `image`'s channel planes, or onto its phase planes where
    /// `phase_stride` applies.
    fn col2im_add_planes(
        &self,
        cols: (&mut [f32], usize),
        column: usize,
        band: (usize, usize),
        image: &mut [f32],
    ) {
        let plane = self.spatial.height * self.spatial.width;
        for (c, tap, patch_row) in self.patch_rows(cols, column, band) {
            let channel = &mut image[c * plane..][..plane];
            if let Some((phase, span)) = self.shifted_span(band, tap) {
                span.add(patch_row, &mut channel[phase * span.plane_len..]);
                continue;
            }
            for (entries, first) in self.input_runs(band, tap) {
                let values = &patch_row[entries];
                // Stride 1 (most layers) as contiguous slices, which vectorise.
                if self.spatial.stride[1] == 1 {
                    let pixels = &mut channel[first..][..values.len()];
                    for (pixel, value) in pixels.iter_mut().zip(values) {
                        *pixel += *value;
                    }
                } else {
                    let pixels = channel[first..].iter_mut().step_by(self.spatial.stride[1]);
                    for (pixel, value) in pixels.zip(values) {
                        *pixel += *value;
                    }
                }
            }
        }
    }

    /// The patch entries of output rows `[start, end)` in `cols` (rows of `row_len` values, one
    /// per channel and kernel tap), from `column` on: each row's channel, tap `(i, j)` and
    /// entries.
    fn patch_rows<'a>(
        &self,
        (cols, row_len): (&'a mut [f32], usize),
        column: usize,
        (start, end): (usize, usize),
    ) -> impl Iterator<Item = (usize, (usize, usize), &'a mut [f32])> {
        let [kh, kw] = self.spatial.kernel;
        let band_len = (end - start) * self.spatial.out_width;
        cols.chunks_exact_mut(row_len)
            .take(self.patch_len())
            .enumerate()
            .map(move |(row, entries)| {
                let tap = (row / kw % kh, row % kw);
                (row / (kh * kw), tap, &mut entries[column..][..band_len])
            })
    }

    /// Where tap `(i, j)` of output rows `[start, end)` reads the image, for a tap without a
    /// shifted span: for each output row whose tap lands inside the image, the entries of the
    /// band's patch row that read it and the plane index of the first, the others one column
    /// stride apart.
    fn input_runs(
        &self,
        (start, end): (usize, usize),
        (i, j): (usize, usize),
    ) -> impl Iterator<Item = (std::ops::Range<usize>, usize)> {
        let spatial = self.spatial;
        let (lo, hi, first) = spatial.axis(1).valid_outputs(j);
        (start..end).enumerate().filter_map(move |(k, oy)| {
            let iy = spatial.axis(0).input_position(oy, i)?;
            let row = k * spatial.out_width;
            Some((row + lo..row + hi, iy * spatial.width + first))
        })
    }

    /// The output gradient of output rows `band` of one or more whole images, as the
    /// `[C_out, images * rows * OW]` matrix the gemm reads: a view of a single image, else
    /// gathered into `buffer`.
    fn output_grad_tile<'a>(
        &self,
        grads: &'a [f32],
        band: (usize, usize),
        buffer: &'a mut Vec<f32>,
    ) -> Matrix<'a> {
        let out_plane = self.spatial.out_height * self.spatial.out_width;
        let count = grads.len() / self.out_image_len();
        if count == 1 {
            return Matrix::row_major(&grads[band.0 * self.spatial.out_width..], out_plane);
        }
        let tile = scratch(buffer, grads.len());
        for (index, grad) in grads.chunks_exact(self.out_image_len()).enumerate() {
            for (channel, plane) in grad.chunks_exact(out_plane).enumerate() {
                tile[(channel * count + index) * out_plane..][..out_plane].copy_from_slice(plane);
            }
        }
        Matrix::row_major(tile, count * out_plane)
    }

    /// Runs `product`, which writes a `[channels, images * plane]` matrix at the row stride it is
    /// given, into `out`: one or more whole images of `[channels, plane]`, from output row
    /// `band_start` on. Straight into a single image, else through `buffer`.
    fn write_tile(
        &self,
        (out, channels, plane): (&mut [f32], usize, usize),
        band_start: usize,
        buffer: &mut Vec<f32>,
        product: impl FnOnce(&mut [f32], usize),
    ) {
        let count = out.len() / (channels * plane);
        if count == 1 {
            return product(&mut out[band_start * self.spatial.out_width..], plane);
        }
        let tile = scratch(buffer, out.len());
        product(tile, count * plane);
        for (index, image) in out.chunks_exact_mut(channels * plane).enumerate() {
            for (channel, dst) in image.chunks_exact_mut(plane).enumerate() {
                dst.copy_from_slice(&tile[(channel * count + index) * plane..][..plane]);
            }
        }
    }

    /// Output positions in one gemm over `images` (a slice of whole images) and `band`.
    fn columns(&self, images: usize, band: (usize, usize)) -> usize {
        images * (band.1 - band.0) * self.spatial.out_width
    }

    /// A new batch of `out_len` values per image, written a tile of `images_per_tile` images at a
    /// time, tiles in parallel, and a band of output rows at a time: `write` gets its thread's
    /// buffers, the output tile, the matching tile of `input` (`in_len` values per image), the
    /// band and the number of output positions it covers in the tile. `norms.input` normalises
    /// each input tile before the bands read it, `norms.output` each output tile after.
    fn bands_in_parallel(
        &self,
        (input, in_len): (&[f32], usize),
        (out_len, norms): (usize, ConvNorms),
        write: impl Fn(&mut Buffers, &mut [f32], &[f32], (usize, usize), usize) + Send + Sync,
    ) -> Vec<f32> {
        let images = self.images_per_tile();
        par_write(
            (self.batch * out_len, images * out_len),
            input.par_chunks(images * in_len).enumerate(),
            Buffers::default,
            |buffers, out, (tile, input)| {
                let out = zeroed(out);
                let mut normalized = std::mem::take(&mut buffers.normalized);
                let input = match norms.input {
                    Some(norm) => {
                        norm.normalized_copy(input, in_len / norm.channels(), &mut normalized)
                    }
                    None => input,
                };
                for band in self.row_bands() {
                    let columns = self.columns(input.len() / in_len, band);
                    write(buffers, out, input, band, columns);
                }
                buffers.normalized = normalized;
                if let Some(norm) = norms.output {
                    norm.apply(out, out_len / norm.channels(), tile * images * out_len);
                }
            },
        )
    }

    /// `y[b] = W * cols(x[b])`, a tile of images or a band of rows per gemm, tiles in parallel.
    /// `norms` normalise each tile's input and output in the same pass, while in cache.
    pub(super) fn forward(&self, x: &[f32], weight: &[f32], norms: ConvNorms) -> Vec<f32> {
        if let Some(direct) = self.same_conv3x3().filter(SameConv3x3::runs_convolve) {
            return direct.forward(x, weight, norms);
        }
        let k = self.patch_len();
        let out_plane = self.spatial.out_height * self.spatial.out_width;
        let weight = Matrix::row_major(weight, k);
        let x_tiles = (x, self.image_len());
        self.bands_in_parallel(
            x_tiles,
            (self.out_image_len(), norms),
            |buffers, y_tile, x_tile, band, n| {
                let cols = self.patches(x_tile, band, (&mut buffers.patches, &mut buffers.phases));
                let y_tile = (&mut *y_tile, self.channels_out, out_plane);
                self.write_tile(y_tile, band.0, &mut buffers.staging, |dst, stride| {
                    gemm(
                        [self.channels_out, n, k],
                        (dst, stride),
                        weight,
                        cols,
                        false,
                    )
                });
            },
        )
    }

    /// `dW = Σ_b dY[b] * cols(x[b])ᵀ`, summed per thread and then across threads.
    pub(super) fn weight_grad(&self, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        if let Some(direct) = self.same_conv3x3().filter(SameConv3x3::runs_weight_grad) {
            return direct.weight_grad(x, output_grad);
        }
        let k = self.patch_len();
        let images = self.images_per_tile();
        let tiles_per_task = self
            .batch
            .div_ceil(images * rayon::current_num_threads())
            .max(1);
        let task_images = tiles_per_task * images;
        let partial_sums: Vec<Vec<f32>> = x
            .par_chunks(self.image_len() * task_images)
            .zip(output_grad.par_chunks(self.out_image_len() * task_images))
            .map(|(x_task, grad_task)| {
                let mut dw = vec![0.0; self.channels_out * k];
                let mut buffers = Buffers::default();
                let tiles = x_task
                    .chunks(self.image_len() * images)
                    .zip(grad_task.chunks(self.out_image_len() * images));
                for (x_tile, grad_tile) in tiles {
                    let count = x_tile.len() / self.image_len();
                    for band in self.row_bands() {
                        gemm(
                            [self.channels_out, k, self.columns(count, band)],
                            (&mut dw, k),
                            self.output_grad_tile(grad_tile, band, &mut buffers.staging),
                            self.patches(x_tile, band, (&mut buffers.patches, &mut buffers.phases))
                                .transposed(),
                            true,
                        );
                    }
                }
                dw
            })
            .collect();
        partial_sums
            .into_iter()
            .reduce(summed)
            .unwrap_or_else(|| vec![0.0; self.channels_out * k])
    }

    /// `dx[b] = col2im(Wᵀ * dY[b])`, a tile of images or a band of rows per gemm, tiles in
    /// parallel; a pointwise convolution writes `Wᵀ * dY[b]` straight into `dx[b]`.
    pub(super) fn input_grad(&self, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
        if let Some(direct) = self.same_conv3x3().filter(SameConv3x3::runs_convolve) {
            return direct.input_grad(weight, output_grad);
        }
        let k = self.patch_len();
        let weight_t = Matrix::row_major(weight, k).transposed();
        let grad_tiles = (output_grad, self.out_image_len());
        self.bands_in_parallel(
            grad_tiles,
            (self.image_len(), ConvNorms::default()),
            |buffers, dx_tile, grad_tile, band, n| {
                let grad = self.output_grad_tile(grad_tile, band, &mut buffers.staging);
                let dims = [k, n, self.channels_out];
                if self.is_pointwise() {
                    let plane = self.spatial.height * self.spatial.width;
                    let dx_tile = (&mut *dx_tile, self.channels_in, plane);
                    return self.write_tile(
                        dx_tile,
                        band.0,
                        &mut buffers.patches,
                        |dst, stride| gemm(dims, (dst, stride), weight_t, grad, false),
                    );
                }
                let cols = scratch(&mut buffers.patches, k * n);
                gemm(dims, (cols, n), weight_t, grad, false);
                let band_columns = self.columns(1, band);
                for (index, image) in dx_tile.chunks_exact_mut(self.image_len()).enumerate() {
                    let image = (image, &mut buffers.phases);
                    self.col2im_add((&mut *cols, n), index * band_columns, band, image);
                }
            },
        )
    }
}

/// One tap's patch row over a band, as `Geometry::shifted_span` finds it: rows `rows` of the band
/// (counted from its first) hold the image plane's values from `plane_start` on, except the
/// `column_shift` columns at one edge of each row, whose input column lies outside the image;
/// the other rows read the padding.
struct Span {
    rows: (usize, usize),
    plane_start: isize,
    plane_len: usize,
    width: usize,
    column_shift: isize,
}

impl Span {
    /// The positions of the patch row inside `rows`, and the part of them, as a range of the
    /// plane, that lies inside the plane; the values before and after it fall on zeroed columns.
    fn ranges(&self) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        let positions = self.rows.0 * self.width..self.rows.1 * self.width;
        let len = positions.len() as isize;
        let first = (-self.plane_start).clamp(0, len);
        let last = (self.plane_len as isize - self.plane_start).clamp(first, len);
        if first == last {
            return (positions, 0..0);
        }
        // first < len, so first >= -plane_start and the start lies in the plane.
        let start = (self.plane_start + first) as usize;
        (positions, start..start + (last - first) as usize)
    }

    /// How many values at the start of the part inside the plane it is from the start of the
    /// span.
    fn lead(&self) -> usize {
        (-self.plane_start).max(0) as usize
    }

    /// Zeros the columns of `rows` (one row after the other) whose input column lies outside the
    /// image.
    fn zero_outside_columns(&self, rows: &mut [f32]) {
        let outside = (self.column_shift.unsigned_abs()).min(self.width);
        for row in rows.chunks_exact_mut(self.width) {
            if self.column_shift < 0 {
                row[..outside].fill(0.0);
            } else {
                row[self.width - outside..].fill(0.0);
            }
        }
    }

    /// im2col for this tap: `patch_row` from `plane`.
    fn copy(&self, plane: &[f32], patch_row: &mut [f32]) {
        let (positions, inside) = self.ranges();
        patch_row[..positions.start].fill(0.0);
        patch_row[positions.end..].fill(0.0);
        let span = &mut patch_row[positions];
        let lead = self.lead().min(span.len());
        span[..lead].fill(0.0);
        span[lead..lead + inside.len()].copy_from_slice(&plane[inside.clone()]);
        span[lead + inside.len()..].fill(0.0);
        self.zero_outside_columns(span);
    }

    /// col2im for this tap: adds `patch_row` onto `plane`, first zeroing the entries of taps
    /// that fall outside the image.
    fn add(&self, patch_row: &mut [f32], plane: &mut [f32]) {
        let (positions, inside) = self.ranges();
        let span = &mut patch_row[positions];
        self.zero_outside_columns(span);
        let lead = self.lead().min(span.len());
        for (pixel, value) in plane[inside].iter_mut().zip(&span[lead..]) {
            *pixel += *value;
        }
    }
}

/// Scratch space a task reuses from one tile to the next: the patch matrix, output tiles
/// gathered from or scattered to several images, and an image's phase planes.
#[derive(Default)]
struct Buffers {
    patches: Vec<f32>,
    staging: Vec<f32>,
    phases: Vec<f32>,
    /// The input tile normalised, where batch norm comes before the convolution.
    normalized: Vec<f32>,
}

/// The first `len` values of `buffer`, grown to hold them.
fn scratch(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    &mut buffer[..len]
}

fn dims4(tensor: &FlexTensor) -> Option<[usize; 4]> {
    let shape = tensor.layout().shape();
    (shape.num_dims() == 4).then(|| [shape[0], shape[1], shape[2], shape[3]])
}

/// A borrowed matrix operand of `gemm`: its elements and the distance between rows and between
/// columns.
#[derive(Clone, Copy)]
struct Matrix<'a> {
    values: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// Rows of `row_len` elements one after the other.
    fn row_major(values: &'a [f32], row_len: usize) -> Self {
        Self {
            values,
            row_stride: row_len,
            col_stride: 1,
        }
    }

    /// The same elements read as the transpose.
    fn transposed(self) -> Self {
        Self {
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element of a `rows` x `cols` matrix at these strides lies in `values`.
    fn holds(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.values.len()
    }
}

/// `dst[m, n] = lhs[m, k] * rhs[k, n]`, or `+=` with `accumulate`. `dst` is row-major with the
/// given row stride. Single-threaded: the callers run one image per rayon task.
fn gemm(
    [m, n, k]: [usize; 3],
    (dst, dst_row_stride): (&mut [f32], usize),
    lhs: Matrix,
    rhs: Matrix,
    accumulate: bool,
) {
    let dst_view = Matrix::row_major(dst, dst_row_stride);
    assert!(
        dst_view.holds(m, n) && lhs.holds(m, k) && rhs.holds(k, n),
        "gemm operands too short for [{m}, {n}, {k}]"
    );
    // Safety: the assertion above keeps every element the strides reach inside its slice, and
    // `dst` is borrowed mutably so it cannot alias `lhs` or `rhs`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            dst_row_stride as isize,
            accumulate,
            lhs.values.as_ptr(),
            lhs.col_stride as isize,
            lhs.row_stride as isize,
            rhs.values.as_ptr(),
            rhs.col_stride as isize,
            rhs.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}
