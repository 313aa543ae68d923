//! The element-wise non-linearities of the zoo, chosen by name in configs.
use burn::prelude::*;
use burn::tensor::activation::{
    gelu, hard_sigmoid, hard_swish, leaky_relu, relu, relu6, sigmoid, silu, tanh,
};
use serde::{Deserialize, Serialize};

/// One activation function. burn's `Activation` module enum has no ReLU6 or SiLU and would make
/// every block carry a module for a function without weights, so the zoo uses this instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Act {
    #[default]
    Relu,
    /// Negative slope 0.01, PyTorch's default.
    LeakyRelu,
    Tanh,
    /// The exact (erf) form, as `torch.nn.GELU()`.
    Gelu,
    /// min(max(x, 0), 6), MobileNet v2's activation.
    Relu6,
    /// x * relu6(x + 3) / 6, as `nn.Hardswish`.
    HardSwish,
    /// relu6(x + 3) / 6, as `nn.Hardsigmoid`: MobileNet v3's squeeze-excitation gate.
    HardSigmoid,
    /// x * sigmoid(x), EfficientNet's activation.
    Silu,
    Sigmoid,
}

const LEAKY_RELU_SLOPE: f64 = 0.01;

impl Act {
    /// The activations a CIFAR model of the reference can be built with (SPEC §1).
    pub const REFERENCE: [Act; 4] = [Self::Relu, Self::LeakyRelu, Self::Tanh, Self::Gelu];

    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::LeakyRelu => "leakyrelu",
            Self::Tanh => "tanh",
            Self::Gelu => "gelu",
            Self::Relu6 => "relu6",
            Self::HardSwish => "hardswish",
            Self::HardSigmoid => "hardsigmoid",
            Self::Silu => "silu",
            Self::Sigmoid => "sigmoid",
        }
    }

    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => relu(x),
            Self::LeakyRelu => leaky_relu(x, LEAKY_RELU_SLOPE),
            Self::Tanh => tanh(x),
            Self::Gelu => gelu(x),
            Self::Relu6 => relu6(x),
            Self::HardSwish => hard_swish(x),
            Self::HardSigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
            Self::Silu => silu(x),
            Self::Sigmoid => sigmoid(x),
        }
    }

    /// The activation of a residual sum, `act(z + shortcut)`: for the ReLU one fused pass on
    /// the CPU backend (`residual::add_relu`), else its parallel add (`residual::add`).
    pub fn forward_residual<const D: usize>(self, z: Tensor<D>, shortcut: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => cnnzoo_flex_kernels::residual::add_relu(z, shortcut),
            _ => self.forward(cnnzoo_flex_kernels::residual::add(z, shortcut)),
        }
    }

    /// The gain `torch.nn.init.calculate_gain` gives this activation, which the reference passes
    /// to `kaiming_normal_`. PyTorch has no gain for GELU and the ReLU-like mobile activations;
    /// the reference's ReLU gain is the usual choice for them.
    pub fn kaiming_gain(self) -> f64 {
        match self {
            Self::LeakyRelu => (2.0 / (1.0 + LEAKY_RELU_SLOPE * LEAKY_RELU_SLOPE)).sqrt(),
            Self::Tanh => 5.0 / 3.0,
            Self::Sigmoid => 1.0,
            Self::Relu
            | Self::Gelu
            | Self::Relu6
            | Self::HardSwish
            | Self::HardSigmoid
            | Self::Silu => 2.0_f64.sqrt(),
        }
    }
}
