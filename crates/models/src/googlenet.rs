//! GoogleNet, the CIFAR-10 variant of the reference (SPEC §1): a 3x3 stem, nine inception blocks
//! in three stages separated by stride-2 max-pools, global average pooling and one linear layer.
//!
//! Inception v1 as torchvision's `googlenet` defines it, without the auxiliary heads: a 7x7
//! stride-2 stem, max-pools in ceil mode, nine inception blocks in three groups, global average
//! pooling, dropout and `fc`. Every convolution is torchvision's `BasicConv2d` (conv without bias,
//! BN with eps 1e-3, ReLU). Like torchvision, the "5x5" branch uses a 3x3 kernel (pytorch/vision
//! issue 906), so that torchvision's weights fit.
//!
//! `cifar_stem` replaces the 7x7 stride-2 stem by a 3x3 stride-1 convolution and drops the first
//! max-pool, for 32x32 images.
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::layers::torch_names::{basic_conv_key, conv_leaf, torch_bn_leaf};
use crate::layers::{
    Act, ConvNormAct, ConvSpec, FanMode, Init, MaxPooling, Norm, global_avg_pool,
    imagenet_to_unit_range, linear,
};
use crate::model::ModelConfig;
use crate::registry::{ModelEntry, variants};

pub const CIFAR_VARIANTS: &[ModelEntry] = variants![Cifar10;
    "googlenet", "googlenet", 32, "GoogleNet, CIFAR variant (9 inception blocks)"
        => ModelConfig::GoogleNet(GoogleNetCifarConfig::new()), reference(90.40, 89.70), recipe("googlenet.toml");
];

pub const IMAGENET_VARIANTS: &[ModelEntry] = variants![ImageNet;
    "inception_v1", "inception", 224, "Inception v1 (GoogLeNet), torchvision, without auxiliary heads"
        => ModelConfig::InceptionV1(InceptionV1Config::new());
];

/// Channels of one inception block: reductions before the 3x3 and 5x5 convolutions, and the
/// outputs of the four branches (1x1, 3x3, 5x5, pool), concatenated in that order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InceptionChannels {
    pub c_in: usize,
    pub reduce_3x3: usize,
    pub reduce_5x5: usize,
    pub out_1x1: usize,
    pub out_3x3: usize,
    pub out_5x5: usize,
    pub out_pool: usize,
}

impl InceptionChannels {
    const fn new(
        c_in: usize,
        [reduce_3x3, reduce_5x5]: [usize; 2],
        [out_1x1, out_3x3, out_5x5, out_pool]: [usize; 4],
    ) -> Self {
        Self {
            c_in,
            reduce_3x3,
            reduce_5x5,
            out_1x1,
            out_3x3,
            out_5x5,
            out_pool,
        }
    }

    pub fn c_out(&self) -> usize {
        self.out_1x1 + self.out_3x3 + self.out_5x5 + self.out_pool
    }
}

/// The reference's body; a stride-2 max-pool follows the blocks listed in [`POOL_AFTER`].
pub const GOOGLENET_BLOCKS: [InceptionChannels; 8] = [
    InceptionChannels::new(64, [32, 16], [16, 32, 8, 8]),
    InceptionChannels::new(64, [32, 16], [24, 48, 12, 12]),
    InceptionChannels::new(96, [32, 16], [24, 48, 12, 12]),
    InceptionChannels::new(96, [32, 16], [16, 48, 16, 16]),
    InceptionChannels::new(96, [32, 16], [16, 48, 16, 16]),
    InceptionChannels::new(96, [32, 16], [32, 48, 24, 24]),
    InceptionChannels::new(128, [48, 16], [32, 64, 16, 16]),
    InceptionChannels::new(128, [48, 16], [32, 64, 16, 16]),
];

/// Indices into [`GOOGLENET_BLOCKS`] after which the spatial size halves (32 -> 16 -> 8).
pub const POOL_AFTER: [usize; 2] = [1, 5];

const STEM_CHANNELS: usize = 64;

#[derive(Config, Debug)]
pub struct GoogleNetCifarConfig {
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "Act::Relu")]
    pub activation: Act,
}

