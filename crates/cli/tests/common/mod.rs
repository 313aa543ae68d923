//! Helpers shared by the end-to-end tests: running the binary and finding the mini archive.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Output, Stdio};

use cnnzoo_train::augment_config::EmaConfig;
use cnnzoo_train::classifier::Classifier;
use cnnzoo_train::ema::Ema;

/// The real-image CIFAR-10 subset beside the checkout (never copied into the repository): the
/// data folder `../shared/data/cifar10-mini`, used as it is, since cnnzoo reads the archive in
/// place and writes nothing beside it.
pub fn mini_data() -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cifar10-mini");
    assert!(
        shared.join("cifar-10-binary.tar.gz").is_file(),
        "the tests need ../shared/data/cifar10-mini beside the checkout"
    );
    shared.canonicalize().unwrap()
}

/// A copy of the mini archive in `dir/data`, a data folder of the test's own that it may
/// change.
pub fn mini_data_copy(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        mini_data().join("cifar-10-binary.tar.gz"),
        data.join("cifar-10-binary.tar.gz"),
    )
    .unwrap();
    data
}

/// Where downloads are pointed: a closed port, so no test reaches the internet.
const UNREACHABLE: &str = "http://127.0.0.1:9/unreachable";

/// Runs the binary with downloads pointed at a closed port.
pub fn cnnzoo(args: &[&str], cwd: &Path) -> Output {
    cnnzoo_downloading_from(UNREACHABLE, args, cwd)
}

/// Runs the binary with the space-separated words of `line` as its arguments.
pub fn cnnzoo_line(line: &str, cwd: &Path) -> Output {
    cnnzoo(&line.split(' ').collect::<Vec<_>>(), cwd)
}

/// [`cnnzoo_line`] in a new empty folder, returned with the output so that it lives as long as
/// the test looks into it.
pub fn cnnzoo_in_new_dir(line: &str) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    let out = cnnzoo_line(line, dir.path());
    (dir, out)
}

/// `cnnzoo eval --json` of `checkpoint` on the CPU over the images in `data`, then `extra`.
pub fn eval_json(checkpoint: &str, data: &Path, extra: &[&str], cwd: &Path) -> Output {
    let data = data.to_str().expect("a UTF-8 data path");
    let mut args = vec![
        "eval",
        "--checkpoint",
        checkpoint,
        "--data-dir",
        data,
        "--device",
        "cpu",
        "--json",
    ];
    args.extend(extra);
    cnnzoo(&args, cwd)
}

/// A run held at a pause point (`CNNZOO_PAUSE_AT`) until the test stops it.
pub struct Paused {
    pub child: Child,
    /// The rest of its stderr.
    pub stderr: Lines<BufReader<ChildStderr>>,
    /// What it printed on stderr up to the pause.
    pub seen: Vec<String>,
}

/// Starts the binary with `CNNZOO_PAUSE_AT=point` and waits until it is there.
pub fn run_until_paused(args: &[&str], cwd: &Path, point: &str) -> Paused {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cnnzoo"))
        .args(args)
        .current_dir(cwd)
        .env("CNNZOO_PAUSE_AT", point)
        .env("CNNZOO_CIFAR_URL", UNREACHABLE)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in stderr.by_ref() {
        let line = line.unwrap();
        let reached = line.contains("paused at");
        seen.push(line);
        if reached {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("paused at") && l.contains(point)),
        "never reached {point}: {seen:?}"
    );
    Paused {
        child,
        stderr,
        seen,
    }
}

/// Where the binary keeps folder data sets' image caches in the tests: inside the test's folder,
/// so that no test writes into the user's cache.
pub const IMAGE_CACHE: &str = ".cnnzoo-cache";

/// The binary with downloads pointed at `url` and image caches in `cwd/`[`IMAGE_CACHE`].
pub fn cnnzoo_downloading_from(url: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnzoo"))
        .args(args)
        .current_dir(cwd)
        .env("CNNZOO_CIFAR_URL", url)
        .env("CNNZOO_CACHE_DIR", cwd.join(IMAGE_CACHE))
        .output()
        .expect("cnnzoo runs")
}

