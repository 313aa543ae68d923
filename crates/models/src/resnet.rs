//! The CIFAR-10 ResNet of the reference (SPEC §1) in its two forms: the original post-activation
//! block (`ResNetBlock`) and the pre-activation block (`PreActResNetBlock`), three groups of
//! blocks at 16, 32 and 64 channels.
//!
//! ResNet-18/34/50/101/152 and ResNeXt-50 32x4d as torchvision defines them
//! (`torchvision.models.resnet`): a 7x7 stride-2 stem and a 3x3 stride-2 max-pool, four stages of
//! residual blocks at 64, 128, 256, 512 planes (each stage after the first halves the resolution
//! in its first block), global average pooling and `fc`. The basic block (two 3x3 convolutions)
//! and the bottleneck block (1x1 reduce, 3x3 grouped, 1x1 expand x4) share one definition; ResNeXt
//! is the bottleneck network with grouped 3x3 convolutions.
//!
//! `cifar_stem` replaces the stem by a 3x3 stride-1 convolution without max-pool, so that a
//! 32x32 image reaches the last stage at 4x4 instead of 1x1.
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layers::torch_names::{conv_leaf, preact_sequential, torch_bn_leaf, torch_leaf};
use crate::layers::{
    Act, BatchNorm2d, ConvSpec, Convolution, FanMode, Init, MaxPooling, Norm, StochasticDepth,
    global_avg_pool, linear,
};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const CIFAR_VARIANTS: &[ModelEntry] = variants![Cifar10;
    "resnet", "resnet", 32, "ResNet-20, CIFAR variant"
        => ModelConfig::ResNet(ResNetCifarConfig::new()), reference(91.84, 91.06), recipe("resnet.toml");
    "resnet_preact", "resnet", 32, "Pre-activation ResNet-20, CIFAR variant"
        => ModelConfig::ResNet(ResNetCifarConfig::new().with_block(BlockKind::PreAct)),
        reference(91.80, 91.07), recipe("resnet_preact.toml");
];

pub const IMAGENET_VARIANTS: &[ModelEntry] = variants![ImageNet;
    "resnet18", "resnet", 224, "ResNet-18, torchvision (basic blocks)"
        => ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet18()), recipe("resnet18.toml");
    "resnet34", "resnet", 224, "ResNet-34, torchvision (basic blocks)" => ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet34());
    "resnet50", "resnet", 224, "ResNet-50, torchvision (bottleneck blocks)" => ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet50());
    "resnet101", "resnet", 224, "ResNet-101, torchvision (bottleneck blocks)" => ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet101());
    "resnet152", "resnet", 224, "ResNet-152, torchvision (bottleneck blocks)" => ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet152());
    "resnext50_32x4d", "resnext", 224, "ResNeXt-50 32x4d, torchvision (grouped bottleneck blocks)"
        => ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnext50_32x4d());
];

/// Which residual block the network is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// conv-BN-act-conv-BN, activation after the sum.
    #[default]
    Standard,
    /// BN-act-conv-BN-act-conv, nothing after the sum.
    PreAct,
}

#[derive(Config, Debug)]
pub struct ResNetCifarConfig {
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "Act::Relu")]
    pub activation: Act,
    #[config(default = "BlockKind::Standard")]
    pub block: BlockKind,
    /// Blocks per group; every group after the first starts by halving the resolution.
    #[config(default = "vec![3, 3, 3]")]
    pub num_blocks: Vec<usize>,
    /// Channels per group.
    #[config(default = "vec![16, 32, 64]")]
    pub channels: Vec<usize>,
    /// Stochastic depth (drop-path): while training, block i of n drops its residual branch per
    /// image with probability `drop_path * i / n`, torchvision's linear rule; 0 is off.
    #[config(default = 0.0)]
    pub drop_path: f64,
}

/// Where a block changes channels and halves the resolution, the shortcut needs a projection.
#[derive(Clone, Copy, Debug)]
struct BlockShape {
    c_in: usize,
    c_out: usize,
    subsample: bool,
}

impl BlockShape {
    /// The block's two 3x3 convolutions without bias, the first strided when subsampling.
    fn convs(&self, init: Init, device: &Device) -> [Convolution; 2] {
        let stride = if self.subsample { 2 } else { 1 };
        [
            ConvSpec::new(self.c_in, self.c_out, 3).stride(stride),
            ConvSpec::new(self.c_out, self.c_out, 3),
        ]
        .map(|spec| spec.init(init, None, device))
    }

