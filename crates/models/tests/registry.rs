use cnnzoo_models::registry::{RegistryError, model_names};
use cnnzoo_models::{ModelConfig, lookup};
use serde_json::json;

#[test]
fn the_four_reference_models_are_registered() {
    // First; the torchvision zoo follows (tests/zoo.rs).
    assert_eq!(
        model_names()[..4],
        ["googlenet", "resnet", "resnet_preact", "densenet"]
    );
    for name in &model_names()[..4] {
        let entry = lookup(name).unwrap();
        assert_eq!(entry.input_size, 32);
        assert_eq!(entry.config(10).family().num_classes(), 10);
    }
}

#[test]
fn unknown_model_suggests_the_closest_and_lists_all() {
    let err = lookup("densnet").unwrap_err();
    assert!(matches!(
        err,
        RegistryError::UnknownModel {
            suggestion: Some("densenet"),
            ..
        }
    ));
    let message = err.to_string();
    assert!(message.contains("'densnet'"), "{message}");
    assert!(message.contains("did you mean 'densenet'"), "{message}");
    assert!(
        message.contains("googlenet, resnet, resnet_preact, densenet"),
        "{message}"
    );
    let far = lookup("transformer").unwrap_err();
    assert!(matches!(
        far,
        RegistryError::UnknownModel {
            suggestion: None,
            ..
        }
    ));
}

#[test]
fn overrides_replace_hyper_parameters() {
    let entry = lookup("densenet").unwrap();
    let overrides = json!({"growth_rate": 12, "activation": "gelu"});
    let config = entry
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let ModelConfig::DenseNet(c) = config else {
        panic!("densenet config")
    };
    assert_eq!(c.growth_rate, 12);
    assert_eq!(c.activation, cnnzoo_models::Act::Gelu);
    assert_eq!(c.bn_size, 2);
}

#[test]
fn unknown_or_mistyped_overrides_name_the_key() {
    let entry = lookup("resnet").unwrap();
    for (overrides, expected) in [
        (json!({"depth": 56}), ["'depth'", "num_blocks"]),
        (json!({"activation": "swish"}), ["'activation'", "swish"]),
        (
            json!({"num_blocks": "three"}),
            ["'num_blocks'", "expected a list"],
        ),
    ] {
        let message = entry
            .config_with(10, overrides.as_object().unwrap())
            .unwrap_err()
            .to_string();
        for part in expected {
            assert!(message.contains(part), "{overrides}: {message}");
        }
    }
}

#[test]
fn configs_round_trip_through_json() {
    for name in model_names() {
        let config = lookup(name).unwrap().config(7);
        let text = serde_json::to_string(&config).unwrap();
        let back: ModelConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(back.family().num_classes(), 7);
    }
}

#[test]
fn a_drop_probability_of_one_or_more_is_refused_by_name() {
    for (model, key) in [
        ("resnet", "drop_path"),
        ("densenet121", "drop_rate"),
        ("vgg11", "dropout"),
    ] {
        let overrides = json!({ key: 1.0 });
        match lookup(model)
            .unwrap()
            .config_with(10, overrides.as_object().unwrap())
        {
            Err(RegistryError::BadParameter {
                key: named, reason, ..
            }) => {
                assert_eq!(named, key);
                assert!(reason.contains("[0, 1)"), "{reason}");
            }
            other => panic!("{model}.{key} = 1.0 gave {other:?}"),
        }
    }
}
