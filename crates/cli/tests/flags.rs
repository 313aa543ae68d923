//! Flags as a user meets them: every option of `train` and `eval` says what it is in `--help`,
//! and a negative number reaches the check that names the allowed values.
mod common;

use common::{assert_clean_failure, cnnzoo, cnnzoo_in_new_dir, cnnzoo_line};

#[test]
fn every_option_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for (command, options) in [
        (
            "train",
            &["--epochs", "--batch-size", "--lr", "--seed", "--data-dir"][..],
        ),
        (
            "eval",
            &["--split", "--data-dir", "--device", "--batch-size"][..],
        ),
    ] {
        let out = cnnzoo(&[command, "--help"], dir.path());
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        for option in options {
            let line = help
                .lines()
                .find(|line| line.trim_start().starts_with(option))
                .unwrap_or_else(|| panic!("{command} --help lists {option}:\n{help}"));
            // clap puts an option's help on its line, after the value name.
            let words = line.split_whitespace().count();
            assert!(words > 2, "{command} {option} has no help: {line:?}");
        }
    }
}

#[test]
fn a_negative_learning_rate_is_refused_by_name() {
    let (_dir, out) = cnnzoo_in_new_dir("train --model resnet --lr -0.1 --print-config");
    assert_clean_failure(&out, &["optimizer.lr must be a positive number (got -0.1)"]);
}

#[test]
fn milestones_past_the_last_epoch_are_warned_about_once() {
    let (dir, short) = cnnzoo_in_new_dir("train --model resnet --epochs 30 --print-config");
    assert!(short.status.success(), "{}", common::text(&short));
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert_eq!(
        stderr.matches("warning: ").count(),
        1,
        "one warning expected:\n{stderr}"
    );
    common::assert_contains_all(
        &stderr,
        &["schedule.milestones [100, 150] lie at or beyond the last epoch (30)"],
    );
    // The recipe's own 180 epochs reach both milestones: nothing to say.
    let full = cnnzoo_line("train --model resnet --print-config", dir.path());
    assert!(full.status.success());
    assert_eq!(String::from_utf8_lossy(&full.stderr), "");
    // One milestone reached, one not: only the late one is named.
    let between = cnnzoo_line(
        "train --model resnet --epochs 120 --print-config",
        dir.path(),
    );
    common::assert_contains_all(
        &String::from_utf8_lossy(&between.stderr),
        &["schedule.milestones [150] lie at or beyond the last epoch (120)"],
    );
}

#[test]
fn resuming_a_folder_that_does_not_exist_says_so() {
    let (dir, out) = cnnzoo_in_new_dir("train --model resnet --resume --output runs/never");
    assert_clean_failure(
        &out,
        &[
            "--resume: runs/never does not exist, so there is no run to resume",
            "start it without --resume",
        ],
    );
    assert!(!dir.path().join("runs/never").exists());
}

#[test]
fn set_reaches_any_key_and_names_itself_when_wrong() {
    let (dir, out) = cnnzoo_in_new_dir(
        "train --model resnet --set optimizer.lr=0.05 --set schedule.milestones=[60,120] \
         --set device=cpu --epochs 150 --print-config",
    );
    assert!(out.status.success(), "{}", common::text(&out));
    let printed: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(printed["optimizer"]["lr"].as_float(), Some(0.05));
    assert_eq!(
        printed["schedule"]["milestones"],
        toml::Value::Array(vec![60.into(), 120.into()])
    );
    assert_eq!(
        printed["device"].as_str(),
        Some("cpu"),
        "a bare word is text"
    );
    assert_eq!(printed["epochs"].as_integer(), Some(150));

    for (setting, expected) in [
        ("optimizer.lrr=0.05", "unknown field `lrr`"),
        ("epochs=two", "invalid type"),
        ("epochs.max=3", "epochs is a value, not a table"),
        ("seed", "expected KEY=VALUE"),
    ] {
        let out = cnnzoo(
            &[
                "train",
                "--model",
                "resnet",
                "--set",
                setting,
                "--print-config",
            ],
            dir.path(),
        );
        assert_clean_failure(&out, &[&format!("--set {setting}"), expected]);
    }
}
