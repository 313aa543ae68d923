//! The four CIFAR-10 architectures against the reference: parameter counts, initialisation,
//! and a forward/backward pass on the CPU backend.
mod common;

use burn::module::Param;
use burn::prelude::*;
use burn::tensor::Distribution;
use cnnzoo_models::layers::{ParamPath, ParamVisitor, visit_params};
use cnnzoo_models::{Act, Model, ModelConfig, lookup};

fn cpu() -> Device {
    let device = Device::flex();
    device.seed(7);
    device
}

/// The CIFAR networks of the reference: trainable parameters at 10 classes (SPEC §1) and the
/// channels their linear layer reads.
const CIFAR_NETWORKS: [(&str, usize, usize); 4] = [
    ("googlenet", 260_650, 128),
    ("resnet", 272_378, 64),
    ("resnet_preact", 272_250, 64),
    ("densenet", 239_146, 184),
];

#[test]
fn parameter_counts_match_the_reference() {
    for (name, expected, _) in CIFAR_NETWORKS {
        assert_eq!(lookup(name).unwrap().num_params(10), expected, "{name}");
    }
}

#[test]
fn parameter_counts_follow_the_number_of_classes() {
    // Only the final linear layer depends on the classes: (c_last + 1) weights per class.
    for (name, _, c_last) in CIFAR_NETWORKS {
        let entry = lookup(name).unwrap();
        assert_eq!(
            entry.num_params(100) - entry.num_params(10),
            90 * (c_last + 1),
            "{name}"
        );
    }
}

/// Collects every float tensor with its path, e.g. `blocks.0.Standard.conv1.weight`.
#[derive(Default)]
struct Tensors(Vec<(String, Vec<usize>, Vec<f32>)>);

impl ParamVisitor for Tensors {
    fn visit<const D: usize>(&mut self, path: &ParamPath, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let values = tensor.to_data().try_to_vec::<f32>().unwrap();
        self.0.push((path.joined(), tensor.dims().to_vec(), values));
    }
}

fn tensors(model: &Model) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let mut tensors = Tensors::default();
    visit_params(model, &mut tensors);
    tensors.0
}

fn mean_std(values: &[f32]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    (mean, var.sqrt())
}

/// Checks conv weights against Kaiming-normal, conv biases and linear layers against PyTorch's
/// default uniform bound, and batch norm against 1/0.
fn assert_reference_init(name: &str, fan_out: bool) {
    let model = lookup(name).unwrap().config(10).init(&cpu());
    let gain = 2.0_f64.sqrt();
    let mut checked_convs = 0;
    for (path, dims, values) in tensors(&model) {
        let leaf = path.rsplit('.').next().unwrap();
        if dims.len() == 4 && leaf == "weight" {
            let [c_out, c_in, kh, kw] = [dims[0], dims[1], dims[2], dims[3]];
            let fan = if fan_out {
                c_out * kh * kw
            } else {
                c_in * kh * kw
            } as f64;
            let expected = gain / fan.sqrt();
            let (mean, std) = mean_std(&values);
            // Only tensors large enough for the sample std to be a tight estimate.
            if values.len() >= 2000 {
                assert!(
                    (std / expected - 1.0).abs() < 0.1,
                    "{name} {path}: std {std} vs {expected}"
                );
                assert!(mean.abs() < 0.1 * expected, "{name} {path}: mean {mean}");
                checked_convs += 1;
            }
        } else if leaf == "gamma" || path.ends_with("running_var") {
            assert!(values.iter().all(|&v| v == 1.0), "{name} {path}");
        } else if leaf == "beta" || path.ends_with("running_mean") {
            assert!(values.iter().all(|&v| v == 0.0), "{name} {path}");
        } else if path.starts_with("output_net") || (leaf == "bias" && path.contains("conv")) {
            let fan_in = if dims.len() == 2 { dims[0] } else { 0 };
            if fan_in > 0 {
                let bound = 1.0 / (fan_in as f32).sqrt();
                assert!(values.iter().all(|v| v.abs() <= bound), "{name} {path}");
                let max = values.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(
                    max > 0.8 * bound,
                    "{name} {path}: uniform should reach near its bound"
                );
            }
        }
    }
    assert!(
        checked_convs >= 10,
        "{name}: only {checked_convs} conv tensors checked"
    );
}

#[test]
fn resnets_use_kaiming_normal_fan_out() {
    assert_reference_init("resnet", true);
    assert_reference_init("resnet_preact", true);
}

#[test]
fn googlenet_and_densenet_use_kaiming_normal_fan_in() {
    assert_reference_init("googlenet", false);
    assert_reference_init("densenet", false);
}

