//! Max pooling on the flex backend, forward and backward, without an index tensor.
//!
//! Why: perf put half of GoogleNet's training step on this machine in flex's max pool. Its
//! forward pass scans each window in turn, a chain of dependent compares per output, and records
//! every output's argmax in an i64 tensor for the backward scatter: 71 ms for a 3x3 stride-1
//! pool at 128x16x32x32, against 4 ms for the scatter. Here the window is split into its rows and
//! its columns (`Window::forward_plane`), each a vectorised run of selects over whole rows, and
//! the backward pass finds the argmax again in the saved input the same way. At GoogleNet's
//! 128x192x32x32 (the `layer_speed` example), the forward pass takes 50 ms and forward +
//! backward 197 ms, against 144 and 381 for this file's earlier whole-window scan and PyTorch's
//! 649 and 846.
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::MaxPoolOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, IntDType};
use rayon::prelude::*;

use super::{
    Window2d, autodiff_op, f32s, flex_tensor, inner_of, par_write, run_kernel, runs_on_flex, zeroed,
};

/// `max_pool2d` as burn's `module::max_pool2d` computes it, through the kernels below where the
/// input lives on the flex backend. Asymmetric padding and `ceil_mode` keep burn's path.
pub fn max_pool2d(x: Tensor<4>, options: MaxPoolOptions<2>) -> Tensor<4> {
    if !runs_on_flex(&x.device()) || options.ceil_mode || options.is_asymmetric() {
        return burn::tensor::module::max_pool2d(x, options);
    }
    Tensor::from_dispatch(<Dispatch as WindowMaxPoolBackend>::window_max_pool2d(
        x.into_dispatch(),
        options,
    ))
}

/// Max pooling with symmetric padding and floor mode as a burn backend extension. Backends
/// without their own kernels keep burn's (the default bodies); `Autodiff` records the forward
/// pass with a backward pass that calls the gradient kernel of the backend it wraps.
#[backend_extension(Flex, Autodiff)]
pub trait WindowMaxPoolBackend: Backend {
    fn window_max_pool2d(x: FloatTensor<Self>, options: MaxPoolOptions<2>) -> FloatTensor<Self> {
        burn_max_pool2d::<Self>(x, options)
    }

    fn window_max_pool2d_backward(
        x: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: MaxPoolOptions<2>,
    ) -> FloatTensor<Self> {
        burn_max_pool2d_backward::<Self>(x, output_grad, options)
    }
}

/// burn's own forward kernel, for symmetric padding in floor mode.
fn burn_max_pool2d<B: Backend>(x: FloatTensor<B>, options: MaxPoolOptions<2>) -> FloatTensor<B> {
    let padding = options.padding.map(|(begin, _)| begin);
    B::max_pool2d(
        x,
        options.kernel_size,
        options.stride,
        padding,
        options.dilation,
        false,
    )
}

/// burn's own backward pass: the forward pass again for its indices, then the scatter.
fn burn_max_pool2d_backward<B: Backend>(
    x: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    options: MaxPoolOptions<2>,
) -> FloatTensor<B> {
    let padding = options.padding.map(|(begin, _)| begin);
    let MaxPoolOptions {
        kernel_size,
        stride,
        dilation,
        ..
    } = options;
    let indices = B::max_pool2d_with_indices(
        x.clone(),
        kernel_size,
        stride,
        padding,
        dilation,
        false,
        IntDType::I64,
    )
    .indices;
    B::max_pool2d_with_indices_backward(
        x,
        kernel_size,
        stride,
        padding,
        dilation,
        false,
        output_grad,
        indices,
    )
    .x_grad
}

impl WindowMaxPoolBackend for Flex {
    fn window_max_pool2d(x: FlexTensor, options: MaxPoolOptions<2>) -> FlexTensor {
        let Some(window) = Window::of(&x, &options) else {
            return burn_max_pool2d::<Self>(x, options);
        };
        let x = x.to_contiguous();
        flex_tensor(window.forward(f32s(&x)), window.output_shape())
    }

