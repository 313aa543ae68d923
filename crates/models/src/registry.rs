//! The single table from model names to constructors and metadata; the CLI looks models up here
//! and never matches on names itself.
use std::fmt;

use serde_json::{Map, Value};

use crate::densenet::DenseNetConfig;
use crate::googlenet::GoogleNetConfig;
use crate::model::ModelConfig;
use crate::resnet::{BlockKind, ResNetConfig};

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
