//! The building blocks every family is made of, written once: initialised convolutions and
//! linear layers ([`conv`]), batch norm ([`norm`]), pooling ([`pool`]), activations
//! ([`activation`]), the conv-norm-activation unit, squeeze-excitation and stochastic depth
//! ([`units`]), the inverted residual block ([`inverted_residual`]), the walk over a module's
//! parameters ([`params`]), and the mapping of PyTorch's tensor names onto theirs
//! ([`torch_names`]). Convolution, batch norm and max pooling run cnnzoo's CPU kernels
//! ([`cnnzoo_flex_kernels`]) on the CPU backend and burn's elsewhere.
use burn::prelude::*;

pub mod activation;
pub mod conv;
pub mod inverted_residual;
pub mod norm;
pub mod params;
pub mod pool;
pub mod torch_names;
pub mod units;

pub use activation::Act;
pub use conv::{ConvSpec, Convolution, FanMode, Init, linear};
pub use inverted_residual::{
    InvertedResidual, InvertedResidualSpec, forward_stages, make_divisible,
};
pub use norm::{BatchNorm2d, Norm};
pub use params::{ParamPath, ParamVisitor, count_trainable_params, visit_params};
pub use pool::{MaxPooling, global_avg_pool, spatial_mean};
pub use units::{ConvNormAct, SqueezeExcitation, StochasticDepth};

/// torchvision's `_transform_input`: channel c becomes x * std_c / 0.5 + (mean_c - 0.5) / 0.5,
/// turning an ImageNet-normalised image into one normalised to [-1, 1].
pub fn imagenet_to_unit_range(x: Tensor<4>) -> Tensor<4> {
    const MEAN: [f64; 3] = [0.485, 0.456, 0.406];
    const STD: [f64; 3] = [0.229, 0.224, 0.225];
    let [n, _, h, w] = x.dims();
    let channels = (0..3)
        .map(|c| {
            x.clone()
                .slice([0..n, c..c + 1, 0..h, 0..w])
                .mul_scalar(STD[c] / 0.5)
                .add_scalar((MEAN[c] - 0.5) / 0.5)
        })
        .collect();
    Tensor::cat(channels, 1)
}