    fn window_max_pool2d_backward(
        x: FlexTensor,
        output_grad: FlexTensor,
        options: MaxPoolOptions<2>,
    ) -> FlexTensor {
        let Some(window) = Window::of(&x, &options) else {
            return burn_max_pool2d_backward::<Self>(x, output_grad, options);
        };
        run_kernel([x, output_grad], window.input_shape(), |x, dy| {
            window.input_grad(x, dy)
        })
    }
}

#[derive(Debug)]
struct WindowMaxPool2dBackward;

impl<B: WindowMaxPoolBackend> Backward<B, 1> for WindowMaxPool2dBackward {
    type State = (NodeId, MaxPoolOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::window_max_pool2d_backward(x, grad, options));
        }
    }
}

impl<B: WindowMaxPoolBackend, C: CheckpointStrategy> WindowMaxPoolBackend for Autodiff<B, C> {
    fn window_max_pool2d(x: FloatTensor<Self>, options: MaxPoolOptions<2>) -> FloatTensor<Self> {
        let [x_in] = inner_of([&x]);
        let kept = options.clone();
        autodiff_op::<B, C, _, 1, 1>(
            (WindowMaxPool2dBackward, [&x]),
            || B::window_max_pool2d(x_in, options),
            |[x], _| (x, kept),
        )
    }
}

/// One max pool's sizes, for f32 NCHW tensors with symmetric padding and floor mode.
#[derive(Clone, Copy, Debug)]
struct Window {
    spatial: Window2d,
    batch: usize,
    channels: usize,
}

impl Window {
    /// `None` where burn's kernels must run: another dtype, or no output at all.
    fn of(x: &FlexTensor, options: &MaxPoolOptions<2>) -> Option<Self> {
        let shape = x.layout().shape();
        if x.dtype() != DType::F32 || shape.num_dims() != 4 {
            return None;
        }
        let [batch, channels, height, width] = [shape[0], shape[1], shape[2], shape[3]];
        let spatial = Window2d::new(
            [height, width],
            options.kernel_size,
            options.stride,
            // burn's own kernel pads both sides by the padding before.
            options.padding.map(|(begin, _)| (begin, begin)),
            options.dilation,
        )?;
        let window = Self {
            spatial,
            batch,
            channels,
        };
        // Padding wider than every window's reach (PyTorch refuses more than half the kernel)
        // would leave the padded row no room for the input: burn's kernels take that.
        let room = window.spatial.padding[1] <= window.padded_width();
        (batch * channels * height * width > 0 && room).then_some(window)
    }

