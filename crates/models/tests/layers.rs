//! The layers that run cnnzoo's CPU kernels keep burn's records and functions. `Convolution`
//! pads as burn's `Conv2d` and saves a record burn's loads. `BatchNorm2d` computes burn's
//! `BatchNorm` function: the same output, gradients and running
//! statistics in training on the CPU backend (fused kernels) and on ndarray (burn's tensor ops),
//! the same output in inference, and the same record; with a ReLU after it, the same as burn's
//! batch norm and then its relu; at a post-activation block's end, the same as burn's ops.
use burn::module::Module;
use burn::nn::BatchNormConfig;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::{Distribution, Gradients};
use cnnzoo_models::layers::{Act, BatchNorm2d, Convolution};

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// burn's `BatchNorm` and a `BatchNorm2d` from `config`, sharing non-trivial random affine
/// parameters.
fn layers(config: BatchNormConfig, device: &Device) -> (burn::nn::BatchNorm, BatchNorm2d) {
    let channels = config.num_features;
    let gamma = Tensor::<1>::random([channels], Distribution::Uniform(0.5, 2.0), device);
    let beta = Tensor::<1>::random([channels], Distribution::Normal(0.0, 1.0), device);
    let reference = burn::nn::BatchNorm {
        gamma: burn::module::Param::from_tensor(gamma.clone()),
        beta: burn::module::Param::from_tensor(beta.clone()),
        ..config.init(device)
    };
    let ours = BatchNorm2d {
        gamma: burn::module::Param::from_tensor(gamma),
        beta: burn::module::Param::from_tensor(beta),
        ..BatchNorm2d::new(config, device)
    };
    (reference, ours)
}

/// The gamma and beta gradients of the two layers agree.
fn assert_param_grads_match(
    (reference, grads_ref): (&burn::nn::BatchNorm, &Gradients),
    (ours, grads): (&BatchNorm2d, &Gradients),
    device: &Device,
) {
    for (name, a, b) in [
        ("gamma", &reference.gamma, &ours.gamma),
        ("beta", &reference.beta, &ours.beta),
    ] {
        let d = max_abs_diff(a.grad(grads_ref).unwrap(), b.grad(grads).unwrap());
        assert!(d < 1e-3, "{device:?}: {name} gradient differs by {d}");
    }
}

/// Checks that our output `y` of 360 values matches burn's `y_ref` and, where a ReLU ends it
/// (`relu`), that it clipped a good share of them, so that the gradient mask matters; then runs
/// both backward passes with `upstream` as the output gradient.
fn outputs_and_grads(
    (y_ref, y): (Tensor<4>, Tensor<4>),
    (upstream, relu): (Tensor<4>, bool),
    device: &Device,
) -> (Gradients, Gradients) {
    let d = max_abs_diff(y_ref.clone(), y.clone());
    assert!(d < 1e-4, "{device:?}: output differs by {d}");
    let zeros = y.clone().equal_elem(0.0).int().sum().into_scalar::<i64>();
    assert!(
        !relu || (zeros > 60 && zeros < 300),
        "{device:?}: {zeros} of 360 outputs clipped"
    );
    let grads_ref = (y_ref * upstream.clone()).sum().backward();
    let grads = (y * upstream).sum().backward();
    (grads_ref, grads)
}

/// Flex runs the fused kernels of `flex_kernels::batch_norm`; ndarray (as wgpu) runs the pass
/// composed of burn's tensor ops. (burn deprecates ndarray; it is still the one other CPU backend
/// built in.)
#[test]
#[allow(deprecated)]
fn training_pass_matches_burns_batch_norm() {
    for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
        training_pass_matches_on(device);
    }
}