#[test]
fn conv_biases_keep_pytorch_default_bound() {
    // GoogleNet's convolutions have biases; the reference leaves them at PyTorch's default.
    let model = lookup("googlenet").unwrap().config(10).init(&cpu());
    let Model::GoogleNet(net) = &model else {
        panic!("googlenet builds a GoogleNet")
    };
    let conv = &net.inception_blocks[2].conv_5x5[1].conv;
    let [_, c_in, kh, kw] = conv.weight.dims();
    let bound = 1.0 / ((c_in * kh * kw) as f32).sqrt();
    let bias = conv
        .bias
        .as_ref()
        .unwrap()
        .val()
        .to_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(bias.iter().all(|b| b.abs() <= bound));
    assert!(bias.iter().any(|b| b.abs() > bound / 4.0));
}

fn forward_backward(config: ModelConfig, label: &str) {
    let device = cpu().autodiff();
    let model = config.init(&device);
    let images = Tensor::<4>::random([4, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let logits = model.forward(images);
    assert_eq!(logits.dims(), [4, 10], "{label}");
    let values = logits.to_data().try_to_vec::<f32>().unwrap();
    assert!(
        values.iter().all(|v| v.is_finite()),
        "{label}: non-finite logits"
    );
    let targets = Tensor::<1, Int>::from_ints([0, 3, 5, 9], &device);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits, targets);
    let grads = loss.backward();
    common::assert_every_parameter_has_a_gradient(&model, &grads, 20, label);
}

#[test]
fn every_model_trains_on_the_cpu_backend() {
    for (name, _, _) in CIFAR_NETWORKS {
        forward_backward(lookup(name).unwrap().config(10), name);
    }
}

#[test]
fn every_activation_builds_and_trains() {
    for act in Act::REFERENCE {
        let config = ModelConfig::ResNet(
            cnnzoo_models::resnet::ResNetCifarConfig::new()
                .with_activation(act)
                .with_num_blocks(vec![1, 1, 1]),
        );
        forward_backward(config, act.name());
    }
}

#[test]
fn eval_mode_uses_running_statistics() {
    // On a device without autodiff, batch norm normalises with its running statistics, so a
    // sample's logits do not depend on the rest of the batch.
    let device = cpu();
    let model = lookup("resnet").unwrap().config(10).init(&device);
    let images = Tensor::<4>::random([3, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
    let batch = model
        .forward(images.clone())
        .to_data()
        .try_to_vec::<f32>()
        .unwrap();
    let single = model
        .forward(images.narrow(0, 0, 1))
        .to_data()
        .try_to_vec::<f32>()
        .unwrap();
    for (a, b) in batch[..10].iter().zip(&single) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }
}

/// Drop-path on the CIFAR ResNets: probabilities rise linearly from 0 at the first block, the
/// blocks stay the identity at inference, and training forwards of the same images differ.
#[test]
fn drop_path_rises_linearly_and_only_acts_while_training() {
    use cnnzoo_models::resnet::ResidualBlockCifar;
    for block in ["standard", "preact"] {
        let overrides = serde_json::json!({
            "block": block, "num_blocks": [2, 2], "channels": [4, 8], "drop_path": 0.4
        });
        let config = lookup("resnet")
            .unwrap()
            .config_with(10, overrides.as_object().unwrap())
            .unwrap();
        let ModelConfig::ResNet(resnet) = &config else {
            panic!("not a CIFAR ResNet")
        };
        let device = Device::flex();
        device.seed(3);
        let network = resnet.init(&device);
        let probabilities: Vec<f64> = network
            .blocks
            .iter()
            .map(|b| {
                let drop = match b {
                    ResidualBlockCifar::Standard(b) => &b.drop_path,
                    ResidualBlockCifar::PreAct(b) => &b.drop_path,
                };
                drop.as_ref().map_or(0.0, |d| d.prob)
            })
            .collect();
        assert_eq!(probabilities, [0.0, 0.1, 0.2, 0.30000000000000004]);

        let images = Tensor::<4>::random([8, 3, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        let inference = |x: Tensor<4>| network.forward(x).into_data();
        assert_eq!(inference(images.clone()), inference(images.clone()));
        let autodiff = device.clone().autodiff();
        let training = resnet.init(&autodiff);
        let x = images.to_device(&autodiff);
        let (a, b) = (training.forward(x.clone()), training.forward(x));
        assert!(
            (a - b).abs().max().into_scalar::<f32>() > 1e-6,
            "{block}: two training forwards drew the same drops"
        );
    }
}
