//! The CIFAR-10 DenseNet of the reference (SPEC §1): four dense blocks of bottleneck layers joined
//! by transition layers that halve channels and resolution.
use crate::layers::BatchNorm2d;
use crate::layers::Conv2d;
use burn::nn::activation::Activation;
use burn::nn::pool::{AvgPool2d, AvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::activation::ActivationKind;
use crate::layers::{
    ConvShape, FanMode, KaimingNormal, batch_norm, global_avg_pool, torch_bn_leaf, torch_leaf,
};

#[derive(Config, Debug)]
pub struct DenseNetConfig {
    #[config(default = 10)]
    pub num_classes: usize,
    #[config(default = "ActivationKind::Relu")]
    pub activation: ActivationKind,
    /// Dense layers in each block.
    #[config(default = "vec![6, 6, 6, 6]")]
    pub num_layers: Vec<usize>,
    /// The bottleneck 1x1 convolution outputs `bn_size * growth_rate` channels.
    #[config(default = 2)]
    pub bn_size: usize,
    /// Channels each dense layer adds.
    #[config(default = 16)]
    pub growth_rate: usize,
}

/// BN, act, 1x1 conv to `bn_size * growth`, BN, act, 3x3 conv to `growth`; the new features are
/// concatenated in front of the input.
#[derive(Module, Debug)]
pub struct DenseLayer {
    pub bn1: BatchNorm2d,
    pub conv1: Conv2d,
    pub bn2: BatchNorm2d,
    pub conv2: Conv2d,
    pub act: Activation,
}

impl DenseLayer {
    fn new(c_in: usize, config: &DenseNetConfig, init: KaimingNormal, device: &Device) -> Self {
        let c_mid = config.bn_size * config.growth_rate;
        Self {
            bn1: batch_norm(c_in, device),
            conv1: ConvShape::same(c_in, c_mid, 1)
                .without_bias()
                .init(init, device),
            bn2: batch_norm(c_mid, device),
            conv2: ConvShape::same(c_mid, config.growth_rate, 3)
                .without_bias()
                .init(init, device),
            act: config.activation.init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let z = self
            .conv1
            .forward(self.bn1.forward_activated(x.clone(), &self.act));
        let z = self.conv2.forward(self.bn2.forward_activated(z, &self.act));
        Tensor::cat(vec![z, x], 1)
    }
}

#[derive(Module, Debug)]
pub struct DenseBlock {
    pub layers: Vec<DenseLayer>,
}

impl DenseBlock {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.layers.iter().fold(x, |x, layer| layer.forward(x))
    }
}

/// BN, act, 1x1 conv halving the channels, 2x2 average pool.
#[derive(Module, Debug)]
pub struct TransitionLayer {
    pub bn: BatchNorm2d,
    pub conv: Conv2d,
    pub pool: AvgPool2d,
    pub act: Activation,
}

impl TransitionLayer {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.pool
            .forward(self.conv.forward(self.bn.forward_activated(x, &self.act)))
    }
}

#[derive(Module, Debug)]
pub struct DenseNet {
    pub input_conv: Conv2d,
    pub blocks: Vec<DenseBlock>,
    /// One fewer than `blocks`: a transition follows every block but the last.
    pub transitions: Vec<TransitionLayer>,
    pub output_bn: BatchNorm2d,
    pub output_net: Linear,
    pub act: Activation,
}

impl DenseNetConfig {
    pub fn init(&self, device: &Device) -> DenseNet {
        let init = KaimingNormal {
            gain: self.activation.kaiming_gain(),
            mode: FanMode::FanIn,
        };
        let mut channels = self.growth_rate * self.bn_size;
        let input_conv = ConvShape::same(3, channels, 3).init(init, device);
        let mut blocks = Vec::new();
        let mut transitions = Vec::new();
        for (index, &count) in self.num_layers.iter().enumerate() {
            let layers = (0..count)
                .map(|i| DenseLayer::new(channels + i * self.growth_rate, self, init, device))
                .collect();
            blocks.push(DenseBlock { layers });
            channels += count * self.growth_rate;
            if index + 1 < self.num_layers.len() {
                transitions.push(TransitionLayer {
                    bn: batch_norm(channels, device),
                    conv: ConvShape::same(channels, channels / 2, 1)
                        .without_bias()
                        .init(init, device),
                    pool: AvgPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
                    act: self.activation.init(device),
                });
                channels /= 2;
            }
        }
        DenseNet {
            input_conv,
            blocks,
            transitions,
            output_bn: batch_norm(channels, device),
            output_net: LinearConfig::new(channels, self.num_classes).init(device),
            act: self.activation.init(device),
        }
    }
}

impl DenseNet {
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x = self.input_conv.forward(x);
        for (index, block) in self.blocks.iter().enumerate() {
            x = block.forward(x);
            if let Some(transition) = self.transitions.get(index) {
                x = transition.forward(x);
            }
        }
        let x = self.output_bn.forward_activated(x, &self.act);
        self.output_net.forward(global_avg_pool(x))
    }
}

/// Maps a reference PyTorch `state_dict` key onto this module's parameter path.
///
/// The reference interleaves blocks and transitions in one `blocks` sequence, so `blocks.2k` ->
/// `blocks.k` and `blocks.2k+1` -> `transitions.k`; within them `block.j.net.{0,2,3,5}` ->
/// `layers.j.{bn1,conv1,bn2,conv2}` and `transition.{0,2}` -> `{bn,conv}`; `input_net.0` ->
/// `input_conv`, `output_net.0` -> `output_bn`, `output_net.4` -> `output_net`.
pub fn torch_key(key: &str) -> Option<String> {
    let parts: Vec<&str> = key.split('.').collect();
    Some(match parts.as_slice() {
        ["input_net", "0", leaf @ ("weight" | "bias")] => format!("input_conv.{leaf}"),
        ["output_net", "0", leaf] => format!("output_bn.{}", torch_bn_leaf(leaf)?),
        ["output_net", "4", leaf @ ("weight" | "bias")] => format!("output_net.{leaf}"),
        ["blocks", i, "block", j, "net", layer, leaf] => {
            let i: usize = i.parse().ok()?;
            if !i.is_multiple_of(2) {
                return None;
            }
            let name = match *layer {
                "0" => "bn1",
                "2" => "conv1",
                "3" => "bn2",
                "5" => "conv2",
                _ => return None,
            };
            format!(
                "blocks.{}.layers.{j}.{name}.{}",
                i / 2,
                torch_leaf(name, leaf)?
            )
        }
        ["blocks", i, "transition", layer, leaf] => {
            let i: usize = i.parse().ok()?;
            if i % 2 != 1 {
                return None;
            }
            let name = match *layer {
                "0" => "bn",
                "2" => "conv",
                _ => return None,
            };
            format!("transitions.{}.{name}.{}", i / 2, torch_leaf(name, leaf)?)
        }
        _ => return None,
    })
}
