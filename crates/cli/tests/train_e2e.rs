//! The main job end to end on the real-image mini archive, on the CPU: a short run writes every
//! file of the run folder, eval reproduces its test accuracy, and a resumed run ends with the
//! same weights as an uninterrupted one.
mod common;

use std::path::Path;

use common::{as_strs, cnnzoo, mini_data, text, train_small_args};

fn train(dir: &Path, args: &[&str]) -> std::process::Output {
    let data = mini_data();
    let mut all = vec![
        "train",
        "--device",
        "cpu",
        "--workers",
        "2",
        "--data-dir",
        data.to_str().unwrap(),
    ];
    all.extend(args);
    cnnzoo(&all, dir)
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The learning run: ResNet-20, 3 epochs, into `full`.
const RESNET_3_EPOCHS: &[&str] = &[
    "--model",
    "resnet",
    "--epochs",
    "3",
    "--batch-size",
    "64",
    "--output",
    "full",
];

/// Also the learning test: 3 epochs of ResNet-20 on the 3,658 mini training images reached a
/// test top-1 of NN% when this was written (chance: 10%).
#[test]
fn resnet_run_writes_the_run_folder_learns_and_eval_reproduces_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = train(dir.path(), RESNET_3_EPOCHS);
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("full");
    common::assert_finished_run(&run, &[], &out);
    // TensorBoard's log is on by default: one event file for the one session.
    let event_files = std::fs::read_dir(run.join("tb")).unwrap().count();
    assert_eq!(event_files, 1);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Each epoch's lines carry its own number: the last line of each split is always printed.
    for epoch in 1..=3 {
        for split in ["train", "valid"] {
            assert!(
                stdout.contains(&format!("epoch {epoch}/3 {split}")),
                "readable progress lines name epoch {epoch}'s {split} split:\n{stdout}"
            );
        }
    }
    assert!(!stdout.contains("epoch 4/3"), "{stdout}");
    assert!(
        !stdout.contains("ProgressSnapshot") && !stdout.contains("Iteration"),
        "{stdout}"
    );

    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(
        lines[0],
        "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds,images_per_second,peak_rss_mb,val_top1_raw"
    );
    assert_eq!(lines.len(), 4, "{summary}");
    assert!(lines[1].starts_with("1,1.000000e-1,"), "{summary}");
    let throughput: f64 = lines[1].split(',').nth(8).unwrap().parse().unwrap();
    assert!(throughput > 0.0, "{summary}");
    // No moving average in this recipe: nothing to put beside the validation figures.
    assert!(lines[1].ends_with(','), "{summary}");

    let results = json(&run.join("results.json"));
    assert_eq!(results["parameters"], 272_378);
    assert_eq!(results["epochs_done"], 3);
    assert_eq!(results["test_images"], 1020);
    let test_top1 = results["test_top1"].as_f64().unwrap();
    assert!(
        test_top1 > 20.0,
        "ResNet-20 did not learn: test top-1 {test_top1}%"
    );
    let best_epoch = results["best_epoch"].as_u64().unwrap();
    let best_val = lines[best_epoch as usize]
        .split(',')
        .nth(5)
        .unwrap()
        .parse::<f64>()
        .unwrap();
    for line in &lines[1..] {
        let val: f64 = line.split(',').nth(5).unwrap().parse().unwrap();
        assert!(
            val <= best_val + 1e-3,
            "epoch {line} beats the best epoch {best_epoch}"
        );
    }
    let meta = json(&run.join("best.bpk.json"));
    assert_eq!(meta["model"], "resnet");
    assert_eq!(meta["epoch"], best_epoch);

    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        resolved.contains("epochs = 3") && resolved.contains("batch_size = 64"),
        "{resolved}"
    );

    // eval needs only the checkpoint and reproduces the test accuracy of results.json.
    let data = mini_data();
    // The run folder stands for its best.bpk.
    for checkpoint in ["full/best.bpk", "full"] {
        let eval = common::eval_json(checkpoint, &data, &[], dir.path());
        assert!(eval.status.success(), "{checkpoint}: {}", text(&eval));
        // The confusion matrix prints one row per line, in the order `classes` gives.
        let printed = String::from_utf8_lossy(&eval.stdout);
        let rows: Vec<&str> = printed
            .lines()
            .map(str::trim)
            .filter(|line| line.starts_with('[') && line.contains(", "))
            .collect();
        assert_eq!(rows.len(), 10, "{printed}");
        for row in &rows {
            assert_eq!(row.trim_end_matches(',').split(", ").count(), 10, "{row}");
        }
        let eval: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
        assert_eq!(
            eval["classes"],
            serde_json::json!(common::cifar10_classes()),
            "{checkpoint}"
        );
        let confusion = eval["confusion"].as_array().unwrap();
        let airplanes: u64 = confusion[0]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .sum();
        let per_class = eval["per_class"]["airplane"].as_f64().unwrap();
        let hits = confusion[0][0].as_u64().unwrap();
        assert!(
            (per_class - 100.0 * hits as f64 / airplanes as f64).abs() < 1e-9,
            "row 0 is not the airplanes: {eval}"
        );
        assert_eq!(eval["checkpoint"], "full/best.bpk", "{checkpoint}");
        assert_eq!(eval["n"], 1020);
        let top1 = eval["top1"].as_f64().unwrap();
        assert!(
            (top1 - test_top1).abs() < 1e-9,
            "{checkpoint}: eval top1 {top1} vs results {test_top1}"
        );
        assert_eq!(eval["per_class"].as_object().unwrap().len(), 10);
    }

    // A finished run is not overwritten without --overwrite.
    let again = train(dir.path(), RESNET_3_EPOCHS);
    common::assert_clean_failure(&again, &["already holds a finished run", "--overwrite"]);
}

