//! Convolutions and linear layers initialised as the reference and torchvision initialise them,
//! and the convolution layer that runs cnnzoo's CPU kernels.
use burn::module::Param;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use super::Act;

/// Which fan a Kaiming initialisation scales by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

/// How a weight or bias tensor is initialised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// `kaiming_normal_(mode, nonlinearity)`: normal with std gain / sqrt(fan). PyTorch's fan-out
    /// counts every output channel even in a grouped convolution; burn's `Conv2dConfig` divides
    /// by the groups, which would make a depthwise convolution's weights sqrt(channels) times too
    /// large, so the fans are PyTorch's here.
    Kaiming {
        gain: f64,
        mode: FanMode,
    },
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
    /// `kaiming_normal_(mode="fan_out", nonlinearity="relu")`, torchvision's convolutions.
    pub const KAIMING_FAN_OUT: Self = Self::Kaiming {
        gain: std::f64::consts::SQRT_2,
        mode: FanMode::FanOut,
    };
    /// `kaiming_normal_()`: fan-in, gain sqrt(2).
    pub const KAIMING_FAN_IN: Self = Self::Kaiming {
        gain: std::f64::consts::SQRT_2,
        mode: FanMode::FanIn,
    };

    /// `kaiming_normal_(mode, nonlinearity)` with the gain of `act`, as the reference passes it.
    pub fn kaiming(act: Act, mode: FanMode) -> Self {
        Self::Kaiming {
            gain: act.kaiming_gain(),
            mode,
        }
    }

    /// A lazily initialised parameter of `shape`, where `fan_in` and `fan_out` are PyTorch's.
    pub fn param<const D: usize>(
        self,
        shape: [usize; D],
        fan_in: usize,
        fan_out: usize,
        device: &Device,
    ) -> Param<Tensor<D>> {
        let initializer = match self {
            Self::Kaiming { gain, mode } => Initializer::KaimingNormal {
                gain,
                fan_out_only: mode == FanMode::FanOut,
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
        initializer.init_with(shape, Some(fan_in), Some(fan_out), device)
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

    /// This stem convolution as published, or with `cifar_stem` a 3x3 one at stride 1 that keeps
    /// a 32x32 image's resolution.
    pub fn or_cifar_stem(self, cifar_stem: bool) -> Self {
        if cifar_stem {
            Self::new(self.c_in, self.c_out, 3)
        } else {
            self
        }
    }

    /// A depthwise convolution: one group per channel.
    pub fn depthwise(self) -> Self {
        self.groups(self.c_in)
    }

    /// The convolution with its weight initialised by `weight`, and a bias initialised by
    /// `bias` when there is one.
    pub fn init(self, weight: Init, bias: Option<Init>, device: &Device) -> Convolution {
        let [kh, kw] = self.kernel;
        let [ph, pw] = self.padding;
        let conv = Conv2dConfig::new([self.c_in, self.c_out], self.kernel)
            .with_stride([self.stride; 2])
            .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
            .with_groups(self.groups)
            .with_bias(false)
            .init(device);
        let fan_in = self.c_in / self.groups * kh * kw;
        let fan_out = self.c_out * kh * kw;
        Convolution {
            weight: weight.param(
                [self.c_out, self.c_in / self.groups, kh, kw],
                fan_in,
                fan_out,
                device,
            ),
            bias: bias.map(|init| init.param([self.c_out], fan_in, fan_out, device)),
            ..Convolution::from(conv)
        }
    }
}

/// A linear layer `d_in -> d_out` (burn stores the weight `[d_in, d_out]`).
pub fn linear(d_in: usize, d_out: usize, weight: Init, bias: Init, device: &Device) -> Linear {
    let mut layer = LinearConfig::new(d_in, d_out).init(device);
    layer.weight = weight.param([d_in, d_out], d_in, d_out, device);
    layer.bias = Some(bias.param([d_out], d_in, d_out, device));
    layer
}

/// A 2-d convolution with burn's `Conv2d` fields (so records, checkpoints and the PyTorch key
/// mapping are burn's), whose forward pass runs through [`cnnzoo_flex_kernels::conv`]: on the
/// CPU backend its im2col + gemm kernels run 1.1-2.6x faster than burn's at ResNet-20's layer
/// shapes, forward and backward (`docs/performance.md`); elsewhere it is burn's `conv2d`.
#[derive(Module, Debug)]
pub struct Convolution {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub stride: [usize; 2],
    pub kernel_size: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    #[module(skip)]
    pub padding: PaddingConfig2d,
}

impl From<burn::nn::conv::Conv2d> for Convolution {
    fn from(conv: burn::nn::conv::Conv2d) -> Self {
        Self {
            weight: conv.weight,
            bias: conv.bias,
            stride: conv.stride,
            kernel_size: conv.kernel_size,
            dilation: conv.dilation,
            groups: conv.groups,
            padding: conv.padding,
        }
    }
}

impl Convolution {
    /// `[N, C_in, H, W] -> [N, C_out, H', W']`, padded as burn's `Conv2d::forward` pads.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let options = self.options(&x);
        cnnzoo_flex_kernels::conv::conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
        )
    }

    /// `self.forward(x) + shortcut`, a pre-activation block's end: without bias, on the CPU
    /// backend, the sum runs in the convolution's output pass (`conv::conv2d_add`).
    pub fn forward_add(&self, x: Tensor<4>, shortcut: Tensor<4>) -> Tensor<4> {
        if self.bias.is_some() {
            return cnnzoo_flex_kernels::residual::add(self.forward(x), shortcut);
        }
        let options = self.options(&x);
        cnnzoo_flex_kernels::conv::conv2d_add(x, self.weight.val(), shortcut, options)
    }
}

impl Convolution {
    /// The stride, padding, dilation and groups of this convolution over `x`.
    pub(crate) fn options(&self, x: &Tensor<4>) -> ConvOptions<2> {
        let padding = padding_pairs(&self.padding, self.kernel_size, self.stride, x);
        ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups)
    }
}

/// `(begin, end)` padding of the rows and the columns of `x`, as burn's `Conv2d` and
/// `MaxPool2d` work it out (burn keeps that function private).
pub(crate) fn padding_pairs(
    padding: &PaddingConfig2d,
    kernel: [usize; 2],
    stride: [usize; 2],
    x: &Tensor<4>,
) -> [(usize, usize); 2] {
    let [_, _, height, width] = x.dims();
    match *padding {
        PaddingConfig2d::Valid => [(0, 0); 2],
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Same => {
            [0, 1].map(|axis| same_padding(kernel[axis], stride[axis], [height, width][axis]))
        }
    }
}

/// TensorFlow's "same" padding (burn keeps its own private): the output has ceil(size / stride)
/// positions, and an odd total pads one more at the end.
fn same_padding(kernel: usize, stride: usize, size: usize) -> (usize, usize) {
    let needed = match size.div_ceil(stride) {
        0 => 0,
        positions => ((positions - 1) * stride + kernel).saturating_sub(size),
    };
    (needed / 2, needed - needed / 2)
}