    fn input_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels,
            self.spatial.height,
            self.spatial.width,
        ]
    }

    fn output_shape(&self) -> [usize; 4] {
        [
            self.batch,
            self.channels,
            self.spatial.out_height,
            self.spatial.out_width,
        ]
    }

    /// Input columns one window spans, from its first tap to its last.
    fn column_span(&self) -> usize {
        (self.spatial.kernel[1] - 1) * self.spatial.dilation[1] + 1
    }

    /// Length of a padded row: every column position some window reads, from `-padding` on.
    fn padded_width(&self) -> usize {
        (self.spatial.out_width - 1) * self.spatial.stride[1] + self.column_span()
    }

    /// The input columns a padded row holds, from position `padding` on: floor mode may leave
    /// the last columns unread.
    fn held_columns(&self) -> usize {
        self.spatial
            .width
            .min(self.padded_width().saturating_sub(self.spatial.padding[1]))
    }

    /// The taps of the window's columns over a padded row, as a base and one offset per kernel
    /// column: output `o`'s tap `kx` is `base[offsets[kx] + o]`. At stride 1 the base is the
    /// padded row itself; otherwise the taps are gathered into `gathered` first, so that the
    /// selects over them are contiguous, vectorisable loads either way.
    fn column_taps<'a, T: Copy>(
        &self,
        padded: &'a [T],
        gathered: &'a mut Vec<T>,
        offsets: &mut Vec<usize>,
    ) -> &'a [T] {
        let (stride, dilation, out_width) = (
            self.spatial.stride[1],
            self.spatial.dilation[1],
            self.spatial.out_width,
        );
        offsets.clear();
        if stride == 1 {
            offsets.extend((0..self.spatial.kernel[1]).map(|kx| kx * dilation));
            return padded;
        }
        offsets.extend((0..self.spatial.kernel[1]).map(|kx| kx * out_width));
        gathered.clear();
        for kx in 0..self.spatial.kernel[1] {
            let taps = &padded[kx * dilation..];
            gathered.extend((0..out_width).map(|o| taps[o * stride]));
        }
        gathered
    }

    /// Where output row `oy`'s window rows start in a plane of `row_len` values per row: the
    /// offsets of the rows inside the input, in kernel order.
    fn row_taps(&self, oy: usize, row_len: usize, offsets: &mut Vec<usize>) {
        offsets.clear();
        let rows = (0..self.spatial.kernel[0])
            .filter_map(|ky| self.spatial.axis(0).input_position(oy, ky));
        offsets.extend(rows.map(|row| row * row_len));
    }

    /// One plane's outputs. The window is separable: the maxima over its rows first, with
    /// contiguous whole-row reads, then over its columns in a padded row. That is `kernel[0] +
    /// kernel[1]` selects per output where the whole window took `kernel[0] * kernel[1]`.
    fn forward_plane<S: Selects>(
        &self,
        selects: S,
        (plane, out): (&[f32], &mut [f32]),
        scratch: &mut PlaneScratch,
    ) {
        let (held, start) = (self.held_columns(), self.spatial.padding[1]);
        for (oy, out_row) in out.chunks_exact_mut(self.spatial.out_width).enumerate() {
            self.row_taps(oy, self.spatial.width, &mut scratch.offsets);
            let column_maxima = &mut scratch.padded[start..start + held];
            selects.max(column_maxima, (plane, &scratch.offsets));
            let values =
                self.column_taps(&scratch.padded, &mut scratch.gathered, &mut scratch.offsets);
            selects.max(out_row, (values, &scratch.offsets));
        }
    }

    /// One plane's input gradient: each window's argmax, then the scatter of the output
    /// gradient to it. The argmax is separable as the maximum is, in row-major order: each input
    /// row's first maximum over the window's columns, then the first row whose maximum is
    /// greater than the rows' before it.
    fn input_grad_plane<S: Selects>(
        &self,
        selects: S,
        (plane, grad, dx): (&[f32], &[f32], &mut [f32]),
        scratch: &mut PlaneScratch,
    ) {
        let (held, start, out_width) = (
            self.held_columns(),
            self.spatial.padding[1],
            self.spatial.out_width,
        );
        let row_outputs = scratch.row_maxima.chunks_exact_mut(out_width);
        let row_outputs = row_outputs.zip(scratch.row_argmax.chunks_exact_mut(out_width));
        for (row, slots) in row_outputs.enumerate() {
            let row_start = row * self.spatial.width;
            scratch.padded[start..start + held].copy_from_slice(&plane[row_start..][..held]);
            let values =
                self.column_taps(&scratch.padded, &mut scratch.gathered, &mut scratch.offsets);
            let taps = (values, scratch.tap_columns.as_slice(), &scratch.offsets[..]);
            selects.argmax(slots, taps, row_start as u32);
        }
        let phases = self
            .column_span()
            .div_ceil(self.spatial.stride[1])
            .min(out_width);
        for (oy, grad_row) in grad.chunks_exact(out_width).enumerate() {
            self.row_taps(oy, out_width, &mut scratch.offsets);
            let (maxima, argmax) = (&mut scratch.maxima, &mut scratch.argmax);
            let taps = (&scratch.row_maxima[..], &scratch.row_argmax[..]);
            selects.argmax((maxima, argmax), (taps.0, taps.1, &scratch.offsets), 0);
            // Neighbouring windows often share their argmax, and each `+=` would then wait
            // for the store before it. Outputs `phases` apart have disjoint windows, so
            // scattering in that many interleaved passes keeps the stores independent.
            for phase in 0..phases {
                let bests = argmax.iter().skip(phase).step_by(phases);
                for (&best, &g) in bests.zip(grad_row.iter().skip(phase).step_by(phases)) {
                    if best != NONE {
                        dx[best as usize] += g;
                    }
                }
            }
        }
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = Avx2::detect() {
            return self.forward_with(avx2, x);
        }
        self.forward_with(Portable, x)
    }

    fn forward_with<S: Selects>(&self, selects: S, x: &[f32]) -> Vec<f32> {
        let out_plane = self.spatial.out_height * self.spatial.out_width;
        par_write(
            (self.batch * self.channels * out_plane, out_plane),
            x.par_chunks(self.spatial.height * self.spatial.width),
            || PlaneScratch::new(self),
            |scratch, out, plane| self.forward_plane(selects, (plane, zeroed(out)), scratch),
        )
    }

    fn input_grad(&self, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        #[cfg(target_arch = "x86_64")]
        if let Some(avx2) = Avx2::detect() {
            return self.input_grad_with(avx2, x, output_grad);
        }
        self.input_grad_with(Portable, x, output_grad)
    }

    fn input_grad_with<S: Selects>(&self, selects: S, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        let plane_len = self.spatial.height * self.spatial.width;
        let out_plane = self.spatial.out_height * self.spatial.out_width;
        par_write(
            (self.batch * self.channels * plane_len, plane_len),
            x.par_chunks(plane_len)
                .zip(output_grad.par_chunks(out_plane)),
            || PlaneScratch::new(self),
            |scratch, dx, (plane, grad)| {
                self.input_grad_plane(selects, (plane, grad, zeroed(dx)), scratch)
            },
        )
    }
}