#[test]
fn resume_after_epoch_1_ends_with_the_weights_of_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    // The small ResNet keeps the resume test quick.
    let config = common::small_resnet_config(
        2,
        7,
        "optimizer.weight_decay = 1e-4\n\
         schedule = { name = \"multistep\", milestones = [1], gamma = 0.1 }",
    );
    std::fs::write(dir.path().join("small.toml"), config).unwrap();
    let full = train(dir.path(), &["--config", "small.toml", "--output", "full"]);
    assert!(full.status.success(), "{}", text(&full));

    // Stop after epoch 1 (a 1-epoch run of the same config), then resume to epoch 2; the
    // milestone at epoch 1 also checks that the schedule resumes where it was.
    let first = train(
        dir.path(),
        &[
            "--config",
            "small.toml",
            "--output",
            "resumed",
            "--epochs",
            "1",
        ],
    );
    assert!(first.status.success(), "{}", text(&first));
    let resumed = train(
        dir.path(),
        &["--config", "small.toml", "--output", "resumed", "--resume"],
    );
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        String::from_utf8_lossy(&resumed.stdout).contains("resuming"),
        "{}",
        text(&resumed)
    );

    let full_summary = std::fs::read_to_string(dir.path().join("full/summary.csv")).unwrap();
    let resumed_summary = std::fs::read_to_string(dir.path().join("resumed/summary.csv")).unwrap();
    let row2 = |s: &str| {
        s.lines()
            .nth(2)
            .unwrap()
            .split(',')
            .take(7)
            .collect::<Vec<_>>()
            .join(",")
    };
    assert!(
        row2(&full_summary).starts_with("2,5.000000e-3,"),
        "{full_summary}"
    );
    assert_eq!(row2(&full_summary), row2(&resumed_summary));

    common::assert_same_weights(
        &dir.path().join("full/checkpoint/model-2.bpk"),
        &dir.path().join("resumed/checkpoint/model-2.bpk"),
    );

    // The run's time is both sessions': at least the two epochs summary.csv timed.
    let epochs_seconds: f64 = resumed_summary
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(7).unwrap().parse::<f64>().unwrap())
        .sum();
    let results = json(&dir.path().join("resumed/results.json"));
    let wall = results["wall_seconds"].as_f64().unwrap();
    assert!(
        wall >= epochs_seconds - 0.02,
        "wall time {wall} s is less than the epochs' {epochs_seconds} s"
    );
    let runs = cnnzoo(&["runs", "resumed", "--json"], dir.path());
    let listed: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(listed[0]["wall_seconds"].as_f64(), Some(wall), "{listed}");
}

