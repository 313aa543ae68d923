//! The TensorBoard log of a run killed after epoch 2's figures were logged but before its
//! checkpoint was complete, then resumed: every record's checksums hold, every scalar tag is
//! there once per step with increasing steps after TensorBoard's restart purge, and the figures
//! equal summary.csv's and results.json's.
mod common;

use std::path::Path;

use cnnzoo_tensorboard::proto::{Event, event::What};
use cnnzoo_tensorboard::{HPARAMS_SESSION_START_TAG, ScalarPoint, event_files, read_events};

use common::{cnnzoo, text};

fn events_of(run: &Path) -> (Vec<Event>, usize) {
    let files = event_files(&run.join("tb")).expect("the run has a tb/ folder");
    let mut events = Vec::new();
    for file in &files {
        // read_events checks both CRCs of every record and fails on a bad one.
        events.extend(read_events(file).expect("every record reads").events);
    }
    (events, files.len())
}

/// Every scalar point of `tag`, ignoring TensorBoard's purge.
fn raw_points(events: &[Event], tag: &str) -> usize {
    events
        .iter()
        .filter_map(|e| match &e.what {
            Some(What::Summary(summary)) => Some(summary),
            _ => None,
        })
        .flat_map(|summary| &summary.value)
        .filter(|value| value.tag == tag)
        .count()
}

fn csv_column(summary: &str, column: usize) -> Vec<f64> {
    summary
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(column).unwrap().parse().unwrap())
        .collect()
}

fn assert_close(points: &[ScalarPoint], expected: &[f64], tolerance: f64, tag: &str) {
    let values: Vec<f64> = points.iter().map(|p| f64::from(p.value)).collect();
    assert_eq!(
        values.len(),
        expected.len(),
        "{tag}: {values:?} vs {expected:?}"
    );
    for (value, expected) in values.iter().zip(expected) {
        assert!(
            (value - expected).abs() <= tolerance,
            "{tag}: {values:?} vs summary.csv {expected:?}"
        );
    }
}

#[test]
fn a_killed_and_resumed_run_logs_every_step_once_with_the_summary_figures() {
    let dir = common::small_resnet_dir(2, 41, "");
    let args = common::train_small_args("run");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut paused = common::run_until_paused(&args, dir.path(), "checkpoint:model:2");
    paused.child.kill().unwrap();
    paused.child.wait().unwrap();
    let resumed = cnnzoo(&[&args[..], &["--resume"]].concat(), dir.path());
    assert!(resumed.status.success(), "{}", text(&resumed));

    let run = dir.path().join("run");
    let (events, files) = events_of(&run);
    assert_eq!(files, 2, "one event file per session");
    let scalars = cnnzoo_tensorboard::scalars(&events);
    for tag in [
        "train/loss",
        "train/top1",
        "train/lr",
        "val/loss",
        "val/top1",
        "val/top5",
        "perf/images_per_second",
        "best/val_top1",
        "test/top1",
    ] {
        let points = scalars
            .get(tag)
            .unwrap_or_else(|| panic!("{tag} missing: {:?}", scalars.keys()));
        assert!(
            points.windows(2).all(|w| w[0].step < w[1].step),
            "{tag}: steps not increasing: {points:?}"
        );
    }
    // The killed session had logged epoch 2's validation; the purge keeps only the resumed one.
    assert_eq!(
        raw_points(&events, "val/top1"),
        3,
        "epoch 2 logged twice on disk"
    );
    let val = &scalars["val/top1"];
    let steps_per_epoch = val[0].step;
    assert_eq!(
        val.iter().map(|p| p.step).collect::<Vec<_>>(),
        [steps_per_epoch, 2 * steps_per_epoch]
    );

    let summary = std::fs::read_to_string(run.join("summary.csv")).unwrap();
    // summary.csv: epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,... with 3-5 decimals.
    assert_close(
        &scalars["val/top1"],
        &csv_column(&summary, 5),
        1e-3,
        "val/top1",
    );
    assert_close(
        &scalars["val/loss"],
        &csv_column(&summary, 4),
        1e-3,
        "val/loss",
    );
    assert_close(
        &scalars["val/top5"],
        &csv_column(&summary, 6),
        1e-3,
        "val/top5",
    );
    let at_epoch_ends = |tag: &str| -> Vec<ScalarPoint> {
        scalars[tag]
            .iter()
            .filter(|p| p.step % steps_per_epoch == 0)
            .copied()
            .collect()
    };
    assert_close(
        &at_epoch_ends("train/loss"),
        &csv_column(&summary, 2),
        1e-4,
        "train/loss",
    );
    assert_close(
        &at_epoch_ends("train/top1"),
        &csv_column(&summary, 3),
        1e-3,
        "train/top1",
    );

    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let test = results["test_top1"].as_f64().unwrap();
    assert_close(&scalars["test/top1"], &[test], 1e-4, "test/top1");
    assert_eq!(scalars["test/top1"][0].step, 2 * steps_per_epoch);

    // Each session declares its hyper-parameters (the resolved config) for the HParams tab.
    assert_eq!(raw_points(&events, HPARAMS_SESSION_START_TAG), 2);
}
