//! PyTorch-made weight files (written by scripts/make_parity_fixtures.py) load into cnnzoo's
//! models and give PyTorch's logits on the same images, and broken files are refused with
//! errors that name what is wrong.
use std::path::{Path, PathBuf};

use burn::prelude::*;
use cnnzoo_models::import::{
    Container, ImportError, ShapeMismatch, TorchWeights, load_torch_weights,
};
use cnnzoo_models::{ModelConfig, lookup};
use serde_json::Value;

/// The bound the issue sets for the CPU backend.
const TOLERANCE: f64 = 1e-4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn images(expected: &Value, device: &Device) -> Tensor<4> {
    let images = &expected["images"];
    let shape: Vec<usize> = serde_json::from_value(images["shape"].clone()).unwrap();
    let data: Vec<f32> = serde_json::from_value(images["data"].clone()).unwrap();
    Tensor::<1>::from_floats(data.as_slice(), device)
        .reshape([shape[0], shape[1], shape[2], shape[3]])
}

fn config(name: &str, params: &Value) -> ModelConfig {
    lookup(name)
        .unwrap()
        .config_with(10, params.as_object().unwrap())
        .unwrap()
}

/// Loads the fixture, runs the images through it and returns the largest difference from
/// PyTorch's logits.
fn max_abs_diff(file: &str) -> f64 {
    let expected = expected();
    let entry = &expected["files"][file];
    let device = Device::flex();
    let config = config(entry["model"].as_str().unwrap(), &entry["params"]);
    let model = load_torch_weights(&fixtures().join(file), &config, &device)
        .unwrap_or_else(|e| panic!("{e}"));
    let logits = model.forward(images(&expected, &device));
    let want: Vec<Vec<f64>> = serde_json::from_value(entry["logits"].clone()).unwrap();
    let [rows, classes] = logits.dims();
    assert_eq!((rows, classes), (want.len(), want[0].len()), "{file}");
    let got = logits.into_data().try_to_vec::<f32>().unwrap();
    max_diff(file, &got, &want)
}

/// The largest difference between cnnzoo's logits and PyTorch's, printed with the file's name.
fn max_diff(file: &str, got: &[f32], want: &[Vec<f64>]) -> f64 {
    let diff = got
        .iter()
        .zip(want.iter().flatten())
        .map(|(g, w)| (f64::from(*g) - w).abs())
        .fold(0.0, f64::max);
    println!("{file}: max |cnnzoo - pytorch| = {diff:.3e}");
    diff
}

fn assert_parity(file: &str) {
    let diff = max_abs_diff(file);
    assert!(
        diff <= TOLERANCE,
        "{file}: max abs difference {diff:e} > {TOLERANCE:e}"
    );
}

#[test]
fn googlenet_from_safetensors_matches_pytorch() {
    assert_parity("googlenet.safetensors");
}

#[test]
fn resnet_from_a_lightning_checkpoint_matches_pytorch() {
    assert_parity("resnet.ckpt");
}

#[test]
fn resnet_preact_from_a_legacy_lightning_checkpoint_matches_pytorch() {
    assert_parity("resnet_preact.ckpt");
}

#[test]
fn densenet_from_a_zip_state_dict_matches_pytorch() {
    assert_parity("densenet.pt");
}

#[test]
fn every_container_of_the_same_weights_matches_pytorch() {
    for file in [
        "tiny_resnet.pt",
        "tiny_resnet_legacy.pt",
        "tiny_resnet.safetensors",
        "tiny_resnet.ckpt",
        "tiny_resnet_module.pt",
        "tiny_resnet_wrapped.pth",
    ] {
        assert_parity(file);
    }
}

fn tiny() -> ModelConfig {
    config(
        "resnet",
        &serde_json::json!({"num_blocks": [1, 1, 1], "channels": [4, 8, 16]}),
    )
}