    /// The shortcut's 1x1 stride-2 projection, where the block subsamples.
    fn projection(&self) -> Option<ConvSpec> {
        self.subsample
            .then(|| ConvSpec::new(self.c_in, self.c_out, 1).stride(2))
    }
}

/// out = act(BN(conv(act(BN(conv(x))))) + shortcut(x)).
#[derive(Module, Debug)]
pub struct ResNetBlock {
    pub conv1: Convolution,
    pub bn1: BatchNorm2d,
    pub conv2: Convolution,
    pub bn2: BatchNorm2d,
    /// 1x1 stride-2 convolution (with bias, as in the reference) when subsampling.
    pub downsample: Option<Convolution>,
    pub drop_path: Option<StochasticDepth>,
    #[module(skip)]
    pub act: Act,
}

/// Stochastic depth of one residual branch, none at probability 0.
fn drop_path(prob: f64) -> Option<StochasticDepth> {
    (prob > 0.0).then(|| StochasticDepth::new(prob))
}

/// The residual branch through stochastic depth, if the block has it.
fn branch(z: Tensor<4>, drop_path: &Option<StochasticDepth>) -> Tensor<4> {
    match drop_path {
        Some(drop) => drop.forward(z),
        None => z,
    }
}

impl ResNetBlock {
    fn new(shape: BlockShape, act: Act, init: Init, drop: f64, device: &Device) -> Self {
        let [conv1, conv2] = shape.convs(init, device);
        Self {
            conv1,
            bn1: Norm::TORCH.init(shape.c_out, device),
            conv2,
            bn2: Norm::TORCH.init(shape.c_out, device),
            downsample: shape
                .projection()
                .map(|spec| spec.init(init, Some(Init::TorchDefault), device)),
            drop_path: drop_path(drop),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self
            .bn1
            .forward_convolved(&self.conv1, x.clone(), Some(self.act));
        let shortcut = match &self.downsample {
            Some(conv) => conv.forward(x),
            None => x,
        };
        if self.drop_path.is_none() {
            return self
                .bn2
                .forward_convolved_residual(&self.conv2, z, shortcut, self.act);
        }
        let z = branch(
            self.bn2.forward_convolved(&self.conv2, z, None),
            &self.drop_path,
        );
        self.act.forward_residual(z, shortcut)
    }
}

/// The pre-activation shortcut projection: BN, act, 1x1 stride-2 convolution without bias.
#[derive(Module, Debug)]
pub struct PreActDownsample {
    pub bn: BatchNorm2d,
    pub conv: Convolution,
}

/// out = conv(act(BN(conv(act(BN(x)))))) + shortcut(x).
#[derive(Module, Debug)]
pub struct PreActResNetBlock {
    pub bn1: BatchNorm2d,
    pub conv1: Convolution,
    pub bn2: BatchNorm2d,
    pub conv2: Convolution,
    pub downsample: Option<PreActDownsample>,
    pub drop_path: Option<StochasticDepth>,
    #[module(skip)]
    pub act: Act,
}

impl PreActResNetBlock {
    fn new(shape: BlockShape, act: Act, init: Init, drop: f64, device: &Device) -> Self {
        let [conv1, conv2] = shape.convs(init, device);
        Self {
            bn1: Norm::TORCH.init(shape.c_in, device),
            conv1,
            bn2: Norm::TORCH.init(shape.c_out, device),
            conv2,
            downsample: shape.projection().map(|spec| PreActDownsample {
                bn: Norm::TORCH.init(shape.c_in, device),
                conv: spec.init(init, None, device),
            }),
            drop_path: drop_path(drop),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self.bn1.forward_into(x.clone(), self.act, &self.conv1);
        let shortcut = match &self.downsample {
            Some(down) => down.bn.forward_into(x, self.act, &down.conv),
            None => x,
        };
        if self.drop_path.is_none() {
            return self
                .bn2
                .forward_into_residual(z, self.act, &self.conv2, shortcut);
        }
        let z = branch(
            self.bn2.forward_into(z, self.act, &self.conv2),
            &self.drop_path,
        );
        cnnzoo_flex_kernels::residual::add(z, shortcut)
    }
}

/// One residual block of either kind. The variants differ in size by a few hundred bytes of
/// module metadata; a network holds nine of them, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlockCifar {
    Standard(ResNetBlock),
    PreAct(PreActResNetBlock),
}

impl ResidualBlockCifar {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Standard(block) => block.forward(x),
            Self::PreAct(block) => block.forward(x),
        }
    }
}

