//! The inverted residual (MBConv) block that MobileNet v2/v3, MnasNet and EfficientNet are all
//! made of, and torchvision's channel rounding for them.
use burn::prelude::*;

use super::{Act, ConvNormAct, ConvSpec, Init, Norm, SqueezeExcitation, StochasticDepth};

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
            |conv: ConvSpec, act| ConvNormAct::new(conv, Init::KAIMING_FAN_OUT, norm, act, device);
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
        cnnzoo_flex_kernels::residual::add(y, x)
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

/// `x` through every block of every stage, in order.
pub fn forward_stages(stages: &[Vec<InvertedResidual>], x: Tensor<4>) -> Tensor<4> {
    stages.iter().flatten().fold(x, |x, block| block.forward(x))
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
