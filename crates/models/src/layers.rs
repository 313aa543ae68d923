//! Building blocks shared by every family: initialised convolutions, batch norm, pooling heads.
use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::activation::Activation;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;

/// Which fan the Kaiming-normal initialisation of a convolution scales by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

/// Kaiming-normal initialisation of conv weights, as `nn.init.kaiming_normal_(w, mode, nonlinearity)`.
#[derive(Clone, Copy, Debug)]
pub struct KaimingNormal {
    pub gain: f64,
    pub mode: FanMode,
}

/// The shape of one convolution: channels, square kernel, stride, symmetric padding, bias.
#[derive(Clone, Copy, Debug)]
pub struct ConvShape {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub bias: bool,
}

impl ConvShape {
    /// A stride-1 convolution padded to keep the spatial size (odd kernels).
    pub fn same(c_in: usize, c_out: usize, kernel: usize) -> Self {
        Self {
            c_in,
            c_out,
            kernel,
            stride: 1,
            padding: kernel / 2,
            bias: true,
        }
    }

    pub fn with_stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    pub fn without_bias(self) -> Self {
        Self {
            bias: false,
            ..self
        }
    }

    /// Kaiming-normal weights; a bias, when there is one, keeps PyTorch's default
    /// uniform(±1/sqrt(fan_in)) because the reference initialises only the weights.
    pub fn init(self, weight_init: KaimingNormal, device: &Device) -> Conv2d {
        let p = self.padding;
        let mut conv = Conv2dConfig::new([self.c_in, self.c_out], [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(self.bias)
            .with_initializer(Initializer::KaimingNormal {
                gain: weight_init.gain,
                fan_out_only: weight_init.mode == FanMode::FanOut,
            })
            .init(device);
        if self.bias {
            let bound = 1.0 / ((self.c_in * self.kernel * self.kernel) as f64).sqrt();
            conv.bias = Some(
                Initializer::Uniform {
                    min: -bound,
                    max: bound,
                }
                .init([self.c_out], device),
            );
        }
        conv
    }
}

/// BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1, weight 1, bias 0).
pub fn batch_norm(channels: usize, device: &Device) -> BatchNorm {
    BatchNormConfig::new(channels).init(device)
}

/// Convolution, batch norm, activation: the unit GoogleNet is made of.
#[derive(Module, Debug)]
pub struct ConvBnAct {
    pub conv: Conv2d,
    pub bn: BatchNorm,
    pub act: Activation,
}

impl ConvBnAct {
    pub fn new(
        shape: ConvShape,
        weight_init: KaimingNormal,
        act: Activation,
        device: &Device,
    ) -> Self {
        Self {
            conv: shape.init(weight_init, device),
            bn: batch_norm(shape.c_out, device),
            act,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.act.forward(self.bn.forward(self.conv.forward(x)))
    }
}

/// Global average pooling and flatten: [N, C, H, W] -> [N, C].
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = x.dims();
    x.flatten::<3>(2, 3).mean_dim(2).reshape([n, c])
}

/// Counts trainable weights and biases the way PyTorch's `sum(p.numel() for p in parameters())`
/// does: burn's `num_params` also counts batch-norm running statistics, which are buffers.
pub fn count_trainable_params<M: Module>(module: &M) -> usize {
    struct Counter {
        path: Vec<String>,
        total: usize,
    }
    impl ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let is_running_stat = matches!(
                self.path.last().map(String::as_str),
                Some("running_mean" | "running_var")
            );
            // `lazy_shape` leaves a lazily initialised parameter uninitialised: counting VGG's
            // 138M weights must not draw them.
            if !is_running_stat {
                self.total += param.lazy_shape().num_elements();
            }
        }
    }
    let mut counter = Counter {
        path: Vec::new(),
        total: 0,
    };
    module.visit(&mut counter);
    counter.total
}

/// PyTorch's BatchNorm2d tensor names in burn's `BatchNorm`; `num_batches_tracked` has no
/// counterpart (burn's momentum update does not use it).
pub fn torch_bn_leaf(leaf: &str) -> Option<&'static str> {
    Some(match leaf {
        "weight" => "gamma",
        "bias" => "beta",
        "running_mean" => "running_mean",
        "running_var" => "running_var",
        _ => return None,
    })
}

/// The burn leaf name of a reference tensor inside a module named `bn*` (batch norm) or a
/// bias-free convolution.
pub fn torch_leaf<'a>(module: &str, leaf: &'a str) -> Option<&'a str> {
    if module.starts_with("bn") {
        torch_bn_leaf(leaf)
    } else {
        (leaf == "weight").then_some(leaf)
    }
}
