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
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::{DType, Slice};
use rayon::prelude::*;

use super::{
    f32s, flex_tensor, relu_passing, residual_value, runs_on_flex, zip_map_chunks,
    zip_map_reduce_chunks,
};

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
    if !runs_on_flex(&x.device()) || x.dtype() != DType::F32 {
        return None;
    }
    let channels = x.dims()[1];
    let statistics = Tensor::<2>::from_dispatch(<Dispatch as BatchNormBackend>::batch_statistics(
        x.clone().into_dispatch(),
    ));
    let y = Tensor::from_dispatch(<Dispatch as BatchNormBackend>::batch_normalize(
        x.into_dispatch(),
        gamma.into_dispatch(),
        beta.into_dispatch(),
        statistics.clone().into_dispatch(),
        epsilon,
        relu,
    ));
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

/// The backward kernels, called by the autodiff backward pass on the backend it wraps.
pub trait BatchNormGradients: Backend {
    /// The gradient of the normalisation's output and those of gamma and beta (as rows of a
    /// `[2, C]` tensor). With `relu`, the output gradient is the ReLU's, which ran in the same
    /// pass: it is masked first, the mask recomputed from `x`.
    fn batch_norm_param_grads(
        forward: Normalized<Self>,
        output_grad: FloatTensor<Self>,
        relu: bool,
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
        normalize([x, gamma, beta, statistics], epsilon, relu)
    }
}

