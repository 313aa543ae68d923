//! CIFAR-100 end to end on the CPU, on a synthetic python archive (there is no CIFAR-100 on the
//! test machines): `[data]` picks the data set and its labelling, the model gets 100 or 20
//! outputs, the checkpoint records the data set, its classes and statistics, and `eval` of it
//! reads the same data set with the same labels.
mod common;
#[path = "../../cifar/tests/cifar/synthetic.rs"]
mod synthetic;

use std::path::Path;

use cnnzoo_cifar::{CifarKind, FetchOptions, Normalization};
use common::{SMALL_RESNET_CHANNELS, cnnzoo, small_resnet_dir, text};

const TRAIN_IMAGES: usize = 300;
const TEST_IMAGES: usize = 60;

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Trains the small ResNet for an epoch on a synthetic CIFAR-100 with `data` as extra config
/// lines, into `run` of the returned folder (whose `data/` holds the archive).
fn train(data: &str) -> tempfile::TempDir {
    let dir = small_resnet_dir(1, 7, data);
    let data_dir = dir.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(
        data_dir.join("cifar-100-python.tar.gz"),
        synthetic::cifar100_python_archive(TRAIN_IMAGES, TEST_IMAGES),
    )
    .unwrap();
    let out = cnnzoo(
        &[
            "train",
            "--config",
            "small.toml",
            "--data-dir",
            "data",
            "--output",
            "run",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    dir
}

/// `cnnzoo eval` of the run's checkpoint, with `--json` or as the table.
fn eval(dir: &Path, json: bool) -> std::process::Output {
    let mut args = vec![
        "eval",
        "--checkpoint",
        "run",
        "--data-dir",
        "data",
        "--device",
        "cpu",
    ];
    if json {
        args.push("--json");
    }
    let out = cnnzoo(&args, dir);
    assert!(out.status.success(), "{}", text(&out));
    out
}

/// The rows of eval's printed per-class table, after its header.
fn table_rows(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .skip_while(|line| !line.starts_with("class "))
        .skip(1)
        .filter(|line| !line.starts_with("confusion heat map"))
        .collect()
}

#[test]
fn fine_labels_train_a_100_class_model_that_eval_reads_back() {
    let dir = train(r#"data.dataset = "cifar100""#);
    let run = dir.path().join("run");
    let results = json(&run.join("results.json"));
    let classes = results["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 100);
    assert_eq!(classes[99], "worm");
    assert_eq!(results["test_images"], TEST_IMAGES);

    let meta = json(&run.join("best.bpk.json"));
    assert_eq!(meta["dataset"]["name"], "cifar100");
    assert_eq!(meta["dataset"]["classes"].as_array().unwrap().len(), 100);
    assert!(meta["dataset"].get("labels").is_none(), "{meta}");
    // The statistics are CIFAR-100's own, from all its training images.
    let quiet = FetchOptions {
        url: None,
        verbose: false,
    };
    let data = cnnzoo_cifar::load(CifarKind::Cifar100, &dir.path().join("data"), &quiet).unwrap();
    let expected = Normalization::from_set(&data.train);
    assert_ne!(expected, Normalization::CIFAR10);
    for (key, values) in [("mean", expected.mean), ("std", expected.std)] {
        let recorded: Vec<f64> = meta["dataset"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        for (recorded, value) in recorded.iter().zip(values) {
            assert!((recorded - f64::from(value)).abs() < 1e-6, "{key}: {meta}");
        }
    }
    let resolved = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        resolved.contains("[data]\ndataset = \"cifar100\""),
        "{resolved}"
    );

    // eval reads CIFAR-100 from the checkpoint alone, and reproduces the run's test accuracy.
    let report: serde_json::Value = serde_json::from_slice(&eval(dir.path(), true).stdout).unwrap();
    assert_eq!(report["n"], TEST_IMAGES);
    assert_eq!(report["classes"].as_array().unwrap().len(), 100);
    assert_eq!(report["top1"], results["test_top1"]);
    // The table shows the 20 worst classes, worst first, and says so.
    let printed = String::from_utf8_lossy(&eval(dir.path(), false).stdout).into_owned();
    assert!(
        printed.contains("the 20 worst of 100 classes, worst first"),
        "{printed}"
    );
    let rows = table_rows(&printed);
    assert_eq!(rows.len(), 20, "{printed}");
    let accuracy = |row: &str| -> f64 {
        let field = row.split_whitespace().nth(1).unwrap();
        field.trim_end_matches('%').parse().unwrap()
    };
    assert!(
        rows.windows(2).all(|w| accuracy(w[0]) <= accuracy(w[1])),
        "{printed}"
    );
}

#[test]
fn coarse_labels_train_a_20_class_model() {
    let dir = train("data.dataset = \"cifar100\"\ndata.labels = \"coarse\"");
    let run = dir.path().join("run");
    let results = json(&run.join("results.json"));
    let classes = results["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 20);
    assert_eq!(classes[0], "aquatic_mammals");
    let meta = json(&run.join("best.bpk.json"));
    assert_eq!(meta["dataset"]["name"], "cifar100");
    assert_eq!(meta["dataset"]["labels"], "coarse");
    // The classifier of 20 outputs has 80 rows of (last channels + bias) fewer than 100's.
    let last = SMALL_RESNET_CHANNELS[2] as u64;
    let fine = train(r#"data.dataset = "cifar100""#);
    let fine_results = json(&fine.path().join("run/results.json"));
    assert_eq!(
        fine_results["parameters"].as_u64().unwrap() - results["parameters"].as_u64().unwrap(),
        80 * (last + 1)
    );

    // eval reads the coarse labels again: 20 classes, the run's accuracy, every row printed.
    let report: serde_json::Value = serde_json::from_slice(&eval(dir.path(), true).stdout).unwrap();
    assert_eq!(report["confusion"].as_array().unwrap().len(), 20);
    assert_eq!(report["top1"], results["test_top1"]);
    let printed = String::from_utf8_lossy(&eval(dir.path(), false).stdout).into_owned();
    assert!(!printed.contains("worst"), "{printed}");
    assert_eq!(table_rows(&printed).len(), 20, "{printed}");
}
