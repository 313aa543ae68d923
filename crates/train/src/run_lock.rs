//! `run.lock`: written by `train` when it starts and removed when it ends, however it ends,
//! short of being killed. It names the process, so a lock whose process is gone is stale and
//! the run counts as stopped.
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::run_dir::{RunDir, RunFile};

/// What `run.lock` holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub pid: u32,
    /// The process's start time (Linux clock ticks since boot), so that a reused pid is not
    /// taken for the process that wrote the lock.
    #[serde(default)]
    pub process_start: Option<u64>,
    pub started_unix: u64,
    #[serde(default)]
    pub parameters: Option<usize>,
    /// Seconds the run's earlier sessions trained (a resumed run), for its total time.
    #[serde(default)]
    pub earlier_seconds: Option<f64>,
}

impl LockInfo {
    /// The lock of a run folder, if there is a readable one.
    pub fn read(dir: &RunDir) -> Option<Self> {
        let text = std::fs::read_to_string(dir.file(RunFile::Lock)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// With /proc (Linux), the process must exist and have started when the lock says;
    /// elsewhere `kill -0` tells whether the pid is in use.
    pub fn is_alive(&self) -> bool {
        if Path::new("/proc/self/stat").exists() {
            match (process_start(self.pid), self.process_start) {
                (Some(now), Some(then)) => now == then,
                (Some(_), None) => true,
                (None, _) => false,
            }
        } else {
            std::process::Command::new("kill")
                .args(["-0", &self.pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        }
    }
}

/// Held by `cnnzoo train` for the whole run; the file goes when this is dropped.
pub struct RunLock {
    path: PathBuf,
    info: LockInfo,
}

/// Refuses a run folder that a live `cnnzoo train` holds, before anything in it is touched.
pub fn ensure_not_running(dir: &RunDir) -> Result<()> {
    if let Some(info) = LockInfo::read(dir)
        && info.pid != std::process::id()
        && info.is_alive()
    {
        bail!(
            "{} is being trained by process {} (see {}); wait for it to finish or stop it first",
            dir.path().display(),
            info.pid,
            dir.file(RunFile::Lock).display()
        );
    }
    Ok(())
}

impl RunLock {
    /// Writes `run.lock` into the (existing) run folder.
    pub fn create(dir: &RunDir) -> Result<Self> {
        let pid = std::process::id();
        let lock = Self {
            path: dir.file(RunFile::Lock),
            info: LockInfo {
                pid,
                process_start: process_start(pid),
                started_unix: now_unix(),
                parameters: None,
                earlier_seconds: None,
            },
        };
        lock.write()?;
        Ok(lock)
    }

    /// Records the model's size and the time earlier sessions trained, which `cnnzoo runs`
    /// shows before `results.json` exists.
    pub fn describe(&mut self, parameters: usize, earlier_seconds: f64) -> Result<()> {
        self.info.parameters = Some(parameters);
        self.info.earlier_seconds = Some(earlier_seconds);
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

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Field 22 of `/proc/PID/stat`, counted after the parenthesised command name (which may hold
/// spaces).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_is_alive_and_a_dead_one_is_not() {
        let pid = std::process::id();
        let me = LockInfo {
            pid,
            process_start: process_start(pid),
            started_unix: 0,
            parameters: None,
            earlier_seconds: None,
        };
        assert!(me.is_alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let gone = child.id();
        child.wait().unwrap();
        let dead = LockInfo {
            pid: gone,
            ..me.clone()
        };
        assert!(!dead.is_alive());
    }

    #[test]
    fn the_lock_lives_as_long_as_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let mut lock = RunLock::create(&run).unwrap();
        lock.describe(1234, 61.5).unwrap();
        let info = LockInfo::read(&run).unwrap();
        assert_eq!(info.pid, std::process::id());
        assert_eq!(info.parameters, Some(1234));
        assert_eq!(info.earlier_seconds, Some(61.5));
        // This process holds it: a train of its own is not refused.
        ensure_not_running(&run).unwrap();
        drop(lock);
        assert!(!run.file(RunFile::Lock).exists());
    }
}