/// The plane index of no input: a window wholly in the padding.
const NONE: u32 = u32::MAX;

/// One thread's buffers for a plane's pass.
struct PlaneScratch {
    /// A row with minus infinity, the value of every position outside the input, around the
    /// input columns the window reads.
    padded: Vec<f32>,
    /// `column_taps` over a padded row of each position's input column, `NONE` in the
    /// padding: the same for every row.
    tap_columns: Vec<u32>,
    gathered: Vec<f32>,
    offsets: Vec<usize>,
    /// Each input row's maxima and argmax over the window's columns, per output column.
    row_maxima: Vec<f32>,
    row_argmax: Vec<u32>,
    maxima: Vec<f32>,
    argmax: Vec<u32>,
}

impl PlaneScratch {
    fn new(window: &Window) -> Self {
        let (start, held) = (window.spatial.padding[1], window.held_columns());
        let padded_width = window.padded_width();
        let columns: Vec<_> = (0..padded_width)
            .map(|position| match position.checked_sub(start) {
                Some(column) if column < held => column as u32,
                _ => NONE,
            })
            .collect();
        let mut offsets =
            Vec::with_capacity(window.spatial.kernel[0].max(window.spatial.kernel[1]));
        let tap_columns = window
            .column_taps(&columns, &mut Vec::new(), &mut offsets)
            .to_vec();
        let row_outputs = window.spatial.height * window.spatial.out_width;
        Self {
            padded: vec![f32::NEG_INFINITY; padded_width],
            tap_columns,
            gathered: Vec::with_capacity(window.spatial.kernel[1] * window.spatial.out_width),
            offsets,
            row_maxima: vec![0.0; row_outputs],
            row_argmax: vec![0; row_outputs],
            maxima: vec![0.0; window.spatial.out_width],
            argmax: vec![0; window.spatial.out_width],
        }
    }
}

