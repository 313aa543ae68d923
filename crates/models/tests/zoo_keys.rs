//! torchvision's state_dicts (keys and shapes in tests/fixtures/zoo, written by
//! scripts/make_zoo_fixtures.py at 10 classes) map one to one onto the zoo's parameters.
mod common;

use cnnzoo_models::lookup;

/// Checks the listing `tests/fixtures/zoo/{name}.keys`.
fn check(name: &str) {
    let path = format!(
        "{}/tests/fixtures/zoo/{name}.keys",
        env!("CARGO_MANIFEST_DIR")
    );
    common::assert_keys_map_one_to_one(name, &std::fs::read_to_string(&path).unwrap());
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
