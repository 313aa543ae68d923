//! The reference PyTorch state_dicts (keys and shapes in tests/fixtures, written by
//! scripts/reference_keys.py) map one to one onto cnnzoo's parameters.
mod common;

use common::assert_keys_map_one_to_one;

#[test]
fn googlenet_keys_map_one_to_one() {
    assert_keys_map_one_to_one("googlenet", include_str!("fixtures/googlenet.keys"));
}

#[test]
fn resnet_keys_map_one_to_one() {
    assert_keys_map_one_to_one("resnet", include_str!("fixtures/resnet.keys"));
}

#[test]
fn resnet_preact_keys_map_one_to_one() {
    assert_keys_map_one_to_one("resnet_preact", include_str!("fixtures/resnet_preact.keys"));
}

#[test]
fn densenet_keys_map_one_to_one() {
    assert_keys_map_one_to_one("densenet", include_str!("fixtures/densenet.keys"));
}
