//! What the kernel tests share: seeded devices and random inputs.
use burn::prelude::*;
use burn::tensor::Distribution;

/// The flex device (under autodiff when `autodiff`), seeded so that every run draws the same
/// tensors.
pub fn seeded_flex(seed: u64, autodiff: bool) -> Device {
    let device = if autodiff {
        Device::flex().autodiff()
    } else {
        Device::flex()
    };
    device.seed(seed);
    device
}

/// A tensor of standard normal values.
pub fn normal<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}
