//! Batch norm's training pass over `[N, C, H, W]` on the flex backend, in four fused passes:
//! statistics (one read), normalisation, and in the backward pass the two per-channel sums (with
//! the masking of a fused ReLU's gradient) and the input gradient; and its evaluation, the
//! normalisation pass alone.
//!
//! Why: composed from burn's tensor ops (`layers::BatchNorm2d` on other backends) every step of
//! the formula is its own pass over the activation with its own allocation, forward and
//! backward: 27 ms at ResNet-20's first stage (batch 128, 2 threads) against PyTorch's 9.4.
use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, Slice};

use crate::{
    autodiff_op, f32s, flex_tensor, inner_of, relu_passing, residual_value, runs_on_flex,
    zip_map_reduce_chunks,
};
use planes::{Planes, lane_sums};

mod planes;

/// The training pass of batch norm where the fused kernels apply (f32 on flex): the output, and
/// the batch's mean and biased variance per channel for the running statistics. With `relu`,
/// the ReLU that follows runs in the same passes, forward and backward.
pub fn train(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
) -> Option<(Tensor<4>, Tensor<1>, Tensor<1>)> {
    with_batch_statistics((x, gamma, beta), |[x, gamma, beta], statistics| {
        <Dispatch as BatchNormBackend>::batch_normalize(x, gamma, beta, statistics, epsilon, relu)
    })
}

/// Where the fused kernels apply (f32 on flex), `normalize([x, gamma, beta], statistics)` with
/// the batch's own statistics, and the mean and variance rows of those: the part of a training
/// pass the plain and the residual forms share.
pub(crate) fn with_batch_statistics(
    (x, gamma, beta): (Tensor<4>, Tensor<1>, Tensor<1>),
    normalize: impl FnOnce([FloatTensor<Dispatch>; 3], FloatTensor<Dispatch>) -> FloatTensor<Dispatch>,
) -> Option<(Tensor<4>, Tensor<1>, Tensor<1>)> {
    if !runs_on_flex(&x.device()) || x.dtype() != DType::F32 {
        return None;
    }
    let channels = x.dims()[1];
    let statistics = Tensor::<2>::from_dispatch(<Dispatch as BatchNormBackend>::batch_statistics(
        x.clone().into_dispatch(),
    ));
    let operands = [
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
    ];
    let y = Tensor::from_dispatch(normalize(operands, statistics.clone().into_dispatch()));
    let [mean, variance] = [0, 1].map(|row| {
        statistics
            .clone()
            .slice([row..row + 1, 0..channels])
            .reshape([channels])
    });
    Some((y, mean, variance))
}

/// Batch norm with given statistics (evaluation) where the fused kernel applies: f32 on flex
/// without autodiff, so that no backward pass can take `running_mean` and `running_var` for the
/// batch's own statistics. burn's `batch_norm` makes four broadcast passes over the activation
/// (subtract, divide, multiply, add): 3.7 ms at ResNet-20's first stage (batch 128, 2 threads)
/// against PyTorch's 1.35. With `relu`, the ReLU that follows is applied in the same pass.
pub fn evaluate(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    [running_mean, running_var]: [Tensor<1>; 2],
    epsilon: f64,
    relu: bool,
) -> Option<Tensor<4>> {
    let device = x.device();
    if !runs_on_flex(&device) || device.is_autodiff() || x.dtype() != DType::F32 {
        return None;
    }
    let statistics = Tensor::stack::<2>(vec![running_mean, running_var], 0);
    let [x, gamma, beta, statistics] = [
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        statistics.into_dispatch(),
    ];
    Some(Tensor::from_dispatch(
        <Dispatch as BatchNormBackend>::batch_normalize(x, gamma, beta, statistics, epsilon, relu),
    ))
}

