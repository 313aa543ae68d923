//! The CNN architectures of cnnzoo, each written once for every burn backend.
pub mod activation;
pub mod alexnet;
pub mod densenet;
pub mod densenet_imagenet;
pub mod efficientnet;
pub mod flex_kernels;
pub mod googlenet;
pub mod import;
pub mod inception_v1;
pub mod inception_v3;
pub mod layers;
pub mod mnasnet;
pub mod mobilenet;
pub mod model;
pub mod ops;
pub mod registry;
pub mod resnet;
pub mod resnet_imagenet;
pub mod vgg;

pub use activation::ActivationKind;
pub use model::{Model, ModelConfig};
pub use registry::{MODELS, ModelEntry, RegistryError, lookup};
