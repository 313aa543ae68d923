//! The reference PyTorch state_dicts (keys and shapes in tests/fixtures, written by
//! scripts/reference_keys.py) map one to one onto cnnzoo's parameters.
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
        self.found
            .insert(self.path[1..].join("."), param.shape().dims::<D>().to_vec());
    }
}

fn check(name: &str, fixture: &str) {
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
        "{name}: parameters no reference key maps to: {missing:?}"
    );
}

#[test]
fn googlenet_keys_map_one_to_one() {
    check("googlenet", include_str!("fixtures/googlenet.keys"));
}

#[test]
fn resnet_keys_map_one_to_one() {
    check("resnet", include_str!("fixtures/resnet.keys"));
}

#[test]
fn resnet_preact_keys_map_one_to_one() {
    check("resnet_preact", include_str!("fixtures/resnet_preact.keys"));
}

#[test]
fn densenet_keys_map_one_to_one() {
    check("densenet", include_str!("fixtures/densenet.keys"));
}