/// The forward ops, as a burn backend extension.
#[backend_extension(Flex, Autodiff)]
pub trait BatchNormBackend: Backend {
    /// Per-channel mean and biased variance of `x`, as rows of a `[2, C]` tensor. Constant for
    /// autodiff: `batch_normalize`'s backward pass accounts for their dependence on `x`.
    fn batch_statistics(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `(x - mean) / sqrt(variance + epsilon) * gamma + beta` per channel, with the mean and
    /// variance as the rows of `statistics`. The autodiff backward pass takes them to be `x`'s
    /// own, from `batch_statistics`. With `relu`, the ReLU follows in the same pass.
    fn batch_normalize(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;
}

/// What the backward kernels read of a `batch_normalize` call.
#[derive(Clone, Debug)]
pub struct Normalized<B: Backend> {
    pub x: FloatTensor<B>,
    pub gamma: FloatTensor<B>,
    pub beta: FloatTensor<B>,
    /// The batch's means and variances, as the rows of a `[2, C]` tensor.
    pub statistics: FloatTensor<B>,
    pub epsilon: f64,
}

/// The ReLU that ran in the normalisation's pass, if any, and where its backward pass finds
/// its mask.
#[derive(Clone, Debug)]
pub enum ReluMask<B: Backend> {
    None,
    /// `relu(batch_norm(x))`: the mask is recomputed from `x`.
    Normalized,
    /// `relu(batch_norm(x) + shortcut)`: the mask is where this output is above zero.
    Output(FloatTensor<B>),
}

/// The backward kernels, called by the autodiff backward pass on the backend it wraps.
pub trait BatchNormGradients: Backend {
    /// The gradient of the normalisation's output and those of gamma and beta (as rows of a
    /// `[2, C]` tensor). Where a ReLU ran in the same pass, the output gradient is the ReLU's:
    /// it is masked first, in the pass of the sums.
    fn batch_norm_param_grads(
        forward: Normalized<Self>,
        output_grad: FloatTensor<Self>,
        mask: ReluMask<Self>,
    ) -> [FloatTensor<Self>; 2];

    /// The gradient of `x`, through the normalisation and through the batch statistics.
    fn batch_norm_input_grad(
        forward: Normalized<Self>,
        output_grad: FloatTensor<Self>,
        param_grads: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

impl BatchNormBackend for Flex {
    fn batch_statistics(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let planes = Planes::of(&x);
        flex_tensor(planes.statistics(f32s(&x)), [2, planes.channels])
    }

    fn batch_normalize(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        statistics: FlexTensor,
        epsilon: f64,
        relu: bool,
    ) -> FlexTensor {
        normalize([x, gamma, beta, statistics], None, (epsilon, relu))
    }
}

/// The normalisation pass over x, gamma, beta and the statistics, then `shortcut` added if
/// given, then the ReLU if `relu`, all in the same pass.
pub(crate) fn normalize(
    tensors: [FlexTensor; 4],
    shortcut: Option<FlexTensor>,
    (epsilon, relu): (f64, bool),
) -> FlexTensor {
    let [x, gamma, beta, statistics] = tensors.map(|t| t.to_contiguous());
    let planes = Planes::of(&x);
    let (scale, shift) = scale_shift(f32s(&gamma), f32s(&beta), f32s(&statistics), epsilon);
    let coefficients = |channel: usize| (scale[channel], shift[channel]);
    let x = f32s(&x);
    let y = match (shortcut.map(|s| s.to_contiguous()), relu) {
        (None, true) => {
            planes.per_channel_map(x, x, coefficients, |k, value, _| normalized(value, k, true))
        }
        (None, false) => planes.per_channel_map(x, x, coefficients, |k, value, _| {
            normalized(value, k, false)
        }),
        (Some(shortcut), true) => {
            planes.per_channel_map(x, f32s(&shortcut), coefficients, |k, value, s| {
                residual_value(normalized(value, k, false), s, true)
            })
        }
        (Some(shortcut), false) => {
            planes.per_channel_map(x, f32s(&shortcut), coefficients, |k, value, s| {
                residual_value(normalized(value, k, false), s, false)
            })
        }
    };
    flex_tensor(y, planes.shape())
}

/// Batch norm's evaluation of one value, `value * scale + shift`, then the ReLU if `relu`: the
/// one expression of the normalisation pass and of `ChannelNorm`, so that both give the same bits.
#[inline(always)]
fn normalized(value: f32, (scale, shift): (f32, f32), relu: bool) -> f32 {
    let z = value * scale + shift;
    if relu { relu_passing(z, z) } else { z }
}

/// The batch norms a convolution applies in its own passes: to its input as it takes each image
/// (a pre-activation unit), to its output as it writes each image (a post-activation one).
#[derive(Clone, Copy, Default)]
pub(crate) struct ConvNorms<'a> {
    pub input: Option<&'a ChannelNorm<'a>>,
    pub output: Option<&'a ChannelNorm<'a>>,
}

/// Batch norm's evaluation per channel, then a residual block's shortcut added (if any), then
/// the ReLU (if any): what a convolution applies to each image's output in its own pass, while
/// the image is in cache (`conv::conv2d_normalized`).
pub(crate) struct ChannelNorm<'a> {
    scale: Vec<f32>,
    shift: Vec<f32>,
    /// The whole batch's shortcut, shaped as the convolution's output.
    shortcut: Option<&'a [f32]>,
    relu: bool,
}

impl<'a> ChannelNorm<'a> {
    /// From `norm`'s rows gamma, beta, running mean and running variance (`[4, C]`).
    pub(crate) fn of(
        norm: &[f32],
        shortcut: Option<&'a [f32]>,
        (epsilon, relu): (f64, bool),
    ) -> Self {
        let channels = norm.len() / 4;
        let (gamma, rest) = norm.split_at(channels);
        let (beta, statistics) = rest.split_at(channels);
        let (scale, shift) = scale_shift(gamma, beta, statistics, epsilon);
        Self {
            scale,
            shift,
            shortcut,
            relu,
        }
    }

    /// No normalisation, `shortcut` alone added: batch norm's expression with scale 1 and shift
    /// 0 leaves every value as it is (but for the sign of a zero), so the sum is the one the
    /// residual pass computes.
    pub(crate) fn shortcut_only(channels: usize, shortcut: &'a [f32]) -> Self {
        Self {
            scale: vec![1.0; channels],
            shift: vec![0.0; channels],
            shortcut: Some(shortcut),
            relu: false,
        }
    }

    pub(crate) fn channels(&self) -> usize {
        self.scale.len()
    }

    pub(crate) fn shortcut_len(&self) -> Option<usize> {
        self.shortcut.map(<[f32]>::len)
    }

    /// `images` (`[images, channels, plane]`) normalised, without the shortcut, into `buffer`
    /// (a thread's scratch, resized to hold them): batch norm before a convolution that reads
    /// its input in place.
    pub(crate) fn normalized_copy<'b>(
        &self,
        images: &[f32],
        plane: usize,
        buffer: &'b mut Vec<f32>,
    ) -> &'b [f32] {
        buffer.resize(images.len(), 0.0);
        let planes = images.chunks_exact(plane.max(1));
        let outs = buffer.chunks_exact_mut(plane.max(1));
        for (channel, (src, dst)) in planes.zip(outs).enumerate() {
            self.normalize_row(channel % self.channels(), src, dst);
        }
        buffer
    }

