//! The CIFAR-10 DenseNet of the reference (SPEC §1): four dense blocks of bottleneck layers joined
//! by transition layers that halve channels and resolution.
//!
//! DenseNet-121/161/169/201 as torchvision defines them (`torchvision.models.densenet`): a 7x7
//! stride-2 stem with a max-pool, four dense blocks of BN-ReLU-1x1-BN-ReLU-3x3 layers joined by
//! transitions (BN, ReLU, 1x1 halving the channels, 2x2 average pool), a final BN and ReLU,
//! global average pooling and `classifier`.
//!
//! Not the CIFAR DenseNet with other numbers: torchvision concatenates each
//! layer's new features after its input (the CIFAR reference puts them first), which orders the
//! channels, and so every weight, differently.
//!
//! `cifar_stem` replaces the stem by a 3x3 stride-1 convolution without max-pool, for 32x32
//! images.
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;

use crate::layers::torch_names::{conv_leaf, preact_sequential, torch_bn_leaf, torch_leaf};
use crate::layers::{
    Act, BatchNorm2d, ConvSpec, Convolution, FanMode, Init, MaxPooling, Norm, global_avg_pool,
    linear,
};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const CIFAR_VARIANTS: &[ModelEntry] = variants![Cifar10;
    "densenet", "densenet", 32, "DenseNet, CIFAR variant (4x6 layers, growth 16)"
        => ModelConfig::DenseNet(DenseNetCifarConfig::new()), reference(90.72, 90.23), recipe("densenet.toml");
];

pub const IMAGENET_VARIANTS: &[ModelEntry] = variants![ImageNet;
    "densenet121", "densenet", 224, "DenseNet-121, torchvision" => ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet121());
    "densenet161", "densenet", 224, "DenseNet-161, torchvision" => ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet161());
    "densenet169", "densenet", 224, "DenseNet-169, torchvision" => ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet169());
    "densenet201", "densenet", 224, "DenseNet-201, torchvision" => ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet201());
];

#[derive(Config, Debug)]
pub struct DenseNetCifarConfig {
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "Act::Relu")]
    pub activation: Act,
    /// Dense layers in each block.
    #[config(default = "vec![6, 6, 6, 6]")]
    pub num_layers: Vec<usize>,
    /// The bottleneck 1x1 convolution outputs `bn_size * growth_rate` channels.
    #[config(default = 2)]
    pub bn_size: usize,
    /// Channels each dense layer adds.
    #[config(default = 16)]
    pub growth_rate: usize,
}

/// BN, act, 1x1 conv to `bn_size * growth`, BN, act, 3x3 conv to `growth`; the new features are
/// concatenated in front of the input.
#[derive(Module, Debug)]
pub struct DenseLayerCifar {
    pub bn1: BatchNorm2d,
    pub conv1: Convolution,
    pub bn2: BatchNorm2d,
    pub conv2: Convolution,
    #[module(skip)]
    pub act: Act,
}

impl DenseLayerCifar {
    fn new(c_in: usize, config: &DenseNetCifarConfig, init: Init, device: &Device) -> Self {
        let c_mid = config.bn_size * config.growth_rate;
        Self {
            bn1: Norm::TORCH.init(c_in, device),
            conv1: ConvSpec::new(c_in, c_mid, 1).init(init, None, device),
            bn2: Norm::TORCH.init(c_mid, device),
            conv2: ConvSpec::new(c_mid, config.growth_rate, 3).init(init, None, device),
            act: config.activation,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self.bn1.forward_into(x.clone(), self.act, &self.conv1);
        let z = self.bn2.forward_into(z, self.act, &self.conv2);
        Tensor::cat(vec![z, x], 1)
    }
}

#[derive(Module, Debug)]
pub struct DenseBlockCifar {
    pub layers: Vec<DenseLayerCifar>,
}

impl DenseBlockCifar {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layers.iter().fold(x, |x, layer| layer.forward(x))
    }
}