#[test]
fn the_container_and_the_state_dict_inside_are_recognised() {
    let read = |file: &str| TorchWeights::read(&fixtures().join(file), &tiny()).unwrap();
    let cases = [
        ("tiny_resnet.pt", Container::TorchZip, None, None),
        ("tiny_resnet_legacy.pt", Container::TorchLegacy, None, None),
        (
            "tiny_resnet.safetensors",
            Container::Safetensors,
            None,
            None,
        ),
        (
            "tiny_resnet.ckpt",
            Container::TorchZip,
            Some("state_dict"),
            Some("model."),
        ),
        ("tiny_resnet_module.pt", Container::TorchZip, None, None),
        (
            "tiny_resnet_wrapped.pth",
            Container::TorchZip,
            Some("model"),
            Some("module."),
        ),
    ];
    for (file, container, nest, prefix) in cases {
        let weights = read(file);
        assert_eq!(weights.container, container, "{file}");
        assert_eq!(weights.nested_under.as_deref(), nest, "{file}");
        assert_eq!(weights.stripped_prefix.as_deref(), prefix, "{file}");
        // Stem 5, blocks 10 + 12 + 12 (two with a projection), head 2; 7 BatchNorm counters.
        assert_eq!(weights.len(), 41, "{file}");
        assert_eq!(weights.ignored.len(), 7, "{file}");
        assert!(
            weights
                .ignored
                .iter()
                .all(|k| k.ends_with("num_batches_tracked"))
        );
    }
    // The momentum buffers and callback scores of the Lightning file are not weights.
    let weights = read("tiny_resnet.ckpt");
    assert_eq!(weights.len(), 41);
}

fn import_error(file: &str, config: &ModelConfig) -> ImportError {
    match load_torch_weights(&fixtures().join(file), config, &Device::flex()) {
        Ok(_) => panic!("{file} loaded"),
        Err(e) => e,
    }
}

/// The parts of an import's mismatch error, and its message.
struct Mismatch {
    missing: Vec<(String, Vec<usize>)>,
    unexpected: Vec<String>,
    shapes: Vec<ShapeMismatch>,
    message: String,
}

fn import_mismatch(file: &str, config: &ModelConfig) -> Mismatch {
    let error = import_error(file, config);
    let message = error.to_string();
    match error {
        ImportError::Mismatch {
            missing,
            unexpected,
            shapes,
            ..
        } => Mismatch {
            missing,
            unexpected,
            shapes,
            message,
        },
        other => panic!("{other}"),
    }
}

#[test]
fn missing_keys_are_listed_ten_at_most() {
    let mismatch = import_mismatch("tiny_resnet_missing.safetensors", &tiny());
    assert_eq!(mismatch.missing.len(), 12);
    assert!(mismatch.unexpected.is_empty() && mismatch.shapes.is_empty());
    assert!(
        mismatch
            .missing
            .contains(&("input_conv.weight".to_string(), vec![4, 3, 3, 3]))
    );
    assert!(
        mismatch
            .message
            .contains("12 parameter(s) of the model that no tensor in the file maps to"),
        "{}",
        mismatch.message
    );
    assert!(
        mismatch
            .message
            .contains("blocks.0.Standard.conv1.weight [4, 4, 3, 3]"),
        "{}",
        mismatch.message
    );
    assert!(
        mismatch.message.ends_with(", and 2 more"),
        "{}",
        mismatch.message
    );
    assert!(
        mismatch.message.starts_with(
            &fixtures()
                .join("tiny_resnet_missing.safetensors")
                .display()
                .to_string()
        )
    );
}

#[test]
fn unexpected_keys_are_named_as_in_the_file() {
    let mismatch = import_mismatch("tiny_resnet_unexpected.safetensors", &tiny());
    assert!(mismatch.missing.is_empty() && mismatch.shapes.is_empty());
    assert_eq!(
        mismatch.unexpected,
        &[
            "blocks.9.net.0.weight",
            "head.fc.weight",
            "output_net.3.bias"
        ]
    );
    assert!(
        mismatch.message.contains("3 key(s) in the file that are not weights of this model: blocks.9.net.0.weight, head.fc.weight, output_net.3.bias"),
        "{}", mismatch.message
    );
}

