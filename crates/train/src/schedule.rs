//! Learning-rate schedules defined in epochs and stepped per optimizer step, as burn's learner
//! does. The rate of a step is a pure function of its index, so resuming only needs the index.
use std::f64::consts::PI;

use anyhow::{Result, bail};
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

use crate::config::{ScheduleConfig, ScheduleKind};

/// How OneCycle moves between its rates: PyTorch's `anneal_strategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AnnealStrategy {
    /// Half a cosine wave.
    #[default]
    Cos,
    /// A straight line.
    Linear,
}

/// OneCycle's settings with PyTorch's defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycle {
    pub max_lr: f64,
    pub pct_start: f64,
    pub div_factor: f64,
    pub final_div_factor: f64,
    pub anneal_strategy: AnnealStrategy,
}

impl ScheduleConfig {
    /// The onecycle settings of this schedule, `lr` being the optimizer's.
    pub fn one_cycle(&self, lr: f64) -> OneCycle {
        OneCycle {
            max_lr: self.max_lr.unwrap_or(lr),
            pct_start: self.pct_start.unwrap_or(0.3),
            div_factor: self.div_factor.unwrap_or(25.0),
            final_div_factor: self.final_div_factor.unwrap_or(1e4),
            anneal_strategy: self.anneal_strategy.unwrap_or_default(),
        }
    }