/// BN, act, 1x1 conv halving the channels, 2x2 average pool.
#[derive(Module, Debug)]
pub struct TransitionLayer {
    pub bn: BatchNorm2d,
    pub conv: Convolution,
    pub pool: AvgPool2d,
    #[module(skip)]
    pub act: Act,
}

impl TransitionLayer {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool
            .forward(self.bn.forward_into(x, self.act, &self.conv))
    }
}

#[derive(Module, Debug)]
pub struct DenseNetCifar {
    pub input_conv: Convolution,
    pub blocks: Vec<DenseBlockCifar>,
    /// One fewer than `blocks`: a transition follows every block but the last.
    pub transitions: Vec<TransitionLayer>,
    pub output_bn: BatchNorm2d,
    pub output_net: Linear,
    #[module(skip)]
    pub act: Act,
}

/// The dense blocks and the transitions between them, as both DenseNets lay them out: block `b`
/// holds `counts[b]` layers, each made by `layer` for its input channels and adding `growth`
/// channels, and a transition made by `transition` for the channels halves them after every
/// block but the last. Returns each block's layers, the transitions and the final channels.
fn dense_stages<L, T>(
    mut channels: usize,
    counts: &[usize],
    growth: usize,
    layer: impl Fn(usize) -> L,
    transition: impl Fn(usize) -> T,
) -> (Vec<Vec<L>>, Vec<T>, usize) {
    let mut blocks = Vec::new();
    let mut transitions = Vec::new();
    for (index, &count) in counts.iter().enumerate() {
        blocks.push((0..count).map(|i| layer(channels + i * growth)).collect());
        channels += count * growth;
        if index + 1 < counts.len() {
            transitions.push(transition(channels));
            channels /= 2;
        }
    }
    (blocks, transitions, channels)
}

impl DenseNetCifarConfig {
    pub fn init(&self, device: &Device) -> DenseNetCifar {
        let init = Init::kaiming(self.activation, FanMode::FanIn);
        let channels = self.growth_rate * self.bn_size;
        let input_conv = ConvSpec::new(3, channels, 3).init(init, Some(Init::TorchDefault), device);
        let (blocks, transitions, channels) = dense_stages(
            channels,
            &self.num_layers,
            self.growth_rate,
            |c_in| DenseLayerCifar::new(c_in, self, init, device),
            |c| TransitionLayer {
                bn: Norm::TORCH.init(c, device),
                conv: ConvSpec::new(c, c / 2, 1).init(init, None, device),
                pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                act: self.activation,
            },
        );
        DenseNetCifar {
            input_conv,
            blocks: blocks
                .into_iter()
                .map(|layers| DenseBlockCifar { layers })
                .collect(),
            transitions,
            output_bn: Norm::TORCH.init(channels, device),
            output_net: LinearConfig::new(channels, self.num_classes).init(device),
            act: self.activation,
        }
    }
}

impl DenseNetCifar {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.input_conv.forward(x);
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if let Some(transition) = self.transitions.get(index) {
                x = transition.forward(x);
            }
        }
        let x = self.output_bn.forward_activated(x, self.act);
        self.output_net.forward(global_avg_pool(x))
    }
}

impl DenseNetCifarConfig {
    /// Maps a reference PyTorch `state_dict` key onto this module's parameter path.
    ///
    /// The reference interleaves blocks and transitions in one `blocks` sequence, so `blocks.2k` ->
    /// `blocks.k` and `blocks.2k+1` -> `transitions.k`; within them `block.j.net.{0,2,3,5}` ->
    /// `layers.j.{bn1,conv1,bn2,conv2}` and `transition.{0,2}` -> `{bn,conv}`; `input_net.0` ->
    /// `input_conv`, `output_net.0` -> `output_bn`, `output_net.4` -> `output_net`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        Some(match parts.as_slice() {
            ["input_net", "0", leaf @ ("weight" | "bias")] => format!("input_conv.{leaf}"),
            ["output_net", "0", leaf] => format!("output_bn.{}", torch_bn_leaf(leaf)?),
            ["output_net", "4", leaf @ ("weight" | "bias")] => format!("output_net.{leaf}"),
            ["blocks", i, "block", j, "net", layer, leaf] => {
                let i: usize = i.parse().ok()?;
                if !i.is_multiple_of(2) {
                    return None;
                }
                let name = preact_sequential(layer)?;
                format!(
                    "blocks.{}.layers.{j}.{name}.{}",
                    i / 2,
                    torch_leaf(name, leaf)?
                )
            }
            ["blocks", i, "transition", layer, leaf] => {
                let i: usize = i.parse().ok()?;
                if i % 2 != 1 {
                    return None;
                }
                let name = match *layer {
                    "0" => "bn",
                    "2" => "conv",
                    _ => return None,
                };
                format!("transitions.{}.{name}.{}", i / 2, torch_leaf(name, leaf)?)
            }
            _ => return None,
        })
    }
}

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
    pub conv1: Convolution,
    pub norm2: BatchNorm2d,
    pub conv2: Convolution,
    pub dropout: Dropout,
}

