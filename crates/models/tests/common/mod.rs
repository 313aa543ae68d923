//! Checks shared by the model tests: gradients reach every parameter, and a PyTorch key list
//! maps one to one onto a model's parameters.
#![allow(dead_code)]

use std::collections::BTreeMap;

use burn::module::Param;
use burn::prelude::*;
use cnnzoo_models::layers::{ParamPath, ParamVisitor, visit_params};
use cnnzoo_models::{Model, lookup};

/// Walks the trainable tensors (batch-norm running statistics are buffers, not trained).
struct GradientCheck<'a> {
    grads: &'a burn::tensor::Gradients,
    missing_or_zero: Vec<String>,
    checked: usize,
}

impl ParamVisitor for GradientCheck<'_> {
    fn visit<const D: usize>(&mut self, path: &ParamPath, param: &Param<Tensor<D>>) {
        if path.is_running_statistic() {
            return;
        }
        self.checked += 1;
        let nonzero = param
            .val()
            .grad(self.grads)
            .is_some_and(|g| g.abs().sum().into_scalar::<f64>() > 0.0);
        if !nonzero {
            self.missing_or_zero.push(path.joined());
        }
    }
}

/// Every trainable tensor of `model` (more than `at_least` of them) got a non-zero gradient.
pub fn assert_every_parameter_has_a_gradient(
    model: &Model,
    grads: &burn::tensor::Gradients,
    at_least: usize,
    label: &str,
) {
    let mut check = GradientCheck {
        grads,
        missing_or_zero: Vec::new(),
        checked: 0,
    };
    visit_params(model, &mut check);
    assert!(
        check.checked > at_least,
        "{label}: {} tensors",
        check.checked
    );
    assert!(
        check.missing_or_zero.is_empty(),
        "{label}: no gradient for {:?}",
        check.missing_or_zero
    );
}

#[derive(Default)]
struct Shapes(BTreeMap<String, Vec<usize>>);

impl ParamVisitor for Shapes {
    fn visit<const D: usize>(&mut self, path: &ParamPath, param: &Param<Tensor<D>>) {
        // Drop the `Model` enum variant: mappings are relative to the family's network.
        self.0.insert(
            path.joined_after(1),
            param.lazy_shape().dims::<D>().to_vec(),
        );
    }
}

/// Every key of a PyTorch state_dict listing (`key shape` lines, shapes as `AxB`) maps onto a
/// parameter of model `name` with the same shape, no two keys onto one parameter, and every
/// parameter is mapped; `num_batches_tracked` maps to nothing.
pub fn assert_keys_map_one_to_one(name: &str, fixture: &str) {
    let config = lookup(name).unwrap().config(10);
    let mut shapes = Shapes::default();
    visit_params(&config.init(&Device::flex()), &mut shapes);
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
                    shapes.0.get(&path),
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
        .0
        .keys()
        .filter(|p| !mapped.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "{name}: parameters no PyTorch key maps to: {missing:?}"
    );
}
