//! Every bad input gets a non-zero exit and a message that names the thing, never a panic, and
//! leaves every file already there untouched. The cases also generate docs/errors.md: run with
//! `CNNZOO_BLESS_ERRORS=1` to rewrite it after changing a message; otherwise the test fails when
//! the table and the program disagree.
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::{assert_clean_failure, cnnzoo, cnnzoo_downloading_from, mini_data};

/// One bad input: what it is, how to make it, the command, and what the message must name.
struct Case {
    group: &'static str,
    input: &'static str,
    setup: fn(&Path),
    /// Bytes a local HTTP server answers every download with.
    serve: Option<&'static [u8]>,
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
    let model = cnnzoo_models::lookup(weights_of)
        .unwrap()
        .config(10)
        .init(&burn::tensor::Device::flex());
    let config = cnnzoo_models::lookup(described_as).unwrap().config(10);
    common::write_checkpoint(&dir.join(name), model, described_as, config);
}

/// A safetensors file named `weights.safetensors` holding zeros under the reference ResNet-20's
/// PyTorch keys and shapes (the models crate's key list), after `edit`.
fn torch_weights(dir: &Path, edit: fn(&mut Vec<(String, Vec<usize>)>)) {
    let keys = include_str!("../../models/tests/fixtures/resnet.keys");
    let mut tensors: Vec<(String, Vec<usize>)> = keys
        .lines()
        .filter_map(|line| line.split_once(' '))
        .filter(|(_, shape)| *shape != "scalar")
        .map(|(name, shape)| {
            let shape = shape.split('x').map(|d| d.parse().unwrap()).collect();
            (name.to_string(), shape)
        })
        .collect();
    edit(&mut tensors);
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape) in &tensors {
        let bytes = 4 * shape.iter().product::<usize>();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.resize(file.len() + offset, 0);
    write(&dir.join("weights.safetensors"), &file);
}

/// A PNG whose header says `width` x `height`, with one byte of pixel data: decoders read the
/// header first, so this is all the size checks need to see.
fn png_header(path: &Path, width: u32, height: u32) {
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, b"IHDR", &ihdr);
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    zlib.write_all(&[0]).unwrap();
    chunk(&mut png, b"IDAT", &zlib.finish().unwrap());
    chunk(&mut png, b"IEND", &[]);
    write(path, &png);
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Answers every HTTP request on a local port with `body`, for as long as the test runs.
fn serve(body: &'static [u8]) -> String {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let mut stream = &stream;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    format!("http://{address}/cifar-10-binary.tar.gz")
}

/// `predict` with the ResNet-20 checkpoint `resnet.bpk` on one file.
macro_rules! predict {
    ($file:literal) => {
        &[
            "predict",
            "--checkpoint",
            "resnet.bpk",
            "--device",
            "cpu",
            $file,
        ]
    };
}

