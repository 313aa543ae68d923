//! Gradient clipping as PyTorch does it, between the backward pass and the optimizer step.
//!
//! burn's own `GradientClipping::Norm` bounds each tensor's norm apart; PyTorch's
//! `clip_grad_norm_`, which recipes that clip mean, bounds the norm of all the gradients taken
//! together, so the update keeps its direction. This module does the latter over a module's
//! float parameters.
use anyhow::{Result, bail};
use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// `optimizer.grad_clip`: `{ norm = 1.0 }` or `{ value = 0.5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GradClip {
    /// The global L2 norm of all the gradients is scaled down to at most this
    /// (`torch.nn.utils.clip_grad_norm_`).
    Norm(f64),
    /// Every gradient element is clamped to [-value, value] (`torch.nn.utils.clip_grad_value_`).
    Value(f64),
}

/// PyTorch's `clip_grad_norm_` divides by the norm plus this, so a zero norm divides by no zero.
const NORM_EPS: f64 = 1e-6;

impl GradClip {
    /// The bound must be a positive number; the message names the key and the value.
    pub fn validate(self) -> Result<()> {
        let (key, bound) = match self {
            Self::Norm(bound) => ("norm", bound),
            Self::Value(bound) => ("value", bound),
        };
        if !(bound.is_finite() && bound > 0.0) {
            bail!("optimizer.grad_clip.{key} must be a positive number (got {bound})");
        }
        Ok(())
    }
}

/// Clips the gradients of `module`'s float parameters in `grads`, in place.
///
/// By norm, every gradient is multiplied by `min(1, max_norm / (total_norm + 1e-6))`, as
/// `clip_grad_norm_` does; the factor stays a tensor, so a GPU step is not held up to read it
/// back, and below the bound it is exactly 1, which leaves every gradient bit for bit unchanged.
pub fn clip_gradients<M: Module>(grads: &mut GradientsParams, module: &M, clip: GradClip) {
    let change = match clip {
        GradClip::Value(bound) => Change::Clamp(bound),
        GradClip::Norm(max_norm) => {
            let mut squares = SumOfSquares { grads, total: None };
            module.visit(&mut squares);
            let Some(total) = squares.total else {
                return;
            };
            let factor = total
                .sqrt()
                .add_scalar(NORM_EPS)
                .recip()
                .mul_scalar(max_norm)
                .clamp_max(1.0);
            Change::Scale(factor)
        }
    };
    module.visit(&mut Rescale { grads, change });
}

/// What [`Rescale`] does to each gradient.
// One lives per training step: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Change {
    Clamp(f64),
    /// Multiply by this one-element tensor.
    Scale(Tensor<1>),
}

/// Replaces each parameter's gradient by its changed self.
struct Rescale<'a> {
    grads: &'a mut GradientsParams,
    change: Change,
}

impl ModuleVisitor for Rescale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let changed = match &self.change {
            Change::Clamp(bound) => grad.clamp(-bound, *bound),
            Change::Scale(factor) => grad * factor.clone().reshape([1; D]),
        };
        self.grads.register(param.id, changed);
    }
}

/// The sum of the squares of every gradient element, as a one-element tensor.
struct SumOfSquares<'a> {
    grads: &'a GradientsParams,
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SumOfSquares<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.get::<D>(param.id) {
            let squares = grad.square().sum();
            self.total = Some(match self.total.take() {
                Some(total) => total + squares,
                None => squares,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[derive(Module, Debug)]
    struct Tiny {
        a: Param<Tensor<1>>,
        b: Param<Tensor<2>>,
    }

    /// A module whose gradients are `[3, -1]` and `[[0, 4], [-2, 1]]`: a global norm of
    /// sqrt(9 + 1 + 16 + 4 + 1) = sqrt(31) = 5.568.
    fn tiny() -> (Tiny, GradientsParams) {
        let device = Device::flex();
        let tiny = Tiny {
            a: Param::from_tensor(Tensor::zeros([2], &device)),
            b: Param::from_tensor(Tensor::zeros([2, 2], &device)),
        };
        let mut grads = GradientsParams::new();
        grads.register(tiny.a.id, Tensor::<1>::from_floats([3.0, -1.0], &device));
        grads.register(
            tiny.b.id,
            Tensor::<2>::from_floats([[0.0, 4.0], [-2.0, 1.0]], &device),
        );
        (tiny, grads)
    }

    /// Every gradient element of `tiny`, `a`'s then `b`'s.
    fn values(tiny: &Tiny, grads: &GradientsParams) -> Vec<f32> {
        let a = grads.get::<1>(tiny.a.id).unwrap().into_data();
        let b = grads.get::<2>(tiny.b.id).unwrap().into_data();
        let mut out = a.try_to_vec::<f32>().unwrap();
        out.extend(b.try_to_vec::<f32>().unwrap());
        out
    }

    /// `tiny`'s gradient values before and after `clip`.
    fn clipped(clip: GradClip) -> (Vec<f32>, Vec<f32>) {
        let (tiny, mut grads) = tiny();
        let before = values(&tiny, &grads);
        clip_gradients(&mut grads, &tiny, clip);
        (before, values(&tiny, &grads))
    }

    #[test]
    fn clipping_by_norm_bounds_the_global_norm_and_keeps_the_direction() {
        let (before, after) = clipped(GradClip::Norm(1.0));
        let norm = after.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "global norm {norm}");
        // One factor for all, 1 / (sqrt(31) + 1e-6): not each tensor scaled to its own norm.
        let factor = 1.0 / (31f32.sqrt() + 1e-6);
        for (x, y) in before.iter().zip(&after) {
            assert!((y - x * factor).abs() < 1e-6, "{x} became {y}");
        }
    }

    #[test]
    fn a_norm_below_the_bound_leaves_the_gradients_bit_for_bit() {
        let (before, after) = clipped(GradClip::Norm(5.6));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&before), bits(&after));
    }

    #[test]
    fn clipping_by_value_clamps_each_element() {
        let (_, after) = clipped(GradClip::Value(0.5));
        assert_eq!(after, [0.5, -0.5, 0.0, 0.5, -0.5, 0.5]);
    }

    #[test]
    fn a_bound_must_be_positive_and_finite() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let message = GradClip::Norm(bad).validate().unwrap_err().to_string();
            assert!(message.contains("optimizer.grad_clip.norm"), "{message}");
        }
        let message = GradClip::Value(-0.5).validate().unwrap_err().to_string();
        assert_eq!(
            message,
            "optimizer.grad_clip.value must be a positive number (got -0.5)"
        );
        GradClip::Value(0.5).validate().unwrap();
    }

    /// `grad_clip = { norm = 1.0 }` reads as TOML naturally, and the resolved config written
    /// into the run folder reads back the same.
    #[test]
    fn the_config_key_reads_and_writes_as_a_one_key_table() {
        use crate::config::TrainConfig;
        let text = "model = \"resnet\"\n[optimizer]\nname = \"adamw\"\nlr = 0.001\ngrad_clip = { norm = 1 }\n";
        let config = TrainConfig::from_toml(text).unwrap();
        assert_eq!(config.optimizer.grad_clip(), Some(GradClip::Norm(1.0)));
        let again = TrainConfig::from_toml(&config.to_toml().unwrap()).unwrap();
        assert_eq!(again, config);
        let wrong =
            "model = \"resnet\"\n[optimizer]\nname = \"sgd\"\nlr = 0.1\ngrad_clip = { max = 1 }\n";
        let message = TrainConfig::from_toml(wrong).unwrap_err().to_string();
        assert!(
            message.contains("max") && message.contains("norm"),
            "{message}"
        );
    }
}
