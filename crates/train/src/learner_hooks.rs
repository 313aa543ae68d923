//! What burn-train calls while it fits: per-epoch metrics gathered from its event store into
//! `summary.csv`, the checkpoints to keep, and checkpoints written atomically, with the best one
//! exported as `best.bpk`.
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use anyhow::Result;
use burn::train::Interrupter;
use burn::train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, EventStoreClient, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, MetricId, NumericEntry};

use crate::accuracy::RAW_TOP1_NAME;
use crate::atomic;
use crate::checkpoint::{self, CheckpointMeta};
use crate::fault;
use crate::run_dir::{RunDir, RunFile};
use crate::summary::{EpochRow, best_row};
use crate::tensorboard::{TensorBoardLog, TrainFigures};

/// Called with every epoch's rows once an epoch ends (the curves are redrawn from them).
type EpochHook = Box<dyn Fn(&[EpochRow]) + Send>;

/// Shared by the metric logger, the checkpointing strategy and the checkpointer.
pub struct RunState {
    dir: RunDir,
    rows: Vec<EpochRow>,
    /// Metric name by id, from the definitions the event store announces.
    names: HashMap<MetricId, String>,
    /// Latest epoch-running value of each metric of the epoch in progress.
    current: HashMap<(bool, String), f64>,
    epoch_started: Option<Instant>,
    train_seconds: f64,
    train_items: usize,
    /// Written beside `best.bpk`.
    meta: CheckpointMeta,
    on_epoch_end: Option<EpochHook>,
    /// Training steps logged in the epoch in progress.
    steps: usize,
    /// Validation batches logged in the epoch in progress.
    valid_steps: usize,
    /// Epoch and step where the loss stopped being finite.
    diverged: Option<(usize, usize)>,
    /// Whether images were held out: without, burn-train still runs an empty validation whose
    /// figures are NaN, and they are left out.
    validates: bool,
    tensorboard: Option<TensorBoardLog>,
}

#[derive(Clone)]
pub struct SharedRun(Arc<Mutex<RunState>>);

impl SharedRun {
    /// `rows` are the epochs already done (when resuming); `validates` says whether there is a
    /// validation split.
    pub fn new(dir: RunDir, rows: Vec<EpochRow>, meta: CheckpointMeta, validates: bool) -> Self {
        Self(Arc::new(Mutex::new(RunState {
            dir,
            rows,
            names: HashMap::new(),
            current: HashMap::new(),
            epoch_started: None,
            train_seconds: 0.0,
            train_items: 0,
            meta,
            on_epoch_end: None,
            steps: 0,
            valid_steps: 0,
            diverged: None,
            validates,
            tensorboard: None,
        })))
    }

    /// Runs after each epoch's row is written (the curves are drawn there).
    pub fn on_epoch_end(&self, hook: impl Fn(&[EpochRow]) + Send + 'static) {
        self.lock().on_epoch_end = Some(Box::new(hook));
    }

    fn lock(&self) -> MutexGuard<'_, RunState> {
        // A panic elsewhere must not also lose the run's bookkeeping.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Logs every step's and epoch's figures to TensorBoard too.
    pub fn log_to(&self, tensorboard: TensorBoardLog) {
        self.lock().tensorboard = Some(tensorboard);
    }

    /// The evaluation of best.bpk, in the TensorBoard log if there is one.
    pub fn finish_log(&self, epochs: usize, val_top1: Option<f64>, test_top1: Option<f64>) {
        if let Some(tensorboard) = &mut self.lock().tensorboard {
            tensorboard.finish(epochs, val_top1, test_top1);
        }
    }

    /// Epoch and step at which the training loss became NaN or infinite, if it did.
    pub fn diverged(&self) -> Option<(usize, usize)> {
        self.lock().diverged
    }

    pub fn rows(&self) -> Vec<EpochRow> {
        self.lock().rows.clone()
    }

    /// The best epoch so far: highest score, the earlier on ties.
    pub fn best(&self) -> Option<EpochRow> {
        best_row(&self.lock().rows).cloned()
    }
}

fn numeric_value(entry: &NumericEntry) -> f64 {
    match entry {
        NumericEntry::Value(v) | NumericEntry::Final(v) => *v,
        NumericEntry::Aggregated {
            aggregated_value, ..
        } => *aggregated_value,
    }
}

