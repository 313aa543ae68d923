//! One type for "any model of the zoo", so that training, evaluation and checkpoints are written
//! once for every architecture.
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::alexnet::{AlexNet, AlexNetConfig};
use crate::densenet::{DenseNet, DenseNetConfig};
use crate::densenet_imagenet::{DenseNetImageNet, DenseNetImageNetConfig};
use crate::efficientnet::{EfficientNet, EfficientNetConfig};
use crate::googlenet::{GoogleNet, GoogleNetConfig};
use crate::inception_v1::{InceptionV1, InceptionV1Config};
use crate::inception_v3::{InceptionV3, InceptionV3Config};
use crate::mnasnet::{MnasNet, MnasNetConfig};
use crate::mobilenet::{MobileNetV2, MobileNetV2Config, MobileNetV3, MobileNetV3Config};
use crate::resnet::{ResNet, ResNetConfig};
use crate::resnet_imagenet::{ResNetImageNet, ResNetImageNetConfig};
use crate::vgg::{Vgg, VggConfig};

/// The hyper-parameters of a model, tagged by family; serialised into every checkpoint so that a
/// checkpoint alone rebuilds its model.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "family", rename_all = "snake_case")]
pub enum ModelConfig {
    #[serde(rename = "googlenet")]
    GoogleNet(GoogleNetConfig),
    #[serde(rename = "resnet")]
    ResNet(ResNetConfig),
    #[serde(rename = "densenet")]
    DenseNet(DenseNetConfig),
    #[serde(rename = "resnet_imagenet")]
    ResNetImageNet(ResNetImageNetConfig),
    #[serde(rename = "densenet_imagenet")]
    DenseNetImageNet(DenseNetImageNetConfig),
    #[serde(rename = "inception_v1")]
    InceptionV1(InceptionV1Config),
    #[serde(rename = "inception_v3")]
    InceptionV3(InceptionV3Config),
    #[serde(rename = "vgg")]
    Vgg(VggConfig),
    #[serde(rename = "alexnet")]
    AlexNet(AlexNetConfig),
    #[serde(rename = "mobilenet_v2")]
    MobileNetV2(MobileNetV2Config),
    #[serde(rename = "mobilenet_v3")]
    MobileNetV3(MobileNetV3Config),
    #[serde(rename = "mnasnet")]
    MnasNet(MnasNetConfig),
    #[serde(rename = "efficientnet")]
    EfficientNet(EfficientNetConfig),
}

impl ModelConfig {
    /// The smallest square input side the network takes where that is more than CIFAR's 32
    /// pixels: Inception v3's ImageNet stem (a stride-2 convolution and two stride-2 pools
    /// before its 8x8 grid blocks) needs 75, as torchvision documents. Every other network here
    /// runs on a 32x32 image with torchvision's own stem.
    pub fn min_input_side(&self) -> Option<usize> {
        match self {
            Self::InceptionV3(config) if !config.cifar_stem => Some(75),
            _ => None,
        }
    }

    pub fn init(&self, device: &Device) -> Model {
        match self {
            Self::GoogleNet(config) => Model::GoogleNet(config.init(device)),
            Self::ResNet(config) => Model::ResNet(config.init(device)),
            Self::DenseNet(config) => Model::DenseNet(config.init(device)),
            Self::ResNetImageNet(config) => Model::ResNetImageNet(config.init(device)),
            Self::DenseNetImageNet(config) => Model::DenseNetImageNet(config.init(device)),
            Self::InceptionV1(config) => Model::InceptionV1(config.init(device)),
            Self::InceptionV3(config) => Model::InceptionV3(config.init(device)),
            Self::Vgg(config) => Model::Vgg(config.init(device)),
            Self::AlexNet(config) => Model::AlexNet(config.init(device)),
            Self::MobileNetV2(config) => Model::MobileNetV2(config.init(device)),
            Self::MobileNetV3(config) => Model::MobileNetV3(config.init(device)),
            Self::MnasNet(config) => Model::MnasNet(config.init(device)),
            Self::EfficientNet(config) => Model::EfficientNet(config.init(device)),
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
            Self::ResNetImageNet(_) => crate::resnet_imagenet::torch_key(key),
            Self::DenseNetImageNet(_) => crate::densenet_imagenet::torch_key(key),
            Self::InceptionV1(_) => crate::inception_v1::torch_key(key),
            Self::InceptionV3(_) => crate::inception_v3::torch_key(key),
            Self::Vgg(config) => crate::vgg::torch_key(config, key),
            Self::AlexNet(_) => crate::alexnet::torch_key(key),
            Self::MobileNetV2(config) => crate::mobilenet::torch_key_v2(config, key),
            Self::MobileNetV3(config) => crate::mobilenet::torch_key_v3(config, key),
            Self::MnasNet(_) => crate::mnasnet::torch_key(key),
            Self::EfficientNet(config) => crate::efficientnet::torch_key(config, key),
        }
    }

