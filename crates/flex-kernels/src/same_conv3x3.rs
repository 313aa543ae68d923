//! 3x3 convolutions at stride 1 with one pixel of zero padding on every side (all of ResNet's
//! 3x3 layers but a stage's first, and DenseNet's and GoogleNet's) as direct AVX2 + FMA kernels,
//! on x86-64 processors that have both, with AVX-512 forms where the active level has it.
//!
//! Why: im2col writes nine shifted copies of the input for the gemm to read, and col2im adds
//! nine back. At ResNet-20's first stage (batch 128, 2 threads) that made the input gradient
//! take 16.6 ms against PyTorch's 10.8 (`docs/performance.md`). Here each image is copied once
//! into zero-padded planes whose rows lie `width + 1` apart: the one zero after a row's last
//! pixel is the padding of both that row's right edge and the next row's left edge. With
//! `s = width + 1`, output position `q = y * s + x` then reads kernel tap `(i, j)` at
//! `q + i * s + j`, a fixed offset, so the kernels read the input in place.
//!
//! - Forward: 4 output channels by 16 positions (two vectors) per register block, summed over
//!   input channels and taps. Where rows fill whole vectors they are stored straight into the
//!   output; otherwise the block also computes each row's unused position `x = width`, and the
//!   rows are copied out without it.
//! - Input gradient: the same kernel on the padded output gradient, with the weights flipped
//!   and input and output channels swapped.
//! - Weight gradient: for each output channel, input channel and tap, the dot product of the
//!   padded output gradient with the input plane shifted by the tap's offset, over a group of
//!   small images stacked in one plane.
//!
//! At AVX-512, `masked` reads the images in place where 16-lane vectors tile the planes.
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{as_slots, copy_short, par_write, summed, written};
use crate::batch_norm::ConvNorms;

/// `$kernel::<B>(args)` with `B` the block of output channels `$block` as a constant: 1, 2, 3
/// or `CHANNEL_BLOCK`, the register blocks every kernel here is built for.
macro_rules! with_block {
    ($block:expr, $($kernel:ident)::+ ($($arg:expr),*)) => {
        match $block {
            1 => $($kernel)::+::<1>($($arg),*),
            2 => $($kernel)::+::<2>($($arg),*),
            3 => $($kernel)::+::<3>($($arg),*),
            _ => $($kernel)::+::<CHANNEL_BLOCK>($($arg),*),
        }
    };
}

mod masked;

/// Lanes of an AVX2 f32 vector: positions per vector of the forward kernel and per step of the
/// weight gradient's dot products.
const LANES: usize = 8;
/// Output channels per register block, of the forward kernel and of the weight gradient's dot
/// products. `Kernel::run` and `DotProducts::run` dispatch blocks of 1 to 4.
const CHANNEL_BLOCK: usize = 4;
const _: () = assert!(
    CHANNEL_BLOCK == 4,
    "the kernels are dispatched for blocks of 1 to 4"
);
/// Vectors of output positions per register block of the forward kernel.
const VECTORS: usize = 2;
const POSITION_BLOCK: usize = VECTORS * LANES;
/// Zeros after each padded plane, so that a weight gradient's last vector, which may reach past
/// the output's last position, stays inside its plane.
const PLANE_TAIL: usize = LANES;
const TAPS: usize = 9;
/// Positions per dot product of the weight gradient, at least, where one image has fewer: small
/// images go several to a dot product, so that its final sum across lanes is a small share of
/// its cost.
const GROUP_POSITIONS: usize = 1024;

/// One 3x3, stride-1, padding-1 convolution over `[batch, channels_in, height, width]` images.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SameConv3x3 {
    pub batch: usize,
    pub channels_in: usize,
    pub channels_out: usize,
    pub height: usize,
    pub width: usize,
}

impl SameConv3x3 {
    /// Whether the forward kernel (and the input gradient's) runs at the active level (AVX2 and
    /// FMA, see [`crate::isa`]) and beats im2col and gemm there: at AVX-512, rows narrower than
    /// one wide vector leave the padded-plane kernels at AVX2's width, where gemm's AVX-512
    /// kernels are faster, unless the masked kernel takes them (`docs/performance.md`).
    pub fn runs_convolve(&self) -> bool {
        self.runs_weight_grad() || self.masked()
    }

