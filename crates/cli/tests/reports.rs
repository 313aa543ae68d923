//! The reports a person looks at: `curves.png` redrawn by a real run, the confusion heat map of
//! `eval --confusion`, `cnnzoo runs` on a live, a killed and a finished run and on folders built
//! by hand, `train --print-config`, shell completions, and the examples in every help page.
mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_clean_failure, cnnzoo, mini_data, text};
use serde_json::Value;
use zune_core::bytestream::ZCursor;
use zune_png::PngDecoder;

/// Width and height of a PNG file, which must decode completely.
fn png_size(path: &Path) -> (usize, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut decoder = PngDecoder::new(ZCursor::new(&bytes[..]));
    let pixels = decoder
        .decode_raw()
        .unwrap_or_else(|e| panic!("{} is not a PNG: {e:?}", path.display()));
    let (w, h) = decoder.dimensions().unwrap();
    assert_eq!(pixels.len(), w * h * 3, "{}: RGB pixels", path.display());
    (w, h)
}

fn runs_json(dir: &Path, folder: &str) -> Vec<Value> {
    let out = cnnzoo(&["runs", folder, "--json"], dir);
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn find<'a>(runs: &'a [Value], run: &str) -> &'a Value {
    runs.iter()
        .find(|r| r["run"].as_str().unwrap().replace('\\', "/") == run)
        .unwrap_or_else(|| panic!("{run} not listed: {runs:?}"))
}

#[test]
fn a_run_draws_its_curves_and_runs_follows_it_from_running_to_stopped_to_finished() {
    let dir = tempfile::tempdir().unwrap();
    // Two epochs of the small ResNet at a constant rate: the curves change between them.
    let config = common::small_resnet_config(2, 3, "schedule = { name = \"constant\" }");
    std::fs::write(dir.path().join("tiny.toml"), config).unwrap();
    let data = mini_data();
    let args = [
        "train",
        "--config",
        "tiny.toml",
        "--data-dir",
        data.to_str().unwrap(),
        "--output",
        "runs/tiny",
    ];
    let run = dir.path().join("runs/tiny");

    // Held in epoch 2: epoch 1's curves are drawn and the run is running.
    let mut child = common::run_until_paused(&args, dir.path(), "step:2:3").child;
    assert_eq!(png_size(&run.join("curves.png")), (1200, 900));
    let after_one_epoch = std::fs::read(run.join("curves.png")).unwrap();
    let runs = runs_json(dir.path(), "runs");
    let live = find(&runs, "runs/tiny");
    assert_eq!(live["status"], "running", "{live}");
    assert_eq!(live["pid"], child.id());
    assert_eq!(live["epochs_done"], 1);
    assert_eq!(live["epochs_planned"], 2);
    assert!(live["parameters"].as_u64().unwrap() > 1000, "{live}");
    assert!(live["best_val_top1"].as_f64().is_some(), "{live}");

    // Killed: the lock stays behind, but its process is gone.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(run.join("run.lock").exists());
    let runs = runs_json(dir.path(), "runs");
    assert_eq!(find(&runs, "runs/tiny")["status"], "stopped");

    // Resumed to the end: the curves now show two epochs, and the lock is gone.
    let mut resume = args.to_vec();
    resume.push("--resume");
    let out = cnnzoo(&resume, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(!run.join("run.lock").exists());
    assert_eq!(png_size(&run.join("curves.png")), (1200, 900));
    assert_ne!(
        std::fs::read(run.join("curves.png")).unwrap(),
        after_one_epoch
    );
    assert!(
        !std::fs::read_dir(&run)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".tmp-"))
    );

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("results.json")).unwrap()).unwrap();
    let runs = runs_json(dir.path(), "runs");
    let done = find(&runs, "runs/tiny");
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(done["epochs_done"], 2);
    assert_eq!(done["test_top1"], results["test_top1"]);
    assert_eq!(done["parameters"], results["parameters"]);
    assert_eq!(done["pid"], Value::Null);
    let table = cnnzoo(&["runs"], dir.path());
    let table = String::from_utf8_lossy(&table.stdout).to_string();
    assert!(
        table.contains("runs/tiny") && table.contains("2/2") && table.contains("finished"),
        "{table}"
    );
    assert!(
        table.ends_with("curves side by side in TensorBoard: tensorboard --logdir runs\n"),
        "{table}"
    );

    // The confusion heat map, on two splits: other images, another picture.
    let checkpoint = run.join("best.bpk");
    let checkpoint = checkpoint.to_str().unwrap();
    let eval = |more: &[&str]| {
        let mut args = vec![
            "eval",
            "--checkpoint",
            checkpoint,
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend(more);
        cnnzoo(&args, dir.path())
    };
    let mut pictures = Vec::new();
    for split in ["test", "val"] {
        let png = format!("{split}-confusion.png");
        let out = eval(&["--device", "cpu", "--split", split, "--confusion", &png]);
        assert!(out.status.success(), "{}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let needles = [
            "class",
            "accuracy",
            "airplane",
            "truck",
            "confusion heat map",
        ];
        common::assert_contains_all(&stdout, &needles);
        assert_eq!(png_size(&dir.path().join(&png)), (960, 900));
        pictures.push(std::fs::read(dir.path().join(&png)).unwrap());
    }
    assert_ne!(pictures[0], pictures[1]);

    // A folder that does not exist is refused before the evaluation.
    let out = eval(&["--confusion", "nowhere/c.png"]);
    assert_clean_failure(&out, &["nowhere", "does not exist"]);
}

