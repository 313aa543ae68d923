//! MnasNet (the B1 variant) as torchvision defines it (`torchvision.models.mnasnet`): a 3x3
//! stride-2 stem, a depthwise-separable unit, six stacks of inverted residual blocks (3x3 or 5x5
//! depthwise, expansion 3 or 6, ReLU, no squeeze-excitation), a 1x1 convolution to 1280 channels,
//! global average pooling, dropout and the classifier. Batch norms use the TensorFlow momentum
//! 0.9997 (PyTorch momentum 0.0003). Channels scale with `alpha`.
//!
//! `cifar_stem` makes the stem stride 1 (there is no max-pool), so that a 32x32 image ends the
//! features at 2x2 rather than 1x1.
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;

use crate::layers::torch_names::{conv_leaf, conv_norm_key};
use crate::layers::{
    Act, ConvNormAct, ConvSpec, Init, InvertedResidual, InvertedResidualSpec, Norm, forward_stages,
    global_avg_pool, linear, make_divisible,
};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const VARIANTS: &[ModelEntry] = variants![ImageNet;
    "mnasnet1_0", "mnasnet", 224, "MnasNet-B1 1.0, torchvision" => ModelConfig::MnasNet(MnasNetConfig::mnasnet1_0());
];

const NORM: Norm = Norm {
    eps: 1e-5,
    momentum: 1.0 - 0.9997,
};

/// The stacks: kernel, stride of the first block, expansion, repeats.
const STACKS: [[usize; 4]; 6] = [
    [3, 2, 3, 3],
    [5, 2, 3, 3],
    [5, 2, 6, 3],
    [3, 1, 6, 2],
    [5, 2, 6, 4],
    [3, 1, 6, 1],
];

/// Channels at `alpha` = 1 of the stem, the separable unit and the six stacks.
const DEPTHS: [usize; 8] = [32, 16, 24, 40, 80, 96, 192, 320];

const HEAD_CHANNELS: usize = 1280;

#[derive(Config, Debug)]
pub struct MnasNetConfig {
    /// Width multiplier (`mnasnet1_0` has 1.0).
    #[config(default = 1.0)]
    pub alpha: f64,
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Dropout before the classifier while training.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// A stride-1 stem, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
}

impl MnasNetConfig {
    pub fn mnasnet1_0() -> Self {
        Self::new()
    }

    /// torchvision's `_get_depths`, whose `_round_to_multiple_of` is `make_divisible`.
    fn depths(&self) -> [usize; 8] {
        DEPTHS.map(|d| make_divisible(d as f64 * self.alpha, 8))
    }
}

#[derive(Module, Debug)]
pub struct MnasNet {
    /// torchvision's `layers.0`, `layers.1`.
    pub stem: ConvNormAct,
    /// `layers.3`, `layers.4`: 3x3 depthwise.
    pub separable_dw: ConvNormAct,
    /// `layers.6`, `layers.7`: 1x1, no activation.
    pub separable_pw: ConvNormAct,
    /// `layers.8` ... `layers.13`.
    pub stacks: Vec<Vec<InvertedResidual>>,
    /// `layers.14`, `layers.15`.
    pub head: ConvNormAct,
    pub dropout: Dropout,
    /// `classifier.1`.
    pub classifier: Linear,
}

impl MnasNetConfig {
    pub fn init(&self, device: &Device) -> MnasNet {
        let depths = self.depths();
        let unit =
            |spec: ConvSpec, act| ConvNormAct::new(spec, Init::KAIMING_FAN_OUT, NORM, act, device);
        let stride = if self.cifar_stem { 1 } else { 2 };
        let mut c_in = depths[1];
        let stacks = STACKS
            .iter()
            .zip(&depths[2..])
            .map(|(&[kernel, stride, expansion, repeats], &c_out)| {
                (0..repeats)
                    .map(|i| {
                        let spec = InvertedResidualSpec {
                            c_in,
                            c_expanded: c_in * expansion,
                            c_out,
                            kernel,
                            stride: if i == 0 { stride } else { 1 },
                            act: Act::Relu,
                            norm: NORM,
                        };
                        c_in = c_out;
                        InvertedResidual::new(spec, device)
                    })
                    .collect()
            })
            .collect();
        MnasNet {
            stem: unit(
                ConvSpec::new(3, depths[0], 3).stride(stride),
                Some(Act::Relu),
            ),
            separable_dw: unit(
                ConvSpec::new(depths[0], depths[0], 3).depthwise(),
                Some(Act::Relu),
            ),
            separable_pw: unit(ConvSpec::new(depths[0], depths[1], 1), None),
            stacks,
            head: unit(ConvSpec::new(depths[7], HEAD_CHANNELS, 1), Some(Act::Relu)),
            dropout: DropoutConfig::new(self.dropout).init(),
            // kaiming_uniform_(mode="fan_out", nonlinearity="sigmoid"): gain 1, fan-out = classes.
            classifier: linear(
                HEAD_CHANNELS,
                self.num_classes,
                Init::Uniform((3.0 / self.num_classes as f64).sqrt()),
                Init::Zeros,
                device,
            ),
        }
    }
}

impl MnasNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.stem.forward(x);
        let x = self.separable_pw.forward(self.separable_dw.forward(x));
        let x = forward_stages(&self.stacks, x);
        let x = global_avg_pool(self.head.forward(x));
        self.classifier.forward(self.dropout.forward(x))
    }
}

impl MnasNetConfig {
    /// Maps a torchvision `state_dict` key onto this module's parameter path. torchvision's `layers`
    /// sequential holds conv, BN, ReLU entries at the top and the stacks at 8 to 13: `layers.{0,1}`
    /// -> `stem`, `{3,4}` -> `separable_dw`, `{6,7}` -> `separable_pw`, `{14,15}` -> `head`;
    /// `layers.(8+s).r.layers.{0,1,3,4,6,7}` -> `stacks.s.r.{expand,depthwise,project}`;
    /// `classifier.1` -> `classifier`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["classifier", "1", leaf] => Some(format!("classifier.{}", conv_leaf(leaf)?)),
            ["layers", index, leaf] => {
                let (name, sub) = conv_bn_pair(index.parse().ok()?, &TOP_UNITS)?;
                conv_norm_key(name, &sub.to_string(), leaf)
            }
            ["layers", stack, repeat, "layers", index, leaf] => {
                let s = stack.parse::<usize>().ok()?.checked_sub(8)?;
                if s >= STACKS.len() {
                    return None;
                }
                let (name, sub) = conv_bn_pair(index.parse().ok()?, &BLOCK_UNITS)?;
                let path = conv_norm_key(name, &sub.to_string(), leaf)?;
                Some(format!("stacks.{s}.{repeat}.{path}"))
            }
            _ => None,
        }
    }
}

/// Where each conv-BN unit starts in torchvision's sequentials.
const TOP_UNITS: [(usize, &str); 4] = [
    (0, "stem"),
    (3, "separable_dw"),
    (6, "separable_pw"),
    (14, "head"),
];
const BLOCK_UNITS: [(usize, &str); 3] = [(0, "expand"), (3, "depthwise"), (6, "project")];

/// The unit a sequential index belongs to, and 0 for its conv or 1 for its batch norm.
fn conv_bn_pair(index: usize, units: &[(usize, &'static str)]) -> Option<(&'static str, usize)> {
    units
        .iter()
        .find(|(start, _)| index == *start || index == start + 1)
        .map(|&(start, name)| (name, index - start))
}