    /// `src`, values of channel `channel`, normalised into `dst`, without the shortcut.
    pub(crate) fn normalize_row(&self, channel: usize, src: &[f32], dst: &mut [f32]) {
        let k = (self.scale[channel], self.shift[channel]);
        let values = dst.iter_mut().zip(src);
        if self.relu {
            values.for_each(|(d, &v)| *d = normalized(v, k, true));
        } else {
            values.for_each(|(d, &v)| *d = normalized(v, k, false));
        }
    }

    /// Finishes `images` (`[images, channels, plane]`) in place, which start `offset` values
    /// into the convolution's output.
    pub(crate) fn apply(&self, images: &mut [f32], plane: usize, offset: usize) {
        let plane = plane.max(1);
        let coefficients = self.scale.iter().zip(&self.shift).cycle();
        let Some(shortcut) = self.shortcut else {
            for (values, (&scale, &shift)) in images.chunks_exact_mut(plane).zip(coefficients) {
                let k = (scale, shift);
                if self.relu {
                    values.iter_mut().for_each(|v| *v = normalized(*v, k, true));
                } else {
                    values
                        .iter_mut()
                        .for_each(|v| *v = normalized(*v, k, false));
                }
            }
            return;
        };
        let shortcut = shortcut[offset..][..images.len()].chunks_exact(plane);
        for ((values, shortcut), (&scale, &shift)) in images
            .chunks_exact_mut(plane)
            .zip(shortcut)
            .zip(coefficients)
        {
            let values = values.iter_mut().zip(shortcut);
            let k = (scale, shift);
            if self.relu {
                values.for_each(|(v, &s)| *v = residual_value(normalized(*v, k, false), s, true));
            } else {
                values.for_each(|(v, &s)| *v = residual_value(normalized(*v, k, false), s, false));
            }
        }
    }
}

