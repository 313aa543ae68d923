//! Building blocks of the torchvision architectures that burn lacks or spells differently:
//! convolutions and linear layers initialised exactly as torchvision does it, the
//! conv-norm-activation unit, squeeze-excitation, stochastic depth, and the inverted residual
//! block that MobileNet v2/v3, MnasNet and EfficientNet are all made of.
use burn::module::{Flag, Param};
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};

use crate::layers::{BatchNorm2d, Conv2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{hard_sigmoid, hard_swish, relu, relu6, sigmoid, silu};

use crate::layers::torch_bn_leaf;

/// The element-wise non-linearities of the zoo, as burn's functions; its `Activation` module enum
/// has no ReLU6 or SiLU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    Relu,
    /// min(max(x, 0), 6), MobileNet v2's activation.
    Relu6,
    /// x * relu6(x + 3) / 6, as `nn.Hardswish`.
    HardSwish,
    /// relu6(x + 3) / 6, as `nn.Hardsigmoid`: MobileNet v3's squeeze-excitation gate.
    HardSigmoid,
    /// x * sigmoid(x), EfficientNet's activation.
    Silu,
    Sigmoid,
}

impl Act {
    pub fn forward<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Relu => relu(x),
            Self::Relu6 => relu6(x),
            Self::HardSwish => hard_swish(x),
            Self::HardSigmoid => hard_sigmoid(x, 1.0 / 6.0, 0.5),
            Self::Silu => silu(x),
            Self::Sigmoid => sigmoid(x),
        }
    }
}

/// How torchvision initialises a weight or bias tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `kaiming_normal_(mode="fan_out")` with gain sqrt(2) (ReLU, and PyTorch's default
    /// `leaky_relu` with slope 0). PyTorch's fan-out counts every output channel even in a
    /// grouped convolution; burn's divides by the groups, which would make a depthwise
    /// convolution's weights sqrt(channels) times too large, so the std is computed here.
    KaimingFanOut,
    /// `kaiming_normal_()`: fan-in, gain sqrt(2).
    KaimingFanIn,
    /// `normal_(0, std)`; torchvision's `trunc_normal_(std, a=-2, b=2)` is the same
    /// distribution for the stds it uses (0.1 at most: the cut lies 20 std away).
    Normal(f64),
    /// `uniform_(-bound, bound)`.
    Uniform(f64),
    /// What `nn.Conv2d` / `nn.Linear` do when nobody re-initialises them: weight
    /// `kaiming_uniform_(a=sqrt(5))` and bias both uniform(±1/sqrt(fan_in)).
    TorchDefault,
    Zeros,
}

impl Init {
    /// A lazily initialised parameter of `shape`, where `fan_in` and `fan_out` are PyTorch's.
    fn param<const D: usize>(
        self,
        shape: [usize; D],
        fan_in: usize,
        fan_out: usize,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let gain = 2.0_f64.sqrt();
        let initializer = match self {
            Self::KaimingFanOut => Initializer::Normal {
                mean: 0.0,
                std: gain / (fan_out as f64).sqrt(),
            },
            Self::KaimingFanIn => Initializer::Normal {
                mean: 0.0,
                std: gain / (fan_in as f64).sqrt(),
            },
            Self::Normal(std) => Initializer::Normal { mean: 0.0, std },
            Self::Uniform(bound) => Initializer::Uniform {
                min: -bound,
                max: bound,
            },
            Self::TorchDefault => {
                let bound = 1.0 / (fan_in as f64).sqrt();
                Initializer::Uniform {
                    min: -bound,
                    max: bound,
                }
            }
            Self::Zeros => Initializer::Zeros,
        };
        initializer.init(shape, device)
    }
}

/// One convolution: channels, kernel, stride, padding and groups as `nn.Conv2d` takes them.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: usize,
    pub padding: [usize; 2],
    pub groups: usize,
}

impl ConvSpec {
    /// A square `kernel`, stride 1, padded by (kernel - 1) / 2 as torchvision's
    /// `Conv2dNormActivation` does (so stride 1 keeps the size).
    pub fn new(c_in: usize, c_out: usize, kernel: usize) -> Self {
        Self {
            c_in,
            c_out,
            kernel: [kernel, kernel],
            stride: 1,
            padding: [(kernel - 1) / 2; 2],
            groups: 1,
        }
    }

    /// A `kh` x `kw` kernel padded to keep the size (Inception's factorised 1x7, 7x1, ...).
    pub fn rect(c_in: usize, c_out: usize, [kh, kw]: [usize; 2]) -> Self {
        Self {
            kernel: [kh, kw],
            padding: [(kh - 1) / 2, (kw - 1) / 2],
            ..Self::new(c_in, c_out, 1)
        }
    }

    pub fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    pub fn padding(self, padding: usize) -> Self {
        Self {
            padding: [padding; 2],
            ..self
        }
    }

    /// No padding (`nn.Conv2d`'s default), as in Inception v3's size-reducing convolutions.
    pub fn valid(self) -> Self {
        self.padding(0)
    }

    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// A depthwise convolution: one group per channel.
    pub fn depthwise(self) -> Self {
        self.groups(self.c_in)
    }

