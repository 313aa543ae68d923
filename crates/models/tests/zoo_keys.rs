//! torchvision's state_dicts (keys and shapes in tests/fixtures/zoo, written by
//! scripts/make_zoo_fixtures.py at 10 classes) map one to one onto the zoo's parameters.
use std::collections::BTreeMap;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use cnnzoo_models::lookup;

#[derive(Default)]
struct Shapes {
    path: Vec<String>,
    found: BTreeMap<String, Vec<usize>>,
}

impl ModuleVisitor for Shapes {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // Drop the `Model` enum variant: mappings are relative to the family's network.
        self.found.insert(
            self.path[1..].join("."),
            param.lazy_shape().dims::<D>().to_vec(),
        );
    }
}

fn check(name: &str) {
    let path = format!(
        "{}/tests/fixtures/zoo/{name}.keys",
        env!("CARGO_MANIFEST_DIR")
    );
    let fixture = std::fs::read_to_string(&path).unwrap();
    let config = lookup(name).unwrap().config(10);
    let mut shapes = Shapes::default();
    config.init(&Device::flex()).visit(&mut shapes);
    let mut unmapped = Vec::new();
    let mut mapped = BTreeMap::new();
    for line in fixture.lines() {
        let (key, shape) = line.split_once(' ').unwrap();
        if key.ends_with("num_batches_tracked") {
            assert_eq!(config.torch_key(key), None, "{name}: {key}");
            continue;
        }
        let mut torch_shape: Vec<usize> = shape.split('x').map(|d| d.parse().unwrap()).collect();
        // burn's Linear stores [in, out], PyTorch's [out, in].
        if torch_shape.len() == 2 {
            torch_shape.reverse();
        }
        match config.torch_key(key) {
            Some(path) => {
                assert_eq!(
                    shapes.found.get(&path),
                    Some(&torch_shape),
                    "{name}: {key} -> {path}"
                );
                assert!(
                    mapped.insert(path.clone(), key).is_none(),
                    "{name}: two keys map to {path}"
                );
            }
            None => unmapped.push(key.to_string()),
        }
    }
    assert!(
        unmapped.is_empty(),
        "{name}: keys without a mapping: {unmapped:?}"
    );
    let missing: Vec<_> = shapes
        .found
        .keys()
        .filter(|p| !mapped.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: parameters no torchvision key maps to: {missing:?}"
    );
}

#[test]
fn resnet_keys_map_one_to_one() {
    check("resnet18");
    check("resnet50");
}

#[test]
fn resnext_keys_map_one_to_one() {
    check("resnext50_32x4d");
}

#[test]
fn densenet_keys_map_one_to_one() {
    check("densenet121");
    check("densenet161");
}

#[test]
fn inception_keys_map_one_to_one() {
    check("inception_v1");
    check("inception_v3");
}

#[test]
fn vgg_and_alexnet_keys_map_one_to_one() {
    check("vgg11");
    check("vgg16_bn");
    check("alexnet");
}

#[test]
fn mobilenet_keys_map_one_to_one() {
    check("mobilenet_v2");
    check("mobilenet_v3_large");
}

#[test]
fn mnasnet_keys_map_one_to_one() {
    check("mnasnet1_0");
}

#[test]
fn efficientnet_keys_map_one_to_one() {
    check("efficientnet_b0");
    check("efficientnet_b7");
}

#[test]
fn keys_of_other_models_and_published_spellings() {
    let resnet = lookup("resnet18").unwrap().config(10);
    assert_eq!(
        resnet.torch_key("layer5.0.conv1.weight").as_deref(),
        Some("layers.4.0.conv1.weight")
    );
    assert_eq!(resnet.torch_key("layer0.0.conv1.weight"), None);
    assert_eq!(resnet.torch_key("features.0.weight"), None);
    // torchvision's published DenseNet checkpoints spell `norm1` as `norm.1`.
    let densenet = lookup("densenet121").unwrap().config(10);
    assert_eq!(
        densenet
            .torch_key("features.denseblock2.denselayer3.norm.1.running_var")
            .as_deref(),
        Some("blocks.1.layers.2.norm1.running_var")
    );
    assert_eq!(
        densenet
            .torch_key("features.denseblock1.denselayer1.conv.2.weight")
            .as_deref(),
        Some("blocks.0.layers.0.conv2.weight")
    );
    // GoogLeNet's auxiliary heads are not part of inception_v1.
    let googlenet = lookup("inception_v1").unwrap().config(10);
    assert_eq!(googlenet.torch_key("aux1.fc1.weight"), None);
}
