//! `cnnzoo runs`: the run folders under a folder, as a table or JSON, each with its state:
//! finished (`results.json` is written), running (a live `cnnzoo train` holds `run.lock`) or
//! stopped (anything else: killed, interrupted, failed).
//!
//! `run.lock` is written by `train` when it starts and removed when it ends, however it ends,
//! short of being killed. It names the process, so a lock whose process is gone is stale and
//! the run counts as stopped.
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic;
use crate::config::TrainConfig;
use crate::models_cmd::group_thousands;
use crate::run::{self, EpochRow};

pub const LOCK_FILE: &str = "run.lock";

/// How deep under the listed folder run folders are looked for.
const MAX_DEPTH: usize = 3;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct LockInfo {
    pid: u32,
    /// The process's start time (Linux clock ticks since boot), so that a reused pid is not
    /// taken for the process that wrote the lock.
    #[serde(default)]
    process_start: Option<u64>,
    started_unix: u64,
    #[serde(default)]
    parameters: Option<usize>,
}

/// Held by `cnnzoo train` for the whole run; the file goes when this is dropped.
pub struct RunLock {
    path: PathBuf,
    info: LockInfo,
}

/// Refuses a run folder that a live `cnnzoo train` holds, before anything in it is touched.
pub fn ensure_not_running(dir: &Path) -> Result<()> {
    if let Some(info) = read_lock(dir)
        && info.pid != std::process::id()
        && is_alive(&info)
    {
        bail!(
            "{} is being trained by process {} (see {}); wait for it to finish or stop it first",
            dir.display(),
            info.pid,
            dir.join(LOCK_FILE).display()
        );
    }
    Ok(())
}

impl RunLock {
    /// Writes `run.lock` into the (existing) run folder.
    pub fn create(dir: &Path) -> Result<Self> {
        let pid = std::process::id();
        let lock = Self {
            path: dir.join(LOCK_FILE),
            info: LockInfo {
                pid,
                process_start: process_start(pid),
                started_unix: now_unix(),
                parameters: None,
            },
        };
        lock.write()?;
        Ok(lock)
    }

    /// Records the model's size, which `cnnzoo runs` shows before `results.json` exists.
    pub fn set_parameters(&mut self, parameters: usize) -> Result<()> {
        self.info.parameters = Some(parameters);
        self.write()
    }

