//! GoogleNet, the CIFAR-10 variant of the reference (SPEC §1): a 3x3 stem, nine inception blocks
//! in three stages separated by stride-2 max-pools, global average pooling and one linear layer.
use crate::layers::MaxPool2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;

use crate::activation::ActivationKind;
use crate::layers::{ConvBnAct, ConvShape, FanMode, KaimingNormal, global_avg_pool};

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
pub struct GoogleNetConfig {
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "ActivationKind::Relu")]
    pub activation: ActivationKind,
}

/// Four branches on the same input, concatenated on channels.
#[derive(Module, Debug)]
pub struct InceptionBlock {
    pub conv_1x1: ConvBnAct,
    /// 1x1 reduction, then 3x3.
    pub conv_3x3: Vec<ConvBnAct>,
    /// 1x1 reduction, then 5x5.
    pub conv_5x5: Vec<ConvBnAct>,
    pub max_pool: MaxPool2d,
    pub pool_proj: ConvBnAct,
}

impl InceptionBlock {
    pub fn new(c: InceptionChannels, act: ActivationKind, device: &Device) -> Self {
        let init = KaimingNormal {
            gain: act.kaiming_gain(),
            mode: FanMode::FanIn,
        };
        let unit = |shape: ConvShape| ConvBnAct::new(shape, init, act.init(device), device);
        Self {
            conv_1x1: unit(ConvShape::same(c.c_in, c.out_1x1, 1)),
            conv_3x3: vec![
                unit(ConvShape::same(c.c_in, c.reduce_3x3, 1)),
                unit(ConvShape::same(c.reduce_3x3, c.out_3x3, 3)),
            ],
            conv_5x5: vec![
                unit(ConvShape::same(c.c_in, c.reduce_5x5, 1)),
                unit(ConvShape::same(c.reduce_5x5, c.out_5x5, 5)),
            ],
            max_pool: MaxPool2dConfig::new([3, 3])
                .with_strides([1, 1])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init()
                .into(),
            pool_proj: unit(ConvShape::same(c.c_in, c.out_pool, 1)),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let chain =
            |units: &[ConvBnAct], x: Tensor<4>| units.iter().fold(x, |x, unit| unit.forward(x));
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
pub struct GoogleNet {
    pub input_net: ConvBnAct,
    pub inception_blocks: Vec<InceptionBlock>,
    pub downsample: MaxPool2d,
    pub output_net: Linear,
}

impl GoogleNetConfig {
    pub fn init(&self, device: &Device) -> GoogleNet {
        let init = KaimingNormal {
            gain: self.activation.kaiming_gain(),
            mode: FanMode::FanIn,
        };
        let c_last = GOOGLENET_BLOCKS[GOOGLENET_BLOCKS.len() - 1].c_out();
        GoogleNet {
            input_net: ConvBnAct::new(
                ConvShape::same(3, STEM_CHANNELS, 3),
                init,
                self.activation.init(device),
                device,
            ),
            inception_blocks: GOOGLENET_BLOCKS
                .iter()
                .map(|c| InceptionBlock::new(*c, self.activation, device))
                .collect(),
            downsample: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init()
                .into(),
            output_net: LinearConfig::new(c_last, self.num_classes).init(device),
        }
    }
}

impl GoogleNet {
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

/// Maps a reference PyTorch `state_dict` key onto this module's parameter path.
///
/// The reference keeps the two max-pools inside `inception_blocks` (positions 2 and 7), and its
/// branches are `nn.Sequential`s of conv, BN, activation, so:
/// `input_net.{0,1}` -> `input_net.{conv,bn}`, `output_net.2` -> `output_net`,
/// `inception_blocks.i` -> `inception_blocks.(i minus the pools before it)`,
/// `conv_1x1.{0,1}` -> `conv_1x1.{conv,bn}`, `conv_3x3.k` / `conv_5x5.k` -> `.(k/3).{conv,bn}`,
/// `max_pool.{1,2}` -> `pool_proj.{conv,bn}`; BN `weight`/`bias` are burn's `gamma`/`beta`.
pub fn torch_key(key: &str) -> Option<String> {
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
        ("1", leaf) => format!("bn.{}", crate::layers::torch_bn_leaf(leaf)?),
        _ => return None,
    })
}
