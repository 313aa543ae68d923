//! `residual::add_relu` (the end of ResNet's post-activation blocks) against burn's
//! `relu(x + shortcut)` on the same device: the output and the gradients of both operands, with
//! about half the sums clipped, for contiguous and permuted operands and for shapes that only
//! broadcast (burn's path); `residual::add` (pre-activation and inverted residual blocks)
//! against burn's `x + shortcut`; and `residual::normalized_add_relu` (a post-activation block's
//! end in training) against `batch_norm::train` then `add_relu`.
mod common;

use burn::prelude::*;
use burn::tensor::activation::relu;
use cnnzoo_flex_kernels::batch_norm;
use cnnzoo_flex_kernels::residual::{add, add_relu, normalized_add_relu};
use common::{at_every_isa, normal, seeded_flex};

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

/// Output and both gradients of `ours(x, shortcut)` against `burns(x, shortcut)`, bit for bit,
/// with `upstream` as the output gradient; returns the output.
fn compare<const D: usize>(
    (x, shortcut): (Tensor<D>, Tensor<D>),
    upstream: Tensor<D>,
    ours: impl Fn(Tensor<D>, Tensor<D>) -> Tensor<D>,
    burns: impl Fn(Tensor<D>, Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let (x, shortcut) = (x.require_grad(), shortcut.require_grad());
    let expected = burns(x.clone(), shortcut.clone());
    let actual = ours(x.clone(), shortcut.clone());
    assert_eq!(actual.dims(), expected.dims());
    assert_eq!(
        max_abs_diff(actual.clone(), expected.clone()),
        0.0,
        "output"
    );
    let grads_expected = (expected * upstream.clone()).sum().backward();
    let grads = (actual.clone() * upstream).sum().backward();
    for (name, operand) in [("x", &x), ("shortcut", &shortcut)] {
        let d = max_abs_diff(
            operand.grad(&grads_expected).unwrap(),
            operand.grad(&grads).unwrap(),
        );
        assert_eq!(d, 0.0, "gradient of {name}");
    }
    actual
}

/// `compare` for `add_relu` against burn's `relu(x + shortcut)`; returns how many outputs were
/// clipped.
fn check<const D: usize>(x: Tensor<D>, shortcut: Tensor<D>, upstream: Tensor<D>) -> usize {
    let burns = |x: Tensor<D>, shortcut: Tensor<D>| relu(x + shortcut);
    let actual = compare((x, shortcut), upstream, add_relu, burns);
    actual.equal_elem(0.0).int().sum().into_scalar::<i64>() as usize
}

#[test]
fn add_relu_matches_burns_add_then_relu() {
    at_every_isa(|| {
        let device = seeded_flex(21, true);
        let shape = [3, 5, 7, 9];
        let upstream = normal(shape, &device);
        let clipped = check(normal(shape, &device), normal(shape, &device), upstream);
        let total = shape.iter().product::<usize>();
        assert!(
            clipped > total / 4 && clipped < 3 * total / 4,
            "{clipped} of {total} outputs clipped"
        );
    });
}

/// `add_relu`, and `add` against burn's `x + shortcut`, with one operand permuted.
#[test]
fn add_relu_and_add_read_permuted_operands() {
    let device = seeded_flex(22, true);
    let x = normal([4, 3, 6, 5], &device).permute([0, 1, 3, 2]);
    let shortcut = normal([4, 3, 5, 6], &device);
    let upstream = normal([4, 3, 5, 6], &device);
    assert!(check(x.clone(), shortcut.clone(), upstream.clone()) > 0);
    let output = compare((x, shortcut), upstream, add, |x, shortcut| x + shortcut);
    assert_eq!(output.dims(), [4, 3, 5, 6]);
}

#[test]
fn add_relu_broadcasts_as_burn_does() {
    let device = seeded_flex(23, true);
    let upstream = normal([2, 3, 4, 4], &device);
    assert!(
        check(
            normal([2, 3, 4, 4], &device),
            normal([1, 3, 1, 1], &device),
            upstream
        ) > 0
    );
}

#[test]
fn add_relu_without_autodiff_matches() {
    let device = seeded_flex(24, false);
    let (x, shortcut) = (normal([2, 4, 3, 3], &device), normal([2, 4, 3, 3], &device));
    let d = max_abs_diff(add_relu(x.clone(), shortcut.clone()), relu(x + shortcut));
    assert_eq!(d, 0.0);
}

#[test]
fn add_without_autodiff_matches() {
    let device = seeded_flex(26, false);
    let (x, shortcut) = (normal([2, 4, 3, 3], &device), normal([2, 4, 3, 3], &device));
    assert_eq!(
        max_abs_diff(add(x.clone(), shortcut.clone()), x + shortcut),
        0.0
    );
}

/// The fused end of a post-activation block in training against its two ops: the output, the
/// batch statistics and the gradients of x, gamma, beta and the shortcut are the same bits, as
/// the fused passes share the per-value expressions and add the sums in the same order.
#[test]
fn normalized_add_relu_equals_batch_norm_then_add_relu_to_the_bit() {
    const EPSILON: f64 = 1e-5;
    at_every_isa(|| {
        let device = seeded_flex(27, true);
        let shape = [4, 6, 9, 7];
        let x = normal(shape, &device).mul_scalar(2.0).add_scalar(0.3);
        let x = x.require_grad();
        let shortcut = normal(shape, &device).require_grad();
        let gamma = normal([6], &device).add_scalar(1.0).require_grad();
        let beta = normal([6], &device).mul_scalar(0.5).require_grad();
        let upstream = normal(shape, &device);
        let run = |fused: bool| {
            let (y, mean, variance) = if fused {
                let affine = (gamma.clone(), beta.clone());
                normalized_add_relu(x.clone(), affine, shortcut.clone(), EPSILON)
                    .expect("flex takes the fused kernel")
            } else {
                let (y, mean, variance) =
                    batch_norm::train(x.clone(), gamma.clone(), beta.clone(), EPSILON, false)
                        .expect("flex takes the fused kernel");
                (add_relu(y, shortcut.clone()), mean, variance)
            };
            let values = |data: TensorData| data.try_to_vec::<f32>().unwrap();
            let output = values(y.to_data());
            let grads = (y * upstream.clone()).sum().backward();
            [
                output,
                values(mean.to_data()),
                values(variance.to_data()),
                values(x.grad(&grads).unwrap().to_data()),
                values(shortcut.grad(&grads).unwrap().to_data()),
                values(gamma.grad(&grads).unwrap().to_data()),
                values(beta.grad(&grads).unwrap().to_data()),
            ]
        };
        let (fused, separate) = (run(true), run(false));
        let names = [
            "output",
            "mean",
            "variance",
            "x's gradient",
            "shortcut's gradient",
        ];
        let names = names
            .into_iter()
            .chain(["gamma's gradient", "beta's gradient"]);
        for (name, (ours, reference)) in names.zip(fused.iter().zip(&separate)) {
            assert_eq!(ours.len(), reference.len(), "{name}");
            if let Some(i) = ours.iter().zip(reference).position(|(a, b)| a != b) {
                panic!("{name}: value {i} is {} against {}", ours[i], reference[i]);
            }
        }
        let output = &fused[0];
        let clipped = output.iter().filter(|&&v| v == 0.0).count();
        assert!(
            clipped > output.len() / 4 && clipped < 3 * output.len() / 4,
            "{clipped} of {} outputs clipped",
            output.len()
        );
    });
}
