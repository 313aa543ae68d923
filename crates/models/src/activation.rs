use burn::nn::LeakyReluConfig;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

/// The activation functions the reference models can be built with, chosen by name in configs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ActivationKind {
    #[default]
    Relu,
    /// Negative slope 0.01, PyTorch's default.
    LeakyRelu,
    Tanh,
    /// The exact (erf) form, as `torch.nn.GELU()`.
    Gelu,
}

const LEAKY_RELU_SLOPE: f64 = 0.01;

impl ActivationKind {
    pub const ALL: [ActivationKind; 4] = [Self::Relu, Self::LeakyRelu, Self::Tanh, Self::Gelu];

    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::LeakyRelu => "leakyrelu",
            Self::Tanh => "tanh",
            Self::Gelu => "gelu",
        }
    }

    pub fn init(self, device: &Device) -> Activation {
        let config = match self {
            Self::Relu => ActivationConfig::Relu,
            Self::LeakyRelu => ActivationConfig::LeakyRelu(
                LeakyReluConfig::new().with_negative_slope(LEAKY_RELU_SLOPE),
            ),
            Self::Tanh => ActivationConfig::Tanh,
            Self::Gelu => ActivationConfig::Gelu,
        };
        config.init(device)
    }

    /// The gain `torch.nn.init.calculate_gain` gives this activation, which the reference passes to
    /// `kaiming_normal_`. PyTorch has no gain for GELU; the reference's ReLU gain is the usual choice.
    pub fn kaiming_gain(self) -> f64 {
        match self {
            Self::Relu | Self::Gelu => 2.0_f64.sqrt(),
            Self::LeakyRelu => (2.0 / (1.0 + LEAKY_RELU_SLOPE * LEAKY_RELU_SLOPE)).sqrt(),
            Self::Tanh => 5.0 / 3.0,
        }
    }
}
