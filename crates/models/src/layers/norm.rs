//! Batch norm: burn's record, PyTorch's hyper-parameters, cnnzoo's CPU kernels.
use burn::module::{Flag, Param, RunningState};
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use cnnzoo_flex_kernels::residual;

use super::{Act, Convolution};

/// A convolution's input, weight and options.
type ConvOperands = (Tensor<4>, Tensor<4>, ConvOptions<2>);

/// Batch-norm hyper-parameters in PyTorch's convention (`momentum` weighs the new batch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norm {
    pub eps: f64,
    pub momentum: f64,
}

impl Norm {
    /// `nn.BatchNorm2d`'s defaults.
    pub const TORCH: Self = Self {
        eps: 1e-5,
        momentum: 0.1,
    };

    /// Weight 1, bias 0, as the reference and every torchvision model initialise batch norm.
    pub fn init(self, channels: usize, device: &Device) -> BatchNorm2d {
        BatchNorm2d::new(
            BatchNormConfig::new(channels)
                .with_epsilon(self.eps)
                .with_momentum(self.momentum),
            device,
        )
    }
}

/// burn's `BatchNorm` over `[N, C, H, W]`, field for field (so records, checkpoints and the
/// PyTorch key mapping are unchanged), with a faster training pass.
///
/// burn 0.22's `batch_norm_train` (which no backend specialises) gathers each channel through
/// `swap_dims(0, 1)` + `reshape`, a full copy of the activation in the forward pass and two more
/// in its backward, plus separate passes for the centring, the squares and the means. Here the
/// statistics come from sums over the contiguous `[N, C, H*W]` view (the variance as
/// `E[x²] - E[x]²`, the biased one burn also feeds its running statistics) and the output is one
/// per-channel scale and shift; autodiff differentiates these ops. Same function, about 40% less
/// time (`cargo bench -p cnnzoo-flex-kernels --bench layer_speed`). On the CPU backend the
/// training pass is [`cnnzoo_flex_kernels::batch_norm`]'s fused kernels instead, and so is
/// inference; elsewhere inference is burn's `batch_norm`.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub training: Param<Flag>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    pub momentum: f64,
    pub epsilon: f64,
}