impl RunState {
    fn metric(&self, valid: bool, name: &str) -> Option<f64> {
        self.current.get(&(valid, name.to_string())).copied()
    }

    fn finish_epoch(&mut self, epoch: usize) -> Result<()> {
        let top5 = self
            .current
            .iter()
            .find(|((valid, name), _)| *valid && name.starts_with("Top"))
            .map(|(_, v)| *v);
        let has_valid = self.validates && self.metric(true, "Loss").is_some();
        let row = EpochRow {
            epoch,
            lr: self.metric(false, "Learning Rate").unwrap_or(0.0),
            train_loss: self.metric(false, "Loss").unwrap_or(f64::NAN),
            train_top1: self.metric(false, "Accuracy").unwrap_or(f64::NAN),
            val_loss: if has_valid {
                self.metric(true, "Loss")
            } else {
                None
            },
            val_top1: if has_valid {
                self.metric(true, "Accuracy")
            } else {
                None
            },
            val_top5: if has_valid { top5 } else { None },
            seconds: self
                .epoch_started
                .map(|t| t.elapsed().as_secs_f64())
                .unwrap_or(0.0),
            images_per_second: if self.train_seconds > 0.0 {
                self.train_items as f64 / self.train_seconds
            } else {
                0.0
            },
            peak_rss_mb: crate::peak_memory::take_peak_rss_mb(),
            val_top1_raw: if has_valid {
                self.metric(true, RAW_TOP1_NAME)
            } else {
                None
            },
        };
        self.rows.retain(|r| r.epoch < epoch);
        self.rows.push(row);
        self.current.clear();
        self.epoch_started = None;
        self.train_items = 0;
        self.train_seconds = 0.0;
        self.steps = 0;
        self.valid_steps = 0;
        self.dir.write_summary(&self.rows)?;
        if let (Some(tensorboard), Some(row)) = (&mut self.tensorboard, self.rows.last()) {
            tensorboard.epoch_end(row);
        }
        if let Some(hook) = &self.on_epoch_end {
            hook(&self.rows);
        }
        Ok(())
    }
}

/// Collects burn-train's metric updates into epoch rows, and stops the run when the loss stops
/// being finite. On N devices burn reports each step as N updates, one per device's batch of
/// `batch_size` images; a step counts once all N are in.
pub struct RunLogger {
    run: SharedRun,
    batch_size: usize,
    devices: usize,
    /// Training updates of the current step so far.
    updates_in_step: usize,
    interrupter: Interrupter,
}

impl RunLogger {
    pub fn new(
        run: SharedRun,
        batch_size: usize,
        devices: usize,
        interrupter: Interrupter,
    ) -> Self {
        Self {
            run,
            batch_size,
            devices: devices.max(1),
            updates_in_step: 0,
            interrupter,
        }
    }
}

impl MetricLogger for RunLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        let mut state = self.run.lock();
        let valid = matches!(split, Split::Valid);
        let now = Instant::now();
        let started = *state.epoch_started.get_or_insert(now);
        let mut step_done = true;
        if !valid {
            state.train_items += self.batch_size;
            state.train_seconds = now.duration_since(started).as_secs_f64();
            self.updates_in_step += 1;
            step_done = self.updates_in_step == self.devices;
            if step_done {
                self.updates_in_step = 0;
                state.steps += 1;
            }
        } else {
            state.valid_steps += 1;
        }
        for metric in update.entries_numeric {
            let Some(name) = state.names.get(&metric.entry.metric_id).cloned() else {
                continue;
            };
            if !valid
                && name == "Loss"
                && state.diverged.is_none()
                && let Some(batch_loss) = &metric.numeric_entry
                && !numeric_value(batch_loss).is_finite()
            {
                state.diverged = Some((epoch, state.steps));
                self.interrupter
                    .stop(Some("the training loss is not finite"));
            }
            if let Some(entry) = metric
                .running_entry
                .as_ref()
                .or(metric.numeric_entry.as_ref())
            {
                state.current.insert((valid, name), numeric_value(entry));
            }
        }
        let steps = state.steps;
        let valid_steps = state.valid_steps;
        if !step_done {
            return;
        }
        if !valid {
            let figure = |name: &str| state.metric(false, name).unwrap_or(f64::NAN);
            let figures = TrainFigures {
                loss: figure("Loss"),
                top1: figure("Accuracy"),
                lr: figure("Learning Rate"),
            };
            if let Some(tensorboard) = &mut state.tensorboard {
                tensorboard.train_step(epoch, steps, figures);
            }
        }
        drop(state);
        if valid {
            fault::pause_if_asked(&format!("valid:{epoch}:{valid_steps}"), || false);
        } else {
            fault::pause_if_asked(&format!("step:{epoch}:{steps}"), || {
                self.interrupter.should_stop()
            });
        }
    }

    fn read_numeric(
        &mut self,
        name: &str,
        _epoch: usize,
        _split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        Err(format!(
            "cnnzoo keeps epoch summaries in summary.csv, not per-item values of {name}"
        ))
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.run
            .lock()
            .names
            .insert(definition.metric_id, definition.name.to_string());
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        if matches!(summary.split, Split::Valid) {
            let mut state = self.run.lock();
            if let Err(e) = state.finish_epoch(summary.epoch_number) {
                eprintln!("warning: could not write the epoch summary: {e:#}");
            }
        }
    }
}

