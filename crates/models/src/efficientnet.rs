//! EfficientNet-B0 ... B7 as torchvision defines them (`torchvision.models.efficientnet`), all from
//! the B0 baseline and one compound-scaling table: each variant multiplies the baseline's channels
//! by a width factor (rounded to multiples of 8) and its blocks per stage by a depth factor
//! (rounded up), and is meant for a larger input resolution. The network: a 3x3 stride-2 stem,
//! seven stages of MBConv blocks (inverted residuals with squeeze-excitation and SiLU, stochastic
//! depth on the skip connections), a 1x1 convolution to 4x the last channels, global average
//! pooling, dropout and the classifier.
//!
//! `cifar_stem` makes the stem stride 1 (there is no max-pool), so that a 32x32 image ends the
//! features at 2x2 rather than 1x1.
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;

use crate::layers::torch_names::{conv_leaf, conv_norm_key, se_or_unit_key};
use crate::layers::{
    Act, ConvNormAct, ConvSpec, Init, InvertedResidual, InvertedResidualSpec, Norm,
    SqueezeExcitation, forward_stages, global_avg_pool, linear, make_divisible,
};
use crate::model::ModelConfig;
use crate::registry::{ImageStatistics, ModelEntry};

/// B0 to B7: one entry each, at the resolution of its compound scaling.
macro_rules! efficientnet_variants {
    ($($b:literal),*) => {
        &[$(ModelEntry::new(
            concat!("efficientnet_b", $b),
            "efficientnet",
            concat!("EfficientNet-B", $b, ", torchvision (compound scaling of B0)"),
            EFFICIENTNET_SCALING[$b].resolution,
            || ModelConfig::EfficientNet(EfficientNetConfig::b($b)),
        )
        .with_statistics(ImageStatistics::ImageNet)),*]
    };
}

pub const VARIANTS: &[ModelEntry] = efficientnet_variants!(0, 1, 2, 3, 4, 5, 6, 7);

/// One row of the compound-scaling table.
#[derive(Clone, Copy, Debug)]
pub struct CompoundScaling {
    /// Multiplies the channels.
    pub width: f64,
    /// Multiplies the blocks per stage.
    pub depth: f64,
    /// Side of the square input the variant is meant for.
    pub resolution: usize,
    /// Dropout before the classifier.
    pub dropout: f64,
    /// B5 to B7 use batch norms with eps 1e-3, momentum 0.01.
    pub norm: Norm,
}

const fn scaling(width: f64, depth: f64, resolution: usize, dropout: f64) -> CompoundScaling {
    CompoundScaling {
        width,
        depth,
        resolution,
        dropout,
        norm: Norm::TORCH,
    }
}

const fn tf_norm(s: CompoundScaling) -> CompoundScaling {
    CompoundScaling {
        norm: Norm {
            eps: 1e-3,
            momentum: 0.01,
        },
        ..s
    }
}

/// B0 ... B7, as torchvision's `efficientnet_b*` builders set them.
pub const EFFICIENTNET_SCALING: [CompoundScaling; 8] = [
    scaling(1.0, 1.0, 224, 0.2),
    scaling(1.0, 1.1, 240, 0.2),
    scaling(1.1, 1.2, 260, 0.3),
    scaling(1.2, 1.4, 300, 0.3),
    scaling(1.4, 1.8, 380, 0.4),
    tf_norm(scaling(1.6, 2.2, 456, 0.4)),
    tf_norm(scaling(1.8, 2.6, 528, 0.5)),
    tf_norm(scaling(2.0, 3.1, 600, 0.5)),
];

/// The B0 baseline's stages: expansion, kernel, stride of the first block, input and output
/// channels, blocks.
const BASELINE: [[usize; 6]; 7] = [
    [1, 3, 1, 32, 16, 1],
    [6, 3, 2, 16, 24, 2],
    [6, 5, 2, 24, 40, 2],
    [6, 3, 2, 40, 80, 3],
    [6, 5, 1, 80, 112, 3],
    [6, 5, 2, 112, 192, 4],
    [6, 3, 1, 192, 320, 1],
];

#[derive(Config, Debug)]
pub struct EfficientNetConfig {
    /// Multiplies the baseline's channels.
    pub width_mult: f64,
    /// Multiplies the baseline's blocks per stage.
    pub depth_mult: f64,
    /// Dropout before the classifier while training.
    pub dropout: f64,
    /// Stochastic depth of the last block; block i of n drops with `stochastic_depth_prob * i / n`.
    #[config(default = 0.2)]
    pub stochastic_depth_prob: f64,
    #[config(default = 1e-5)]
    pub norm_eps: f64,
    /// PyTorch's convention: the weight of the new batch in the running statistics.
    #[config(default = 0.1)]
    pub norm_momentum: f64,
    #[config(default = 1000)]
    pub num_classes: usize,
    /// A stride-1 stem, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
}

/// The shape of one MBConv block and its place in the network.
#[derive(Clone, Copy, Debug)]
struct MbConv {
    spec: InvertedResidualSpec,
    squeeze: usize,
    stochastic_depth: f64,
}