/// The normalisation pass over x, gamma, beta and the statistics, with the ReLU in the same pass
/// if `relu`.
pub(crate) fn normalize(tensors: [FlexTensor; 4], epsilon: f64, relu: bool) -> FlexTensor {
    let [x, gamma, beta, statistics] = tensors.map(|t| t.to_contiguous());
    let planes = Planes::of(&x);
    let (scale, shift) = scale_shift(f32s(&gamma), f32s(&beta), f32s(&statistics), epsilon);
    let coefficients = |channel: usize| (scale[channel], shift[channel]);
    let x = f32s(&x);
    let y = if relu {
        planes.per_channel_map(x, x, coefficients, |k, value, _| normalized(value, k, true))
    } else {
        planes.per_channel_map(x, x, coefficients, |k, value, _| {
            normalized(value, k, false)
        })
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
        relu: bool,
    ) -> [FlexTensor; 2] {
        let forward = FlexNormalized::of(forward);
        let output_grad = output_grad.to_contiguous();
        let channels = forward.planes.channels;
        if !relu {
            let grads = forward.param_grads(f32s(&output_grad));
            return [output_grad, flex_tensor(grads, [2, channels])];
        }
        let (dy, grads) = forward.relu_param_grads(f32s(&output_grad));
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

#[derive(Debug)]
struct BatchNormalizeBackward;

impl<B: BatchNormGradients> Backward<B, 3> for BatchNormalizeBackward {
    /// x, gamma, beta, the statistics, epsilon and whether the ReLU ran.
    type State = ([NodeId; 3], B::FloatTensorPrimitive, f64, bool);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (states, statistics, epsilon, relu) = ops.state;
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
        let [grad, param_grads] = B::batch_norm_param_grads(forward.clone(), grad, relu);
        let row = |index: usize| {
            let row = B::float_slice(
                param_grads.clone(),
                &[Slice::from(index..index + 1), Slice::from(0..channels)],
            );
            B::float_reshape(row, [channels].into())
        };
        if let Some(node) = node_gamma {
            grads.register::<B>(node.id, row(0));
        }
        if let Some(node) = node_beta {
            grads.register::<B>(node.id, row(1));
        }
        if let Some(node) = node_x {
            let dx = B::batch_norm_input_grad(forward, grad, param_grads.clone());
            grads.register::<B>(node.id, dx);
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
        let statistics = Self::inner(statistics);
        match BatchNormalizeBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let states = [&x, &gamma, &beta].map(|tensor| prep.checkpoint(tensor));
                let y = B::batch_normalize(
                    Self::inner(x),
                    Self::inner(gamma),
                    Self::inner(beta),
                    statistics.clone(),
                    epsilon,
                    relu,
                );
                prep.finish((states, statistics, epsilon, relu), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::batch_normalize(
                Self::inner(x),
                Self::inner(gamma),
                Self::inner(beta),
                statistics,
                epsilon,
                relu,
            )),
        }
    }
}

/// An `[N, C, H, W]` activation seen as `N * C` contiguous planes of `H * W` values.
#[derive(Clone, Copy, Debug)]
struct Planes {
    batch: usize,
    channels: usize,
    height: usize,
    width: usize,
}

impl Planes {
    fn of(x: &FlexTensor) -> Self {
        let shape = x.layout().shape();
        Self {
            batch: shape[0],
            channels: shape[1],
            height: shape[2],
            width: shape[3],
        }
    }

    fn shape(&self) -> [usize; 4] {
        [self.batch, self.channels, self.height, self.width]
    }

    fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Values per channel.
    fn count(&self) -> f64 {
        (self.batch * self.plane()) as f64
    }

    /// `sums(row, a, b)` of every plane of `a` and `b` (`row` in `[N, C]` order) in parallel,
    /// added up per channel in image order.
    fn plane_sums<const N: usize>(
        &self,
        a: &[f32],
        b: &[f32],
        sums: impl Fn(usize, &[f32], &[f32]) -> [f64; N] + Sync,
    ) -> Vec<[f64; N]> {
        let plane = self.plane().max(1);
        let planes = a
            .par_chunks(plane)
            .zip(b.par_chunks(plane))
            .enumerate()
            .map(|(row, (a, b))| sums(row, a, b))
            .collect();
        self.by_channel(planes)
    }

    /// Values of each plane (in `[N, C]` order) added up per channel, in image order.
    fn by_channel<const N: usize>(&self, planes: Vec<[f64; N]>) -> Vec<[f64; N]> {
        let mut totals = vec![[0.0; N]; self.channels];
        for (row, sums) in planes.into_iter().enumerate() {
            let total = &mut totals[row % self.channels];
            total.iter_mut().zip(sums).for_each(|(t, s)| *t += s);
        }
        totals
    }

    /// `out = f(k, a, b)` for every pair of values, planes in parallel, with
    /// `k = coefficients(channel)` looked up once per plane (see `zip_map_chunks`).
    fn per_channel_map<K: Copy>(
        &self,
        a: &[f32],
        b: &[f32],
        coefficients: impl Fn(usize) -> K + Sync,
        f: impl Fn(K, f32, f32) -> f32 + Sync,
    ) -> Vec<f32> {
        let len = self.batch * self.channels * self.plane();
        assert!(
            a.len() == len && b.len() == len,
            "batch norm operands of {} and {} values for {:?}",
            a.len(),
            b.len(),
            self.shape()
        );
        let f = &f;
        zip_map_chunks((a, b), self.plane(), |row| {
            let k = coefficients(row % self.channels);
            move |x, y| f(k, x, y)
        })
    }

    /// Means, then biased variances, from one read of `x`: each plane's mean and its squared
    /// deviations around it (a second loop over the plane while it is in cache), combined per
    /// channel in f64 as Chan et al.'s parallel variance, `M2 = Σ M2_p + m Σ (mean_p - mean)²`
    /// over planes of `m` values. A third of batch norm's forward reads, and as exact as two
    /// passes over the channel: no sum of squares of uncentred values.
    fn statistics(&self, x: &[f32]) -> Vec<f32> {
        let m = self.plane() as f64;
        let moments: Vec<[f64; 2]> = x
            .par_chunks(self.plane().max(1))
            .map(|values| {
                let [sum] = lane_sums(values, values, |value, _| [value]);
                let mean = sum / m;
                let centre = mean as f32;
                let [squares] = lane_sums(values, values, |value, _| {
                    let centred = value - centre;
                    [centred * centred]
                });
                // Σ (v - c)² = Σ (v - mean)² + m (mean - c)².
                [mean, squares - m * (mean - f64::from(centre)).powi(2)]
            })
            .collect();
        let means: Vec<f64> = self
            .by_channel(moments.iter().map(|&[mean, _]| [mean]).collect())
            .into_iter()
            .map(|[sum]| sum / self.batch as f64)
            .collect();
        let deviations = moments
            .iter()
            .enumerate()
            .map(|(row, &[mean, m2])| [m2 + m * (mean - means[row % self.channels]).powi(2)])
            .collect();
        let variances = self.by_channel(deviations);
        let count = self.count();
        means
            .iter()
            .map(|&mean| mean as f32)
            .chain(variances.into_iter().map(|[m2]| (m2 / count) as f32))
            .collect()
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
        let (masked, sums) = zip_map_reduce_chunks(
            (f32s(&self.x), dy),
            planes.plane().max(1),
            |row| {
                let channel = row % planes.channels;
                let (scale, shift) = (scale[channel], shift[channel]);
                move |value, grad| relu_passing(value * scale + shift, grad)
            },
            |row, masked, x| self.centred_sums(row, x, masked),
        );
        (masked, self.param_rows(planes.by_channel(sums)))
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

/// `Σ f(a_i, b_i)` for `K` functions at once, in eight f32 lanes (so that the loop vectorises)
/// added up in f64.
fn lane_sums<const K: usize>(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> [f32; K]) -> [f64; K] {
    const LANES: usize = 8;
    let mut lanes = [[0.0f32; LANES]; K];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut total = [0.0f64; K];
    for (x, y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        total
            .iter_mut()
            .zip(f(*x, *y))
            .for_each(|(t, v)| *t += v as f64);
    }
    for (xs, ys) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            let values = f(xs[lane], ys[lane]);
            for k in 0..K {
                lanes[k][lane] += values[k];
            }
        }
    }
    for k in 0..K {
        total[k] += lanes[k].iter().map(|&v| v as f64).sum::<f64>();
    }
    total
}
