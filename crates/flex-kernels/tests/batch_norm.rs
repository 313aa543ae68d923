//! `batch_norm::train` on flex: the batch statistics against an f64 reference where a one-pass
//! sum of squares would lose them, and the fused ReLU's backward pass against batch norm then
//! burn's ReLU, bit for bit. (Output and gradients against burn's `BatchNorm` are the models
//! crate's `tests/layers.rs`.)
mod common;

use burn::prelude::*;
use burn::tensor::activation::relu;
use cnnzoo_flex_kernels::batch_norm;
use common::{normal, seeded_flex};

const EPSILON: f64 = 1e-5;

/// Per-channel mean and biased variance of an `[N, C, H, W]` batch, in f64.
fn reference_statistics(values: &[f32], [n, c, h, w]: [usize; 4]) -> Vec<(f64, f64)> {
    (0..c)
        .map(|channel| {
            let of_channel: Vec<f64> = (0..n)
                .flat_map(|image| {
                    let start = (image * c + channel) * h * w;
                    values[start..start + h * w].iter().map(|&v| f64::from(v))
                })
                .collect();
            let count = of_channel.len() as f64;
            let mean = of_channel.iter().sum::<f64>() / count;
            let variance = of_channel.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / count;
            (mean, variance)
        })
        .collect()
}

/// Values near 1000 that vary by about 0.01 within an image and from image to image: the sum
/// of squares is 1e8 times the variance, and the images' own means differ, so both the
/// centring and the combination of the planes' statistics count.
#[test]
fn statistics_hold_an_offset_mean_and_image_to_image_shifts() {
    let device = seeded_flex(31, false);
    let shape = [5, 3, 7, 9];
    let c = shape[1];
    let noise = normal(shape, &device)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let plane = shape[2] * shape[3];
    let values: Vec<f32> = noise
        .iter()
        .enumerate()
        .map(|(i, &z)| {
            let (image, channel) = (i / (c * plane), i / plane % c);
            1000.0 + 0.01 * z + 0.013 * image as f32 - 0.007 * channel as f32
        })
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(values.clone(), shape), &device);
    let (gamma, beta) = (Tensor::ones([c], &device), Tensor::zeros([c], &device));

    let (_, mean, variance) =
        batch_norm::train(x, gamma, beta, EPSILON, false).expect("flex takes the fused kernel");

    let mean = mean.into_data().try_to_vec::<f32>().unwrap();
    let variance = variance.into_data().try_to_vec::<f32>().unwrap();
    for (channel, (expected_mean, expected_variance)) in
        reference_statistics(&values, shape).into_iter().enumerate()
    {
        let mean_error = (f64::from(mean[channel]) - expected_mean).abs();
        assert!(
            mean_error < 1e-4,
            "channel {channel}: mean {} against {expected_mean}",
            mean[channel]
        );
        let relative = (f64::from(variance[channel]) - expected_variance).abs() / expected_variance;
        assert!(
            relative < 1e-3,
            "channel {channel}: variance {} against {expected_variance}",
            variance[channel]
        );
        // The spread between images is part of the channel's variance.
        assert!(expected_variance > 1.5e-4, "{expected_variance}");
    }
}

/// The fused ReLU's backward pass masks the output gradient in the pass of the parameter sums;
/// it adds the same values in the same order as batch norm followed by burn's ReLU, whose mask
/// comes from the same f32 expression, so every gradient is equal bit for bit.
#[test]
fn fused_relu_gradients_equal_batch_norm_then_burns_relu() {
    let device = seeded_flex(32, true);
    let shape = [4, 6, 9, 7];
    let x = normal(shape, &device).add_scalar(0.3).require_grad();
    let upstream = normal(shape, &device);
    let gamma = normal([6], &device).add_scalar(1.0).require_grad();
    let beta = normal([6], &device).mul_scalar(0.5).require_grad();

    let gradients = |fused: bool| {
        let (y, _, _) = batch_norm::train(x.clone(), gamma.clone(), beta.clone(), EPSILON, fused)
            .expect("flex takes the fused kernel");
        let y = if fused { y } else { relu(y) };
        let clipped = y.clone().equal_elem(0.0).int().sum().into_scalar::<i64>();
        let grads = (y * upstream.clone()).sum().backward();
        let values = |tensor: Tensor<1>| tensor.into_data().try_to_vec::<f32>().unwrap();
        (
            clipped,
            values(x.grad(&grads).unwrap().flatten(0, 3)),
            values(gamma.grad(&grads).unwrap()),
            values(beta.grad(&grads).unwrap()),
        )
    };
    let (clipped, dx, dgamma, dbeta) = gradients(true);
    let (clipped_ref, dx_ref, dgamma_ref, dbeta_ref) = gradients(false);
    let total = shape.iter().product::<usize>() as i64;
    assert_eq!(clipped, clipped_ref);
    // The draw depends on what the other tests draw meanwhile (the seed is the process's), so
    // only a loose share: enough clipped, and enough passed, for the mask to matter.
    assert!(
        clipped > total / 10 && clipped < 9 * total / 10,
        "{clipped} of {total} clipped"
    );
    assert_eq!(dx, dx_ref, "x's gradient");
    assert_eq!(dgamma, dgamma_ref, "gamma's gradient");
    assert_eq!(dbeta, dbeta_ref, "beta's gradient");
}
