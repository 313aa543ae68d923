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
use crate::{f32s, flex_tensor, run_kernel, runs_on_flex};

/// `relu(batch_norm(conv2d(x, weight)))` (the ReLU if `relu`) with batch norm's given
/// statistics, `norm` being gamma, beta, the running mean and the running variance, where the
/// fused kernels apply: f32 on flex without autodiff, so that no backward pass can follow.
/// `None` elsewhere: the caller composes the ops.
pub fn conv2d_normalized(
    x: Tensor<4>,
    weight: Tensor<4>,
    options: ConvOptions<2>,
    norm: [Tensor<1>; 4],
    (epsilon, relu): (f64, bool),
) -> Option<Tensor<4>> {
    let device = x.device();
    if !runs_on_flex(&device) || device.is_autodiff() || x.dtype() != DType::F32 {
        return None;
    }
    let norm = Tensor::stack::<2>(norm.map(|row| row.to_device(&device)).to_vec(), 0);
    Some(Tensor::from_dispatch(
        <Dispatch as NormalizedConvBackend>::conv2d_normalized(
            x.into_dispatch(),
            weight.into_dispatch(),
            norm.into_dispatch(),
            (epsilon, relu),
            options,
        ),
    ))
}

/// The fused convolution and batch norm as a burn backend extension, on flex only: the public
/// function calls it nowhere else.
#[backend_extension(Flex)]
pub trait NormalizedConvBackend: Backend {
    /// `norm` is `[4, C_out]`: gamma, beta, mean and variance as rows.
    fn conv2d_normalized(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        norm: FloatTensor<Self>,
        epsilon_relu: (f64, bool),
        options: ConvOptions<2>,
    ) -> FloatTensor<Self>;
}

impl NormalizedConvBackend for Flex {
    fn conv2d_normalized(
        x: FlexTensor,
        weight: FlexTensor,
        norm: FlexTensor,
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
            let y = Self::conv2d(x, weight, None, options);
            let [gamma, beta] = [0, 1].map(|r| row(r..r + 1, vec![channels]));
            let statistics = row(2..4, vec![2, channels]);
            return normalize([y, gamma, beta, statistics], epsilon, relu);
        };
        let channel_norm = ChannelNorm::of(f32s(&norm), epsilon, relu);
        let shape = geometry.output_shape();
        assert_eq!(
            channel_norm.channels(),
            shape[1],
            "batch norm over as many channels as the convolution's output"
        );
        run_kernel([x, weight], shape, |x, weight| {
            geometry.forward(x, weight, Some(&channel_norm))
        })
    }
}
