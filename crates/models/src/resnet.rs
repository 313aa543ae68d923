//! The CIFAR-10 ResNet of the reference (SPEC §1) in its two forms: the original post-activation
//! block (`ResNetBlock`) and the pre-activation block (`PreActResNetBlock`), three groups of
//! blocks at 16, 32 and 64 channels.
use crate::layers::BatchNorm2d;
use crate::layers::Conv2d;
use burn::nn::activation::Activation;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::activation::ActivationKind;
use crate::layers::{
    ConvShape, FanMode, KaimingNormal, batch_norm, global_avg_pool, torch_bn_leaf, torch_leaf,
};

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
pub struct ResNetConfig {
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "ActivationKind::Relu")]
    pub activation: ActivationKind,
    #[config(default = "BlockKind::Standard")]
    pub block: BlockKind,
    /// Blocks per group; every group after the first starts by halving the resolution.
    #[config(default = "vec![3, 3, 3]")]
    pub num_blocks: Vec<usize>,
    /// Channels per group.
    #[config(default = "vec![16, 32, 64]")]
    pub channels: Vec<usize>,
}

/// Where a block changes channels and halves the resolution, the shortcut needs a projection.
#[derive(Clone, Copy, Debug)]
struct BlockShape {
    c_in: usize,
    c_out: usize,
    subsample: bool,
}

impl BlockShape {
    fn stride(&self) -> usize {
        if self.subsample { 2 } else { 1 }
    }
}

/// out = act(BN(conv(act(BN(conv(x))))) + shortcut(x)).
#[derive(Module, Debug)]
pub struct ResNetBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm2d,
    /// 1x1 stride-2 convolution (with bias, as in the reference) when subsampling.
    pub downsample: Option<Conv2d>,
    pub act: Activation,
}

impl ResNetBlock {
    fn new(shape: BlockShape, act: ActivationKind, init: KaimingNormal, device: &Device) -> Self {
        let BlockShape {
            c_in,
            c_out,
            subsample,
        } = shape;
        Self {
            conv1: ConvShape::same(c_in, c_out, 3)
                .with_stride(shape.stride())
                .without_bias()
                .init(init, device),
            bn1: batch_norm(c_out, device),
            conv2: ConvShape::same(c_out, c_out, 3)
                .without_bias()
                .init(init, device),
            bn2: batch_norm(c_out, device),
            downsample: subsample.then(|| {
                ConvShape::same(c_in, c_out, 1)
                    .with_stride(2)
                    .init(init, device)
            }),
            act: act.init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self
            .bn1
            .forward_activated(self.conv1.forward(x.clone()), &self.act);
        let z = self.bn2.forward(self.conv2.forward(z));
        let shortcut = match &self.downsample {
            Some(conv) => conv.forward(x),
            None => x,
        };
        self.act.forward(z + shortcut)
    }
}

/// The pre-activation shortcut projection: BN, act, 1x1 stride-2 convolution without bias.
#[derive(Module, Debug)]
pub struct PreActDownsample {
    pub bn: BatchNorm2d,
    pub conv: Conv2d,
}

/// out = conv(act(BN(conv(act(BN(x)))))) + shortcut(x).
#[derive(Module, Debug)]
pub struct PreActResNetBlock {
    pub bn1: BatchNorm2d,
    pub conv1: Conv2d,
    pub bn2: BatchNorm2d,
    pub conv2: Conv2d,
    pub downsample: Option<PreActDownsample>,
    pub act: Activation,
}

impl PreActResNetBlock {
    fn new(shape: BlockShape, act: ActivationKind, init: KaimingNormal, device: &Device) -> Self {
        let BlockShape {
            c_in,
            c_out,
            subsample,
        } = shape;
        Self {
            bn1: batch_norm(c_in, device),
            conv1: ConvShape::same(c_in, c_out, 3)
                .with_stride(shape.stride())
                .without_bias()
                .init(init, device),
            bn2: batch_norm(c_out, device),
            conv2: ConvShape::same(c_out, c_out, 3)
                .without_bias()
                .init(init, device),
            downsample: subsample.then(|| PreActDownsample {
                bn: batch_norm(c_in, device),
                conv: ConvShape::same(c_in, c_out, 1)
                    .with_stride(2)
                    .without_bias()
                    .init(init, device),
            }),
            act: act.init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self
            .conv1
            .forward(self.bn1.forward_activated(x.clone(), &self.act));
        let z = self.conv2.forward(self.bn2.forward_activated(z, &self.act));
        let shortcut = match &self.downsample {
            Some(down) => down.conv.forward(down.bn.forward_activated(x, &self.act)),
            None => x,
        };
        z + shortcut
    }
}

/// One residual block of either kind. The variants differ in size by a few hundred bytes of
/// module metadata; a network holds nine of them, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum ResidualBlock {
    Standard(ResNetBlock),
    PreAct(PreActResNetBlock),
}

impl ResidualBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Self::Standard(block) => block.forward(x),
            Self::PreAct(block) => block.forward(x),
        }
    }
}

