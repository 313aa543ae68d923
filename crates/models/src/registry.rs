//! The single table from model names to constructors and metadata; the CLI looks models up here
//! and never matches on names itself.
use std::fmt;

use serde_json::{Map, Value};

use crate::alexnet::AlexNetConfig;
use crate::densenet::DenseNetConfig;
use crate::densenet_imagenet::DenseNetImageNetConfig;
use crate::efficientnet::{EFFICIENTNET_SCALING, EfficientNetConfig};
use crate::googlenet::GoogleNetConfig;
use crate::inception_v1::InceptionV1Config;
use crate::inception_v3::InceptionV3Config;
use crate::mnasnet::MnasNetConfig;
use crate::mobilenet::{MobileNetV2Config, MobileNetV3Config};
use crate::model::ModelConfig;
use crate::resnet::{BlockKind, ResNetConfig};
use crate::resnet_imagenet::ResNetImageNetConfig;
use crate::vgg::VggConfig;

/// A named model: its family, the input size it is meant for and its default hyper-parameters.
#[derive(Clone, Copy)]
pub struct ModelEntry {
    pub name: &'static str,
    pub family: &'static str,
    pub description: &'static str,
    /// Side of the square input image.
    pub input_size: usize,
    default_config: fn() -> ModelConfig,
}

impl fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelEntry")
            .field("name", &self.name)
            .finish()
    }
}

impl ModelEntry {
    /// Trainable parameters of the variant at `num_classes`, counted on a freshly built model.
    pub fn num_params(&self, num_classes: usize) -> usize {
        self.config(num_classes)
            .init(&burn::tensor::Device::flex())
            .num_trainable_params()
    }

    /// The variant's hyper-parameters with `num_classes` set.
    pub fn config(&self, num_classes: usize) -> ModelConfig {
        let mut config = (self.default_config)();
        match &mut config {
            ModelConfig::GoogleNet(c) => c.num_classes = num_classes,
            ModelConfig::ResNet(c) => c.num_classes = num_classes,
            ModelConfig::DenseNet(c) => c.num_classes = num_classes,
            ModelConfig::ResNetImageNet(c) => c.num_classes = num_classes,
            ModelConfig::DenseNetImageNet(c) => c.num_classes = num_classes,
            ModelConfig::InceptionV1(c) => c.num_classes = num_classes,
            ModelConfig::InceptionV3(c) => c.num_classes = num_classes,
            ModelConfig::Vgg(c) => c.num_classes = num_classes,
            ModelConfig::AlexNet(c) => c.num_classes = num_classes,
            ModelConfig::MobileNetV2(c) => c.num_classes = num_classes,
            ModelConfig::MobileNetV3(c) => c.num_classes = num_classes,
            ModelConfig::MnasNet(c) => c.num_classes = num_classes,
            ModelConfig::EfficientNet(c) => c.num_classes = num_classes,
        }
        config
    }