fn training_pass_matches_on(device: Device) {
    device.seed(3);
    let (reference, ours) = layers(BatchNormConfig::new(6).with_momentum(0.3), &device);
    // An offset mean, as a convolution's output has.
    let x =
        Tensor::<4>::random([4, 6, 5, 7], Distribution::Normal(3.0, 2.0), &device).require_grad();
    let upstream = Tensor::<4>::random([4, 6, 5, 7], Distribution::Normal(0.0, 1.0), &device);

    let y_ref = reference.forward(x.clone());
    let y = ours.forward(x.clone());
    assert!(max_abs_diff(y_ref.clone(), y.clone()) < 1e-4);

    let grads_ref = (y_ref * upstream.clone()).sum().backward();
    let grads = (y * upstream).sum().backward();
    let dx = max_abs_diff(x.grad(&grads_ref).unwrap(), x.grad(&grads).unwrap());
    assert!(dx < 1e-4, "{device:?}: input gradient differs by {dx}");
    assert_param_grads_match((&reference, &grads_ref), (&ours, &grads), &device);
    let d = max_abs_diff(
        reference.running_mean.value_sync(),
        ours.running_mean.value_sync(),
    );
    assert!(d < 1e-5, "running mean differs by {d}");
    let d = max_abs_diff(
        reference.running_var.value_sync(),
        ours.running_var.value_sync(),
    );
    assert!(d < 1e-4, "running variance differs by {d}");
    // The statistics moved: the update happened at all.
    assert!(
        ours.running_mean
            .value_sync()
            .abs()
            .max()
            .into_scalar::<f32>()
            > 0.5
    );

    // Inference (no autodiff) uses the running statistics, as burn's does.
    let (reference, ours) = (reference.valid(), ours.valid());
    let x = x.inner();
    assert!(max_abs_diff(reference.forward(x.clone()), ours.forward(x)) < 1e-5);
}

#[test]
fn record_is_burns_batch_norm_record() {
    let device = Device::flex();
    let ours = BatchNorm2d::new(BatchNormConfig::new(3), &device);
    let path = std::env::temp_dir().join(format!("cnnzoo-bn-record-{}.bpk", std::process::id()));
    ours.save_file(&path).unwrap();
    let record = ModuleRecord::load(&path);
    std::fs::remove_file(&path).unwrap();
    let loaded = BatchNormConfig::new(3)
        .init(&device)
        .try_load_record(record.unwrap())
        .expect("burn's BatchNorm loads a BatchNorm2d record");
    assert_eq!(loaded.gamma.dims(), [3]);
}

/// `forward_activated` with a ReLU (fused into the kernels on flex, a separate op on ndarray)
/// computes `relu(BatchNorm(x))`: output, gradients of x, gamma and beta, and inference.
#[test]
#[allow(deprecated)]
fn relu_after_batch_norm_matches_burns_batch_norm_then_relu() {
    for device in [Device::flex().autodiff(), Device::ndarray().autodiff()] {
        device.seed(4);
        let (reference, ours) = layers(BatchNormConfig::new(5), &device);
        let x = Tensor::<4>::random([3, 5, 6, 4], Distribution::Normal(1.0, 2.0), &device)
            .require_grad();
        let upstream = Tensor::<4>::random([3, 5, 6, 4], Distribution::Normal(0.0, 1.0), &device);

        let y_ref = burn::tensor::activation::relu(reference.forward(x.clone()));
        let y = ours.forward_activated(x.clone(), Act::Relu);
        let (grads_ref, grads) = outputs_and_grads((y_ref, y), (upstream, true), &device);
        let dx = max_abs_diff(x.grad(&grads_ref).unwrap(), x.grad(&grads).unwrap());
        assert!(dx < 1e-4, "{device:?}: input gradient differs by {dx}");
        assert_param_grads_match((&reference, &grads_ref), (&ours, &grads), &device);

        let (reference, ours) = (reference.valid(), ours.valid());
        let x = x.inner();
        let expected = burn::tensor::activation::relu(reference.forward(x.clone()));
        let d = max_abs_diff(expected, ours.forward_activated(x, Act::Relu));
        assert!(d < 1e-5, "{device:?}: inference differs by {d}");
    }
}

