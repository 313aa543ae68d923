//! Parity with torchvision: for one variant of each family, weights in torchvision's state_dict
//! layout import through `cnnzoo_models::import` and give PyTorch's logits.
//!
//! The weights are not committed (3M to 129M parameters per model): scripts/make_zoo_fixtures.py
//! draws every tensor from a hash formula, runs torchvision's own model on them in float64 and
//! keeps the logits (tests/fixtures/zoo/<model>.parity.json); this test draws the same tensors bit
//! for bit under torchvision's key names (tests/fixtures/zoo/<model>.keys), checks them against
//! the script's checksum, writes them to a safetensors file and imports that.
//!
//! Tolerance: every logit within 1e-4 x max(1, largest |logit|) of PyTorch's, i.e. 1e-4 absolute
//! for the shallow models whose logits stay below 1 and 1e-4 relative to the logits' scale for the
//! deep ones (up to ~4e3 for ResNeXt-50 with these weights), where float32 rounding accumulates
//! over 50+ layers.
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use burn::prelude::*;
use cnnzoo_models::import::load_torch_weights;
use cnnzoo_models::lookup;
use serde_json::{Map, Value, json};

const TOLERANCE: f64 = 1e-4;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/zoo")
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

const GOLDEN: u64 = 0x9E3779B97F4A7C15;

/// `formula_uniform` of the script: SplitMix64 of (hash(name) xor index * golden ratio), top 24
/// bits, as a float32 in [-1, 1).
fn formula_uniform(name: &str, n: usize) -> Vec<f32> {
    let seed = fnv1a(name);
    (0..n as u64)
        .map(|i| {
            let mut z = (seed ^ i.wrapping_mul(GOLDEN)).wrapping_add(GOLDEN);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
            z ^= z >> 31;
            ((z >> 40) as f32) * 2f32.powi(-24) * 2.0 - 1.0
        })
        .collect()
}

/// `formula_tensor` of the script: the same float32 operations in the same order.
fn formula_tensor(key: &str, shape: &[usize]) -> Vec<f32> {
    let n = shape.iter().product();
    let s = formula_uniform(key, n);
    let leaf = key.rsplit('.').next().unwrap();
    let affine = |scale: f32, shift: f32| s.iter().map(|v| v * scale + shift).collect();
    match leaf {
        "running_var" => affine(0.5, 1.0),
        "running_mean" | "bias" => s.iter().map(|v| v * 0.1).collect(),
        _ if shape.len() == 1 => affine(0.2, 1.0),
        _ => {
            let fan_in: usize = shape[1..].iter().product();
            let bound = (6.0 / fan_in as f64).sqrt() as f32;
            s.iter().map(|v| v * bound).collect()
        }
    }
}

/// The state_dict keys (without `num_batches_tracked`, which burn does not keep) and shapes.
fn torch_keys(name: &str) -> Vec<(String, Vec<usize>)> {
    std::fs::read_to_string(fixture_dir().join(format!("{name}.keys")))
        .unwrap()
        .lines()
        .filter(|line| !line.contains("num_batches_tracked"))
        .map(|line| {
            let (key, shape) = line.split_once(' ').unwrap();
            let shape = shape.split('x').map(|d| d.parse().unwrap()).collect();
            (key.to_string(), shape)
        })
        .collect()
}

/// Writes the formula's tensors as a safetensors file, one tensor in memory at a time, and
/// returns the sum of all their values.
fn write_formula_safetensors(path: &Path, keys: &[(String, Vec<usize>)]) -> f64 {
    let mut header = Map::new();
    let mut offset = 0;
    for (key, shape) in keys {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            key.clone(),
            json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&Value::Object(header)).unwrap();
    // The format pads the header to 8 bytes so that the data is aligned.
    header.resize(header.len().next_multiple_of(8), b' ');
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    out.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    out.write_all(&header).unwrap();
    let mut checksum = 0.0;
    for (key, shape) in keys {
        let values = formula_tensor(key, shape);
        checksum += values.iter().map(|&v| f64::from(v)).sum::<f64>();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        out.write_all(&bytes).unwrap();
    }
    out.flush().unwrap();
    checksum
}

/// A temporary file removed when dropped, also when the test fails.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect()
}

