//! A convolution and a batch norm in evaluation (and a ReLU) as one op: after the convolution,
//! as every post-activation unit runs them, the normalisation runs in the convolution's own
//! output pass, on each image (or tile of images) just after it is written, while it is still
//! in cache; before it (pre-activation units), as the convolution takes each image.
//!
//! Why: as a pass of its own, batch norm reads and writes the whole activation once more, most
//! of it from memory at batch 256; with the ReLU it was most of the elementwise passes' share of
//! ResNet-20's inference profile (`docs/performance.md`). The output is the same to the bit:
//! both apply `batch_norm`'s one per-value expression.
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;

use super::Geometry;
use crate::batch_norm::{ChannelNorm, ConvNorms, normalize};
use crate::{f32s, flex_tensor, run_kernel, runs_on_flex};

/// `relu(batch_norm(conv2d(x, weight)) + shortcut)` (the shortcut if given, the ReLU if
/// `relu`) with batch norm's given statistics, `norm` being gamma, beta, the running mean and
/// the running variance, where the fused kernels apply: f32 on flex without autodiff, so that no
/// backward pass can follow. `None` elsewhere: the caller composes the ops.
pub fn conv2d_normalized(
    (x, weight, options): (Tensor<4>, Tensor<4>, ConvOptions<2>),
    norm: [Tensor<1>; 4],
    shortcut: Option<Tensor<4>>,
    (epsilon, relu): (f64, bool),
) -> Option<Tensor<4>> {
    let (x, weight, norm) = fusable_operands(x, weight, norm, shortcut.as_ref())?;
    let (x, weight, norm) = (
        x.into_dispatch(),
        weight.into_dispatch(),
        norm.into_dispatch(),
    );
    let y = match shortcut {
        None => <Dispatch as NormalizedConvBackend>::conv2d_normalized(
            x,
            weight,
            norm,
            (epsilon, relu, false),
            options,
        ),
        Some(shortcut) => <Dispatch as NormalizedConvBackend>::conv2d_normalized_residual(
            x,
            weight,
            norm,
            shortcut.into_dispatch(),
            (epsilon, relu),
            options,
        ),
    };
    Some(Tensor::from_dispatch(y))
}

/// `conv2d(relu(batch_norm(x)), weight)` (the ReLU if `relu`), a pre-activation unit, where the
/// fused kernels apply, as `conv2d_normalized`: each image is normalised as the convolution
/// takes it (into its padded copy, where the 3x3 kernels make one).
pub fn normalized_conv2d(
    (x, weight, options): (Tensor<4>, Tensor<4>, ConvOptions<2>),
    norm: [Tensor<1>; 4],
    (epsilon, relu): (f64, bool),
) -> Option<Tensor<4>> {
    let (x, weight, norm) = fusable_operands(x, weight, norm, None)?;
    Some(Tensor::from_dispatch(
        <Dispatch as NormalizedConvBackend>::conv2d_normalized(
            x.into_dispatch(),
            weight.into_dispatch(),
            norm.into_dispatch(),
            (epsilon, relu, true),
            options,
        ),
    ))
}

/// The operands with batch norm's rows stacked (`[4, C]`), where every one is an untracked f32
/// tensor on flex (a model's parameters can be tracked where its input is not).
fn fusable_operands(
    x: Tensor<4>,
    weight: Tensor<4>,
    norm: [Tensor<1>; 4],
    shortcut: Option<&Tensor<4>>,
) -> Option<(Tensor<4>, Tensor<4>, Tensor<2>)> {
    let device = x.device();
    let untracked_f32 = |t: &Tensor<4>| {
        t.dtype() == DType::F32 && runs_on_flex(&t.device()) && !t.device().is_autodiff()
    };
    let untracked = |t: &Tensor<1>| !t.device().is_autodiff();
    if !untracked_f32(&x)
        || !untracked_f32(&weight)
        || !norm.iter().all(untracked)
        || shortcut.is_some_and(|s| !untracked_f32(s))
    {
        return None;
    }
    let norm = Tensor::stack::<2>(norm.map(|row| row.to_device(&device)).to_vec(), 0);
    Some((x, weight, norm))
}

