//! Every bad input gets a non-zero exit and a message that names the thing, never a panic, and
//! leaves every file already there untouched. The cases also generate docs/errors.md: run with
//! `CNNZOO_BLESS_ERRORS=1` to rewrite it after changing a message; otherwise the test fails when
//! the table and the program disagree.
mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{assert_clean_failure, cnnzoo, cnnzoo_downloading_from, mini_data, snapshot};

/// One step of making a working folder.
type Setup = Box<dyn Fn(&Path)>;

/// One bad input: what it is, how to make it, the command, and what the message must name.
struct Case {
    group: &'static str,
    input: &'static str,
    /// The arguments after `cnnzoo`, split at spaces (no argument holds one), as docs/errors.md
    /// shows them.
    command: String,
    expect: &'static [&'static str],
    /// What is made in the working folder before the command runs, in order.
    setup: Vec<Setup>,
    /// Bytes a local HTTP server answers every download with.
    serve: Option<&'static [u8]>,
}

impl Case {
    /// A bad input that the command line alone makes.
    fn new(
        group: &'static str,
        input: &'static str,
        command: impl Into<String>,
        expect: &'static [&'static str],
    ) -> Case {
        Case {
            group,
            input,
            command: command.into(),
            expect,
            setup: Vec::new(),
            serve: None,
        }
    }

    /// The same once `step` has prepared the working folder.
    fn after(mut self, step: impl Fn(&Path) + 'static) -> Case {
        self.setup.push(Box::new(step));
        self
    }

    /// The same with every download answered by `body`.
    fn served(mut self, body: &'static [u8]) -> Case {
        self.serve = Some(body);
        self
    }
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

/// `train` of ResNet-20 on the CPU with the folder `data`, which the data cases make or damage.
const TRAIN: &str = "train --model resnet --device cpu --data-dir data --epochs 1";

/// `train` with the mini archive's batches, extracted, after `damage` to `batch`.
fn damaged_batch(
    input: &'static str,
    batch: &'static str,
    damage: fn(&mut Vec<u8>),
    expect: &'static [&'static str],
) -> Case {
    Case::new("data", input, TRAIN, expect).after(move |d| {
        let path = extracted(d).join(batch);
        let mut bytes = std::fs::read(&path).unwrap();
        damage(&mut bytes);
        std::fs::write(&path, bytes).unwrap();
    })
}

/// `train` with `bytes()` where the CIFAR-10 archive belongs.
fn bad_archive(
    input: &'static str,
    bytes: fn() -> Vec<u8>,
    expect: &'static [&'static str],
) -> Case {
    Case::new("data", input, TRAIN, expect)
        .after(move |d| write(&d.join("data/cifar-10-binary.tar.gz"), &bytes()))
}

/// A gzipped tar whose one entry, `../evil.x`, would land outside the folder it is extracted in.
fn escaping_tar_gz() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    let payload = b"owned";
    header.set_size(payload.len() as u64);
    header.set_mode(0o644);
    header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../evil.x");
    header.set_cksum();
    builder.append(&header, &payload[..]).unwrap();
    gzip(&builder.into_inner().unwrap())
}

/// `train --config bad.toml`, the good config with `from` replaced by `to`.
fn bad_config(
    input: &'static str,
    from: &'static str,
    to: &'static str,
    expect: &'static [&'static str],
) -> Case {
    Case::new("config", input, "train --config bad.toml", expect)
        .after(move |d| config_with(d, from, to))
}

/// `eval` of the checkpoint file `name` holding just `bytes`, with no metadata beside it.
fn unreadable_checkpoint(
    input: &'static str,
    name: &'static str,
    bytes: &'static [u8],
    expect: &'static [&'static str],
) -> Case {
    let command = format!("eval --checkpoint {name} --device cpu");
    Case::new("checkpoint", input, command, expect).after(move |d| write(&d.join(name), bytes))
}

/// `import` of zeros under the reference ResNet-20's PyTorch keys and shapes after `edit`.
fn bad_torch(
    input: &'static str,
    edit: fn(&mut Vec<(String, Vec<usize>)>),
    expect: &'static [&'static str],
) -> Case {
    let command = "import --from weights.safetensors --model resnet --output imported.bpk";
    Case::new("checkpoint", input, command, expect).after(move |d| torch_weights(d, edit))
}

/// `predict` with a ResNet-20 checkpoint on the file `name`, which `make` writes at its path.
fn bad_image(
    input: &'static str,
    name: &'static str,
    make: fn(&Path),
    expect: &'static [&'static str],
) -> Case {
    let command = format!("predict --checkpoint resnet.bpk --device cpu {name}");
    Case::new("predict", input, command, expect)
        .after(|d| checkpoint(d, "resnet.bpk", "resnet", "resnet"))
        .after(move |d| make(&d.join(name)))
}

