//! Inception v3 as torchvision defines it (`torchvision.models.inception_v3`), with its auxiliary
//! classifier: for 299x299 images, a stem of five `BasicConv2d` and two max-pools, the inception
//! blocks A (`Mixed_5b..d`), B (`Mixed_6a`), C (`Mixed_6b..e`), D (`Mixed_7a`), E (`Mixed_7b..c`),
//! global average pooling, dropout and `fc`; the auxiliary head reads `Mixed_6e`'s output. Every
//! convolution is a `BasicConv2d`: conv without bias, BN with eps 1e-3, ReLU.
//!
//! `cifar_stem` makes the first convolution stride 1 and drops the first max-pool, for 32x32
//! images. At that size the auxiliary head's input is 5x5, smaller than its 5x5 stride-3 average
//! pool expects (17x17), so with the CIFAR stem the head pools adaptively to 5x5 instead.
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;

use crate::layers::torch_names::{basic_conv_key, conv_leaf};
use crate::layers::{
    Act, ConvNormAct, ConvSpec, Init, MaxPooling, Norm, global_avg_pool, imagenet_to_unit_range,
    linear,
};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const VARIANTS: &[ModelEntry] = variants![ImageNet;
    "inception_v3", "inception", 299, "Inception v3, torchvision, with its auxiliary head"
        => ModelConfig::InceptionV3(InceptionV3Config::new());
];

#[derive(Config, Debug)]
pub struct InceptionV3Config {
    #[config(default = 1000)]
    pub num_classes: usize,
    /// A stride-1 first convolution and no first max-pool, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
    /// Build the auxiliary classifier (`AuxLogits`).
    #[config(default = true)]
    pub aux_logits: bool,
    /// Dropout before `fc` while training.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Re-normalise inputs from ImageNet's mean/std to [-1, 1], as torchvision does for its
    /// published weights (which expect it).
    #[config(default = false)]
    pub transform_input: bool,
}

/// torchvision's `BasicConv2d`, weights `trunc_normal_(std)` (a plain normal at these stds).
fn basic_conv(spec: ConvSpec, std: f64, device: &Device) -> ConvNormAct {
    let norm = Norm {
        eps: 1e-3,
        momentum: 0.1,
    };
    ConvNormAct::new(spec, Init::Normal(std), norm, Some(Act::Relu), device)
}

/// The default std of torchvision's Inception v3 initialisation.
const STD: f64 = 0.1;

fn unit(c_in: usize, c_out: usize, kernel: usize, device: &Device) -> ConvNormAct {
    basic_conv(ConvSpec::new(c_in, c_out, kernel), STD, device)
}

/// A factorised `kh` x `kw` convolution keeping the size.
fn rect(c_in: usize, c_out: usize, kernel: [usize; 2], device: &Device) -> ConvNormAct {
    basic_conv(ConvSpec::rect(c_in, c_out, kernel), STD, device)
}

/// A 3x3 stride-2 convolution without padding: the grid-size reductions.
fn reduce(c_in: usize, c_out: usize, device: &Device) -> ConvNormAct {
    basic_conv(ConvSpec::new(c_in, c_out, 3).stride(2).valid(), STD, device)
}

/// `F.avg_pool2d(x, 3, stride=1, padding=1)`, padding counted in the mean as PyTorch's default.
fn same_avg_pool() -> AvgPool2d {
    AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .with_count_include_pad(true)
        .init()
}

fn max_pool_3x3_s2() -> MaxPooling {
    MaxPooling::new(3, 2, 0)
}

fn chain(units: &[&ConvNormAct], x: Tensor<4>) -> Tensor<4> {
    units.iter().fold(x, |x, unit| unit.forward(x))
}

/// Branches 1x1; 1x1-5x5; 1x1-3x3-3x3; avg-pool-1x1 (`Mixed_5b..d`).
#[derive(Module, Debug)]
pub struct InceptionA {
    pub branch1x1: ConvNormAct,
    pub branch5x5_1: ConvNormAct,
    pub branch5x5_2: ConvNormAct,
    pub branch3x3dbl_1: ConvNormAct,
    pub branch3x3dbl_2: ConvNormAct,
    pub branch3x3dbl_3: ConvNormAct,
    pub pool: AvgPool2d,
    pub branch_pool: ConvNormAct,
}

