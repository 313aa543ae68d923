//! Readable progress when stdout is not a terminal (a log file, CI): one line every few seconds
//! with epoch, step, loss, accuracy, learning rate and throughput, instead of burn's per-iteration
//! debug dump. On a terminal burn-train's own TUI is used.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricEntry, MetricId, NumericEntry};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

const PRINT_EVERY: Duration = Duration::from_secs(5);

pub struct LineRenderer {
    names: HashMap<MetricId, String>,
    values: HashMap<String, f64>,
    epoch: usize,
    total_epochs: usize,
    split: String,
    items: usize,
    total_items: usize,
    split_started: Instant,
    last_print: Instant,
}

impl Default for LineRenderer {
    fn default() -> Self {
        Self {
            names: HashMap::new(),
            values: HashMap::new(),
            epoch: 0,
            total_epochs: 0,
            split: String::new(),
            items: 0,
            total_items: 0,
            split_started: Instant::now(),
            last_print: Instant::now(),
        }
    }
}

impl LineRenderer {
    fn record(&mut self, state: MetricState) {
        if let MetricState::Numeric(entry, Some(value)) = state {
            self.store(&entry, &value);
        }
    }

    fn store(&mut self, entry: &MetricEntry, value: &NumericEntry) {
        if let Some(name) = self.names.get(&entry.metric_id) {
            let v = match value {
                NumericEntry::Value(v) | NumericEntry::Final(v) => *v,
                NumericEntry::Aggregated {
                    aggregated_value, ..
                } => *aggregated_value,
            };
            self.values.insert(name.clone(), v);
        }
    }

    fn line(&self) -> String {
        let mut line = format!(
            "epoch {}/{} {:<5} {:>6}/{:<6}",
            self.epoch, self.total_epochs, self.split, self.items, self.total_items
        );
        let mut push = |label: &str, metric: &str, fmt: &dyn Fn(f64) -> String| {
            if let Some(v) = self.values.get(metric) {
                line.push_str(&format!(" {label} {}", fmt(*v)));
            }
        };
        push("loss", "Loss", &|v| format!("{v:.4}"));
        push("top1", "Accuracy", &|v| format!("{v:.2}%"));
        if self.split == "valid" {
            if let Some((_, v)) = self.values.iter().find(|(k, _)| k.starts_with("Top")) {
                line.push_str(&format!(" top5 {v:.2}%"));
            }
        } else {
            push("lr", "Learning Rate", &|v| format!("{v:.3e}"));
        }
        let seconds = self.split_started.elapsed().as_secs_f64();
        if seconds > 0.0 {
            line.push_str(&format!(" {:.0} img/s", self.items as f64 / seconds));
        }
        line
    }

    fn maybe_print(&mut self, force: bool) {
        // An empty split (validation with val_fraction 0) has nothing to report.
        if self.total_items == 0 {
            return;
        }
        if force || self.last_print.elapsed() >= PRINT_EVERY {
            println!("{}", self.line());
            self.last_print = Instant::now();
        }
    }
}

impl MetricsRendererTraining for LineRenderer {
    fn update_train(&mut self, state: MetricState) {
        self.record(state);
    }

    fn update_valid(&mut self, state: MetricState) {
        self.record(state);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for LineRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        self.record(state);
    }

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for LineRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    /// burn-train calls this when an epoch has ended, with that epoch's number: the lines that
    /// follow are the next epoch's, or the final test's, which keeps the last number.
    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = (epoch + 1).min(self.total_epochs);
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_lowercase();
        self.items = 0;
        self.total_items = total_items;
        self.values.clear();
        self.split_started = Instant::now();
        self.last_print = Instant::now();
    }

    fn update_split(&mut self, items_processed: usize) {
        self.items = items_processed;
        self.maybe_print(false);
    }

    fn end_split(&mut self) {
        self.maybe_print(true);
    }

    fn end(&mut self) {}

    /// burn reports every iteration as an event; the periodic lines already say where training is.
    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for LineRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, name: &str, total_items: usize) {
        self.start_split(name, total_items);
    }

    fn update_test_progress(&mut self, items_processed: usize) {
        self.update_split(items_processed);
    }

    fn end_test(&mut self) {
        self.maybe_print(true);
    }

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for LineRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id, definition.name.to_string());
    }
}