    /// Whether a weight gradient kernel runs at the active level and beats im2col and gemm
    /// there: at AVX-512, where rows fill at least one wide vector or the masked kernel runs.
    pub fn runs_weight_grad(&self) -> bool {
        let level = crate::isa::active();
        cfg!(target_arch = "x86_64")
            && level >= crate::isa::Isa::Avx2
            && (level < crate::isa::Isa::Avx512
                || self.width >= 2 * LANES
                || self.vectors_tile_planes())
    }

    /// Distance between two rows of a padded plane, and between two output rows.
    fn row_stride(&self) -> usize {
        self.width + 1
    }

    /// Values per padded plane of one image: a zero row above and below the image, a zero before
    /// each row, and `PLANE_TAIL` zeros.
    fn plane_len(&self) -> usize {
        self.group_plane_len(1)
    }

    /// Values per padded plane of a channel of `group` images stacked, with one zero row between
    /// two images, which pads the bottom of one and the top of the next.
    fn group_plane_len(&self, group: usize) -> usize {
        (group * (self.height + 1) + 1) * self.row_stride() + PLANE_TAIL
    }

    /// Output positions per channel that the forward kernel computes: `height` rows of
    /// `row_stride`, rounded up to whole register blocks.
    fn out_plane_len(&self) -> usize {
        (self.height * self.row_stride()).next_multiple_of(POSITION_BLOCK)
    }

    /// The offset of kernel tap `t` (row-major over the 3x3 window) from an output position.
    fn tap_offsets(&self) -> [usize; TAPS] {
        std::array::from_fn(|t| (t / 3) * self.row_stride() + t % 3)
    }

    /// Length of a buffer of `channels` padded planes of `group` images each, with room for a
    /// last register block or dot product that reads past the last plane.
    fn padded_len(&self, channels: usize, group: usize) -> usize {
        channels * self.group_plane_len(group) + POSITION_BLOCK
    }

    /// Copies `image` (`[channels, height, width]`) into the padded planes `planes`, whose padding
    /// is zero and stays so: as image `index` of a group of `group` stacked in each channel's
    /// plane (`group_plane_len`). With `norms.input`, the copy is normalised by it.
    fn pad(
        &self,
        image: &[f32],
        planes: &mut [f32],
        (index, group): (usize, usize),
        norms: ConvNorms,
    ) {
        let (width, stride) = (self.width, self.row_stride());
        let first_pixel = (index * (self.height + 1) + 1) * stride + 1;
        let rows = image.chunks_exact(width);
        let dst_rows = planes
            .chunks_exact_mut(self.group_plane_len(group))
            .flat_map(|plane| plane[first_pixel..].chunks_mut(stride).take(self.height));
        for (row, (src, dst)) in rows.zip(dst_rows).enumerate() {
            match norms.input {
                Some(norm) => norm.normalize_row(row / self.height, src, &mut dst[..width]),
                None => copy_short(&mut dst[..width], src),
            }
        }
    }

    /// Copies the output planes `planes` (rows `row_stride` apart, `out_plane_len` per channel)
    /// into `image` (`[channels, height, width]`), dropping the unused position of each row.
    fn unpad(&self, planes: &[f32], image: &mut [MaybeUninit<f32>]) {
        let (width, stride) = (self.width, self.row_stride());
        let src_rows = planes
            .chunks_exact(self.out_plane_len())
            .flat_map(|plane| plane.chunks(stride).take(self.height));
        for (src, dst) in src_rows.zip(image.chunks_exact_mut(width)) {
            dst.write_copy_of_slice(&src[..width]);
        }
    }

