//! Milliseconds per call of the layers the CIFAR models spend their time in, on burn's CPU
//! backend, at ResNet-20's three stage shapes (batch 128): convolution forward and
//! forward + backward as burn's `conv2d` and as `flex_kernels::conv` (and its two gradient
//! kernels on their own), GoogleNet's 3x3 stride-1 max pool as burn's and as `MaxPool2d`
//! (`flex_kernels::pool`), and batch norm's training pass as
//! burn's `BatchNorm` and as `BatchNorm2d` (whose training pass on this backend is
//! `flex_kernels::batch_norm`), and `BatchNorm2d` in evaluation; then `MaxPool2d` at the shapes
//! of GoogleNet's pools. `scripts/layer_speed_pytorch.py`
//! prints the same table for PyTorch. Each forward + backward figure includes the
//! `sum().backward()` that starts the backward pass, which is also printed on its own.
//!
//!     RAYON_NUM_THREADS=2 cargo run --release -p cnnzoo-models --example layer_speed
use std::time::Instant;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::nn::pool::MaxPool2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use cnnzoo_models::flex_kernels;
use cnnzoo_models::flex_kernels::conv::GemmConvBackend;
use cnnzoo_models::layers::{BatchNorm2d, MaxPool2d};

const REPEATS: usize = 10;

/// The allocator and settings of the `cnnzoo` binary (its `main.rs` says why): with glibc's,
/// page faults on fresh multi-megabyte buffers added a fifth to a forward + backward pass here.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's purge delay, the option the binary sets to "never"; the binary's test
/// `purge_delay_index_names_mimallocs_purge_delay` checks that this index still names it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn time(name: &str, shape: &str, f: &dyn Fn()) {
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
        // The gradient kernels alone, on flex tensors: the figures to hold against PyTorch's
        // `convolution_backward` for one gradient.
        let flex = |tensor: &Tensor<4>| FlexTensor::from_data(tensor.to_data());
        let (x_flex, weight_flex) = (flex(&x), flex(&weight));
        let output_grad = flex(&Tensor::<4>::random(
            [n, c, side, side],
            Distribution::Normal(0.0, 1.0),
            &device,
        ));
        time("flex_kernels conv 3x3 input gradient", &shape, &|| {
            Flex::gemm_conv2d_x_backward(
                x_flex.clone(),
                weight_flex.clone(),
                output_grad.clone(),
                options(),
            );
        });
        time("flex_kernels conv 3x3 weight gradient", &shape, &|| {
            Flex::gemm_conv2d_weight_backward(
                x_flex.clone(),
                weight_flex.clone(),
                output_grad.clone(),
                options(),
            );
        });
        let pool = MaxPool2dConfig::new([3, 3])
            .with_strides([1, 1])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init();
        time("max pool 3x3 stride 1 forward + backward", &shape, &|| {
            backward(pool.forward(x.clone()))
        });
        let pool = MaxPool2d::from(pool);
        time("MaxPool2d 3x3 stride 1 forward + backward", &shape, &|| {
            backward(pool.forward(x.clone()))
        });
        let burn_bn = BatchNormConfig::new(c).init(&device);
        let ours = BatchNorm2d::new(BatchNormConfig::new(c), &device);
        time("burn BatchNorm train forward + backward", &shape, &|| {
            backward(burn_bn.forward(x.clone()))
        });
        time("BatchNorm2d train forward + backward", &shape, &|| {
            backward(ours.forward(x.clone()))
        });
        let eval_bn = BatchNorm2d::new(BatchNormConfig::new(c), &Device::flex());
        let x_eval = Tensor::<4>::from_data(x.to_data(), &Device::flex());
        time("BatchNorm2d eval forward", &shape, &|| {
            eval_bn.forward(x_eval.clone()).into_data();
        });
    }
    googlenet_pools(&device);
}

/// `MaxPool2d` at the shapes of GoogleNet's pools: its inception branches' 3x3 stride-1 pools
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
        let pool = MaxPool2d::from(
            MaxPool2dConfig::new([3, 3])
                .with_strides([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
        );
        let x_eval = x.clone().inner();
        time(
            &format!("MaxPool2d 3x3 stride {stride} forward"),
            &shape,
            &|| {
                pool.forward(x_eval.clone()).into_data();
            },
        );
        time(
            &format!("MaxPool2d 3x3 stride {stride} forward + backward"),
            &shape,
            &|| {
                let grads = pool.forward(x.clone()).sum().backward();
                x.grad(&grads).unwrap().into_data();
            },
        );
    }
}