#[derive(Module, Debug)]
pub struct ResNetCifar {
    pub input_conv: Convolution,
    /// BN and activation after the stem, which the pre-activation network leaves to its first block.
    pub input_bn: Option<BatchNorm2d>,
    pub blocks: Vec<ResidualBlockCifar>,
    pub output_net: Linear,
    #[module(skip)]
    pub act: Act,
}

impl ResNetCifarConfig {
    pub fn init(&self, device: &Device) -> ResNetCifar {
        let init = Init::kaiming(self.activation, FanMode::FanOut);
        let c_stem = self.channels[0];
        let mut blocks = Vec::new();
        let mut c_in = c_stem;
        let total: usize = self.num_blocks.iter().sum();
        for (group, (&count, &c_out)) in self.num_blocks.iter().zip(&self.channels).enumerate() {
            for index in 0..count {
                let shape = BlockShape {
                    c_in,
                    c_out,
                    subsample: group > 0 && index == 0,
                };
                let drop = self.drop_path * blocks.len() as f64 / total as f64;
                let act = self.activation;
                blocks.push(match self.block {
                    BlockKind::Standard => ResidualBlockCifar::Standard(ResNetBlock::new(
                        shape, act, init, drop, device,
                    )),
                    BlockKind::PreAct => ResidualBlockCifar::PreAct(PreActResNetBlock::new(
                        shape, act, init, drop, device,
                    )),
                });
                c_in = c_out;
            }
        }
        ResNetCifar {
            input_conv: ConvSpec::new(3, c_stem, 3).init(init, None, device),
            input_bn: (self.block == BlockKind::Standard).then(|| Norm::TORCH.init(c_stem, device)),
            blocks,
            output_net: LinearConfig::new(c_in, self.num_classes).init(device),
            act: self.activation,
        }
    }
}

impl ResNetCifar {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = match &self.input_bn {
            Some(bn) => bn.forward_convolved(&self.input_conv, x, Some(self.act)),
            None => self.input_conv.forward(x),
        };
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.output_net.forward(global_avg_pool(x))
    }
}

impl ResNetCifarConfig {
    /// Maps a reference PyTorch `state_dict` key onto this module's parameter path.
    ///
    /// The reference's `nn.Sequential` indices count activations too: `input_net.{0,1}` ->
    /// `input_conv`/`input_bn`; a standard block's `net.{0,1,3,4}` -> `conv1, bn1, conv2, bn2` and
    /// `downsample` -> `downsample`; a pre-activation block's `net.{0,2,3,5}` -> `bn1, conv1, bn2,
    /// conv2` and `downsample.{0,2}` -> `downsample.{bn,conv}`; `output_net.2` -> `output_net`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let block = self.block;
        let parts: Vec<&str> = key.split('.').collect();
        Some(match (block, parts.as_slice()) {
            (_, ["input_net", "0", "weight"]) => "input_conv.weight".into(),
            (BlockKind::Standard, ["input_net", "1", leaf]) => {
                format!("input_bn.{}", torch_bn_leaf(leaf)?)
            }
            (_, ["output_net", "2", leaf]) => format!("output_net.{leaf}"),
            (BlockKind::Standard, ["blocks", i, "net", layer, leaf]) => {
                let name = match *layer {
                    "0" => "conv1",
                    "1" => "bn1",
                    "3" => "conv2",
                    "4" => "bn2",
                    _ => return None,
                };
                format!("blocks.{i}.Standard.{name}.{}", torch_leaf(name, leaf)?)
            }
            (BlockKind::Standard, ["blocks", i, "downsample", leaf @ ("weight" | "bias")]) => {
                format!("blocks.{i}.Standard.downsample.{leaf}")
            }
            (BlockKind::PreAct, ["blocks", i, "net", layer, leaf]) => {
                let name = preact_sequential(layer)?;
                format!("blocks.{i}.PreAct.{name}.{}", torch_leaf(name, leaf)?)
            }
            (BlockKind::PreAct, ["blocks", i, "downsample", layer, leaf]) => {
                let name = match *layer {
                    "0" => "bn",
                    "2" => "conv",
                    _ => return None,
                };
                format!(
                    "blocks.{i}.PreAct.downsample.{name}.{}",
                    torch_leaf(name, leaf)?
                )
            }
            _ => return None,
        })
    }
}

