//! Data parallel training through burn-train's multi-device strategy: on a network without
//! batch norm (whose per-device statistics would differ by design), two devices that each
//! take half of a batch must make the update one device makes on the whole batch.
use std::sync::Arc;

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{Device, Tensor};
use burn::train::{Learner, SupervisedTraining};
use cnnzoo_cifar::{CifarBatcher, CifarDataset, CifarSet, EpochLoader};
use cnnzoo_models::lookup;
use cnnzoo_train::classifier::Classifier;
use cnnzoo_train::config::{OptimizerConfig, ScheduleConfig};
use cnnzoo_train::optim::build_optimizer;
use cnnzoo_train::parallel::{Parallel, Placement, place};
use cnnzoo_train::progress::LineRenderer;
use cnnzoo_train::schedule::EpochSchedule;

const SIDE: usize = 64;
const IMAGES: usize = 8;

/// Every parameter of a module, flattened in visiting order.
#[derive(Default)]
struct Flatten(Vec<f32>);

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let values = param
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 weights");
        self.0.extend(values);
    }
}

fn weights(classifier: &Classifier) -> Vec<f32> {
    let mut flatten = Flatten::default();
    classifier.model.visit(&mut flatten);
    flatten.0
}

/// Eight 64x64 images with distinct pixels and labels.
fn images() -> CifarSet {
    let bytes = 3 * SIDE * SIDE;
    CifarSet {
        images: (0..IMAGES * bytes)
            .map(|i| ((i * 7919) % 251) as u8)
            .collect::<Vec<u8>>()
            .into(),
        labels: (0..IMAGES as u8).collect(),
        classes: (0..10).map(|c| format!("class {c}")).collect(),
        side: SIDE,
    }
}

/// One epoch of one step of plain SGD on the eight images (a global batch of 8), from weights
/// seeded alike, with each device's loss scaled by `loss_scale`.
fn one_step(placement: &Placement, loss_scale: f32) -> Classifier {
    let device = placement.main().device.clone();
    device.seed(3);
    // AlexNet has no batch norm; without dropout every device computes the same function.
    let overrides = serde_json::json!({"dropout": 0.0});
    let config = lookup("alexnet")
        .unwrap()
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let mut classifier = Classifier::new(config.init(&device.clone().autodiff()));
    classifier.loss_scale = loss_scale;
    let optimizer_config = OptimizerConfig::Sgd {
        lr: 0.01,
        momentum: 0.0,
        nesterov: false,
        weight_decay: 0.0,
        grad_clip: None,
        no_decay_norm_bias: false,
    };
    let optimizer = build_optimizer(&optimizer_config, &classifier);
    let schedule = EpochSchedule::new(&ScheduleConfig::default(), 0.01, 1, 1);
    let per_device = placement.per_device_batch(IMAGES).unwrap();
    let dataset = CifarDataset::new(images());
    let train = EpochLoader::new(dataset.clone(), CifarBatcher::eval(), per_device, &device)
        .unwrap()
        .shuffle(true)
        .drop_last(true)
        .with_shards(placement.count());
    let valid = EpochLoader::eval(dataset, IMAGES, 0, &device).unwrap();
    let folder = tempfile::tempdir().unwrap();
    let result = SupervisedTraining::new(folder.path(), Arc::new(train), Arc::new(valid))
        .with_training_strategy(placement.execution_strategy().into())
        .with_application_logger(None)
        .num_epochs(1)
        .renderer(Box::new(LineRenderer::default()))
        .launch(Learner::new(classifier, optimizer, schedule));
    assert!(result.error.is_none(), "{:?}", result.error);
    result.model
}

fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn two_devices_make_the_update_one_device_makes_on_the_same_batch() {
    // One device trains on the calling thread, and AlexNet's step needs more than a test
    // thread's 2 MiB of stack (the binary trains on its main thread, with 8 MiB).
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(check_two_devices)
        .unwrap()
        .join()
        .unwrap();
}

fn check_two_devices() {
    let one = place("cpu", None, Parallel::Auto).unwrap();
    let two = place("cpu", Some("cpu,cpu"), Parallel::Multi).unwrap();
    assert_eq!(two.loss_scale(), 0.5);

    let start = {
        let device = Device::flex();
        device.seed(3);
        let config = lookup("alexnet")
            .unwrap()
            .config_with(10, &Default::default())
            .unwrap();
        weights(&Classifier::new(config.init(&device)))
    };
    let single = weights(&one_step(&one, one.loss_scale()));
    let double = weights(&one_step(&two, two.loss_scale()));

    let update = max_difference(&single, &start);
    assert!(
        update > 1e-4,
        "the step changed the weights by at most {update}"
    );
    let difference = max_difference(&single, &double);
    assert!(
        difference <= 1e-4 * update,
        "two devices moved a weight {difference} away from one device's update (largest change {update})"
    );

    // The check can fail: without the 1/N scale, burn's sum doubles the update.
    let unscaled = weights(&one_step(&two, 1.0));
    let doubled = max_difference(&single, &unscaled);
    assert!(
        doubled > 0.5 * update,
        "an unscaled two-device step came within {doubled} of one device's (largest change {update})"
    );
}
