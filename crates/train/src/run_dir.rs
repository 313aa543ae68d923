//! The layout of a run folder, in one place: every file `train` writes there and `runs`,
//! `--resume` and `--overwrite` look for is a [`RunFile`] or a checkpoint of [`RunDir`].
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::checkpoint::meta_path;
use crate::summary::{self, EpochRow};

/// The checkpointers' names: a complete epoch checkpoint has one file of each.
pub const CHECKPOINT_PARTS: [&str; 3] = ["model", "optim", "scheduler"];

/// The files at the top of a run folder; [`RunDir::file`] gives their paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFile {
    /// The resolved configuration, written before the first epoch.
    Config,
    /// The config changes `--resume --allow-config-change` accepted (see [`crate::resume`]).
    ConfigHistory,
    /// One row per finished epoch (see [`crate::summary`]).
    Summary,
    /// The weights of the best epoch, with their metadata beside them.
    Best,
    /// The weights at the step Ctrl-C stopped the run.
    Interrupted,
    /// [`RunResults`]: written once the run is finished.
    Results,
    Curves,
    /// The TensorBoard event files, one per session (see [`crate::tensorboard`]).
    TensorBoard,
    /// Written by `train` when it starts and removed when it ends (see [`crate::run_lock`]).
    Lock,
}

impl RunFile {
    pub const ALL: [RunFile; 9] = [
        Self::Config,
        Self::ConfigHistory,
        Self::Summary,
        Self::Best,
        Self::Interrupted,
        Self::Results,
        Self::Curves,
        Self::TensorBoard,
        Self::Lock,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Config => "config.toml",
            Self::ConfigHistory => "config_history.json",
            Self::Summary => "summary.csv",
            Self::Best => "best.bpk",
            Self::Interrupted => "interrupted.bpk",
            Self::Results => "results.json",
            Self::Curves => "curves.png",
            Self::TensorBoard => "tb",
            Self::Lock => "run.lock",
        }
    }
}

/// A run folder (`--output`, default `runs/<model>`); the folder need not exist yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

/// The checkpoint a user means by `path`: a run folder stands for its `best.bpk`, anything else
/// for itself (and `checkpoint::load` says what is wrong with it).
pub fn checkpoint_of(path: &Path) -> PathBuf {
    let best = RunDir::new(path).file(RunFile::Best);
    if path.is_dir() && best.is_file() {
        best
    } else {
        path.to_path_buf()
    }
}

impl RunDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, file: RunFile) -> PathBuf {
        self.path.join(file.name())
    }

    /// burn-train's model, optimizer and scheduler checkpoints of the kept epochs.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.path.join("checkpoint")
    }

    /// The checkpoint file of one part (one of [`CHECKPOINT_PARTS`]) of one epoch.
    pub fn checkpoint(&self, part: &str, epoch: usize) -> PathBuf {
        self.checkpoint_dir().join(format!("{part}-{epoch}.bpk"))
    }

    pub fn is_finished(&self) -> bool {
        self.file(RunFile::Results).is_file()
    }

    /// Whether the folder holds a run: `config.toml` is written before the first epoch.
    pub fn is_run(&self) -> bool {
        [
            RunFile::Config,
            RunFile::Summary,
            RunFile::Results,
            RunFile::Lock,
        ]
        .into_iter()
        .any(|file| self.file(file).is_file())
    }

    /// The epochs whose model, optimizer and scheduler checkpoints are all on disk.
    pub fn complete_checkpoints(&self) -> BTreeSet<usize> {
        let files: Vec<String> = std::fs::read_dir(self.checkpoint_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        let epochs_of = |part: &str| -> BTreeSet<usize> {
            files
                .iter()
                .filter_map(|file| {
                    file.strip_prefix(&format!("{part}-"))?
                        .strip_suffix(".bpk")?
                        .parse()
                        .ok()
                })
                .collect()
        };
        let [first, rest @ ..] = CHECKPOINT_PARTS.map(epochs_of);
        first
            .into_iter()
            .filter(|e| rest.iter().all(|part| part.contains(e)))
            .collect()
    }

    /// The last epoch `--resume` can continue from.
    pub fn last_complete_checkpoint(&self) -> Option<usize> {
        self.complete_checkpoints().into_iter().next_back()
    }

    /// Temporary files a killed run left behind (see [`crate::atomic`]): never read, so only
    /// removed.
    pub fn remove_partial_writes(&self) -> Result<()> {
        for dir in [self.path.clone(), self.checkpoint_dir()] {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().contains(".tmp-") {
                    std::fs::remove_file(entry.path()).with_context(|| {
                        format!("cannot remove the partial file {}", entry.path().display())
                    })?;
                }
            }
        }
        Ok(())
    }

    /// Removes everything a run writes (`--overwrite`); other files in the folder stay, and so
    /// does the lock of the `train` that asks.
    pub fn clear(&self) -> Result<()> {
        let mut paths = vec![self.checkpoint_dir()];
        for file in RunFile::ALL.into_iter().filter(|&f| f != RunFile::Lock) {
            let path = self.file(file);
            if matches!(file, RunFile::Best | RunFile::Interrupted) {
                paths.push(meta_path(&path));
            }
            paths.push(path);
        }
        for path in paths {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(e).with_context(|| format!("cannot clear {}", path.display()));
            }
        }
        Ok(())
    }

    pub fn read_summary(&self) -> Result<Vec<EpochRow>> {
        summary::read(&self.file(RunFile::Summary))
    }

    pub fn write_summary(&self, rows: &[EpochRow]) -> Result<()> {
        atomic::write_bytes(
            &self.file(RunFile::Summary),
            summary::to_csv(rows).as_bytes(),
        )
    }

    pub fn read_results(&self) -> Result<RunResults> {
        let path = self.file(RunFile::Results);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: not valid JSON", path.display()))
    }

    pub fn write_results(&self, results: &RunResults) -> Result<()> {
        // Through a `Value`, whose keys are sorted: results.json has always listed them so.
        let value = serde_json::to_value(results).context("cannot serialise the results")?;
        atomic::write_bytes(
            &self.file(RunFile::Results),
            serde_json::to_string_pretty(&value)?.as_bytes(),
        )
    }
}

