//! `cnnzoo models`: the registry's models with their sizes.
use anyhow::Result;
use cnnzoo_models::MODELS;
use serde::Serialize;

/// The number of classes the parameters are counted at unless asked otherwise: CIFAR-10's.
pub const DEFAULT_CLASSES: usize = 10;

/// One model of the registry; serialises to an entry of `cnnzoo models --json`.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    pub name: &'static str,
    pub family: &'static str,
    /// Trainable weights and biases at `num_classes` classes.
    pub parameters: usize,
    pub input_size: usize,
    pub num_classes: usize,
    pub description: &'static str,
}

/// The models of the registry, or of one family of it, with their sizes at `num_classes`.
pub fn list(family: Option<&str>, num_classes: usize) -> Result<Vec<ModelSummary>> {
    let entries: Vec<_> = MODELS
        .iter()
        .filter(|m| family.is_none_or(|f| m.family == f))
        .collect();
    if let Some(f) = family
        && entries.is_empty()
    {
        let mut families: Vec<&str> = Vec::new();
        for entry in MODELS.iter() {
            if !families.contains(&entry.family) {
                families.push(entry.family);
            }
        }
        anyhow::bail!(
            "no model of family '{f}'; families: {}",
            families.join(", ")
        );
    }
    Ok(entries
        .into_iter()
        .map(|m| ModelSummary {
            name: m.name,
            family: m.family,
            parameters: m.num_params(num_classes),
            input_size: m.input_size,
            num_classes,
            description: m.description,
        })
        .collect())
}
