//! Max pooling on the flex backend, forward and backward, without an index tensor.
//!
//! Why: perf put half of GoogleNet's training step on this machine in flex's max pool. Its
//! forward pass scans each window in turn, a chain of dependent compares per output, and records
//! every output's argmax in an i64 tensor for the backward scatter: 71 ms for a 3x3 stride-1
//! pool at 128x16x32x32, against 4 ms for the scatter. Here both passes find the window maxima
//! with the taps outer and the output columns inner (`Window::row_argmax`), a vectorised run of
//! selects; the forward pass writes only the output, and the backward pass finds the maxima again
//! in the saved input. Forward + backward at that shape (`layer_speed`): 35.6 ms against burn's
//! 92.9 and PyTorch's 50 (each with the 3-12 ms of the `sum().backward()` that starts it).
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::MaxPoolOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, IntDType};
use rayon::prelude::*;

use super::{Axis, f32s, flex_tensor, runs_on_flex};

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
        let (x, output_grad) = (x.to_contiguous(), output_grad.to_contiguous());
        let dx = window.input_grad(f32s(&x), f32s(&output_grad));
        flex_tensor(dx, window.input_shape())
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
        match WindowMaxPool2dBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let y = B::window_max_pool2d(Self::inner(x), options.clone());
                prep.finish((x_state, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::window_max_pool2d(Self::inner(x), options)),
        }
    }
}

/// One max pool's sizes, for f32 NCHW tensors with symmetric padding and floor mode.
#[derive(Clone, Copy, Debug)]
struct Window {
    height: usize,
    width: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    out_height: usize,
    out_width: usize,
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
        let padding = options.padding.map(|(begin, _)| begin);
        // PyTorch's floor-mode size: (size + 2 * padding - dilation * (kernel - 1) - 1) / stride + 1.
        let out_size = |axis: usize, size: usize| {
            let span = options.dilation[axis] * (options.kernel_size[axis] - 1) + 1;
            (size + 2 * padding[axis])
                .checked_sub(span)
                .map(|room| room / options.stride[axis] + 1)
        };
        let window = Self {
            height,
            width,
            kernel: options.kernel_size,
            stride: options.stride,
            padding,
            dilation: options.dilation,
            out_height: out_size(0, height)?,
            out_width: out_size(1, width)?,
            batch,
            channels,
        };
        (batch * channels * height * width > 0).then_some(window)
    }

    fn input_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }

    fn output_shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_height, self.out_width]
    }

    /// Axis 0 (rows) or 1 (columns) of the window.
    fn axis(&self, axis: usize) -> Axis {
        let sizes = ([self.height, self.width], [self.out_height, self.out_width]);
        Axis::of(axis, sizes, [self.stride, self.padding, self.dilation])
    }

    fn kernel_columns(&self) -> Vec<(usize, usize, usize)> {
        (0..self.kernel[1])
            .map(|kx| self.axis(1).valid_outputs(kx))
            .collect()
    }

    /// Output row `oy` of one plane: each window's maximum and its plane index, the first
    /// maximum in row-major kernel order or the last NaN (as burn's and PyTorch's indices point;
    /// a NaN is the maximum of any window that holds one); minus infinity and `u32::MAX` for a
    /// window wholly in the padding. Taps outer and output columns inner, so that the inner loop
    /// is a vectorisable run of selects: with the window inner, each output waited on a chain of
    /// nine compares (41 ms for the forward pass at 128x16x32x32 against 3x3 stride 1, as slow
    /// as flex's 71 ms over the same loop).
    ///
    /// `columns` holds `Axis::valid_outputs` for each kernel column, worked out once per call (its
    /// divisions cost as much as a small row's taps).
    fn row_argmax(
        &self,
        (plane, oy): (&[f32], usize),
        columns: &[(usize, usize, usize)],
        maxima: &mut [f32],
        argmax: &mut [u32],
    ) {
        maxima.fill(f32::NEG_INFINITY);
        argmax.fill(u32::MAX);
        for ky in 0..self.kernel[0] {
            let Some(row) = self.axis(0).input_position(oy, ky) else {
                continue;
            };
            for &(lo, hi, first) in columns {
                let start = row * self.width + first;
                let slots = maxima[lo..hi].iter_mut().zip(&mut argmax[lo..hi]);
                // Plane indices as u32 (a plane has far fewer values), so that they fill the
                // same vector lanes as the f32 values.
                if self.stride[1] == 1 {
                    let values = &plane[start..start + (hi - lo)];
                    let taps = values.iter().zip(start as u32..);
                    for ((maximum, best), (&value, index)) in slots.zip(taps) {
                        take_if_greater(maximum, best, value, index);
                    }
                } else {
                    for (i, (maximum, best)) in slots.enumerate() {
                        let index = start + i * self.stride[1];
                        take_if_greater(maximum, best, plane[index], index as u32);
                    }
                }
            }
        }
    }

    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let plane_len = self.height * self.width;
        let columns = self.kernel_columns();
        let mut y = vec![0.0; self.batch * self.channels * self.out_height * self.out_width];
        y.par_chunks_mut(self.out_height * self.out_width)
            .zip(x.par_chunks(plane_len))
            .for_each_init(
                || vec![0; self.out_width],
                |argmax, (out, plane)| {
                    for (oy, maxima) in out.chunks_exact_mut(self.out_width).enumerate() {
                        self.row_argmax((plane, oy), &columns, maxima, argmax);
                    }
                },
            );
        y
    }

    fn input_grad(&self, x: &[f32], output_grad: &[f32]) -> Vec<f32> {
        let plane_len = self.height * self.width;
        let out_plane = self.out_height * self.out_width;
        let columns = self.kernel_columns();
        let mut dx = vec![0.0; self.batch * self.channels * plane_len];
        dx.par_chunks_mut(plane_len)
            .zip(
                x.par_chunks(plane_len)
                    .zip(output_grad.par_chunks(out_plane)),
            )
            .for_each_init(
                || (vec![0.0; self.out_width], vec![0; self.out_width]),
                |(maxima, argmax), (dx, (plane, grad))| {
                    for (oy, grad_row) in grad.chunks_exact(self.out_width).enumerate() {
                        self.row_argmax((plane, oy), &columns, maxima, argmax);
                        for (&best, &g) in argmax.iter().zip(grad_row) {
                            if best != u32::MAX {
                                dx[best as usize] += g;
                            }
                        }
                    }
                },
            );
        dx
    }
}

/// One tap of `row_argmax`: `value` at plane index `index` replaces the window's maximum so
/// far if greater, if a NaN, or if it is the window's first tap inside the image. A bit mask
/// rather than `if`: LLVM turns the `if` into a store per lane behind a branch.
#[inline(always)]
fn take_if_greater(maximum: &mut f32, best: &mut u32, value: f32, index: u32) {
    let takes = (value > *maximum) | value.is_nan() | (*best == u32::MAX);
    let mask = 0u32.wrapping_sub(takes as u32);
    *maximum = f32::from_bits((maximum.to_bits() & !mask) | (value.to_bits() & mask));
    *best = (*best & !mask) | (index & mask);
}
