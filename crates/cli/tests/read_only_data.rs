//! A read-only data folder: `train` and `eval` read the archive where it is and write nothing
//! into the data folder (the issue: both failed with `Permission denied`, printed twice).
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{assert_contains_all, cnnzoo, mini_data_copy, small_resnet_config, text};

/// The names in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Makes the data folder writable again when the test ends, even by a panic, so that its
/// temporary folder can be deleted.
struct Writable(PathBuf);

impl Drop for Writable {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[test]
fn train_and_eval_read_a_read_only_data_folder_without_writing_to_it() {
    let root = tempfile::tempdir().unwrap();
    let data = mini_data_copy(root.path());
    let archive = data.join("cifar-10-binary.tar.gz");
    let work = root.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("small.toml"), small_resnet_config(1, 3, "")).unwrap();
    let archive_bytes = std::fs::read(&archive).unwrap();
    let before = listing(&data);
    assert_eq!(before, ["cifar-10-binary.tar.gz"]);

    set_mode(&archive, 0o444);
    set_mode(&data, 0o555);
    let _writable = Writable(data.clone());
    let data_dir = data.to_str().unwrap();

    let train = cnnzoo(
        &[
            "train",
            "--config",
            "small.toml",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--data-dir",
            data_dir,
            "--output",
            "run",
        ],
        &work,
    );
    assert!(train.status.success(), "{}", text(&train));
    assert_contains_all(
        &String::from_utf8_lossy(&train.stdout),
        &["epoch 1/1 train", "epoch 1/1 valid"],
    );
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("run/results.json")).unwrap())
            .unwrap();
    assert_eq!(results["epochs_done"], 1, "{results}");
    assert_eq!(results["test_images"], 1020, "{results}");

    let eval = common::eval_json("run", &data, &[], &work);
    assert!(eval.status.success(), "{}", text(&eval));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(report["n"], 1020, "{}", text(&eval));
    assert_eq!(report["checkpoint"], "run/best.bpk", "{}", text(&eval));
    for output in [&train, &eval] {
        let all = text(output);
        assert!(!all.contains("Permission denied"), "{all}");
        assert!(!all.contains(".cnnzoo-extract"), "{all}");
    }

    // When the tests run as root the permission bits stop no write, so the runs above would
    // succeed even if they wrote into the data folder: its listing and the archive's bytes show
    // that nothing was written there.
    assert_eq!(listing(&data), before);
    assert!(
        std::fs::read(&archive).unwrap() == archive_bytes,
        "the archive changed"
    );
    assert_eq!(
        std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o444
    );
}