    /// The onecycle keys this schedule sets, by name.
    fn one_cycle_keys(&self) -> Vec<&'static str> {
        [
            ("max_lr", self.max_lr.is_some()),
            ("pct_start", self.pct_start.is_some()),
            ("div_factor", self.div_factor.is_some()),
            ("final_div_factor", self.final_div_factor.is_some()),
            ("anneal_strategy", self.anneal_strategy.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }

    /// The onecycle keys' own checks (and none of them under another schedule).
    pub(crate) fn validate_one_cycle(&self, lr: f64) -> Result<()> {
        if self.name != ScheduleKind::Onecycle {
            if let Some(key) = self.one_cycle_keys().first() {
                bail!(
                    "schedule.{key} only applies to the onecycle schedule (schedule.name is {:?})",
                    self.name
                );
            }
            return Ok(());
        }
        if self.warmup_epochs > 0 {
            bail!(
                "schedule.warmup_epochs ({}) does not combine with the onecycle schedule, which warms up on its own (schedule.pct_start); set warmup_epochs = 0",
                self.warmup_epochs
            );
        }
        if self.min_lr != 0.0 {
            bail!(
                "schedule.min_lr ({}) does not apply to the onecycle schedule: its last rate is max_lr / div_factor / final_div_factor",
                self.min_lr
            );
        }
        let c = self.one_cycle(lr);
        for (key, value) in [
            ("max_lr", c.max_lr),
            ("div_factor", c.div_factor),
            ("final_div_factor", c.final_div_factor),
        ] {
            if !(value.is_finite() && value > 0.0) {
                bail!("schedule.{key} must be a positive number (got {value})");
            }
        }
        if !(c.pct_start > 0.0 && c.pct_start < 1.0) {
            bail!("schedule.pct_start must be in (0, 1) (got {})", c.pct_start);
        }
        Ok(())
    }
}

impl OneCycle {
    /// PyTorch's `OneCycleLR.get_lr` (three_phase = false) at step `step` of `total`: phase 1
    /// rises from `initial_lr` to `max_lr` until step `pct_start * total - 1`, phase 2 falls to
    /// `min_lr` at step `total - 1`; the phase ends are real numbers, as in PyTorch.
    pub fn lr_at(&self, step: u64, total: u64) -> f64 {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let step = step as f64;
        let peak_step = self.pct_start * total as f64 - 1.0;
        let last_step = total as f64 - 1.0;
        let (start_step, end_step, start, end) = if step <= peak_step {
            (0.0, peak_step, initial, self.max_lr)
        } else {
            (peak_step, last_step, self.max_lr, min)
        };
        // A phase of no length (a run of one step) is at its end; past the last step, too.
        let span = end_step - start_step;
        let pct = if span > 0.0 {
            ((step - start_step) / span).min(1.0)
        } else {
            1.0
        };
        match self.anneal_strategy {
            AnnealStrategy::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            AnnealStrategy::Linear => (end - start) * pct + start,
        }
    }
}

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
                min + (self.base_lr - min) * 0.5 * (1.0 + (PI * progress).cos())
            }
            // Never after a warm-up: the config refuses one with onecycle.
            ScheduleKind::Onecycle => {
                let total = (self.epochs * self.steps_per_epoch) as u64;
                self.config.one_cycle(self.base_lr).lr_at(iteration, total)
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
            ..ScheduleConfig::default()
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
            warmup_epochs: 2,
            min_lr: 0.001,
            ..ScheduleConfig::default()
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

    fn onecycle(edit: impl FnOnce(&mut ScheduleConfig)) -> ScheduleConfig {
        let mut config = ScheduleConfig {
            name: ScheduleKind::Onecycle,
            ..ScheduleConfig::default()
        };
        edit(&mut config);
        config
    }

    /// Each rate is PyTorch's OneCycleLR formula worked by hand: `initial = max_lr / div_factor`,
    /// `min = initial / final_div_factor`, phase 1 over steps 0..=`pct_start * total - 1`,
    /// phase 2 from there to `total - 1`, cos anneal `end + (start - end) / 2 * (cos(pi * pct) + 1)`.
    #[test]
    fn onecycle_follows_pytorchs_formula() {
        // lr 0.1 = max_lr, defaults: initial 0.1 / 25 = 0.004, min 0.004 / 1e4 = 4e-7;
        // 10 epochs of 10 steps: total 100, phase 1 ends at step 0.3 * 100 - 1 = 29.
        let s = EpochSchedule::new(&onecycle(|_| {}), 0.1, 10, 10);
        let table = [
            (0, 0.004),
            // phase 1, pct 10/29: 0.1 + (0.004 - 0.1) / 2 * (cos(pi * 10/29) + 1)
            (10, 0.029516394846410082),
            (29, 0.1),
            // phase 2, pct (30 - 29) / (99 - 29) = 1/70: 4e-7 + (0.1 - 4e-7) / 2 * (cos(pi/70) + 1)
            (30, 0.09994965352845243),
            // pct 35/70 = 0.5: halfway, (0.1 + 4e-7) / 2
            (64, 0.0500002),
            (99, 4e-7),
        ];
        for (step, expected) in table {
            assert!(
                close(s.lr_at(step), expected),
                "step {step}: {}",
                s.lr_at(step)
            );
        }
        // Linear: 0.004 + (0.1 - 0.004) * 10/29.
        let linear = onecycle(|c| c.anneal_strategy = Some(AnnealStrategy::Linear));
        let s = EpochSchedule::new(&linear, 0.1, 10, 10);
        assert!(close(s.lr_at(10), 0.037103448275862067), "{}", s.lr_at(10));
        // PyTorch's `(end - start) * 1 + start` loses the last digits of 4e-7 to cancellation.
        assert!((s.lr_at(99) - 4e-7).abs() < 1e-16, "{}", s.lr_at(99));
    }

    #[test]
    fn onecycle_phase_ends_are_real_numbers_and_keys_override_the_defaults() {
        // max_lr 0.5 (not the optimizer's 0.1), div 10, final 100: initial 0.05, min 5e-4;
        // total 3 * 10 = 30, pct_start 0.25: phase 1 ends at step 6.5, between two steps.
        let config = onecycle(|c| {
            c.max_lr = Some(0.5);
            c.pct_start = Some(0.25);
            c.div_factor = Some(10.0);
            c.final_div_factor = Some(100.0);
        });
        let s = EpochSchedule::new(&config, 0.1, 10, 3);
        assert!(close(s.lr_at(0), 0.05));
        // pct 6 / 6.5: 0.5 + (0.05 - 0.5) / 2 * (cos(pi * 12/13) + 1)
        assert!(close(s.lr_at(6), 0.4934619089208617), "{}", s.lr_at(6));
        // phase 2 from 6.5: pct (7 - 6.5) / (29 - 6.5) = 1/45
        assert!(close(s.lr_at(7), 0.4993916215523911), "{}", s.lr_at(7));
        assert!(close(s.lr_at(29), 5e-4));
    }

    #[test]
    fn onecycle_resumes_from_its_record_with_the_same_rates() {
        let config = onecycle(|_| {});
        let mut whole = EpochSchedule::new(&config, 0.1, 10, 10);
        let rates: Vec<f64> = (0..100).map(|_| whole.step()).collect();
        let mut first = EpochSchedule::new(&config, 0.1, 10, 10);
        for _ in 0..37 {
            first.step();
        }
        let mut resumed = EpochSchedule::new(&config, 0.1, 10, 10);
        resumed.load_record(first.to_record());
        let after: Vec<f64> = (37..100).map(|_| resumed.step()).collect();
        assert_eq!(after, rates[37..]);
        assert!(close(rates[29], 0.1) && close(rates[99], 4e-7));
    }

    fn validate(schedule: &str) -> String {
        let text = format!(
            "model = \"resnet\"\nepochs = 10\n[optimizer]\nname = \"sgd\"\nlr = 0.1\n[schedule]\n{schedule}\n"
        );
        let config = crate::config::TrainConfig::from_toml(&text).unwrap();
        config
            .validate()
            .err()
            .map_or("ok".into(), |e| e.to_string())
    }

    #[test]
    fn onecycle_keys_are_checked_by_name() {
        assert_eq!(
            validate("name = \"onecycle\"\nanneal_strategy = \"linear\""),
            "ok"
        );
        assert_eq!(
            validate("name = \"onecycle\"\nwarmup_epochs = 2"),
            "schedule.warmup_epochs (2) does not combine with the onecycle schedule, which warms up on its own (schedule.pct_start); set warmup_epochs = 0"
        );
        assert_eq!(
            validate("name = \"onecycle\"\npct_start = 1.0"),
            "schedule.pct_start must be in (0, 1) (got 1)"
        );
        assert_eq!(
            validate("name = \"onecycle\"\ndiv_factor = 0.0"),
            "schedule.div_factor must be a positive number (got 0)"
        );
        assert_eq!(
            validate("name = \"cosine\"\nmax_lr = 0.5"),
            "schedule.max_lr only applies to the onecycle schedule (schedule.name is Cosine)"
        );
    }
}
