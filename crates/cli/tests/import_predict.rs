//! PyTorch weights in and predictions out, through the binary: `import` of a Lightning
//! checkpoint made by PyTorch (scripts/make_parity_fixtures.py) writes a checkpoint that `eval`,
//! `predict` and `train --init` take, and `predict` reads every image format it claims, matches
//! PyTorch's preprocessing and probabilities, and names the files it cannot read.
mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_clean_failure, cnnzoo, mini_data, text};
use serde_json::Value;

fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative)
}

fn parity_fixture(name: &str) -> String {
    repo_file("crates/models/tests/fixtures/parity")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

fn image(name: &str) -> String {
    repo_file("crates/cli/tests/fixtures/images")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

/// `cnnzoo import --from FROM --model MODEL --output OUTPUT` in `dir`.
fn import(dir: &Path, from: &str, model: &str, output: &str) -> Output {
    cnnzoo(
        &[
            "import", "--from", from, "--model", model, "--output", output,
        ],
        dir,
    )
}

/// Imports the random-weight ResNet-20 Lightning checkpoint into `dir/resnet.bpk`.
fn import_resnet(dir: &Path) -> Output {
    let out = import(dir, &parity_fixture("resnet.ckpt"), "resnet", "resnet.bpk");
    assert!(out.status.success(), "{}", text(&out));
    out
}

#[test]
fn import_writes_a_self_describing_checkpoint_that_eval_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = import_resnet(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    common::assert_contains_all(
        &stdout,
        &[
            "PyTorch zip",
            "101 tensors under 'state_dict'",
            "key prefix 'model.' dropped",
            "19 num_batches_tracked ignored",
            "272378 parameters",
        ],
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("resnet.bpk.json")).unwrap())
            .unwrap();
    assert_eq!(meta["model"], "resnet");
    assert_eq!(meta["config"]["block"], "standard");
    assert_eq!(meta["dataset"]["name"], "cifar10");
    assert_eq!(meta["dataset"]["classes"][3], "cat");
    assert_eq!(meta["dataset"]["input_size"], 32);
    assert!((meta["dataset"]["mean"][0].as_f64().unwrap() - 0.491_399_68).abs() < 1e-6);

    let data = mini_data();
    let out = common::eval_json("resnet.bpk", &data, &[], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["model"], "resnet");
    assert_eq!(result["n"], 1020);
    let top1 = result["top1"].as_f64().unwrap();
    // Random weights: about chance, but a real number from a real pass.
    assert!((0.0..=40.0).contains(&top1), "{top1}");
}

#[test]
fn predict_reads_every_format_matches_pytorch_and_names_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    import_resnet(dir.path());
    std::fs::write(dir.path().join("notes.txt"), "not an image").unwrap();
    let files = [
        image("gradient.png"),
        image("grey.png"),
        image("small.bmp"),
        image("square.webp"),
        image("wide.jpg"),
    ];
    let mut args = vec![
        "predict",
        "--checkpoint",
        "resnet.bpk",
        "--device",
        "cpu",
        "--json",
    ];
    args.extend(files.iter().map(String::as_str));
    args.extend(["notes.txt", "missing.png"]);
    let out = cnnzoo(&args, dir.path());
    // The two bad files make the command fail, after predicting the five good ones.
    assert_clean_failure(
        &out,
        &[
            "notes.txt: not an image cnnzoo reads (PNG, JPEG, BMP or WebP)",
            "missing.png: no such file",
            "2 of 7 files could not be predicted: notes.txt, missing.png",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["model"], "resnet");
    let predictions = result["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 5);
    let errors = result["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["file"], "notes.txt");
    assert_eq!(errors[1]["file"], "missing.png");
    // The README names the fields of each error: file and message.
    for error in errors {
        assert_eq!(error.as_object().unwrap().len(), 2, "{error}");
    }
    assert_eq!(
        errors[1]["message"], "missing.png: no such file",
        "{errors:?}"
    );

    let classes = common::cifar10_classes();
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(image("expected_probabilities.json")).unwrap(),
    )
    .unwrap();
    for (prediction, file) in predictions.iter().zip(&files) {
        assert_eq!(prediction["file"], file.as_str());
        let top = prediction["top"].as_array().unwrap();
        assert_eq!(top.len(), 3, "--top-k defaults to 3");
        let probabilities: Vec<f64> = top
            .iter()
            .map(|r| r["probability"].as_f64().unwrap())
            .collect();
        assert!(
            probabilities.windows(2).all(|w| w[0] >= w[1]),
            "{probabilities:?}"
        );
        for r in top {
            let index = r["index"].as_u64().unwrap() as usize;
            assert_eq!(r["class"], classes[index].as_str());
        }
        // PIL + torchvision's Resize/CenterCrop/Normalize on the same file, same weights.
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        if let Some(want) = expected.get(name) {
            for r in top {
                let index = r["index"].as_u64().unwrap() as usize;
                let got = r["probability"].as_f64().unwrap();
                let want = want[index].as_f64().unwrap();
                assert!(
                    (got - want).abs() < 1e-3,
                    "{name} class {index}: {got} vs {want}"
                );
            }
        }
    }
}

#[test]
fn predict_prints_the_top_k_and_succeeds_when_every_file_is_an_image() {
    let dir = tempfile::tempdir().unwrap();
    import_resnet(dir.path());
    let out = cnnzoo(
        &[
            "predict",
            "--checkpoint",
            "resnet.bpk",
            "--device",
            "cpu",
            "--top-k",
            "10",
            &image("wide.jpg"),
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 11, "{stdout}");
    assert!(lines[0].ends_with("wide.jpg"), "{stdout}");
    assert!(lines[1].trim_start().starts_with("1. "), "{stdout}");
    let total: f64 = lines[1..]
        .iter()
        .map(|l| l.trim().trim_end_matches('%').rsplit(' ').next().unwrap())
        .map(|p| p.parse::<f64>().unwrap())
        .sum();
    assert!((total - 100.0).abs() < 0.1, "{total}\n{stdout}");

    let out = cnnzoo(
        &[
            "predict",
            "--checkpoint",
            "resnet.bpk",
            "--top-k",
            "0",
            &image("grey.png"),
        ],
        dir.path(),
    );
    assert_clean_failure(&out, &["--top-k must be at least 1"]);
}

#[test]
fn import_refuses_weights_that_do_not_fit_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.pt"), "hello").unwrap();
    let lightning = parity_fixture("resnet.ckpt");
    let shapes = parity_fixture("tiny_resnet_shapes.safetensors");
    let refusals: [(&str, &str, &[&str]); 5] = [
        (
            &lightning,
            "resnet_preact",
            &[
                "resnet.ckpt: the weights do not fit the model",
                "key(s) in the file that are not weights of this model: state_dict.model.",
                "and ",
                "more",
            ],
        ),
        (&shapes, "resnet", &["shape mismatch"]),
        ("notes.pt", "resnet", &["notes.pt: not a readable PyTorch"]),
        ("nowhere.ckpt", "resnet", &["nowhere.ckpt"]),
        (&lightning, "resnet50x", &["unknown model 'resnet50x'"]),
    ];
    for (from, model, expect) in refusals {
        assert_clean_failure(&import(dir.path(), from, model, "x.bpk"), expect);
        // Nothing is written when the import is refused.
        assert!(!dir.path().join("x.bpk").exists(), "{from} as {model}");
    }
}

#[test]
fn train_starts_from_an_imported_checkpoint_of_the_same_model_only() {
    let dir = tempfile::tempdir().unwrap();
    import_resnet(dir.path());
    let data = mini_data();
    let train = |model: &str, output: &str| {
        cnnzoo(
            &[
                "train",
                "--model",
                model,
                "--init",
                "resnet.bpk",
                "--epochs",
                "1",
                "--batch-size",
                "256",
                "--device",
                "cpu",
                "--data-dir",
                data.to_str().unwrap(),
                "--output",
                output,
            ],
            dir.path(),
        )
    };
    let out = train("densenet", "dense");
    assert_clean_failure(
        &out,
        &[
            "--init resnet.bpk: the checkpoint holds model 'resnet'",
            "this run trains 'densenet'",
        ],
    );
    let out = train("resnet", "run");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("starting from the weights of resnet.bpk"),
        "{}",
        text(&out)
    );
    assert!(dir.path().join("run/best.bpk").is_file());
}