impl DenseLayer {
    fn new(c_in: usize, config: &DenseNetImageNetConfig, device: &Device) -> Self {
        let c_mid = config.bn_size * config.growth_rate;
        Self {
            norm1: Norm::TORCH.init(c_in, device),
            conv1: ConvSpec::new(c_in, c_mid, 1).init(Init::KAIMING_FAN_IN, None, device),
            norm2: Norm::TORCH.init(c_mid, device),
            conv2: ConvSpec::new(c_mid, config.growth_rate, 3).init(
                Init::KAIMING_FAN_IN,
                None,
                device,
            ),
            dropout: DropoutConfig::new(config.drop_rate).init(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let new = self
            .conv1
            .forward(self.norm1.forward_activated(x.clone(), Act::Relu));
        let new = self
            .conv2
            .forward(self.norm2.forward_activated(new, Act::Relu));
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
    pub conv: Convolution,
    pub pool: AvgPool2d,
}

#[derive(Module, Debug)]
pub struct DenseNetImageNet {
    pub conv0: Convolution,
    pub norm0: BatchNorm2d,
    /// Absent with the CIFAR stem.
    pub pool0: Option<MaxPooling>,
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
        let stem = ConvSpec::new(3, c0, 7)
            .stride(2)
            .or_cifar_stem(self.cifar_stem);
        let (blocks, transitions, channels) = dense_stages(
            c0,
            &self.block_config,
            self.growth_rate,
            |c_in| DenseLayer::new(c_in, self, device),
            |c| Transition {
                norm: Norm::TORCH.init(c, device),
                conv: ConvSpec::new(c, c / 2, 1).init(Init::KAIMING_FAN_IN, None, device),
                pool: AvgPool2dConfig::new([2, 2]).init(),
            },
        );
        DenseNetImageNet {
            conv0: stem.init(Init::KAIMING_FAN_IN, None, device),
            norm0: Norm::TORCH.init(c0, device),
            pool0: (!self.cifar_stem).then(|| MaxPooling::new(3, 2, 1)),
            blocks: blocks
                .into_iter()
                .map(|layers| DenseBlock { layers })
                .collect(),
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
        let mut x = self
            .norm0
            .forward_activated(self.conv0.forward(x), Act::Relu);
        if let Some(pool) = &self.pool0 {
            x = pool.forward(x);
        }
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.layers.iter().fold(x, |x, layer| layer.forward(x));
            if let Some(t) = self.transitions.get(index) {
                x = t
                    .pool
                    .forward(t.conv.forward(t.norm.forward_activated(x, Act::Relu)));
            }
        }
        let x = self.norm5.forward_activated(x, Act::Relu);
        self.classifier.forward(global_avg_pool(x))
    }
}

impl DenseNetImageNetConfig {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: `features.` is
    /// dropped, `denseblock{b}.denselayer{l}` -> `blocks.{b-1}.layers.{l-1}`, `transition{t}` ->
    /// `transitions.{t-1}`; batch norms' `weight`/`bias` are burn's `gamma`/`beta`. The old key
    /// spelling of torchvision's published checkpoints (`norm.1` for `norm1`, ...) is accepted too.
    pub fn torch_key(&self, key: &str) -> Option<String> {
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
