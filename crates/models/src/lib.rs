//! The CNN architectures of cnnzoo, each written once for every burn backend.
pub mod activation;
pub mod densenet;
pub mod googlenet;
pub mod layers;
pub mod model;
pub mod registry;
pub mod resnet;

pub use activation::ActivationKind;
pub use model::{Model, ModelConfig};
pub use registry::{MODELS, ModelEntry, RegistryError, lookup};
