//! Milliseconds per call of the layers the CIFAR models spend their time in, on burn's CPU
//! backend, at ResNet-20's three stage shapes (batch 128): convolution forward and
//! forward + backward as burn's `conv2d` and as `flex_kernels::conv` (and its two gradient
//! kernels on their own, and with a pre-activation block's shortcut added after it and in its
//! output pass), GoogleNet's 3x3 stride-1 max pool as burn's and as `pool::max_pool2d`,
//! and batch norm's training pass as burn's `BatchNorm` and as `batch_norm::train` (alone,
//! followed by burn's ReLU, and with the ReLU fused), `batch_norm::evaluate`, a residual
//! block's `relu(x + shortcut)` as burn's and as `residual::add_relu`, and a post-activation
//! block's end in training as `batch_norm::train` then `add_relu` and as
//! `residual::normalized_add_relu`; then `pool::max_pool2d`
//! at the shapes of GoogleNet's pools.
//! `scripts/layer_speed_pytorch.py` prints the same table for PyTorch. Each forward + backward
//! figure includes the `sum().backward()` that starts the backward pass, which is also printed on
//! its own.
//!
//!     RAYON_NUM_THREADS=2 cargo bench -p cnnzoo-flex-kernels --bench layer_speed
//!
//! Words after `--` keep the operations whose names contain one of them, to time a change to
//! one kernel in a minute: `... --bench layer_speed -- "batch norm" "alone"`.
use std::time::Instant;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::relu;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::ops::MaxPoolOptions;
use cnnzoo_flex_kernels as flex_kernels;
use cnnzoo_flex_kernels::conv::{ConvGrad, GemmConvBackend};
use cnnzoo_flex_kernels::{batch_norm, pool, residual};

const REPEATS: usize = 10;

/// The allocator and settings of the `cnnzoo` binary (its `main.rs` says why): with glibc's,
/// page faults on fresh multi-megabyte buffers added a fifth to a forward + backward pass here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's purge delay, the option the binary sets to "never"; the binary's test
/// `purge_delay_index_names_mimallocs_purge_delay` checks that this index still names it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn time(name: &str, shape: &str, f: &dyn Fn()) {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with("--"))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|filter| name.contains(filter.as_str())) {
        return;
    }
    f();
    let started = Instant::now();
    for _ in 0..REPEATS {
        f();
    }
    let ms = started.elapsed().as_secs_f64() * 1e3 / REPEATS as f64;
    println!("| {shape} | {name} | {ms:.1} |");
}

