//! MobileNet v2 and v3 (large) as torchvision defines them (`torchvision.models.mobilenetv2`,
//! `mobilenetv3`): a 3x3 stride-2 stem, a sequence of inverted residual blocks (depthwise
//! separable, with squeeze-excitation and hard-swish in v3), a 1x1 convolution widening the last
//! features, global average pooling and the classifier. Channels scale with `width_mult`, rounded
//! to multiples of 8 as torchvision rounds them.
//!
//! `cifar_stem` makes the stem stride 1 (both networks have no max-pool), so that a 32x32 image
//! ends the features at 2x2 rather than 1x1.
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;

use crate::layers::torch_names::{conv_leaf, conv_norm_key, se_or_unit_key};
use crate::layers::{
    Act, ConvNormAct, ConvSpec, Init, InvertedResidual, InvertedResidualSpec, Norm,
    SqueezeExcitation, global_avg_pool, linear, make_divisible,
};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const VARIANTS: &[ModelEntry] = variants![ImageNet;
    "mobilenet_v2", "mobilenet", 224, "MobileNet v2, torchvision" => ModelConfig::MobileNetV2(MobileNetV2Config::new());
    "mobilenet_v3_large", "mobilenet", 224, "MobileNet v3 large, torchvision"
        => ModelConfig::MobileNetV3(MobileNetV3Config::new());
];

/// Inverted residual stages of MobileNet v2: expansion t, output channels c, blocks n, stride of
/// the first block s.
const V2_SETTING: [[usize; 4]; 7] = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
];

/// The hyper-parameters both versions take, declared once: a config type per version, because
/// each is its own family (its own checkpoint tag and network type).
macro_rules! mobilenet_config {
    ($($name:ident: $dropout:literal;)*) => {$(
        #[derive(Config, Debug)]
        pub struct $name {
            #[config(default = 1000)]
            pub num_classes: usize,
            /// Multiplies every layer's channels.
            #[config(default = 1.0)]
            pub width_mult: f64,
            #[doc = $dropout]
            #[config(default = 0.2)]
            pub dropout: f64,
            /// A stride-1 stem, for 32x32 images.
            #[config(default = false)]
            pub cifar_stem: bool,
        }
    )*};
}

mobilenet_config! {
    MobileNetV2Config: "Dropout before the classifier while training.";
    MobileNetV3Config: "Dropout in the classifier while training.";
}

/// The shape of every block of a network, in order.
fn v2_blocks(config: &MobileNetV2Config) -> Vec<InvertedResidualSpec> {
    let mut c_in = make_divisible(32.0 * config.width_mult, 8);
    let mut blocks = Vec::new();
    for [t, c, n, s] in V2_SETTING {
        let c_out = make_divisible(c as f64 * config.width_mult, 8);
        for i in 0..n {
            blocks.push(InvertedResidualSpec {
                c_in,
                c_expanded: c_in * t,
                c_out,
                kernel: 3,
                stride: if i == 0 { s } else { 1 },
                act: Act::Relu6,
                norm: Norm::TORCH,
            });
            c_in = c_out;
        }
    }
    blocks
}

/// The stem and head of all the mobile networks: conv-BN-activation, weights Kaiming fan-out.
fn unit(spec: ConvSpec, norm: Norm, act: Act, device: &Device) -> ConvNormAct {
    ConvNormAct::new(spec, Init::KAIMING_FAN_OUT, norm, Some(act), device)
}

fn stem_stride(cifar_stem: bool) -> usize {
    if cifar_stem { 1 } else { 2 }
}

#[derive(Module, Debug)]
pub struct MobileNetV2 {
    /// torchvision's `features.0`.
    pub stem: ConvNormAct,
    /// `features.1` ... `features.17`.
    pub blocks: Vec<InvertedResidual>,
    /// `features.18`.
    pub head: ConvNormAct,
    pub dropout: Dropout,
    /// `classifier.1`.
    pub classifier: Linear,
}

impl MobileNetV2Config {
    pub fn init(&self, device: &Device) -> MobileNetV2 {
        let specs = v2_blocks(self);
        let c_stem = specs[0].c_in;
        let c_last = specs[specs.len() - 1].c_out;
        let c_head = make_divisible(1280.0 * self.width_mult.max(1.0), 8);
        MobileNetV2 {
            stem: unit(
                ConvSpec::new(3, c_stem, 3).stride(stem_stride(self.cifar_stem)),
                Norm::TORCH,
                Act::Relu6,
                device,
            ),
            blocks: specs
                .into_iter()
                .map(|spec| InvertedResidual::new(spec, device))
                .collect(),
            head: unit(
                ConvSpec::new(c_last, c_head, 1),
                Norm::TORCH,
                Act::Relu6,
                device,
            ),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: linear(
                c_head,
                self.num_classes,
                Init::Normal(0.01),
                Init::Zeros,
                device,
            ),
        }
    }
}