/// Keeps the checkpoints of the best epoch (to export) and of the last two epochs: the model,
/// optimizer and scheduler files are written by three threads, so the previous epoch stays
/// complete on disk until the newest one surely is, whatever instant the process is killed.
pub struct KeepBestAndLast {
    run: SharedRun,
    kept: BTreeSet<usize>,
}

impl KeepBestAndLast {
    /// `kept` are the epochs whose checkpoints are already on disk (when resuming).
    pub fn new(run: SharedRun, kept: BTreeSet<usize>) -> Self {
        Self { run, kept }
    }
}

impl CheckpointingStrategy for KeepBestAndLast {
    fn checkpointing(
        &mut self,
        epoch: usize,
        _store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        let best = self.run.best().map(|r| r.epoch);
        let previous = self.kept.iter().copied().filter(|&e| e < epoch).max();
        let keep: BTreeSet<usize> = [Some(epoch), previous, best]
            .into_iter()
            .flatten()
            .collect();
        // Save first: each checkpointer thread then deletes only after writing the new file.
        let mut actions = vec![CheckpointingAction::Save];
        actions.extend(
            self.kept
                .difference(&keep)
                .map(|&e| CheckpointingAction::Delete(e)),
        );
        self.kept = keep;
        actions
    }
}

/// burn-train's file checkpointer, made atomic; the model's also exports the best epoch as
/// `best.bpk` with its metadata.
pub struct AtomicCheckpointer {
    run_dir: RunDir,
    /// One of [`crate::run_dir::CHECKPOINT_PARTS`].
    part: &'static str,
    export_best: Option<SharedRun>,
}

impl AtomicCheckpointer {
    pub fn new(run_dir: RunDir, part: &'static str, export_best: Option<SharedRun>) -> Self {
        Self {
            run_dir,
            part,
            export_best,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        self.run_dir.checkpoint(self.part, epoch)
    }
}

impl<R: Checkpoint> Checkpointer<R> for AtomicCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        std::fs::create_dir_all(self.run_dir.checkpoint_dir())
            .map_err(CheckpointerError::IOError)?;
        let path = self.path(epoch);
        let unknown = |e: anyhow::Error| CheckpointerError::Unknown(format!("{e:#}"));
        atomic::write_with(&path, |temp| {
            record
                .save(temp.to_path_buf())
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", temp.display()))?;
            fault::pause_if_asked(&format!("checkpoint:{}:{epoch}", self.part), || false);
            Ok(())
        })
        .map_err(unknown)?;
        if let Some(run) = &self.export_best {
            let state = run.lock();
            if let Some(best) = best_row(&state.rows).filter(|b| b.epoch == epoch) {
                let best_path = state.dir.file(RunFile::Best);
                let mut meta = state.meta.clone();
                meta.epoch = Some(epoch);
                meta.val_top1 = best.val_top1;
                atomic::copy(&path, &best_path).map_err(unknown)?;
                checkpoint::write_meta(&best_path, &meta).map_err(unknown)?;
            }
        }
        Ok(())
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match std::fs::remove_file(self.path(epoch)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(e))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        R::load(self.path(epoch))
    }
}
