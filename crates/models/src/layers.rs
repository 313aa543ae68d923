//! Building blocks shared by every family: initialised convolutions, batch norm, pooling heads.
use burn::module::{Flag, Module, ModuleVisitor, Param, RunningState};
use burn::nn::activation::Activation;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, MaxPoolOptions};

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
        conv.into()
    }
}

/// burn's `Conv2d`, field for field (so records, checkpoints and the PyTorch key mapping are
/// unchanged), whose forward pass runs through [`crate::flex_kernels::conv`]: on the CPU backend its
/// im2col + gemm kernels run 1.1-2.6x faster than burn's at ResNet-20's layer shapes, forward
/// and backward (`docs/performance.md`).
#[derive(Module, Debug)]
pub struct Conv2d {
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub stride: [usize; 2],
    pub kernel_size: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
    #[module(skip)]
    pub padding: PaddingConfig2d,
}

impl From<burn::nn::conv::Conv2d> for Conv2d {
    fn from(conv: burn::nn::conv::Conv2d) -> Self {
        let burn::nn::conv::Conv2d {
            weight,
            bias,
            stride,
            kernel_size,
            dilation,
            groups,
            padding,
        } = conv;
        Self {
            weight,
            bias,
            stride,
            kernel_size,
            dilation,
            groups,
            padding,
        }
    }
}

impl Conv2d {
    /// `[N, C_in, H, W] -> [N, C_out, H', W']`, padded as burn's `Conv2d::forward` pads.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let padding = padding_pairs(&self.padding, self.kernel_size, self.stride, &x);
        let options =
            ConvOptions::new_with_padding(self.stride, padding, self.dilation, self.groups);
        crate::flex_kernels::conv::conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|bias| bias.val()),
            options,
        )
    }
}

/// burn's `MaxPool2d`, field for field (so records are unchanged), whose forward pass runs
/// through [`crate::flex_kernels::pool`]: on the CPU backend, without burn's index tensor.
#[derive(Module, Debug)]
pub struct MaxPool2d {
    pub stride: [usize; 2],
    pub kernel_size: [usize; 2],
    #[module(skip)]
    pub padding: PaddingConfig2d,
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

impl From<burn::nn::pool::MaxPool2d> for MaxPool2d {
    fn from(pool: burn::nn::pool::MaxPool2d) -> Self {
        let burn::nn::pool::MaxPool2d {
            stride,
            kernel_size,
            padding,
            dilation,
            ceil_mode,
        } = pool;
        Self {
            stride,
            kernel_size,
            padding,
            dilation,
            ceil_mode,
        }
    }
}

impl MaxPool2d {
    /// `[N, C, H, W] -> [N, C, H', W']`, padded as burn's `MaxPool2d::forward` pads.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let padding = padding_pairs(&self.padding, self.kernel_size, self.stride, &x);
        let options = MaxPoolOptions::new(self.kernel_size)
            .with_stride(self.stride)
            .with_padding_pairs(padding)
            .with_dilation(self.dilation)
            .with_ceil_mode(self.ceil_mode);
        crate::flex_kernels::pool::max_pool2d(x, options)
    }
}

/// `(begin, end)` padding of the rows and the columns of `x`, as burn's `Conv2d` and
/// `MaxPool2d` work it out (burn keeps that function private).
fn padding_pairs(
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

/// BatchNorm2d with PyTorch's defaults (eps 1e-5, momentum 0.1, weight 1, bias 0).
pub fn batch_norm(channels: usize, device: &Device) -> BatchNorm2d {
    BatchNorm2d::new(BatchNormConfig::new(channels), device)
}

/// burn's `BatchNorm` over `[N, C, H, W]`, field for field (so records, checkpoints and the
/// PyTorch key mapping are unchanged), with a faster training pass.
///
/// burn 0.22's `batch_norm_train` (which no backend specialises) gathers each channel through
/// `swap_dims(0, 1)` + `reshape`, a full copy of the activation in the forward pass and two more
/// in its backward, plus separate passes for the centring, the squares and the means. Here the
/// statistics come from sums over the contiguous `[N, C, H*W]` view (the variance as
/// E[x²] - E[x]², the biased one burn also feeds its running statistics) and the output is one
/// per-channel scale and shift; autodiff differentiates these ops. Same function, about 40% less
/// time (`cargo run --release -p cnnzoo-models --example layer_speed`). On the CPU backend the
/// training pass is [`crate::flex_kernels::batch_norm`]'s fused kernels instead, and so is
/// inference; elsewhere inference is burn's `batch_norm`.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
    pub training: Param<Flag>,
    pub running_mean: RunningState<Tensor<1>>,
    pub running_var: RunningState<Tensor<1>>,
    pub momentum: f64,
    pub epsilon: f64,
}

