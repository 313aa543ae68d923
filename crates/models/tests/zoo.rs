//! The torchvision architectures of the wider zoo (SPEC §5): exact parameter counts, the
//! registry's metadata, and every family built at 10 classes running forward and backward on
//! CIFAR-sized images.
mod common;

use burn::prelude::*;
use burn::tensor::Distribution;
use cnnzoo_models::registry::model_names;
use cnnzoo_models::{Model, ModelConfig, lookup};
use serde_json::json;

/// SPEC §5: torchvision's `sum(p.numel() for p in model.parameters())` with `weights=None`.
const TORCHVISION_COUNTS: [(&str, usize); 27] = [
    ("resnet18", 11_689_512),
    ("resnet34", 21_797_672),
    ("resnet50", 25_557_032),
    ("resnet101", 44_549_160),
    ("resnet152", 60_192_808),
    ("resnext50_32x4d", 25_028_904),
    ("densenet121", 7_978_856),
    ("densenet161", 28_681_000),
    ("densenet169", 14_149_480),
    ("densenet201", 20_013_928),
    ("inception_v1", 6_624_904),
    ("inception_v3", 27_161_264),
    ("vgg11", 132_863_336),
    ("vgg16", 138_357_544),
    ("vgg16_bn", 138_365_992),
    ("alexnet", 61_100_840),
    ("mobilenet_v2", 3_504_872),
    ("mobilenet_v3_large", 5_483_032),
    ("mnasnet1_0", 4_383_312),
    ("efficientnet_b0", 5_288_548),
    ("efficientnet_b1", 7_794_184),
    ("efficientnet_b2", 9_109_994),
    ("efficientnet_b3", 12_233_232),
    ("efficientnet_b4", 19_341_616),
    ("efficientnet_b5", 30_389_784),
    ("efficientnet_b6", 43_040_704),
    ("efficientnet_b7", 66_347_960),
];