/// Convolution with a bias (PyTorch's default, which the reference keeps), batch norm and `act`.
fn unit(spec: ConvSpec, init: Init, act: Act, device: &Device) -> ConvNormAct {
    let conv = spec.init(init, Some(Init::TorchDefault), device);
    ConvNormAct::with_conv(conv, spec.c_out, Norm::TORCH, Some(act), device)
}

/// Four branches on the same input, concatenated on channels.
#[derive(Module, Debug)]
pub struct InceptionBlock {
    pub conv_1x1: ConvNormAct,
    /// 1x1 reduction, then 3x3.
    pub conv_3x3: Vec<ConvNormAct>,
    /// 1x1 reduction, then 5x5.
    pub conv_5x5: Vec<ConvNormAct>,
    pub max_pool: MaxPooling,
    pub pool_proj: ConvNormAct,
}

impl InceptionBlock {
    pub fn new(c: InceptionChannels, act: Act, device: &Device) -> Self {
        let init = Init::kaiming(act, FanMode::FanIn);
        let unit = |spec: ConvSpec| unit(spec, init, act, device);
        Self {
            conv_1x1: unit(ConvSpec::new(c.c_in, c.out_1x1, 1)),
            conv_3x3: vec![
                unit(ConvSpec::new(c.c_in, c.reduce_3x3, 1)),
                unit(ConvSpec::new(c.reduce_3x3, c.out_3x3, 3)),
            ],
            conv_5x5: vec![
                unit(ConvSpec::new(c.c_in, c.reduce_5x5, 1)),
                unit(ConvSpec::new(c.reduce_5x5, c.out_5x5, 5)),
            ],
            max_pool: MaxPooling::new(3, 1, 1),
            pool_proj: unit(ConvSpec::new(c.c_in, c.out_pool, 1)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let chain =
            |units: &[ConvNormAct], x: Tensor<4>| units.iter().fold(x, |x, unit| unit.forward(x));
        let branches = vec![
            self.conv_1x1.forward(x.clone()),
            chain(&self.conv_3x3, x.clone()),
            chain(&self.conv_5x5, x.clone()),
            self.pool_proj.forward(self.max_pool.forward(x)),
        ];
        Tensor::cat(branches, 1)
    }
}

#[derive(Module, Debug)]
pub struct GoogleNetCifar {
    pub input_net: ConvNormAct,
    pub inception_blocks: Vec<InceptionBlock>,
    pub downsample: MaxPooling,
    pub output_net: Linear,
}

impl GoogleNetCifarConfig {
    pub fn init(&self, device: &Device) -> GoogleNetCifar {
        let init = Init::kaiming(self.activation, FanMode::FanIn);
        let c_last = GOOGLENET_BLOCKS[GOOGLENET_BLOCKS.len() - 1].c_out();
        GoogleNetCifar {
            input_net: unit(
                ConvSpec::new(3, STEM_CHANNELS, 3),
                init,
                self.activation,
                device,
            ),
            inception_blocks: GOOGLENET_BLOCKS
                .iter()
                .map(|c| InceptionBlock::new(*c, self.activation, device))
                .collect(),
            downsample: MaxPooling::new(3, 2, 1),
            output_net: LinearConfig::new(c_last, self.num_classes).init(device),
        }
    }
}

impl GoogleNetCifar {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.input_net.forward(x);
        for (i, block) in self.inception_blocks.iter().enumerate() {
            x = block.forward(x);
            if POOL_AFTER.contains(&i) {
                x = self.downsample.forward(x);
            }
        }
        self.output_net.forward(global_avg_pool(x))
    }
}

impl GoogleNetCifarConfig {
    /// Maps a reference PyTorch `state_dict` key onto this module's parameter path.
    ///
    /// The reference keeps the two max-pools inside `inception_blocks` (positions 2 and 7), and its
    /// branches are `nn.Sequential`s of conv, BN, activation, so:
    /// `input_net.{0,1}` -> `input_net.{conv,bn}`, `output_net.2` -> `output_net`,
    /// `inception_blocks.i` -> `inception_blocks.(i minus the pools before it)`,
    /// `conv_1x1.{0,1}` -> `conv_1x1.{conv,bn}`, `conv_3x3.k` / `conv_5x5.k` -> `.(k/3).{conv,bn}`,
    /// `max_pool.{1,2}` -> `pool_proj.{conv,bn}`; BN `weight`/`bias` are burn's `gamma`/`beta`.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        let mapped: Vec<String> = match parts.as_slice() {
            ["input_net", idx, leaf] => vec!["input_net".into(), conv_bn_unit(idx, leaf)?],
            ["output_net", "2", leaf] => vec!["output_net".into(), (*leaf).into()],
            ["inception_blocks", idx, branch, sub, leaf] => {
                let block = reference_block(idx.parse().ok()?)?;
                let unit = match *branch {
                    "conv_1x1" => vec!["conv_1x1".into(), conv_bn_unit(sub, leaf)?],
                    "conv_3x3" | "conv_5x5" => {
                        let k: usize = sub.parse().ok()?;
                        vec![
                            (*branch).into(),
                            (k / 3).to_string(),
                            conv_bn_unit(&(k % 3).to_string(), leaf)?,
                        ]
                    }
                    "max_pool" => {
                        let k: usize = sub.parse().ok()?;
                        vec![
                            "pool_proj".into(),
                            conv_bn_unit(&(k.checked_sub(1)?).to_string(), leaf)?,
                        ]
                    }
                    _ => return None,
                };
                [vec!["inception_blocks".into(), block.to_string()], unit].concat()
            }
            _ => return None,
        };
        Some(mapped.join("."))
    }
}