    pub fn num_classes(&self) -> usize {
        match self {
            Self::GoogleNet(config) => config.num_classes,
            Self::ResNet(config) => config.num_classes,
            Self::DenseNet(config) => config.num_classes,
            Self::ResNetImageNet(config) => config.num_classes,
            Self::DenseNetImageNet(config) => config.num_classes,
            Self::InceptionV1(config) => config.num_classes,
            Self::InceptionV3(config) => config.num_classes,
            Self::Vgg(config) => config.num_classes,
            Self::AlexNet(config) => config.num_classes,
            Self::MobileNetV2(config) => config.num_classes,
            Self::MobileNetV3(config) => config.num_classes,
            Self::MnasNet(config) => config.num_classes,
            Self::EfficientNet(config) => config.num_classes,
        }
    }
}

// One `Model` lives per run and is rarely moved, so the size of its largest variant (Inception v3
// holds a hundred sub-modules inline) costs nothing; burn's `Module` has no `Box` to shrink it.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Model {
    GoogleNet(GoogleNet),
    ResNet(ResNet),
    DenseNet(DenseNet),
    ResNetImageNet(ResNetImageNet),
    DenseNetImageNet(DenseNetImageNet),
    InceptionV1(InceptionV1),
    InceptionV3(InceptionV3),
    Vgg(Vgg),
    AlexNet(AlexNet),
    MobileNetV2(MobileNetV2),
    MobileNetV3(MobileNetV3),
    MnasNet(MnasNet),
    EfficientNet(EfficientNet),
}

impl Model {
    /// Images [N, 3, H, W] to logits [N, num_classes].
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Self::GoogleNet(model) => model.forward(images),
            Self::ResNet(model) => model.forward(images),
            Self::DenseNet(model) => model.forward(images),
            Self::ResNetImageNet(model) => model.forward(images),
            Self::DenseNetImageNet(model) => model.forward(images),
            Self::InceptionV1(model) => model.forward(images),
            Self::InceptionV3(model) => model.forward(images),
            Self::Vgg(model) => model.forward(images),
            Self::AlexNet(model) => model.forward(images),
            Self::MobileNetV2(model) => model.forward(images),
            Self::MobileNetV3(model) => model.forward(images),
            Self::MnasNet(model) => model.forward(images),
            Self::EfficientNet(model) => model.forward(images),
        }
    }

    /// The logits and, for a network with an auxiliary classifier (inception_v3 built with
    /// `aux_logits`), the auxiliary logits, for a training loss that uses them (torchvision's
    /// recipe adds 0.4 x the auxiliary loss); `None` for every other network.
    pub fn forward_with_aux(&self, images: Tensor<4>) -> (Tensor<2>, Option<Tensor<2>>) {
        match self {
            Self::InceptionV3(model) => model.forward_with_aux(images),
            other => (other.forward(images), None),
        }
    }

    /// Trainable weights and biases, as PyTorch counts `parameters()`.
    pub fn num_trainable_params(&self) -> usize {
        crate::layers::count_trainable_params(self)
    }
}
