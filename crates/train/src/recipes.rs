//! The configs shipped in `configs/`, which each zoo entry carries, so that
//! `cnnzoo train --model NAME` follows the reference recipe without a `--config`.
use anyhow::{Context, Result};

use crate::config::TrainConfig;

/// The recipe used when no `--config` is given: the shipped config for this model if there is
/// one, else SGD with the reference's multi-step schedule.
pub fn recipe_for(model: &str) -> Result<TrainConfig> {
    Ok(shipped(model)?.unwrap_or_else(|| TrainConfig::reference_sgd(model)))
}

/// The shipped config of `model`: its zoo entry's recipe. One that does not parse is an error,
/// never a silent fall back to the generic recipe.
pub fn shipped(model: &str) -> Result<Option<TrainConfig>> {
    let Some(recipe) = cnnzoo_models::lookup(model)
        .ok()
        .and_then(|entry| entry.recipe)
    else {
        return Ok(None);
    };
    TrainConfig::from_toml(recipe)
        .map(Some)
        .with_context(|| format!("the shipped recipe of {model} (configs/) does not parse"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_recipe_parses_validates_and_trains_its_model() {
        let with_recipe: Vec<_> = cnnzoo_models::MODELS
            .iter()
            .filter_map(|entry| entry.recipe.map(|text| (entry.name, text)))
            .collect();
        assert_eq!(with_recipe.len(), 5, "the configs/ files");
        for (name, text) in with_recipe {
            let config = TrainConfig::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            config.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                config.model, name,
                "{name}'s recipe trains {}",
                config.model
            );
        }
    }
}