#[derive(Module, Debug)]
pub struct ResNet {
    pub input_conv: Conv2d,
    /// BN and activation after the stem, which the pre-activation network leaves to its first block.
    pub input_bn: Option<BatchNorm2d>,
    pub blocks: Vec<ResidualBlock>,
    pub output_net: Linear,
    pub act: Activation,
}

impl ResNetConfig {
    pub fn init(&self, device: &Device) -> ResNet {
        let init = KaimingNormal {
            gain: self.activation.kaiming_gain(),
            mode: FanMode::FanOut,
        };
        let c_stem = self.channels[0];
        let mut blocks = Vec::new();
        let mut c_in = c_stem;
        for (group, (&count, &c_out)) in self.num_blocks.iter().zip(&self.channels).enumerate() {
            for index in 0..count {
                let shape = BlockShape {
                    c_in,
                    c_out,
                    subsample: group > 0 && index == 0,
                };
                blocks.push(match self.block {
                    BlockKind::Standard => ResidualBlock::Standard(ResNetBlock::new(
                        shape,
                        self.activation,
                        init,
                        device,
                    )),
                    BlockKind::PreAct => ResidualBlock::PreAct(PreActResNetBlock::new(
                        shape,
                        self.activation,
                        init,
                        device,
                    )),
                });
                c_in = c_out;
            }
        }
        ResNet {
            input_conv: ConvShape::same(3, c_stem, 3)
                .without_bias()
                .init(init, device),
            input_bn: (self.block == BlockKind::Standard).then(|| batch_norm(c_stem, device)),
            blocks,
            output_net: LinearConfig::new(c_in, self.num_classes).init(device),
            act: self.activation.init(device),
        }
    }
}

impl ResNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.input_conv.forward(x);
        if let Some(bn) = &self.input_bn {
            x = bn.forward_activated(x, &self.act);
        }
        for block in &self.blocks {
            x = block.forward(x);
        }
        self.output_net.forward(global_avg_pool(x))
    }
}

/// Maps a reference PyTorch `state_dict` key onto this module's parameter path.
///
/// The reference's `nn.Sequential` indices count activations too: `input_net.{0,1}` ->
/// `input_conv`/`input_bn`; a standard block's `net.{0,1,3,4}` -> `conv1, bn1, conv2, bn2` and
/// `downsample` -> `downsample`; a pre-activation block's `net.{0,2,3,5}` -> `bn1, conv1, bn2,
/// conv2` and `downsample.{0,2}` -> `downsample.{bn,conv}`; `output_net.2` -> `output_net`.
pub fn torch_key(block: BlockKind, key: &str) -> Option<String> {
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
            let name = match *layer {
                "0" => "bn1",
                "2" => "conv1",
                "3" => "bn2",
                "5" => "conv2",
                _ => return None,
            };
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
