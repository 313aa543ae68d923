//! The units blocks are made of: conv-norm-activation, squeeze-excitation, stochastic depth.
use burn::module::{Flag, Param};
use burn::prelude::*;
use burn::tensor::Distribution;

use super::{Act, BatchNorm2d, ConvSpec, Convolution, Init, Norm, spatial_mean};

/// Convolution, batch norm, optional activation: torchvision's `Conv2dNormActivation` (whose
/// `state_dict` indices `0`, `1` are `conv`, `bn` here), Inception's `BasicConv2d` and the
/// CIFAR GoogleNet's unit. A ReLU runs fused into batch norm on the CPU backend.
#[derive(Module, Debug)]
pub struct ConvNormAct {
    pub conv: Convolution,
    pub bn: BatchNorm2d,
    #[module(skip)]
    pub act: Option<Act>,
}

impl ConvNormAct {
    /// A bias-free convolution initialised by `weight`, as torchvision's units are.
    pub fn new(
        spec: ConvSpec,
        weight: Init,
        norm: Norm,
        act: Option<Act>,
        device: &Device,
    ) -> Self {
        Self::with_conv(
            spec.init(weight, None, device),
            spec.c_out,
            norm,
            act,
            device,
        )
    }

    /// The unit around a convolution of `c_out` channels built otherwise (the CIFAR GoogleNet's
    /// have a bias).
    pub fn with_conv(
        conv: Convolution,
        c_out: usize,
        norm: Norm,
        act: Option<Act>,
        device: &Device,
    ) -> Self {
        Self {
            conv,
            bn: norm.init(c_out, device),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward_convolved(&self.conv, x, self.act)
    }
}

/// Squeeze-and-excitation (torchvision's `SqueezeExcitation`): the input scaled per channel by
/// `gate(fc2(act(fc1(mean over H, W))))`, where fc1 and fc2 are 1x1 convolutions with bias.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    pub fc1: Convolution,
    pub fc2: Convolution,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub gate: Act,
}

impl SqueezeExcitation {
    /// With torchvision's initialisation of the mobile networks: weights Kaiming fan-out,
    /// biases zero.
    pub fn new(channels: usize, squeeze: usize, act: Act, gate: Act, device: &Device) -> Self {
        let conv = |c_in, c_out| {
            ConvSpec::new(c_in, c_out, 1).init(Init::KAIMING_FAN_OUT, Some(Init::Zeros), device)
        };
        Self {
            fc1: conv(channels, squeeze),
            fc2: conv(squeeze, channels),
            act,
            gate,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let scale = self.fc1.forward(spatial_mean(x.clone()));
        let scale = self.gate.forward(self.fc2.forward(self.act.forward(scale)));
        x * scale
    }
}

/// Stochastic depth in torchvision's "row" mode: while training, each sample's residual branch is
/// dropped with probability `prob` and kept ones are scaled by 1 / (1 - prob); at inference, the
/// identity. Training is recognised as burn's `Dropout` recognises it: an autodiff device and a
/// module that is not frozen.
#[derive(Module, Debug)]
pub struct StochasticDepth {
    pub prob: f64,
    pub training: Param<Flag>,
}

impl StochasticDepth {
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "stochastic depth probability must lie in [0, 1), got {prob}"
        );
        Self {
            prob,
            training: Param::from_bool(true),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.prob == 0.0 || !self.training.is_enabled() || !x.device().is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        let [n, _, _, _] = x.dims();
        let noise = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
        x * (noise / keep)
    }
}