/// The residual block a network is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResidualKind {
    /// Two 3x3 convolutions; output channels = planes.
    Basic,
    /// 1x1, 3x3 (grouped), 1x1; output channels = 4 x planes.
    Bottleneck,
}

impl ResidualKind {
    fn expansion(self) -> usize {
        match self {
            Self::Basic => 1,
            Self::Bottleneck => 4,
        }
    }
}

#[derive(Config, Debug)]
pub struct ResNetImageNetConfig {
    pub block: ResidualKind,
    /// Blocks per stage; stage `i` has 64 x 2^i planes.
    pub layers: Vec<usize>,
    /// Groups of the bottleneck's 3x3 convolution (ResNeXt's cardinality).
    #[config(default = 1)]
    pub groups: usize,
    /// Channels per group of the bottleneck's 3x3 convolution at 64 planes.
    #[config(default = 64)]
    pub width_per_group: usize,
    #[config(default = 1000)]
    pub num_classes: usize,
    /// A 3x3 stride-1 first convolution and no max-pool, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
}

impl ResNetImageNetConfig {
    pub fn resnet18() -> Self {
        Self::new(ResidualKind::Basic, vec![2, 2, 2, 2])
    }

    pub fn resnet34() -> Self {
        Self::new(ResidualKind::Basic, vec![3, 4, 6, 3])
    }

    pub fn resnet50() -> Self {
        Self::new(ResidualKind::Bottleneck, vec![3, 4, 6, 3])
    }

    pub fn resnet101() -> Self {
        Self::new(ResidualKind::Bottleneck, vec![3, 4, 23, 3])
    }

    pub fn resnet152() -> Self {
        Self::new(ResidualKind::Bottleneck, vec![3, 8, 36, 3])
    }

    pub fn resnext50_32x4d() -> Self {
        Self::resnet50().with_groups(32).with_width_per_group(4)
    }
}

/// The 1x1 (strided) convolution and batch norm that project the shortcut where a block changes
/// shape: torchvision's `downsample.0`, `downsample.1`.
#[derive(Module, Debug)]
pub struct Projection {
    pub conv: Convolution,
    pub bn: BatchNorm2d,
}

/// A basic or bottleneck block, with torchvision's field names. The bottleneck alone has
/// `conv3`/`bn3`, and its stride sits on the 3x3 `conv2`; the basic block's on `conv1`.
/// out = relu(bn_last(conv_last(...relu(bn1(conv1(x))))) + shortcut(x)).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub conv1: Convolution,
    pub bn1: BatchNorm2d,
    pub conv2: Convolution,
    pub bn2: BatchNorm2d,
    pub conv3: Option<Convolution>,
    pub bn3: Option<BatchNorm2d>,
    pub downsample: Option<Projection>,
}

impl ResidualBlock {
    fn new(
        config: &ResNetImageNetConfig,
        c_in: usize,
        planes: usize,
        stride: usize,
        device: &Device,
    ) -> Self {
        let conv = |spec: ConvSpec| spec.init(Init::KAIMING_FAN_OUT, None, device);
        let bn = |c| Norm::TORCH.init(c, device);
        let c_out = planes * config.block.expansion();
        let downsample = (stride != 1 || c_in != c_out).then(|| Projection {
            conv: conv(ConvSpec::new(c_in, c_out, 1).stride(stride)),
            bn: bn(c_out),
        });
        match config.block {
            ResidualKind::Basic => Self {
                conv1: conv(ConvSpec::new(c_in, planes, 3).stride(stride)),
                bn1: bn(planes),
                conv2: conv(ConvSpec::new(planes, planes, 3)),
                bn2: bn(planes),
                conv3: None,
                bn3: None,
                downsample,
            },
            ResidualKind::Bottleneck => {
                let width = planes * config.width_per_group / 64 * config.groups;
                Self {
                    conv1: conv(ConvSpec::new(c_in, width, 1)),
                    bn1: bn(width),
                    conv2: conv(
                        ConvSpec::new(width, width, 3)
                            .stride(stride)
                            .groups(config.groups),
                    ),
                    bn2: bn(width),
                    conv3: Some(conv(ConvSpec::new(width, c_out, 1))),
                    bn3: Some(bn(c_out)),
                    downsample,
                }
            }
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self
            .bn1
            .forward_convolved(&self.conv1, x.clone(), Some(Act::Relu));
        let shortcut = match &self.downsample {
            Some(projection) => projection.bn.forward_convolved(&projection.conv, x, None),
            None => x,
        };
        match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let out = self
                    .bn2
                    .forward_convolved(&self.conv2, out, Some(Act::Relu));
                bn3.forward_convolved_residual(conv3, out, shortcut, Act::Relu)
            }
            _ => self
                .bn2
                .forward_convolved_residual(&self.conv2, out, shortcut, Act::Relu),
        }
    }
}

