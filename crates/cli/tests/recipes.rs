//! The modern recipe toolbox through the binary: a heavy recipe (AutoAugment + erasing + cutmix +
//! smoothing + EMA) trains on the mini archive, writes every file and learns; a run with a moving
//! average killed and resumed ends with the same weights and the same average, bit for bit; the
//! shipped modern recipes are valid configs; `cnnzoo augment` draws its grid.
mod common;

use std::path::Path;

use common::{
    as_strs, checkpoint_weights, cnnzoo, mini_data, small_resnet_dir, text, train_small_args,
};

/// The recipe of the issue's heavy-recipe test, on top of the small ResNet.
const HEAVY: &str = r#"label_smoothing = 0.1
optimizer.nesterov = true
ema = { decay = 0.99 }
augment = { random_crop = { padding = 4, padding_mode = "reflect" }, auto_augment = "cifar10", hflip = {}, random_erasing = { p = 0.25, value = "random" }, cutmix_alpha = 1.0, mixup_alpha = 0.2 }"#;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_heavy_recipe_trains_writes_every_file_and_learns() {
    let dir = small_resnet_dir(2, 51, HEAVY);
    let out = cnnzoo(&as_strs(&train_small_args("run")), dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let run = dir.path().join("run");
    common::assert_finished_run(&run, &["curves.png", "tb"], &out);
    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    let rows: Vec<&str> = summary.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{summary}");
    // With [ema], every row carries the trained weights' top-1 beside the average's.
    assert!(
        rows.iter().all(|row| !row.ends_with(',')),
        "val_top1_raw missing:\n{summary}"
    );
    let results = json(&run.join("results.json"));
    let test_top1 = results["test_top1"].as_f64().unwrap();
    let raw = results["test_top1_raw"].as_f64().unwrap();
    // Ten classes: chance is 10%; two epochs of the small ResNet reach about 20%.
    assert!(test_top1 > 14.0, "test top-1 {test_top1}%: {results}");
    assert!((0.0..=100.0).contains(&raw), "{results}");
    assert_eq!(json(&run.join("best.bpk.json"))["ema"], true);
    // eval runs the average, as the final report did.
    let eval = common::eval_json("run", &mini_data(), &[], dir.path());
    assert!(eval.status.success(), "{}", text(&eval));
    let report: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert!(
        (report["top1"].as_f64().unwrap() - test_top1).abs() < 1e-9,
        "{report} vs {results}"
    );
}

#[test]
fn a_killed_run_with_a_moving_average_resumes_to_the_same_weights_and_average() {
    let recipe = "ema = { decay = 0.9 }\nlabel_smoothing = 0.1\naugment = { random_crop = { padding = 4 }, hflip = {}, mixup_alpha = 0.4 }";
    let dir = small_resnet_dir(2, 52, recipe);
    let whole = cnnzoo(&as_strs(&train_small_args("whole")), dir.path());
    assert!(whole.status.success(), "{}", text(&whole));

    let args = train_small_args("killed");
    let mut paused = common::run_until_paused(&as_strs(&args), dir.path(), "checkpoint:model:2");
    paused.child.kill().unwrap();
    paused.child.wait().unwrap();
    let resumed = cnnzoo(&[&as_strs(&args)[..], &["--resume"]].concat(), dir.path());
    assert!(resumed.status.success(), "{}", text(&resumed));

    let last = |run: &str| dir.path().join(run).join("checkpoint/model-2.bpk");
    let (left, right) = (
        checkpoint_weights(&last("whole"), true),
        checkpoint_weights(&last("killed"), true),
    );
    assert!(
        left.iter().any(|(path, _)| path.starts_with("ema.")),
        "the checkpoint holds the average"
    );
    assert_eq!(left.len(), right.len());
    for ((path, x), (_, y)) in left.iter().zip(&right) {
        assert!(x == y, "{path} differs after the resume");
    }
}

#[test]
fn every_shipped_modern_recipe_is_a_valid_config() {
    let dir = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
    let mut checked = 0;
    for entry in std::fs::read_dir(&configs).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with("_modern.toml") {
            continue;
        }
        let out = cnnzoo(
            &[
                "train",
                "--config",
                path.to_str().unwrap(),
                "--print-config",
            ],
            dir.path(),
        );
        assert!(out.status.success(), "{}: {}", path.display(), text(&out));
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(printed.contains("[augment"), "{printed}");
        checked += 1;
    }
    assert_eq!(checked, 4, "one modern recipe per CIFAR model");
}

#[test]
fn augment_draws_the_originals_and_their_augmented_versions() {
    let dir = small_resnet_dir(1, 53, HEAVY);
    let data = mini_data();
    let out = cnnzoo(
        &[
            "augment",
            "--config",
            "small.toml",
            "--out",
            "grid.png",
            "--images",
            "3",
            "--samples",
            "4",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let png = std::fs::read(dir.path().join("grid.png")).unwrap();
    // PNG's IHDR: width and height, big-endian, at bytes 16..24. Cells of 96 px, 4 px gaps.
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (5 * 100 + 4, 3 * 100 + 4));
}