    /// The variant's hyper-parameters with some of them replaced, as a user's config file does.
    /// Unknown keys and values of the wrong type are errors that name the key.
    pub fn config_with(
        &self,
        num_classes: usize,
        overrides: &Map<String, Value>,
    ) -> Result<ModelConfig, RegistryError> {
        let mut value = serde_json::to_value(self.config(num_classes))
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        let fields = value
            .as_object_mut()
            .ok_or_else(|| RegistryError::Internal("model config is not an object".into()))?;
        let known: Vec<String> = fields.keys().filter(|k| *k != "family").cloned().collect();
        for (key, new) in overrides {
            if key == "family" || !fields.contains_key(key) {
                return Err(RegistryError::UnknownParameter {
                    model: self.name.to_string(),
                    key: key.clone(),
                    known: known.clone(),
                });
            }
            let old = fields.insert(key.clone(), new.clone());
            let candidate = serde_json::from_value::<ModelConfig>(Value::Object(fields.clone()));
            if let Err(e) = candidate {
                return Err(RegistryError::BadParameter {
                    model: self.name.to_string(),
                    key: key.clone(),
                    expected: old.map(|v| describe(&v)).unwrap_or_default(),
                    reason: e.to_string(),
                });
            }
        }
        serde_json::from_value(value).map_err(|e| RegistryError::Internal(e.to_string()))
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::String(_) => "a string".into(),
        Value::Number(_) => "a number".into(),
        Value::Array(_) => "a list".into(),
        Value::Bool(_) => "true or false".into(),
        Value::Object(_) => "a table".into(),
        Value::Null => "a value".into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistryError {
    UnknownModel {
        name: String,
        suggestion: Option<&'static str>,
    },
    UnknownParameter {
        model: String,
        key: String,
        known: Vec<String>,
    },
    BadParameter {
        model: String,
        key: String,
        expected: String,
        reason: String,
    },
    Internal(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownModel { name, suggestion } => {
                write!(f, "unknown model '{name}'")?;
                if let Some(s) = suggestion {
                    write!(f, " (did you mean '{s}'?)")?;
                }
                write!(f, "; known models: {}", model_names().join(", "))
            }
            Self::UnknownParameter { model, key, known } => write!(
                f,
                "unknown parameter '{key}' for model '{model}'; its parameters are: {}",
                known.join(", ")
            ),
            Self::BadParameter {
                model,
                key,
                expected,
                reason,
            } => {
                write!(
                    f,
                    "bad value for parameter '{key}' of model '{model}': expected {expected} ({reason})"
                )
            }
            Self::Internal(message) => write!(f, "internal model registry error: {message}"),
        }
    }
}

impl std::error::Error for RegistryError {}

pub static MODELS: &[ModelEntry] = &[
    ModelEntry {
        name: "googlenet",
        family: "googlenet",
        description: "GoogleNet, CIFAR variant (9 inception blocks)",
        input_size: 32,
        default_config: || ModelConfig::GoogleNet(GoogleNetConfig::new()),
    },
    ModelEntry {
        name: "resnet",
        family: "resnet",
        description: "ResNet-20, CIFAR variant",
        input_size: 32,
        default_config: || ModelConfig::ResNet(ResNetConfig::new()),
    },
    ModelEntry {
        name: "resnet_preact",
        family: "resnet",
        description: "Pre-activation ResNet-20, CIFAR variant",
        input_size: 32,
        default_config: || ModelConfig::ResNet(ResNetConfig::new().with_block(BlockKind::PreAct)),
    },
    ModelEntry {
        name: "densenet",
        family: "densenet",
        description: "DenseNet, CIFAR variant (4x6 layers, growth 16)",
        input_size: 32,
        default_config: || ModelConfig::DenseNet(DenseNetConfig::new()),
    },
    ModelEntry {
        name: "resnet18",
        family: "resnet",
        description: "ResNet-18, torchvision (basic blocks)",
        input_size: 224,
        default_config: || ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet18()),
    },
    ModelEntry {
        name: "resnet34",
        family: "resnet",
        description: "ResNet-34, torchvision (basic blocks)",
        input_size: 224,
        default_config: || ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet34()),
    },
    ModelEntry {
        name: "resnet50",
        family: "resnet",
        description: "ResNet-50, torchvision (bottleneck blocks)",
        input_size: 224,
        default_config: || ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet50()),
    },
    ModelEntry {
        name: "resnet101",
        family: "resnet",
        description: "ResNet-101, torchvision (bottleneck blocks)",
        input_size: 224,
        default_config: || ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet101()),
    },
    ModelEntry {
        name: "resnet152",
        family: "resnet",
        description: "ResNet-152, torchvision (bottleneck blocks)",
        input_size: 224,
        default_config: || ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnet152()),
    },
    ModelEntry {
        name: "resnext50_32x4d",
        family: "resnext",
        description: "ResNeXt-50 32x4d, torchvision (grouped bottleneck blocks)",
        input_size: 224,
        default_config: || ModelConfig::ResNetImageNet(ResNetImageNetConfig::resnext50_32x4d()),
    },
    ModelEntry {
        name: "densenet121",
        family: "densenet",
        description: "DenseNet-121, torchvision",
        input_size: 224,
        default_config: || ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet121()),
    },
    ModelEntry {
        name: "densenet161",
        family: "densenet",
        description: "DenseNet-161, torchvision",
        input_size: 224,
        default_config: || ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet161()),
    },
    ModelEntry {
        name: "densenet169",
        family: "densenet",
        description: "DenseNet-169, torchvision",
        input_size: 224,
        default_config: || ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet169()),
    },
    ModelEntry {
        name: "densenet201",
        family: "densenet",
        description: "DenseNet-201, torchvision",
        input_size: 224,
        default_config: || ModelConfig::DenseNetImageNet(DenseNetImageNetConfig::densenet201()),
    },
    ModelEntry {
        name: "inception_v1",
        family: "inception",
        description: "Inception v1 (GoogLeNet), torchvision, without auxiliary heads",
        input_size: 224,
        default_config: || ModelConfig::InceptionV1(InceptionV1Config::new()),
    },
    ModelEntry {
        name: "inception_v3",
        family: "inception",
        description: "Inception v3, torchvision, with its auxiliary head",
        input_size: 299,
        default_config: || ModelConfig::InceptionV3(InceptionV3Config::new()),
    },
    ModelEntry {
        name: "vgg11",
        family: "vgg",
        description: "VGG-11 (configuration A), torchvision",
        input_size: 224,
        default_config: || ModelConfig::Vgg(VggConfig::vgg11()),
    },
    ModelEntry {
        name: "vgg16",
        family: "vgg",
        description: "VGG-16 (configuration D), torchvision",
        input_size: 224,
        default_config: || ModelConfig::Vgg(VggConfig::vgg16()),
    },
    ModelEntry {
        name: "vgg16_bn",
        family: "vgg",
        description: "VGG-16 with batch norm, torchvision",
        input_size: 224,
        default_config: || ModelConfig::Vgg(VggConfig::vgg16_bn()),
    },
    ModelEntry {
        name: "alexnet",
        family: "alexnet",
        description: "AlexNet, torchvision",
        input_size: 224,
        default_config: || ModelConfig::AlexNet(AlexNetConfig::new()),
    },
    ModelEntry {
        name: "mobilenet_v2",
        family: "mobilenet",
        description: "MobileNet v2, torchvision",
        input_size: 224,
        default_config: || ModelConfig::MobileNetV2(MobileNetV2Config::new()),
    },
    ModelEntry {
        name: "mobilenet_v3_large",
        family: "mobilenet",
        description: "MobileNet v3 large, torchvision",
        input_size: 224,
        default_config: || ModelConfig::MobileNetV3(MobileNetV3Config::new()),
    },
    ModelEntry {
        name: "mnasnet1_0",
        family: "mnasnet",
        description: "MnasNet-B1 1.0, torchvision",
        input_size: 224,
        default_config: || ModelConfig::MnasNet(MnasNetConfig::mnasnet1_0()),
    },
    ModelEntry {
        name: "efficientnet_b0",
        family: "efficientnet",
        description: "EfficientNet-B0, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[0].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(0)),
    },
    ModelEntry {
        name: "efficientnet_b1",
        family: "efficientnet",
        description: "EfficientNet-B1, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[1].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(1)),
    },
    ModelEntry {
        name: "efficientnet_b2",
        family: "efficientnet",
        description: "EfficientNet-B2, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[2].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(2)),
    },
    ModelEntry {
        name: "efficientnet_b3",
        family: "efficientnet",
        description: "EfficientNet-B3, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[3].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(3)),
    },
    ModelEntry {
        name: "efficientnet_b4",
        family: "efficientnet",
        description: "EfficientNet-B4, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[4].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(4)),
    },
    ModelEntry {
        name: "efficientnet_b5",
        family: "efficientnet",
        description: "EfficientNet-B5, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[5].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(5)),
    },
    ModelEntry {
        name: "efficientnet_b6",
        family: "efficientnet",
        description: "EfficientNet-B6, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[6].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(6)),
    },
    ModelEntry {
        name: "efficientnet_b7",
        family: "efficientnet",
        description: "EfficientNet-B7, torchvision (compound scaling of B0)",
        input_size: EFFICIENTNET_SCALING[7].resolution,
        default_config: || ModelConfig::EfficientNet(EfficientNetConfig::b(7)),
    },
];

pub fn model_names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// Finds a model by name; an unknown name gets the closest known one as a suggestion.
pub fn lookup(name: &str) -> Result<&'static ModelEntry, RegistryError> {
    MODELS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| RegistryError::UnknownModel {
            name: name.to_string(),
            suggestion: closest_name(name),
        })
}

fn closest_name(name: &str) -> Option<&'static str> {
    let name = name.to_lowercase();
    MODELS
        .iter()
        .map(|m| (edit_distance(&name, m.name), m.name))
        .filter(|(d, candidate)| *d <= candidate.len().max(name.len()) / 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// Levenshtein distance, for "did you mean" suggestions.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_insertions_deletions_substitutions() {
        assert_eq!(edit_distance("resnet", "resnet"), 0);
        assert_eq!(edit_distance("resnt", "resnet"), 1);
        assert_eq!(edit_distance("densnet", "densenet"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
