//! The operations the zoo writes itself, against PyTorch's numbers (tests/fixtures/zoo/ops.json,
//! written by scripts/make_zoo_fixtures.py): squeeze-excitation, hard-swish, hard-sigmoid, SiLU,
//! ReLU6, depthwise and grouped convolution; stochastic depth by its definition; and the
//! initialisations torchvision uses where burn's would differ.
use burn::module::{Module, Param};
use burn::prelude::*;
use burn::tensor::Distribution;
use cnnzoo_models::layers::Convolution;
use cnnzoo_models::layers::{Act, ConvSpec, Init, SqueezeExcitation, StochasticDepth};
use cnnzoo_models::{Model, lookup};
use serde_json::Value;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zoo/ops.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn input(fixture: &Value, device: &Device) -> Tensor<4> {
    let shape: Vec<usize> = fixture["x_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    tensor(floats(&fixture["x"]), shape.try_into().unwrap(), device)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.to_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(label: &str, found: &[f32], expected: &[f32]) {
    assert_eq!(found.len(), expected.len(), "{label}");
    for (i, (f, e)) in found.iter().zip(expected).enumerate() {
        assert!(
            (f - e).abs() <= 1e-5 * e.abs().max(1.0),
            "{label}[{i}]: {f} vs PyTorch's {e}"
        );
    }
}

fn load_conv(conv: &mut Convolution, weight: &Value, bias: Option<&Value>, device: &Device) {
    let shape = conv.weight.dims();
    conv.weight = Param::from_tensor(tensor(floats(weight), shape, device));
    conv.bias = bias.map(|b| Param::from_tensor(tensor(floats(b), [shape[0]], device)));
}

#[test]
fn activations_match_pytorch() {
    let fixture = fixture();
    let device = Device::flex();
    let x = input(&fixture, &device);
    for (name, act) in [
        ("hardswish", Act::HardSwish),
        ("hardsigmoid", Act::HardSigmoid),
        ("silu", Act::Silu),
        ("relu6", Act::Relu6),
    ] {
        assert_close(
            name,
            &values(act.forward(x.clone())),
            &floats(&fixture[name]),
        );
    }
}

#[test]
fn squeeze_excitation_matches_pytorch() {
    let fixture = fixture();
    let device = Device::flex();
    let x = input(&fixture, &device);
    for (name, act, gate) in [
        ("se_silu_sigmoid", Act::Silu, Act::Sigmoid),
        ("se_relu_hardsigmoid", Act::Relu, Act::HardSigmoid),
    ] {
        let f = &fixture[name];
        let mut se = SqueezeExcitation::new(8, 4, act, gate, &device);
        load_conv(
            &mut se.fc1,
            &f["fc1.weight"]["values"],
            Some(&f["fc1.bias"]["values"]),
            &device,
        );
        load_conv(
            &mut se.fc2,
            &f["fc2.weight"]["values"],
            Some(&f["fc2.bias"]["values"]),
            &device,
        );
        assert_close(name, &values(se.forward(x.clone())), &floats(&f["out"]));
    }
}

#[test]
fn depthwise_and_grouped_convolutions_match_pytorch() {
    let fixture = fixture();
    let device = Device::flex();
    let x = input(&fixture, &device);
    let mut depthwise =
        ConvSpec::new(8, 8, 3)
            .stride(2)
            .depthwise()
            .init(Init::Zeros, None, &device);
    load_conv(
        &mut depthwise,
        &fixture["depthwise"]["weight"],
        None,
        &device,
    );
    assert_close(
        "depthwise",
        &values(depthwise.forward(x.clone())),
        &floats(&fixture["depthwise"]["out"]),
    );
    let mut grouped = ConvSpec::new(8, 4, 3)
        .groups(2)
        .init(Init::Zeros, None, &device);
    load_conv(&mut grouped, &fixture["grouped"]["weight"], None, &device);
    assert_close(
        "grouped",
        &values(grouped.forward(x)),
        &floats(&fixture["grouped"]["out"]),
    );
}

#[test]
fn stochastic_depth_is_the_identity_at_inference() {
    let device = Device::flex();
    let x = Tensor::<4>::random([8, 2, 3, 3], Distribution::Normal(0.0, 1.0), &device);
    let drop = StochasticDepth::new(0.5);
    assert_eq!(values(drop.forward(x.clone())), values(x.clone()));
    // Frozen on the training device, as `valid` leaves it for validation.
    let x = Tensor::<4>::from_data(x.to_data(), &device.autodiff());
    let frozen = StochasticDepth::new(0.5).freeze();
    assert_eq!(values(frozen.forward(x.clone())), values(x.clone()));
    assert_eq!(
        values(StochasticDepth::new(0.0).forward(x.clone())),
        values(x)
    );
}

#[test]
fn stochastic_depth_drops_whole_samples_while_training() {
    // torchvision's "row" mode: each sample's branch is zeroed with probability p, the others
    // scaled by 1 / (1 - p), so the expectation is unchanged.
    let device = Device::flex();
    device.seed(3);
    let device = device.autodiff();
    let rows = 2000;
    let x = Tensor::<4>::ones([rows, 2, 3, 3], &device);
    let p = 0.25;
    let y = values(StochasticDepth::new(p).forward(x));
    let mut dropped = 0;
    for row in y.chunks(18) {
        if row.iter().all(|&v| v == 0.0) {
            dropped += 1;
        } else {
            assert!(row.iter().all(|&v| v == 1.0 / 0.75), "{row:?}");
        }
    }
    // Binomial(2000, 0.25): mean 500, std 19.4.
    assert!(
        (420..=580).contains(&dropped),
        "{dropped} of {rows} dropped"
    );
}

#[test]
fn stochastic_depth_grows_with_depth_in_efficientnet() {
    let config = lookup("efficientnet_b0").unwrap().config(10);
    let Model::EfficientNet(net) = config.init(&Device::flex()) else {
        panic!("efficientnet_b0 is an EfficientNet")
    };
    let blocks: Vec<_> = net.stages.iter().flatten().collect();
    assert_eq!(blocks.len(), 16);
    for (id, block) in blocks.iter().enumerate() {
        // torchvision: p = 0.2 * id / 16, applied only on the skip connections.
        match &block.stochastic_depth {
            Some(drop) => {
                assert!(block.residual);
                assert!(
                    (drop.prob - 0.2 * id as f64 / 16.0).abs() < 1e-12,
                    "block {id}"
                );
            }
            None => assert!(!block.residual, "block {id}"),
        }
    }
}

fn mean_std(t: Tensor<4>) -> (f64, f64) {
    let v = values(t);
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = v
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

#[test]
fn kaiming_fan_out_counts_every_output_channel_of_a_grouped_convolution() {
    // PyTorch: fan_out = out_channels * kh * kw whatever the groups; burn's own initializer
    // divides by the groups, which for a depthwise convolution is sqrt(channels) times too wide.
    let device = Device::flex();
    for (spec, fan_out) in [
        (ConvSpec::new(512, 512, 3).depthwise(), 512 * 9),
        (ConvSpec::new(256, 256, 3).groups(32), 256 * 9),
    ] {
        let conv = spec.init(Init::KAIMING_FAN_OUT, None, &device);
        let (mean, std) = mean_std(conv.weight.val());
        let expected = (2.0 / fan_out as f64).sqrt();
        assert!(
            (std / expected - 1.0).abs() < 0.05,
            "std {std} vs {expected}"
        );
        assert!(mean.abs() < 0.05 * expected, "mean {mean}");
    }
}

#[test]
fn classifiers_are_initialised_as_torchvision_does() {
    let device = Device::flex();
    let classifier = |name: &str| {
        let model = lookup(name).unwrap().config(10).init(&device);
        let linear = match model {
            Model::MobileNetV2(net) => net.classifier,
            Model::MnasNet(net) => net.classifier,
            Model::EfficientNet(net) => net.classifier,
            Model::DenseNetImageNet(net) => net.classifier,
            _ => unreachable!(),
        };
        let weight = values(linear.weight.val());
        let bias = values(linear.bias.unwrap().val());
        (weight, bias)
    };
    let max_abs = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
    // normal(0, 0.01), bias 0.
    let (w, b) = classifier("mobilenet_v2");
    let std = (w.iter().map(|x| x * x).sum::<f32>() / w.len() as f32).sqrt();
    assert!((std / 0.01 - 1.0).abs() < 0.05, "mobilenet_v2 std {std}");
    assert!(b.iter().all(|&x| x == 0.0));
    // kaiming_uniform_(mode="fan_out", nonlinearity="sigmoid"): bound sqrt(3 / classes).
    let (w, b) = classifier("mnasnet1_0");
    let bound = (3.0f32 / 10.0).sqrt();
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.95 * bound);
    assert!(b.iter().all(|&x| x == 0.0));
    // uniform(±1 / sqrt(classes)).
    let (w, b) = classifier("efficientnet_b0");
    let bound = 1.0 / 10f32.sqrt();
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.95 * bound);
    assert!(b.iter().all(|&x| x == 0.0));
    // PyTorch's default weight, bias 0.
    let (w, b) = classifier("densenet121");
    let bound = 1.0 / 1024f32.sqrt();
    assert!(max_abs(&w) <= bound && max_abs(&w) > 0.95 * bound);
    assert!(b.iter().all(|&x| x == 0.0));
}

