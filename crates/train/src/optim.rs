//! The optimizer a config asks for, built in one place so that `train` and `bench` step the
//! same optimizer.
use burn::module::{Module, ModuleVisitor, Param, ParamGroup};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, Optimizer, SgdConfig};
use burn::tensor::Tensor;

use crate::config::OptimizerConfig;

/// PyTorch's SGD (momentum without dampening, L2 weight decay) or AdamW, from the config, for
/// `module`'s parameters. With `no_decay_norm_bias`, the parameters of at most one dimension
/// (batch-norm weights and biases, every bias) are stepped by the same optimizer without weight
/// decay: timm's rule.
pub fn build_optimizer<M: Module>(config: &OptimizerConfig, module: &M) -> ModuleOptimizer {
    let no_decay = config
        .no_decay_norm_bias()
        .then(|| ParamGroup::from_paths(no_decay_paths(module)));
    match config {
        OptimizerConfig::Sgd {
            momentum,
            nesterov,
            weight_decay,
            ..
        } => {
            let sgd = |weight_decay: f64| {
                SgdConfig::new()
                    .with_momentum((*momentum > 0.0).then(|| {
                        MomentumConfig::new()
                            .with_momentum(*momentum)
                            .with_dampening(0.0)
                            .with_nesterov(*nesterov)
                    }))
                    .with_weight_decay(
                        (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32)),
                    )
            };
            with_group(sgd(*weight_decay).init(), no_decay, || sgd(0.0).build())
        }
        OptimizerConfig::Adamw {
            weight_decay,
            betas,
            eps,
            ..
        } => {
            let adamw = |weight_decay: f64| {
                AdamWConfig::new()
                    .with_beta_1(betas[0] as f32)
                    .with_beta_2(betas[1] as f32)
                    .with_epsilon(*eps as f32)
                    .with_weight_decay(weight_decay as f32)
            };
            with_group(adamw(*weight_decay).init(), no_decay, || adamw(0.0).build())
        }
    }
}

/// `optimizer`, with the parameters of `group` (when there is one) stepped by `other` instead.
fn with_group<O: Optimizer>(
    optimizer: ModuleOptimizer,
    group: Option<ParamGroup>,
    other: impl FnOnce() -> O,
) -> ModuleOptimizer {
    match group {
        Some(group) => optimizer.with_group(group, other(), None),
        None => optimizer,
    }
}

/// The paths of `module`'s float parameters of at most one dimension, spelled as burn's
/// `ModuleOptimizer` spells the path it matches a group by: the field names (a `Vec`'s index, an
/// enum's variant) from `module` down, joined by dots, e.g. `model.Resnet.input_net.1.gamma`.
///
/// Paths, not ids: a resumed run's parameters take their ids from the checkpoint, so the ids of
/// the fresh module the optimizer is built from would match none of them.
pub fn no_decay_paths<M: Module>(module: &M) -> Vec<String> {
    visit_with_paths(module, NoDecayPaths::default()).0
}

#[derive(Default)]
struct NoDecayPaths(Vec<String>);

impl PathVisitor for NoDecayPaths {
    fn visit_float<const D: usize>(&mut self, path: &str, _param: &Param<Tensor<D>>) {
        if D <= 1 {
            self.0.push(path.to_string());
        }
    }
}

/// A visit of a module's float parameters that is told each one's path, as `no_decay_paths`
/// spells it.
trait PathVisitor {
    fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>);
}

/// Runs `visitor` over `module`'s float parameters with their paths, and gives it back.
fn visit_with_paths<M: Module, V: PathVisitor>(module: &M, visitor: V) -> V {
    let mut with_paths = WithPaths {
        path: Vec::new(),
        visitor,
    };
    module.visit(&mut with_paths);
    with_paths.visitor
}

/// The field names from the root down to the module being visited.
struct WithPaths<V> {
    path: Vec<String>,
    visitor: V,
}

impl<V: PathVisitor> ModuleVisitor for WithPaths<V> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.visitor.visit_float(&self.path.join("."), param);
    }
}

#[cfg(test)]
mod tests {
    use burn::module::{ModuleMapper, ParamId};
    use burn::optim::GradientsParams;
    use burn::tensor::Device;
    use cnnzoo_models::lookup;
    use serde_json::json;

    use super::*;
    use crate::classifier::Classifier;
    use crate::config::TrainConfig;

    /// A one-block-per-stage ResNet with every parameter 1, so a decay of any of them shows.
    fn small_resnet(device: &Device) -> Classifier {
        let overrides = json!({"num_blocks": [1, 1, 1], "channels": [4, 8, 8]});
        let config = lookup("resnet")
            .unwrap()
            .config_with(10, overrides.as_object().unwrap())
            .unwrap();
        Classifier::new(config.init(device)).map(&mut Ones)
    }

    struct Ones;

