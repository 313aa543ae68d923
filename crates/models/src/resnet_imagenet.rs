//! ResNet-18/34/50/101/152 and ResNeXt-50 32x4d as torchvision defines them
//! (`torchvision.models.resnet`): a 7x7 stride-2 stem and a 3x3 stride-2 max-pool, four stages of
//! residual blocks at 64, 128, 256, 512 planes (each stage after the first halves the resolution
//! in its first block), global average pooling and `fc`. The basic block (two 3x3 convolutions)
//! and the bottleneck block (1x1 reduce, 3x3 grouped, 1x1 expand x4) share one definition; ResNeXt
//! is the bottleneck network with grouped 3x3 convolutions.
//!
//! `cifar_stem` replaces the stem by a 3x3 stride-1 convolution without max-pool, so that a
//! 32x32 image reaches the last stage at 4x4 instead of 1x1.
use crate::layers::BatchNorm2d;
use crate::layers::Conv2d;
use crate::layers::MaxPool2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use serde::{Deserialize, Serialize};

use crate::layers::torch_bn_leaf;
use crate::ops::{ConvSpec, Init, Norm, conv_leaf, global_pool, linear};

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
    pub conv: Conv2d,
    pub bn: BatchNorm2d,
}

/// A basic or bottleneck block, with torchvision's field names. The bottleneck alone has
/// `conv3`/`bn3`, and its stride sits on the 3x3 `conv2`; the basic block's on `conv1`.
/// out = relu(bn_last(conv_last(...relu(bn1(conv1(x))))) + shortcut(x)).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    pub conv2: Conv2d,
    pub bn2: BatchNorm2d,
    pub conv3: Option<Conv2d>,
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
        let conv = |spec: ConvSpec| spec.init(Init::KaimingFanOut, None, device);
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
        let mut out = relu(self.bn1.forward(self.conv1.forward(x.clone())));
        out = self.bn2.forward(self.conv2.forward(out));
        if let (Some(conv3), Some(bn3)) = (&self.conv3, &self.bn3) {
            out = bn3.forward(conv3.forward(relu(out)));
        }
        let shortcut = match &self.downsample {
            Some(projection) => projection.bn.forward(projection.conv.forward(x)),
            None => x,
        };
        relu(out + shortcut)
    }
}

#[derive(Module, Debug)]
pub struct ResNetImageNet {
    pub conv1: Conv2d,
    pub bn1: BatchNorm2d,
    /// Absent with the CIFAR stem.
    pub maxpool: Option<MaxPool2d>,
    /// torchvision's `layer1` ... `layer4`.
    pub layers: Vec<Vec<ResidualBlock>>,
    pub fc: Linear,
}

const STEM_CHANNELS: usize = 64;

impl ResNetImageNetConfig {
    pub fn init(&self, device: &Device) -> ResNetImageNet {
        let stem = if self.cifar_stem {
            ConvSpec::new(3, STEM_CHANNELS, 3)
        } else {
            ConvSpec::new(3, STEM_CHANNELS, 7).stride(2)
        };
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
            conv1: stem.init(Init::KaimingFanOut, None, device),
            bn1: Norm::TORCH.init(STEM_CHANNELS, device),
            maxpool: (!self.cifar_stem).then(|| {
                MaxPool2dConfig::new([3, 3])
                    .with_strides([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init()
                    .into()
            }),
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
        let mut x = relu(self.bn1.forward(self.conv1.forward(x)));
        if let Some(pool) = &self.maxpool {
            x = pool.forward(x);
        }
        for block in self.layers.iter().flatten() {
            x = block.forward(x);
        }
        self.fc.forward(global_pool(x))
    }
}

/// Maps a torchvision `state_dict` key onto this module's parameter path: the names are
/// torchvision's except `layer{k}.i` -> `layers.{k-1}.i` and `downsample.{0,1}` ->
/// `downsample.{conv,bn}`; batch norms' `weight`/`bias` are burn's `gamma`/`beta`.
pub fn torch_key(key: &str) -> Option<String> {
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
