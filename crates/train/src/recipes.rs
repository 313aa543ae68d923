//! The configs shipped in `configs/`, built into the binary so that `cnnzoo train --model NAME`
//! follows the reference recipe without a `--config`.
use crate::config::TrainConfig;

const SHIPPED: &[(&str, &str)] = &[
    ("googlenet", include_str!("../../../configs/googlenet.toml")),
    ("resnet", include_str!("../../../configs/resnet.toml")),
    (
        "resnet_preact",
        include_str!("../../../configs/resnet_preact.toml"),
    ),
    ("densenet", include_str!("../../../configs/densenet.toml")),
    ("resnet18", include_str!("../../../configs/resnet18.toml")),
];

/// The recipe used when no `--config` is given: the shipped config for this model if there is
/// one, else SGD with the reference's multi-step schedule.
pub fn recipe_for(model: &str) -> TrainConfig {
    shipped(model).unwrap_or_else(|| TrainConfig::reference_sgd(model))
}

/// The shipped config whose `model` is `model`.
pub fn shipped(model: &str) -> Option<TrainConfig> {
    SHIPPED
        .iter()
        .filter_map(|(_, text)| TrainConfig::from_toml(text).ok())
        .find(|config| config.model == model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_config_parses_and_validates() {
        for (file, text) in SHIPPED {
            let config = TrainConfig::from_toml(text).unwrap_or_else(|e| panic!("{file}: {e}"));
            config.validate().unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(
                &config.model, file,
                "configs/{file}.toml trains {}",
                config.model
            );
        }
    }
}
