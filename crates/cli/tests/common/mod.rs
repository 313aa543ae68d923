//! Helpers shared by the end-to-end tests: running the binary and finding the mini archive.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real-image CIFAR-10 subset beside the checkout (never copied into the repository), as a
/// data folder of the tests' own: `../shared` is only read, so the archive is linked into
/// cargo's scratch folder for integration tests and extracted there once, not beside itself.
pub fn mini_data() -> PathBuf {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/cifar10-mini/cifar-10-binary.tar.gz");
    assert!(
        shared.exists(),
        "the tests need ../shared/data/cifar10-mini beside the checkout"
    );
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cifar10-mini");
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("cifar-10-binary.tar.gz");
    // Test binaries run side by side: whoever links first wins, the others find the link.
    if let Err(e) = std::os::unix::fs::symlink(&shared, &link) {
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
    }
    dir
}

/// A copy of the mini archive in its own folder, so tests can extract it without sharing state.
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

/// Runs the binary with downloads pointed at a closed port, so no test reaches the internet.
pub fn cnnzoo(args: &[&str], cwd: &Path) -> Output {
    cnnzoo_downloading_from("http://127.0.0.1:9/unreachable", args, cwd)
}

pub fn cnnzoo_downloading_from(url: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cnnzoo"))
        .args(args)
        .current_dir(cwd)
        .env("CNNZOO_CIFAR_URL", url)
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
    for needle in expected {
        assert!(all.contains(needle), "expected {needle:?} in:\n{all}");
    }
    assert!(!all.contains("panicked at"), "panic text:\n{all}");
    assert!(!all.contains("RUST_BACKTRACE"), "backtrace hint:\n{all}");
}

/// The training checkpoints are records of the CLI's `Classifier { model }`.
#[derive(burn::module::Module, Debug)]
pub struct Classifier {
    pub model: cnnzoo_models::Model,
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

/// Every tensor of a model checkpoint of the small ResNet (one block per group, `channels`);
/// panics, failing the test, if the file does not load.
pub fn small_resnet_weights(path: &Path, channels: [usize; 3]) -> Vec<(String, Vec<f32>)> {
    use burn::module::Module;
    let overrides = serde_json::json!({"num_blocks": [1, 1, 1], "channels": channels});
    let config = cnnzoo_models::lookup("resnet")
        .unwrap()
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let record =
        burn::store::ModuleRecord::load(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let model = Classifier {
        model: config.init(&burn::tensor::Device::flex()),
    }
    .try_load_record(record)
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut collect = Collect::default();
    model.visit(&mut collect);
    collect.tensors
}
