//! Convolution on burn's `flex` CPU backend as im2col and one gemm per tile of output positions,
//! for the forward pass and both gradients.
//!
//! Why: at ResNet-20's 16-channel stage (batch 128, 2 threads) flex's forward takes 2.9x
//! PyTorch's time, and burn-backend computes the weight gradient as another convolution whose
//! kernel is the whole 32x32 output gradient (3.6x PyTorch's time). Here the patches of a tile
//! (a band of rows of a large image, or several small images side by side) are laid out once as a
//! `[C*kh*kw, positions]` matrix, small enough to stay in cache, and each of the three products
//! is a single gemm from the `gemm` crate flex itself uses: `Y = W * cols`, `dW += dY * colsᵀ`
//! and `dcols = Wᵀ * dY` (scattered back by col2im).
//! 3x3 convolutions at stride 1 with one pixel of padding take `same_conv3x3`'s direct kernels
//! instead, on processors with AVX2 and FMA. Groups other than 1, dtypes other than f32 and every
//! other backend keep burn's own kernels.
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;

use crate::batch_norm::ConvNorms;
use crate::{run_kernel, runs_on_flex};

mod geometry;
mod normalized;

use geometry::Geometry;
pub use normalized::{NormalizedConvBackend, conv2d_normalized, normalized_conv2d};

/// `conv2d` as burn's `module::conv2d` computes it, through the gemm kernels where the input
/// lives on the flex backend.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !runs_on_flex(&x.device()) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let y = Tensor::from_dispatch(<Dispatch as GemmConvBackend>::gemm_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// The three convolution products as a burn backend extension. Backends without their own kernels
/// keep burn's (the default bodies); `Autodiff` records `gemm_conv2d` with a backward pass that
/// calls the two gradient kernels of the backend it wraps.
#[backend_extension(Flex, Autodiff)]
pub trait GemmConvBackend: Backend {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, options)
    }

    fn gemm_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        options: ConvOptions<2>,
        wrt: ConvGrad,
    ) -> FloatTensor<Self> {
        burn_conv2d_backward::<Self>(x, weight, output_grad, options, wrt)
    }
}

/// One gradient of `conv2d` by burn's own kernels.
fn burn_conv2d_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    output_grad: FloatTensor<B>,
    options: ConvOptions<2>,
    wrt: ConvGrad,
) -> FloatTensor<B> {
    match wrt {
        ConvGrad::Input => B::conv2d_x_backward(x, weight, output_grad, options),
        ConvGrad::Weight => B::conv2d_weight_backward(x, weight, output_grad, options),
    }
}

/// Which gradient of a convolution `gemm_conv2d_backward` computes.
#[derive(Clone, Copy, Debug)]
pub enum ConvGrad {
    Input,
    Weight,
}

impl GemmConvBackend for Flex {
    fn gemm_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let Some(geometry) = Geometry::of(&x, &weight, &options) else {
            return Self::conv2d(x, weight, None, options);
        };
        run_kernel([x, weight], geometry.output_shape(), |x, weight| {
            geometry.forward(x, weight, ConvNorms::default())
        })
    }

    fn gemm_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
        wrt: ConvGrad,
    ) -> FlexTensor {
        let Some(geometry) = Geometry::of(&x, &weight, &options) else {
            return burn_conv2d_backward::<Self>(x, weight, output_grad, options, wrt);
        };
        match wrt {
            ConvGrad::Input => {
                run_kernel([weight, output_grad], geometry.input_shape(), |w, dy| {
                    geometry.input_grad(w, dy)
                })
            }
            ConvGrad::Weight => run_kernel([x, output_grad], geometry.weight_shape(), |x, dy| {
                geometry.weight_grad(x, dy)
            }),
        }
    }
}

/// The backward pass of `gemm_conv2d`, the way burn-autodiff writes its own `conv2d`.
#[derive(Debug)]
struct GemmConv2dBackward;

impl<B: GemmConvBackend> Backward<B, 2> for GemmConv2dBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);

        if let Some(node) = node_x {
            let dx = B::gemm_conv2d_backward(
                x.clone(),
                weight.clone(),
                grad.clone(),
                options.clone(),
                ConvGrad::Input,
            );
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            let dw = B::gemm_conv2d_backward(x, weight, grad, options, ConvGrad::Weight);
            grads.register::<B>(node.id, dw);
        }
    }
}

impl<B: GemmConvBackend, C: CheckpointStrategy> GemmConvBackend for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        match GemmConv2dBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = B::gemm_conv2d(Self::inner(x), Self::inner(weight), options.clone());
                prep.finish((x_state, weight_state, options), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::gemm_conv2d(Self::inner(x), Self::inner(weight), options))
            }
        }
    }
}
