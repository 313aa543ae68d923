//! `cnnzoo runs`: the run folders under a folder, each with its state: finished (`results.json`
//! is written), running (a live `cnnzoo train` holds `run.lock`) or stopped (anything else:
//! killed, interrupted, failed).
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::config::TrainConfig;
use crate::run_dir::{RunDir, RunFile, RunResults};
use crate::run_lock::{self, LockInfo};
use crate::summary::{EpochRow, best_row};

/// How deep under the listed folder run folders are looked for.
const MAX_DEPTH: usize = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Finished,
    Running,
    Stopped,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

/// One run folder as `cnnzoo runs` lists it.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub run: PathBuf,
    pub status: Status,
    pub model: Option<String>,
    pub epochs_done: usize,
    pub epochs_planned: Option<usize>,
    pub best_epoch: Option<usize>,
    pub best_val_top1: Option<f64>,
    pub test_top1: Option<f64>,
    pub parameters: Option<usize>,
    pub wall_seconds: Option<f64>,
    /// The training process, while running.
    pub pid: Option<u32>,
}

/// The runs under `dir` (down to three levels), in path order.
pub fn list(dir: &Path) -> Result<Vec<RunInfo>> {
    if !dir.is_dir() {
        bail!(
            "{}: no such folder (runs are written to runs/<model> by `cnnzoo train`; name another folder with `cnnzoo runs DIR`)",
            dir.display()
        );
    }
    let mut folders = Vec::new();
    find_runs(dir, MAX_DEPTH, &mut folders);
    Ok(folders.iter().map(inspect).collect())
}

fn find_runs(dir: &Path, depth: usize, found: &mut Vec<RunDir>) {
    let run = RunDir::new(dir);
    if run.is_run() {
        found.push(run);
        return;
    }
    if depth == 0 {
        return;
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        find_runs(&child, depth - 1, found);
    }
}

/// What the files of one run folder say; a file that cannot be read is reported by name and
/// left out, so one damaged folder does not hide the others.
fn inspect(dir: &RunDir) -> RunInfo {
    let warn = |e: anyhow::Error| eprintln!("warning: {e:#}");
    let finished = dir.is_finished();
    let results = finished
        .then(|| dir.read_results().map_err(warn).ok())
        .flatten()
        .unwrap_or_default();
    let config = dir
        .file(RunFile::Config)
        .is_file()
        .then(|| {
            TrainConfig::from_file(&dir.file(RunFile::Config))
                .map_err(warn)
                .ok()
        })
        .flatten();
    let rows: Vec<EpochRow> = if dir.file(RunFile::Summary).is_file() {
        dir.read_summary().map_err(warn).unwrap_or_default()
    } else {
        Vec::new()
    };
    let lock = LockInfo::read(dir);
    let live = lock.as_ref().filter(|l| l.is_alive());
    let status = if finished {
        Status::Finished
    } else if live.is_some() {
        Status::Running
    } else {
        Status::Stopped
    };
    let best = best_row(&rows);
    let wall_seconds = match status {
        Status::Finished => results.wall_seconds,
        Status::Running => live.map(|l| {
            l.earlier_seconds.unwrap_or(0.0)
                + run_lock::now_unix().saturating_sub(l.started_unix) as f64
        }),
        Status::Stopped => (!rows.is_empty()).then(|| rows.iter().map(|r| r.seconds).sum()),
    };
    let RunResults {
        model,
        best_epoch,
        epochs_done,
        epochs_planned,
        val_top1,
        test_top1,
        parameters,
        ..
    } = results;
    RunInfo {
        run: dir.path().to_path_buf(),
        status,
        model: model.or_else(|| config.as_ref().map(|c| c.model.clone())),
        epochs_done: epochs_done.unwrap_or_else(|| rows.last().map_or(0, |r| r.epoch)),
        epochs_planned: epochs_planned.or_else(|| config.as_ref().map(|c| c.epochs)),
        best_epoch: best_epoch.or_else(|| best.map(|b| b.epoch)),
        best_val_top1: val_top1.or_else(|| best.and_then(|b| b.val_top1)),
        test_top1,
        parameters: parameters.or_else(|| lock.as_ref().and_then(|l| l.parameters)),
        wall_seconds,
        pid: live.map(|l| l.pid),
    }
}
