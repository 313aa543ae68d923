//! The zoo: every named variant, gathered from the lists its family file declares. The CLI looks
//! models up here and never matches on names itself; adding a variant is one entry in its
//! family's list, adding a family one file and one line in `VARIANT_LISTS` (and one in
//! `model.rs`'s `families!`).
use std::fmt;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use crate::model::ModelConfig;
use crate::{alexnet, densenet, efficientnet, googlenet, inception_v3, mnasnet, mobilenet};
use crate::{resnet, vgg};

/// Every family's variants, in the order `cnnzoo models` lists them: the CIFAR networks of the
/// reference first, then torchvision's.
const VARIANT_LISTS: &[&[ModelEntry]] = &[
    googlenet::CIFAR_VARIANTS,
    resnet::CIFAR_VARIANTS,
    densenet::CIFAR_VARIANTS,
    resnet::IMAGENET_VARIANTS,
    densenet::IMAGENET_VARIANTS,
    googlenet::IMAGENET_VARIANTS,
    inception_v3::VARIANTS,
    vgg::VARIANTS,
    alexnet::VARIANTS,
    mobilenet::VARIANTS,
    mnasnet::VARIANTS,
    efficientnet::VARIANTS,
];

/// A family's list of variants, one line each:
/// `"name", "family", input side, "description" => config`, where `config` builds the variant's
/// [`ModelConfig`], then optionally `, reference(val, test)` (the reference's top-1) and
/// `, recipe("file.toml")` (its shipped recipe in `configs/`), and a `;`.
macro_rules! variants {
    ($statistics:ident; $($name:literal, $family:literal, $side:expr, $description:literal => $config:expr
        $(, reference($val:expr, $test:expr))? $(, recipe($recipe:literal))?;)*) => {
        &[$(crate::registry::ModelEntry::new($name, $family, $description, $side, || $config)
            .with_statistics(crate::registry::ImageStatistics::$statistics)
            $(.with_reference($val, $test))?
            $(.with_recipe(include_str!(concat!("../../../configs/", $recipe))))?),*]
    };
}
pub(crate) use variants;

/// All variants of the zoo.
pub static MODELS: LazyLock<Vec<ModelEntry>> = LazyLock::new(|| {
    VARIANT_LISTS
        .iter()
        .flat_map(|list| list.iter().copied())
        .collect()
});

/// Validation and test top-1 (%) that the reference implementation reports for a model trained
/// on the full CIFAR-10 with its recipe (180 epochs): the UvA deep learning tutorial 5
/// ("Inception, ResNet and DenseNet", Phillip Lippe), whose published checkpoints `cnnzoo import`
/// reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReferenceTop1 {
    pub val: f64,
    pub test: f64,
}

/// The images a variant is made for, whose per-channel mean and standard deviation its weights
/// expect inputs normalised with: the reference's CIFAR networks were trained on CIFAR-10,
/// torchvision's published weights on ImageNet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageStatistics {
    Cifar10,
    ImageNet,
}

impl ImageStatistics {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cifar10 => "CIFAR-10",
            Self::ImageNet => "ImageNet",
        }
    }
}

/// A named model: its family, the input size it is meant for, its default hyper-parameters, and
/// where known the reference's accuracy and the recipe that reaches it.
#[derive(Clone, Copy)]
pub struct ModelEntry {
    pub name: &'static str,
    pub family: &'static str,
    pub description: &'static str,
    /// Side of the square input image.
    pub input_size: usize,
    /// The reference's CIFAR-10 accuracy, for the reports.
    pub reference: Option<ReferenceTop1>,
    /// The shipped training recipe (a `configs/` file, as TOML text).
    pub recipe: Option<&'static str>,
    /// The normalisation its weights expect.
    pub statistics: ImageStatistics,
    default_config: fn() -> ModelConfig,
}

impl ModelEntry {
    pub const fn new(
        name: &'static str,
        family: &'static str,
        description: &'static str,
        input_size: usize,
        default_config: fn() -> ModelConfig,
    ) -> Self {
        Self {
            name,
            family,
            description,
            input_size,
            reference: None,
            recipe: None,
            statistics: ImageStatistics::ImageNet,
            default_config,
        }
    }

    pub const fn with_statistics(self, statistics: ImageStatistics) -> Self {
        Self { statistics, ..self }
    }

    pub const fn with_reference(self, val: f64, test: f64) -> Self {
        Self {
            reference: Some(ReferenceTop1 { val, test }),
            ..self
        }
    }

    pub const fn with_recipe(self, toml: &'static str) -> Self {
        Self {
            recipe: Some(toml),
            ..self
        }
    }

    /// Trainable parameters of the variant at `num_classes`, counted on a freshly built model.
    pub fn num_params(&self, num_classes: usize) -> usize {
        self.config(num_classes)
            .init(&burn::tensor::Device::flex())
            .num_trainable_params()
    }

    /// The variant's hyper-parameters with `num_classes` set.
    pub fn config(&self, num_classes: usize) -> ModelConfig {
        let mut config = (self.default_config)();
        config.family_mut().set_num_classes(num_classes);
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
            let probability = PROBABILITIES.contains(&key.as_str());
            let outside = new.as_f64().is_some_and(|p| !(0.0..1.0).contains(&p));
            if probability && outside {
                return Err(RegistryError::BadParameter {
                    model: self.name.to_string(),
                    key: key.clone(),
                    expected: old.map(|v| describe(&v)).unwrap_or_default(),
                    reason: format!("a probability must lie in [0, 1), got {new}"),
                });
            }
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

/// Parameters that are probabilities of dropping something while training: their layers refuse
/// 1 and more, so the registry does first, with the parameter's name.
const PROBABILITIES: [&str; 4] = ["dropout", "drop_rate", "drop_path", "stochastic_depth_prob"];

impl fmt::Debug for ModelEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelEntry")
            .field("name", &self.name)
            .finish()
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
