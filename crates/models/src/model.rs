//! One type for "any model of the zoo", so that training, evaluation and checkpoints are written
//! once for every architecture.
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::densenet::{DenseNet, DenseNetConfig};
use crate::googlenet::{GoogleNet, GoogleNetConfig};
use crate::resnet::{ResNet, ResNetConfig};

/// The hyper-parameters of a model, tagged by family; serialised into every checkpoint so that a
/// checkpoint alone rebuilds its model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelConfig {
    GoogleNet(GoogleNetConfig),
    ResNet(ResNetConfig),
    DenseNet(DenseNetConfig),
}

impl ModelConfig {
    pub fn init(&self, device: &Device) -> Model {
        match self {
            Self::GoogleNet(config) => Model::GoogleNet(config.init(device)),
            Self::ResNet(config) => Model::ResNet(config.init(device)),
            Self::DenseNet(config) => Model::DenseNet(config.init(device)),
        }
    }

    /// The parameter path, relative to the family's network, of a tensor of the reference
    /// PyTorch `state_dict`; `None` for keys with no counterpart (`num_batches_tracked`) or not of
    /// this model. Each family file documents its mapping.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        match self {
            Self::GoogleNet(_) => crate::googlenet::torch_key(key),
            Self::ResNet(config) => crate::resnet::torch_key(config.block, key),
            Self::DenseNet(_) => crate::densenet::torch_key(key),
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Self::GoogleNet(config) => config.num_classes,
            Self::ResNet(config) => config.num_classes,
            Self::DenseNet(config) => config.num_classes,
        }
    }
}

#[derive(Module, Debug)]
pub enum Model {
    GoogleNet(GoogleNet),
    ResNet(ResNet),
    DenseNet(DenseNet),
}

impl Model {
    /// Images [N, 3, H, W] to logits [N, num_classes].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Self::GoogleNet(model) => model.forward(images),
            Self::ResNet(model) => model.forward(images),
            Self::DenseNet(model) => model.forward(images),
        }
    }

    /// Trainable weights and biases, as PyTorch counts `parameters()`.
    pub fn num_trainable_params(&self) -> usize {
        crate::layers::count_trainable_params(self)
    }
}