/// The two selects the passes are made of, each over a set of taps: a base slice and one
/// offset per tap, output `i` reading `base[offset + i]` of every tap. Each output is reduced
/// in registers and stored once: with the taps applied one after another in place, LLVM turned
/// the selects into masked stores (tens of cycles each on Zen 1), intrinsics or not.
trait Selects: Copy + Send + Sync {
    /// `out[i]` becomes the greatest of its taps, or a NaN if one is (a NaN is the maximum of
    /// any window that holds one, as in PyTorch), or minus infinity without taps.
    fn max(self, out: &mut [f32], taps: (&[f32], &[usize]));

    /// `maxima[i]` and `argmax[i]` become the first greatest of output `i`'s taps in tap order
    /// (or the last NaN, where burn's and PyTorch's indices point) and its plane index,
    /// `indices[offset + i] + index_offset`; `NONE` where the taps are all in the padding.
    fn argmax(
        self,
        out: (&mut [f32], &mut [u32]),
        taps: (&[f32], &[u32], &[usize]),
        index_offset: u32,
    );
}

/// Whether `value` replaces `maximum` as a window's maximum: greater, or a NaN.
#[inline(always)]
fn replaces(value: f32, maximum: f32) -> bool {
    value > maximum || value.is_nan()
}

/// The selects as plain loops: for processors without AVX2, and for the lanes after `Avx2`'s
/// last whole vector.
#[derive(Clone, Copy)]
struct Portable;

impl Selects for Portable {
    fn max(self, out: &mut [f32], (base, offsets): (&[f32], &[usize])) {
        for (i, out) in out.iter_mut().enumerate() {
            *out = offsets.iter().map(|&offset| base[offset + i]).fold(
                f32::NEG_INFINITY,
                |maximum, value| {
                    if replaces(value, maximum) {
                        value
                    } else {
                        maximum
                    }
                },
            );
        }
    }

    fn argmax(
        self,
        (maxima, argmax): (&mut [f32], &mut [u32]),
        (values, indices, offsets): (&[f32], &[u32], &[usize]),
        index_offset: u32,
    ) {
        for (i, (maximum, best)) in maxima.iter_mut().zip(argmax.iter_mut()).enumerate() {
            (*maximum, *best) = (f32::NEG_INFINITY, NONE);
            for &offset in offsets {
                let (value, index) = (values[offset + i], indices[offset + i]);
                if replaces(value, *maximum) || *best == NONE {
                    *maximum = value;
                    *best = if index == NONE {
                        NONE
                    } else {
                        index + index_offset
                    };
                }
            }
        }
    }
}

/// The selects with AVX2 intrinsics; only `Avx2::detect` makes one, on a processor with AVX2.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    /// An `Avx2` where the active level (see [`crate::isa`]) is AVX2 or above.
    fn detect() -> Option<Self> {
        (crate::isa::active() >= crate::isa::Isa::Avx2).then_some(Self(()))
    }
}

#[cfg(target_arch = "x86_64")]
impl Selects for Avx2 {
    fn max(self, out: &mut [f32], taps: (&[f32], &[usize])) {
        // Safety: an `Avx2` exists only where the processor has AVX2.
        unsafe { avx2::max(out, taps) }
    }

    fn argmax(
        self,
        out: (&mut [f32], &mut [u32]),
        taps: (&[f32], &[u32], &[usize]),
        index_offset: u32,
    ) {
        // Safety: as above.
        unsafe { avx2::argmax(out, taps, index_offset) }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{NONE, Portable, Selects};

    const LANES: usize = 8;

    /// Lanes of `value` that replace `maximum`: greater, or a NaN.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn replaces(value: __m256, maximum: __m256) -> __m256 {
        let greater = _mm256_cmp_ps::<_CMP_GT_OQ>(value, maximum);
        _mm256_or_ps(greater, _mm256_cmp_ps::<_CMP_UNORD_Q>(value, value))
    }