fn write(path: &Path, contents: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

const CONFIG: &str = "model = \"resnet\"\nepochs = 10\n\n[optimizer]\nname = \"sgd\"\nlr = 0.1\n";

fn summary(rows: &[(usize, f64)]) -> String {
    let mut csv = String::from(
        "epoch,lr,train_loss,train_top1,val_loss,val_top1,val_top5,seconds,images_per_second,peak_rss_mb\n",
    );
    for (epoch, val) in rows {
        csv.push_str(&format!(
            "{epoch},1.000000e-1,1.5,40.0,1.6,{val},90.0,60.00,100.0,500.0\n"
        ));
    }
    csv
}

fn lock(pid: u32, parameters: usize) -> String {
    format!("{{\"pid\": {pid}, \"started_unix\": 0, \"parameters\": {parameters}}}")
}

#[test]
fn runs_tells_finished_running_and_stopped_folders_apart() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("runs");
    // Finished: results.json is there.
    write(&root.join("done/config.toml"), CONFIG);
    write(
        &root.join("done/summary.csv"),
        &summary(&[(1, 50.0), (2, 61.5)]),
    );
    write(
        &root.join("done/results.json"),
        r#"{"model": "resnet", "best_epoch": 2, "epochs_done": 2, "epochs_planned": 10, "val_top1": 61.5,
            "test_top1": 60.25, "parameters": 272378, "wall_seconds": 4000.0}"#,
    );
    // Running: a live process (this test) holds the lock.
    write(&root.join("live/config.toml"), CONFIG);
    write(
        &root.join("live/summary.csv"),
        &summary(&[(1, 30.0), (2, 45.0), (3, 44.0)]),
    );
    write(&root.join("live/run.lock"), &lock(std::process::id(), 1234));
    // Stopped: the lock's process is gone.
    let mut gone = Command::new("true").spawn().unwrap();
    let gone_pid = gone.id();
    gone.wait().unwrap();
    write(&root.join("killed/config.toml"), CONFIG);
    write(&root.join("killed/summary.csv"), &summary(&[(1, 20.0)]));
    write(&root.join("killed/run.lock"), &lock(gone_pid, 99));
    // Stopped: no lock at all (interrupted, or failed), found two levels down.
    write(&root.join("sweep/lr-0.05/config.toml"), CONFIG);
    write(&root.join("sweep/lr-0.05/checkpoint/model-1.bpk"), "x");
    // Not a run.
    std::fs::create_dir_all(root.join("notes")).unwrap();
    // A damaged summary is named, and the run is still listed.
    write(&root.join("damaged/config.toml"), CONFIG);
    write(&root.join("damaged/summary.csv"), "epoch,lr\n1,2,3\n");

    let out = cnnzoo(&["runs", "--json"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("damaged/summary.csv"),
        "{}",
        text(&out)
    );
    let runs: Vec<Value> = serde_json::from_slice::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(runs.len(), 5, "{runs:?}");

    let done = find(&runs, "runs/done");
    assert_eq!(done["status"], "finished");
    assert_eq!(
        (
            done["epochs_done"].as_u64(),
            done["epochs_planned"].as_u64()
        ),
        (Some(2), Some(10))
    );
    assert_eq!(
        (done["best_val_top1"].as_f64(), done["test_top1"].as_f64()),
        (Some(61.5), Some(60.25))
    );
    assert_eq!(done["parameters"], 272378);

    let live = find(&runs, "runs/live");
    assert_eq!(live["status"], "running");
    assert_eq!(live["pid"], std::process::id());
    assert_eq!(live["epochs_done"], 3);
    assert_eq!(live["best_epoch"], 2);
    assert_eq!(live["best_val_top1"], 45.0);
    assert_eq!(live["test_top1"], Value::Null);
    assert_eq!(live["parameters"], 1234);

    let killed = find(&runs, "runs/killed");
    assert_eq!(killed["status"], "stopped");
    assert_eq!(killed["pid"], Value::Null);
    assert_eq!(killed["wall_seconds"], 60.0);
    let sweep = find(&runs, "runs/sweep/lr-0.05");
    assert_eq!(sweep["status"], "stopped");
    assert_eq!(sweep["epochs_done"], 0);
    assert_eq!(find(&runs, "runs/damaged")["model"], "resnet");

    let out = cnnzoo(&["runs"], dir.path());
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    let header = table.lines().next().unwrap();
    // Every column has its heading.
    let headings = "run,model,epochs,best val top-1,test top-1,parameters,wall time,status";
    common::assert_contains_all(header, &headings.split(',').collect::<Vec<_>>());
    let line = |run: &str| {
        table
            .lines()
            .find(|l| l.starts_with(run))
            .unwrap_or_else(|| panic!("{run}:\n{table}"))
    };
    assert!(
        line("runs/done ").contains("finished") && line("runs/done ").contains("272,378"),
        "{table}"
    );
    assert!(
        line("runs/done ").contains("1h 06m") && line("runs/done ").contains("60.25%"),
        "{table}"
    );
    assert!(
        line("runs/live ").contains(&format!("running (pid {})", std::process::id())),
        "{table}"
    );
    assert!(line("runs/killed ").ends_with("stopped"), "{table}");

    // Another folder by name; a missing one is an error that names it.
    let other = cnnzoo(&["runs", "runs/sweep"], dir.path());
    assert!(
        String::from_utf8_lossy(&other.stdout).contains("runs/sweep/lr-0.05"),
        "{}",
        text(&other)
    );
    assert_clean_failure(
        &cnnzoo(&["runs", "nothing-here"], dir.path()),
        &["nothing-here", "no such folder"],
    );
    let empty = cnnzoo(&["runs", "runs/notes"], dir.path());
    assert!(
        String::from_utf8_lossy(&empty.stdout).contains("no runs under"),
        "{}",
        text(&empty)
    );
}