    /// The convolution with its weight initialised by `weight`, and a bias initialised by
    /// `bias` when there is one.
    pub fn init(self, weight: Init, bias: Option<Init>, device: &Device) -> Conv2d {
        let [kh, kw] = self.kernel;
        let [ph, pw] = self.padding;
        let mut conv = Conv2dConfig::new([self.c_in, self.c_out], self.kernel)
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_groups(self.groups)
            .with_bias(false)
            .init(device);
        let fan_in = self.c_in / self.groups * kh * kw;
        let fan_out = self.c_out * kh * kw;
        conv.weight = weight.param(
            [self.c_out, self.c_in / self.groups, kh, kw],
            fan_in,
            fan_out,
            device,
        );
        conv.bias = bias.map(|init| init.param([self.c_out], fan_in, fan_out, device));
        conv.into()
    }
}

/// A linear layer `d_in -> d_out` (burn stores the weight `[d_in, d_out]`).
pub fn linear(d_in: usize, d_out: usize, weight: Init, bias: Init, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out).init(device);
    layer.weight = weight.param([d_in, d_out], d_in, d_out, device);
    layer.bias = Some(bias.param([d_out], d_in, d_out, device));
    layer
}

/// Batch-norm hyper-parameters in PyTorch's convention (`momentum` weighs the new batch).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Norm {
    pub eps: f64,
    pub momentum: f64,
}

impl Norm {
    /// `nn.BatchNorm2d`'s defaults.
    pub const TORCH: Self = Self {
        eps: 1e-5,
        momentum: 0.1,
    };

    /// Weight 1, bias 0, as every torchvision model initialises its batch norms.
    pub fn init(self, channels: usize, device: &Device) -> BatchNorm2d {
        BatchNorm2d::new(
            BatchNormConfig::new(channels)
                .with_epsilon(self.eps)
                .with_momentum(self.momentum),
            device,
        )
    }
}

/// Convolution, batch norm, optional activation: torchvision's `Conv2dNormActivation` (whose
/// `state_dict` indices `0`, `1` are `conv`, `bn` here) and Inception's `BasicConv2d`.
#[derive(Module, Debug)]
pub struct ConvNormAct {
    pub conv: Conv2d,
    pub bn: BatchNorm2d,
    #[module(skip)]
    pub act: Option<Act>,
}