impl BatchNormGradients for Flex {
    fn batch_norm_param_grads(
        forward: Normalized<Self>,
        output_grad: FlexTensor,
        mask: ReluMask<Self>,
    ) -> [FlexTensor; 2] {
        let forward = FlexNormalized::of(forward);
        let output_grad = output_grad.to_contiguous();
        let channels = forward.planes.channels;
        let (dy, grads) = match mask {
            ReluMask::None => {
                let grads = forward.param_grads(f32s(&output_grad));
                return [output_grad, flex_tensor(grads, [2, channels])];
            }
            ReluMask::Normalized => forward.relu_param_grads(f32s(&output_grad)),
            ReluMask::Output(output) => {
                let output = output.to_contiguous();
                let dy = f32s(&output_grad);
                forward.masked_param_grads(f32s(&output), dy, |_| relu_passing)
            }
        };
        [
            flex_tensor(dy, forward.planes.shape()),
            flex_tensor(grads, [2, channels]),
        ]
    }

    fn batch_norm_input_grad(
        forward: Normalized<Self>,
        output_grad: FlexTensor,
        param_grads: FlexTensor,
    ) -> FlexTensor {
        let forward = FlexNormalized::of(forward);
        let [output_grad, param_grads] = [output_grad, param_grads].map(|t| t.to_contiguous());
        let dx = forward.input_grad(f32s(&output_grad), f32s(&param_grads));
        flex_tensor(dx, forward.planes.shape())
    }
}

/// The backward pass of a normalisation under autodiff, whose parents are x, gamma and beta,
/// then for the residual form (`residual::normalized_add_relu`, N = 4) the shortcut, which
/// takes the masked output gradient.
#[derive(Debug)]
pub(crate) struct NormalizeBackward<const N: usize>;

impl<B: BatchNormGradients, const N: usize> Backward<B, N> for NormalizeBackward<N> {
    /// The checkpoint states of x, gamma and beta, the statistics, epsilon, and the ReLU's mask.
    type State = (([NodeId; 3], FloatTensor<B>, f64), ReluMask<B>);

