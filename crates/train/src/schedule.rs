//! Learning-rate schedules defined in epochs and stepped per optimizer step, as burn's learner
//! does. The rate of a step is a pure function of its index, so resuming only needs the index.
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};

use crate::config::{ScheduleConfig, ScheduleKind};

/// The record's one field: the index of the next step.
pub const ITERATION_KEY: &str = "iteration";

#[derive(Clone, Debug)]
pub struct EpochSchedule {
    base_lr: f64,
    steps_per_epoch: usize,
    epochs: usize,
    config: ScheduleConfig,
    /// Index of the next optimizer step (0-based over the whole run).
    iteration: u64,
}

impl EpochSchedule {
    pub fn new(
        config: &ScheduleConfig,
        base_lr: f64,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> Self {
        Self {
            base_lr,
            steps_per_epoch: steps_per_epoch.max(1),
            epochs,
            config: config.clone(),
            iteration: 0,
        }
    }

    /// The rate of optimizer step `iteration` (0-based). Epoch `e` (1-based) covers iterations
    /// `(e-1)*S .. e*S`; a milestone `m` therefore first applies to the first step of epoch
    /// `m + 1`, exactly as PyTorch's MultiStepLR stepped once per epoch.
    pub fn lr_at(&self, iteration: u64) -> f64 {
        let steps = self.steps_per_epoch as f64;
        let warmup_steps = (self.config.warmup_epochs * self.steps_per_epoch) as u64;
        if iteration < warmup_steps {
            return self.base_lr * (iteration + 1) as f64 / warmup_steps as f64;
        }
        let epochs_done = iteration / self.steps_per_epoch as u64;
        match self.config.name {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::Multistep => {
                let passed = self
                    .config
                    .milestones
                    .iter()
                    .filter(|&&m| epochs_done >= m as u64)
                    .count();
                self.base_lr * self.config.gamma.powi(passed as i32)
            }
            ScheduleKind::Cosine => {
                let span = ((self.epochs - self.config.warmup_epochs) as f64 * steps).max(1.0);
                let progress = ((iteration - warmup_steps) as f64 / span).min(1.0);
                let min = self.config.min_lr;
                min + (self.base_lr - min) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }
}

impl LrScheduler for EpochSchedule {
    fn step(&mut self) -> f64 {
        let lr = self.lr_at(self.iteration);
        self.iteration += 1;
        lr
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new().with_scalar(ITERATION_KEY, self.iteration)
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        if let Some(iteration) = record.scalar::<u64>(ITERATION_KEY) {
            self.iteration = iteration;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn multistep(steps: usize) -> EpochSchedule {
        let config = ScheduleConfig {
            name: ScheduleKind::Multistep,
            milestones: vec![100, 150],
            gamma: 0.1,
            warmup_epochs: 0,
            min_lr: 0.0,
        };
        EpochSchedule::new(&config, 0.1, steps, 180)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * b.abs().max(1e-12)
    }

    #[test]
    fn multistep_has_pytorch_epoch_boundaries() {
        let s = multistep(351);
        let last_of = |epoch: u64| epoch * 351 - 1;
        let first_of = |epoch: u64| (epoch - 1) * 351;
        assert!(close(s.lr_at(0), 0.1));
        assert!(
            close(s.lr_at(last_of(100)), 0.1),
            "{}",
            s.lr_at(last_of(100))
        );
        assert!(
            close(s.lr_at(first_of(101)), 0.01),
            "{}",
            s.lr_at(first_of(101))
        );
        assert!(close(s.lr_at(last_of(150)), 0.01));
        assert!(close(s.lr_at(first_of(151)), 0.001));
        assert!(close(s.lr_at(last_of(180)), 0.001));
    }

    #[test]
    fn stepping_follows_lr_at_and_resumes_from_its_record() {
        let mut s = multistep(10);
        let rates: Vec<f64> = (0..1200).map(|_| s.step()).collect();
        assert!(close(rates[999], 0.1) && close(rates[1000], 0.01));
        let mut resumed = multistep(10);
        let mut first = multistep(10);
        for _ in 0..1000 {
            first.step();
        }
        resumed.load_record(first.to_record());
        assert!(close(resumed.step(), 0.01));
    }

    #[test]
    fn warmup_then_cosine_reaches_min_lr() {
        let config = ScheduleConfig {
            name: ScheduleKind::Cosine,
            milestones: vec![],
            gamma: 0.1,
            warmup_epochs: 2,
            min_lr: 0.001,
        };
        let s = EpochSchedule::new(&config, 0.1, 5, 12);
        assert!(close(s.lr_at(0), 0.1 / 10.0));
        assert!(close(s.lr_at(9), 0.1));
        assert!(close(s.lr_at(10), 0.1));
        assert!(close(s.lr_at(10 + 25), 0.001 + (0.1 - 0.001) * 0.5));
        assert!(s.lr_at(59) > 0.001 && s.lr_at(59) < 0.0011);
    }

    #[test]
    fn constant_with_warmup() {
        let config = ScheduleConfig {
            warmup_epochs: 1,
            ..ScheduleConfig::default()
        };
        let s = EpochSchedule::new(&config, 0.5, 4, 3);
        let rates: Vec<f64> = (0..6).map(|i| s.lr_at(i)).collect();
        assert_eq!(rates, [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]);
    }
}
