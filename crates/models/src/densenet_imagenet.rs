//! DenseNet-121/161/169/201 as torchvision defines them (`torchvision.models.densenet`): a 7x7
//! stride-2 stem with a max-pool, four dense blocks of BN-ReLU-1x1-BN-ReLU-3x3 layers joined by
//! transitions (BN, ReLU, 1x1 halving the channels, 2x2 average pool), a final BN and ReLU,
//! global average pooling and `classifier`.
//!
//! Not the CIFAR DenseNet of `densenet.rs` with other numbers: torchvision concatenates each
//! layer's new features after its input (the CIFAR reference puts them first), which orders the
//! channels, and so every weight, differently.
//!
//! `cifar_stem` replaces the stem by a 3x3 stride-1 convolution without max-pool, for 32x32
//! images.
use crate::layers::BatchNorm2d;
use crate::layers::Conv2d;
use crate::layers::MaxPool2d;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::layers::torch_bn_leaf;
use crate::ops::{ConvSpec, Init, Norm, conv_leaf, global_pool, linear};

#[derive(Config, Debug)]
pub struct DenseNetImageNetConfig {
    /// Channels each dense layer adds (`k` in the paper).
    pub growth_rate: usize,
    /// Dense layers per block.
    pub block_config: Vec<usize>,
    /// Channels of the stem convolution.
    pub num_init_features: usize,
    /// The bottleneck 1x1 convolution outputs `bn_size * growth_rate` channels.
    #[config(default = 4)]
    pub bn_size: usize,
    /// Dropout on each layer's new features while training.
    #[config(default = 0.0)]
    pub drop_rate: f64,
    #[config(default = 1000)]
    pub num_classes: usize,
    /// A 3x3 stride-1 first convolution and no max-pool, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
}

impl DenseNetImageNetConfig {
    pub fn densenet121() -> Self {
        Self::new(32, vec![6, 12, 24, 16], 64)
    }

    pub fn densenet161() -> Self {
        Self::new(48, vec![6, 12, 36, 24], 96)
    }

    pub fn densenet169() -> Self {
        Self::new(32, vec![6, 12, 32, 32], 64)
    }

    pub fn densenet201() -> Self {
        Self::new(32, vec![6, 12, 48, 32], 64)
    }
}

/// torchvision's `_DenseLayer`: BN, ReLU, 1x1 conv, BN, ReLU, 3x3 conv; its output is the input
/// followed by the new features.
#[derive(Module, Debug)]
pub struct DenseLayer {
    pub norm1: BatchNorm2d,
    pub conv1: Conv2d,
    pub norm2: BatchNorm2d,
    pub conv2: Conv2d,
    pub dropout: Dropout,
}

