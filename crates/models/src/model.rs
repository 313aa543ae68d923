//! One type for "any model of the zoo", so that training, evaluation and checkpoints are written
//! once for every architecture. The families are listed once, in the `families!` invocation
//! below: a family's config provides `init`, `torch_key` and a `num_classes` field, its network a
//! `forward` from images to logits.
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::alexnet::{AlexNet, AlexNetConfig};
use crate::densenet::{
    DenseNetCifar, DenseNetCifarConfig, DenseNetImageNet, DenseNetImageNetConfig,
};
use crate::efficientnet::{EfficientNet, EfficientNetConfig};
use crate::googlenet::{GoogleNetCifar, GoogleNetCifarConfig, InceptionV1, InceptionV1Config};
use crate::inception_v3::{InceptionV3, InceptionV3Config};
use crate::mnasnet::{MnasNet, MnasNetConfig};
use crate::mobilenet::{MobileNetV2, MobileNetV2Config, MobileNetV3, MobileNetV3Config};
use crate::resnet::{ResNetCifar, ResNetCifarConfig, ResNetImageNet, ResNetImageNetConfig};
use crate::vgg::{Vgg, VggConfig};

/// What every family's config answers ([`ModelConfig::family`]); `families!` implements it for
/// each from the config's own `init`, `torch_key` and `num_classes`.
pub trait Family {
    fn build(&self, device: &Device) -> Model;
    fn torch_key(&self, key: &str) -> Option<String>;
    fn num_classes(&self) -> usize;
    fn set_num_classes(&mut self, num_classes: usize);
}

/// Declares [`ModelConfig`] and [`Model`] with one variant per family, and [`Family`] for each
/// family's config. The variant names are part of every checkpoint's tensor paths
/// (`model.ResNet.…`) and the tags of every checkpoint's JSON (`"family": "resnet"`): they never
/// change.
macro_rules! families {
    ($($variant:ident($config:ty => $network:ty) = $tag:literal,)*) => {
        /// The hyper-parameters of a model, tagged by family; serialised into every checkpoint so
        /// that a checkpoint alone rebuilds its model.
        #[derive(Clone, Debug, Serialize, Deserialize)]
        #[serde(tag = "family")]
        pub enum ModelConfig {
            $(#[serde(rename = $tag)] $variant($config),)*
        }

        // One `Model` lives per run and is rarely moved, so the size of its largest variant
        // (Inception v3 holds a hundred sub-modules inline) costs nothing; burn's `Module` has no
        // `Box` to shrink it.
        #[allow(clippy::large_enum_variant)]
        #[derive(Module, Debug)]
        pub enum Model {
            $($variant($network),)*
        }

        $(impl Family for $config {
            fn build(&self, device: &Device) -> Model {
                Model::$variant(self.init(device))
            }
            fn torch_key(&self, key: &str) -> Option<String> {
                <$config>::torch_key(self, key)
            }
            fn num_classes(&self) -> usize {
                self.num_classes
            }
            fn set_num_classes(&mut self, num_classes: usize) {
                self.num_classes = num_classes;
            }
        })*

        impl ModelConfig {
            /// The family's config, to ask what every family answers.
            pub fn family(&self) -> &dyn Family {
                match self {
                    $(Self::$variant(config) => config,)*
                }
            }

            pub(crate) fn family_mut(&mut self) -> &mut dyn Family {
                match self {
                    $(Self::$variant(config) => config,)*
                }
            }
        }

        impl Model {
            /// Images [N, 3, H, W] to logits [N, num_classes].
            pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
                match self {
                    $(Self::$variant(model) => model.forward(images),)*
                }
            }
        }
    };
}

families! {
    GoogleNet(GoogleNetCifarConfig => GoogleNetCifar) = "googlenet",
    ResNet(ResNetCifarConfig => ResNetCifar) = "resnet",
    DenseNet(DenseNetCifarConfig => DenseNetCifar) = "densenet",
    ResNetImageNet(ResNetImageNetConfig => ResNetImageNet) = "resnet_imagenet",
    DenseNetImageNet(DenseNetImageNetConfig => DenseNetImageNet) = "densenet_imagenet",
    InceptionV1(InceptionV1Config => InceptionV1) = "inception_v1",
    InceptionV3(InceptionV3Config => InceptionV3) = "inception_v3",
    Vgg(VggConfig => Vgg) = "vgg",
    AlexNet(AlexNetConfig => AlexNet) = "alexnet",
    MobileNetV2(MobileNetV2Config => MobileNetV2) = "mobilenet_v2",
    MobileNetV3(MobileNetV3Config => MobileNetV3) = "mobilenet_v3",
    MnasNet(MnasNetConfig => MnasNet) = "mnasnet",
    EfficientNet(EfficientNetConfig => EfficientNet) = "efficientnet",
}

impl ModelConfig {
    pub fn init(&self, device: &Device) -> Model {
        self.family().build(device)
    }

    /// The parameter path, relative to the family's network, of a tensor of the reference
    /// PyTorch `state_dict`; `None` for keys with no counterpart (`num_batches_tracked`) or not
    /// of this model. Each family file documents its mapping.
    pub fn torch_key(&self, key: &str) -> Option<String> {
        self.family().torch_key(key)
    }

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
}

impl Model {
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