const IMPORT: &[&str] = &[
    "import",
    "--from",
    "weights.safetensors",
    "--model",
    "resnet",
    "--output",
    "imported.bpk",
];

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
            serve: None,
            args: TRAIN,
            expect: &["could not download", "by hand", "cifar-10-binary.tar.gz"],
        },
        Case {
            group: "data",
            input: "empty data folder, no network",
            setup: |d| std::fs::create_dir_all(d.join("data")).unwrap(),
            serve: None,
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
            serve: None,
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
            serve: None,
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
            serve: None,
            args: TRAIN,
            expect: &["data_batch_2.bin", "record 5", "12"],
        },
        Case {
            group: "data",
            input: "missing batch file",
            setup: |d| std::fs::remove_file(extracted(d).join("data_batch_4.bin")).unwrap(),
            serve: None,
            args: TRAIN,
            expect: &["data_batch_4.bin", "missing"],
        },
        Case {
            group: "data",
            input: "archive that is gzip but not a tar",
            setup: |d| write(&d.join("data/cifar-10-binary.tar.gz"), &gzip(&[7u8; 2000])),
            serve: None,
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
            serve: None,
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
            serve: None,
            args: TRAIN,
            expect: &["cifar-10-binary.tar.gz", "../evil.x", "would escape"],
        },
        Case {
            group: "data",
            input: "download with the wrong checksum",
            setup: nothing,
            serve: Some(b"these bytes are not the CIFAR-10 archive"),
            args: TRAIN,
            expect: &["cifar-10-binary.tar.gz", "md5", "does not match", "deleted"],
        },
        Case {
            group: "config",
            input: "config file missing",
            setup: nothing,
            serve: None,
            args: &["train", "--config", "nope.toml"],
            expect: &["nope.toml"],
        },
        Case {
            group: "config",
            input: "unknown key",
            setup: |d| config_with(d, "epochs = 2", "epochs = 2\nepoch_count = 3"),
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "line 3", "epoch_count"],
        },
        Case {
            group: "config",
            input: "wrong type",
            setup: |d| config_with(d, "epochs = 2", "epochs = \"two\""),
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "line 2", "epochs"],
        },
        Case {
            group: "config",
            input: "zero epochs",
            setup: |d| config_with(d, "epochs = 2", "epochs = 0"),
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "epochs must be at least 1"],
        },
        Case {
            group: "config",
            input: "negative epochs",
            setup: |d| config_with(d, "epochs = 2", "epochs = -3"),
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "epochs"],
        },
        Case {
            group: "config",
            input: "zero batch size (flag)",
            setup: nothing,
            serve: None,
            args: &["train", "--model", "resnet", "--batch-size", "0"],
            expect: &["batch_size must be at least 1"],
        },
        Case {
            group: "config",
            input: "negative learning rate",
            setup: |d| config_with(d, "lr = 0.1", "lr = -0.1"),
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "optimizer.lr must be a positive number", "-0.1"],
        },
        Case {
            group: "config",
            input: "milestones out of order",
            setup: |d| config_with(d, "milestones = [1]", "milestones = [150, 100]"),
            serve: None,
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
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "adam", "sgd", "adamw"],
        },
        Case {
            group: "config",
            input: "unknown schedule",
            setup: |d| config_with(d, "name = \"multistep\"", "name = \"onecycle\""),
            serve: None,
            args: &["train", "--config", "bad.toml"],
            expect: &["bad.toml", "onecycle", "multistep", "cosine"],
        },
        Case {
            group: "config",
            input: "unknown model",
            setup: nothing,
            serve: None,
            args: &["train", "--model", "resnett"],
            expect: &["unknown model 'resnett'", "did you mean 'resnet'"],
        },
        Case {
            group: "config",
            input: "val_fraction outside [0, 1)",
            setup: nothing,
            serve: None,
            args: &["train", "--model", "resnet", "--val-fraction", "1.5"],
            expect: &["val_fraction must be in [0, 1)", "1.5"],
        },
        Case {
            group: "config",
            input: "unknown model parameter",
            setup: |d| config_with(d, "epochs = 2", "epochs = 2\n[model_params]\ndepth = 56"),
            serve: None,
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
            group: "config",
            input: "a model whose ImageNet stem cannot take 32x32 images",
            setup: nothing,
            serve: None,
            args: &[
                "train",
                "--model",
                "inception_v3",
                "--device",
                "cpu",
                "--data-dir",
                "../mini",
            ],
            expect: &["inception_v3", "at least 75x75", "cifar_stem = true"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint missing",
            setup: nothing,
            serve: None,
            args: &["eval", "--checkpoint", "runs/x/best.bpk", "--device", "cpu"],
            expect: &["runs/x/best.bpk", "no such checkpoint file"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint empty",
            setup: |d| write(&d.join("empty.bpk"), b""),
            serve: None,
            args: &["eval", "--checkpoint", "empty.bpk", "--device", "cpu"],
            expect: &["empty.bpk", "empty"],
        },
        Case {
            group: "checkpoint",
            input: "checkpoint without its metadata",
            setup: |d| write(&d.join("bare.bpk"), b"not really weights"),
            serve: None,
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
            serve: None,
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
            serve: None,
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
            group: "checkpoint",
            input: "PyTorch file with missing keys",
            setup: |d| torch_weights(d, |t| t.retain(|(name, _)| !name.starts_with("output_net"))),
            serve: None,
            args: IMPORT,
            expect: &[
                "weights.safetensors",
                "do not fit the model",
                "2 parameter(s) of the model that no tensor in the file maps to",
                "output_net.weight",
            ],
        },
        Case {
            group: "checkpoint",
            input: "PyTorch file with extra keys",
            setup: |d| torch_weights(d, |t| t.push(("head.fc.weight".into(), vec![10, 64]))),
            serve: None,
            args: IMPORT,
            expect: &[
                "weights.safetensors",
                "1 key(s) in the file that are not weights of this model: head.fc.weight",
            ],
        },
        Case {
            group: "checkpoint",
            input: "PyTorch file with a tensor of the wrong shape",
            setup: |d| torch_weights(d, |t| t[0].1 = vec![8, 3, 3, 3]),
            serve: None,
            args: IMPORT,
            expect: &[
                "weights.safetensors",
                "1 shape mismatch(es): input_net.0.weight is [8, 3, 3, 3], expected [16, 3, 3, 3]",
            ],
        },
        Case {
            group: "predict",
            input: "a file that is not an image",
            setup: |d| {
                checkpoint(d, "resnet.bpk", "resnet", "resnet");
                write(&d.join("notes.txt"), b"not a picture");
            },
            serve: None,
            args: predict!("notes.txt"),
            expect: &["notes.txt: not an image", "PNG, JPEG, BMP or WebP"],
        },
        Case {
            group: "predict",
            input: "a file that cannot be read (a folder)",
            setup: |d| {
                checkpoint(d, "resnet.bpk", "resnet", "resnet");
                std::fs::create_dir_all(d.join("cat.png")).unwrap();
            },
            serve: None,
            args: predict!("cat.png"),
            expect: &["cat.png: is a folder"],
        },
        Case {
            group: "predict",
            input: "a damaged image (cut after its signature)",
            setup: |d| {
                checkpoint(d, "resnet.bpk", "resnet", "resnet");
                write(&d.join("cut.png"), b"\x89PNG\r\n\x1a\n");
            },
            serve: None,
            args: predict!("cut.png"),
            expect: &["cut.png: cannot decode the PNG image"],
        },
        Case {
            group: "predict",
            input: "a 0x0 image",
            setup: |d| {
                checkpoint(d, "resnet.bpk", "resnet", "resnet");
                png_header(&d.join("empty.png"), 0, 0);
            },
            serve: None,
            args: predict!("empty.png"),
            expect: &["empty.png", "zero"],
        },
        Case {
            group: "predict",
            input: "a huge image (100000x100000)",
            setup: |d| {
                checkpoint(d, "resnet.bpk", "resnet", "resnet");
                png_header(&d.join("huge.png"), 100_000, 100_000);
            },
            serve: None,
            args: predict!("huge.png"),
            expect: &["huge.png", "100000"],
        },
        Case {
            group: "runs",
            input: "train into a folder a live run holds (run.lock)",
            setup: |d| {
                let lock = r#"{"pid": 1, "process_start": null, "started_unix": 0}"#;
                write(&d.join("runs/earlier/run.lock"), lock.as_bytes());
            },
            serve: None,
            args: &[
                "train",
                "--model",
                "resnet",
                "--device",
                "cpu",
                "--data-dir",
                "../mini",
                "--output",
                "runs/earlier",
            ],
            expect: &["runs/earlier is being trained by process 1", "run.lock"],
        },
        Case {
            group: "runs",
            input: "confusion heat map into a missing folder",
            setup: |d| checkpoint(d, "resnet.bpk", "resnet", "resnet"),
            serve: None,
            args: &[
                "eval",
                "--checkpoint",
                "resnet.bpk",
                "--device",
                "cpu",
                "--data-dir",
                "../mini",
                "--confusion",
                "nowhere/confusion.png",
            ],
            expect: &["nowhere"],
        },
        Case {
            group: "runs",
            input: "listing a missing runs folder",
            setup: nothing,
            serve: None,
            args: &["runs", "nowhere"],
            expect: &["nowhere"],
        },
        Case {
            group: "device",
            input: "a GPU asked for where none exists",
            setup: nothing,
            serve: None,
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
            serve: None,
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
        let output = match case.serve {
            Some(body) => cnnzoo_downloading_from(&serve(body), case.args, &dir),
            None => cnnzoo(case.args, &dir),
        };
        assert_clean_failure(&output, case.expect);
        assert!(before == snapshot(&dir), "{}: files changed", case.input);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // The first error line and the indented lines that detail it.
        let mut lines = stderr.lines().skip_while(|l| !l.starts_with("error:"));
        let first = lines
            .next()
            .unwrap_or_else(|| panic!("{}: no error line in {stderr}", case.input));
        let message = std::iter::once(first)
            .chain(lines.take_while(|l| l.starts_with("  ")).map(str::trim))
            .collect::<Vec<_>>()
            .join("<br>")
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