    /// `weight(o, c, t)` for `outputs` x `inputs` channels, laid out for `convolve`: blocks of
    /// `CHANNEL_BLOCK` output channels (the last may be narrower), each `[inputs][tap][block]`.
    fn pack(
        outputs: usize,
        inputs: usize,
        weight: impl Fn(usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        let mut packed = Vec::with_capacity(outputs * inputs * TAPS);
        for first in (0..outputs).step_by(CHANNEL_BLOCK) {
            let block = first..(first + CHANNEL_BLOCK).min(outputs);
            for c in 0..inputs {
                for t in 0..TAPS {
                    packed.extend(block.clone().map(|o| weight(o, c, t)));
                }
            }
        }
        packed
    }

    /// Whether whole vectors tile each output row (a width that is a multiple of `LANES`: every
    /// CIFAR model's 3x3 layer). The kernels then write the output image in place, and skip
    /// the unused position of each row.
    fn rows_fill_vectors(&self) -> bool {
        self.width.is_multiple_of(LANES)
    }

    /// Values per channel of `convolve`'s output: the output image's plane where rows fill
    /// vectors, else `out_plane_len` positions with one unused per row.
    fn out_channel_len(&self) -> usize {
        if self.rows_fill_vectors() {
            self.height * self.width
        } else {
            self.out_plane_len()
        }
    }

    /// `out[o]` (`out_channel_len` values each) = the convolution of the `inputs` padded planes
    /// `planes` with the weights `packed` by `pack` for `outputs` x `inputs` channels.
    fn convolve(
        &self,
        planes: &[f32],
        inputs: usize,
        packed: &[f32],
        out: &mut [MaybeUninit<f32>],
    ) {
        let channel_len = self.out_channel_len();
        let outputs = out.len() / channel_len;
        let vectors = channel_len / LANES;
        let taps = self.tap_offsets();
        // Where rows fill vectors, vector k of output row y starts at plane position
        // k * LANES + y: one unused position per row before it.
        let row_vectors = if self.rows_fill_vectors() {
            self.width / LANES
        } else {
            usize::MAX
        };
        let start = |k: usize| k * LANES + k / row_vectors;
        // At AVX-512, two blocks of output channels at once where they are both full: the
        // vector pairs that lie side by side in a row go two wide vectors at a time.
        let eight = crate::isa::active() >= crate::isa::Isa::Avx512;
        // The same for every block: which vector pairs lie side by side in a row.
        let (wide, narrow): (Vec<usize>, Vec<usize>) = (0..vectors)
            .step_by(VECTORS)
            .partition(|&k| k + 1 < vectors && start(k + 1) == start(k) + LANES);
        let mut first = 0;
        while first < outputs {
            let kernel = |weights, starts| Kernel {
                planes,
                plane_len: self.plane_len(),
                inputs,
                taps: &taps,
                weights,
                starts,
                vectors: VECTORS,
            };
            if eight && outputs - first >= 2 * CHANNEL_BLOCK {
                let block_len = CHANNEL_BLOCK * inputs * TAPS;
                let weights = &packed[first * inputs * TAPS..][..2 * block_len];
                let out = &mut out[first * channel_len..][..2 * CHANNEL_BLOCK * channel_len];
                for pair in wide.chunks(2) {
                    let wide = WideKernel {
                        kernel: kernel(weights, [start(pair[0]), 0]),
                        starts: [start(pair[0]), pair.get(1).map_or(0, |&k| start(k))],
                        outs: [pair[0] * LANES, pair.get(1).map_or(0, |&k| k * LANES)],
                        count: pair.len(),
                    };
                    wide.run(out, channel_len);
                }
                for &k in &narrow {
                    for (b, weights) in weights.chunks_exact(block_len).enumerate() {
                        let mut kernel = kernel(weights, std::array::from_fn(|v| start(k + v)));
                        kernel.vectors = VECTORS.min(vectors - k);
                        let out = &mut out[b * CHANNEL_BLOCK * channel_len + k * LANES..];
                        kernel.run(CHANNEL_BLOCK, out, channel_len);
                    }
                }
                first += 2 * CHANNEL_BLOCK;
                continue;
            }
            let block = CHANNEL_BLOCK.min(outputs - first);
            let weights = &packed[first * inputs * TAPS..][..block * inputs * TAPS];
            let out = &mut out[first * channel_len..][..block * channel_len];
            for k in (0..vectors).step_by(VECTORS) {
                let mut kernel = kernel(weights, std::array::from_fn(|v| start(k + v)));
                kernel.vectors = VECTORS.min(vectors - k);
                kernel.run(block, &mut out[k * LANES..], channel_len);
            }
            first += CHANNEL_BLOCK;
        }
    }

    /// Runs `convolve` for one image whose padded planes are `planes`, writing `image`
    /// (`[outputs, height, width]`): in place where rows fill vectors, else through `tile`.
    fn convolve_image(
        &self,
        (planes, inputs): (&[f32], usize),
        packed: &[f32],
        tile: &mut Vec<f32>,
        image: &mut [MaybeUninit<f32>],
    ) {
        if self.rows_fill_vectors() {
            return self.convolve(planes, inputs, packed, image);
        }
        let outputs = image.len() / (self.height * self.width);
        tile.resize(outputs * self.out_plane_len(), 0.0);
        self.convolve(planes, inputs, packed, as_slots(tile));
        self.unpad(tile, image);
    }

    /// `y = conv(x, weight)` for `x` `[batch, channels_in, height, width]` and `weight`
    /// `[channels_out, channels_in, 3, 3]`, each image normalised by `norms.input` as it is
    /// taken and its output by `norms.output` just after it is written.
    pub fn forward(&self, x: &[f32], weight: &[f32], norms: ConvNorms) -> Vec<f32> {
        let (inputs, outputs) = (self.channels_in, self.channels_out);
        let packed = Self::pack(outputs, inputs, |o, c, t| {
            weight[(o * inputs + c) * TAPS + t]
        });
        self.convolve_batch(x, (inputs, &packed, outputs), norms)
    }

    /// `dx` for the output gradient `output_grad`: the convolution of the padded output gradient
    /// with the weights turned by 180 degrees, input and output channels swapped.
    pub fn input_grad(&self, weight: &[f32], output_grad: &[f32]) -> Vec<f32> {
        let (inputs, outputs) = (self.channels_in, self.channels_out);
        let packed = Self::pack(inputs, outputs, |c, o, t| {
            weight[(o * inputs + c) * TAPS + TAPS - 1 - t]
        });
        self.convolve_batch(
            output_grad,
            (outputs, &packed, inputs),
            ConvNorms::default(),
        )
    }

    /// The convolution of a batch of `[inputs, height, width]` images with the weights `packed`
    /// by `pack` for `outputs` x `inputs` channels, images in parallel, each image normalised by
    /// `norms.input` as it is taken and its output finished by `norms.output` while in cache.
    fn convolve_batch(
        &self,
        images: &[f32],
        (inputs, packed, outputs): (usize, &[f32], usize),
        norms: ConvNorms,
    ) -> Vec<f32> {
        let plane = self.height * self.width;
        let out_len = outputs * plane;
        let finish = |out: &mut [MaybeUninit<f32>], index: usize| {
            if let Some(norm) = norms.output {
                // Safety: the convolution kernels write every value of their image's output.
                norm.apply(unsafe { written(out) }, plane, index * out_len);
            }
        };
        let images = images.par_chunks(inputs * plane).enumerate();
        if self.masked() {
            let masks = self.masks();
            return par_write(
                (self.batch * out_len, out_len),
                images,
                Vec::new,
                |normalized, out, (index, image)| {
                    let image = match norms.input {
                        Some(norm) => norm.normalized_copy(image, plane, normalized),
                        None => image,
                    };
                    self.convolve_masked((image, inputs), packed, &masks, out);
                    finish(out, index);
                },
            );
        }
        par_write(
            (self.batch * out_len, out_len),
            images,
            || (vec![0.0; self.padded_len(inputs, 1)], Vec::new()),
            |(planes, tile), out, (index, image)| {
                self.pad(image, planes, (0, 1), norms);
                self.convolve_image((planes, inputs), packed, tile, out);
                finish(out, index);
            },
        )
    }

    /// `dw[o, c, i, j] = Σ_b Σ_(y, x) dy[b, o, y, x] * x[b, c, y + i - 1, x + j - 1]`, images split
    /// between threads, each summing its own and the sums added at the end.
    pub fn weight_grad(&self, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        if self.vectors_tile_planes() {
            return self.weight_grad_masked(x, output_grad);
        }
        let (inputs, outputs) = (self.channels_in, self.channels_out);
        let image_len = inputs * self.height * self.width;
        let out_image_len = outputs * self.height * self.width;
        let images_per_task = self.batch.div_ceil(rayon::current_num_threads()).max(1);
        let group = (GROUP_POSITIONS / self.plane_len()).clamp(1, images_per_task);
        let weight_len = outputs * inputs * TAPS;
        x.par_chunks(image_len * images_per_task)
            .zip(output_grad.par_chunks(out_image_len * images_per_task))
            .map(|(x, grad)| {
                let mut dw = vec![0.0; weight_len];
                let mut x_planes = vec![0.0; self.padded_len(inputs, group)];
                let mut grad_planes = vec![0.0; self.padded_len(outputs, group)];
                let groups = x
                    .chunks(image_len * group)
                    .zip(grad.chunks(out_image_len * group));
                for (x, grad) in groups {
                    let count = x.len() / image_len;
                    let images = x
                        .chunks_exact(image_len)
                        .zip(grad.chunks_exact(out_image_len));
                    for (index, (x, grad)) in images.enumerate() {
                        self.pad(x, &mut x_planes, (index, count), ConvNorms::default());
                        self.pad(grad, &mut grad_planes, (index, count), ConvNorms::default());
                    }
                    self.add_weight_grad(&x_planes, &grad_planes, count, &mut dw);
                }
                dw
            })
            .reduce(|| vec![0.0; weight_len], summed)
    }

    /// Adds the weight gradient of a group of `group` images to `dw`, from their padded input and
    /// output gradient (`pad`'s layout for the group).
    fn add_weight_grad(&self, x_planes: &[f32], grad_planes: &[f32], group: usize, dw: &mut [f32]) {
        let (inputs, outputs) = (self.channels_in, self.channels_out);
        let stride = self.row_stride();
        // Output position q sits at index q + stride + 1 of its padded plane, and the unused
        // position of each row reads the next row's zero. One dot product runs over a
        // channel's plane of the whole group: the zero rows between the images add nothing.
        let len = ((group * (self.height + 1) - 1) * stride).next_multiple_of(LANES);
        let channel_stride = self.group_plane_len(group);
        for first in (0..outputs).step_by(CHANNEL_BLOCK) {
            let block = CHANNEL_BLOCK.min(outputs - first);
            let grads = &grad_planes[first * channel_stride + stride + 1..];
            for c in 0..inputs {
                for i in 0..3 {
                    let x = &x_planes[c * channel_stride + i * stride..];
                    let product = DotProducts {
                        grads,
                        grad_stride: channel_stride,
                        x,
                        len,
                    };
                    add_row_sums(dw, &product.run(block), (first, block), (inputs, c, i));
                }
            }
        }
    }
}

/// Adds the dot products of kernel row `row` (`sums[o][j]` for tap `(row, j)`) of output
/// channels `first..first + block` and input channel `c` of `inputs` onto `dw`.
#[inline]
fn add_row_sums(
    dw: &mut [f32],
    sums: &[[f32; 3]; CHANNEL_BLOCK],
    (first, block): (usize, usize),
    (inputs, c, row): (usize, usize, usize),
) {
    for (o, sums) in sums.iter().enumerate().take(block) {
        let at = ((first + o) * inputs + c) * TAPS + row * 3;
        for (w, s) in dw[at..at + 3].iter_mut().zip(sums) {
            *w += s;
        }
    }
}

/// One step of the weight gradient's dot products, in any vector width: `sums[o][j] +=
/// grad(o) * xs[j]`. Inlined into each instruction set's kernel, which passes its own load and
/// FMA.
#[inline(always)]
fn add_products<V: Copy, const BLOCK: usize>(
    sums: &mut [[V; 3]; BLOCK],
    xs: [V; 3],
    grad: impl Fn(usize) -> V,
    fmadd: impl Fn(V, V, V) -> V,
) {
    for (o, sums) in sums.iter_mut().enumerate() {
        let grad = grad(o);
        for (sum, x) in sums.iter_mut().zip(xs) {
            *sum = fmadd(grad, x, *sum);
        }
    }
}

/// The dot products' vector sums, each reduced to one value by `reduce`.
#[inline(always)]
fn reduced<V: Copy, const BLOCK: usize>(
    sums: &[[V; 3]; BLOCK],
    reduce: impl Fn(V) -> f32,
) -> [[f32; 3]; CHANNEL_BLOCK] {
    let mut totals = [[0.0; 3]; CHANNEL_BLOCK];
    for (total, sums) in totals.iter_mut().zip(sums) {
        for (total, sum) in total.iter_mut().zip(sums) {
            *total = reduce(*sum);
        }
    }
    totals
}

/// One register block of `SameConv3x3::convolve`: `vectors` (at most `VECTORS`) vectors of
/// output positions, which read the padded planes from `starts`, for a block of output channels.
struct Kernel<'a> {
    planes: &'a [f32],
    plane_len: usize,
    inputs: usize,
    taps: &'a [usize; TAPS],
    weights: &'a [f32],
    starts: [usize; VECTORS],
    vectors: usize,
}

