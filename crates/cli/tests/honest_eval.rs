//! Accuracy that cannot flatter a broken network: a model whose logits are all equal scores 0%
//! at top-1 and top-5 (ties count against the true class), and one whose logits are NaN is
//! wrong everywhere, counted as `nonfinite` with a warning. A report says which test-time
//! augmentation it was measured with.
mod common;

use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;

use common::{mini_data, text};

/// Sets every weight, bias and statistic of a model to one value.
struct Fill(f32);

impl ModuleMapper for Fill {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let value = self.0;
        param.map(|t| t.mul_scalar(0.0).add_scalar(value))
    }
}

/// A small ResNet with every parameter `value`, as a cnnzoo checkpoint.
fn filled_checkpoint(path: &Path, value: f32) {
    let overrides =
        serde_json::json!({"num_blocks": [1, 1, 1], "channels": common::SMALL_RESNET_CHANNELS});
    let config = cnnzoo_models::lookup("resnet")
        .unwrap()
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let model = config
        .init(&burn::tensor::Device::flex())
        .map(&mut Fill(value));
    common::write_checkpoint(path, model, "resnet", config);
}

fn eval_json(dir: &Path, checkpoint: &str) -> (serde_json::Value, String) {
    let data = mini_data();
    let out = common::eval_json(checkpoint, &data, &["--split", "test"], dir);
    assert!(out.status.success(), "{}", text(&out));
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn constant_logits_score_zero_not_one_hundred() {
    let dir = tempfile::tempdir().unwrap();
    filled_checkpoint(&dir.path().join("zero.bpk"), 0.0);
    let (report, stderr) = eval_json(dir.path(), "zero.bpk");
    assert_eq!(report["n"], 1020);
    assert_eq!(report["top1"], 0.0, "{report}");
    assert_eq!(report["top5"], 0.0, "{report}");
    assert_eq!(report["nonfinite"], 0);
    assert!(!stderr.contains("warning"), "{stderr}");
    for (class, accuracy) in report["per_class"].as_object().unwrap() {
        assert_eq!(accuracy.as_f64(), Some(0.0), "{class}");
    }
    // Every image lands off the diagonal: the tie goes to another class.
    let confusion = report["confusion"].as_array().unwrap();
    let counted: u64 = confusion
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 1020);
    for (c, row) in confusion.iter().enumerate() {
        assert_eq!(row[c], 0, "class {c} counted right");
    }
}

#[test]
fn nan_logits_are_wrong_everywhere_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    filled_checkpoint(&dir.path().join("nan.bpk"), f32::NAN);
    let (report, stderr) = eval_json(dir.path(), "nan.bpk");
    assert_eq!(report["top1"], 0.0, "{report}");
    assert_eq!(report["top5"], 0.0, "{report}");
    assert_eq!(report["nonfinite"], 1020, "{report}");
    common::assert_contains_all(
        &stderr,
        &["warning: 1020 of 1020 images got NaN or infinite logits"],
    );
    for (class, accuracy) in report["per_class"].as_object().unwrap() {
        assert_eq!(accuracy.as_f64(), Some(0.0), "{class}");
    }
}

#[test]
fn the_report_names_its_test_time_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    filled_checkpoint(&dir.path().join("zero.bpk"), 0.0);
    let (plain, _) = eval_json(dir.path(), "zero.bpk");
    assert_eq!(plain["tta"], "none", "{plain}");
    let data = mini_data();
    let flip = common::eval_json("zero.bpk", &data, &["--tta", "flip"], dir.path());
    assert!(flip.status.success(), "{}", text(&flip));
    let flip: serde_json::Value = serde_json::from_slice(&flip.stdout).unwrap();
    assert_eq!(flip["tta"], "flip", "{flip}");
    assert_eq!(flip["n"], 1020);
    let shown = common::cnnzoo(
        &[
            "eval",
            "--checkpoint",
            "zero.bpk",
            "--data-dir",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--tta",
            "flip",
        ],
        dir.path(),
    );
    common::assert_contains_all(&text(&shown), &["(test-time augmentation: flip)"]);
}