impl MobileNetV2 {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.stem.forward(x);
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        let x = global_avg_pool(self.head.forward(x));
        self.classifier.forward(self.dropout.forward(x))
    }
}

impl MobileNetV2Config {
    /// Maps a torchvision `mobilenet_v2` `state_dict` key onto this module's parameter path:
    /// `features.0` -> `stem`, `features.i` -> `blocks.(i-1)`, the last `features` -> `head`,
    /// `classifier.1` -> `classifier`. In a block's `conv` sequential the conv-BN-ReLU6 units
    /// (`conv.j.0`, `conv.j.1`) are `expand` (where there is one) and `depthwise`, and the plain
    /// convolution and batch norm after them are `project.conv` and `project.bn`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let config = self;
        let blocks = v2_blocks(config);
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["classifier", "1", leaf] => Some(format!("classifier.{}", conv_leaf(leaf)?)),
            ["features", index, sub, leaf] => {
                let prefix = features_unit(index.parse().ok()?, blocks.len())?;
                conv_norm_key(prefix, sub, leaf)
            }
            ["features", index, "conv", rest @ ..] => {
                let i = index.parse::<usize>().ok()?.checked_sub(1)?;
                let spec = blocks.get(i)?;
                let units = InvertedResidual::torch_layout(spec.c_expanded != spec.c_in, false);
                // `units` ends with `project`, which torchvision spells as two entries.
                let k = units.len() - 1;
                let path = match rest {
                    [j, sub, leaf] => {
                        let name = units[..k].get(j.parse::<usize>().ok()?)?;
                        conv_norm_key(name, sub, leaf)?
                    }
                    [j, leaf] => {
                        let offset = j.parse::<usize>().ok()?.checked_sub(k)?;
                        conv_norm_key("project", &offset.to_string(), leaf)?
                    }
                    _ => return None,
                };
                Some(format!("blocks.{i}.{path}"))
            }
            _ => None,
        }
    }
}

/// `features.0` is the stem and `features.(blocks + 1)` the head.
fn features_unit(index: usize, blocks: usize) -> Option<&'static str> {
    match index {
        0 => Some("stem"),
        i if i == blocks + 1 => Some("head"),
        _ => None,
    }
}

/// One block of MobileNet v3: input, kernel, expanded and output channels, squeeze-excitation,
/// hard-swish (else ReLU), stride — the columns of torchvision's `bneck_conf`.
#[derive(Clone, Copy, Debug)]
struct V3Block {
    c_in: usize,
    kernel: usize,
    c_expanded: usize,
    c_out: usize,
    se: bool,
    hard_swish: bool,
    stride: usize,
}

const fn v3(
    [c_in, kernel, c_expanded, c_out]: [usize; 4],
    se: bool,
    hard_swish: bool,
    stride: usize,
) -> V3Block {
    V3Block {
        c_in,
        kernel,
        c_expanded,
        c_out,
        se,
        hard_swish,
        stride,
    }
}

/// MobileNet v3 large (torchvision's `_mobilenet_v3_conf`, paper table 1).
const V3_LARGE: [V3Block; 15] = [
    v3([16, 3, 16, 16], false, false, 1),
    v3([16, 3, 64, 24], false, false, 2),
    v3([24, 3, 72, 24], false, false, 1),
    v3([24, 5, 72, 40], true, false, 2),
    v3([40, 5, 120, 40], true, false, 1),
    v3([40, 5, 120, 40], true, false, 1),
    v3([40, 3, 240, 80], false, true, 2),
    v3([80, 3, 200, 80], false, true, 1),
    v3([80, 3, 184, 80], false, true, 1),
    v3([80, 3, 184, 80], false, true, 1),
    v3([80, 3, 480, 112], true, true, 1),
    v3([112, 3, 672, 112], true, true, 1),
    v3([112, 5, 672, 160], true, true, 2),
    v3([160, 5, 960, 160], true, true, 1),
    v3([160, 5, 960, 160], true, true, 1),
];