#[test]
fn a_second_train_on_a_live_run_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("runs/busy/run.lock"),
        &lock(std::process::id(), 1),
    );
    let out = cnnzoo(
        &[
            "train",
            "--model",
            "resnet",
            "--output",
            "runs/busy",
            "--overwrite",
        ],
        dir.path(),
    );
    assert_clean_failure(&out, &["runs/busy", "being trained by process"]);
    assert!(dir.path().join("runs/busy/run.lock").exists());
}

#[test]
fn print_config_shows_defaults_file_and_flags_resolved_and_trains_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("mine.toml"),
        "model = \"densenet\"\nepochs = 5\nbatch_size = 32\n\n[optimizer]\nname = \"adamw\"\nlr = 0.001\n\n[schedule]\nname = \"cosine\"\n",
    );
    let out = cnnzoo(
        &[
            "train",
            "--config",
            "mine.toml",
            "--epochs",
            "7",
            "--seed",
            "9",
            "--print-config",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let config: toml::Table =
        toml::from_str(&printed).unwrap_or_else(|e| panic!("not TOML ({e}):\n{printed}"));
    assert_eq!(config["model"].as_str(), Some("densenet"));
    assert_eq!(
        config["epochs"].as_integer(),
        Some(7),
        "the flag wins over the file"
    );
    assert_eq!(
        config["batch_size"].as_integer(),
        Some(32),
        "the file wins over the default"
    );
    assert_eq!(config["seed"].as_integer(), Some(9));
    assert_eq!(
        config["val_fraction"].as_float(),
        Some(0.1),
        "defaults are filled in"
    );
    assert_eq!(
        config["optimizer"]["betas"].as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "nothing but mine.toml"
    );

    // What it prints is a config file that resolves to itself.
    write(&dir.path().join("printed.toml"), &printed);
    let again = cnnzoo(
        &["train", "--config", "printed.toml", "--print-config"],
        dir.path(),
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), printed);

    let recipe = cnnzoo(
        &["train", "--model", "resnet", "--print-config"],
        dir.path(),
    );
    assert!(
        String::from_utf8_lossy(&recipe.stdout).contains("milestones = [100, 150]"),
        "{}",
        text(&recipe)
    );
    assert_clean_failure(
        &cnnzoo(
            &[
                "train",
                "--model",
                "resnet",
                "--epochs",
                "0",
                "--print-config",
            ],
            dir.path(),
        ),
        &["epochs must be at least 1"],
    );
}

