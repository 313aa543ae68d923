//! `conv::conv2d` computes burn's `conv2d`: the same output and the same input, weight and bias
//! gradients, for every stride, padding, dilation and kernel shape the zoo uses and a few it does
//! not. The 3x3 stride-1 pad-1 cases run the direct kernels (`same_conv3x3`) on processors with
//! AVX2 and FMA, the others im2col + gemm.
mod common;

use burn::prelude::*;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use cnnzoo_flex_kernels::conv::{conv2d, conv2d_add, conv2d_normalized, normalized_conv2d};
use cnnzoo_flex_kernels::{batch_norm, residual};
use common::{at_every_isa, normal, seeded_flex};

/// Largest difference relative to the largest magnitude of the reference.
fn relative_diff<const D: usize>(ours: Tensor<D>, reference: Tensor<D>) -> f32 {
    let scale = reference.clone().abs().max().into_scalar::<f32>().max(1e-6);
    (ours - reference).abs().max().into_scalar::<f32>() / scale
}

struct Case {
    name: &'static str,
    input: [usize; 4],
    weight: [usize; 4],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
}

const CASES: &[Case] = &[
    Case {
        name: "3x3 stride 1 pad 1 (ResNet, DenseNet, GoogleNet)",
        input: [3, 5, 9, 8],
        weight: [4, 5, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1 over 32x32 images (ResNet's first stage): wide vectors at AVX-512",
        input: [2, 16, 32, 32],
        weight: [16, 16, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1, rows of 24, output channels 8 + 3: wide and narrow vectors at AVX-512",
        input: [2, 5, 6, 24],
        weight: [11, 5, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1 over 8x8 images (ResNet's last stage), output channels 8 + 4 + 3: \
               two rows to a masked vector at AVX-512",
        input: [2, 6, 8, 8],
        weight: [15, 6, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1, rows of 2 over 24 rows: 8 rows to a masked vector, an odd vector \
               count",
        input: [2, 3, 24, 2],
        weight: [9, 3, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1 over 16x16 images, output channels 4 + 1",
        input: [3, 8, 16, 16],
        weight: [5, 8, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1, output channels 4 + 3, images one pixel wide",
        input: [2, 3, 5, 1],
        weight: [7, 3, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1, output channels 4 + 2, rows of 13",
        input: [3, 6, 7, 13],
        weight: [6, 6, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 pad 1, output channels 4 + 1, images one row high",
        input: [2, 2, 1, 4],
        weight: [5, 2, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 stride 2 pad 1 (a stage's first block)",
        input: [2, 4, 9, 10],
        weight: [6, 4, 3, 3],
        stride: [2, 2],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 stride 2 pad 1 over even sizes (ResNet's stage transitions): phase planes",
        input: [3, 4, 16, 12],
        weight: [6, 4, 3, 3],
        stride: [2, 2],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 stride 2 pad 1, phase planes, output rows in two bands",
        input: [1, 32, 48, 32],
        weight: [5, 32, 3, 3],
        stride: [2, 2],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "1x1 stride 2 over even sizes (ResNet's projection): phase planes",
        input: [2, 5, 8, 6],
        weight: [7, 5, 1, 1],
        stride: [2, 2],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "2x2 stride 2, no padding (patchify): phase planes",
        input: [2, 3, 6, 8],
        weight: [4, 3, 2, 2],
        stride: [2, 2],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 stride 3 pad (1, 1) over sizes of 3s: three-by-three phase planes",
        input: [2, 3, 9, 6],
        weight: [4, 3, 3, 3],
        stride: [3, 3],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "1x1 stride 1 (bottlenecks)",
        input: [3, 7, 6, 6],
        weight: [5, 7, 1, 1],
        stride: [1, 1],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "1x1 stride 2 (projection shortcut)",
        input: [2, 4, 7, 7],
        weight: [8, 4, 1, 1],
        stride: [2, 2],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "7x7 stride 2 pad 3 (ImageNet stem)",
        input: [2, 3, 15, 13],
        weight: [4, 3, 7, 7],
        stride: [2, 2],
        padding: [(3, 3), (3, 3)],
        dilation: [1, 1],
    },
    Case {
        name: "1x7 pad (0, 3) (Inception v3)",
        input: [2, 3, 5, 11],
        weight: [4, 3, 1, 7],
        stride: [1, 1],
        padding: [(0, 0), (3, 3)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 valid stride 2 (Inception v3 reductions)",
        input: [2, 3, 11, 11],
        weight: [5, 3, 3, 3],
        stride: [2, 2],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "asymmetric padding, mixed strides, dilation 2",
        input: [2, 3, 10, 12],
        weight: [4, 3, 3, 2],
        stride: [1, 3],
        padding: [(2, 0), (0, 1)],
        dilation: [2, 2],
    },
    Case {
        name: "stride 1, row dilation 2, asymmetric padding, output as wide as the input",
        input: [2, 3, 7, 6],
        weight: [4, 3, 3, 2],
        stride: [1, 1],
        padding: [(2, 2), (1, 0)],
        dilation: [2, 1],
    },
    Case {
        name: "5x5 pad 2 over images smaller than the kernel",
        input: [3, 2, 2, 1],
        weight: [3, 2, 5, 5],
        stride: [1, 1],
        padding: [(2, 2), (2, 2)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 over an image split into bands of output rows",
        input: [1, 32, 40, 64],
        weight: [4, 32, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "1x1 over an image split into bands of output rows",
        input: [1, 64, 72, 72],
        weight: [3, 64, 1, 1],
        stride: [1, 1],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "3x3 over small images, several to a gemm and a partial last tile",
        input: [37, 64, 4, 4],
        weight: [8, 64, 3, 3],
        stride: [1, 1],
        padding: [(1, 1), (1, 1)],
        dilation: [1, 1],
    },
    Case {
        name: "1x1 over small images, several to a gemm and a partial last tile",
        input: [40, 256, 3, 3],
        weight: [5, 256, 1, 1],
        stride: [1, 1],
        padding: [(0, 0), (0, 0)],
        dilation: [1, 1],
    },
    Case {
        name: "padding wider than the image",
        input: [1, 2, 3, 2],
        weight: [3, 2, 3, 3],
        stride: [1, 1],
        padding: [(4, 4), (4, 4)],
        dilation: [1, 1],
    },
];

#[test]
fn output_and_gradients_match_burns_conv2d() {
    at_every_isa(|| {
        let device = seeded_flex(11, true);
        for case in CASES {
            let random = |shape: [usize; 4]| normal(shape, &device).require_grad();
            let x = random(case.input);
            let weight = random(case.weight);
            let bias = normal([case.weight[0]], &device).require_grad();
            let options =
                || ConvOptions::new_with_padding(case.stride, case.padding, case.dilation, 1);

            let y_ref = burn_conv2d(x.clone(), weight.clone(), Some(bias.clone()), options());
            let y = conv2d(x.clone(), weight.clone(), Some(bias.clone()), options());
            assert_eq!(y.dims(), y_ref.dims(), "{}: output shape", case.name);
            let diff = relative_diff(y.clone(), y_ref.clone());
            assert!(diff < 1e-5, "{}: output differs by {diff}", case.name);

            // A random upstream gradient, so that every output element weighs differently.
            let upstream = normal(y.dims(), &device);
            let grads_ref = (y_ref * upstream.clone()).sum().backward();
            let grads = (y * upstream).sum().backward();
            let grad_diff = |ours: Option<Tensor<4>>, reference: Option<Tensor<4>>| {
                relative_diff(ours.unwrap(), reference.unwrap())
            };
            let diffs = [
                ("input", grad_diff(x.grad(&grads), x.grad(&grads_ref))),
                (
                    "weight",
                    grad_diff(weight.grad(&grads), weight.grad(&grads_ref)),
                ),
                (
                    "bias",
                    relative_diff(bias.grad(&grads).unwrap(), bias.grad(&grads_ref).unwrap()),
                ),
            ];
            for (what, diff) in diffs {
                assert!(
                    diff < 1e-5,
                    "{}: {what} gradient differs by {diff}",
                    case.name
                );
            }
        }
    });
}

/// `conv2d_add` (a pre-activation block's end, the sum in the convolution's output pass) against
/// `conv2d` then `residual::add`, in every case: the output and the gradients of the input, the
/// weight and the shortcut are the same values, as the fused pass adds the same two numbers;
/// and a shortcut that only broadcasts takes burn's add.
#[test]
fn convolution_with_shortcut_equals_conv2d_then_add() {
    at_every_isa(|| {
        let device = seeded_flex(15, true);
        let values = |tensor: Tensor<4>| tensor.into_data().try_to_vec::<f32>().unwrap();
        for case in CASES {
            let random = |shape: [usize; 4]| normal(shape, &device).require_grad();
            let (x, weight) = (random(case.input), random(case.weight));
            let options =
                || ConvOptions::new_with_padding(case.stride, case.padding, case.dilation, 1);
            let shape = conv2d(x.clone().detach(), weight.clone().detach(), None, options()).dims();
            let shortcut = random(shape);
            let upstream = normal(shape, &device);
            let run = |fused: bool| {
                let operands = (x.clone(), weight.clone(), shortcut.clone());
                let y = if fused {
                    conv2d_add(operands.0, operands.1, operands.2, options())
                } else {
                    let y = conv2d(operands.0, operands.1, None, options());
                    residual::add(y, operands.2)
                };
                let output = values(y.clone());
                let grads = (y * upstream.clone()).sum().backward();
                let grad = |tensor: &Tensor<4>| values(tensor.grad(&grads).unwrap());
                [output, grad(&x), grad(&weight), grad(&shortcut)]
            };
            let (fused, separate) = (run(true), run(false));
            for (what, (ours, reference)) in ["output", "input gradient", "weight gradient"]
                .into_iter()
                .chain(["shortcut gradient"])
                .zip(fused.iter().zip(&separate))
            {
                assert_eq!(ours.len(), reference.len(), "{}: {what}", case.name);
                if let Some(i) = ours.iter().zip(reference).position(|(a, b)| a != b) {
                    let (a, b) = (ours[i], reference[i]);
                    panic!("{}: {what}, value {i}: {a} against {b}", case.name);
                }
            }
        }
        let x = normal([2, 3, 6, 6], &device);
        let weight = normal([4, 3, 3, 3], &device);
        let shortcut = normal([1, 4, 1, 1], &device);
        let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
        let y = conv2d_add(x.clone(), weight.clone(), shortcut.clone(), options());
        let expected = burn_conv2d(x, weight, None, options()) + shortcut;
        assert_eq!(y.dims(), [2, 4, 6, 6]);
        assert!(relative_diff(y, expected) < 1e-6, "broadcast shortcut");
    });
}

#[test]
fn inference_without_autodiff_matches_burns_conv2d() {
    at_every_isa(|| {
        let device = seeded_flex(12, false);
        let x = normal([4, 6, 12, 12], &device);
        let weight = normal([8, 6, 3, 3], &device);
        let options = || ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
        let diff = relative_diff(
            conv2d(x.clone(), weight.clone(), None, options()),
            burn_conv2d(x, weight, None, options()),
        );
        assert!(diff < 1e-5, "output differs by {diff}");
    });
}

#[test]
fn grouped_convolution_keeps_burns_kernels_and_result() {
    let device = seeded_flex(13, true);
    let x = normal([2, 6, 7, 7], &device);
    let weight = normal([6, 1, 3, 3], &device);
    let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 6);
    let y = conv2d(x.clone(), weight.clone(), None, options());
    assert_eq!(y.dims(), [2, 6, 7, 7]);
    let diff = relative_diff(y, burn_conv2d(x, weight, None, options()));
    assert!(diff < 1e-5, "depthwise output differs by {diff}");
}

/// Input and weight shapes, stride, padding and groups of the fused ops' tests: the masked
/// kernel, padded planes in place and through a tile, im2col at stride 2, the pointwise gemm
/// and burn's grouped kernel.
type NormalizedCase = ([usize; 4], [usize; 4], usize, usize, usize);
const NORMALIZED_CASES: [NormalizedCase; 6] = [
    ([3, 6, 8, 8], [10, 6, 3, 3], 1, 1, 1),
    ([2, 5, 16, 16], [9, 5, 3, 3], 1, 1, 1),
    ([2, 4, 6, 24], [5, 4, 3, 3], 1, 1, 1),
    ([3, 4, 9, 10], [6, 4, 3, 3], 2, 1, 1),
    ([2, 5, 7, 7], [7, 5, 1, 1], 1, 0, 1),
    ([2, 6, 7, 7], [6, 1, 3, 3], 1, 1, 6),
];

/// A convolution's input, weight and options.
type ConvOperands = (Tensor<4>, Tensor<4>, ConvOptions<2>);

/// Runs `check` on each case with random operands, at every instruction-set level: the
/// convolution's, and batch norm's gamma, beta, mean and variance over the convolution's input
/// channels (`of_input`) or its output channels.
fn for_every_case(seed: u64, of_input: bool, check: impl Fn(ConvOperands, [Tensor<1>; 4])) {
    at_every_isa(|| {
        let device = seeded_flex(seed, false);
        for (input, weight, stride, padding, groups) in NORMALIZED_CASES {
            let channels = if of_input { input[1] } else { weight[0] };
            let [gamma, beta, mean] = [0; 3].map(|_| normal([channels], &device));
            let variance = normal([channels], &device).abs() + 0.5;
            let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], groups);
            let convolution = (normal(input, &device), normal(weight, &device), options);
            check(convolution, [gamma, beta, mean, variance]);
        }
    });
}

/// Batch norm in evaluation (and a ReLU, and a residual block's shortcut) run in the
/// convolution's output pass gives the same bits as `batch_norm::evaluate` over `conv2d`'s
/// output (then `residual::add_relu` or `add`): on every kernel path (masked, padded planes in
/// place and through a tile, im2col at stride 2, the pointwise gemm, burn's grouped kernel).
#[test]
fn normalized_convolution_matches_batch_norm_after_conv2d_to_the_bit() {
    for_every_case(14, false, |convolution, norm| {
        let (x, weight, options) = convolution.clone();
        let [gamma, beta, mean, variance] = norm.clone();
        let y = conv2d(x.clone(), weight.clone(), None, options);
        let shortcut = y.clone().flip([0]);
        for (relu, residual) in [(false, false), (true, false), (false, true), (true, true)] {
            let fused = conv2d_normalized(
                convolution.clone(),
                norm.clone(),
                residual.then(|| shortcut.clone()),
                (1e-5, relu),
            )
            .expect("f32 on flex without autodiff takes the fused kernel");
            let statistics = [mean.clone(), variance.clone()];
            let (gamma, beta) = (gamma.clone(), beta.clone());
            let bn_relu = relu && !residual;
            let y = batch_norm::evaluate(y.clone(), gamma, beta, statistics, 1e-5, bn_relu)
                .expect("f32 on flex without autodiff takes the fused kernel");
            let reference = match (residual, relu) {
                (false, _) => y,
                (true, true) => residual::add_relu(y, shortcut.clone()),
                (true, false) => residual::add(y, shortcut.clone()),
            };
            assert!(
                bits(fused) == bits(reference),
                "input {:?}, weight {:?}, relu {relu}, residual {residual}: not the same bits",
                x.dims(),
                weight.dims()
            );
        }
    });
}

/// Batch norm in evaluation (and a ReLU) applied to the convolution's input as it takes each
/// image gives the same bits as `conv2d` over `batch_norm::evaluate`'s output, on every path.
#[test]
fn normalized_input_convolution_matches_conv2d_after_batch_norm_to_the_bit() {
    for_every_case(17, true, |convolution, norm| {
        let (x, weight, options) = convolution.clone();
        let [gamma, beta, mean, variance] = norm.clone();
        for relu in [false, true] {
            let fused = normalized_conv2d(convolution.clone(), norm.clone(), (1e-5, relu))
                .expect("f32 on flex without autodiff takes the fused kernel");
            let statistics = [mean.clone(), variance.clone()];
            let (gamma, beta) = (gamma.clone(), beta.clone());
            let normalized = batch_norm::evaluate(x.clone(), gamma, beta, statistics, 1e-5, relu)
                .expect("f32 on flex without autodiff takes the fused kernel");
            let reference = conv2d(normalized, weight.clone(), None, options.clone());
            assert!(
                bits(fused) == bits(reference),
                "input {:?}, weight {:?}, relu {relu}: not the same bits",
                x.dims(),
                weight.dims()
            );
        }
    });
}

/// A tensor's values as bits, to compare two results exactly.
fn bits(tensor: Tensor<4>) -> Vec<u32> {
    tensor.into_data().iter::<f32>().map(f32::to_bits).collect()
}

/// Under autodiff the fused op declines, for a tracked input and for tracked parameters under an
/// untracked input (a training model's first layer, which the images reach untracked).
#[test]
fn normalized_convolution_declines_under_autodiff() {
    let device = seeded_flex(15, true);
    let plain = seeded_flex(16, false);
    let options = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let norm = |device: &Device| [0; 4].map(|_| Tensor::<1>::ones([4], device));
    let x = normal([2, 3, 8, 8], &device);
    let weight = normal([4, 3, 3, 3], &device);
    let convolution = (x, weight.clone(), options());
    assert!(conv2d_normalized(convolution, norm(&device), None, (1e-5, true)).is_none());
    let untracked_x = normal([2, 3, 8, 8], &plain);
    let convolution = (untracked_x.clone(), weight, options());
    assert!(conv2d_normalized(convolution, norm(&device), None, (1e-5, true)).is_none());
    let convolution = (untracked_x, normal([4, 3, 3, 3], &plain), options());
    assert!(conv2d_normalized(convolution, norm(&plain), None, (1e-5, true)).is_some());
}