impl Kernel<'_> {
    /// Writes the block's `block` output channels into `out`, one channel every `out_stride`,
    /// the vectors one after the other.
    fn run(&self, block: usize, out: &mut [MaybeUninit<f32>], out_stride: usize) {
        let last_start = self.starts[..self.vectors].iter().max();
        assert!(
            (1..=CHANNEL_BLOCK).contains(&block)
                && (1..=VECTORS).contains(&self.vectors)
                && self.planes.len()
                    >= (self.inputs - 1) * self.plane_len
                        + last_start.unwrap_or(&0)
                        + self.taps[TAPS - 1]
                        + LANES
                && self.weights.len() == block * self.inputs * TAPS
                && out.len() >= (block - 1) * out_stride + self.vectors * LANES,
            "kernel block out of bounds"
        );
        #[cfg(target_arch = "x86_64")]
        // Safety: `SameConv3x3::supported` checked AVX2 and FMA before any caller got here (and
        // the active level AVX-512 F for the wide kernel), and the assertion above holds every
        // read and write inside its slice: two vectors that lie side by side are one wide one.
        unsafe {
            let side_by_side = self.vectors == VECTORS && self.starts[1] == self.starts[0] + LANES;
            if side_by_side && crate::isa::active() >= crate::isa::Isa::Avx512 {
                return with_block!(block, avx512::convolve(self, out, out_stride));
            }
            match (block, self.vectors) {
                (1, 1) => avx2::convolve::<1, 1>(self, out, out_stride),
                (2, 1) => avx2::convolve::<2, 1>(self, out, out_stride),
                (3, 1) => avx2::convolve::<3, 1>(self, out, out_stride),
                (_, 1) => avx2::convolve::<CHANNEL_BLOCK, 1>(self, out, out_stride),
                (1, _) => avx2::convolve::<1, VECTORS>(self, out, out_stride),
                (2, _) => avx2::convolve::<2, VECTORS>(self, out, out_stride),
                (3, _) => avx2::convolve::<3, VECTORS>(self, out, out_stride),
                _ => avx2::convolve::<CHANNEL_BLOCK, VECTORS>(self, out, out_stride),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("`SameConv3x3::supported` is false off x86-64");
    }
}

/// Two blocks of output channels (`kernel.weights` holds both, one after the other) by `count`
/// (1 or 2) wide vectors: each the two side-by-side vectors of output positions from
/// `starts[i]` in the planes, written from `outs[i]` of each output channel.
struct WideKernel<'a> {
    kernel: Kernel<'a>,
    starts: [usize; 2],
    outs: [usize; 2],
    count: usize,
}

