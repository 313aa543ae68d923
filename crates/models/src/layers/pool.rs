//! Pooling: max pooling on cnnzoo's CPU kernels, and global average pooling.
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2dConfig;
use burn::prelude::*;
use burn::tensor::ops::MaxPoolOptions;

use super::conv::padding_pairs;

/// Max pooling with burn's `MaxPool2d` fields (so records are burn's), whose forward pass runs
/// through [`cnnzoo_flex_kernels::pool`]: on the CPU backend, without burn's index tensor.
#[derive(Module, Debug)]
pub struct MaxPooling {
    pub stride: [usize; 2],
    pub kernel_size: [usize; 2],
    #[module(skip)]
    pub padding: PaddingConfig2d,
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

impl From<burn::nn::pool::MaxPool2d> for MaxPooling {
    fn from(pool: burn::nn::pool::MaxPool2d) -> Self {
        Self {
            stride: pool.stride,
            kernel_size: pool.kernel_size,
            padding: pool.padding,
            dilation: pool.dilation,
            ceil_mode: pool.ceil_mode,
        }
    }
}

impl MaxPooling {
    /// A square `kernel` with `stride` and symmetric `padding`, as `nn.MaxPool2d(kernel, stride,
    /// padding)`.
    pub fn new(kernel: usize, stride: usize, padding: usize) -> Self {
        MaxPool2dConfig::new([kernel, kernel])
            .with_strides([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(
                padding, padding, padding, padding,
            ))
            .init()
            .into()
    }

    /// `[N, C, H, W] -> [N, C, H', W']`, padded as burn's `MaxPool2d::forward` pads.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let padding = padding_pairs(&self.padding, self.kernel_size, self.stride, &x);
        let options = MaxPoolOptions::new(self.kernel_size)
            .with_stride(self.stride)
            .with_padding_pairs(padding)
            .with_dilation(self.dilation)
            .with_ceil_mode(self.ceil_mode);
        cnnzoo_flex_kernels::pool::max_pool2d(x, options)
    }
}

/// The mean over the spatial dimensions, keeping them as 1x1: `AdaptiveAvgPool2d(1)`.
pub fn spatial_mean(x: Tensor<4>) -> Tensor<4> {
    let [n, c, _, _] = x.dims();
    x.flatten::<3>(2, 3).mean_dim(2).reshape([n, c, 1, 1])
}

/// Global average pooling and flatten, `torch.flatten(adaptive_avg_pool2d(x, 1), 1)`:
/// [N, C, H, W] -> [N, C].
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [n, c, _, _] = x.dims();
    spatial_mean(x).reshape([n, c])
}
