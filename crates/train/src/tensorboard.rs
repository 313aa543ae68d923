//! The run's TensorBoard log (`DIR/tb/`, one event file per session), so runs can be compared in
//! TensorBoard beside the user's other experiments: `tensorboard --logdir runs`.
//!
//! Steps are global optimizer steps: step `s` of epoch `e` is `(e - 1) * steps_per_epoch + s`.
//! Every session starts its file with a `SessionLog.START` at the first step it will log (1, or
//! after a resume the step after the checkpoint's epoch), which makes TensorBoard forget the
//! points a killed session wrote after its last checkpoint: they are logged again, once
//! (`cnnzoo_tensorboard` explains how each of TensorBoard's loaders applies it).
//!
//! Training figures are the epoch-so-far means the progress line shows, at its cadence; each
//! epoch's end logs that epoch's summary.csv row at its last step. Events are synced to disk
//! after every epoch and at the end, so a crash loses at most the epoch in progress.
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use cnnzoo_tensorboard::{EventWriter, HParamValue, SessionStatus};

use crate::config::TrainConfig;
use crate::run_dir::{RunDir, RunFile};
use crate::summary::EpochRow;

/// The progress line's cadence (`progress.rs`), for the training scalars between epoch ends.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The figures the HParams tab compares runs by: the last epoch's validation top-1, and
/// best.bpk's validation and test top-1.
const HPARAM_METRICS: [&str; 3] = ["val/top1", "best/val_top1", "test/top1"];

pub struct TensorBoardLog {
    writer: EventWriter,
    steps_per_epoch: usize,
    last_train_point: Instant,
    /// Set by the first failed write: training goes on, and the log stops where it failed.
    failed: bool,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl TensorBoardLog {
    /// A new event file for this session, with the resolved config as text and as hparams.
    pub fn open(
        run_dir: &RunDir,
        config: &TrainConfig,
        steps_per_epoch: usize,
        resume_from: Option<usize>,
    ) -> Result<Self> {
        let dir = run_dir.file(RunFile::TensorBoard);
        let mut writer = EventWriter::create(&dir)
            .with_context(|| format!("cannot start the TensorBoard log in {}", dir.display()))?;
        let first_step = resume_from.unwrap_or(0) * steps_per_epoch + 1;
        let start = now();
        let toml = config.to_toml()?;
        let hparams = hparams(config)?;
        let group = run_dir.path().display().to_string();
        (|| {
            writer.add_session_start(first_step as i64, start)?;
            writer.add_text("config", &format!("```toml\n{toml}\n```"), 0, start)?;
            writer.add_hparams_start(&hparams, &HPARAM_METRICS, &group, start)?;
            writer.flush()
        })()
        .with_context(|| format!("cannot write the TensorBoard log in {}", dir.display()))?;
        Ok(Self {
            writer,
            steps_per_epoch,
            last_train_point: Instant::now(),
            failed: false,
        })
    }

    fn step(&self, epoch: usize, step_in_epoch: usize) -> i64 {
        ((epoch - 1) * self.steps_per_epoch + step_in_epoch) as i64
    }

    /// Writes with `write`, or warns once and stops logging if the log cannot be written.
    fn write(&mut self, write: impl FnOnce(&mut EventWriter) -> cnnzoo_tensorboard::Result<()>) {
        if self.failed {
            return;
        }
        if let Err(e) = write(&mut self.writer) {
            self.failed = true;
            eprintln!(
                "warning: the TensorBoard log stops here, training goes on: {}: {e}",
                self.writer.path().display()
            );
        }
    }

    /// The training figures after a step, at the progress line's cadence; an epoch's last step
    /// is left to [`Self::epoch_end`].
    pub fn train_step(&mut self, epoch: usize, step_in_epoch: usize, figures: TrainFigures) {
        if step_in_epoch >= self.steps_per_epoch || self.last_train_point.elapsed() < LOG_EVERY {
            return;
        }
        self.last_train_point = Instant::now();
        let step = self.step(epoch, step_in_epoch);
        self.write(|w| figures.write(w, step, now()));
    }

    /// An epoch's summary.csv row at its last step, then everything synced to disk.
    pub fn epoch_end(&mut self, row: &EpochRow) {
        let step = self.step(row.epoch, self.steps_per_epoch);
        let time = now();
        let train = TrainFigures {
            loss: row.train_loss,
            top1: row.train_top1,
            lr: row.lr,
        };
        self.write(|w| {
            train.write(w, step, time)?;
            for (tag, value) in [
                ("val/loss", row.val_loss),
                ("val/top1", row.val_top1),
                ("val/top5", row.val_top5),
                ("val/top1_raw", row.val_top1_raw),
            ] {
                if let Some(value) = value {
                    w.add_scalar(tag, value, step, time)?;
                }
            }
            w.add_scalar("perf/images_per_second", row.images_per_second, step, time)?;
            w.flush()
        });
        self.last_train_point = Instant::now();
    }

    /// The evaluation of `best.bpk` at the run's last step, and the session marked finished.
    pub fn finish(&mut self, epochs: usize, val_top1: Option<f64>, test_top1: Option<f64>) {
        let step = self.step(epochs, self.steps_per_epoch);
        let time = now();
        self.write(|w| {
            if let Some(val_top1) = val_top1 {
                w.add_scalar("best/val_top1", val_top1, step, time)?;
            }
            if let Some(test_top1) = test_top1 {
                w.add_scalar("test/top1", test_top1, step, time)?;
            }
            w.add_hparams_end(SessionStatus::Success, time)?;
            w.flush()
        });
    }
}

/// The epoch-so-far training figures.
#[derive(Clone, Copy, Debug)]
pub struct TrainFigures {
    pub loss: f64,
    pub top1: f64,
    pub lr: f64,
}

impl TrainFigures {
    fn write(&self, w: &mut EventWriter, step: i64, time: f64) -> cnnzoo_tensorboard::Result<()> {
        w.add_scalar("train/loss", self.loss, step, time)?;
        w.add_scalar("train/top1", self.top1, step, time)?;
        w.add_scalar("train/lr", self.lr, step, time)
    }
}

/// The resolved config as hparams, one per key (`optimizer.lr`, `schedule.milestones`, ...);
/// lists and other values without a TensorBoard type become text.
fn hparams(config: &TrainConfig) -> Result<Vec<(String, HParamValue)>> {
    let keys = config.flat_keys()?;
    Ok(keys
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                toml::Value::Integer(n) => HParamValue::Number(n as f64),
                toml::Value::Float(x) => HParamValue::Number(x),
                toml::Value::Boolean(b) => HParamValue::Bool(b),
                toml::Value::String(s) => HParamValue::Text(s),
                other => HParamValue::Text(other.to_string()),
            };
            (name, value)
        })
        .collect())
}