/// Every case, in the order of docs/errors.md.
fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "data",
            "data folder missing, no network",
            TRAIN,
            &["could not download", "by hand", "cifar-10-binary.tar.gz"],
        ),
        Case::new(
            "data",
            "empty data folder, no network",
            TRAIN,
            &["could not download", "by hand"],
        )
        .after(|d| std::fs::create_dir_all(d.join("data")).unwrap()),
        damaged_batch(
            "truncated batch file",
            "data_batch_3.bin",
            |b| b.truncate(b.len() - 100),
            &[
                "data_batch_3.bin",
                "not a multiple of the 3073-byte record size",
            ],
        ),
        damaged_batch(
            "batch file of the wrong size (an extra byte)",
            "test_batch.bin",
            |b| b.push(0),
            &["test_batch.bin", "not a multiple"],
        ),
        damaged_batch(
            "label out of range",
            "data_batch_2.bin",
            |b| b[3073 * 5] = 12,
            &["data_batch_2.bin", "record 5", "12"],
        ),
        Case::new(
            "data",
            "missing batch file",
            TRAIN,
            &["data_batch_4.bin", "missing"],
        )
        .after(|d| std::fs::remove_file(extracted(d).join("data_batch_4.bin")).unwrap()),
        bad_archive(
            "archive that is gzip but not a tar",
            || gzip(&[7u8; 2000]),
            &["cifar-10-binary.tar.gz", "not a tar archive"],
        ),
        bad_archive(
            "archive that is not gzip",
            || b"PK\x03\x04 a zip file".to_vec(),
            &["cifar-10-binary.tar.gz", "not a gzip archive"],
        ),
        bad_archive(
            "tar entry escaping the data folder",
            escaping_tar_gz,
            &["cifar-10-binary.tar.gz", "../evil.x", "would escape"],
        ),
        Case::new(
            "data",
            "download with the wrong checksum",
            TRAIN,
            &["cifar-10-binary.tar.gz", "md5", "does not match", "deleted"],
        )
        .served(b"these bytes are not the CIFAR-10 archive"),
        Case::new(
            "config",
            "config file missing",
            "train --config nope.toml",
            &["nope.toml"],
        ),
        bad_config(
            "unknown key",
            "epochs = 2",
            "epochs = 2\nepoch_count = 3",
            &["bad.toml", "line 3", "epoch_count"],
        ),
        bad_config(
            "two augmentation policies",
            "epochs = 2",
            "epochs = 2\naugment = { auto_augment = \"cifar10\", trivial_augment_wide = {} }",
            &["augment.auto_augment and augment.trivial_augment_wide exclude each other"],
        ),
        bad_config(
            "unknown AutoAugment policy",
            "epochs = 2",
            "epochs = 2\naugment = { auto_augment = \"cifar100\" }",
            &["bad.toml", "cifar100", "cifar10"],
        ),
        bad_config(
            "label smoothing of 1 or more",
            "epochs = 2",
            "epochs = 2\nlabel_smoothing = 1.5",
            &["label_smoothing must be in [0, 1) (got 1.5)"],
        ),
        bad_config(
            "coarse labels of CIFAR-10",
            "epochs = 2",
            "epochs = 2\ndata = { labels = \"coarse\" }",
            &[
                "data.labels = \"coarse\" is for CIFAR-100 only",
                "data.dataset = \"cifar100\"",
            ],
        ),
        bad_config(
            "a folder key for CIFAR",
            "epochs = 2",
            "epochs = 2\ndata = { image_size = 64 }",
            &[
                "data.image_size is for folder data sets",
                "data.dataset = \"folder\"",
            ],
        ),
        bad_config(
            "a folder without class folders",
            "epochs = 2",
            "epochs = 2\ndata = { dataset = \"folder\", root = \"photos\" }",
            &["photos: no class folders", "root/<class>/<image>"],
        )
        .after(|d| std::fs::create_dir_all(d.join("photos")).unwrap()),
        bad_config(
            "a folder with an undecodable image",
            "epochs = 2",
            "epochs = 2\ndata = { dataset = \"folder\", root = \"photos\" }",
            &[
                "1 image file(s) cannot be decoded",
                "photos/b/broken.png: cannot decode the PNG image",
                "skip_bad_images = true",
            ],
        )
        .after(|d| {
            let options = zune_core::options::EncoderOptions::new(
                4,
                4,
                zune_core::colorspace::ColorSpace::RGB,
                zune_core::bit_depth::BitDepth::Eight,
            );
            let mut png = Vec::new();
            (zune_png::PngEncoder::new(&[128; 48], options).encode(&mut png)).unwrap();
            for class in ["a", "b"] {
                write(&d.join(format!("photos/{class}/1.png")), &png);
            }
            write(&d.join("photos/b/broken.png"), b"\x89PNG\r\n\x1a\n");
        }),
        bad_config(
            "EMA decay of 1",
            "epochs = 2",
            "epochs = 2\nema = { decay = 1.0 }",
            &["ema.decay must be in [0, 1) (got 1)"],
        ),
        bad_config(
            "wrong type",
            "epochs = 2",
            "epochs = \"two\"",
            &["bad.toml", "line 2", "epochs"],
        ),
        bad_config(
            "zero epochs",
            "epochs = 2",
            "epochs = 0",
            &["bad.toml", "epochs must be at least 1"],
        ),
        bad_config(
            "negative epochs",
            "epochs = 2",
            "epochs = -3",
            &["bad.toml", "epochs"],
        ),
        Case::new(
            "config",
            "zero batch size (flag)",
            "train --model resnet --batch-size 0",
            &["batch_size must be at least 1"],
        ),
        bad_config(
            "negative learning rate",
            "lr = 0.1",
            "lr = -0.1",
            &["bad.toml", "optimizer.lr must be a positive number", "-0.1"],
        ),
        bad_config(
            "milestones out of order",
            "milestones = [1]",
            "milestones = [150, 100]",
            &[
                "bad.toml",
                "milestones must be strictly increasing",
                "150 then 100",
            ],
        ),
        bad_config(
            "unknown optimizer",
            "name = \"sgd\"",
            "name = \"adam\"",
            &["bad.toml", "adam", "sgd", "adamw"],
        ),
        bad_config(
            "unknown schedule",
            "name = \"multistep\"",
            "name = \"polynomial\"",
            &["bad.toml", "polynomial", "multistep", "onecycle"],
        ),
        bad_config(
            "onecycle with warm-up epochs (it warms up on its own)",
            "name = \"multistep\"\nmilestones = [1]",
            "name = \"onecycle\"\nwarmup_epochs = 1",
            &["bad.toml", "schedule.warmup_epochs (1)", "onecycle"],
        ),
        bad_config(
            "Nesterov without momentum",
            "momentum = 0.9",
            "momentum = 0.0\nnesterov = true",
            &[
                "bad.toml",
                "optimizer.nesterov needs a momentum above 0",
                "momentum = 0",
            ],
        ),
        bad_config(
            "gradient clipping at a norm of zero",
            "momentum = 0.9",
            "momentum = 0.9\ngrad_clip = { norm = 0.0 }",
            &[
                "bad.toml",
                "optimizer.grad_clip.norm must be a positive number (got 0)",
            ],
        ),
        Case::new(
            "config",
            "unknown model",
            "train --model resnett",
            &["unknown model 'resnett'", "did you mean 'resnet'"],
        ),
        Case::new(
            "config",
            "val_fraction outside [0, 1)",
            "train --model resnet --val-fraction 1.5",
            &["val_fraction must be in [0, 1)", "1.5"],
        ),
        Case::new(
            "config",
            "unknown model parameter",
            "train --config bad.toml --device cpu --data-dir ../mini",
            &["model_params", "'depth'", "num_blocks"],
        )
        .after(|d| config_with(d, "epochs = 2", "epochs = 2\n[model_params]\ndepth = 56")),
        Case::new(
            "config",
            "a model whose ImageNet stem cannot take 32x32 images",
            "train --model inception_v3 --device cpu --data-dir ../mini",
            &["inception_v3", "at least 75x75", "cifar_stem = true"],
        ),
        Case::new(
            "checkpoint",
            "checkpoint missing",
            "eval --checkpoint runs/x/best.bpk --device cpu",
            &["runs/x/best.bpk", "no such checkpoint file"],
        ),
        unreadable_checkpoint(
            "checkpoint empty",
            "empty.bpk",
            b"",
            &["empty.bpk", "empty"],
        ),
        unreadable_checkpoint(
            "checkpoint without its metadata",
            "bare.bpk",
            b"not really weights",
            &["bare.bpk", "no cnnzoo metadata", "bare.bpk.json"],
        ),
        Case::new(
            "checkpoint",
            "checkpoint truncated",
            "eval --checkpoint cut.bpk --device cpu --data-dir ../mini",
            &["cut.bpk", "cannot read the weights", "truncated"],
        )
        .after(|d| {
            checkpoint(d, "cut.bpk", "resnet", "resnet");
            let bytes = std::fs::read(d.join("cut.bpk")).unwrap();
            std::fs::write(d.join("cut.bpk"), &bytes[..bytes.len() / 2]).unwrap();
        }),
        Case::new(
            "checkpoint",
            "checkpoint of another architecture",
            "eval --checkpoint other.bpk --device cpu --data-dir ../mini",
            &[
                "other.bpk",
                "do not fit model 'resnet'",
                "holds a DenseNet network",
            ],
        )
        .after(|d| checkpoint(d, "other.bpk", "densenet", "resnet")),
        bad_torch(
            "PyTorch file with missing keys",
            |t| t.retain(|(name, _)| !name.starts_with("output_net")),
            &[
                "weights.safetensors",
                "do not fit the model",
                "2 parameter(s) of the model that no tensor in the file maps to",
                "output_net.weight",
            ],
        ),
        bad_torch(
            "PyTorch file with extra keys",
            |t| t.push(("head.fc.weight".into(), vec![10, 64])),
            &[
                "weights.safetensors",
                "1 key(s) in the file that are not weights of this model: head.fc.weight",
            ],
        ),
        bad_torch(
            "PyTorch file with a tensor of the wrong shape",
            |t| t[0].1 = vec![8, 3, 3, 3],
            &[
                "weights.safetensors",
                "1 shape mismatch(es): input_net.0.weight is [8, 3, 3, 3], expected [16, 3, 3, 3]",
            ],
        ),
        bad_image(
            "a file that is not an image",
            "notes.txt",
            |p| write(p, b"not a picture"),
            &["notes.txt: not an image", "PNG, JPEG, BMP or WebP"],
        ),
        bad_image(
            "a file that cannot be read (a folder)",
            "cat.png",
            |p| std::fs::create_dir_all(p).unwrap(),
            &["cat.png: is a folder"],
        ),
        bad_image(
            "a damaged image (cut after its signature)",
            "cut.png",
            |p| write(p, b"\x89PNG\r\n\x1a\n"),
            &["cut.png: cannot decode the PNG image"],
        ),
        bad_image(
            "a 0x0 image",
            "empty.png",
            |p| png_header(p, 0, 0),
            &["empty.png", "zero"],
        ),
        bad_image(
            "a huge image (100000x100000)",
            "huge.png",
            |p| png_header(p, 100_000, 100_000),
            &["huge.png", "100000"],
        ),
        Case::new(
            "runs",
            "train into a folder a live run holds (run.lock)",
            "train --model resnet --device cpu --data-dir ../mini --output runs/earlier",
            &["runs/earlier is being trained by process 1", "run.lock"],
        )
        .after(|d| {
            let lock = r#"{"pid": 1, "process_start": null, "started_unix": 0}"#;
            write(&d.join("runs/earlier/run.lock"), lock.as_bytes());
        }),
        Case::new(
            "runs",
            "confusion heat map into a missing folder",
            "eval --checkpoint resnet.bpk --device cpu --data-dir ../mini \
             --confusion nowhere/confusion.png",
            &["nowhere"],
        )
        .after(|d| checkpoint(d, "resnet.bpk", "resnet", "resnet")),
        Case::new(
            "runs",
            "listing a missing runs folder",
            "runs nowhere",
            &["nowhere"],
        ),
        Case::new(
            "device",
            "a GPU asked for where none exists",
            "train --model resnet --device metal --data-dir ../mini",
            &["metal", "no", "adapter", "--device cpu"],
        ),
        Case::new(
            "device",
            "unknown device name",
            "train --model resnet --device tpu --data-dir ../mini",
            &["unknown device 'tpu'", "cpu", "vulkan"],
        ),
        Case::new(
            "device",
            "CUDA asked of a build without it",
            "train --model resnet --device cuda --data-dir ../mini",
            &["without CUDA", "--features cuda"],
        ),
        Case::new(
            "device",
            "a batch the devices do not divide",
            "train --model resnet --devices cpu,cpu,cpu --batch-size 128 --data-dir ../mini",
            &["batch_size 128", "3 devices", "multiple of 3"],
        ),
        Case::new(
            "device",
            "DDP without CUDA devices",
            "train --model resnet --devices cpu,cpu --parallel ddp --data-dir ../mini",
            &["ddp", "CUDA devices", "\"multi\""],
        ),
        Case::new(
            "device",
            "several wgpu devices",
            "train --model resnet --devices vulkan,vulkan --data-dir ../mini",
            &["vulkan,vulkan", "--devices cuda:0,cuda:1"],
        ),
    ]
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
        for step in &case.setup {
            step(&dir);
        }
        let before = snapshot(&dir);
        let args: Vec<&str> = case.command.split(' ').collect();
        let output = match case.serve {
            Some(body) => cnnzoo_downloading_from(&serve(body), &args, &dir),
            None => cnnzoo(&args, &dir),
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
            case.group, case.input, case.command, message
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
