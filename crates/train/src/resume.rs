//! `--resume` continues the run that is in the folder, not whatever the new command describes:
//! the run's own `config.toml` is the config, and a config or flags given beside `--resume` are
//! compared with it key by key. A difference that changes what is computed (model, seed, data
//! split, batch size, optimizer, schedule, ...) is refused unless `--allow-config-change`, which
//! records it in `config_history.json`. Where the run trains, with how many workers, and what
//! it logs may change freely.
//!
//! More epochs extend a run (a finished one too) under a constant or multi-step schedule: the
//! epochs done are what they were, and later epochs go on at the rate the schedule gives them
//! (milestones stay where they are). A cosine or onecycle schedule spreads its curve over all the epochs, so
//! a new count would have changed the epochs already done: that needs `--allow-config-change`,
//! and the curve is then stretched from the next step on.
use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::optim::OptimizerRecord;
use burn::optim::lr_scheduler::LrSchedulerRecord;
use burn::store::ModuleRecord;
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::classifier::Classifier;
use crate::config::TrainConfig;
use crate::run_dir::{RunDir, RunFile};
use crate::run_lock::now_unix;
use crate::schedule::ITERATION_KEY;

/// One key whose value differs between the run's config and the new command's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigChange {
    pub key: String,
    /// The value, as TOML, or `(unset)`.
    pub old: String,
    pub new: String,
}

/// One session's accepted changes, as `config_history.json` lists them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub resumed_after_epoch: usize,
    pub unix_time: u64,
    pub changes: Vec<ConfigChange>,
}

/// Keys that change neither the weights nor the figures of a run. The devices change them a
/// little (batch-norm statistics are per device), but moving a run to another number of GPUs
/// is what resuming is for: `train` notes it in the log instead.
fn changes_nothing_computed(key: &str) -> bool {
    matches!(
        key,
        "device"
            | "devices"
            | "parallel"
            | "workers"
            | "output"
            | "data_dir"
            | "data.root"
            | "data.eval_workers"
    ) || key.starts_with("log.")
}

/// Refuses to resume from a folder that is not there.
pub fn ensure_run_folder(dir: &RunDir) -> Result<()> {
    if !dir.path().exists() {
        bail!(
            "--resume: {} does not exist, so there is no run to resume; start it without --resume \
             (or give the run's folder with --output)",
            dir.path().display()
        );
    }
    Ok(())
}

/// The run folder's own config, which `--resume` continues.
pub fn saved_config(dir: &RunDir) -> Result<TrainConfig> {
    ensure_run_folder(dir)?;
    let path = dir.file(RunFile::Config);
    if !path.is_file() {
        bail!(
            "--resume: {} does not hold a run's {} (was it made by `cnnzoo train`?)",
            dir.path().display(),
            RunFile::Config.name()
        );
    }
    TrainConfig::from_file(&path)
}

/// Every key whose value differs, in key order.
pub fn differences(saved: &TrainConfig, new: &TrainConfig) -> Result<Vec<ConfigChange>> {
    let old = saved.flat_keys()?;
    let new = new.flat_keys()?;
    let mut keys: Vec<&String> = old.iter().chain(&new).map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    let value = |list: &[(String, toml::Value)], key: &str| {
        list.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    };
    let shown = |v: &Option<toml::Value>| v.as_ref().map_or("(unset)".into(), |v| v.to_string());
    Ok(keys
        .into_iter()
        .filter_map(|key| {
            let (a, b) = (value(&old, key), value(&new, key));
            (a != b).then(|| ConfigChange {
                key: key.clone(),
                old: shown(&a),
                new: shown(&b),
            })
        })
        .collect())
}

/// Whether a change alters what the run computes from here on or computed so far.
fn changes_the_run(change: &ConfigChange, saved: &TrainConfig) -> bool {
    if changes_nothing_computed(&change.key) {
        return false;
    }
    // Under a constant or multi-step schedule, more epochs only add epochs at the end.
    change.key != "epochs" || saved.schedule.name.spans_the_run()
}

/// Checks the new command against the run's config and returns every difference it accepts;
/// refuses with each key listed when one changes the run and `allow` is not given, and when
/// the new epoch count leaves nothing to do (a run killed after its last epoch, before its
/// results were written, still has its evaluation to do).
pub fn check(
    dir: &RunDir,
    saved: &TrainConfig,
    new: &TrainConfig,
    completed: usize,
    finished: bool,
    allow: bool,
) -> Result<Vec<ConfigChange>> {
    if new.epochs < completed || (new.epochs == completed && finished) {
        bail!(
            "--resume: {} has done {completed} of its {} epochs, so there is nothing to train; \
             extend it with --epochs (more than {completed})",
            dir.path().display(),
            new.epochs
        );
    }
    let changes = differences(saved, new)?;
    let refused: Vec<&ConfigChange> = changes
        .iter()
        .filter(|c| changes_the_run(c, saved))
        .collect();
    if !refused.is_empty() && !allow {
        let list: Vec<String> = refused
            .iter()
            .map(|c| format!("  {}: {} -> {}", c.key, c.old, c.new))
            .collect();
        bail!(
            "--resume: the command changes how the run in {} trains:\n{}\n\
             `cnnzoo train --resume --output {}` alone continues it as it started; add \
             --allow-config-change to continue with the changes (recorded in {})",
            dir.path().display(),
            list.join("\n"),
            dir.path().display(),
            RunFile::ConfigHistory.name()
        );
    }
    Ok(changes)
}

