//! The learner's view of a zoo model: logits, cross-entropy (against soft targets when label
//! smoothing or mixup makes them), the moving average of its weights, and the outputs burn-train's
//! classification metrics read.
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use burn::tensor::ExecutionError;
use burn::tensor::activation::log_softmax;
use burn::train::metric::{Adaptor, ItemLazy, LossInput};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use cnnzoo_cifar::CifarBatch;
use cnnzoo_models::Model;

use crate::accuracy::{LogitsInput, RawLogitsInput};
use crate::ema::Ema;
use crate::grad_clip::{GradClip, clip_gradients};

/// torchvision's reference recipe trains Inception v3 on its main loss plus 0.4 times its
/// auxiliary classifier's loss (`references/classification/train.py`).
pub const AUX_LOSS_WEIGHT: f64 = 0.4;

/// burn-train's step traits live outside the models crate, so training goes through this wrapper;
/// every checkpoint cnnzoo writes is a record of it.
#[derive(Module, Debug)]
pub struct Classifier {
    pub model: Model,
    /// The moving average of `model`'s weights, when the recipe keeps one (`[ema]`).
    pub ema: Option<Ema>,
    /// `optimizer.grad_clip`, applied to the gradients the optimizer steps with (on several
    /// devices, to their sum, as PyTorch clips after DDP's all-reduce); not part of the record.
    #[module(skip)]
    pub grad_clip: Option<GradClip>,
    /// Multiplies the training loss before its backward pass: 1/N on N devices whose gradients
    /// burn sums ([`crate::parallel::Placement::loss_scale`]), else 1. The loss the metrics
    /// see is not scaled.
    #[module(skip)]
    pub loss_scale: f32,
}

impl Classifier {
    /// A classifier without a moving average whose training steps leave the gradients as they
    /// are.
    pub fn new(model: Model) -> Self {
        Self {
            model,
            ema: None,
            grad_clip: None,
            loss_scale: 1.0,
        }
    }

    /// The network that validation, eval and predict run: the moving average when there is one.
    pub fn inference_model(&self) -> &Model {
        self.ema.as_ref().map_or(&self.model, |ema| &ema.model)
    }

    /// Logits and their cross-entropy: what validation, eval and the metrics see.
    pub fn forward_classification(&self, batch: CifarBatch) -> ClassificationOutput {
        classify(self.inference_model(), batch)
    }

    /// The training loss: cross-entropy against the batch's soft targets when it has them, else
    /// its classes. A network with an auxiliary classifier (inception_v3) adds that head's loss,
    /// weighted [`AUX_LOSS_WEIGHT`], so the auxiliary head it counts in its parameters is
    /// trained; the metrics still read the main logits.
    pub fn forward_training(&self, batch: CifarBatch) -> ClassificationOutput {
        let (logits, aux) = self.model.forward_with_aux(batch.images);
        let loss_of = |logits: Tensor<2>| match &batch.soft_targets {
            Some(targets) => soft_target_cross_entropy(logits, targets.clone()),
            None => CrossEntropyLossConfig::new()
                .init(&logits.device())
                .forward(logits, batch.targets.clone()),
        };
        let mut loss = loss_of(logits.clone());
        if let Some(aux) = aux {
            loss = loss + loss_of(aux).mul_scalar(AUX_LOSS_WEIGHT);
        }
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

/// `model`'s logits of the batch and their cross-entropy against its classes.
fn classify(model: &Model, batch: CifarBatch) -> ClassificationOutput {
    let logits = model.forward(batch.images);
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits.clone(), batch.targets.clone());
    ClassificationOutput::new(loss, logits, batch.targets)
}

/// timm's `SoftTargetCrossEntropy`: the batch mean of `-sum(targets * log_softmax(logits))`.
pub fn soft_target_cross_entropy(logits: Tensor<2>, targets: Tensor<2>) -> Tensor<1> {
    (targets * log_softmax(logits, 1)).sum_dim(1).mean().neg()
}

impl TrainStep for Classifier {
    type Input = CifarBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: CifarBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.forward_training(batch);
        let grads = if self.loss_scale == 1.0 {
            output.loss.backward()
        } else {
            output.loss.clone().mul_scalar(self.loss_scale).backward()
        };
        TrainOutput::new(self, grads, output)
    }

    /// Gradient clipping, the optimizer's step, then the moving average's.
    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr_module: ModuleLearningRate,
        mut grads: GradientsParams,
    ) -> Self {
        if let Some(clip) = self.grad_clip {
            clip_gradients(&mut grads, &self, clip);
        }
        let stepped = optim.step(lr_module, self, grads);
        Self {
            ema: stepped.ema.map(|ema| ema.updated(&stepped.model)),
            ..stepped
        }
    }
}

/// What validation sees: the figures of the weights the run keeps (the moving average when there
/// is one), and beside a moving average those of the trained weights too.
pub struct ValidationOutput {
    pub kept: ClassificationOutput,
    pub trained: Option<ClassificationOutput>,
}

impl ItemLazy for ValidationOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(Self {
            kept: self.kept.sync()?,
            trained: self.trained.map(ItemLazy::sync).transpose()?,
        })
    }
}

impl Adaptor<LossInput> for ValidationOutput {
    fn adapt(&self) -> LossInput {
        self.kept.adapt()
    }
}

