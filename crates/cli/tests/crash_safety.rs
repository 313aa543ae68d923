//! SIGKILL at reproducible points of a short CPU run, and Ctrl-C in the middle of an epoch
//! (CNNZOO_PAUSE_AT holds the run there until the test stops it): every checkpoint left on disk
//! loads, `--resume` completes the run, and the final weights equal those of an uninterrupted run
//! bit for bit.
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
    for entry in std::fs::read_dir(run.join("checkpoint")).unwrap().flatten() {
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

    for (output, point, how) in [
        ("killed-mid-epoch", "step:2:5", Stop::Kill),
        (
            "killed-writing-checkpoint",
            "checkpoint:model:2",
            Stop::Kill,
        ),
        ("killed-writing-optimizer", "checkpoint:optim:3", Stop::Kill),
        ("ctrl-c-mid-epoch", "step:2:5", Stop::CtrlC),
    ] {
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
        let resume = train_small_args(output);
        let mut resume: Vec<&str> = resume.iter().map(String::as_str).collect();
        resume.push("--resume");
        let resumed = cnnzoo(&resume, dir.path());
        assert!(resumed.status.success(), "{point}: {}", text(&resumed));
        assert!(run.join("results.json").exists(), "{point}");
        assert_checkpoints_load(&run);
        common::assert_same_weights(
            &dir.path().join("uninterrupted/checkpoint/model-3.bpk"),
            &run.join("checkpoint/model-3.bpk"),
        );
    }
}
