//! Whether a prediction counts as right, by one rule wherever cnnzoo computes accuracy: eval,
//! validation during training (and so the best-checkpoint choice), per-class accuracy and the
//! confusion matrix.
//!
//! The true class counts at top-k only if fewer than k other classes score higher than it or as
//! high as it: ties are broken against the true class, so a collapsed network whose logits are
//! all equal scores 0%, not 100%. A row with any NaN or infinite logit is wrong at every k.
use std::marker::PhantomData;
use std::sync::Arc;

use burn::tensor::{Int, Tensor, TensorReadError};
use burn::train::ClassificationOutput;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};

/// How many other classes are ahead of or tied with `target` in `row`; `None` when a logit is not
/// finite, since then no ranking means anything.
pub fn target_rank(row: &[f32], target: usize) -> Option<usize> {
    if row.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let score = row[target];
    Some(
        (row.iter().enumerate())
            .filter(|&(class, &v)| class != target && v >= score)
            .count(),
    )
}

/// The class the confusion matrix records for `row`: `target` when it is strictly first, else the
/// first other class with the highest logit; `None` for a row that is not finite.
pub fn predicted_class(row: &[f32], target: usize) -> Option<usize> {
    if target_rank(row, target)? == 0 {
        return Some(target);
    }
    (row.iter().enumerate())
        .filter(|&(class, _)| class != target)
        .fold(None, |best: Option<(usize, f32)>, (class, &v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((class, v)),
        })
        .map(|(class, _)| class)
}

/// Logits and labels, as the metric reads them.
pub struct LogitsInput {
    outputs: Tensor<2>,
    targets: Tensor<1, Int>,
}

impl Adaptor<LogitsInput> for ClassificationOutput {
    fn adapt(&self) -> LogitsInput {
        LogitsInput {
            outputs: self.output.clone(),
            targets: self.targets.clone(),
        }
    }
}

/// What a [`TopKAccuracy`] reads its logits from.
pub trait Logits: Send + Sync + 'static {
    fn logits(&self) -> &LogitsInput;
}

impl Logits for LogitsInput {
    fn logits(&self) -> &LogitsInput {
        self
    }
}

/// Top-k accuracy (%) under [`target_rank`]'s rule, for burn-train, of the logits in `I`. Named
/// `Accuracy` at k = 1 and `Top-k Accuracy` otherwise, the names the run's logger and progress
/// line look for.
pub struct TopKAccuracy<I = LogitsInput> {
    name: MetricName,
    k: usize,
    state: NumericMetricState,
    input: PhantomData<fn(&I)>,
}

// By hand: a derive would ask `I: Clone` of inputs that are never cloned.
impl<I> Clone for TopKAccuracy<I> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            k: self.k,
            state: self.state.clone(),
            input: PhantomData,
        }
    }
}

impl<I> TopKAccuracy<I> {
    pub fn new(k: usize) -> Self {
        let name = if k == 1 {
            "Accuracy".to_string()
        } else {
            format!("Top-{k} Accuracy")
        };
        Self::named(k, name)
    }

    fn named(k: usize, name: String) -> Self {
        Self {
            name: Arc::new(name),
            k,
            state: NumericMetricState::new(),
            input: PhantomData,
        }
    }

    fn format(&self) -> FormatOptions {
        FormatOptions::new(self.name.clone()).unit("%").precision(2)
    }
}

impl<I: Logits> Metric for TopKAccuracy<I> {
    type Input = I;

    fn update(
        &mut self,
        input: &I,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let input = input.logits();
        let [rows, classes] = input.outputs.dims();
        let logits = input.outputs.clone().into_data().convert::<f32>();
        let logits = logits.as_slice::<f32>()?;
        let targets = input.targets.clone().into_data().convert::<i64>();
        let targets = targets.as_slice::<i64>()?;
        let hits = (logits.chunks(classes).zip(targets))
            .take(rows)
            .filter(|&(row, &target)| target_rank(row, target as usize).is_some_and(|r| r < self.k))
            .count();
        if rows > 0 {
            self.state.update(100.0 * hits as f64 / rows as f64, rows);
        }
        Ok(self.state.compute_update(self.format()))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.state.compute_final(self.format()))
    }

    fn clear(&mut self) {
        self.state.reset();
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
        .into()
    }
}

impl<I: Logits> Numeric for TopKAccuracy<I> {
    fn value(&self) -> Option<NumericEntry> {
        Some(self.state.current_value())
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(self.state.running_value())
    }

    fn final_value(&self) -> NumericEntry {
        self.state.final_value()
    }
}

/// The logits of the trained weights, beside those of their moving average (`[ema]`).
pub struct RawLogitsInput(pub LogitsInput);

impl Logits for RawLogitsInput {
    fn logits(&self) -> &LogitsInput {
        &self.0
    }
}

/// Top-1 of the trained weights while validation keeps their moving average: summary.csv's
/// `val_top1_raw`.
pub type RawTop1 = TopKAccuracy<RawLogitsInput>;

/// The name the run's logger reads this metric by.
pub const RAW_TOP1_NAME: &str = "Raw Accuracy";

impl RawTop1 {
    pub fn raw() -> Self {
        Self::named(1, RAW_TOP1_NAME.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_logits_are_wrong_at_every_k_below_the_class_count() {
        let row = [0.5f32; 10];
        assert_eq!(target_rank(&row, 3), Some(9));
        assert_eq!(predicted_class(&row, 3), Some(0));
        assert_eq!(predicted_class(&row, 0), Some(1));
    }

    #[test]
    fn ties_count_against_the_true_class() {
        let row = [1.0f32, 3.0, 3.0, 2.0, 0.0];
        assert_eq!(target_rank(&row, 1), Some(1), "tied with class 2");
        assert_eq!(target_rank(&row, 3), Some(2));
        assert_eq!(target_rank(&row, 4), Some(4));
        assert_eq!(predicted_class(&row, 1), Some(2));
        assert_eq!(predicted_class(&row, 2), Some(1));
        let clear = [1.0f32, 3.0, 2.0];
        assert_eq!(target_rank(&clear, 1), Some(0));
        assert_eq!(predicted_class(&clear, 1), Some(1));
        assert_eq!(predicted_class(&clear, 0), Some(1));
    }

    #[test]
    fn a_row_with_a_nan_or_an_infinity_is_never_right() {
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut row = [0.0f32, 5.0, 1.0];
            row[2] = bad;
            assert_eq!(target_rank(&row, 1), None, "{bad}");
            assert_eq!(predicted_class(&row, 1), None, "{bad}");
        }
    }
}