/// The fused convolution and batch norm as a burn backend extension, on flex only: the public
/// function calls it nowhere else. `norm` is `[4, C_out]`: gamma, beta, mean and variance as
/// rows.
#[backend_extension(Flex)]
pub trait NormalizedConvBackend: Backend {
    /// `relu(batch_norm(conv2d(x, weight)))`, the ReLU if `relu`; with `input`,
    /// `conv2d(relu(batch_norm(x)), weight)` instead.
    fn conv2d_normalized(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        norm: FloatTensor<Self>,
        epsilon_relu_input: (f64, bool, bool),
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;

    /// `relu(batch_norm(conv2d(x, weight)) + shortcut)`, the ReLU if `relu`; `shortcut` has the
    /// output's shape.
    fn conv2d_normalized_residual(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        norm: FloatTensor<Self>,
        shortcut: FloatTensor<Self>,
        epsilon_relu: (f64, bool),
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl NormalizedConvBackend for Flex {
    fn conv2d_normalized(
        x: FlexTensor,
        weight: FlexTensor,
        norm: FlexTensor,
        (epsilon, relu, input): (f64, bool, bool),
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let placement = if input {
            Placement::Input
        } else {
            Placement::Output(None)
        };
        normalized_conv([x, weight, norm], placement, (epsilon, relu), options)
    }

    fn conv2d_normalized_residual(
        x: FlexTensor,
        weight: FlexTensor,
        norm: FlexTensor,
        shortcut: FlexTensor,
        epsilon_relu: (f64, bool),
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let placement = Placement::Output(Some(shortcut));
        normalized_conv([x, weight, norm], placement, epsilon_relu, options)
    }
}

/// Where batch norm applies: to the convolution's input, or to its output (then the shortcut
/// added, if given).
enum Placement {
    Input,
    Output(Option<FlexTensor>),
}

/// Both ops of `NormalizedConvBackend` on flex: fused where `Geometry` takes the convolution,
/// else burn's convolution with the batch-norm and residual passes before or after it.
fn normalized_conv(
    [x, weight, norm]: [FlexTensor; 3],
    placement: Placement,
    (epsilon, relu): (f64, bool),
    options: ConvOptions<2>,
) -> FlexTensor {
    let norm = norm.to_contiguous();
    let Some(geometry) = Geometry::of(&x, &weight, &options) else {
        let channels = norm.layout().shape()[1];
        let rows = f32s(&norm);
        let row = |range: std::ops::Range<usize>, shape: Vec<usize>| {
            flex_tensor(
                rows[range.start * channels..range.end * channels].to_vec(),
                shape,
            )
        };
        let [gamma, beta] = [0, 1].map(|r| row(r..r + 1, vec![channels]));
        let statistics = row(2..4, vec![2, channels]);
        return match placement {
            Placement::Input => {
                let x = normalize([x, gamma, beta, statistics], None, (epsilon, relu));
                Flex::conv2d(x, weight, None, options)
            }
            Placement::Output(shortcut) => {
                let y = Flex::conv2d(x, weight, None, options);
                normalize([y, gamma, beta, statistics], shortcut, (epsilon, relu))
            }
        };
    };
    let (shortcut, input) = match placement {
        Placement::Input => (None, true),
        Placement::Output(shortcut) => (shortcut.map(|s| s.to_contiguous()), false),
    };
    let channel_norm = ChannelNorm::of(f32s(&norm), shortcut.as_ref().map(f32s), (epsilon, relu));
    let shape = geometry.output_shape();
    let normalized_channels = if input {
        geometry.input_shape()[1]
    } else {
        shape[1]
    };
    assert!(
        channel_norm.channels() == normalized_channels
            && channel_norm
                .shortcut_len()
                .is_none_or(|len| len == shape.iter().product::<usize>()),
        "batch norm over the convolution's input or output channels, a shortcut of its shape"
    );
    let norms = match input {
        true => ConvNorms {
            input: Some(&channel_norm),
            output: None,
        },
        false => ConvNorms {
            input: None,
            output: Some(&channel_norm),
        },
    };
    run_kernel([x, weight], shape, |x, weight| {
        geometry.forward(x, weight, norms)
    })
}