impl InceptionA {
    fn new(c_in: usize, pool_features: usize, device: &Device) -> Self {
        Self {
            branch1x1: unit(c_in, 64, 1, device),
            branch5x5_1: unit(c_in, 48, 1, device),
            branch5x5_2: unit(48, 64, 5, device),
            branch3x3dbl_1: unit(c_in, 64, 1, device),
            branch3x3dbl_2: unit(64, 96, 3, device),
            branch3x3dbl_3: unit(96, 96, 3, device),
            pool: same_avg_pool(),
            branch_pool: unit(c_in, pool_features, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.branch1x1.forward(x.clone()),
            chain(&[&self.branch5x5_1, &self.branch5x5_2], x.clone()),
            chain(
                &[
                    &self.branch3x3dbl_1,
                    &self.branch3x3dbl_2,
                    &self.branch3x3dbl_3,
                ],
                x.clone(),
            ),
            self.branch_pool.forward(self.pool.forward(x)),
        ];
        Tensor::cat(branches, 1)
    }
}

/// Grid reduction 35 -> 17: 3x3/2; 1x1-3x3-3x3/2; max-pool/2 (`Mixed_6a`).
#[derive(Module, Debug)]
pub struct InceptionB {
    pub branch3x3: ConvNormAct,
    pub branch3x3dbl_1: ConvNormAct,
    pub branch3x3dbl_2: ConvNormAct,
    pub branch3x3dbl_3: ConvNormAct,
    pub pool: MaxPooling,
}

impl InceptionB {
    fn new(c_in: usize, device: &Device) -> Self {
        Self {
            branch3x3: reduce(c_in, 384, device),
            branch3x3dbl_1: unit(c_in, 64, 1, device),
            branch3x3dbl_2: unit(64, 96, 3, device),
            branch3x3dbl_3: reduce(96, 96, device),
            pool: max_pool_3x3_s2(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.branch3x3.forward(x.clone()),
            chain(
                &[
                    &self.branch3x3dbl_1,
                    &self.branch3x3dbl_2,
                    &self.branch3x3dbl_3,
                ],
                x.clone(),
            ),
            self.pool.forward(x),
        ];
        Tensor::cat(branches, 1)
    }
}

/// Factorised 7x7 branches (`Mixed_6b..e`).
#[derive(Module, Debug)]
pub struct InceptionC {
    pub branch1x1: ConvNormAct,
    pub branch7x7_1: ConvNormAct,
    pub branch7x7_2: ConvNormAct,
    pub branch7x7_3: ConvNormAct,
    pub branch7x7dbl_1: ConvNormAct,
    pub branch7x7dbl_2: ConvNormAct,
    pub branch7x7dbl_3: ConvNormAct,
    pub branch7x7dbl_4: ConvNormAct,
    pub branch7x7dbl_5: ConvNormAct,
    pub pool: AvgPool2d,
    pub branch_pool: ConvNormAct,
}

impl InceptionC {
    fn new(c_in: usize, c7: usize, device: &Device) -> Self {
        Self {
            branch1x1: unit(c_in, 192, 1, device),
            branch7x7_1: unit(c_in, c7, 1, device),
            branch7x7_2: rect(c7, c7, [1, 7], device),
            branch7x7_3: rect(c7, 192, [7, 1], device),
            branch7x7dbl_1: unit(c_in, c7, 1, device),
            branch7x7dbl_2: rect(c7, c7, [7, 1], device),
            branch7x7dbl_3: rect(c7, c7, [1, 7], device),
            branch7x7dbl_4: rect(c7, c7, [7, 1], device),
            branch7x7dbl_5: rect(c7, 192, [1, 7], device),
            pool: same_avg_pool(),
            branch_pool: unit(c_in, 192, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            self.branch1x1.forward(x.clone()),
            chain(
                &[&self.branch7x7_1, &self.branch7x7_2, &self.branch7x7_3],
                x.clone(),
            ),
            chain(
                &[
                    &self.branch7x7dbl_1,
                    &self.branch7x7dbl_2,
                    &self.branch7x7dbl_3,
                    &self.branch7x7dbl_4,
                    &self.branch7x7dbl_5,
                ],
                x.clone(),
            ),
            self.branch_pool.forward(self.pool.forward(x)),
        ];
        Tensor::cat(branches, 1)
    }
}

/// Grid reduction 17 -> 8 (`Mixed_7a`).
#[derive(Module, Debug)]
pub struct InceptionD {
    pub branch3x3_1: ConvNormAct,
    pub branch3x3_2: ConvNormAct,
    pub branch7x7x3_1: ConvNormAct,
    pub branch7x7x3_2: ConvNormAct,
    pub branch7x7x3_3: ConvNormAct,
    pub branch7x7x3_4: ConvNormAct,
    pub pool: MaxPooling,
}

impl InceptionD {
    fn new(c_in: usize, device: &Device) -> Self {
        Self {
            branch3x3_1: unit(c_in, 192, 1, device),
            branch3x3_2: reduce(192, 320, device),
            branch7x7x3_1: unit(c_in, 192, 1, device),
            branch7x7x3_2: rect(192, 192, [1, 7], device),
            branch7x7x3_3: rect(192, 192, [7, 1], device),
            branch7x7x3_4: reduce(192, 192, device),
            pool: max_pool_3x3_s2(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let branches = vec![
            chain(&[&self.branch3x3_1, &self.branch3x3_2], x.clone()),
            chain(
                &[
                    &self.branch7x7x3_1,
                    &self.branch7x7x3_2,
                    &self.branch7x7x3_3,
                    &self.branch7x7x3_4,
                ],
                x.clone(),
            ),
            self.pool.forward(x),
        ];
        Tensor::cat(branches, 1)
    }
}

/// Expanded filter banks: 1x3 and 3x1 side by side (`Mixed_7b..c`).
#[derive(Module, Debug)]
pub struct InceptionE {
    pub branch1x1: ConvNormAct,
    pub branch3x3_1: ConvNormAct,
    pub branch3x3_2a: ConvNormAct,
    pub branch3x3_2b: ConvNormAct,
    pub branch3x3dbl_1: ConvNormAct,
    pub branch3x3dbl_2: ConvNormAct,
    pub branch3x3dbl_3a: ConvNormAct,
    pub branch3x3dbl_3b: ConvNormAct,
    pub pool: AvgPool2d,
    pub branch_pool: ConvNormAct,
}

impl InceptionE {
    fn new(c_in: usize, device: &Device) -> Self {
        Self {
            branch1x1: unit(c_in, 320, 1, device),
            branch3x3_1: unit(c_in, 384, 1, device),
            branch3x3_2a: rect(384, 384, [1, 3], device),
            branch3x3_2b: rect(384, 384, [3, 1], device),
            branch3x3dbl_1: unit(c_in, 448, 1, device),
            branch3x3dbl_2: unit(448, 384, 3, device),
            branch3x3dbl_3a: rect(384, 384, [1, 3], device),
            branch3x3dbl_3b: rect(384, 384, [3, 1], device),
            pool: same_avg_pool(),
            branch_pool: unit(c_in, 192, 1, device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let b3 = self.branch3x3_1.forward(x.clone());
        let b3 = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b3.clone()),
                self.branch3x3_2b.forward(b3),
            ],
            1,
        );
        let bd = chain(&[&self.branch3x3dbl_1, &self.branch3x3dbl_2], x.clone());
        let bd = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(bd.clone()),
                self.branch3x3dbl_3b.forward(bd),
            ],
            1,
        );
        let branches = vec![
            self.branch1x1.forward(x.clone()),
            b3,
            bd,
            self.branch_pool.forward(self.pool.forward(x)),
        ];
        Tensor::cat(branches, 1)
    }
}

/// The auxiliary classifier on `Mixed_6e`: 5x5/3 average pool, 1x1 to 128, 5x5 to 768, global
/// average pool, `fc`.
#[derive(Module, Debug)]
pub struct InceptionAux {
    pub conv0: ConvNormAct,
    pub conv1: ConvNormAct,
    pub fc: Linear,
    /// The 5x5/3 pool; `None` pools adaptively to 5x5 (the CIFAR stem).
    pub pool: Option<AvgPool2d>,
}

impl InceptionAux {
    fn new(c_in: usize, num_classes: usize, cifar_stem: bool, device: &Device) -> Self {
        Self {
            conv0: unit(c_in, 128, 1, device),
            conv1: basic_conv(ConvSpec::new(128, 768, 5).valid(), 0.01, device),
            fc: linear(
                768,
                num_classes,
                Init::Normal(0.001),
                Init::TorchDefault,
                device,
            ),
            pool: (!cifar_stem).then(|| AvgPool2dConfig::new([5, 5]).with_strides([3, 3]).init()),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = match &self.pool {
            Some(pool) => pool.forward(x),
            None => adaptive_avg_pool2d(x, [5, 5]),
        };
        let x = self.conv1.forward(self.conv0.forward(x));
        self.fc.forward(global_avg_pool(x))
    }
}

#[derive(Module, Debug)]
pub struct InceptionV3 {
    pub conv2d_1a_3x3: ConvNormAct,
    pub conv2d_2a_3x3: ConvNormAct,
    pub conv2d_2b_3x3: ConvNormAct,
    /// Absent with the CIFAR stem.
    pub maxpool1: Option<MaxPooling>,
    pub conv2d_3b_1x1: ConvNormAct,
    pub conv2d_4a_3x3: ConvNormAct,
    pub maxpool2: MaxPooling,
    pub mixed_5b: InceptionA,
    pub mixed_5c: InceptionA,
    pub mixed_5d: InceptionA,
    pub mixed_6a: InceptionB,
    pub mixed_6b: InceptionC,
    pub mixed_6c: InceptionC,
    pub mixed_6d: InceptionC,
    pub mixed_6e: InceptionC,
    pub aux_logits: Option<InceptionAux>,
    pub mixed_7a: InceptionD,
    pub mixed_7b: InceptionE,
    pub mixed_7c: InceptionE,
    pub dropout: Dropout,
    pub fc: Linear,
    pub transform_input: bool,
}

impl InceptionV3Config {
    pub fn init(&self, device: &Device) -> InceptionV3 {
        let stride = if self.cifar_stem { 1 } else { 2 };
        InceptionV3 {
            conv2d_1a_3x3: basic_conv(ConvSpec::new(3, 32, 3).stride(stride).valid(), STD, device),
            conv2d_2a_3x3: basic_conv(ConvSpec::new(32, 32, 3).valid(), STD, device),
            conv2d_2b_3x3: unit(32, 64, 3, device),
            maxpool1: (!self.cifar_stem).then(max_pool_3x3_s2),
            conv2d_3b_1x1: unit(64, 80, 1, device),
            conv2d_4a_3x3: basic_conv(ConvSpec::new(80, 192, 3).valid(), STD, device),
            maxpool2: max_pool_3x3_s2(),
            mixed_5b: InceptionA::new(192, 32, device),
            mixed_5c: InceptionA::new(256, 64, device),
            mixed_5d: InceptionA::new(288, 64, device),
            mixed_6a: InceptionB::new(288, device),
            mixed_6b: InceptionC::new(768, 128, device),
            mixed_6c: InceptionC::new(768, 160, device),
            mixed_6d: InceptionC::new(768, 160, device),
            mixed_6e: InceptionC::new(768, 192, device),
            aux_logits: self
                .aux_logits
                .then(|| InceptionAux::new(768, self.num_classes, self.cifar_stem, device)),
            mixed_7a: InceptionD::new(768, device),
            mixed_7b: InceptionE::new(1280, device),
            mixed_7c: InceptionE::new(2048, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: linear(
                2048,
                self.num_classes,
                Init::Normal(STD),
                Init::TorchDefault,
                device,
            ),
            transform_input: self.transform_input,
        }
    }
}

impl InceptionV3 {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.forward_features(x, false).0
    }