impl DenseLayer {
    fn new(c_in: usize, config: &DenseNetImageNetConfig, device: &Device) -> Self {
        let c_mid = config.bn_size * config.growth_rate;
        Self {
            norm1: Norm::TORCH.init(c_in, device),
            conv1: ConvSpec::new(c_in, c_mid, 1).init(Init::KaimingFanIn, None, device),
            norm2: Norm::TORCH.init(c_mid, device),
            conv2: ConvSpec::new(c_mid, config.growth_rate, 3).init(
                Init::KaimingFanIn,
                None,
                device,
            ),
            dropout: DropoutConfig::new(config.drop_rate).init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let new = self.conv1.forward(relu(self.norm1.forward(x.clone())));
        let new = self.conv2.forward(relu(self.norm2.forward(new)));
        Tensor::cat(vec![x, self.dropout.forward(new)], 1)
    }
}

#[derive(Module, Debug)]
pub struct DenseBlock {
    /// torchvision's `denselayer1` ... `denselayerN`.
    pub layers: Vec<DenseLayer>,
}

/// BN, ReLU, 1x1 conv halving the channels, 2x2 average pool.
#[derive(Module, Debug)]
pub struct Transition {
    pub norm: BatchNorm2d,
    pub conv: Conv2d,
    pub pool: AvgPool2d,
}

#[derive(Module, Debug)]
pub struct DenseNetImageNet {
    pub conv0: Conv2d,
    pub norm0: BatchNorm2d,
    /// Absent with the CIFAR stem.
    pub pool0: Option<MaxPool2d>,
    /// torchvision's `denseblock1` ... `denseblock4`.
    pub blocks: Vec<DenseBlock>,
    /// torchvision's `transition1` ... `transition3`: one after every block but the last.
    pub transitions: Vec<Transition>,
    pub norm5: BatchNorm2d,
    pub classifier: Linear,
}

impl DenseNetImageNetConfig {
    pub fn init(&self, device: &Device) -> DenseNetImageNet {
        let c0 = self.num_init_features;
        let stem = if self.cifar_stem {
            ConvSpec::new(3, c0, 3)
        } else {
            ConvSpec::new(3, c0, 7).stride(2)
        };
        let mut channels = c0;
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (index, &count) in self.block_config.iter().enumerate() {
            let layers = (0..count)
                .map(|i| DenseLayer::new(channels + i * self.growth_rate, self, device))
                .collect();
            blocks.push(DenseBlock { layers });
            channels += count * self.growth_rate;
            if index + 1 < self.block_config.len() {
                transitions.push(Transition {
                    norm: Norm::TORCH.init(channels, device),
                    conv: ConvSpec::new(channels, channels / 2, 1).init(
                        Init::KaimingFanIn,
                        None,
                        device,
                    ),
                    pool: AvgPool2dConfig::new([2, 2]).init(),
                });
                channels /= 2;
            }
        }
        DenseNetImageNet {
            conv0: stem.init(Init::KaimingFanIn, None, device),
            norm0: Norm::TORCH.init(c0, device),
            pool0: (!self.cifar_stem).then(|| {
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init()
                    .into()
            }),
            blocks,
            transitions,
            norm5: Norm::TORCH.init(channels, device),
            classifier: linear(
                channels,
                self.num_classes,
                Init::TorchDefault,
                Init::Zeros,
                device,
            ),
        }
    }
}

impl DenseNetImageNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = relu(self.norm0.forward(self.conv0.forward(x)));
        if let Some(pool) = &self.pool0 {
            x = pool.forward(x);
        }
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.layers.iter().fold(x, |x, layer| layer.forward(x));
            if let Some(t) = self.transitions.get(index) {
                x = t.pool.forward(t.conv.forward(relu(t.norm.forward(x))));
            }
        }
        let x = relu(self.norm5.forward(x));
        self.classifier.forward(global_pool(x))
    }
}

/// Maps a torchvision `state_dict` key onto this module's parameter path: `features.` is
/// dropped, `denseblock{b}.denselayer{l}` -> `blocks.{b-1}.layers.{l-1}`, `transition{t}` ->
/// `transitions.{t-1}`; batch norms' `weight`/`bias` are burn's `gamma`/`beta`. The old key
/// spelling of torchvision's published checkpoints (`norm.1` for `norm1`, ...) is accepted too.
pub fn torch_key(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["classifier", leaf] => Some(format!("classifier.{}", conv_leaf(leaf)?)),
        ["features", module @ ("conv0" | "norm0" | "norm5"), leaf] => module_key(module, leaf),
        ["features", block, layer, rest @ ..] if block.starts_with("denseblock") => {
            let b = one_based(block, "denseblock")?;
            let l = one_based(layer, "denselayer")?;
            let path = match rest {
                [module @ ("norm1" | "conv1" | "norm2" | "conv2"), leaf] => {
                    module_key(module, leaf)?
                }
                [module @ ("norm" | "conv"), n @ ("1" | "2"), leaf] => {
                    module_key(&format!("{module}{n}"), leaf)?
                }
                _ => return None,
            };
            Some(format!("blocks.{b}.layers.{l}.{path}"))
        }
        ["features", transition, module @ ("norm" | "conv"), leaf] => {
            let t = one_based(transition, "transition")?;
            Some(format!("transitions.{t}.{}", module_key(module, leaf)?))
        }
        _ => None,
    }
}

/// `norm1.weight` -> `norm1.gamma`, `conv1.weight` -> `conv1.weight`: the convolutions have no
/// bias.
fn module_key(module: &str, leaf: &str) -> Option<String> {
    if module.starts_with("norm") {
        Some(format!("{module}.{}", torch_bn_leaf(leaf)?))
    } else {
        (leaf == "weight").then(|| format!("{module}.weight"))
    }
}

/// `denseblock3` -> 2.
fn one_based(name: &str, prefix: &str) -> Option<usize> {
    name.strip_prefix(prefix)?
        .parse::<usize>()
        .ok()?
        .checked_sub(1)
}
