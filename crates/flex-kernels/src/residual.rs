//! The end of a residual block, `x + shortcut` or `relu(x + shortcut)` (post-activation
//! blocks), in one parallel pass on the flex backend, and its backward pass in another.
//!
//! Why: burn's add and ReLU run on the calling thread alone, each with its own pass and its own
//! output, while the other core waits; the ReLU's backward pass is a third single-threaded pass.
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::relu;

use super::{f32s, flex_tensor, relu_passing, residual_value, runs_on_flex, zip_map_chunks};

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
        match ResidualSumBackward
            .prepare::<C>([x.node(), shortcut.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::residual_sum(Self::inner(x), Self::inner(shortcut), relu);
                prep.finish(relu.then(|| y.clone()), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::residual_sum(Self::inner(x), Self::inner(shortcut), relu))
            }
        }
    }
}
