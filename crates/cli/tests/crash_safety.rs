//! SIGKILL at 20 points of a short CPU run chosen at random (seeded and printed, spread over
//! training steps, validation batches, checkpoint writes and the final report), and Ctrl-C in
//! the middle of an epoch (CNNZOO_PAUSE_AT holds the run there until the test stops it): every
//! checkpoint left on disk loads, `--resume` completes the run, and the final weights and test
//! accuracy equal those of an uninterrupted run bit for bit.
mod common;

use std::path::Path;
use std::process::Command;

use common::{cnnzoo, text, train_small_args};

/// Three epochs with a milestone in the middle, so a run stopped anywhere has a schedule and an
/// optimizer state to resume.
fn small_resnet() -> String {
    common::small_resnet_config(
        3,
        11,
        "optimizer.weight_decay = 1e-4\nschedule = { name = \"multistep\", milestones = [2] }",
    )
}

/// The seed of the kill points: change it to try others; a failure names its point.
const KILL_POINT_SEED: u64 = 20261206;

/// SplitMix64: a few lines of well-mixed pseudo-random numbers, so the points need no crate.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `count` distinct items of `from`, in the order drawn.
    fn choose(&mut self, mut from: Vec<String>, count: usize) -> Vec<String> {
        (0..count)
            .map(|_| from.swap_remove((self.next() % from.len() as u64) as usize))
            .collect()
    }
}

/// 20 kill points of the 3-epoch run, in every phase: 8 training steps, 5 validation batches,
/// 5 checkpoint writes and both points of the final report. The run has 32 training steps and
/// 32 validation batches an epoch (half the 4,065 images each, in batches of 64); the last of each is
/// left out, as it is the epoch's end.
fn kill_points(seed: u64) -> Vec<String> {
    let mut random = SplitMix64(seed);
    let each_epoch = |point: &dyn Fn(usize, usize) -> String| -> Vec<String> {
        (1..=3)
            .flat_map(|epoch| (1..=31).map(move |n| (epoch, n)))
            .map(|(epoch, n)| point(epoch, n))
            .collect()
    };
    let checkpoints = (1..=3)
        .flat_map(|epoch| {
            ["model", "optim", "scheduler"].map(|part| format!("checkpoint:{part}:{epoch}"))
        })
        .collect();
    let mut points = random.choose(each_epoch(&|e, s| format!("step:{e}:{s}")), 8);
    points.extend(random.choose(each_epoch(&|e, b| format!("valid:{e}:{b}")), 5));
    points.extend(random.choose(checkpoints, 5));
    points.extend(["report:evaluate".to_string(), "report:results".to_string()]);
    points
}

/// Loads a model checkpoint of the small ResNet; panics (failing the test) if it does not load.
fn weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    common::small_resnet_weights(path)
}

/// How a paused run is stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    CtrlC,
}

/// Starts a run that pauses at `point`, waits until it is there, and stops it; returns what it
/// printed on stderr.
fn stop_at(dir: &Path, output: &str, point: &str, how: Stop) -> String {
    let args = train_small_args(output);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let common::Paused {
        mut child,
        stderr,
        mut seen,
    } = common::run_until_paused(&args, dir, point);
    match how {
        Stop::Kill => child.kill().unwrap(),
        Stop::CtrlC => {
            let sent = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status()
                .unwrap();
            assert!(sent.success());
        }
    }
    seen.extend(stderr.map_while(Result::ok));
    assert!(!child.wait().unwrap().success(), "{how:?} at {point}");
    seen.join("\n")
}

/// Every checkpoint file the killed run left loads (model files as the model; the others as
/// burnpack files), and no file has a torn final name.
fn assert_checkpoints_load(run: &Path) {
    // A run killed early in its first epoch has no checkpoint folder yet.
    for entry in std::fs::read_dir(run.join("checkpoint"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().to_string();
        if !name.ends_with(".bpk") {
            assert!(name.contains(".tmp-"), "unexpected file {name}");
            continue;
        }
        if name.starts_with("model-") {
            weights(&entry.path());
        } else {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(!bytes.is_empty(), "{name} is empty");
        }
    }
    if run.join("best.bpk").exists() {
        weights(&run.join("best.bpk"));
    }
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("small.toml"), small_resnet()).unwrap();
    let args = train_small_args("uninterrupted");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let reference = cnnzoo(&args, dir.path());
    assert!(reference.status.success(), "{}", text(&reference));

    let points = kill_points(KILL_POINT_SEED);
    eprintln!(
        "kill points (seed {KILL_POINT_SEED}): {}",
        points.join(", ")
    );
    let scenarios = points
        .iter()
        .enumerate()
        .map(|(i, point)| (format!("killed-{i}"), point.as_str(), Stop::Kill))
        .chain([("ctrl-c-mid-epoch".to_string(), "step:2:5", Stop::CtrlC)]);
    let test_top1 = |run: &Path| -> f64 {
        let text = std::fs::read_to_string(run.join("results.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["test_top1"]
            .as_f64()
            .unwrap()
    };
    let reference_top1 = test_top1(&dir.path().join("uninterrupted"));
    for (output, point, how) in scenarios {
        let output = output.as_str();
        let stderr = stop_at(dir.path(), output, point, how);
        let run = dir.path().join(output);
        assert_checkpoints_load(&run);
        if let Stop::CtrlC = how {
            // Stopped after the step, with that step's weights saved and the way on printed.
            common::assert_contains_all(
                &stderr,
                &[
                    "stopped by Ctrl-C",
                    "interrupted.bpk",
                    "the checkpoint of epoch 1 is kept",
                    "--resume",
                ],
            );
            assert!(!stderr.contains("panicked at"), "{stderr}");
            let stopped = weights(&run.join("interrupted.bpk"));
            let epoch_1 = weights(&run.join("checkpoint/model-1.bpk"));
            assert!(
                stopped.iter().zip(&epoch_1).any(|((_, x), (_, y))| x != y),
                "interrupted.bpk holds the weights of epoch 1, not of the step it stopped at"
            );
            assert!(!run.join("checkpoint/model-2.bpk").exists());
        }
        let again = train_small_args(output);
        let again: Vec<&str> = again.iter().map(String::as_str).collect();
        let resumed = cnnzoo(&[&again[..], &["--resume"]].concat(), dir.path());
        // Killed before its first checkpoint was complete, the run starts again, as the
        // refusal says, and is still the same run.
        let resumed = if text(&resumed).contains("holds no complete checkpoint") {
            cnnzoo(&again, dir.path())
        } else {
            resumed
        };
        assert!(resumed.status.success(), "{point}: {}", text(&resumed));
        assert_checkpoints_load(&run);
        common::assert_same_weights(
            &dir.path().join("uninterrupted/checkpoint/model-3.bpk"),
            &run.join("checkpoint/model-3.bpk"),
        );
        assert_eq!(test_top1(&run), reference_top1, "{point}");
    }
}