    /// `Selects::max` for the lanes in whole vectors, then `Portable`'s for the rest.
    #[target_feature(enable = "avx2")]
    pub(super) fn max(out: &mut [f32], (base, offsets): (&[f32], &[usize])) {
        let len = out.len();
        assert!(offsets.iter().all(|&offset| offset + len <= base.len()));
        let vectors = len / LANES * LANES;
        for i in (0..vectors).step_by(LANES) {
            let mut maximum = _mm256_set1_ps(f32::NEG_INFINITY);
            for &offset in offsets {
                // Safety: `offset + i + LANES <= offset + len <= base.len()`.
                let value = unsafe { _mm256_loadu_ps(base.as_ptr().add(offset + i)) };
                maximum = _mm256_blendv_ps(maximum, value, replaces(value, maximum));
            }
            // Safety: `i + LANES <= len`.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(i), maximum) };
        }
        Portable.max(&mut out[vectors..], (&base[vectors..], offsets));
    }

    /// `Selects::argmax` for the lanes in whole vectors, then `Portable`'s for the rest.
    #[target_feature(enable = "avx2")]
    pub(super) fn argmax(
        (maxima, argmax): (&mut [f32], &mut [u32]),
        (values, indices, offsets): (&[f32], &[u32], &[usize]),
        index_offset: u32,
    ) {
        let len = maxima.len().min(argmax.len());
        let reach = values.len().min(indices.len());
        assert!(offsets.iter().all(|&offset| offset + len <= reach));
        let vectors = len / LANES * LANES;
        let none = _mm256_set1_epi32(NONE as i32);
        let index_offset_lanes = _mm256_set1_epi32(index_offset as i32);
        for i in (0..vectors).step_by(LANES) {
            let mut maximum = _mm256_set1_ps(f32::NEG_INFINITY);
            let mut best = none;
            for &offset in offsets {
                // Safety: `offset + i + LANES <= offset + len <= reach`, both slices' length
                // or less.
                let (value, index) = unsafe {
                    let value = _mm256_loadu_ps(values.as_ptr().add(offset + i));
                    let index = _mm256_loadu_si256(indices.as_ptr().add(offset + i).cast());
                    (value, index)
                };
                // `NONE + index_offset` wraps; or-ing `NONE`'s lanes with all ones keeps them
                // `NONE`.
                let index = _mm256_or_si256(
                    _mm256_add_epi32(index, index_offset_lanes),
                    _mm256_cmpeq_epi32(index, none),
                );
                let unset = _mm256_castsi256_ps(_mm256_cmpeq_epi32(best, none));
                let takes = _mm256_or_ps(replaces(value, maximum), unset);
                maximum = _mm256_blendv_ps(maximum, value, takes);
                let chosen =
                    _mm256_blendv_ps(_mm256_castsi256_ps(best), _mm256_castsi256_ps(index), takes);
                best = _mm256_castps_si256(chosen);
            }
            // Safety: `i + LANES <= len`, both slices' length or less.
            unsafe {
                _mm256_storeu_ps(maxima.as_mut_ptr().add(i), maximum);
                _mm256_storeu_si256(argmax.as_mut_ptr().add(i).cast(), best);
            }
        }
        Portable.argmax(
            (&mut maxima[vectors..len], &mut argmax[vectors..len]),
            (&values[vectors..], &indices[vectors..], offsets),
            index_offset,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each window scanned whole, in row-major order, with the rule the separable passes must
    /// reproduce: the output, and the input gradient for output gradient `grad`.
    fn window_scan(window: &Window, x: &[f32], grad: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (plane_len, out_plane) = (
            window.spatial.height * window.spatial.width,
            window.spatial.out_height * window.spatial.out_width,
        );
        let mut y = vec![0.0; x.len() / plane_len * out_plane];
        let mut dx = vec![0.0; x.len()];
        for plane in 0..x.len() / plane_len {
            for (oy, ox) in (0..window.spatial.out_height)
                .flat_map(|oy| (0..window.spatial.out_width).map(move |ox| (oy, ox)))
            {
                let (mut maximum, mut best) = (f32::NEG_INFINITY, NONE);
                for ky in 0..window.spatial.kernel[0] {
                    for kx in 0..window.spatial.kernel[1] {
                        let row = window.spatial.axis(0).input_position(oy, ky);
                        let column = window.spatial.axis(1).input_position(ox, kx);
                        if let (Some(row), Some(column)) = (row, column) {
                            let index = row * window.spatial.width + column;
                            let value = x[plane * plane_len + index];
                            if replaces(value, maximum) || best == NONE {
                                (maximum, best) = (value, index as u32);
                            }
                        }
                    }
                }
                let out = plane * out_plane + oy * window.spatial.out_width + ox;
                y[out] = maximum;
                if best != NONE {
                    dx[plane * plane_len + best as usize] += grad[out];
                }
            }
        }
        (y, dx)
    }

    fn same_values(a: &[f32], b: &[f32]) -> bool {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(a, b)| a == b || (a.is_nan() && b.is_nan()))
    }

    #[test]
    fn separable_passes_match_a_whole_window_scan_with_ties_nans_and_infinities() {
        // (input, kernel, stride, padding, dilation): the zoo's pools, and rows wide enough
        // for whole AVX2 vectors plus a tail.
        let cases = [
            ([2, 3, 9, 19], 3, 1, 1, 1),
            ([2, 2, 11, 21], 3, 2, 1, 1),
            ([1, 3, 11, 25], 3, 2, 0, 1),
            ([2, 2, 8, 18], 2, 2, 0, 1),
            ([1, 2, 7, 20], 3, 1, 2, 2),
            ([1, 2, 6, 17], 5, 1, 2, 1),
        ];
        // Few distinct values, so most windows hold ties; and NaNs and minus infinities.
        let palette = [0.0, 1.0, 2.0, f32::NAN, f32::NEG_INFINITY, 1.0, 0.0, 2.0];
        let mut state = 7u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 16) as usize
        };
        for (input, kernel, stride, padding, dilation) in cases {
            let len: usize = input.iter().product();
            let x: Vec<f32> = (0..len)
                .map(|_| match next() % 40 {
                    0 => f32::NAN,
                    1 => f32::NEG_INFINITY,
                    r => palette[r % 3],
                })
                .collect();
            let options = MaxPoolOptions::new([kernel; 2])
                .with_stride([stride; 2])
                .with_padding([padding; 2])
                .with_dilation([dilation; 2]);
            let window = Window::of(&flex_tensor(x.clone(), input), &options).unwrap();
            let out_len =
                input[0] * input[1] * window.spatial.out_height * window.spatial.out_width;
            let grad: Vec<f32> = (0..out_len).map(|_| (next() % 7) as f32 - 3.0).collect();
            let (y_scan, dx_scan) = window_scan(&window, &x, &grad);
            let case = format!("{input:?} kernel {kernel} stride {stride} padding {padding}");

            assert!(
                same_values(&window.forward_with(Portable, &x), &y_scan),
                "{case}"
            );
            let dx = window.input_grad_with(Portable, &x, &grad);
            assert!(
                same_values(&dx, &dx_scan),
                "{case}: portable input gradient"
            );
            #[cfg(target_arch = "x86_64")]
            if let Some(avx2) = Avx2::detect() {
                assert!(
                    same_values(&window.forward_with(avx2, &x), &y_scan),
                    "{case}"
                );
                let dx = window.input_grad_with(avx2, &x, &grad);
                assert!(same_values(&dx, &dx_scan), "{case}: AVX2 input gradient");
            }
        }
    }
}
