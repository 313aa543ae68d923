//! The learner's view of a zoo model: logits, cross-entropy, and the outputs burn-train's
//! classification metrics read.
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use cnnzoo_cifar::CifarBatch;
use cnnzoo_models::Model;

/// burn-train's step traits live outside the models crate, so training goes through this wrapper;
/// every checkpoint cnnzoo writes is a record of it.
#[derive(Module, Debug)]
pub struct Classifier {
    pub model: Model,
}

impl Classifier {
    pub fn forward_classification(&self, batch: CifarBatch) -> ClassificationOutput {
        let logits = self.model.forward(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ClassificationOutput::new(loss, logits, batch.targets)
    }
}

impl TrainStep for Classifier {
    type Input = CifarBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: CifarBatch) -> TrainOutput<ClassificationOutput> {
        let output = self.forward_classification(batch);
        TrainOutput::new(self, output.loss.backward(), output)
    }
}

impl InferenceStep for Classifier {
    type Input = CifarBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: CifarBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}