/// `results.json`: what a finished run achieved, read by `cnnzoo runs`. Runs written by hand or
/// by an older cnnzoo may lack any field but the model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunResults {
    pub model: Option<String>,
    /// The epoch `best.bpk` comes from.
    pub best_epoch: Option<usize>,
    pub epochs_done: Option<usize>,
    pub epochs_planned: Option<usize>,
    /// Validation top-1 and top-5 of `best.bpk` (%), when the run held images out.
    pub val_top1: Option<f64>,
    pub val_top5: Option<f64>,
    pub test_top1: Option<f64>,
    pub test_top5: Option<f64>,
    /// With `[ema]`, the figures above are the moving average's, and these the trained
    /// weights' (same checkpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_top1_raw: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_top1_raw: Option<f64>,
    pub test_images: Option<usize>,
    pub parameters: Option<usize>,
    /// Training time over every session of the run (the epochs of earlier sessions as
    /// summary.csv timed them), without the final evaluation.
    pub wall_seconds: Option<f64>,
    /// The device's description, as `train` printed it (on several devices, all of them).
    pub device: Option<String>,
    /// On several devices, each one and its share of the training throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<DeviceThroughput>>,
    /// `best.bpk`.
    pub checkpoint: Option<PathBuf>,
    pub classes: Option<Vec<String>>,
}

/// One device of a multi-device run in `results.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceThroughput {
    pub device: String,
    pub images_per_second: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_layout_is_inside_the_folder() {
        let run = RunDir::new("runs/resnet");
        let files = RunFile::ALL.map(|file| run.file(file));
        for path in files.into_iter().chain([run.checkpoint("model", 3)]) {
            assert!(path.starts_with("runs/resnet"), "{}", path.display());
        }
        assert_eq!(
            run.checkpoint("optim", 12),
            Path::new("runs/resnet/checkpoint/optim-12.bpk")
        );
    }

    #[test]
    fn only_epochs_with_all_three_parts_are_complete() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::create_dir_all(run.checkpoint_dir()).unwrap();
        for (part, epoch) in [
            ("model", 1),
            ("optim", 1),
            ("scheduler", 1),
            ("model", 2),
            ("optim", 2),
        ] {
            std::fs::write(run.checkpoint(part, epoch), b"x").unwrap();
        }
        assert_eq!(run.complete_checkpoints(), BTreeSet::from([1]));
        assert_eq!(run.last_complete_checkpoint(), Some(1));
        assert!(!run.is_run());
    }

    #[test]
    fn results_round_trip_with_sorted_keys_and_read_partial_files() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let results = RunResults {
            model: Some("resnet".into()),
            best_epoch: Some(2),
            test_top1: Some(60.25),
            val_top1: None,
            ..RunResults::default()
        };
        run.write_results(&results).unwrap();
        assert!(run.is_finished() && run.is_run());
        assert_eq!(run.read_results().unwrap(), results);
        let text = std::fs::read_to_string(run.file(RunFile::Results)).unwrap();
        let keys: Vec<&str> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        assert_eq!(keys, sorted);
        assert!(text.contains("\"val_top1\": null"), "{text}");

        std::fs::write(
            run.file(RunFile::Results),
            r#"{"model": "resnet", "test_top1": 91.5}"#,
        )
        .unwrap();
        let partial = run.read_results().unwrap();
        assert_eq!(partial.test_top1, Some(91.5));
        assert_eq!(partial.parameters, None);
    }
}