impl ConvNormAct {
    /// A bias-free convolution initialised by `weight`, as all of these units are.
    pub fn new(
        spec: ConvSpec,
        weight: Init,
        norm: Norm,
        act: Option<Act>,
        device: &Device,
    ) -> Self {
        Self {
            conv: spec.init(weight, None, device),
            bn: norm.init(spec.c_out, device),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.bn.forward(self.conv.forward(x));
        match self.act {
            Some(act) => act.forward(x),
            None => x,
        }
    }
}

/// The mean over the spatial dimensions, keeping them as 1x1: `AdaptiveAvgPool2d(1)`.
pub fn spatial_mean(x: Tensor<4>) -> Tensor<4> {
    x.mean_dim(2).mean_dim(3)
}

/// `torch.flatten(adaptive_avg_pool2d(x, 1), 1)`: [N, C, H, W] -> [N, C].
pub fn global_pool(x: Tensor<4>) -> Tensor<2> {
    spatial_mean(x).flatten(1, 3)
}

/// Squeeze-and-excitation (torchvision's `SqueezeExcitation`): the input scaled per channel by
/// `gate(fc2(act(fc1(mean over H, W))))`, where fc1 and fc2 are 1x1 convolutions with bias.
#[derive(Module, Debug)]
pub struct SqueezeExcitation {
    pub fc1: Conv2d,
    pub fc2: Conv2d,
    #[module(skip)]
    pub act: Act,
    #[module(skip)]
    pub gate: Act,
}

impl SqueezeExcitation {
    /// With torchvision's initialisation of the mobile networks: weights Kaiming fan-out,
    /// biases zero.
    pub fn new(channels: usize, squeeze: usize, act: Act, gate: Act, device: &Device) -> Self {
        let conv = |c_in, c_out| {
            ConvSpec::new(c_in, c_out, 1).init(Init::KaimingFanOut, Some(Init::Zeros), device)
        };
        Self {
            fc1: conv(channels, squeeze),
            fc2: conv(squeeze, channels),
            act,
            gate,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let scale = self.fc1.forward(spatial_mean(x.clone()));
        let scale = self.gate.forward(self.fc2.forward(self.act.forward(scale)));
        x * scale
    }
}

/// Stochastic depth in torchvision's "row" mode: while training, each sample's residual branch is
/// dropped with probability `prob` and kept ones are scaled by 1 / (1 - prob); at inference, the
/// identity. Training is recognised as burn's `Dropout` recognises it: an autodiff device and a
/// module that is not frozen.
#[derive(Module, Debug)]
pub struct StochasticDepth {
    pub prob: f64,
    pub training: Param<Flag>,
}

impl StochasticDepth {
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "stochastic depth probability must lie in [0, 1), got {prob}"
        );
        Self {
            prob,
            training: Param::from_bool(true),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        if self.prob == 0.0 || !self.training.is_enabled() || !x.device().is_autodiff() {
            return x;
        }
        let keep = 1.0 - self.prob;
        let [n, _, _, _] = x.dims();
        let noise = Tensor::<4>::random([n, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
        x * (noise / keep)
    }
}

/// The inverted residual (MBConv) block: optional 1x1 expansion, depthwise convolution, optional
/// squeeze-excitation, linear 1x1 projection, and a skip connection when the shape is kept
/// (through stochastic depth where the network uses it).
#[derive(Module, Debug)]
pub struct InvertedResidual {
    pub expand: Option<ConvNormAct>,
    pub depthwise: ConvNormAct,
    pub se: Option<SqueezeExcitation>,
    pub project: ConvNormAct,
    pub stochastic_depth: Option<StochasticDepth>,
    pub residual: bool,
}

/// The shape of one inverted residual block.
#[derive(Clone, Copy, Debug)]
pub struct InvertedResidualSpec {
    pub c_in: usize,
    pub c_expanded: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub act: Act,
    pub norm: Norm,
}

impl InvertedResidual {
    /// The block without squeeze-excitation or stochastic depth; the expansion is left out when
    /// it would not change the channels, as torchvision does.
    pub fn new(spec: InvertedResidualSpec, device: &Device) -> Self {
        let InvertedResidualSpec {
            c_in,
            c_expanded,
            c_out,
            kernel,
            stride,
            act,
            norm,
        } = spec;
        let unit =
            |conv: ConvSpec, act| ConvNormAct::new(conv, Init::KaimingFanOut, norm, act, device);
        Self {
            expand: (c_expanded != c_in)
                .then(|| unit(ConvSpec::new(c_in, c_expanded, 1), Some(act))),
            depthwise: unit(
                ConvSpec::new(c_expanded, c_expanded, kernel)
                    .stride(stride)
                    .depthwise(),
                Some(act),
            ),
            se: None,
            project: unit(ConvSpec::new(c_expanded, c_out, 1), None),
            stochastic_depth: None,
            residual: stride == 1 && c_in == c_out,
        }
    }

    pub fn with_se(self, se: SqueezeExcitation) -> Self {
        Self {
            se: Some(se),
            ..self
        }
    }

    pub fn with_stochastic_depth(self, prob: f64) -> Self {
        Self {
            stochastic_depth: Some(StochasticDepth::new(prob)),
            ..self
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut y = x.clone();
        if let Some(expand) = &self.expand {
            y = expand.forward(y);
        }
        y = self.depthwise.forward(y);
        if let Some(se) = &self.se {
            y = se.forward(y);
        }
        y = self.project.forward(y);
        if !self.residual {
            return y;
        }
        if let Some(drop) = &self.stochastic_depth {
            y = drop.forward(y);
        }
        y + x
    }

    /// The names, in torchvision's `nn.Sequential` order, of the parts of this block that are
    /// there: the index of a key in that sequential is a position in this list.
    pub fn torch_layout(has_expand: bool, has_se: bool) -> Vec<&'static str> {
        let mut parts = Vec::new();
        if has_expand {
            parts.push("expand");
        }
        parts.push("depthwise");
        if has_se {
            parts.push("se");
        }
        parts.push("project");
        parts
    }
}

/// `make_divisible` of torchvision (from the TensorFlow MobileNet code): the nearest multiple of
/// `divisor` to `v`, at least `divisor`, and never more than 10% below `v`.
pub fn make_divisible(v: f64, divisor: usize) -> usize {
    let d = divisor as f64;
    let rounded = (((v + d / 2.0) as usize) / divisor * divisor).max(divisor);
    if (rounded as f64) < 0.9 * v {
        rounded + divisor
    } else {
        rounded
    }
}

/// The burn path of a tensor of a torchvision `Conv2dNormActivation` (or any conv-then-BN
/// sequential) at `prefix`: `0.weight` -> `conv.weight`, `1.weight` -> `bn.gamma`, ...
pub fn conv_norm_key(prefix: &str, index: &str, leaf: &str) -> Option<String> {
    match index {
        "0" => conv_leaf(leaf).map(|leaf| format!("{prefix}.conv.{leaf}")),
        "1" => torch_bn_leaf(leaf).map(|leaf| format!("{prefix}.bn.{leaf}")),
        _ => None,
    }
}

/// A convolution's or linear layer's own tensors keep their names.
pub fn conv_leaf(leaf: &str) -> Option<&str> {
    matches!(leaf, "weight" | "bias").then_some(leaf)
}

/// The burn path of a tensor inside a torchvision `BasicConv2d` (`conv`, `bn`) at `prefix`.
pub fn basic_conv_key(prefix: &str, module: &str, leaf: &str) -> Option<String> {
    match module {
        "conv" => (leaf == "weight").then(|| format!("{prefix}.conv.weight")),
        "bn" => torch_bn_leaf(leaf).map(|leaf| format!("{prefix}.bn.{leaf}")),
        _ => None,
    }
}