/// Appends a session's accepted changes to `config_history.json`.
pub fn record(dir: &RunDir, completed: usize, changes: Vec<ConfigChange>) -> Result<()> {
    let path = dir.file(RunFile::ConfigHistory);
    let mut history: Vec<HistoryEntry> = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not a config history", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    history.push(HistoryEntry {
        resumed_after_epoch: completed,
        unix_time: now_unix(),
        changes,
    });
    let text = serde_json::to_string_pretty(&history).context("cannot serialise the history")?;
    atomic::write_bytes(&path, text.as_bytes())
}

/// Every record `--resume` reads loads completely, before training starts: burn's learner panics
/// on a model or optimizer checkpoint it cannot load, and its scheduler interface cannot fail at
/// all. The model's weights must fit `model` (the network about to be trained), the optimizer
/// state must read, the scheduler must hold its step (`check_scheduler_record`), and
/// summary.csv must have a row for every epoch done (the best epoch is chosen from them).
pub fn check_records(
    dir: &RunDir,
    completed: usize,
    steps_per_epoch: Option<usize>,
    model: &Classifier,
) -> Result<()> {
    let path = dir.checkpoint("model", completed);
    let record = ModuleRecord::load(path.clone())
        .map_err(|e| anyhow!("{}: cannot read the weights: {e}", path.display()))?;
    model.clone().try_load_record(record).map_err(|e| {
        anyhow!(
            "{}: the weights do not fit the run's model: {e}",
            path.display()
        )
    })?;
    let path = dir.checkpoint("optim", completed);
    OptimizerRecord::load(path.clone())
        .map_err(|e| anyhow!("{}: cannot read the optimizer state: {e}", path.display()))?;
    check_scheduler_record(dir, completed, steps_per_epoch)?;
    let rows = dir.read_summary()?;
    let missing: Vec<usize> = (1..=completed)
        .filter(|epoch| !rows.iter().any(|row| row.epoch == *epoch))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{}: no row for epoch {missing:?}, though the checkpoint of epoch {completed} is complete",
            dir.file(RunFile::Summary).display()
        );
    }
    Ok(())
}

/// The scheduler record of the checkpoint `--resume` continues from must hold the step the run
/// reached, and (given the epochs' length) that step must be where `completed` epochs end:
/// burn's scheduler interface cannot fail, so a record without it would restart the schedule
/// from step 0 without a word.
fn check_scheduler_record(
    dir: &RunDir,
    completed: usize,
    steps_per_epoch: Option<usize>,
) -> Result<()> {
    let path = dir.checkpoint("scheduler", completed);
    let record = LrSchedulerRecord::load(path.clone())
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    // burn's learner keeps a scheduler per parameter group and files each record under the
    // group's index; the run's one schedule is group 0.
    let Some(iteration) = record.record("0").scalar::<u64>(ITERATION_KEY) else {
        bail!(
            "{}: the scheduler record has no `{ITERATION_KEY}` field, so the learning rate \
             schedule cannot be resumed",
            path.display()
        );
    };
    let Some(steps_per_epoch) = steps_per_epoch else {
        return Ok(());
    };
    let expected = (completed * steps_per_epoch) as u64;
    if iteration != expected {
        bail!(
            "{}: `{ITERATION_KEY}` is {iteration}, but epoch {completed} of this run ends at step \
             {expected}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(schedule: &str) -> TrainConfig {
        TrainConfig::from_toml(&format!(
            "model = \"resnet\"\nepochs = 10\noptimizer = {{ name = \"sgd\", lr = 0.1 }}\n\
             schedule = {{ {schedule} }}\n"
        ))
        .unwrap()
    }

    fn check_with(
        saved: &TrainConfig,
        new: &TrainConfig,
        allow: bool,
    ) -> Result<Vec<ConfigChange>> {
        let dir = RunDir::new("runs/x");
        check(&dir, saved, new, 4, true, allow)
    }

    #[test]
    fn more_epochs_extend_a_multistep_run_but_change_a_cosine_one() {
        for (schedule, refused) in [
            ("name = \"multistep\", milestones = [5]", false),
            ("name = \"cosine\"", true),
        ] {
            let saved = config(schedule);
            let mut longer = saved.clone();
            longer.epochs = 20;
            let result = check_with(&saved, &longer, false);
            assert_eq!(result.is_err(), refused, "{schedule}: {result:?}");
            let accepted = check_with(&saved, &longer, true).unwrap();
            assert_eq!(
                accepted,
                [ConfigChange {
                    key: "epochs".into(),
                    old: "10".into(),
                    new: "20".into()
                }]
            );
        }
    }

    #[test]
    fn where_it_runs_may_change_and_what_it_computes_may_not() {
        let saved = config("");
        let mut moved = saved.clone();
        moved.device = "wgpu".into();
        moved.workers = 8;
        moved.log.tensorboard = false;
        assert_eq!(check_with(&saved, &moved, false).unwrap().len(), 3);

        let mut changed = saved.clone();
        changed.batch_size = 64;
        changed.optimizer.set_lr(0.2);
        let message = format!("{:#}", check_with(&saved, &changed, false).unwrap_err());
        assert!(message.contains("batch_size: 128 -> 64"), "{message}");
        assert!(message.contains("optimizer.lr: 0.1 -> 0.2"), "{message}");
    }

    #[test]
    fn fewer_epochs_than_done_leave_nothing_to_train() {
        let saved = config("");
        let mut shorter = saved.clone();
        shorter.epochs = 4;
        let message = format!("{:#}", check_with(&saved, &shorter, true).unwrap_err());
        assert!(message.contains("has done 4 of its 4 epochs"), "{message}");
        // Killed after its last epoch but before its results: the evaluation is left to do.
        let dir = RunDir::new("runs/x");
        assert!(check(&dir, &shorter, &shorter, 4, false, false).is_ok());
    }
}
