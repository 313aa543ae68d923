//! The CNN architectures of cnnzoo, each written once for every burn backend.
//!
//! - [`registry`]: the zoo, every named variant with its metadata ([`MODELS`], [`lookup`]),
//!   gathered from the lists the family files declare;
//! - [`model`]: [`ModelConfig`] and [`Model`], one type for any family, as checkpoints store it;
//! - the families, one file each with its blocks, its config, its variants and the mapping of
//!   PyTorch's tensor names: [`googlenet`] (the CIFAR GoogleNet and torchvision's Inception v1),
//!   [`resnet`] (the CIFAR ResNet-20s and torchvision's ResNets and ResNeXt), [`densenet`] (CIFAR
//!   and torchvision), [`inception_v3`], [`vgg`], [`alexnet`], [`mobilenet`] (v2 and v3),
//!   [`mnasnet`], [`efficientnet`];
//! - [`layers`]: the building blocks every family uses, on cnnzoo's CPU kernels
//!   ([`cnnzoo_flex_kernels`]) where the backend is the CPU;
//! - [`import`]: PyTorch checkpoints (`.pt`, `.ckpt`, `.safetensors`) loaded into a model.
pub mod alexnet;
pub mod densenet;
pub mod efficientnet;
pub mod googlenet;
pub mod import;
pub mod inception_v3;
pub mod layers;
pub mod mnasnet;
pub mod mobilenet;
pub mod model;
pub mod registry;
pub mod resnet;
pub mod vgg;

pub use layers::Act;
pub use model::{Family, Model, ModelConfig};
pub use registry::{ImageStatistics, MODELS, ModelEntry, ReferenceTop1, RegistryError, lookup};