impl Adaptor<LogitsInput> for ValidationOutput {
    fn adapt(&self) -> LogitsInput {
        self.kept.adapt()
    }
}

impl Adaptor<RawLogitsInput> for ValidationOutput {
    fn adapt(&self) -> RawLogitsInput {
        RawLogitsInput(self.trained.as_ref().unwrap_or(&self.kept).adapt())
    }
}

impl InferenceStep for Classifier {
    type Input = CifarBatch;
    type Output = ValidationOutput;

    fn step(&self, batch: CifarBatch) -> ValidationOutput {
        let trained = (self.ema.is_some()).then(|| classify(&self.model, batch.clone()));
        ValidationOutput {
            kept: self.forward_classification(batch),
            trained,
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;
    use cnnzoo_models::lookup;
    use serde_json::json;

    use super::*;

    fn scalar(tensor: Tensor<1>) -> f64 {
        f64::from(tensor.into_scalar::<f32>())
    }

    /// A classifier of the zoo model `name` for 10 classes, and a batch of random 32x32 images
    /// of the classes `targets`.
    fn classifier_and_batch(
        name: &str,
        overrides: serde_json::Value,
        targets: &[i32],
        device: &Device,
    ) -> (Classifier, CifarBatch) {
        let config = lookup(name)
            .unwrap()
            .config_with(10, overrides.as_object().unwrap())
            .unwrap();
        let batch = CifarBatch {
            images: Tensor::random(
                [targets.len(), 3, 32, 32],
                Distribution::Normal(0.0, 1.0),
                device,
            ),
            targets: Tensor::from_ints(targets, device),
            soft_targets: None,
        };
        (Classifier::new(config.init(device)), batch)
    }

    /// Every trained weight, flattened: batch norm's running statistics move with the batch,
    /// not with the loss, and are left out.
    fn trained_weights(classifier: &Classifier) -> Vec<f32> {
        use burn::module::{ModuleVisitor, Param};

        #[derive(Default)]
        struct Flatten(Vec<f32>);
        impl ModuleVisitor for Flatten {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                if param.is_require_grad() {
                    self.0.extend(param.val().into_data().iter::<f32>());
                }
            }
        }
        let mut visitor = Flatten::default();
        classifier.visit(&mut visitor);
        visitor.0
    }

    /// The largest change of any weight after one SGD step at lr 1 on `batch`.
    fn largest_change(classifier: &Classifier, batch: &CifarBatch) -> f32 {
        let sgd = crate::config::OptimizerConfig::Sgd {
            lr: 1.0,
            momentum: 0.0,
            nesterov: false,
            weight_decay: 0.0,
            grad_clip: None,
            no_decay_norm_bias: false,
        };
        let mut optimizer = crate::optim::build_optimizer(&sgd, classifier);
        let grads = TrainStep::step(classifier, batch.clone()).grads;
        let stepped =
            classifier
                .clone()
                .optimize(&mut optimizer, ModuleLearningRate::from(1.0), grads);
        let before = trained_weights(classifier);
        let after = trained_weights(&stepped);
        before
            .iter()
            .zip(&after)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn the_optimizer_steps_with_clipped_gradients_of_the_scaled_loss() {
        // One network and one batch for every step (tests share the device's random generator).
        let device = Device::flex().autodiff();
        let overrides = json!({"num_blocks": [1, 1, 1], "channels": [4, 8, 8]});
        let (classifier, batch) = classifier_and_batch("resnet", overrides, &[1, 7, 3, 0], &device);
        let with = |grad_clip, loss_scale| Classifier {
            grad_clip,
            loss_scale,
            ..classifier.clone()
        };

        let free = largest_change(&classifier, &batch);
        assert!(
            free > 0.01,
            "an unclipped step moved no weight by more than {free}"
        );
        let clipped = largest_change(&with(Some(GradClip::Value(0.01)), 1.0), &batch);
        assert!(
            clipped <= 0.01 + 1e-6,
            "a clipped step moved a weight by {clipped}"
        );
        let halved = largest_change(&with(None, 0.5), &batch);
        assert!(
            (halved - free / 2.0).abs() <= 1e-4 * free,
            "half the loss moved a weight by {halved}, the whole loss by {free}"
        );
    }

    #[test]
    fn inception_v3_trains_its_auxiliary_head_and_evaluates_without_it() {
        let device = Device::flex();
        device.seed(5);
        let device = device.autodiff();
        // Without dropout, every forward of the same batch gives the same logits.
        let overrides = json!({"cifar_stem": true, "dropout": 0.0});
        let (classifier, batch) = classifier_and_batch("inception_v3", overrides, &[1, 7], &device);
        let (logits, aux) = classifier.model.forward_with_aux(batch.images.clone());
        let cross_entropy = CrossEntropyLossConfig::new().init(&device);
        let main = scalar(cross_entropy.forward(logits, batch.targets.clone()));
        let aux = scalar(cross_entropy.forward(aux.unwrap(), batch.targets.clone()));

        let training = scalar(classifier.forward_training(batch.clone()).loss);
        assert!(
            (training - (main + AUX_LOSS_WEIGHT * aux)).abs() < 1e-4 * training,
            "training loss {training}, main {main}, auxiliary {aux}"
        );
        let evaluation = scalar(classifier.forward_classification(batch).loss);
        assert!(
            (evaluation - main).abs() < 1e-4 * main,
            "{evaluation} vs {main}"
        );
    }
}
