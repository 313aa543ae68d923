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
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;

use burn::tensor::DType;

use crate::batch_norm::{ChannelNorm, ConvNorms};
use crate::{autodiff_op, f32s, inner_of, run_kernel, runs_on_flex};

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

/// `conv2d(x, weight) + shortcut` without bias, a pre-activation block's end: on flex, where the
/// shortcut has the output's shape, the sum runs in the convolution's own output pass, on each
/// image while it is in cache, instead of a pass of its own over the whole activation.
pub fn conv2d_add(
    x: Tensor<4>,
    weight: Tensor<4>,
    shortcut: Tensor<4>,
    options: ConvOptions<2>,
) -> Tensor<4> {
    if !runs_on_flex(&x.device()) {
        return crate::residual::add(conv2d(x, weight, None, options), shortcut);
    }
    Tensor::from_dispatch(<Dispatch as GemmConvBackend>::gemm_conv2d_add(
        x.into_dispatch(),
        weight.into_dispatch(),
        shortcut.into_dispatch(),
        options,
    ))
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

    /// `gemm_conv2d(x, weight) + shortcut`.
    fn gemm_conv2d_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        Self::float_add(Self::gemm_conv2d(x, weight, options), shortcut)
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

    fn gemm_conv2d_add(
        x: FlexTensor,
        weight: FlexTensor,
        shortcut: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let fitting = Geometry::of(&x, &weight, &options).filter(|geometry| {
            shortcut.dtype() == DType::F32
                && geometry.output_shape()[..] == shortcut.layout().shape()[..]
        });
        let Some(geometry) = fitting else {
            return Self::float_add(Self::gemm_conv2d(x, weight, options), shortcut);
        };
        let shape = geometry.output_shape();
        let shortcut = shortcut.to_contiguous();
        let sum = ChannelNorm::shortcut_only(shape[1], f32s(&shortcut));
        let norms = ConvNorms {
            input: None,
            output: Some(&sum),
        };
        run_kernel([x, weight], shape, |x, weight| {
            geometry.forward(x, weight, norms)
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

/// The backward pass of `gemm_conv2d`, the way burn-autodiff writes its own `conv2d`, and of
/// `gemm_conv2d_add` (N = 3), whose third parent, the shortcut, takes the output gradient.
#[derive(Debug)]
struct GemmConv2dBackward<const N: usize>;

impl<B: GemmConvBackend, const N: usize> Backward<B, N> for GemmConv2dBackward<N> {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);

        if let Some(&Some(node)) = parents.get(2) {
            grads.register::<B>(node, grad.clone());
        }
        if let Some(node) = parents[0] {
            let dx = B::gemm_conv2d_backward(
                x.clone(),
                weight.clone(),
                grad.clone(),
                options.clone(),
                ConvGrad::Input,
            );
            grads.register::<B>(node, dx);
        }
        if let Some(node) = parents[1] {
            let dw = B::gemm_conv2d_backward(x, weight, grad, options, ConvGrad::Weight);
            grads.register::<B>(node, dw);
        }
    }
}

impl<B: GemmConvBackend, C: CheckpointStrategy> GemmConvBackend for Autodiff<B, C> {
    fn gemm_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let [x_in, weight_in] = inner_of([&x, &weight]);
        let kept = options.clone();
        autodiff_op::<B, C, _, 2, 2>(
            (GemmConv2dBackward::<2>, [&x, &weight]),
            || B::gemm_conv2d(x_in, weight_in, options),
            |[x, weight], _| (x, weight, kept),
        )
    }

    fn gemm_conv2d_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        options: ConvOptions<2>,
    ) -> FloatTensor<Self> {
        let parents = [&x, &weight, &shortcut];
        let [x_in, weight_in, shortcut_in] = inner_of(parents);
        let kept = options.clone();
        autodiff_op::<B, C, _, 3, 2>(
            (GemmConv2dBackward::<3>, parents),
            || B::gemm_conv2d_add(x_in, weight_in, shortcut_in, options),
            |[x, weight], _| (x, weight, kept),
        )
    }
}