impl EfficientNetConfig {
    /// EfficientNet-B`variant` (0 to 7) from [`EFFICIENTNET_SCALING`].
    pub fn b(variant: usize) -> Self {
        let s = EFFICIENTNET_SCALING[variant];
        Self::new(s.width, s.depth, s.dropout)
            .with_norm_eps(s.norm.eps)
            .with_norm_momentum(s.norm.momentum)
    }

    fn norm(&self) -> Norm {
        Norm {
            eps: self.norm_eps,
            momentum: self.norm_momentum,
        }
    }

    fn channels(&self, c: usize) -> usize {
        make_divisible(c as f64 * self.width_mult, 8)
    }

    /// Every block, stage by stage.
    fn stages(&self) -> Vec<Vec<MbConv>> {
        let depths: Vec<usize> = BASELINE
            .iter()
            .map(|stage| (stage[5] as f64 * self.depth_mult).ceil() as usize)
            .collect();
        let total: usize = depths.iter().sum();
        let mut id = 0;
        BASELINE
            .iter()
            .zip(depths)
            .map(|(&[expansion, kernel, stride, c_in, c_out, _], n)| {
                let c_out = self.channels(c_out);
                (0..n)
                    .map(|i| {
                        let c_in = if i == 0 { self.channels(c_in) } else { c_out };
                        let block = MbConv {
                            spec: InvertedResidualSpec {
                                c_in,
                                c_expanded: make_divisible((c_in * expansion) as f64, 8),
                                c_out,
                                kernel,
                                stride: if i == 0 { stride } else { 1 },
                                act: Act::Silu,
                                norm: self.norm(),
                            },
                            squeeze: (c_in / 4).max(1),
                            stochastic_depth: self.stochastic_depth_prob * id as f64 / total as f64,
                        };
                        id += 1;
                        block
                    })
                    .collect()
            })
            .collect()
    }
}

#[derive(Module, Debug)]
pub struct EfficientNet {
    /// torchvision's `features.0`.
    pub stem: ConvNormAct,
    /// `features.1` ... `features.7`.
    pub stages: Vec<Vec<InvertedResidual>>,
    /// `features.8`.
    pub head: ConvNormAct,
    pub dropout: Dropout,
    /// `classifier.1`.
    pub classifier: Linear,
}

impl EfficientNetConfig {
    pub fn init(&self, device: &Device) -> EfficientNet {
        let stages = self.stages();
        let c_stem = stages[0][0].spec.c_in;
        let c_last = self.channels(BASELINE[BASELINE.len() - 1][4]);
        let c_head = 4 * c_last;
        let stride = if self.cifar_stem { 1 } else { 2 };
        let unit = |spec: ConvSpec| {
            ConvNormAct::new(
                spec,
                Init::KAIMING_FAN_OUT,
                self.norm(),
                Some(Act::Silu),
                device,
            )
        };
        EfficientNet {
            stem: unit(ConvSpec::new(3, c_stem, 3).stride(stride)),
            stages: stages
                .iter()
                .map(|stage| stage.iter().map(|b| mb_conv(b, device)).collect())
                .collect(),
            head: unit(ConvSpec::new(c_last, c_head, 1)),
            dropout: DropoutConfig::new(self.dropout).init(),
            classifier: linear(
                c_head,
                self.num_classes,
                Init::Uniform(1.0 / (self.num_classes as f64).sqrt()),
                Init::Zeros,
                device,
            ),
        }
    }
}

fn mb_conv(b: &MbConv, device: &Device) -> InvertedResidual {
    let se = SqueezeExcitation::new(
        b.spec.c_expanded,
        b.squeeze,
        Act::Silu,
        Act::Sigmoid,
        device,
    );
    let block = InvertedResidual::new(b.spec, device).with_se(se);
    if block.residual {
        block.with_stochastic_depth(b.stochastic_depth)
    } else {
        block
    }
}

impl EfficientNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.stem.forward(x);
        let x = forward_stages(&self.stages, x);
        let x = global_avg_pool(self.head.forward(x));
        self.classifier.forward(self.dropout.forward(x))
    }
}

impl EfficientNetConfig {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: `features.0` -> `stem`,
    /// `features.s.b` -> `stages.(s-1).b`, `features.8` -> `head`, `classifier.1` -> `classifier`.
    /// A block's `block.j` is the j-th of `expand` (where there is one), `depthwise`, `se`,
    /// `project`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let config = self;
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["classifier", "1", leaf] => Some(format!("classifier.{}", conv_leaf(leaf)?)),
            ["features", "0", sub, leaf] => conv_norm_key("stem", sub, leaf),
            ["features", index, sub, leaf] if *index == (BASELINE.len() + 1).to_string() => {
                conv_norm_key("head", sub, leaf)
            }
            ["features", stage, block, "block", j, sub, leaf] => {
                let s = stage.parse::<usize>().ok()?.checked_sub(1)?;
                let b: usize = block.parse().ok()?;
                let stages = config.stages();
                let spec = stages.get(s)?.get(b)?.spec;
                let units = InvertedResidual::torch_layout(spec.c_expanded != spec.c_in, true);
                let path = se_or_unit_key(&units, j, sub, leaf)?;
                Some(format!("stages.{s}.{b}.{path}"))
            }
            _ => None,
        }
    }
}