/// Our block index for the reference's `inception_blocks` index, `None` for its max-pools.
fn reference_block(torch_index: usize) -> Option<usize> {
    let mut position = 0;
    for block in 0..GOOGLENET_BLOCKS.len() {
        if position == torch_index {
            return Some(block);
        }
        position += 1 + usize::from(POOL_AFTER.contains(&block));
    }
    None
}

/// `0.weight` -> `conv.weight`, `1.weight` -> `bn.gamma`, ... within a conv-BN-activation sequence.
fn conv_bn_unit(index: &str, leaf: &str) -> Option<String> {
    Some(match (index, leaf) {
        ("0", "weight" | "bias") => format!("conv.{leaf}"),
        ("1", leaf) => format!("bn.{}", torch_bn_leaf(leaf)?),
        _ => return None,
    })
}

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
fn ceil_pool(kernel: usize, stride: usize, padding: usize) -> MaxPooling {
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
    pub pool: MaxPooling,
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
    pub maxpool1: Option<MaxPooling>,
    pub conv2: ConvNormAct,
    pub conv3: ConvNormAct,
    pub maxpool2: MaxPooling,
    /// `inception3a` ... `inception5b`, in the order of [`INCEPTION_V1_BLOCKS`].
    pub blocks: Vec<InceptionV1Block>,
    pub maxpool3: MaxPooling,
    /// 2x2 stride 2, unlike the other three.
    pub maxpool4: MaxPooling,
    pub dropout: Dropout,
    pub fc: Linear,
    pub transform_input: bool,
}

impl InceptionV1Config {
    pub fn init(&self, device: &Device) -> InceptionV1 {
        let stem = ConvSpec::new(3, 64, 7)
            .stride(2)
            .or_cifar_stem(self.cifar_stem);
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
        self.fc.forward(self.dropout.forward(global_avg_pool(x)))
    }
}

impl InceptionV1Config {
    /// Maps a torchvision `state_dict` key onto this module's parameter path: `inception3a` ...
    /// `inception5b` -> `blocks.0` ... `blocks.8`, `branch4.1` -> `branch4`; the rest keeps
    /// torchvision's names, with batch norms' `weight`/`bias` as burn's `gamma`/`beta`. The
    /// auxiliary heads (`aux1`, `aux2`) are not part of this network and map to nothing.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        let parts: Vec<&str> = key.split('.').collect();
        match parts.as_slice() {
            ["fc", leaf] => Some(format!("fc.{}", conv_leaf(leaf)?)),
            [unit @ ("conv1" | "conv2" | "conv3"), module, leaf] => {
                basic_conv_key(unit, module, leaf)
            }
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
}
