//! VGG as torchvision defines it (`torchvision.models.vgg`): five stages of 3x3 convolutions (with
//! bias, optionally followed by batch norm) at 64, 128, 256, 512, 512 channels, each stage ended by
//! a 2x2 max-pool; an adaptive average pool to 7x7; and the classifier Linear(25088, 4096), ReLU,
//! dropout, Linear(4096, 4096), ReLU, dropout, Linear(4096, classes).
//!
//! VGG's first convolution is already 3x3 stride 1; `cifar_stem` drops the first max-pool, so that
//! a 32x32 image ends the features at 2x2 rather than 1x1.
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;

use crate::layers::torch_names::{conv_leaf, torch_bn_leaf};
use crate::layers::{Act, BatchNorm2d, ConvSpec, Convolution, Init, MaxPooling, Norm, linear};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const VARIANTS: &[ModelEntry] = variants![ImageNet;
    "vgg11", "vgg", 224, "VGG-11 (configuration A), torchvision" => ModelConfig::Vgg(VggConfig::vgg11());
    "vgg16", "vgg", 224, "VGG-16 (configuration D), torchvision" => ModelConfig::Vgg(VggConfig::vgg16());
    "vgg16_bn", "vgg", 224, "VGG-16 with batch norm, torchvision" => ModelConfig::Vgg(VggConfig::vgg16_bn());
];

/// Channels of the five stages.
const STAGE_CHANNELS: [usize; 5] = [64, 128, 256, 512, 512];
const POOLED: usize = 7;
const HIDDEN: usize = 4096;

#[derive(Config, Debug)]
pub struct VggConfig {
    /// 3x3 convolutions in each of the five stages.
    pub layers: Vec<usize>,
    /// Batch norm after every convolution (the `_bn` variants).
    #[config(default = false)]
    pub batch_norm: bool,
    /// Dropout in the classifier while training.
    #[config(default = 0.5)]
    pub dropout: f64,
    #[config(default = 1000)]
    pub num_classes: usize,
    /// No max-pool after the first stage, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
}

impl VggConfig {
    /// Configuration "A".
    pub fn vgg11() -> Self {
        Self::new(vec![1, 1, 2, 2, 2])
    }

    /// Configuration "D".
    pub fn vgg16() -> Self {
        Self::new(vec![2, 2, 3, 3, 3])
    }

    pub fn vgg16_bn() -> Self {
        Self::vgg16().with_batch_norm(true)
    }

    /// Where each convolution sits in torchvision's `features` sequential: a convolution takes
    /// one index, its batch norm one, the ReLU one, and each stage's max-pool one.
    fn torch_feature_indices(&self) -> Vec<usize> {
        let per_conv = if self.batch_norm { 3 } else { 2 };
        let mut indices = Vec::new();
        let mut next = 0;
        for &count in &self.layers {
            for _ in 0..count {
                indices.push(next);
                next += per_conv;
            }
            next += 1;
        }
        indices
    }
}

/// A 3x3 convolution with its optional batch norm; the ReLU follows.
#[derive(Module, Debug)]
pub struct VggConv {
    pub conv: Convolution,
    pub bn: Option<BatchNorm2d>,
}

#[derive(Module, Debug)]
pub struct Vgg {
    /// Every convolution of `features`, stage after stage.
    pub convs: Vec<VggConv>,
    /// Convolutions per stage: a max-pool follows each stage.
    pub layers: Vec<usize>,
    pub pool: MaxPooling,
    pub cifar_stem: bool,
    /// torchvision's `classifier.0`, `.3`, `.6`.
    pub classifier: Vec<Linear>,
    pub dropout: Dropout,
}

impl VggConfig {
    pub fn init(&self, device: &Device) -> Vgg {
        let mut convs = Vec::new();
        let mut c_in = 3;
        for (&count, &c_out) in self.layers.iter().zip(&STAGE_CHANNELS) {
            for _ in 0..count {
                convs.push(VggConv {
                    conv: ConvSpec::new(c_in, c_out, 3).init(
                        Init::KAIMING_FAN_OUT,
                        Some(Init::Zeros),
                        device,
                    ),
                    bn: self.batch_norm.then(|| Norm::TORCH.init(c_out, device)),
                });
                c_in = c_out;
            }
        }
        let fc = |d_in, d_out| linear(d_in, d_out, Init::Normal(0.01), Init::Zeros, device);
        Vgg {
            convs,
            layers: self.layers.clone(),
            pool: MaxPooling::new(2, 2, 0),
            cifar_stem: self.cifar_stem,
            classifier: vec![
                fc(c_in * POOLED * POOLED, HIDDEN),
                fc(HIDDEN, HIDDEN),
                fc(HIDDEN, self.num_classes),
            ],
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl Vgg {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut convs = self.convs.iter();
        let mut x = x;
        for (stage, &count) in self.layers.iter().enumerate() {
            for unit in convs.by_ref().take(count) {
                x = unit.conv.forward(x);
                x = match &unit.bn {
                    Some(bn) => bn.forward_activated(x, Act::Relu),
                    None => relu(x),
                };
            }
            if !(self.cifar_stem && stage == 0) {
                x = self.pool.forward(x);
            }
        }
        let mut x = adaptive_avg_pool2d(x, [POOLED, POOLED]).flatten(1, 3);
        let last = self.classifier.len() - 1;
        for (index, fc) in self.classifier.iter().enumerate() {
            x = fc.forward(x);
            if index < last {
                x = self.dropout.forward(relu(x));
            }
        }
        x
    }
}

impl VggConfig {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: `features.i` ->
    /// `convs.j.conv` or `convs.j.bn` by the layout of `features` (see
    /// `VggConfig::torch_feature_indices`), `classifier.{0,3,6}` -> `classifier.{0,1,2}`; batch norms'
    /// `weight`/`bias` are burn's `gamma`/`beta`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let config = self;
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["classifier", index, leaf] => {
                let fc = ["0", "3", "6"].iter().position(|i| i == index)?;
                Some(format!("classifier.{fc}.{}", conv_leaf(leaf)?))
            }
            ["features", index, leaf] => {
                let index: usize = index.parse().ok()?;
                let indices = config.torch_feature_indices();
                if let Some(j) = indices.iter().position(|&i| i == index) {
                    Some(format!("convs.{j}.conv.{}", conv_leaf(leaf)?))
                } else {
                    let j = indices.iter().position(|&i| i + 1 == index)?;
                    config
                        .batch_norm
                        .then(|| torch_bn_leaf(leaf).map(|leaf| format!("convs.{j}.bn.{leaf}")))?
                }
            }
            _ => None,
        }
    }
}
