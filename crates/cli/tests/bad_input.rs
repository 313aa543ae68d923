//! Every bad input gets a non-zero exit and a message that names the thing, never a panic, and
//! leaves every file already there untouched. The cases also generate docs/errors.md: run with
//! `CNNZOO_BLESS_ERRORS=1` to rewrite it after changing a message; otherwise the test fails when
//! the table and the program disagree.
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{assert_clean_failure, cnnzoo, mini_data};

/// One bad input: what it is, how to make it, the command, and what the message must name.
struct Case {
    group: &'static str,
    input: &'static str,
    setup: fn(&Path),
    args: &'static [&'static str],
    expect: &'static [&'static str],
}

const GOOD_CONFIG: &str = r#"model = "resnet"
epochs = 2
[optimizer]
name = "sgd"
lr = 0.1
momentum = 0.9
[schedule]
name = "multistep"
milestones = [1]
"#;

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn config_with(dir: &Path, from: &str, to: &str) {
    let text = GOOD_CONFIG.replace(from, to);
    assert_ne!(text, GOOD_CONFIG, "the replacement must change the config");
    write(&dir.join("bad.toml"), text.as_bytes());
}

/// An extracted CIFAR-10 folder built from the mini archive's real batches, then damaged.
fn extracted(dir: &Path) -> PathBuf {
    let folder = dir.join("data/cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).unwrap();
    let file = std::fs::File::open(mini_data().join("cifar-10-binary.tar.gz")).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive.unpack(dir.join("data")).unwrap();
    folder
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn nothing(_: &Path) {}

/// A real checkpoint pair: `name` holds the weights of `weights_of`, its sidecar describes
/// `described_as`.
fn checkpoint(dir: &Path, name: &str, weights_of: &str, described_as: &str) {
    use burn::module::Module;
    let device = burn::tensor::Device::flex();
    let model = cnnzoo_models::lookup(weights_of)
        .unwrap()
        .config(10)
        .init(&device);
    common::Classifier { model }
        .save_file(dir.join(name))
        .unwrap();
    let meta = serde_json::json!({
        "format": "cnnzoo-checkpoint/1",
        "model": described_as,
        "config": cnnzoo_models::lookup(described_as).unwrap().config(10),
        "dataset": {
            "name": "cifar10",
            "classes": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
            "mean": [0.4914, 0.4822, 0.4465],
            "std": [0.247, 0.2435, 0.2616],
            "input_size": 32
        }
    });
    write(
        &dir.join(format!("{name}.json")),
        meta.to_string().as_bytes(),
    );
}

const TRAIN: &[&str] = &[
    "train",
    "--model",
    "resnet",
    "--device",
    "cpu",
    "--data-dir",
    "data",
    "--epochs",
    "1",
];

fn cases() -> Vec<Case> {
    vec![
        Case {
            group: "data",
            input: "data folder missing, no network",
            setup: nothing,
            args: TRAIN,
            expect: &["could not download", "by hand", "cifar-10-binary.tar.gz"],
        },
        Case {
            group: "data",
            input: "empty data folder, no network",
            setup: |d| std::fs::create_dir_all(d.join("data")).unwrap(),
            args: TRAIN,
            expect: &["could not download", "by hand"],
        },
        Case {
            group: "data",
            input: "truncated batch file",
            setup: |d| {
                let batch = extracted(d).join("data_batch_3.bin");
                let bytes = std::fs::read(&batch).unwrap();
                std::fs::write(&batch, &bytes[..bytes.len() - 100]).unwrap();
            },
            args: TRAIN,
            expect: &[
                "data_batch_3.bin",
                "not a multiple of the 3073-byte record size",
            ],
        },
        Case {
            group: "data",
            input: "batch file of the wrong size (an extra byte)",
            setup: |d| {
                let batch = extracted(d).join("test_batch.bin");
                let mut bytes = std::fs::read(&batch).unwrap();
                bytes.push(0);
                std::fs::write(&batch, bytes).unwrap();
            },
            args: TRAIN,
            expect: &["test_batch.bin", "not a multiple"],
        },
        Case {
            group: "data",
            input: "label out of range",
            setup: |d| {
                let batch = extracted(d).join("data_batch_2.bin");
                let mut bytes = std::fs::read(&batch).unwrap();
                bytes[3073 * 5] = 12;
                std::fs::write(&batch, bytes).unwrap();
            },
            args: TRAIN,
            expect: &["data_batch_2.bin", "record 5", "12"],
        },
        Case {
            group: "data",
            input: "missing batch file",
            setup: |d| std::fs::remove_file(extracted(d).join("data_batch_4.bin")).unwrap(),
            args: TRAIN,
            expect: &["data_batch_4.bin", "missing"],
        },
        Case {
            group: "data",
            input: "archive that is gzip but not a tar",
            setup: |d| write(&d.join("data/cifar-10-binary.tar.gz"), &gzip(&[7u8; 2000])),
            args: TRAIN,
            expect: &["cifar-10-binary.tar.gz", "not a tar archive"],
        },
        Case {
            group: "data",
            input: "archive that is not gzip",
            setup: |d| {
                write(
                    &d.join("data/cifar-10-binary.tar.gz"),
                    b"PK\x03\x04 a zip file",
                )
            },
            args: TRAIN,
            expect: &["cifar-10-binary.tar.gz", "not a gzip archive"],
        },
        Case {
            group: "data",
            input: "tar entry escaping the data folder",
            setup: |d| {
                let mut builder = tar::Builder::new(Vec::new());
                let mut header = tar::Header::new_gnu();
                let payload = b"owned";
                header.set_size(payload.len() as u64);
                header.set_mode(0o644);
                header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../evil.x");
                header.set_cksum();
                builder.append(&header, &payload[..]).unwrap();
                write(
                    &d.join("data/cifar-10-binary.tar.gz"),
                    &gzip(&builder.into_inner().unwrap()),
                );
            },
            args: TRAIN,
            expect: &["cifar-10-binary.tar.gz", "../evil.x", "would escape"],
        },
        Case {
            group: "config",
            input: "config file missing",
            setup: nothing,
            args: &["train", "--config", "nope.toml"],
            expect: &["nope.toml"],
        },
        Case {
            group: "config",
            input: "unknown key",
            setup: |d| config_with(d, "epochs = 2", "epochs = 2\nepoch_count = 3"),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "line 3", "epoch_count"],
        },
        Case {
            group: "config",
            input: "wrong type",
            setup: |d| config_with(d, "epochs = 2", "epochs = \"two\""),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "line 2", "epochs"],
        },
        Case {
            group: "config",
            input: "zero epochs",
            setup: |d| config_with(d, "epochs = 2", "epochs = 0"),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "epochs must be at least 1"],
        },
        Case {
            group: "config",
            input: "negative epochs",
            setup: |d| config_with(d, "epochs = 2", "epochs = -3"),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "epochs"],
        },
        Case {
            group: "config",
            input: "zero batch size (flag)",
            setup: nothing,
            args: &["train", "--model", "resnet", "--batch-size", "0"],
            expect: &["batch_size must be at least 1"],
        },
        Case {
            group: "config",
            input: "negative learning rate",
            setup: |d| config_with(d, "lr = 0.1", "lr = -0.1"),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "optimizer.lr must be a positive number", "-0.1"],
        },
        Case {
            group: "config",
            input: "milestones out of order",
            setup: |d| config_with(d, "milestones = [1]", "milestones = [150, 100]"),
            args: &["train", "--config", "bad.toml"],
            expect: &[
                "bad.toml",
                "milestones must be strictly increasing",
                "150 then 100",
            ],
        },
        Case {
            group: "config",
            input: "unknown optimizer",
            setup: |d| config_with(d, "name = \"sgd\"", "name = \"adam\""),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "adam", "sgd", "adamw"],
        },
        Case {
            group: "config",
            input: "unknown schedule",
            setup: |d| config_with(d, "name = \"multistep\"", "name = \"onecycle\""),
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "onecycle", "multistep", "cosine"],
        },
        Case {
            group: "config",
            input: "unknown model",
            setup: nothing,
            args: &["train", "--model", "resnett"],
            expect: &["unknown model 'resnett'", "did you mean 'resnet'"],
        },
        Case {
            group: "config",
            input: "val_fraction outside [0, 1)",
            setup: nothing,
            args: &["train", "--model", "resnet", "--val-fraction", "1.5"],
            expect: &["val_fraction must be in [0, 1)", "1.5"],
        },
        Case {
            group: "config",
            input: "unknown model parameter",
            setup: |d| config_with(d, "epochs = 2", "epochs = 2\n[model_params]\ndepth = 56"),
            args: &[
                "train",
                "--config",
                "bad.toml",
                "--device",
                "cpu",
                "--data-dir",
                "../mini",
            ],
            expect: &["model_params", "'depth'", "num_blocks"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint missing",
            setup: nothing,
            args: &["eval", "--checkpoint", "runs/x/best.bpk", "--device", "cpu"],
            expect: &["runs/x/best.bpk", "no such checkpoint file"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint empty",
            setup: |d| write(&d.join("empty.bpk"), b""),
            args: &["eval", "--checkpoint", "empty.bpk", "--device", "cpu"],
            expect: &["empty.bpk", "empty"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint without its metadata",
            setup: |d| write(&d.join("bare.bpk"), b"not really weights"),
            args: &["eval", "--checkpoint", "bare.bpk", "--device", "cpu"],
            expect: &["bare.bpk", "no cnnzoo metadata", "bare.bpk.json"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint truncated",
            setup: |d| {
                checkpoint(d, "cut.bpk", "resnet", "resnet");
                let bytes = std::fs::read(d.join("cut.bpk")).unwrap();
                std::fs::write(d.join("cut.bpk"), &bytes[..bytes.len() / 2]).unwrap();
            },
            args: &[
                "eval",
                "--checkpoint",
                "cut.bpk",
                "--device",
                "cpu",
                "--data-dir",
                "../mini",
            ],
            expect: &["cut.bpk", "cannot read the weights", "truncated"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint of another architecture",
            setup: |d| checkpoint(d, "other.bpk", "densenet", "resnet"),
            args: &[
                "eval",
                "--checkpoint",
                "other.bpk",
                "--device",
                "cpu",
                "--data-dir",
                "../mini",
            ],
            expect: &[
                "other.bpk",
                "do not fit model 'resnet'",
                "holds a DenseNet network",
            ],
        },
        Case {
            group: "device",
            input: "a GPU asked for where none exists",
            setup: nothing,
            args: &[
                "train",
                "--model",
                "resnet",
                "--device",
                "metal",
                "--data-dir",
                "../mini",
            ],
            expect: &["metal", "no", "adapter", "--device cpu"],
        },
        Case {
            group: "device",
            input: "unknown device name",
            setup: nothing,
            args: &[
                "train",
                "--model",
                "resnet",
                "--device",
                "tpu",
                "--data-dir",
                "../mini",
            ],
            expect: &["unknown device 'tpu'", "cpu", "vulkan"],
        },
    ]
}

/// Every file under `dir` with its contents, to prove a failed command changed nothing.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// An earlier finished run that no failing command may touch.
fn earlier_run(dir: &Path) {
    for (name, text) in [
        ("runs/earlier/results.json", "{\"test_top1\": 91.06}"),
        ("runs/earlier/summary.csv", "epoch,lr\n1,0.1\n"),
        ("runs/earlier/best.bpk", "weights"),
    ] {
        write(&dir.join(name), text.as_bytes());
    }
}

#[test]
fn every_bad_input_is_a_clean_error_and_docs_errors_md_is_current() {
    let mut table = String::from(
        "# What cnnzoo says to bad input\n\n\
         Generated by `crates/cli/tests/bad_input.rs` (run it with `CNNZOO_BLESS_ERRORS=1` to \
         rewrite this file); the test fails when this table and the program disagree. Every case \
         exits non-zero, prints no panic or backtrace, and leaves existing files untouched.\n\n\
         | kind | input | command | message |\n| --- | --- | --- | --- |\n",
    );
    for case in cases() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("work");
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(mini_data(), root.path().join("mini")).unwrap();
        earlier_run(&dir);
        (case.setup)(&dir);
        let before = snapshot(&dir);
        let output = cnnzoo(case.args, &dir);
        assert_clean_failure(&output, case.expect);
        assert!(before == snapshot(&dir), "{}: files changed", case.input);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let message = stderr
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or_else(|| panic!("{}: no error line in {stderr}", case.input))
            .replace(dir.to_str().unwrap(), "<dir>")
            .replace('|', "\\|");
        table.push_str(&format!(
            "| {} | {} | `cnnzoo {}` | {} |\n",
            case.group,
            case.input,
            case.args.join(" "),
            message
        ));
    }
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/errors.md");
    if std::env::var_os("CNNZOO_BLESS_ERRORS").is_some() {
        std::fs::write(&doc, &table).unwrap();
    }
    let committed = std::fs::read_to_string(&doc).unwrap_or_default();
    assert!(
        committed == table,
        "docs/errors.md is out of date; rerun with CNNZOO_BLESS_ERRORS=1 and review the diff"
    );
}
