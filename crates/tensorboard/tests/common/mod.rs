//! A self-deleting scratch folder, so the tests need no `tempfile` dependency.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "cnnzoo-tensorboard-{name}-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The only event file in `dir`.
pub fn single_file(dir: &Path) -> PathBuf {
    let files = cnnzoo_tensorboard::event_files(dir).expect("list event files");
    assert_eq!(files.len(), 1, "expected one event file, got {files:?}");
    files.into_iter().next().expect("one file")
}

/// Logs `loss = step` at each of `steps`, with the step as its wall time.
pub fn log_losses(
    writer: &mut cnnzoo_tensorboard::EventWriter,
    steps: std::ops::RangeInclusive<i64>,
) {
    for step in steps {
        writer
            .add_scalar("loss", step as f64, step, step as f64)
            .expect("scalar");
    }
}

/// A writer's whole life in one process: the `loss = step` points of `steps`, flushed and closed.
pub fn write_losses(dir: &Path, steps: std::ops::RangeInclusive<i64>) {
    let mut writer = cnnzoo_tensorboard::EventWriter::create(dir).expect("create");
    log_losses(&mut writer, steps);
    writer.flush().expect("flush");
}