#[derive(Module, Debug)]
pub struct ResNetImageNet {
    pub conv1: Convolution,
    pub bn1: BatchNorm2d,
    /// Absent with the CIFAR stem.
    pub maxpool: Option<MaxPooling>,
    /// torchvision's `layer1` ... `layer4`.
    pub layers: Vec<Vec<ResidualBlock>>,
    pub fc: Linear,
}

const STEM_CHANNELS: usize = 64;

impl ResNetImageNetConfig {
    pub fn init(&self, device: &Device) -> ResNetImageNet {
        let stem = ConvSpec::new(3, STEM_CHANNELS, 7)
            .stride(2)
            .or_cifar_stem(self.cifar_stem);
        let mut c_in = STEM_CHANNELS;
        let mut layers = Vec::new();
        for (stage, &count) in self.layers.iter().enumerate() {
            let planes = STEM_CHANNELS << stage;
            let blocks = (0..count)
                .map(|index| {
                    let stride = if stage > 0 && index == 0 { 2 } else { 1 };
                    let block = ResidualBlock::new(self, c_in, planes, stride, device);
                    c_in = planes * self.block.expansion();
                    block
                })
                .collect();
            layers.push(blocks);
        }
        ResNetImageNet {
            conv1: stem.init(Init::KAIMING_FAN_OUT, None, device),
            bn1: Norm::TORCH.init(STEM_CHANNELS, device),
            maxpool: (!self.cifar_stem).then(|| MaxPooling::new(3, 2, 1)),
            layers,
            fc: linear(
                c_in,
                self.num_classes,
                Init::TorchDefault,
                Init::TorchDefault,
                device,
            ),
        }
    }
}

impl ResNetImageNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.bn1.forward_convolved(&self.conv1, x, Some(Act::Relu));
        if let Some(pool) = &self.maxpool {
            x = pool.forward(x);
        }
        for block in self.layers.iter().flatten() {
            x = block.forward(x);
        }
        self.fc.forward(global_avg_pool(x))
    }
}

impl ResNetImageNetConfig {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: the names are
    /// torchvision's except `layer{k}.i` -> `layers.{k-1}.i` and `downsample.{0,1}` ->
    /// `downsample.{conv,bn}`; batch norms' `weight`/`bias` are burn's `gamma`/`beta`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        Some(match parts.as_slice() {
            ["conv1", "weight"] => "conv1.weight".into(),
            ["bn1", leaf] => format!("bn1.{}", torch_bn_leaf(leaf)?),
            ["fc", leaf] => format!("fc.{}", conv_leaf(leaf)?),
            [layer, index, rest @ ..] => {
                let stage: usize = layer.strip_prefix("layer")?.parse().ok()?;
                let block = format!("layers.{}.{index}", stage.checked_sub(1)?);
                match rest {
                    [conv @ ("conv1" | "conv2" | "conv3"), "weight"] => {
                        format!("{block}.{conv}.weight")
                    }
                    [bn @ ("bn1" | "bn2" | "bn3"), leaf] => {
                        format!("{block}.{bn}.{}", torch_bn_leaf(leaf)?)
                    }
                    ["downsample", "0", "weight"] => format!("{block}.downsample.conv.weight"),
                    ["downsample", "1", leaf] => {
                        format!("{block}.downsample.bn.{}", torch_bn_leaf(leaf)?)
                    }
                    _ => return None,
                }
            }
            _ => return None,
        })
    }
}
