//! `relu(x + shortcut)`, the end of a post-activation residual block, in one parallel pass on
//! the flex backend, and its backward pass in another.
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

use super::{f32s, flex_tensor, relu_passing, runs_on_flex, zip_map_chunks};

/// Values per parallel task: large enough that a task's overhead vanishes, small enough that
/// both threads get several.
const CHUNK: usize = 1 << 14;

/// `relu(x + shortcut)` as burn computes it, through the kernels below where both live on the
/// flex backend as f32 tensors of one shape.
pub fn add_relu<const D: usize>(x: Tensor<D>, shortcut: Tensor<D>) -> Tensor<D> {
    let fused = runs_on_flex(&x.device())
        && x.dtype() == DType::F32
        && shortcut.dtype() == DType::F32
        && x.dims() == shortcut.dims();
    if !fused {
        return relu(x + shortcut);
    }
    Tensor::from_dispatch(<Dispatch as ResidualBackend>::add_relu(
        x.into_dispatch(),
        shortcut.into_dispatch(),
    ))
}

/// The forward op, as a burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait ResidualBackend: Backend {
    /// `relu(x + shortcut)` of two contiguous-or-not tensors of one shape.
    fn add_relu(x: FloatTensor<Self>, shortcut: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// The backward kernel, called by the autodiff backward pass on the backend it wraps.
pub trait ResidualGradients: Backend {
    /// The output gradient where the output is above zero (or NaN), else zero: the gradient of
    /// both operands.
    fn add_relu_backward(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl ResidualBackend for Flex {
    fn add_relu(x: FlexTensor, shortcut: FlexTensor) -> FlexTensor {
        let shape = x.layout().shape().clone();
        let [x, shortcut] = [x, shortcut].map(|t| t.to_contiguous());
        let y = zip_map_chunks((f32s(&x), f32s(&shortcut)), CHUNK, |_| {
            |a: f32, b: f32| relu_passing(a + b, a + b)
        });
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
struct AddReluBackward;

impl<B: ResidualGradients> Backward<B, 2> for AddReluBackward {
    /// The output: the ReLU's mask is where it is above zero.
    type State = B::FloatTensorPrimitive;

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_shortcut] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let dx = B::add_relu_backward(ops.state, grad);
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
    fn add_relu(x: FloatTensor<Self>, shortcut: FloatTensor<Self>) -> FloatTensor<Self> {
        match AddReluBackward
            .prepare::<C>([x.node(), shortcut.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::add_relu(Self::inner(x), Self::inner(shortcut));
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::add_relu(Self::inner(x), Self::inner(shortcut)))
            }
        }
    }
}