    impl ModuleMapper for Ones {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            param.map(|t| t.ones_like())
        }
    }

    /// A zero gradient for every float parameter, and each parameter's path, rank and values.
    #[derive(Default)]
    struct Inspect {
        grads: GradientsParams,
        params: Vec<(String, usize, Vec<f32>)>,
        ids: Vec<ParamId>,
    }

    impl PathVisitor for Inspect {
        fn visit_float<const D: usize>(&mut self, path: &str, param: &Param<Tensor<D>>) {
            let value = param.val();
            self.grads
                .register(param.id, value.clone().inner().zeros_like());
            let values = value.into_data().try_to_vec::<f32>().unwrap();
            self.params.push((path.to_string(), D, values));
            self.ids.push(param.id);
        }
    }

    fn inspect(model: &Classifier) -> Inspect {
        visit_with_paths(model, Inspect::default())
    }

    fn sgd(no_decay_norm_bias: bool) -> OptimizerConfig {
        let text = format!(
            "model = \"resnet\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1\nmomentum = 0.9\n\
             weight_decay = 0.1\nno_decay_norm_bias = {no_decay_norm_bias}\n"
        );
        TrainConfig::from_toml(&text).unwrap().optimizer
    }

    /// One SGD step at lr 0.1 with zero gradients: the weight decay of 0.1 alone moves the
    /// parameters, from 1 to 1 - 0.1 * 0.1 = 0.99. Returns what each parameter became, by path
    /// and rank.
    fn step_with_zero_gradients(
        optimizer: &mut ModuleOptimizer,
        model: Classifier,
    ) -> Vec<(String, usize, Vec<f32>)> {
        let grads = inspect(&model).grads;
        inspect(&optimizer.step(0.1, model, grads)).params
    }

    fn assert_decayed(params: &[(String, usize, Vec<f32>)], spare_vectors: bool) {
        for (path, rank, values) in params {
            let expected = if spare_vectors && *rank <= 1 {
                1.0
            } else {
                0.99
            };
            for value in values {
                // Spared parameters stay bit for bit; decayed ones are 0.99 to f32 rounding.
                let exact = spare_vectors && *rank <= 1;
                assert!(
                    if exact {
                        *value == 1.0
                    } else {
                        (value - expected).abs() < 1e-6
                    },
                    "{path} (rank {rank}): {value}, expected {expected}"
                );
            }
        }
    }

    #[test]
    fn the_paths_are_those_burns_optimizer_matches_groups_by() {
        let device = Device::flex().autodiff();
        let paths = no_decay_paths(&small_resnet(&device));
        let all = inspect(&small_resnet(&device)).params;
        let vectors: Vec<&String> = all.iter().filter(|p| p.1 <= 1).map(|p| &p.0).collect();
        assert_eq!(paths.iter().collect::<Vec<_>>(), vectors);
        // Field names, the enum's variant, no `Some` for an optional module, dots between.
        for path in [
            "model.ResNet.input_bn.gamma",
            "model.ResNet.input_bn.beta",
            "model.ResNet.output_net.bias",
        ] {
            assert!(paths.contains(&path.to_string()), "{path} not in {paths:?}");
        }
    }

    #[test]
    fn without_the_flag_every_parameter_decays() {
        let device = Device::flex().autodiff();
        let mut optimizer = build_optimizer(&sgd(false), &small_resnet(&device));
        let params = step_with_zero_gradients(&mut optimizer, small_resnet(&device));
        assert!(params.iter().any(|p| p.1 <= 1) && params.iter().any(|p| p.1 == 4));
        assert_decayed(&params, false);
    }

    #[test]
    fn with_the_flag_norm_weights_and_biases_do_not_decay() {
        let device = Device::flex().autodiff();
        let mut optimizer = build_optimizer(&sgd(true), &small_resnet(&device));
        assert_decayed(
            &step_with_zero_gradients(&mut optimizer, small_resnet(&device)),
            true,
        );
    }

    /// As on `--resume`: the optimizer is built from a fresh model, and the model it steps is
    /// another one with a checkpoint's record loaded, so its parameter ids are not the fresh
    /// model's. The group still finds its parameters, by path.
    #[test]
    fn the_group_holds_after_a_checkpoint_round_trip() {
        let device = Device::flex().autodiff();
        let fresh = small_resnet(&device);
        let mut optimizer = build_optimizer(&sgd(true), &fresh);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.bpk");
        small_resnet(&device).save_file(&file).unwrap();
        let record = burn::store::ModuleRecord::load(&file).unwrap();
        let resumed = small_resnet(&device).try_load_record(record).unwrap();
        let fresh_ids = inspect(&fresh).ids;
        assert!(
            inspect(&resumed)
                .ids
                .iter()
                .all(|id| !fresh_ids.contains(id)),
            "the resumed model must not share the fresh model's ids"
        );
        assert_decayed(&step_with_zero_gradients(&mut optimizer, resumed), true);
    }
}
