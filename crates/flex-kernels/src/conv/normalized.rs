//! A convolution followed by batch norm in evaluation (and a ReLU), the pair every
//! post-activation unit runs: the normalisation runs in the convolution's own output pass, on
//! each image (or tile of images) just after it is written, while it is still in cache.
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
use crate::batch_norm::{ChannelNorm, normalize};
use crate::residual::ResidualBackend;
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
    let device = x.device();
    // Every operand's own device: a model's parameters can be tracked where its input is not.
    let untracked_f32 = |t: &Tensor<4>| {
        t.dtype() == DType::F32 && runs_on_flex(&t.device()) && !t.device().is_autodiff()
    };
    let untracked = |t: &Tensor<1>| !t.device().is_autodiff();
    if !untracked_f32(&x)
        || !untracked_f32(&weight)
        || !norm.iter().all(untracked)
        || shortcut.as_ref().is_some_and(|s| !untracked_f32(s))
    {
        return None;
    }
    let norm = Tensor::stack::<2>(norm.map(|row| row.to_device(&device)).to_vec(), 0);
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
            (epsilon, relu),
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

/// The fused convolution and batch norm as a burn backend extension, on flex only: the public
/// function calls it nowhere else. `norm` is `[4, C_out]`: gamma, beta, mean and variance as
/// rows.
#[backend_extension(Flex)]
pub trait NormalizedConvBackend: Backend {
    /// `relu(batch_norm(conv2d(x, weight)))`, the ReLU if `relu`.
    fn conv2d_normalized(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        norm: FloatTensor<Self>,
        epsilon_relu: (f64, bool),
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
        epsilon_relu: (f64, bool),
        options: ConvOptions<2>,
    ) -> FlexTensor {
        normalized_conv([x, weight, norm], None, epsilon_relu, options)
    }

    fn conv2d_normalized_residual(
        x: FlexTensor,
        weight: FlexTensor,
        norm: FlexTensor,
        shortcut: FlexTensor,
        epsilon_relu: (f64, bool),
        options: ConvOptions<2>,
    ) -> FlexTensor {
        normalized_conv([x, weight, norm], Some(shortcut), epsilon_relu, options)
    }
}

/// Both ops of `NormalizedConvBackend` on flex: fused where `Geometry` takes the convolution,
/// else burn's convolution followed by the batch-norm and residual passes.
fn normalized_conv(
    [x, weight, norm]: [FlexTensor; 3],
    shortcut: Option<FlexTensor>,
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
        let y = Flex::conv2d(x, weight, None, options);
        let [gamma, beta] = [0, 1].map(|r| row(r..r + 1, vec![channels]));
        let statistics = row(2..4, vec![2, channels]);
        let normalized = [y, gamma, beta, statistics];
        return match shortcut {
            None => normalize(normalized, epsilon, relu),
            Some(shortcut) => {
                Flex::residual_sum(normalize(normalized, epsilon, false), shortcut, relu)
            }
        };
    };
    let shortcut = shortcut.map(|shortcut| shortcut.to_contiguous());
    let channel_norm = ChannelNorm::of(f32s(&norm), shortcut.as_ref().map(f32s), (epsilon, relu));
    let shape = geometry.output_shape();
    assert!(
        channel_norm.channels() == shape[1]
            && channel_norm
                .shortcut_len()
                .is_none_or(|len| len == shape.iter().product::<usize>()),
        "batch norm over the convolution's output channels, a shortcut of its shape"
    );
    run_kernel([x, weight], shape, |x, weight| {
        geometry.forward(x, weight, Some(&channel_norm))
    })
}
