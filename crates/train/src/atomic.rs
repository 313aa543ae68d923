//! Every file a run writes goes to a temporary name in the same folder and is renamed into place,
//! so a kill at any instant leaves the old file or the new one, never a torn one.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The temporary sibling of `path` that a writer fills before the rename.
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `path` through `write`, which receives the temporary path to fill.
pub fn write_with<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let temp = temp_path(path);
    let outcome = write(&temp).and_then(|()| {
        fs::File::open(&temp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("cannot flush {}", temp.display()))?;
        fs::rename(&temp, path)
            .with_context(|| format!("cannot move {} into place", path.display()))
    });
    if outcome.is_err() {
        let _ = fs::remove_file(&temp);
    }
    outcome
}

pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |temp| {
        let mut file =
            fs::File::create(temp).with_context(|| format!("cannot create {}", temp.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("cannot write {}", temp.display()))
    })
}

pub fn copy(from: &Path, to: &Path) -> Result<()> {
    write_with(to, |temp| {
        fs::copy(from, temp)
            .with_context(|| format!("cannot copy {} to {}", from.display(), temp.display()))?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_whole_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.json");
        write_bytes(&path, b"old").unwrap();
        write_bytes(&path, b"new contents").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.csv");
        write_bytes(&path, b"epoch 1").unwrap();
        let err = write_with(&path, |temp| {
            fs::write(temp, b"half").unwrap();
            anyhow::bail!("disk full")
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"epoch 1");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