fn main() {
    // Safety: sets one integer option, before any other thread runs.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    let device = Device::flex().autodiff();
    println!("| input | operation | ms |\n| --- | --- | ---: |");
    for (n, c, side) in [(128, 16, 32), (128, 32, 16), (128, 64, 8)] {
        let shape = format!("{n}x{c}x{side}x{side}");
        let x = Tensor::<4>::random([n, c, side, side], Distribution::Normal(0.5, 1.0), &device)
            .require_grad();
        let weight = Tensor::<4>::random([c, c, 3, 3], Distribution::Normal(0.0, 0.1), &device)
            .require_grad();
        let backward = |y: Tensor<4>| {
            let grads = y.sum().backward();
            x.grad(&grads).unwrap().into_data();
        };
        let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        time("sum + backward alone", &shape, &|| backward(x.clone()));
        time("conv 3x3 forward", &shape, &|| {
            conv2d(x.clone().detach(), weight.clone().detach(), None, options()).into_data();
        });
        time("conv 3x3 forward + backward", &shape, &|| {
            backward(conv2d(x.clone(), weight.clone(), None, options()))
        });
        time("flex_kernels conv 3x3 forward", &shape, &|| {
            let (x, weight) = (x.clone().detach(), weight.clone().detach());
            flex_kernels::conv::conv2d(x, weight, None, options()).into_data();
        });
        time("flex_kernels conv 3x3 forward + backward", &shape, &|| {
            backward(flex_kernels::conv::conv2d(
                x.clone(),
                weight.clone(),
                None,
                options(),
            ))
        });
        // A tensor of its own: one derived from `x` (as `x.detach().flip([0])`) joins the
        // autodiff graph, and burn 0.22 refuses a second backward pass through it.
        let shortcut =
            Tensor::<4>::random([n, c, side, side], Distribution::Normal(0.0, 1.0), &device);
        time(
            "flex_kernels conv 3x3, then add, forward + backward",
            &shape,
            &|| {
                let y = flex_kernels::conv::conv2d(x.clone(), weight.clone(), None, options());
                backward(residual::add(y, shortcut.clone()))
            },
        );
        time(
            "flex_kernels conv2d_add forward + backward",
            &shape,
            &|| {
                let (x, weight) = (x.clone(), weight.clone());
                backward(flex_kernels::conv::conv2d_add(
                    x,
                    weight,
                    shortcut.clone(),
                    options(),
                ))
            },
        );
        // The gradient kernels alone, on flex tensors: the figures to hold against PyTorch's
        // `convolution_backward` for one gradient.
        let flex = |tensor: &Tensor<4>| FlexTensor::from_data(tensor.to_data());
        let (x_flex, weight_flex) = (flex(&x), flex(&weight));
        let output_grad = flex(&Tensor::<4>::random(
            [n, c, side, side],
            Distribution::Normal(0.0, 1.0),
            &device,
        ));
        for (name, wrt) in [
            ("flex_kernels conv 3x3 input gradient", ConvGrad::Input),
            ("flex_kernels conv 3x3 weight gradient", ConvGrad::Weight),
        ] {
            time(name, &shape, &|| {
                Flex::gemm_conv2d_backward(
                    x_flex.clone(),
                    weight_flex.clone(),
                    output_grad.clone(),
                    options(),
                    wrt,
                );
            });
        }
        let burn_pool = MaxPool2dConfig::new([3, 3])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        time("max pool 3x3 stride 1 forward + backward", &shape, &|| {
            backward(burn_pool.forward(x.clone()))
        });
        time(
            "flex_kernels max pool 3x3 stride 1 forward + backward",
            &shape,
            &|| backward(pool::max_pool2d(x.clone(), pool_options(1))),
        );
        let burn_bn = BatchNormConfig::new(c).init(&device);
        let (gamma, beta) = (
            Tensor::<1>::ones([c], &device),
            Tensor::<1>::zeros([c], &device),
        );
        time("burn BatchNorm train forward + backward", &shape, &|| {
            backward(burn_bn.forward(x.clone()))
        });
        for (name, fused_relu, burns_relu) in [
            (
                "flex_kernels batch norm train forward + backward",
                false,
                false,
            ),
            (
                "flex_kernels batch norm train, then burn's relu, forward + backward",
                false,
                true,
            ),
            (
                "flex_kernels batch norm + relu train forward + backward",
                true,
                false,
            ),
        ] {
            time(name, &shape, &|| {
                let (gamma, beta) = (gamma.clone(), beta.clone());
                let (y, _, _) = batch_norm::train(x.clone(), gamma, beta, EPSILON, fused_relu)
                    .expect("the flex backend takes the fused kernel");
                backward(if burns_relu { relu(y) } else { y })
            });
        }
        time(
            "burn's relu(x + shortcut) forward + backward",
            &shape,
            &|| backward(relu(x.clone() + shortcut.clone())),
        );
        time("flex_kernels add_relu forward + backward", &shape, &|| {
            backward(residual::add_relu(x.clone(), shortcut.clone()))
        });
        time(
            "flex_kernels batch norm train, then add_relu, forward + backward",
            &shape,
            &|| {
                let (gamma, beta) = (gamma.clone(), beta.clone());
                let (y, _, _) = batch_norm::train(x.clone(), gamma, beta, EPSILON, false)
                    .expect("the flex backend takes the fused kernel");
                backward(residual::add_relu(y, shortcut.clone()))
            },
        );
        time(
            "flex_kernels normalized_add_relu train forward + backward",
            &shape,
            &|| {
                let affine = (gamma.clone(), beta.clone());
                let (y, _, _) =
                    residual::normalized_add_relu(x.clone(), affine, shortcut.clone(), EPSILON)
                        .expect("the flex backend takes the fused kernel");
                backward(y)
            },
        );
        let flex = Device::flex();
        let x_eval = Tensor::<4>::from_data(x.to_data(), &flex);
        let (gamma, beta) = (
            Tensor::<1>::ones([c], &flex),
            Tensor::<1>::zeros([c], &flex),
        );
        let statistics = [
            Tensor::<1>::zeros([c], &flex),
            Tensor::<1>::ones([c], &flex),
        ];
        time("flex_kernels batch norm eval forward", &shape, &|| {
            let (gamma, beta, statistics) = (gamma.clone(), beta.clone(), statistics.clone());
            batch_norm::evaluate(x_eval.clone(), gamma, beta, statistics, EPSILON, false)
                .expect("the flex backend takes the fused kernel")
                .into_data();
        });
    }
    googlenet_pools(&device);
}

/// PyTorch's `BatchNorm2d` default.
const EPSILON: f64 = 1e-5;

/// A 3x3 max pool padded by 1, as GoogleNet's.
fn pool_options(stride: usize) -> MaxPoolOptions<2> {
    MaxPoolOptions::new([3, 3])
        .with_stride([stride, stride])
        .with_padding_pairs([(1, 1), (1, 1)])
}

/// `pool::max_pool2d` at the shapes of GoogleNet's pools: its inception branches' 3x3 stride-1 pools
/// at each stage's widest input, and its first stride-2 pool. Inputs are clamped at zero, as
/// after a ReLU, so windows hold ties.
fn googlenet_pools(device: &Device) {
    for (n, c, side, stride) in [
        (128, 192, 32, 1),
        (128, 480, 16, 1),
        (128, 832, 8, 1),
        (128, 480, 32, 2),
    ] {
        let shape = format!("{n}x{c}x{side}x{side}");
        let x = Tensor::<4>::random([n, c, side, side], Distribution::Normal(0.5, 1.0), device)
            .clamp_min(0.0)
            .detach()
            .require_grad();
        let x_eval = x.clone().inner();
        time(
            &format!("flex_kernels max pool 3x3 stride {stride} forward"),
            &shape,
            &|| {
                pool::max_pool2d(x_eval.clone(), pool_options(stride)).into_data();
            },
        );
        time(
            &format!("flex_kernels max pool 3x3 stride {stride} forward + backward"),
            &shape,
            &|| {
                let grads = pool::max_pool2d(x.clone(), pool_options(stride))
                    .sum()
                    .backward();
                x.grad(&grads).unwrap().into_data();
            },
        );
    }
}