pub fn text(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A non-zero exit with a message and no panic or backtrace.
pub fn assert_clean_failure(output: &Output, expected: &[&str]) {
    let all = text(output);
    assert!(!output.status.success(), "expected a failure:\n{all}");
    assert_contains_all(&all, expected);
    assert!(!all.contains("panicked at"), "panic text:\n{all}");
    assert!(!all.contains("RUST_BACKTRACE"), "backtrace hint:\n{all}");
}

/// Writes the checkpoint `path`: the weights of `model`, and metadata beside it describing
/// them as `described_as` with `config` (CIFAR-10's classes and statistics), as cnnzoo writes its
/// checkpoints.
pub fn write_checkpoint(
    path: &Path,
    model: cnnzoo_models::Model,
    described_as: &str,
    config: cnnzoo_models::ModelConfig,
) {
    use burn::module::Module;
    use cnnzoo_train::checkpoint::{CheckpointMeta, DatasetInfo, FORMAT, write_meta};
    Classifier::new(model).save_file(path).unwrap();
    let meta = CheckpointMeta {
        format: FORMAT.into(),
        model: described_as.into(),
        config,
        dataset: DatasetInfo {
            name: "cifar10".into(),
            labels: cnnzoo_train::data::Labels::Fine,
            classes: cifar10_classes(),
            mean: cnnzoo_cifar::CIFAR10_MEAN,
            std: cnnzoo_cifar::CIFAR10_STD,
            input_size: 32,
            crop_pct: None,
            root: None,
            skip_bad_images: false,
        },
        epoch: None,
        val_top1: None,
        split_seed: 42,
        val_fraction: cnnzoo_cifar::DEFAULT_VAL_FRACTION,
        ema: false,
    };
    write_meta(path, &meta).unwrap();
}

/// CIFAR-10's class names, in label order.
pub fn cifar10_classes() -> Vec<String> {
    cnnzoo_cifar::CifarKind::Cifar10
        .default_classes()
        .iter()
        .map(|c| c.to_string())
        .collect()
}

#[derive(Default)]
struct Collect {
    path: Vec<String>,
    tensors: Vec<(String, Vec<f32>)>,
}

impl burn::module::ModuleVisitor for Collect {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(
        &mut self,
        param: &burn::module::Param<burn::tensor::Tensor<D>>,
    ) {
        let values = param.val().into_data().try_to_vec::<f32>().unwrap();
        self.tensors.push((self.path.join("."), values));
    }
}

/// The channels of the small ResNet the training tests run: with one block per group it trains
/// an epoch of the mini archive in seconds on the CPU.
pub const SMALL_RESNET_CHANNELS: [usize; 3] = [8, 16, 32];

/// A config file for a short CPU run of the small ResNet: SGD at lr 0.05 with momentum, batches of
/// 64, half the training images held out so that validation is not noise. `epochs` and `seed` set
/// each test's run apart; `extra` adds top-level TOML lines: dotted keys such as
/// `optimizer.weight_decay = 1e-4` or inline tables such as `schedule = { name = "constant" }`,
/// since a `[optimizer]` header would define again the table this one begins.
pub fn small_resnet_config(epochs: usize, seed: u64, extra: &str) -> String {
    let [a, b, c] = SMALL_RESNET_CHANNELS;
    format!(
        r#"model = "resnet"
epochs = {epochs}
seed = {seed}
batch_size = 64
val_fraction = 0.5
workers = 2
device = "cpu"
model_params.num_blocks = [1, 1, 1]
model_params.channels = [{a}, {b}, {c}]
optimizer.name = "sgd"
optimizer.lr = 0.05
optimizer.momentum = 0.9
{extra}
"#
    )
}

/// A scratch folder holding `small.toml`, the config [`small_resnet_config`] writes.
pub fn small_resnet_dir(epochs: usize, seed: u64, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("small.toml"),
        small_resnet_config(epochs, seed, extra),
    )
    .unwrap();
    dir
}

/// Every tensor of a model checkpoint of the small ResNet ([`small_resnet_config`]); panics,
/// failing the test, if the file does not load.
pub fn small_resnet_weights(path: &Path) -> Vec<(String, Vec<f32>)> {
    checkpoint_weights(path, false)
}

/// Every tensor of a checkpoint of the small ResNet, with the moving average's after the
/// weights when the run kept one (`ema`).
pub fn checkpoint_weights(path: &Path, ema: bool) -> Vec<(String, Vec<f32>)> {
    use burn::module::Module;
    let overrides = serde_json::json!({"num_blocks": [1, 1, 1], "channels": SMALL_RESNET_CHANNELS});
    let config = cnnzoo_models::lookup("resnet")
        .unwrap()
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let record =
        burn::store::ModuleRecord::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let network = config.init(&burn::tensor::Device::flex());
    let average = ema.then(|| Ema::new(&network, EmaConfig::default()));
    let model = Classifier {
        ema: average,
        ..Classifier::new(network)
    }
    .try_load_record(record)
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut collect = Collect::default();
    model.visit(&mut collect);
    collect.tensors
}

/// Two checkpoints of the small ResNet hold the same weights, bit for bit: a resumed run must
/// end exactly where the uninterrupted one did.
pub fn assert_same_weights(uninterrupted: &Path, resumed: &Path) {
    let left = small_resnet_weights(uninterrupted);
    let right = small_resnet_weights(resumed);
    assert_eq!(left.len(), right.len());
    for ((path, x), (_, y)) in left.iter().zip(&right) {
        assert!(
            x == y,
            "{path}: {} differs from the uninterrupted run {}",
            resumed.display(),
            uninterrupted.display()
        );
    }
}

/// `text` holds every one of `needles`; names the first one missing.
pub fn assert_contains_all(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
}

/// Every file under `dir` with its contents, to prove a failed command changed nothing.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            // The image cache a folder's first run builds, even one that then fails, holds
            // nothing a user made.
            if path == dir.join(IMAGE_CACHE) {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

/// Fails, naming the first missing and showing `out`, unless the run folder `run` holds the
/// files of every finished run and `extra`.
pub fn assert_finished_run(run: &Path, extra: &[&str], out: &Output) {
    let always = [
        "config.toml",
        "summary.csv",
        "best.bpk",
        "best.bpk.json",
        "results.json",
    ];
    for file in always.iter().chain(extra) {
        assert!(
            run.join(file).exists(),
            "{file} missing from {}:\n{}",
            run.display(),
            text(out)
        );
    }
}

/// Owned arguments as the `&str`s [`cnnzoo`] takes.
pub fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// `cnnzoo train` of `small.toml` (in the working folder) on the mini archive into `output`.
pub fn train_small_args(output: &str) -> Vec<String> {
    let data = mini_data();
    [
        "train",
        "--config",
        "small.toml",
        "--data-dir",
        data.to_str().unwrap(),
        "--output",
        output,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}