impl WideKernel<'_> {
    fn run(&self, out: &mut [MaybeUninit<f32>], out_stride: usize) {
        let kernel = &self.kernel;
        let (starts, outs) = (&self.starts[..self.count], &self.outs[..self.count]);
        let wide = 2 * LANES;
        assert!(
            (1..=2).contains(&self.count)
                && kernel.planes.len()
                    >= (kernel.inputs - 1) * kernel.plane_len
                        + starts.iter().max().unwrap_or(&0)
                        + kernel.taps[TAPS - 1]
                        + wide
                && kernel.weights.len() == 2 * CHANNEL_BLOCK * kernel.inputs * TAPS
                && out.len()
                    >= (2 * CHANNEL_BLOCK - 1) * out_stride
                        + outs.iter().max().unwrap_or(&0)
                        + wide
                && crate::isa::active() >= crate::isa::Isa::Avx512,
            "wide kernel block out of bounds"
        );
        #[cfg(target_arch = "x86_64")]
        // Safety: the assertion above checked the level and holds every read and write inside
        // its slice.
        unsafe {
            match self.count {
                1 => avx512::convolve_eight::<1>(self, out, out_stride),
                _ => avx512::convolve_eight::<2>(self, out, out_stride),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("`SameConv3x3::supported` is false off x86-64");
    }
}

/// The weight gradient's dot products for a block of output channels, one input channel and
/// one kernel row: `Σ_p grads[o * grad_stride + p] * x[p + j]` over `p < len`, for `j < 3`.
struct DotProducts<'a> {
    grads: &'a [f32],
    grad_stride: usize,
    x: &'a [f32],
    len: usize,
}

