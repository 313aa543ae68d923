//! `--resume` continues the run in the folder as it started: the run's own config.toml is
//! enough, a change that alters the run is refused by key unless accepted (and then recorded),
//! and a scheduler checkpoint that lost its step is refused by name.
mod common;

use std::path::{Path, PathBuf};

use burn::optim::lr_scheduler::LrSchedulerRecord;

use common::{assert_clean_failure, cnnzoo, snapshot, text, train_small_args};

/// A finished one-epoch run of the small ResNet in `DIR/run`.
fn finished_run(seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = common::small_resnet_dir(1, seed, "");
    let args = train_small_args("run");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = cnnzoo(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("run");
    (dir, run)
}

fn history(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("config_history.json")).unwrap())
        .unwrap()
}

#[test]
fn resume_needs_only_the_folder_and_refuses_a_changed_seed() {
    let (dir, run) = finished_run(51);
    let before = snapshot(&run);

    let done = cnnzoo(&["train", "--resume", "--output", "run"], dir.path());
    assert_clean_failure(&done, &["has done 1 of its 1 epochs", "--epochs"]);

    let reseeded = cnnzoo(
        &[
            "train", "--resume", "--output", "run", "--epochs", "2", "--seed", "7",
        ],
        dir.path(),
    );
    assert_clean_failure(&reseeded, &["seed: 51 -> 7", "--allow-config-change"]);
    assert!(
        !text(&reseeded).contains("epochs: 1 -> 2"),
        "more epochs under a constant schedule were refused: {}",
        text(&reseeded)
    );
    assert!(
        before == snapshot(&run),
        "a refused resume changed the run folder"
    );

    // The run's own config, with more epochs and another device name: both accepted.
    let extended = cnnzoo(
        &[
            "train", "--resume", "--output", "run", "--epochs", "2", "--device", "cpu",
        ],
        dir.path(),
    );
    assert!(extended.status.success(), "{}", text(&extended));
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    assert_eq!(summary.lines().count(), 3, "{summary}");
    let saved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(saved.contains("epochs = 2"), "{saved}");
    assert!(saved.contains("seed = 51"), "{saved}");
    let history = history(&run);
    assert_eq!(history[0]["resumed_after_epoch"], 1, "{history}");
    assert_eq!(
        history[0]["changes"],
        serde_json::json!([{"key": "epochs", "old": "1", "new": "2"}])
    );
}

#[test]
fn an_accepted_change_is_recorded_in_the_config_history() {
    let (dir, run) = finished_run(52);
    let out = cnnzoo(
        &[
            "train",
            "--resume",
            "--output",
            "run",
            "--epochs",
            "2",
            "--set",
            "optimizer.lr=0.01",
            "--allow-config-change",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("resuming with optimizer.lr = 0.01 (was 0.05)"),
        "{}",
        text(&out)
    );
    let changes = &history(&run)[0]["changes"];
    assert!(
        changes
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"key": "optimizer.lr", "old": "0.05", "new": "0.01"})),
        "{changes}"
    );
}

#[test]
fn a_scheduler_record_without_its_step_is_refused_by_name() {
    let (dir, run) = finished_run(53);
    let record = run.join("checkpoint/scheduler-1.bpk");
    std::fs::remove_file(&record).unwrap();
    LrSchedulerRecord::new().save(record.clone()).unwrap();
    let out = cnnzoo(
        &["train", "--resume", "--output", "run", "--epochs", "2"],
        dir.path(),
    );
    assert_clean_failure(&out, &["scheduler-1.bpk", "no `iteration` field"]);
    assert!(!run.join("checkpoint/model-2.bpk").exists());

    // A step that is not where epoch 1 ends would shift the whole schedule.
    std::fs::remove_file(&record).unwrap();
    let step_5 = LrSchedulerRecord::new().with_scalar("iteration", 5u64);
    LrSchedulerRecord::new()
        .with_record("0", step_5)
        .save(record.clone())
        .unwrap();
    let out = cnnzoo(
        &["train", "--resume", "--output", "run", "--epochs", "2"],
        dir.path(),
    );
    assert_clean_failure(&out, &["scheduler-1.bpk", "`iteration` is 5", "epoch 1"]);
}

#[test]
fn a_damaged_checkpoint_or_summary_is_refused_by_name_without_a_panic() {
    let (dir, run) = finished_run(54);
    let resume = ["train", "--resume", "--output", "run", "--epochs", "2"];
    for (file, expected) in [
        ("checkpoint/model-1.bpk", "cannot read the weights"),
        ("checkpoint/optim-1.bpk", "cannot read the optimizer state"),
    ] {
        let path = run.join(file);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let out = cnnzoo(&resume, dir.path());
        assert_clean_failure(&out, &[file, expected]);
        std::fs::write(&path, &bytes).unwrap();
    }
    let summary = run.join("summary.csv");
    let rows = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(&summary, format!("{}\n", rows.lines().next().unwrap())).unwrap();
    let out = cnnzoo(&resume, dir.path());
    assert_clean_failure(&out, &["summary.csv", "no row for epoch [1]"]);
    assert!(!run.join("checkpoint/model-2.bpk").exists());
}