impl BatchNorm2d {
    pub fn new(config: BatchNormConfig, device: &Device) -> Self {
        let BatchNorm {
            gamma,
            beta,
            training,
            running_mean,
            running_var,
            momentum,
            epsilon,
        } = config.init(device);
        Self {
            gamma,
            beta,
            training,
            running_mean,
            running_var,
            momentum,
            epsilon,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.normalize(x, false)
    }

    /// `act(self.forward(x))`, with a ReLU fused into batch norm's own passes on the CPU backend.
    pub fn forward_activated(&self, x: Tensor<4>, act: &Activation) -> Tensor<4> {
        match act {
            Activation::Relu(_) => self.normalize(x, true),
            _ => act.forward(self.forward(x)),
        }
    }

    /// Batch norm, then the ReLU if `relu`: fused into one pass for inference on the CPU
    /// backend (15% more ResNet-20 inference throughput); in training the ReLU is burn's.
    fn normalize(&self, x: Tensor<4>, relu: bool) -> Tensor<4> {
        let then_relu = |y: Tensor<4>| {
            if relu {
                burn::tensor::activation::relu(y)
            } else {
                y
            }
        };
        // As burn's BatchNorm: batch statistics only where a backward pass can follow and the
        // layer is not frozen.
        if !(x.device().is_autodiff() && self.training.is_enabled()) {
            let device = x.device();
            let statistics = [&self.running_mean, &self.running_var]
                .map(|running| running.value().to_device(&device));
            let (gamma, beta) = (self.gamma.val(), self.beta.val());
            if let Some(y) = crate::flex_kernels::batch_norm::evaluate(
                x.clone(),
                gamma.clone(),
                beta.clone(),
                statistics.clone(),
                self.epsilon,
                relu,
            ) {
                return y;
            }
            let [mean, variance] = statistics;
            let y = burn::tensor::module::batch_norm(x, gamma, beta, mean, variance, self.epsilon);
            return then_relu(y);
        }
        if let Some((y, mean, variance)) = crate::flex_kernels::batch_norm::train(
            x.clone(),
            self.gamma.val(),
            self.beta.val(),
            self.epsilon,
        ) {
            self.update_running(mean, variance);
            return then_relu(y);
        }
        let [n, c, h, w] = x.dims();
        let count = (n * h * w) as f64;
        let flat = x.reshape([n, c, h * w]);
        let per_channel_mean = |t: Tensor<3>| t.sum_dim(2).sum_dim(0).div_scalar(count);
        let mean = per_channel_mean(flat.clone());
        let mean_of_squares = per_channel_mean(flat.clone().powi_scalar(2));
        // Rounding can leave E[x²] - E[x]² a hair below zero for a constant channel.
        let variance = (mean_of_squares - mean.clone().powi_scalar(2)).clamp_min(0.0);
        let scale =
            self.gamma.val().reshape([1, c, 1]) / variance.clone().add_scalar(self.epsilon).sqrt();
        let shift = self.beta.val().reshape([1, c, 1]) - mean.clone() * scale.clone();
        self.update_running(mean.reshape([c]), variance.reshape([c]));
        then_relu((flat * scale + shift).reshape([n, c, h, w]))
    }

    fn update_running(&self, mean: Tensor<1>, variance: Tensor<1>) {
        let device = mean.device();
        let blend = |running: &RunningState<Tensor<1>>, batch: Tensor<1>| {
            let updated = running
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - self.momentum)
                .add(batch.detach().mul_scalar(self.momentum));
            running.update(updated.detach());
        };
        blend(&self.running_mean, mean);
        blend(&self.running_var, variance);
    }
}

/// Convolution, batch norm, activation: the unit GoogleNet is made of.
#[derive(Module, Debug)]
pub struct ConvBnAct {
    pub conv: Conv2d,
    pub bn: BatchNorm2d,
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
        self.bn.forward_activated(self.conv.forward(x), &self.act)
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
