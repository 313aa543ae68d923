//! Inception v1 as torchvision's `googlenet` defines it, without the auxiliary heads: a 7x7
//! stride-2 stem, max-pools in ceil mode, nine inception blocks in three groups, global average
//! pooling, dropout and `fc`. Every convolution is torchvision's `BasicConv2d` (conv without bias,
//! BN with eps 1e-3, ReLU). Like torchvision, the "5x5" branch uses a 3x3 kernel (pytorch/vision
//! issue 906), so that torchvision's weights fit.
//!
//! `cifar_stem` replaces the 7x7 stride-2 stem by a 3x3 stride-1 convolution and drops the first
//! max-pool, for 32x32 images.
use crate::layers::MaxPool2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Dropout, DropoutConfig, Linear, PaddingConfig2d};
use burn::prelude::*;

use crate::ops::{
    Act, ConvNormAct, ConvSpec, Init, Norm, basic_conv_key, conv_leaf, global_pool, linear,
};

/// Channels of one inception block (torchvision's argument order): the 1x1 branch, the reduction
/// and output of the 3x3 branch, of the "5x5" branch, and the pool projection.
#[derive(Clone, Copy, Debug)]
pub struct InceptionV1Channels {
    pub name: &'static str,
    pub c_in: usize,
    pub ch1x1: usize,
    pub ch3x3red: usize,
    pub ch3x3: usize,
    pub ch5x5red: usize,
    pub ch5x5: usize,
    pub pool_proj: usize,
}

const fn block(name: &'static str, c: [usize; 7]) -> InceptionV1Channels {
    InceptionV1Channels {
        name,
        c_in: c[0],
        ch1x1: c[1],
        ch3x3red: c[2],
        ch3x3: c[3],
        ch5x5red: c[4],
        ch5x5: c[5],
        pool_proj: c[6],
    }
}

/// torchvision's blocks, by their attribute names.
pub const INCEPTION_V1_BLOCKS: [InceptionV1Channels; 9] = [
    block("inception3a", [192, 64, 96, 128, 16, 32, 32]),
    block("inception3b", [256, 128, 128, 192, 32, 96, 64]),
    block("inception4a", [480, 192, 96, 208, 16, 48, 64]),
    block("inception4b", [512, 160, 112, 224, 24, 64, 64]),
    block("inception4c", [512, 128, 128, 256, 24, 64, 64]),
    block("inception4d", [512, 112, 144, 288, 32, 64, 64]),
    block("inception4e", [528, 256, 160, 320, 32, 128, 128]),
    block("inception5a", [832, 256, 160, 320, 32, 128, 128]),
    block("inception5b", [832, 384, 192, 384, 48, 128, 128]),
];

#[derive(Config, Debug)]
pub struct InceptionV1Config {
    #[config(default = 1000)]
    pub num_classes: usize,
    /// A 3x3 stride-1 first convolution and no first max-pool, for 32x32 images.
    #[config(default = false)]
    pub cifar_stem: bool,
    /// Dropout before `fc` while training.
    #[config(default = 0.2)]
    pub dropout: f64,
    /// Re-normalise inputs from ImageNet's mean/std to [-1, 1], as torchvision does for its
    /// published weights (which expect it).
    #[config(default = false)]
    pub transform_input: bool,
}

/// torchvision's `BasicConv2d`.
fn basic_conv(spec: ConvSpec, device: &Device) -> ConvNormAct {
    // trunc_normal_(std=0.01, a=-2, b=2), the same as a normal at this std.
    ConvNormAct::new(
        spec,
        Init::Normal(0.01),
        Norm {
            eps: 1e-3,
            momentum: 0.1,
        },
        Some(Act::Relu),
        device,
    )
}