    /// The logits and, when the network has its auxiliary classifier, the auxiliary logits (which
    /// torchvision computes only while training, and its recipe weighs by 0.4 in the loss).
    pub fn forward_with_aux(&self, x: Tensor<4>) -> (Tensor<2>, Option<Tensor<2>>) {
        self.forward_features(x, true)
    }

    fn forward_features(&self, x: Tensor<4>, with_aux: bool) -> (Tensor<2>, Option<Tensor<2>>) {
        let x = if self.transform_input {
            imagenet_to_unit_range(x)
        } else {
            x
        };
        let mut x = chain(
            &[
                &self.conv2d_1a_3x3,
                &self.conv2d_2a_3x3,
                &self.conv2d_2b_3x3,
            ],
            x,
        );
        if let Some(pool) = &self.maxpool1 {
            x = pool.forward(x);
        }
        let x = chain(&[&self.conv2d_3b_1x1, &self.conv2d_4a_3x3], x);
        let x = self.maxpool2.forward(x);
        let x = self
            .mixed_5d
            .forward(self.mixed_5c.forward(self.mixed_5b.forward(x)));
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6c.forward(self.mixed_6b.forward(x));
        let x = self.mixed_6e.forward(self.mixed_6d.forward(x));
        let aux = match (&self.aux_logits, with_aux) {
            (Some(head), true) => Some(head.forward(x.clone())),
            _ => None,
        };
        let x = self
            .mixed_7c
            .forward(self.mixed_7b.forward(self.mixed_7a.forward(x)));
        let logits = self.fc.forward(self.dropout.forward(global_avg_pool(x)));
        (logits, aux)
    }
}

impl InceptionV3Config {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: the top-level names
    /// are lower-cased (`Conv2d_1a_3x3` -> `conv2d_1a_3x3`, `Mixed_5b` -> `mixed_5b`, `AuxLogits` ->
    /// `aux_logits`), everything below keeps torchvision's names, with batch norms' `weight`/`bias` as
    /// burn's `gamma`/`beta`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["fc", leaf] => Some(format!("fc.{}", conv_leaf(leaf)?)),
            ["AuxLogits", "fc", leaf] => Some(format!("aux_logits.fc.{}", conv_leaf(leaf)?)),
            ["AuxLogits", unit @ ("conv0" | "conv1"), module, leaf] => {
                basic_conv_key(&format!("aux_logits.{unit}"), module, leaf)
            }
            [unit, module, leaf] if unit.starts_with("Conv2d_") => {
                basic_conv_key(&unit.to_lowercase(), module, leaf)
            }
            [block, branch, module, leaf]
                if block.starts_with("Mixed_") && branch.starts_with("branch") =>
            {
                basic_conv_key(&format!("{}.{branch}", block.to_lowercase()), module, leaf)
            }
            _ => None,
        }
    }
}
