mod common;

use common::{assert_clean_failure, cnnzoo, cnnzoo_in_new_dir, cnnzoo_line, text};

/// One tiny step through the real binary: the JSON carries every field, with positive figures.
/// Speed itself is never asserted (benchmarks are commands, not timed tests).
#[test]
fn bench_prints_one_json_object_with_positive_figures() {
    let (_dir, out) = cnnzoo_in_new_dir(
        "bench --model resnet --device cpu --batch 4 --infer-batch 4 --steps 1 --warmup 1 --json",
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line expected:\n{stdout}");
    let result: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(result["model"], "resnet");
    assert_eq!(result["device"], "cpu");
    assert_eq!(result["batch"], 4);
    for field in ["train_img_s", "infer_img_s", "peak_rss_mb", "loader_img_s"] {
        let value = result[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} missing: {result}"));
        assert!(value > 0.0 && value.is_finite(), "{field} = {value}");
    }
    assert!(
        result["final_loss"].as_f64().is_some_and(f64::is_finite),
        "{result}"
    );
}

#[test]
fn bench_rejects_an_unknown_model_and_a_zero_batch() {
    let dir = tempfile::tempdir().unwrap();
    let out = cnnzoo(
        &["bench", "--model", "resnot", "--device", "cpu"],
        dir.path(),
    );
    assert_clean_failure(&out, &["unknown model 'resnot'", "resnet"]);
    let out = cnnzoo(
        &[
            "bench", "--model", "resnet", "--device", "cpu", "--batch", "0",
        ],
        dir.path(),
    );
    assert_clean_failure(&out, &["--batch"]);
}

fn bench_json(model: &str, dir: &std::path::Path) -> Vec<serde_json::Value> {
    let out = cnnzoo_line(
        &format!(
            "bench --model {model} --device cpu --batch 16 --infer-batch 16 --steps 1 --warmup 0 --json"
        ),
        dir,
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Memory is not timing: a model's peak does not depend on the machine's load, so the peak
/// ResNet-20 reports after GoogLeNet in `--model all` is compared with its peak alone. Measured
/// in one process, pages GoogLeNet freed stayed in the allocator and ResNet-20 read 2.5x its own.
#[test]
fn bench_all_reports_each_models_own_peak_memory() {
    let dir = tempfile::tempdir().unwrap();
    let all = bench_json("all", dir.path());
    let names: Vec<&str> = all.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(names, ["googlenet", "resnet", "resnet_preact", "densenet"]);
    let peak = |r: &serde_json::Value| r["peak_rss_mb"].as_f64().unwrap();
    let alone = peak(&bench_json("resnet", dir.path())[0]);
    let after_others = peak(&all[1]);
    assert!(
        (after_others - alone).abs() <= 0.25 * alone,
        "resnet's peak: {after_others:.0} MB in --model all, {alone:.0} MB alone"
    );
}

/// `bench` run with `CNNZOO_ISA` set to `isa`.
fn bench_at(isa: &str, dir: &std::path::Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cnnzoo"))
        .args(
            "bench --model resnet --device cpu --batch 4 --infer-batch 4 --steps 1 --warmup 0 --json"
                .split(' '),
        )
        .current_dir(dir)
        .env("CNNZOO_ISA", isa)
        .output()
        .unwrap()
}

/// The JSON names the processor and the level the kernels ran; CNNZOO_ISA lowers it, and a
/// level that does not exist is a clean error naming the variable.
#[test]
fn cnnzoo_isa_lowers_the_kernels_level_and_bench_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = bench_at("scalar", dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["isa"], "scalar", "{result}");
    assert!(
        result["device_description"]
            .as_str()
            .unwrap()
            .contains("scalar kernels"),
        "{result}"
    );
    if std::path::Path::new("/proc/cpuinfo").exists() {
        assert!(result["cpu"].is_string(), "{result}");
    }
    let out = bench_at("avx1024", dir.path());
    assert_clean_failure(&out, &["CNNZOO_ISA=avx1024", "scalar, avx2, avx512"]);
}