#[test]
fn completions_are_scripts_for_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = cnnzoo(&["completions", shell], dir.path());
        assert!(out.status.success(), "{}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["cnnzoo", "runs", "completions", "print-config", "confusion"] {
            assert!(script.contains(word), "{shell}: {word} missing");
        }
    }
    assert_clean_failure(&cnnzoo(&["completions", "tcsh"], dir.path()), &["tcsh"]);
}

/// The subcommands, as `cnnzoo --help` lists them.
fn subcommands(dir: &Path) -> Vec<String> {
    let out = cnnzoo(&["--help"], dir);
    let help = String::from_utf8_lossy(&out.stdout).to_string();
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .filter(|name| name != "help")
        .collect()
}

#[test]
fn every_help_page_ends_with_real_examples() {
    let dir = tempfile::tempdir().unwrap();
    let names = subcommands(dir.path());
    for expected in ["train", "eval", "models", "runs", "completions"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
    let mut pages: Vec<Vec<String>> = names
        .iter()
        .map(|n| vec![n.clone(), "--help".into()])
        .collect();
    pages.push(vec!["--help".into()]);
    for args in pages {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cnnzoo(&args, dir.path());
        assert!(out.status.success(), "{}", text(&out));
        let help = String::from_utf8_lossy(&out.stdout).to_string();
        let (_, examples) = help
            .rsplit_once("Examples:\n")
            .unwrap_or_else(|| panic!("cnnzoo {args:?}: no Examples:\n{help}"));
        let lines: Vec<&str> = examples.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(
            lines.len() >= 2,
            "cnnzoo {args:?}: fewer than two examples:\n{help}"
        );
        for line in lines {
            assert!(
                line.starts_with("  cnnzoo "),
                "cnnzoo {args:?}: the help must end with examples, not {line:?}"
            );
        }
    }
}
