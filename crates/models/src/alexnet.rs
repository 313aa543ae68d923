//! AlexNet as torchvision defines it (`torchvision.models.alexnet`, the "one weird trick"
//! variant): five convolutions (11x11/4, 5x5, 3x3, 3x3, 3x3) with ReLU and three 3x3/2 max-pools,
//! an adaptive average pool to 6x6, and the classifier dropout, Linear(9216, 4096), ReLU, dropout,
//! Linear(4096, 4096), ReLU, Linear(4096, classes). torchvision leaves every layer at PyTorch's
//! default initialisation.
//!
//! `cifar_stem` makes the first convolution 3x3 stride 1 and drops the first max-pool: the 11x11/4
//! stem leaves nothing of a 32x32 image for the last pool.
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;

use crate::layers::torch_names::conv_leaf;
use crate::layers::{ConvSpec, Convolution, Init, MaxPooling, linear};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const VARIANTS: &[ModelEntry] = variants![ImageNet;
    "alexnet", "alexnet", 224, "AlexNet, torchvision" => ModelConfig::AlexNet(AlexNetConfig::new());
];

const POOLED: usize = 6;
const HIDDEN: usize = 4096;

/// torchvision's `features` indices of the five convolutions, and of the classifier's linears.
const TORCH_CONVS: [&str; 5] = ["0", "3", "6", "8", "10"];
const TORCH_LINEARS: [&str; 3] = ["1", "4", "6"];

#[derive(Config, Debug)]
pub struct AlexNetConfig {
    #[config(default = 1000)]
    pub num_classes: usize,
    /// A 3x3 stride-1 first convolution and no first max-pool, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
    /// Dropout in the classifier while training.
    #[config(default = 0.5)]
    pub dropout: f64,
}

#[derive(Module, Debug)]
pub struct AlexNet {
    pub features: Vec<Convolution>,
    pub pool: MaxPooling,
    pub cifar_stem: bool,
    pub classifier: Vec<Linear>,
    pub dropout: Dropout,
}

impl AlexNetConfig {
    pub fn init(&self, device: &Device) -> AlexNet {
        let stem = ConvSpec::new(3, 64, 11)
            .stride(4)
            .padding(2)
            .or_cifar_stem(self.cifar_stem);
        let conv = |spec: ConvSpec| spec.init(Init::TorchDefault, Some(Init::TorchDefault), device);
        let fc = |d_in, d_out| linear(d_in, d_out, Init::TorchDefault, Init::TorchDefault, device);
        AlexNet {
            features: vec![
                conv(stem),
                conv(ConvSpec::new(64, 192, 5)),
                conv(ConvSpec::new(192, 384, 3)),
                conv(ConvSpec::new(384, 256, 3)),
                conv(ConvSpec::new(256, 256, 3)),
            ],
            pool: MaxPooling::new(3, 2, 0),
            cifar_stem: self.cifar_stem,
            classifier: vec![
                fc(256 * POOLED * POOLED, HIDDEN),
                fc(HIDDEN, HIDDEN),
                fc(HIDDEN, self.num_classes),
            ],
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl AlexNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = x;
        for (index, conv) in self.features.iter().enumerate() {
            x = relu(conv.forward(x));
            // The pools follow the first, second and fifth convolutions.
            let pooled = match index {
                0 => !self.cifar_stem,
                1 | 4 => true,
                _ => false,
            };
            if pooled {
                x = self.pool.forward(x);
            }
        }
        let x = adaptive_avg_pool2d(x, [POOLED, POOLED]).flatten(1, 3);
        let [fc1, fc2, fc3] = [
            &self.classifier[0],
            &self.classifier[1],
            &self.classifier[2],
        ];
        let x = relu(fc1.forward(self.dropout.forward(x)));
        let x = relu(fc2.forward(self.dropout.forward(x)));
        fc3.forward(x)
    }
}

impl AlexNetConfig {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: `features.{0,3,6,8,10}`
    /// -> `features.{0..4}`, `classifier.{1,4,6}` -> `classifier.{0,1,2}`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        let (name, index, leaf) = match parts.as_slice() {
            [name, index, leaf] => (*name, *index, conv_leaf(leaf)?),
            _ => return None,
        };
        let table: &[&str] = match name {
            "features" => &TORCH_CONVS,
            "classifier" => &TORCH_LINEARS,
            _ => return None,
        };
        let position = table.iter().position(|i| *i == index)?;
        Some(format!("{name}.{position}.{leaf}"))
    }
}