impl DotProducts<'_> {
    fn run(&self, block: usize) -> [[f32; 3]; CHANNEL_BLOCK] {
        assert!(
            (1..=CHANNEL_BLOCK).contains(&block)
                && self.len.is_multiple_of(LANES)
                && self.grads.len() >= (block - 1) * self.grad_stride + self.len
                && self.x.len() >= self.len + 2,
            "dot product out of bounds"
        );
        #[cfg(target_arch = "x86_64")]
        // Safety: as in `Kernel::run`.
        unsafe {
            if crate::isa::active() >= crate::isa::Isa::Avx512 {
                return with_block!(block, avx512::dot_products(self));
            }
            with_block!(block, avx2::dot_products(self))
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("`SameConv3x3::supported` is false off x86-64");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::{CHANNEL_BLOCK, DotProducts, Kernel, LANES, TAPS, add_products, reduced};

    /// Safety: the processor has AVX2 and FMA, and `Kernel::run`'s bounds hold for `VECS`
    /// vectors.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn convolve<const BLOCK: usize, const VECS: usize>(
        kernel: &Kernel,
        out: &mut [MaybeUninit<f32>],
        out_stride: usize,
    ) {
        let mut sums = [[_mm256_setzero_ps(); VECS]; BLOCK];
        let planes = kernel.planes.as_ptr();
        let weights = kernel.weights.as_ptr();
        for c in 0..kernel.inputs {
            unsafe {
                let plane = planes.add(c * kernel.plane_len);
                let weights = weights.add(c * TAPS * BLOCK);
                for (t, &offset) in kernel.taps.iter().enumerate() {
                    let xs: [__m256; VECS] = std::array::from_fn(|v| {
                        _mm256_loadu_ps(plane.add(kernel.starts[v] + offset))
                    });
                    for (o, sums) in sums.iter_mut().enumerate() {
                        let w = _mm256_broadcast_ss(&*weights.add(t * BLOCK + o));
                        for (sum, x) in sums.iter_mut().zip(xs) {
                            *sum = _mm256_fmadd_ps(w, x, *sum);
                        }
                    }
                }
            }
        }
        let out = out.as_mut_ptr().cast::<f32>();
        for (o, sums) in sums.iter().enumerate() {
            for (v, sum) in sums.iter().enumerate() {
                unsafe { _mm256_storeu_ps(out.add(o * out_stride + v * LANES), *sum) };
            }
        }
    }

    /// Safety: the processor has AVX2 and FMA, and `DotProducts::run`'s bounds hold.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_products<const BLOCK: usize>(
        product: &DotProducts,
    ) -> [[f32; 3]; CHANNEL_BLOCK] {
        let mut sums = [[_mm256_setzero_ps(); 3]; BLOCK];
        let (x, grads) = (product.x.as_ptr(), product.grads.as_ptr());
        for p in (0..product.len).step_by(LANES) {
            let xs = std::array::from_fn(|j| unsafe { _mm256_loadu_ps(x.add(p + j)) });
            let grad = |o| unsafe { _mm256_loadu_ps(grads.add(o * product.grad_stride + p)) };
            add_products(&mut sums, xs, grad, |a, b, c| _mm256_fmadd_ps(a, b, c));
        }
        reduced(&sums, |sum| horizontal_sum(sum))
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn horizontal_sum(v: __m256) -> f32 {
        let half = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let quarter = _mm_add_ps(half, _mm_movehl_ps(half, half));
        _mm_cvtss_f32(_mm_add_ss(quarter, _mm_shuffle_ps::<1>(quarter, quarter)))
    }
}

