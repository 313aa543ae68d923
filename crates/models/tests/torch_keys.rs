//! The reference PyTorch state_dicts (keys and shapes in tests/fixtures, written by
//! scripts/reference_keys.py) map one to one onto cnnzoo's parameters.
mod common;

use common::assert_keys_map_one_to_one;

#[test]
fn reference_keys_map_one_to_one() {
    for (name, keys) in [
        ("googlenet", include_str!("fixtures/googlenet.keys")),
        ("resnet", include_str!("fixtures/resnet.keys")),
        ("resnet_preact", include_str!("fixtures/resnet_preact.keys")),
        ("densenet", include_str!("fixtures/densenet.keys")),
    ] {
        assert_keys_map_one_to_one(name, keys);
    }
}