/// Max-pool in ceil mode, as all of GoogLeNet's pools.
fn ceil_pool(kernel: usize, stride: usize, padding: usize) -> MaxPool2d {
    MaxPool2dConfig::new([kernel, kernel])
        .with_strides([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_ceil_mode(true)
        .init()
        .into()
}

/// Four branches on the same input, concatenated on channels: 1x1; 1x1 then 3x3; 1x1 then 3x3
/// (the "5x5"); 3x3 max-pool then 1x1.
#[derive(Module, Debug)]
pub struct InceptionV1Block {
    pub branch1: ConvNormAct,
    pub branch2: Vec<ConvNormAct>,
    pub branch3: Vec<ConvNormAct>,
    pub pool: MaxPool2d,
    /// torchvision's `branch4.1` (its `branch4.0` is the pool).
    pub branch4: ConvNormAct,
}

impl InceptionV1Block {
    fn new(c: &InceptionV1Channels, device: &Device) -> Self {
        let unit = |c_in, c_out, k| basic_conv(ConvSpec::new(c_in, c_out, k), device);
        Self {
            branch1: unit(c.c_in, c.ch1x1, 1),
            branch2: vec![unit(c.c_in, c.ch3x3red, 1), unit(c.ch3x3red, c.ch3x3, 3)],
            branch3: vec![unit(c.c_in, c.ch5x5red, 1), unit(c.ch5x5red, c.ch5x5, 3)],
            pool: ceil_pool(3, 1, 1),
            branch4: unit(c.c_in, c.pool_proj, 1),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let chain = |units: &[ConvNormAct], x| units.iter().fold(x, |x, unit| unit.forward(x));
        Tensor::cat(
            vec![
                self.branch1.forward(x.clone()),
                chain(&self.branch2, x.clone()),
                chain(&self.branch3, x.clone()),
                self.branch4.forward(self.pool.forward(x)),
            ],
            1,
        )
    }
}

#[derive(Module, Debug)]
pub struct InceptionV1 {
    pub conv1: ConvNormAct,
    /// Absent with the CIFAR stem.
    pub maxpool1: Option<MaxPool2d>,
    pub conv2: ConvNormAct,
    pub conv3: ConvNormAct,
    pub maxpool2: MaxPool2d,
    /// `inception3a` ... `inception5b`, in the order of [`INCEPTION_V1_BLOCKS`].
    pub blocks: Vec<InceptionV1Block>,
    pub maxpool3: MaxPool2d,
    /// 2x2 stride 2, unlike the other three.
    pub maxpool4: MaxPool2d,
    pub dropout: Dropout,
    pub fc: Linear,
    pub transform_input: bool,
}

impl InceptionV1Config {
    pub fn init(&self, device: &Device) -> InceptionV1 {
        let stem = if self.cifar_stem {
            ConvSpec::new(3, 64, 3)
        } else {
            ConvSpec::new(3, 64, 7).stride(2)
        };
        InceptionV1 {
            conv1: basic_conv(stem, device),
            maxpool1: (!self.cifar_stem).then(|| ceil_pool(3, 2, 0)),
            conv2: basic_conv(ConvSpec::new(64, 64, 1), device),
            conv3: basic_conv(ConvSpec::new(64, 192, 3), device),
            maxpool2: ceil_pool(3, 2, 0),
            blocks: INCEPTION_V1_BLOCKS
                .iter()
                .map(|c| InceptionV1Block::new(c, device))
                .collect(),
            maxpool3: ceil_pool(3, 2, 0),
            maxpool4: ceil_pool(2, 2, 0),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: linear(
                1024,
                self.num_classes,
                Init::Normal(0.01),
                Init::TorchDefault,
                device,
            ),
            transform_input: self.transform_input,
        }
    }
}

impl InceptionV1 {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = if self.transform_input {
            imagenet_to_unit_range(x)
        } else {
            x
        };
        let mut x = self.conv1.forward(x);
        if let Some(pool) = &self.maxpool1 {
            x = pool.forward(x);
        }
        x = self
            .maxpool2
            .forward(self.conv3.forward(self.conv2.forward(x)));
        for (block, channels) in self.blocks.iter().zip(&INCEPTION_V1_BLOCKS) {
            x = block.forward(x);
            // torchvision's `maxpool3` and `maxpool4`.
            match channels.name {
                "inception3b" => x = self.maxpool3.forward(x),
                "inception4e" => x = self.maxpool4.forward(x),
                _ => {}
            }
        }
        self.fc.forward(self.dropout.forward(global_pool(x)))
    }
}

/// torchvision's `_transform_input`: channel c becomes x * std_c / 0.5 + (mean_c - 0.5) / 0.5,
/// turning an ImageNet-normalised image into one normalised to [-1, 1].
pub fn imagenet_to_unit_range(x: Tensor<4>) -> Tensor<4> {
    const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
    const STD: [f64; 3] = [0.229, 0.224, 0.225];
    let [n, _, h, w] = x.dims();
    let channels = (0..3)
        .map(|c| {
            x.clone()
                .slice([0..n, c..c + 1, 0..h, 0..w])
                .mul_scalar(STD[c] / 0.5)
                .add_scalar((MEAN[c] - 0.5) / 0.5)
        })
        .collect();
    Tensor::cat(channels, 1)
}

/// Maps a torchvision `state_dict` key onto this module's parameter path: `inception3a` ...
/// `inception5b` -> `blocks.0` ... `blocks.8`, `branch4.1` -> `branch4`; the rest keeps
/// torchvision's names, with batch norms' `weight`/`bias` as burn's `gamma`/`beta`. The
/// auxiliary heads (`aux1`, `aux2`) are not part of this network and map to nothing.
pub fn torch_key(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["fc", leaf] => Some(format!("fc.{}", conv_leaf(leaf)?)),
        [unit @ ("conv1" | "conv2" | "conv3"), module, leaf] => basic_conv_key(unit, module, leaf),
        [name, rest @ ..] => {
            let index = INCEPTION_V1_BLOCKS.iter().position(|b| b.name == *name)?;
            let prefix = format!("blocks.{index}");
            match rest {
                ["branch1", module, leaf] => {
                    basic_conv_key(&format!("{prefix}.branch1"), module, leaf)
                }
                [
                    branch @ ("branch2" | "branch3"),
                    i @ ("0" | "1"),
                    module,
                    leaf,
                ] => basic_conv_key(&format!("{prefix}.{branch}.{i}"), module, leaf),
                ["branch4", "1", module, leaf] => {
                    basic_conv_key(&format!("{prefix}.branch4"), module, leaf)
                }
                _ => None,
            }
        }
        _ => None,
    }
}