    fn backward(
        self,
        ops: Ops<Self::State, N>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let ((states, statistics, epsilon), mask) = ops.state;
        let parents = ops.parents.map(|node| node.map(|node| node.id));
        let [x, gamma, beta] =
            states.map(|state| checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(state));
        let channels = statistics.shape()[1];
        let forward = Normalized {
            x,
            gamma,
            beta,
            statistics,
            epsilon,
        };
        let [grad, param_grads] = B::batch_norm_param_grads(forward.clone(), grad, mask);
        let row = |index: usize| {
            let row = B::float_slice(
                param_grads.clone(),
                &[Slice::from(index..index + 1), Slice::from(0..channels)],
            );
            B::float_reshape(row, [channels].into())
        };
        if let Some(node) = parents[1] {
            grads.register::<B>(node, row(0));
        }
        if let Some(node) = parents[2] {
            grads.register::<B>(node, row(1));
        }
        if let Some(node) = parents[0] {
            let dx = B::batch_norm_input_grad(forward, grad.clone(), param_grads.clone());
            grads.register::<B>(node, dx);
        }
        if let Some(&Some(shortcut)) = parents.get(3) {
            grads.register::<B>(shortcut, grad);
        }
    }
}

impl<B, C> BatchNormBackend for Autodiff<B, C>
where
    B: BatchNormBackend + BatchNormGradients,
    C: CheckpointStrategy,
{
    fn batch_statistics(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::batch_statistics(Self::inner(x)))
    }

    /// With `relu`, the ReLU runs in the normalisation's pass, and the backward pass recomputes
    /// its mask from `x` and writes the masked gradient in the pass of the parameter sums, each
    /// plane summed while it is in cache: burn's ReLU would add a forward pass and keep its
    /// output, both on one thread. (Masking inside the sums' loop itself measured slower, 9.6-11.7
    /// against 6.7-8.4 ms at 128x16x32x32, as the lanes stop vectorising: `docs/performance.md`.)
    fn batch_normalize(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self> {
        let parents = [&x, &gamma, &beta];
        let [x_in, gamma_in, beta_in] = inner_of(parents);
        let statistics = Self::inner(statistics);
        let kept = statistics.clone();
        let mask = if relu {
            ReluMask::Normalized
        } else {
            ReluMask::None
        };
        autodiff_op::<B, C, _, 3, 3>(
            (NormalizeBackward::<3>, parents),
            || B::batch_normalize(x_in, gamma_in, beta_in, statistics, epsilon, relu),
            |checkpoints, _| ((checkpoints, kept, epsilon), mask),
        )
    }
}

/// Per channel, `gamma / sqrt(variance + epsilon)` and `beta - mean * scale`, with the means and
/// variances as the halves of `statistics`.
fn scale_shift(
    gamma: &[f32],
    beta: &[f32],
    statistics: &[f32],
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>) {
    let (means, variances) = statistics.split_at(gamma.len());
    (0..gamma.len())
        .map(|c| {
            let scale = gamma[c] as f64 / (variances[c] as f64 + epsilon).sqrt();
            (
                scale as f32,
                (beta[c] as f64 - means[c] as f64 * scale) as f32,
            )
        })
        .unzip()
}

/// A `batch_normalize` call's tensors, contiguous.
struct FlexNormalized {
    planes: Planes,
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    statistics: FlexTensor,
    epsilon: f64,
}

impl FlexNormalized {
    fn of(forward: Normalized<Flex>) -> Self {
        let [x, gamma, beta, statistics] =
            [forward.x, forward.gamma, forward.beta, forward.statistics].map(|t| t.to_contiguous());
        Self {
            planes: Planes::of(&x),
            x,
            gamma,
            beta,
            statistics,
            epsilon: forward.epsilon,
        }
    }

    /// Gamma's and beta's gradient rows (`param_rows`) from `dy`, the gradient of the
    /// normalisation's output.
    fn param_grads(&self, dy: &[f32]) -> Vec<f32> {
        let sums = self.planes.plane_sums(f32s(&self.x), dy, |row, x, dy| {
            self.centred_sums(row, x, dy)
        });
        self.param_rows(sums)
    }

    /// `Σ dy * (x - mean)` and `Σ dy` over plane `row` (in `[N, C]` order); the mean is looked
    /// up once per plane, so the inner loop vectorises.
    fn centred_sums(&self, row: usize, x: &[f32], dy: &[f32]) -> [f64; 2] {
        let mean = f32s(&self.statistics)[row % self.planes.channels];
        lane_sums(x, dy, |value, grad| [grad * (value - mean), grad])
    }