/// MobileNet v3's batch norm: eps 1e-3, momentum 0.01.
const V3_NORM: Norm = Norm {
    eps: 1e-3,
    momentum: 0.01,
};

impl MobileNetV3Config {
    fn adjust(&self, channels: usize) -> usize {
        make_divisible(channels as f64 * self.width_mult, 8)
    }

    fn blocks(&self) -> Vec<V3Block> {
        V3_LARGE
            .iter()
            .map(|b| V3Block {
                c_in: self.adjust(b.c_in),
                c_expanded: self.adjust(b.c_expanded),
                c_out: self.adjust(b.c_out),
                ..*b
            })
            .collect()
    }
}

#[derive(Module, Debug)]
pub struct MobileNetV3 {
    /// torchvision's `features.0`.
    pub stem: ConvNormAct,
    /// `features.1` ... `features.15`.
    pub blocks: Vec<InvertedResidual>,
    /// `features.16`.
    pub head: ConvNormAct,
    /// `classifier.0` and `classifier.3`, with hard-swish and dropout between them.
    pub classifier: Vec<Linear>,
    pub dropout: Dropout,
}

impl MobileNetV3Config {
    pub fn init(&self, device: &Device) -> MobileNetV3 {
        let blocks = self.blocks();
        let c_stem = blocks[0].c_in;
        let c_last = blocks[blocks.len() - 1].c_out;
        let c_head = 6 * c_last;
        let c_hidden = self.adjust(1280);
        let fc = |d_in, d_out| linear(d_in, d_out, Init::Normal(0.01), Init::Zeros, device);
        MobileNetV3 {
            stem: unit(
                ConvSpec::new(3, c_stem, 3).stride(stem_stride(self.cifar_stem)),
                V3_NORM,
                Act::HardSwish,
                device,
            ),
            blocks: blocks
                .iter()
                .map(|b| {
                    let spec = InvertedResidualSpec {
                        c_in: b.c_in,
                        c_expanded: b.c_expanded,
                        c_out: b.c_out,
                        kernel: b.kernel,
                        stride: b.stride,
                        act: if b.hard_swish {
                            Act::HardSwish
                        } else {
                            Act::Relu
                        },
                        norm: V3_NORM,
                    };
                    let block = InvertedResidual::new(spec, device);
                    if b.se {
                        let squeeze = make_divisible((b.c_expanded / 4) as f64, 8);
                        block.with_se(SqueezeExcitation::new(
                            b.c_expanded,
                            squeeze,
                            Act::Relu,
                            Act::HardSigmoid,
                            device,
                        ))
                    } else {
                        block
                    }
                })
                .collect(),
            head: unit(
                ConvSpec::new(c_last, c_head, 1),
                V3_NORM,
                Act::HardSwish,
                device,
            ),
            classifier: vec![fc(c_head, c_hidden), fc(c_hidden, self.num_classes)],
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl MobileNetV3 {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.stem.forward(x);
        let x = self.blocks.iter().fold(x, |x, block| block.forward(x));
        let x = global_avg_pool(self.head.forward(x));
        let x = Act::HardSwish.forward(self.classifier[0].forward(x));
        self.classifier[1].forward(self.dropout.forward(x))
    }
}

impl MobileNetV3Config {
    /// Maps a torchvision `mobilenet_v3_large` `state_dict` key onto this module's parameter path:
    /// `features.0` -> `stem`, `features.i` -> `blocks.(i-1)`, the last `features` -> `head`,
    /// `classifier.{0,3}` -> `classifier.{0,1}`. A block's `block.j` is the j-th of `expand` (where
    /// there is one), `depthwise`, `se` (where there is one), `project`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let config = self;
        let blocks = config.blocks();
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["classifier", index, leaf] => {
                let fc = ["0", "3"].iter().position(|i| i == index)?;
                Some(format!("classifier.{fc}.{}", conv_leaf(leaf)?))
            }
            ["features", index, sub, leaf] => {
                let prefix = features_unit(index.parse().ok()?, blocks.len())?;
                conv_norm_key(prefix, sub, leaf)
            }
            ["features", index, "block", j, sub, leaf] => {
                let i = index.parse::<usize>().ok()?.checked_sub(1)?;
                let b = blocks.get(i)?;
                let units = InvertedResidual::torch_layout(b.c_expanded != b.c_in, b.se);
                let path = se_or_unit_key(&units, j, sub, leaf)?;
                Some(format!("blocks.{i}.{path}"))
            }
            _ => None,
        }
    }
}
