//! The end of a residual block, `x + shortcut` or `relu(x + shortcut)` (post-activation
//! blocks), in one parallel pass on the flex backend, and its backward pass in another; and in
//! training, a post-activation block's whole end, `relu(batch_norm(x) + shortcut)`, in batch
//! norm's own passes.
//!
//! Why: burn's add and ReLU run on the calling thread alone, each with its own pass and its own
//! output, while the other core waits; the ReLU's backward pass is a third single-threaded pass.
//! Batch norm's output, added to the shortcut in a pass of its own, was written and read again.
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::relu;

use super::{f32s, flex_tensor, relu_passing, residual_value, runs_on_flex, zip_map_chunks};
use crate::batch_norm::{
    BatchNormGradients, NormalizeBackward, ReluMask, normalize, with_batch_statistics,
};
use crate::{autodiff_op, inner_of};

/// Values per parallel task: large enough that a task's overhead vanishes, small enough that
/// both threads get several.
const CHUNK: usize = 1 << 14;

/// `relu(x + shortcut)` as burn computes it, through the kernels below where both live on the
/// flex backend as f32 tensors of one shape.
pub fn add_relu<const D: usize>(x: Tensor<D>, shortcut: Tensor<D>) -> Tensor<D> {
    residual_sum(x, shortcut, true)
}

/// `x + shortcut` (pre-activation and inverted residual blocks) as burn computes it, through the
/// kernels below where both live on the flex backend as f32 tensors of one shape.
pub fn add<const D: usize>(x: Tensor<D>, shortcut: Tensor<D>) -> Tensor<D> {
    residual_sum(x, shortcut, false)
}

fn residual_sum<const D: usize>(x: Tensor<D>, shortcut: Tensor<D>, with_relu: bool) -> Tensor<D> {
    let fused = runs_on_flex(&x.device())
        && x.dtype() == DType::F32
        && shortcut.dtype() == DType::F32
        && x.dims() == shortcut.dims();
    if !fused {
        let sum = x + shortcut;
        return if with_relu { relu(sum) } else { sum };
    }
    Tensor::from_dispatch(<Dispatch as ResidualBackend>::residual_sum(
        x.into_dispatch(),
        shortcut.into_dispatch(),
        with_relu,
    ))
}

/// The forward op, as a burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait ResidualBackend: Backend {
    /// `x + shortcut`, then the ReLU with `relu`, of two contiguous-or-not tensors of one shape.
    fn residual_sum(
        x: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// The backward kernel, called by the autodiff backward pass on the backend it wraps.
pub trait ResidualGradients: Backend {
    /// The output gradient where the output is above zero (or NaN), else zero: the gradient of
    /// both operands of `relu(x + shortcut)`.
    fn add_relu_backward(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl ResidualBackend for Flex {
    fn residual_sum(x: FlexTensor, shortcut: FlexTensor, relu: bool) -> FlexTensor {
        let shape = x.layout().shape().clone();
        let [x, shortcut] = [x, shortcut].map(|t| t.to_contiguous());
        let operands = (f32s(&x), f32s(&shortcut));
        let y = if relu {
            zip_map_chunks(operands, CHUNK, |_| |a, b| residual_value(a, b, true))
        } else {
            zip_map_chunks(operands, CHUNK, |_| |a, b| residual_value(a, b, false))
        };
        flex_tensor(y, shape)
    }
}

impl ResidualGradients for Flex {
    fn add_relu_backward(output: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let shape = output.layout().shape().clone();
        let [output, output_grad] = [output, output_grad].map(|t| t.to_contiguous());
        let dx = zip_map_chunks((f32s(&output), f32s(&output_grad)), CHUNK, |_| relu_passing);
        flex_tensor(dx, shape)
    }
}

#[derive(Debug)]
struct ResidualSumBackward;

impl<B: ResidualGradients> Backward<B, 2> for ResidualSumBackward {
    /// The output where the ReLU ran: its mask is where the output is above zero.
    type State = Option<B::FloatTensorPrimitive>;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_shortcut] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let dx = match ops.state {
            Some(output) => B::add_relu_backward(output, grad),
            None => grad,
        };
        if let Some(node) = node_shortcut {
            grads.register::<B>(node.id, dx.clone());
        }
        if let Some(node) = node_x {
            grads.register::<B>(node.id, dx);
        }
    }
}

impl<B, C> ResidualBackend for Autodiff<B, C>
where
    B: ResidualBackend + ResidualGradients,
    C: CheckpointStrategy,
{
    fn residual_sum(
        x: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        relu: bool,
    ) -> FloatTensor<Self> {
        let [x_in, shortcut_in] = inner_of([&x, &shortcut]);
        autodiff_op::<B, C, _, 2, 0>(
            (ResidualSumBackward, [&x, &shortcut]),
            || B::residual_sum(x_in, shortcut_in, relu),
            |_, output| relu.then(|| output.clone()),
        )
    }
}

/// `relu(batch_norm(x) + shortcut)` with the batch's own statistics, a post-activation block's
/// end in training, where the fused kernels apply (f32 tensors of one shape on flex): the
/// output, and the batch's mean and biased variance per channel for the running statistics.
/// One pass forward where batch norm and the sum took two, and in the backward pass the ReLU's
/// mask (where the output is above zero) is applied in the pass of batch norm's parameter sums.
/// Same bits as `batch_norm::train` then `add_relu`: the per-value expressions are shared.
pub fn normalized_add_relu(
    x: Tensor<4>,
    (gamma, beta): (Tensor<1>, Tensor<1>),
    shortcut: Tensor<4>,
    epsilon: f64,
) -> Option<(Tensor<4>, Tensor<1>, Tensor<1>)> {
    if shortcut.dtype() != DType::F32 || x.dims() != shortcut.dims() {
        return None;
    }
    let shortcut = shortcut.into_dispatch();
    with_batch_statistics((x, gamma, beta), |[x, gamma, beta], statistics| {
        <Dispatch as NormalizedResidualBackend>::normalized_add_relu(
            x, gamma, beta, statistics, shortcut, epsilon,
        )
    })
}

/// The training form of a post-activation block's end, as a burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait NormalizedResidualBackend: Backend {
    /// `relu((x - mean) / sqrt(variance + epsilon) * gamma + beta + shortcut)` per channel, with
    /// the mean and variance as the rows of `statistics` (`x`'s own, for the backward pass).
    fn normalized_add_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

impl NormalizedResidualBackend for Flex {
    fn normalized_add_relu(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        statistics: FlexTensor,
        shortcut: FlexTensor,
        epsilon: f64,
    ) -> FlexTensor {
        normalize(
            [x, gamma, beta, statistics],
            Some(shortcut),
            (epsilon, true),
        )
    }
}

impl<B, C> NormalizedResidualBackend for Autodiff<B, C>
where
    B: NormalizedResidualBackend + BatchNormGradients,
    C: CheckpointStrategy,
{
    fn normalized_add_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        let parents = [&x, &gamma, &beta, &shortcut];
        let [x_in, gamma_in, beta_in, shortcut_in] = inner_of(parents);
        let statistics = Self::inner(statistics);
        let kept = statistics.clone();
        let operands = (x_in, gamma_in, beta_in, shortcut_in);
        autodiff_op::<B, C, _, 4, 3>(
            (NormalizeBackward::<4>, parents),
            || {
                let (x, gamma, beta, shortcut) = operands;
                B::normalized_add_relu(x, gamma, beta, statistics, shortcut, epsilon)
            },
            |checkpoints, output| {
                let mask = ReluMask::Output(output.clone());
                ((checkpoints, kept, epsilon), mask)
            },
        )
    }
}