/// Largest difference, and the tolerance it is held to.
fn compare(label: &str, found: Tensor<2>, expected: &[f64]) -> f64 {
    let found = found.to_data().try_to_vec::<f32>().unwrap();
    assert_eq!(found.len(), expected.len(), "{label}: number of logits");
    let scale = expected.iter().fold(1.0_f64, |m, v| m.max(v.abs()));
    let diff = found
        .iter()
        .zip(expected)
        .map(|(&f, &e)| (f64::from(f) - e).abs())
        .fold(0.0, f64::max);
    eprintln!(
        "{label}: max |logit diff| {diff:.3e}, scale {scale:.3e}, relative {:.3e}",
        diff / scale
    );
    assert!(
        diff <= TOLERANCE * scale,
        "{label}: logits differ by {diff} (tolerance {} at scale {scale}):\n{found:?}\nvs\n{expected:?}",
        TOLERANCE * scale
    );
    diff
}

fn parity(name: &str) {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture_dir().join(format!("{name}.parity.json"))).unwrap(),
    )
    .unwrap();
    let keys = torch_keys(name);
    let file = TempFile(std::env::temp_dir().join(format!(
        "cnnzoo-zoo-parity-{name}-{}.safetensors",
        std::process::id()
    )));
    let checksum = write_formula_safetensors(&file.0, &keys);
    let elements: usize = keys.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
    let expected_checksum = fixture["weights_checksum"].as_f64().unwrap();
    // Summation order differs from numpy's; a different formula would be off by ~sqrt(elements).
    assert!(
        (checksum - expected_checksum).abs() <= 1e-9 * elements as f64,
        "{name}: the formula's weights differ from the script's: sum {checksum} vs {expected_checksum}"
    );

    let num_classes = fixture["num_classes"].as_u64().unwrap() as usize;
    let config = lookup(name).unwrap().config(num_classes);
    let device = Device::flex();
    let model = load_torch_weights(&file.0, &config, &device)
        .unwrap_or_else(|e| panic!("{name}: import failed: {e}"));
    drop(file);

    let shape: Vec<usize> = floats(&fixture["input_shape"])
        .iter()
        .map(|&d| d as usize)
        .collect();
    let shape: [usize; 4] = shape.try_into().unwrap();
    let input = formula_uniform("input", shape.iter().product());
    let images = Tensor::<4>::from_data(TensorData::new(input, shape), &device);
    let (logits, aux) = model.forward_with_aux(images);
    compare(name, logits, &floats(&fixture["logits"]));
    if let Some(expected) = fixture.get("aux_logits") {
        let aux = aux.unwrap_or_else(|| panic!("{name}: no auxiliary logits"));
        compare(&format!("{name} (auxiliary head)"), aux, &floats(expected));
    }
}

#[test]
fn formula_gives_the_scripts_values() {
    // As numpy prints formula_uniform("input", 4) and formula_tensor("features.0.weight",
    // (2, 3, 1, 1)) of the script.
    assert_eq!(
        formula_uniform("input", 4),
        [-0.80436337, 0.03808093, -0.24696624, 0.82704294]
    );
    assert_eq!(
        formula_tensor("features.0.weight", &[2, 3, 1, 1]),
        [
            1.006234,
            1.4074994,
            0.83893067,
            -0.73542136,
            -0.9897201,
            -0.15048903
        ]
    );
}

#[test]
fn resnet18_matches_torchvision() {
    parity("resnet18");
}

#[test]
fn resnext50_32x4d_matches_torchvision() {
    parity("resnext50_32x4d");
}

#[test]
fn densenet121_matches_torchvision() {
    parity("densenet121");
}

#[test]
fn inception_v1_matches_torchvision() {
    parity("inception_v1");
}

#[test]
fn inception_v3_matches_torchvision_with_its_auxiliary_head() {
    parity("inception_v3");
}

#[test]
fn vgg11_matches_torchvision() {
    parity("vgg11");
}

#[test]
fn alexnet_matches_torchvision() {
    parity("alexnet");
}

#[test]
fn mobilenet_v2_matches_torchvision() {
    parity("mobilenet_v2");
}

#[test]
fn mobilenet_v3_large_matches_torchvision() {
    parity("mobilenet_v3_large");
}

#[test]
fn mnasnet1_0_matches_torchvision() {
    parity("mnasnet1_0");
}

#[test]
fn efficientnet_b0_matches_torchvision() {
    parity("efficientnet_b0");
}