/// The AVX-512 forms of the two kernels: 16 positions to a vector, so a register block of the
/// forward kernel is one wide vector where two AVX2 vectors lie side by side in a row.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use super::avx2::horizontal_sum;
    use super::{
        CHANNEL_BLOCK, DotProducts, Kernel, LANES, TAPS, WideKernel, add_products, reduced,
    };

    /// Safety: the processor has AVX-512 F and `WideKernel::run`'s bounds hold for `WIDE`
    /// vectors. Each input load feeds 8 FMAs, where `convolve`'s feeds 4.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn convolve_eight<const WIDE: usize>(
        wide: &WideKernel,
        out: &mut [MaybeUninit<f32>],
        out_stride: usize,
    ) {
        const EIGHT: usize = 2 * CHANNEL_BLOCK;
        let kernel = &wide.kernel;
        let mut sums = [[_mm512_setzero_ps(); WIDE]; EIGHT];
        let planes = kernel.planes.as_ptr();
        let block_len = CHANNEL_BLOCK * kernel.inputs * TAPS;
        let weights = kernel.weights.as_ptr();
        for c in 0..kernel.inputs {
            unsafe {
                let plane = planes.add(c * kernel.plane_len);
                let blocks = [
                    weights.add(c * TAPS * CHANNEL_BLOCK),
                    weights.add(block_len + c * TAPS * CHANNEL_BLOCK),
                ];
                for (t, &offset) in kernel.taps.iter().enumerate() {
                    let xs: [__m512; WIDE] = std::array::from_fn(|v| {
                        _mm512_loadu_ps(plane.add(wide.starts[v] + offset))
                    });
                    for (o, sums) in sums.iter_mut().enumerate() {
                        let block = blocks[o / CHANNEL_BLOCK];
                        let w = _mm512_set1_ps(*block.add(t * CHANNEL_BLOCK + o % CHANNEL_BLOCK));
                        for (sum, x) in sums.iter_mut().zip(xs) {
                            *sum = _mm512_fmadd_ps(w, x, *sum);
                        }
                    }
                }
            }
        }
        let out = out.as_mut_ptr().cast::<f32>();
        for (o, sums) in sums.iter().enumerate() {
            for (v, sum) in sums.iter().enumerate() {
                unsafe { _mm512_storeu_ps(out.add(o * out_stride + wide.outs[v]), *sum) };
            }
        }
    }

    /// Safety: the processor has AVX-512 F, `Kernel::run`'s bounds hold for two vectors, and
    /// the second starts `LANES` after the first.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn convolve<const BLOCK: usize>(
        kernel: &Kernel,
        out: &mut [MaybeUninit<f32>],
        out_stride: usize,
    ) {
        let mut sums = [_mm512_setzero_ps(); BLOCK];
        let planes = kernel.planes.as_ptr();
        let weights = kernel.weights.as_ptr();
        let start = kernel.starts[0];
        for c in 0..kernel.inputs {
            unsafe {
                let plane = planes.add(c * kernel.plane_len + start);
                let weights = weights.add(c * TAPS * BLOCK);
                for (t, &offset) in kernel.taps.iter().enumerate() {
                    let x = _mm512_loadu_ps(plane.add(offset));
                    for (o, sum) in sums.iter_mut().enumerate() {
                        let w = _mm512_set1_ps(*weights.add(t * BLOCK + o));
                        *sum = _mm512_fmadd_ps(w, x, *sum);
                    }
                }
            }
        }
        let out = out.as_mut_ptr().cast::<f32>();
        for (o, sum) in sums.iter().enumerate() {
            unsafe { _mm512_storeu_ps(out.add(o * out_stride), *sum) };
        }
    }

    /// Safety: the processor has AVX-512 F (with AVX2 and FMA), and `DotProducts::run`'s bounds
    /// hold. Steps of 16 positions, then one of 8 where `len` is an odd number of 8s.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn dot_products<const BLOCK: usize>(
        product: &DotProducts,
    ) -> [[f32; 3]; CHANNEL_BLOCK] {
        let wide_len = product.len - product.len % (2 * LANES);
        let mut sums = [[_mm512_setzero_ps(); 3]; BLOCK];
        let (x, grads) = (product.x.as_ptr(), product.grads.as_ptr());
        for p in (0..wide_len).step_by(2 * LANES) {
            let xs = std::array::from_fn(|j| unsafe { _mm512_loadu_ps(x.add(p + j)) });
            let grad = |o| unsafe { _mm512_loadu_ps(grads.add(o * product.grad_stride + p)) };
            add_products(&mut sums, xs, grad, |a, b, c| _mm512_fmadd_ps(a, b, c));
        }
        let mut totals = reduced(&sums, |sum| _mm512_reduce_add_ps(sum));
        if wide_len < product.len {
            for (o, total) in totals.iter_mut().enumerate().take(BLOCK) {
                for (j, total) in total.iter_mut().enumerate() {
                    unsafe {
                        let grad = _mm256_loadu_ps(grads.add(o * product.grad_stride + wide_len));
                        let x = _mm256_loadu_ps(x.add(wide_len + j));
                        *total += horizontal_sum(_mm256_mul_ps(grad, x));
                    }
                }
            }
        }
        totals
    }
}
