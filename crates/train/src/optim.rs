//! The optimizer a config asks for, built in one place so that `train` and `bench` step the
//! same optimizer.
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::config::OptimizerConfig;

/// PyTorch's SGD (momentum without dampening, L2 weight decay) or AdamW, from the config.
pub fn build_optimizer(config: &OptimizerConfig) -> ModuleOptimizer {
    match config {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay,
            ..
        } => SgdConfig::new()
            .with_momentum((*momentum > 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(*momentum)
                    .with_dampening(0.0)
                    .with_nesterov(*nesterov)
            }))
            .with_weight_decay(
                (*weight_decay > 0.0).then(|| WeightDecayConfig::new(*weight_decay as f32)),
            )
            .init(),
        OptimizerConfig::Adamw {
            weight_decay,
            betas,
            eps,
            ..
        } => AdamWConfig::new()
            .with_beta_1(betas[0] as f32)
            .with_beta_2(betas[1] as f32)
            .with_epsilon(*eps as f32)
            .with_weight_decay(*weight_decay as f32)
            .init(),
    }
}
