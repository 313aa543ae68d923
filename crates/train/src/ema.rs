//! timm's `ModelEmaV2`: an exponential moving average of every weight and batch-norm statistic,
//! updated after each optimizer step, `ema = d * ema + (1 - d) * weights`.
//!
//! It is a field of the [`Classifier`](crate::classifier::Classifier), so it is saved with the
//! model in every checkpoint and comes back with `--resume`; its update count is saved with it
//! (a batch-norm-like running state), so the warm-up of the decay continues where it stopped.
//! The decay is computed on the device, so an update never waits for the host.
use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId, RunningState};
use burn::prelude::*;
use cnnzoo_models::Model;

use crate::augment_config::EmaConfig;

#[derive(Module, Debug)]
pub struct Ema {
    /// The averaged network; no gradient ever reaches it.
    pub model: Model,
    /// Updates so far, as a one-element tensor.
    pub updates: RunningState<Tensor<1>>,
    #[module(skip)]
    pub config: EmaConfig,
}

impl Ema {
    /// The average of `model` so far: its present weights, as tensors of their own.
    pub fn new(model: &Model, config: EmaConfig) -> Self {
        let device = model.devices().first().cloned().unwrap_or_default();
        Self {
            model: model.clone().map(&mut Detached),
            updates: RunningState::new(Tensor::zeros([1], &device)),
            config,
        }
    }

    /// The average after one more step of `model`.
    pub fn updated(self, model: &Model) -> Self {
        let updates = self.updates.value();
        let decay = if self.config.warmup {
            let warm = (updates.clone() + 1.0) / (updates.clone() + 10.0);
            warm.clamp_max(self.config.decay)
        } else {
            updates.zeros_like() + self.config.decay
        };
        let mut weights = Flatten::default();
        model.visit(&mut weights);
        let mut average = Average {
            weights: weights.tensors.into_iter(),
            decay,
        };
        Self {
            model: self.model.map(&mut average),
            updates: RunningState::new((updates + 1.0).detach()),
            config: self.config,
        }
    }
}

/// A copy of a module that no gradient reaches: new parameter ids (an optimizer keeps state and
/// finds gradients by id) holding detached tensors. (`no_grad` on a clone would not do: a clone
/// shares the lazily initialised parameters of the original, and would turn off its gradients.)
struct Detached;

impl ModuleMapper for Detached {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let tensor = param.val().detach().set_require_grad(false);
        Param::initialized(ParamId::new(), tensor)
    }
}

/// Every float tensor of a module, detached and flattened, in visiting order.
#[derive(Default)]
struct Flatten {
    tensors: Vec<Tensor<1>>,
}

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors
            .push(param.val().detach().flatten::<1>(0, D.saturating_sub(1)));
    }
}

/// Blends each tensor of the average with the matching one of the trained module (same
/// architecture, so the same visiting order).
struct Average<I: Iterator<Item = Tensor<1>>> {
    weights: I,
    decay: Tensor<1>,
}

impl<I: Iterator<Item = Tensor<1>>> ModuleMapper for Average<I> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let weights = self
            .weights
            .next()
            .expect("the average has the trained network's architecture");
        param.map(|average| {
            let shape = average.shape();
            let decay = self.decay.clone().reshape([1; D]);
            let weights = weights.reshape(shape);
            (average.clone() * decay.clone() + weights * (decay.neg() + 1.0))
                .detach()
                .set_require_grad(false)
        })
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use cnnzoo_models::lookup;
    use serde_json::json;

    use super::*;

    fn weights(model: &Model) -> Vec<f32> {
        let mut flat = Flatten::default();
        model.visit(&mut flat);
        flat.tensors
            .into_iter()
            .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    fn small_resnet(seed: u64, device: &Device) -> Model {
        device.seed(seed);
        let overrides = json!({"num_blocks": [1, 1, 1], "channels": [4, 8, 8]});
        lookup("resnet")
            .unwrap()
            .config_with(10, overrides.as_object().unwrap())
            .unwrap()
            .init(device)
    }

    /// The average after `updates` steps from a model seeded 1 towards one seeded 2, checked
    /// against `kept * start + (1 - kept) * target` for every value: the closed form of the
    /// recursion when `kept` is the product of the steps' decays.
    fn assert_blend(config: EmaConfig, updates: usize, kept: f64) -> Ema {
        let device = Device::flex();
        let start = small_resnet(1, &device);
        let target = small_resnet(2, &device);
        let mut ema = Ema::new(&start, config);
        for _ in 0..updates {
            ema = ema.updated(&target);
        }
        let (e0, w, en) = (weights(&start), weights(&target), weights(&ema.model));
        assert_eq!(en.len(), w.len());
        for ((e0, w), en) in e0.iter().zip(&w).zip(&en) {
            let expected = kept * f64::from(*e0) + (1.0 - kept) * f64::from(*w);
            assert!(
                (f64::from(*en) - expected).abs() < 1e-5 * (1.0 + expected.abs()),
                "{en} vs {expected}"
            );
        }
        ema
    }

    #[test]
    fn n_updates_towards_fixed_weights_follow_the_closed_form() {
        let config = EmaConfig {
            decay: 0.9,
            warmup: false,
        };
        let ema = assert_blend(config, 5, 0.9f64.powi(5));
        let updates = ema.updates.value().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(updates, [5.0]);
    }

    #[test]
    fn the_warm_up_decays_as_timms_schedule() {
        let config = EmaConfig {
            decay: 0.99,
            warmup: true,
        };
        // Decays 0.1, then 2/11: the first update keeps a tenth of the start.
        assert_blend(config, 2, 0.1 * (2.0 / 11.0));
    }

    #[test]
    fn flattening_keeps_every_value_of_a_layer() {
        let device = Device::flex();
        let linear = LinearConfig::new(3, 2).init(&device);
        let mut flat = Flatten::default();
        linear.visit(&mut flat);
        let sizes: Vec<usize> = flat.tensors.iter().map(|t| t.dims()[0]).collect();
        assert_eq!(sizes, [6, 2]);
    }
}
