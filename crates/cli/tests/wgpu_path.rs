//! The GPU code path on a machine without a GPU: Mesa's software Vulkan (lavapipe, installed by
//! .ci/run) gives wgpu an adapter, and a tiny model's predictions on wgpu must match the CPU
//! backend's. It needs a Vulkan adapter, so it is ignored by a plain `cargo test`; .ci/run installs
//! lavapipe and runs it with `--ignored`, where a missing adapter fails it.
mod common;

use std::path::Path;

use common::{cnnzoo, text};

/// A one-block-per-group ResNet checkpoint with its metadata.
fn tiny_checkpoint(dir: &Path) {
    let overrides = serde_json::json!({"num_blocks": [1, 1, 1], "channels": [4, 8, 8]});
    let config = cnnzoo_models::lookup("resnet")
        .unwrap()
        .config_with(10, overrides.as_object().unwrap())
        .unwrap();
    let device = burn::tensor::Device::flex();
    device.seed(3);
    let model = config.init(&device);
    common::write_checkpoint(&dir.join("tiny.bpk"), model, "resnet", config);
    std::fs::write(dir.join("pattern.bmp"), pattern_bmp()).unwrap();
}

/// A 32x32 24-bit BMP of colour gradients (rows bottom-up, BGR, rows padded to 4 bytes: 96 is).
fn pattern_bmp() -> Vec<u8> {
    let (w, h) = (32u32, 32u32);
    let pixels = w * h * 3;
    let mut bmp = Vec::new();
    bmp.extend(b"BM");
    bmp.extend((54 + pixels).to_le_bytes());
    bmp.extend(0u32.to_le_bytes());
    bmp.extend(54u32.to_le_bytes());
    bmp.extend(40u32.to_le_bytes());
    bmp.extend(w.to_le_bytes());
    bmp.extend(h.to_le_bytes());
    bmp.extend(1u16.to_le_bytes());
    bmp.extend(24u16.to_le_bytes());
    bmp.extend([0u8; 24]);
    for y in (0..h).rev() {
        for x in 0..w {
            bmp.extend([((x + y) * 4) as u8, (y * 8) as u8, (x * 8) as u8]);
        }
    }
    bmp
}

fn probabilities(dir: &Path, device: &str) -> Result<Vec<(String, f64)>, String> {
    let out = cnnzoo(
        &[
            "predict",
            "--checkpoint",
            "tiny.bpk",
            "pattern.bmp",
            "--top-k",
            "10",
            "--json",
            "--device",
            device,
        ],
        dir,
    );
    if !out.status.success() {
        return Err(text(&out));
    }
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let top = json["predictions"][0]["top"]
        .as_array()
        .ok_or_else(|| text(&out))?;
    let mut ranked: Vec<(String, f64)> = top
        .iter()
        .map(|r| {
            (
                r["class"].as_str().unwrap().to_string(),
                r["probability"].as_f64().unwrap(),
            )
        })
        .collect();
    ranked.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(ranked)
}

#[test]
#[ignore = "needs a Vulkan adapter (Mesa's lavapipe: mesa-vulkan-drivers); .ci/run runs it"]
fn wgpu_predictions_match_the_cpu_backend() {
    let dir = tempfile::tempdir().unwrap();
    tiny_checkpoint(dir.path());
    let cpu = probabilities(dir.path(), "cpu").unwrap();
    assert_eq!(cpu.len(), 10);
    let gpu = probabilities(dir.path(), "wgpu")
        .unwrap_or_else(|output| panic!("wgpu run failed:\n{output}"));
    for ((class, p_cpu), (_, p_gpu)) in cpu.iter().zip(&gpu) {
        assert!(
            (p_cpu - p_gpu).abs() < 1e-4,
            "{class}: cpu {p_cpu} vs wgpu {p_gpu}"
        );
    }
}