#[test]
fn without_validation_images_the_last_epoch_is_kept_and_no_nan_is_shown() {
    let dir = common::small_resnet_dir(2, 9, "log.tensorboard = false");
    let out = train(
        dir.path(),
        &[
            "--config",
            "small.toml",
            "--val-fraction",
            "0",
            "--output",
            "noval",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    assert_eq!(
        all.matches("no validation images (val_fraction 0)").count(),
        1,
        "{all}"
    );
    assert!(!all.contains("NaN"), "{all}");
    assert!(
        !all.contains(" valid "),
        "an empty validation was reported:\n{all}"
    );
    assert!(all.contains("epoch 2/2 train"), "{all}");

    let run = dir.path().join("noval");
    assert!(
        !run.join("tb").exists(),
        "log.tensorboard = false still logged"
    );
    let results = json(&run.join("results.json"));
    assert_eq!(results["best_epoch"], 2, "{results}");
    assert!(results["val_top1"].is_null(), "{results}");
    assert_eq!(json(&run.join("best.bpk.json"))["epoch"], 2);
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    for line in summary.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(&fields[4..7], ["", "", ""], "validation figures in {line}");
    }
    let runs = cnnzoo(&["runs", "."], dir.path());
    let listed = String::from_utf8_lossy(&runs.stdout);
    assert!(
        listed.contains("noval") && !listed.contains("NaN"),
        "{listed}"
    );
}

/// Two CPU devices through burn's multi-device strategy: an epoch of the mini archive into the
/// run folder a one-device run writes, the devices in the log and in results.json, and the run
/// resumed on one device with the change noted.
#[test]
fn two_cpu_devices_train_an_epoch_and_the_run_resumes_on_one() {
    let dir = common::small_resnet_dir(1, 11, "");
    let mut args = train_small_args("two");
    args.extend(["--devices", "cpu,cpu"].map(String::from));
    let out = cnnzoo(&as_strs(&args), dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    common::assert_contains_all(
        &stdout,
        &[
            "on 2 devices (data parallel",
            "global batch 64 = 2 devices x 32",
            "per device",
            "device 0 (CPU",
            "device 1 (CPU",
            "training images/s",
        ],
    );
    let run = dir.path().join("two");
    let results = json(&run.join("results.json"));
    let devices = results["devices"].as_array().expect("a devices list");
    assert_eq!(devices.len(), 2, "{results}");
    for device in devices {
        assert!(
            device["device"].as_str().unwrap().starts_with("CPU"),
            "{results}"
        );
        assert!(
            device["images_per_second"].as_f64().unwrap() > 0.0,
            "{results}"
        );
    }
    assert!(results["test_top1"].as_f64().is_some(), "{results}");
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    let row: Vec<&str> = summary.lines().nth(1).unwrap().split(',').collect();
    let train_loss: f64 = row[2].parse().unwrap();
    assert!(
        train_loss.is_finite() && train_loss < 10f64.ln(),
        "an epoch on two devices left the loss at {train_loss}, no better than chance:\n{summary}"
    );
    common::assert_finished_run(&run, &["checkpoint/model-1.bpk"], &out);

    let mut resume = train_small_args("two");
    resume.extend(["--resume", "--epochs", "2"].map(String::from));
    let resumed = cnnzoo(&as_strs(&resume), dir.path());
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert!(
        text(&resumed).contains("resuming with devices"),
        "{}",
        text(&resumed)
    );
    let results = json(&run.join("results.json"));
    assert!(results.get("devices").is_none(), "{results}");
    assert_eq!(results["epochs_done"].as_u64(), Some(2), "{results}");
}