#[test]
fn shape_mismatches_give_both_shapes_in_pytorch_layout() {
    let mismatch = import_mismatch("tiny_resnet_shapes.safetensors", &tiny());
    assert!(mismatch.missing.is_empty() && mismatch.unexpected.is_empty());
    assert_eq!(mismatch.shapes.len(), 2);
    assert!(
        mismatch
            .message
            .contains("blocks.1.net.0.weight is [8, 4, 5, 5], expected [8, 4, 3, 3]"),
        "{}",
        mismatch.message
    );
    assert!(
        mismatch
            .message
            .contains("output_net.2.weight is [16, 10], expected [10, 16]"),
        "{}",
        mismatch.message
    );
}

#[test]
fn weights_for_another_configuration_are_refused() {
    // The tiny network's file against the full ResNet-20: wrong widths and mismatch.missing blocks.
    let mismatch = import_mismatch("tiny_resnet.pt", &lookup("resnet").unwrap().config(10));
    assert!(!mismatch.missing.is_empty() && !mismatch.shapes.is_empty());
    // A ResNet file is not a DenseNet: only the stem's key means something to both (with
    // another width), and the Lightning keys are named as in the file.
    let mismatch = import_mismatch("resnet.ckpt", &lookup("densenet").unwrap().config(10));
    assert_eq!(mismatch.unexpected.len(), 100);
    assert_eq!(
        mismatch.shapes,
        &[ShapeMismatch {
            key: "state_dict.model.input_net.0.weight".into(),
            found: vec![16, 3, 3, 3],
            expected: vec![32, 3, 3, 3],
        }]
    );
    assert!(
        mismatch
            .unexpected
            .contains(&"state_dict.model.blocks.0.net.0.weight".to_string())
    );
    assert!(mismatch.missing.len() > 100);
    // Ten classes in the file, a hundred asked for.
    let error = import_error("tiny_resnet.pt", &{
        let mut config = tiny();
        if let ModelConfig::ResNet(c) = &mut config {
            c.num_classes = 100;
        }
        config
    });
    assert!(
        error
            .to_string()
            .contains("output_net.2.weight is [10, 16], expected [100, 16]"),
        "{error}"
    );
}

#[test]
fn unreadable_files_are_errors_naming_them() {
    let dir = std::env::temp_dir().join(format!("cnnzoo-parity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("notes.pt");
    std::fs::write(&text, "not a checkpoint").unwrap();
    let error = import_error(text.to_str().unwrap(), &tiny());
    assert!(matches!(error, ImportError::Read { .. }), "{error}");
    assert!(
        error.to_string().starts_with(&text.display().to_string()),
        "{error}"
    );

    let missing = dir.join("nowhere.pt");
    let error = import_error(missing.to_str().unwrap(), &tiny());
    assert!(matches!(error, ImportError::Io { .. }), "{error}");
    assert!(error.to_string().contains("nowhere.pt"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The reference tutorial's published checkpoints (not committed: about 1 MB each). Run with
/// `CNNZOO_TUTORIAL_DIR=<folder with ResNet.ckpt, ...> cargo test -p cnnzoo-models --test parity
/// -- --ignored`.
#[test]
#[ignore = "needs the tutorial's published checkpoints in CNNZOO_TUTORIAL_DIR (not committed)"]
fn the_tutorials_published_checkpoints_match_pytorch() {
    let dir = std::env::var_os("CNNZOO_TUTORIAL_DIR")
        .expect("CNNZOO_TUTORIAL_DIR names the folder holding the tutorial's checkpoints");
    let text = std::fs::read_to_string(fixtures().join("tutorial_expected.json")).unwrap();
    let tutorial: Value = serde_json::from_str(&text).unwrap();
    let device = Device::flex();
    let images = images(&expected(), &device);
    for (file, entry) in tutorial.as_object().unwrap() {
        let config = lookup(entry["model"].as_str().unwrap()).unwrap().config(10);
        let path = Path::new(&dir).join(file);
        let model = load_torch_weights(&path, &config, &device).unwrap_or_else(|e| panic!("{e}"));
        let got = model
            .forward(images.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let want: Vec<Vec<f64>> = serde_json::from_value(entry["logits"].clone()).unwrap();
        let diff = max_diff(file, &got, &want);
        assert!(diff <= TOLERANCE, "{file}: {diff:e}");
    }
}
