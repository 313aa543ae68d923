//! Flags as a user meets them: every option of `train` and `eval` says what it is in `--help`,
//! and a negative number reaches the check that names the allowed values.
mod common;

use common::{assert_clean_failure, cnnzoo};

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
    let dir = tempfile::tempdir().unwrap();
    let args = "train --model resnet --lr -0.1 --print-config";
    let out = cnnzoo(&args.split(' ').collect::<Vec<_>>(), dir.path());
    assert_clean_failure(&out, &["optimizer.lr must be a positive number (got -0.1)"]);
}