/// A residual block's end in training computes burn's ops: post-activation,
/// `forward_convolved_residual` (batch norm, the shortcut's sum and the ReLU in batch norm's
/// passes on flex) as burn's conv2d, `BatchNorm` and `relu(z + shortcut)`; pre-activation,
/// `forward_into_residual` (the sum in the convolution's output pass on flex) as `BatchNorm`,
/// relu, conv2d and `+ shortcut`. Separate ops on ndarray. The output, the gradients of the
/// input, the weight, gamma, beta and the shortcut, and the running statistics agree.
#[test]
#[allow(deprecated)]
fn residual_ends_in_training_match_burns_ops() {
    let devices = [Device::flex().autodiff(), Device::ndarray().autodiff()];
    for (device, pre_activation) in devices
        .iter()
        .flat_map(|d| [(d.clone(), false), (d.clone(), true)])
    {
        device.seed(5);
        let (reference, ours) = layers(BatchNormConfig::new(4).with_momentum(0.3), &device);
        let c_in = if pre_activation { 4 } else { 3 };
        let conv_ref = Conv2dConfig::new([c_in, 4], [3, 3])
            .with_padding(PaddingConfig2d::Same)
            .with_bias(false)
            .init(&device);
        let conv = Convolution::from(conv_ref.clone());
        let normal = |shape: [usize; 4], mean: f64| {
            Tensor::<4>::random(shape, Distribution::Normal(mean, 1.0), &device)
        };
        let x = normal([3, c_in, 6, 5], 0.5).require_grad();
        let shortcut = normal([3, 4, 6, 5], 0.0).require_grad();
        let upstream = normal([3, 4, 6, 5], 0.0);

        let relu = burn::tensor::activation::relu;
        let (y_ref, y) = if pre_activation {
            let y_ref = conv_ref.forward(relu(reference.forward(x.clone()))) + shortcut.clone();
            let y = ours.forward_into_residual(x.clone(), Act::Relu, &conv, shortcut.clone());
            (y_ref, y)
        } else {
            let y_ref = relu(reference.forward(conv_ref.forward(x.clone())) + shortcut.clone());
            let y = ours.forward_convolved_residual(&conv, x.clone(), shortcut.clone(), Act::Relu);
            (y_ref, y)
        };
        let ended_by_relu = (upstream, !pre_activation);
        let (grads_ref, grads) = outputs_and_grads((y_ref, y), ended_by_relu, &device);
        let pairs = [
            ("input", x.grad(&grads_ref), x.grad(&grads)),
            ("shortcut", shortcut.grad(&grads_ref), shortcut.grad(&grads)),
            (
                "weight",
                conv_ref.weight.grad(&grads_ref),
                conv.weight.grad(&grads),
            ),
        ];
        for (name, expected, actual) in pairs {
            let d = max_abs_diff(expected.unwrap(), actual.unwrap());
            assert!(d < 1e-3, "{device:?}: {name} gradient differs by {d}");
        }
        assert_param_grads_match((&reference, &grads_ref), (&ours, &grads), &device);
        for (name, a, b) in [
            ("mean", &reference.running_mean, &ours.running_mean),
            ("variance", &reference.running_var, &ours.running_var),
        ] {
            let d = max_abs_diff(a.value_sync(), b.value_sync());
            assert!(d < 1e-4, "{device:?}: running {name} differs by {d}");
        }
        let mean_moved = ours.running_mean.value_sync().abs().max();
        let variance_moved = ours.running_var.value_sync().sub_scalar(1.0).abs().max();
        let moved = mean_moved.into_scalar::<f32>() + variance_moved.into_scalar::<f32>();
        assert!(moved > 0.05, "{device:?}: no update");
    }
}

#[test]
fn convolution_pads_and_records_as_burns_conv2d() {
    let device = Device::flex();
    device.seed(14);
    let x = Tensor::<4>::random([2, 3, 9, 10], Distribution::Normal(0.0, 1.0), &device);
    let paddings = [
        PaddingConfig2d::Valid,
        PaddingConfig2d::Same,
        PaddingConfig2d::Explicit(1, 2, 0, 1),
    ];
    for padding in paddings {
        let reference = Conv2dConfig::new([3, 4], [3, 2])
            .with_stride([2, 2])
            .with_padding(padding.clone())
            .init(&device);
        let ours = Convolution::from(reference.clone());
        let y_ref = reference.forward(x.clone());
        let y = ours.forward(x.clone());
        assert_eq!(y.dims(), y_ref.dims(), "{padding:?}: output shape");
        let diff = max_abs_diff(y, y_ref);
        assert!(diff < 1e-5, "{padding:?}: output differs by {diff}");

        // A checkpoint of the layer loads into burn's `Conv2d` (a fresh one, other weights).
        let path = std::env::temp_dir().join(format!(
            "cnnzoo-conv-record-{}-{padding:?}.bpk",
            std::process::id()
        ));
        ours.clone().save_file(&path).unwrap();
        let record = ModuleRecord::load(&path);
        let loaded = Conv2dConfig::new([3, 4], [3, 2])
            .with_stride([2, 2])
            .with_padding(padding.clone())
            .init(&device)
            .try_load_record(record.unwrap())
            .expect("burn's Conv2d loads a `Convolution` record");
        let diff = max_abs_diff(loaded.forward(x.clone()), ours.forward(x.clone()));
        // The record reads its tensors from the file lazily: remove it only after the forward.
        std::fs::remove_file(&path).unwrap();
        assert!(diff < 1e-6, "{padding:?}: loaded layer differs by {diff}");
    }
}
