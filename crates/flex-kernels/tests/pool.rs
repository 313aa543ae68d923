//! `pool::max_pool2d` (what the models' max pooling layer runs) against burn's
//! `module::max_pool2d` on the same device: the output and the input gradient, for the pools of
//! the zoo's models, on inputs full of ties (which window position gets the gradient is then
//! decided by the tie rule: the first maximum in row-major order).
mod common;

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::max_pool2d as burn_max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use cnnzoo_flex_kernels::pool::max_pool2d;
use common::{at_every_isa, normal, seeded_flex};

struct Case {
    name: &'static str,
    input: [usize; 4],
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
}

const CASES: &[Case] = &[
    Case {
        name: "3x3 stride 1 pad 1 (GoogleNet's branches)",
        input: [3, 4, 9, 8],
        kernel: 3,
        stride: 1,
        padding: 1,
        dilation: 1,
    },
    Case {
        name: "3x3 stride 2 pad 1 (GoogleNet's downsampling, ResNet's stem)",
        input: [2, 3, 11, 10],
        kernel: 3,
        stride: 2,
        padding: 1,
        dilation: 1,
    },
    Case {
        name: "3x3 stride 2 no padding (Inception v3, AlexNet)",
        input: [2, 3, 11, 9],
        kernel: 3,
        stride: 2,
        padding: 0,
        dilation: 1,
    },
    Case {
        name: "2x2 stride 2 (VGG)",
        input: [2, 5, 8, 6],
        kernel: 2,
        stride: 2,
        padding: 0,
        dilation: 1,
    },
    Case {
        name: "3x3 stride 1 pad 2 dilation 2",
        input: [2, 2, 7, 9],
        kernel: 3,
        stride: 1,
        padding: 2,
        dilation: 2,
    },
];

fn options(case: &Case) -> MaxPoolOptions<2> {
    MaxPoolOptions::new([case.kernel; 2])
        .with_stride([case.stride; 2])
        .with_padding([case.padding; 2])
        .with_dilation([case.dilation; 2])
}

fn max_abs_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn output_and_input_gradient_match_burns_max_pool2d() {
    at_every_isa(|| {
        let device = seeded_flex(21, true);
        for case in CASES {
            // Whole numbers in [-2, 2], clamped below at 0 as after a ReLU: most windows hold ties.
            let x = Tensor::<4>::random(case.input, Distribution::Uniform(-2.0, 2.0), &device)
                .round()
                .clamp_min(0.0)
                .detach()
                .require_grad();
            let y_ref = burn_max_pool2d(x.clone(), options(case));
            let y = max_pool2d(x.clone(), options(case));
            assert_eq!(y.dims(), y_ref.dims(), "{}: output shape", case.name);
            assert_eq!(
                max_abs_diff(y.clone(), y_ref.clone()),
                0.0,
                "{}: output",
                case.name
            );

            let upstream = normal(y.dims(), &device);
            let grads_ref = (y_ref * upstream.clone()).sum().backward();
            let grads = (y * upstream).sum().backward();
            let diff = max_abs_diff(x.grad(&grads).unwrap(), x.grad(&grads_ref).unwrap());
            assert!(
                diff < 1e-6,
                "{}: input gradient differs by {diff}",
                case.name
            );
        }
    });
}

#[test]
fn inference_and_burns_fallbacks_match_burns_max_pool2d() {
    at_every_isa(|| {
        let device = seeded_flex(22, false);
        let x = normal([2, 3, 9, 10], &device);
        let same = |options: MaxPoolOptions<2>| {
            let ours = max_pool2d(x.clone(), options.clone());
            let reference = burn_max_pool2d(x.clone(), options);
            assert_eq!(ours.dims(), reference.dims());
            max_abs_diff(ours, reference)
        };
        let plain = MaxPoolOptions::new([3, 3])
            .with_stride([2, 2])
            .with_padding([1, 1]);
        assert_eq!(same(plain.clone()), 0.0, "the flex kernel without autodiff");
        // Ceil mode (torchvision's GoogLeNet) and asymmetric padding take burn's own path.
        assert_eq!(same(plain.with_ceil_mode(true)), 0.0, "ceil mode");
        let asymmetric = MaxPoolOptions::new([3, 3]).with_padding_pairs([(1, 0), (0, 1)]);
        assert_eq!(same(asymmetric), 0.0, "asymmetric padding");
        // Padding beyond every window's reach leaves the flex kernel's padded row no room for the
        // input: burn's path. (Every window lies in the padding, so both give minus infinity.)
        let wide = MaxPoolOptions::new([1, 1])
            .with_stride([14, 14])
            .with_padding([2, 2]);
        let (ours, reference) = (
            max_pool2d(x.clone(), wide.clone()),
            burn_max_pool2d(x.clone(), wide),
        );
        assert_eq!(ours.dims(), reference.dims());
        assert!(
            ours.equal(reference).all().into_scalar::<bool>(),
            "padding wider than the windows reach"
        );
    });
}