#[test]
fn parameter_counts_match_torchvision_at_1000_classes() {
    let wrong: Vec<String> = TORCHVISION_COUNTS
        .iter()
        .filter_map(|&(name, expected)| {
            let found = lookup(name).unwrap().num_params(1000);
            (found != expected).then(|| format!("{name}: {found} != {expected}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn registry_lists_every_variant_with_family_and_input_size() {
    let expected_sizes = [
        ("inception_v3", 299),
        ("efficientnet_b0", 224),
        ("efficientnet_b1", 240),
        ("efficientnet_b2", 260),
        ("efficientnet_b3", 300),
        ("efficientnet_b4", 380),
        ("efficientnet_b5", 456),
        ("efficientnet_b6", 528),
        ("efficientnet_b7", 600),
    ];
    for (name, _) in TORCHVISION_COUNTS {
        let entry = lookup(name).unwrap();
        let size = expected_sizes
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(224, |&(_, s)| s);
        assert_eq!(entry.input_size, size, "{name}");
        assert_eq!(entry.config(10).family().num_classes(), 10, "{name}");
        let family = match name {
            n if n.starts_with("resnet") => "resnet",
            n if n.starts_with("resnext") => "resnext",
            n if n.starts_with("densenet") => "densenet",
            n if n.starts_with("inception") => "inception",
            n if n.starts_with("vgg") => "vgg",
            n if n.starts_with("mobilenet") => "mobilenet",
            n if n.starts_with("efficientnet") => "efficientnet",
            n => n.trim_end_matches("1_0"),
        };
        assert_eq!(entry.family, family, "{name}");
    }
    // The CIFAR models come first, then the torchvision zoo.
    assert_eq!(model_names().len(), 4 + TORCHVISION_COUNTS.len());
}

#[test]
fn the_default_configs_are_torchvisions() {
    for (name, _) in TORCHVISION_COUNTS {
        let config = serde_json::to_value(lookup(name).unwrap().config(1000)).unwrap();
        assert_eq!(config["num_classes"], json!(1000), "{name}");
        assert_eq!(config["cifar_stem"], json!(false), "{name}");
    }
}

#[test]
fn cifar_stem_is_a_model_parameter() {
    let entry = lookup("resnet18").unwrap();
    let overrides = json!({"cifar_stem": true});
    let config = entry
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let ModelConfig::ResNetImageNet(c) = &config else {
        panic!("resnet18 is a torchvision ResNet")
    };
    assert!(c.cifar_stem);
    // A 3x3 first convolution instead of 7x7: 64 x 3 x (49 - 9) fewer weights.
    assert_eq!(
        entry.num_params(10) - config.init(&Device::flex()).num_trainable_params(),
        64 * 3 * 40
    );
    let text = serde_json::to_string(&config).unwrap();
    let back: ModelConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(serde_json::to_string(&back).unwrap(), text);
}

#[test]
fn configs_round_trip_through_json() {
    for (name, _) in TORCHVISION_COUNTS {
        let config = lookup(name).unwrap().config(7);
        let text = serde_json::to_string(&config).unwrap();
        let back: ModelConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text, "{name}");
        assert_eq!(back.family().num_classes(), 7, "{name}");
    }
}

/// One training step's forward and backward on a batch of 32x32 images, as `cnnzoo train` runs
/// it: 10 logits per image, finite, and a gradient for every trainable tensor.
fn trains_on_cifar_images(name: &str, overrides: serde_json::Value) {
    let device = Device::flex();
    device.seed(7);
    let device = device.autodiff();
    let config = lookup(name)
        .unwrap()
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let model = config.init(&device);
    let images = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let (logits, aux) = model.forward_with_aux(images);
    assert_eq!(logits.dims(), [4, 10], "{name}");
    let values = logits.to_data().try_to_vec::<f32>().unwrap();
    assert!(values.iter().all(|v| v.is_finite()), "{name}: {values:?}");
    let targets = Tensor::<1, Int>::from_ints([0, 3, 5, 9], &device);
    let loss_fn = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let mut loss = loss_fn.forward(logits, targets.clone());
    if let Some(aux) = aux {
        assert_eq!(aux.dims(), [4, 10], "{name}: auxiliary logits");
        loss = loss + loss_fn.forward(aux, targets).mul_scalar(0.4);
    }
    let grads = loss.backward();
    common::assert_every_parameter_has_a_gradient(&model, &grads, 10, name);
}

// Most families take a 32x32 image through torchvision's own stem (down to 1x1), which keeps
// these tests quick; inception_v3 and alexnet need the CIFAR stem for it, VGG takes it, and the
// other families' CIFAR stems run in `cifar_stems_run_on_cifar_images`.

#[test]
fn resnets_train_on_cifar_images() {
    trains_on_cifar_images("resnet18", json!({}));
    trains_on_cifar_images("resnext50_32x4d", json!({}));
}

#[test]
fn densenet_trains_on_cifar_images() {
    trains_on_cifar_images("densenet121", json!({"drop_rate": 0.1}));
}

#[test]
fn inceptions_train_on_cifar_images() {
    trains_on_cifar_images("inception_v1", json!({}));
    // With its auxiliary head, as torchvision's recipe trains it.
    trains_on_cifar_images("inception_v3", json!({"cifar_stem": true}));
}

#[test]
fn vgg_and_alexnet_train_on_cifar_images() {
    trains_on_cifar_images("vgg11", json!({"cifar_stem": true}));
    trains_on_cifar_images("alexnet", json!({"cifar_stem": true}));
}

#[test]
fn mobile_networks_train_on_cifar_images() {
    trains_on_cifar_images("mobilenet_v2", json!({}));
    trains_on_cifar_images("mobilenet_v3_large", json!({}));
    trains_on_cifar_images("mnasnet1_0", json!({}));
    // Stochastic depth off: a block whose branch drops for the whole batch has no gradient.
    trains_on_cifar_images("efficientnet_b0", json!({"stochastic_depth_prob": 0.0}));
}

#[test]
fn cifar_stems_run_on_cifar_images() {
    let device = Device::flex();
    let image = Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    for name in [
        "resnet18",
        "densenet121",
        "inception_v1",
        "mobilenet_v2",
        "mobilenet_v3_large",
        "mnasnet1_0",
        "efficientnet_b0",
    ] {
        let config = lookup(name)
            .unwrap()
            .config_with(10, json!({"cifar_stem": true}).as_object().unwrap())
            .unwrap();
        let model = config.init(&device);
        assert_eq!(model.forward(image.clone()).dims(), [1, 10], "{name}");
        if let Model::ResNetImageNet(net) = &model {
            // 3x3 stride 1, no max-pool: the last stage sees 4x4 instead of 1x1.
            assert_eq!(net.conv1.kernel_size, [3, 3]);
            assert_eq!(net.conv1.stride, [1, 1]);
            assert!(net.maxpool.is_none());
        }
    }
}

#[test]
fn other_variants_run_on_a_cifar_image() {
    // The variants no other test runs, which differ from their family's other members in more
    // than the counts checked above: bottleneck blocks without groups, DenseNet's growth 48,
    // VGG with batch norm, EfficientNet's deepest and widest scaling. Each with torchvision's
    // stem at inference: weight initialisation dominates the time (VGG: 138M weights).
    let device = Device::flex();
    let image = Tensor::<4>::random([1, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    for name in ["resnet50", "densenet161", "vgg16_bn", "efficientnet_b7"] {
        let logits = lookup(name)
            .unwrap()
            .config(10)
            .init(&device)
            .forward(image.clone());
        assert_eq!(logits.dims(), [1, 10], "{name}");
        let values = logits.to_data().try_to_vec::<f32>().unwrap();
        assert!(values.iter().all(|v| v.is_finite()), "{name}: {values:?}");
    }
}

#[test]
fn inception_v3_names_the_input_its_imagenet_stem_needs() {
    let plain = lookup("inception_v3").unwrap().config(10);
    assert_eq!(plain.min_input_side(), Some(75));
    let cifar = lookup("inception_v3")
        .unwrap()
        .config_with(10, json!({"cifar_stem": true}).as_object().unwrap())
        .unwrap();
    assert_eq!(cifar.min_input_side(), None);
    assert_eq!(
        lookup("resnet18").unwrap().config(10).min_input_side(),
        None
    );
    // 75 pixels are enough for the ImageNet stem.
    let device = Device::flex();
    let image = Tensor::<4>::random([1, 3, 75, 75], Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(plain.init(&device).forward(image).dims(), [1, 10]);
}