impl BatchNorm2d {
    pub fn new(config: BatchNormConfig, device: &Device) -> Self {
        let norm: BatchNorm = config.init(device);
        Self {
            gamma: norm.gamma,
            beta: norm.beta,
            training: norm.training,
            running_mean: norm.running_mean,
            running_var: norm.running_var,
            momentum: norm.momentum,
            epsilon: norm.epsilon,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.normalize(x, false)
    }

    /// `act(self.forward(x))`, with a ReLU fused into batch norm's own passes on the CPU backend.
    pub fn forward_activated(&self, x: Tensor<4>, act: Act) -> Tensor<4> {
        match act {
            Act::Relu => self.normalize(x, true),
            _ => act.forward(self.forward(x)),
        }
    }

    /// `conv`'s output normalised, then `act` if given. In evaluation on the CPU backend batch norm
    /// and a ReLU run in the convolution's own output pass, while each image is in cache, instead
    /// of a pass of their own over the whole activation (same bits; `docs/performance.md`).
    pub fn forward_convolved(
        &self,
        conv: &Convolution,
        x: Tensor<4>,
        act: Option<Act>,
    ) -> Tensor<4> {
        if matches!(act, None | Some(Act::Relu))
            && let Some(y) = self.fused_with(conv, &x, None, act.is_some())
        {
            return y;
        }
        let y = conv.forward(x);
        match act {
            Some(act) => self.forward_activated(y, act),
            None => self.forward(y),
        }
    }

    /// A post-activation residual block's end, `act(self.forward(conv.forward(x)) + shortcut)`:
    /// with a ReLU on the CPU backend, in evaluation all in the convolution's output pass, in
    /// training all in batch norm's passes (`residual::normalized_add_relu`).
    pub fn forward_convolved_residual(
        &self,
        conv: &Convolution,
        x: Tensor<4>,
        shortcut: Tensor<4>,
        act: Act,
    ) -> Tensor<4> {
        if act == Act::Relu {
            if let Some(y) = self.fused_with(conv, &x, Some(shortcut.clone()), true) {
                return y;
            }
            if self.uses_batch_statistics(&x) {
                let y = conv.forward(x);
                let affine = (self.gamma.val(), self.beta.val());
                let fused = residual::normalized_add_relu(
                    y.clone(),
                    affine,
                    shortcut.clone(),
                    self.epsilon,
                );
                return match self.keeping_statistics(fused) {
                    Some(out) => out,
                    None => act.forward_residual(self.forward(y), shortcut),
                };
            }
        }
        act.forward_residual(self.forward_convolved(conv, x, None), shortcut)
    }

    /// `conv.forward(act(self.forward(x)))`, a pre-activation unit: with a ReLU or none, in
    /// evaluation on the CPU backend, batch norm runs as the convolution takes each image (into
    /// its padded copy, where the 3x3 kernels make one), same bits.
    pub fn forward_into(&self, x: Tensor<4>, act: Act, conv: &Convolution) -> Tensor<4> {
        if act == Act::Relu
            && let Some((convolution, norm)) = self.fusable(conv, &x)
        {
            let settings = (self.epsilon, true);
            if let Some(y) =
                cnnzoo_flex_kernels::conv::normalized_conv2d(convolution, norm, settings)
            {
                return y;
            }
        }
        conv.forward(self.forward_activated(x, act))
    }

    /// A pre-activation block's end, `conv.forward(act(self.forward(x))) + shortcut`: in
    /// training the sum runs in the convolution's output pass on the CPU backend; otherwise
    /// batch norm runs as in `forward_into` and the sum after it.
    pub fn forward_into_residual(
        &self,
        x: Tensor<4>,
        act: Act,
        conv: &Convolution,
        shortcut: Tensor<4>,
    ) -> Tensor<4> {
        if self.uses_batch_statistics(&x) {
            return conv.forward_add(self.forward_activated(x, act), shortcut);
        }
        residual::add(self.forward_into(x, act, conv), shortcut)
    }

    /// `flex_kernels::conv::conv2d_normalized` where it applies: in evaluation, after a
    /// convolution without bias, on the CPU backend.
    fn fused_with(
        &self,
        conv: &Convolution,
        x: &Tensor<4>,
        shortcut: Option<Tensor<4>>,
        relu: bool,
    ) -> Option<Tensor<4>> {
        let (convolution, norm) = self.fusable(conv, x)?;
        cnnzoo_flex_kernels::conv::conv2d_normalized(
            convolution,
            norm,
            shortcut,
            (self.epsilon, relu),
        )
    }

    /// The convolution's operands and batch norm's rows (gamma, beta, running mean and
    /// variance) for the fused kernels, in evaluation with a convolution without bias.
    fn fusable(&self, conv: &Convolution, x: &Tensor<4>) -> Option<(ConvOperands, [Tensor<1>; 4])> {
        let weight = conv.weight.val();
        let tracked = x.device().is_autodiff() || weight.device().is_autodiff();
        if (tracked && self.training.is_enabled()) || conv.bias.is_some() {
            return None;
        }
        let norm = [
            self.gamma.val(),
            self.beta.val(),
            self.running_mean.value(),
            self.running_var.value(),
        ];
        Some(((x.clone(), weight, conv.options(x)), norm))
    }

    /// Batch norm, then the ReLU if `relu`: fused into batch norm's passes on the CPU backend
    /// (15% more ResNet-20 inference throughput), in training too.
    fn normalize(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let then_relu = |y: Tensor<4>| {
            if relu {
                burn::tensor::activation::relu(y)
            } else {
                y
            }
        };
        if !self.uses_batch_statistics(&x) {
            let device = x.device();
            let statistics = [&self.running_mean, &self.running_var]
                .map(|running| running.value().to_device(&device));
            let (gamma, beta) = (self.gamma.val(), self.beta.val());
            if let Some(y) = cnnzoo_flex_kernels::batch_norm::evaluate(
                x.clone(),
                gamma.clone(),
                beta.clone(),
                statistics.clone(),
                self.epsilon,
                relu,
            ) {
                return y;
            }
            let [mean, variance] = statistics;
            let y = burn::tensor::module::batch_norm(x, gamma, beta, mean, variance, self.epsilon);
            return then_relu(y);
        }
        let fused = cnnzoo_flex_kernels::batch_norm::train(
            x.clone(),
            self.gamma.val(),
            self.beta.val(),
            self.epsilon,
            relu,
        );
        if let Some(y) = self.keeping_statistics(fused) {
            return y;
        }
        let [n, c, h, w] = x.dims();
        let count = (n * h * w) as f64;
        let flat = x.reshape([n, c, h * w]);
        let per_channel_mean = |t: Tensor<3>| t.sum_dim(2).sum_dim(0).div_scalar(count);
        let mean = per_channel_mean(flat.clone());
        let mean_of_squares = per_channel_mean(flat.clone().powi_scalar(2));
        // Rounding can leave E[x²] - E[x]² a hair below zero for a constant channel.
        let variance = (mean_of_squares - mean.clone().powi_scalar(2)).clamp_min(0.0);
        let scale =
            self.gamma.val().reshape([1, c, 1]) / variance.clone().add_scalar(self.epsilon).sqrt();
        let shift = self.beta.val().reshape([1, c, 1]) - mean.clone() * scale.clone();
        self.update_running(mean.reshape([c]), variance.reshape([c]));
        then_relu((flat * scale + shift).reshape([n, c, h, w]))
    }

    /// As burn's BatchNorm: batch statistics only where a backward pass can follow and the
    /// layer is not frozen.
    fn uses_batch_statistics(&self, x: &Tensor<4>) -> bool {
        x.device().is_autodiff() && self.training.is_enabled()
    }

    /// A fused training kernel's output, its batch statistics blended into the running ones.
    fn keeping_statistics(
        &self,
        fused: Option<(Tensor<4>, Tensor<1>, Tensor<1>)>,
    ) -> Option<Tensor<4>> {
        let (y, mean, variance) = fused?;
        self.update_running(mean, variance);
        Some(y)
    }

    fn update_running(&self, mean: Tensor<1>, variance: Tensor<1>) {
        let device = mean.device();
        let blend = |running: &RunningState<Tensor<1>>, batch: Tensor<1>| {
            let updated = running
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - self.momentum)
                .add(batch.detach().mul_scalar(self.momentum));
            running.update(updated.detach());
        };
        blend(&self.running_mean, mean);
        blend(&self.running_var, variance);
    }
}