#[test]
fn convolutions_are_initialised_as_torchvision_does() {
    let device = Device::flex();
    // ResNet, VGG: Kaiming normal, fan-out, ReLU gain; VGG's biases 0.
    let Model::ResNetImageNet(resnet) = lookup("resnet18").unwrap().config(10).init(&device) else {
        unreachable!()
    };
    let (_, std) = mean_std(resnet.layers[3][1].conv2.weight.val());
    let expected = (2.0f64 / (512.0 * 9.0)).sqrt();
    assert!((std / expected - 1.0).abs() < 0.05, "resnet18 std {std}");
    // Inception v3: truncated normal, std 0.1 (0.01 for the auxiliary head's 5x5).
    let Model::InceptionV3(inception) = lookup("inception_v3").unwrap().config(10).init(&device)
    else {
        unreachable!()
    };
    let (_, std) = mean_std(inception.mixed_6e.branch7x7dbl_3.conv.weight.val());
    assert!((std / 0.1 - 1.0).abs() < 0.05, "inception_v3 std {std}");
    let aux = inception.aux_logits.unwrap();
    let (_, std) = mean_std(aux.conv1.conv.weight.val());
    assert!(
        (std / 0.01 - 1.0).abs() < 0.05,
        "inception_v3 aux std {std}"
    );
    // MobileNet v2's depthwise convolutions: Kaiming fan-out with PyTorch's fan.
    let Model::MobileNetV2(mobilenet) = lookup("mobilenet_v2").unwrap().config(10).init(&device)
    else {
        unreachable!()
    };
    let (_, std) = mean_std(mobilenet.blocks[15].depthwise.conv.weight.val());
    let expected = (2.0f64 / (960.0 * 9.0)).sqrt();
    assert!(
        (std / expected - 1.0).abs() < 0.05,
        "mobilenet_v2 depthwise std {std}"
    );
}