    /// The ReLU's output gradient `dy` where `x * scale + shift` (the forward's own expression)
    /// passed, else zero, and from it gamma's and beta's gradient rows as `param_grads` sums
    /// them, in one pass over `x` and `dy`: each plane is summed just after it is masked.
    fn relu_param_grads(&self, dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let planes = &self.planes;
        let (scale, shift) = scale_shift(
            f32s(&self.gamma),
            f32s(&self.beta),
            f32s(&self.statistics),
            self.epsilon,
        );
        self.masked_param_grads(f32s(&self.x), dy, |row| {
            let channel = row % planes.channels;
            let (scale, shift) = (scale[channel], shift[channel]);
            move |value, grad| relu_passing(value * scale + shift, grad)
        })
    }

    /// `dy` masked by `mask_of(plane)(source, dy)` per value, and gamma's and beta's gradient
    /// rows from the masked values, in one pass: each plane is summed just after it is masked.
    fn masked_param_grads<F: Fn(f32, f32) -> f32>(
        &self,
        source: &[f32],
        dy: &[f32],
        mask_of: impl Fn(usize) -> F + Sync,
    ) -> (Vec<f32>, Vec<f32>) {
        let plane = self.planes.plane().max(1);
        let x = f32s(&self.x);
        let (masked, sums) =
            zip_map_reduce_chunks((source, dy), plane, mask_of, |row, masked, _| {
                self.centred_sums(row, &x[row * plane..][..masked.len()], masked)
            });
        (masked, self.param_rows(self.planes.by_channel(sums)))
    }

    /// Rows `Σ dy * (x - mean) / sqrt(variance + epsilon)` (gamma's gradient) and `Σ dy` (beta's)
    /// from the per-channel sums of `dy * (x - mean)` and `dy`.
    fn param_rows(&self, sums: Vec<[f64; 2]>) -> Vec<f32> {
        let variances = &f32s(&self.statistics)[self.planes.channels..];
        let (mut gamma_grad, beta_grad): (Vec<f32>, Vec<f32>) = sums
            .into_iter()
            .zip(variances)
            .map(|([centred, plain], &variance)| {
                (
                    (centred / (variance as f64 + self.epsilon).sqrt()) as f32,
                    plain as f32,
                )
            })
            .unzip();
        gamma_grad.extend(beta_grad);
        gamma_grad
    }

    /// `dx = gamma / std * (dy - Σdy / M - x̂ * Σ(dy x̂) / M)` with `x̂ = (x - mean) / std`, over
    /// the `M` values of each channel, written as one affine map of `dy` and `x` per channel.
    fn input_grad(&self, dy: &[f32], param_grads: &[f32]) -> Vec<f32> {
        let planes = &self.planes;
        let (means, variances) = f32s(&self.statistics).split_at(planes.channels);
        let (gamma_grad, beta_grad) = param_grads.split_at(planes.channels);
        let gamma = f32s(&self.gamma);
        let count = planes.count();
        // dx = dy * k_dy + x * k_x + k_0 per channel.
        let coefficients: Vec<[f32; 3]> = (0..planes.channels)
            .map(|c| {
                let inv_std = 1.0 / (variances[c] as f64 + self.epsilon).sqrt();
                let k_dy = gamma[c] as f64 * inv_std;
                let k_x = -k_dy * inv_std * gamma_grad[c] as f64 / count;
                let k_0 = -k_dy * beta_grad[c] as f64 / count - k_x * means[c] as f64;
                [k_dy as f32, k_x as f32, k_0 as f32]
            })
            .collect();
        planes.per_channel_map(
            dy,
            f32s(&self.x),
            |channel| coefficients[channel],
            |[k_dy, k_x, k_0], grad, value| grad * k_dy + value * k_x + k_0,
        )
    }
}