    fn write(&self) -> Result<()> {
        let text =
            serde_json::to_string_pretty(&self.info).context("cannot serialise the run lock")?;
        atomic::write_bytes(&self.path, text.as_bytes())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            eprintln!("warning: cannot remove {}: {e}", self.path.display());
        }
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn read_lock(dir: &Path) -> Option<LockInfo> {
    let text = std::fs::read_to_string(dir.join(LOCK_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Field 22 of `/proc/PID/stat`, counted after the parenthesised command name (which may hold
/// spaces).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// With /proc (Linux), the process must exist and have started when the lock says; elsewhere
/// `kill -0` tells whether the pid is in use.
fn is_alive(info: &LockInfo) -> bool {
    if Path::new("/proc/self/stat").exists() {
        match (process_start(info.pid), info.process_start) {
            (Some(now), Some(then)) => now == then,
            (Some(_), None) => true,
            (None, _) => false,
        }
    } else {
        std::process::Command::new("kill")
            .args(["-0", &info.pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Finished,
    Running,
    Stopped,
}

impl Status {
    fn name(self) -> &'static str {
        match self {
            Self::Finished => "finished",
            Self::Running => "running",
            Self::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Serialize)]
struct RunInfo {
    run: PathBuf,
    status: Status,
    model: Option<String>,
    epochs_done: usize,
    epochs_planned: Option<usize>,
    best_epoch: Option<usize>,
    best_val_top1: Option<f64>,
    test_top1: Option<f64>,
    parameters: Option<usize>,
    wall_seconds: Option<f64>,
    /// The training process, while running.
    pid: Option<u32>,
}

/// The files that make a folder a run folder: `config.toml` is written before the first epoch.
fn is_run(dir: &Path) -> bool {
    ["config.toml", "summary.csv", "results.json", LOCK_FILE]
        .iter()
        .any(|f| dir.join(f).is_file())
}

fn find_runs(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if is_run(dir) {
        found.push(dir.to_path_buf());
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
fn inspect(dir: &Path) -> RunInfo {
    let warn = |e: anyhow::Error| eprintln!("warning: {e:#}");
    let results: Option<Value> = {
        let path = dir.join("results.json");
        path.is_file()
            .then(|| {
                std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))
                    .and_then(|t| {
                        serde_json::from_str(&t)
                            .with_context(|| format!("{}: not valid JSON", path.display()))
                    })
                    .map_err(warn)
                    .ok()
            })
            .flatten()
    };
    let config = {
        let path = dir.join("config.toml");
        path.is_file()
            .then(|| TrainConfig::from_file(&path).map_err(warn).ok())
            .flatten()
    };
    let rows: Vec<EpochRow> = {
        let path = dir.join("summary.csv");
        if path.is_file() {
            run::read_summary(&path).map_err(warn).unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let lock = read_lock(dir);
    let live = lock.as_ref().filter(|l| is_alive(l));
    let status = if dir.join("results.json").is_file() {
        Status::Finished
    } else if live.is_some() {
        Status::Running
    } else {
        Status::Stopped
    };
    let best = run::best_row(&rows);
    let number = |key: &str| results.as_ref().and_then(|r| r[key].as_f64());
    let count = |key: &str| {
        results
            .as_ref()
            .and_then(|r| r[key].as_u64())
            .map(|v| v as usize)
    };
    let wall_seconds = match status {
        Status::Finished => number("wall_seconds"),
        Status::Running => live.map(|l| now_unix().saturating_sub(l.started_unix) as f64),
        Status::Stopped => (!rows.is_empty()).then(|| rows.iter().map(|r| r.seconds).sum()),
    };
    RunInfo {
        run: dir.to_path_buf(),
        status,
        model: results
            .as_ref()
            .and_then(|r| r["model"].as_str().map(String::from))
            .or_else(|| config.as_ref().map(|c| c.model.clone())),
        epochs_done: count("epochs_done").unwrap_or_else(|| rows.last().map_or(0, |r| r.epoch)),
        epochs_planned: count("epochs_planned").or_else(|| config.as_ref().map(|c| c.epochs)),
        best_epoch: count("best_epoch").or_else(|| best.map(|b| b.epoch)),
        best_val_top1: number("val_top1").or_else(|| best.and_then(|b| b.val_top1)),
        test_top1: number("test_top1"),
        parameters: count("parameters").or_else(|| lock.as_ref().and_then(|l| l.parameters)),
        wall_seconds,
        pid: live.map(|l| l.pid),
    }
}

/// `3h 05m`, `12m 40s`, `45s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

pub fn run(dir: &Path, json: bool) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "{}: no such folder (runs are written to runs/<model> by `cnnzoo train`; name another folder with `cnnzoo runs DIR`)",
            dir.display()
        );
    }
    let mut folders = Vec::new();
    find_runs(dir, MAX_DEPTH, &mut folders);
    let runs: Vec<RunInfo> = folders.iter().map(|f| inspect(f)).collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs under {}", dir.display());
        return Ok(());
    }
    let percent = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}%"));
    let table: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                r.run.display().to_string(),
                r.model.clone().unwrap_or_else(|| "?".into()),
                format!(
                    "{}/{}",
                    r.epochs_done,
                    r.epochs_planned.map_or("?".into(), |e| e.to_string())
                ),
                percent(r.best_val_top1),
                percent(r.test_top1),
                r.parameters.map_or("-".into(), group_thousands),
                r.wall_seconds.map_or("-".into(), duration),
                match r.pid {
                    Some(pid) => format!("running (pid {pid})"),
                    None => r.status.name().to_string(),
                },
            ]
        })
        .collect();
    let header = [
        "run",
        "model",
        "epochs",
        "best val top-1",
        "test top-1",
        "parameters",
        "wall time",
        "status",
    ];
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 8]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Names read left-aligned, figures right-aligned.
            if (2..=6).contains(&i) {
                out.push_str(&format!("{cell:>w$}  "));
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    println!("{}", line(header));
    for row in &table {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(760.0), "12m 40s");
        assert_eq!(duration(3.0 * 3600.0 + 300.0), "3h 05m");
    }

    #[test]
    fn own_process_is_alive_and_a_dead_one_is_not() {
        let pid = std::process::id();
        let me = LockInfo {
            pid,
            process_start: process_start(pid),
            started_unix: 0,
            parameters: None,
        };
        assert!(is_alive(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let dead = LockInfo {
            pid: gone,
            ..me.clone()
        };
        assert!(!is_alive(&dead));
    }
}
