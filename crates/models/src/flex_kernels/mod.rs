//! Kernels for burn's `flex` CPU backend where burn's own take several times PyTorch's time on
//! the layers the CIFAR models spend their time in: the convolution (forward and both gradients),
//! batch norm, and max pooling. Each is a burn backend extension with a hand-written autodiff
//! backward, reached through a function that takes burn's path on every other backend. The
//! figures are in `docs/performance.md`.
use burn::backend::DispatchDevice;
use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::TensorData;

pub mod batch_norm;
pub mod conv;
pub mod pool;

/// Whether tensors on `device` are flex tensors, with or without autodiff.
pub(crate) fn runs_on_flex(device: &Device) -> bool {
    fn is_flex(device: &DispatchDevice) -> bool {
        match device {
            DispatchDevice::Flex(_) => true,
            DispatchDevice::Autodiff(device) => is_flex(device),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }
    is_flex(device.as_dispatch())
}

/// The values of a contiguous f32 tensor.
fn f32s(tensor: &FlexTensor) -> &[f32] {
    tensor
        .as_slice::<f32>()
        .expect("the kernels check for f32 and make their inputs contiguous before reading them")
}

fn flex_tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}
