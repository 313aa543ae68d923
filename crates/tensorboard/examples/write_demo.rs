//! Writes a demo run for checking the output with the real TensorBoard
//! (`scripts/tensorboard_tags.sh`): a first process logs steps 1..=12 and "dies" after its
//! checkpoint at step 10; a resumed process marks the restart at step 11 and logs 11..=20. Both
//! processes begin with a `SessionLog.START`, since TensorBoard's server ignores a run's first one.
//! TensorBoard should show each scalar tag once per step, 20 points, the resumed values last.
//!
//! Usage: `cargo run --example write_demo -- RUN_DIR`

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cnnzoo_tensorboard::{EventWriter, HParamValue, SessionStatus};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .ok_or("usage: write_demo RUN_DIR")?
        .into();
    let hparams = [
        ("lr".to_owned(), HParamValue::Number(0.01)),
        ("model".to_owned(), HParamValue::Text("resnet18".to_owned())),
        ("augment".to_owned(), HParamValue::Bool(true)),
    ];
    let metrics = ["val/acc", "train/loss"];

    let mut first = EventWriter::create(&dir)?;
    first.add_session_start(1, now())?;
    first.add_hparams_start(&hparams, &metrics, "demo", now())?;
    first.add_text("config", "**model**: resnet18, `lr` = 0.01", 0, now())?;
    for step in 1..=12 {
        // Steps 11 and 12 are orphaned by the crash; their values are marked to stand out.
        let stale = if step > 10 { 100.0 } else { 0.0 };
        first.add_scalar("train/loss", stale + 2.0 / step as f64, step, now())?;
        first.add_scalar(
            "val/acc",
            stale + 1.0 - 1.0 / (step + 1) as f64,
            step,
            now(),
        )?;
    }
    first.flush()?;
    drop(first);

    let mut resumed = EventWriter::create(&dir)?;
    resumed.add_session_start(11, now())?;
    for step in 11..=20 {
        resumed.add_scalar("train/loss", 2.0 / step as f64, step, now())?;
        resumed.add_scalar("val/acc", 1.0 - 1.0 / (step + 1) as f64, step, now())?;
    }
    resumed.add_hparams_end(SessionStatus::Success, now())?;
    resumed.flush()?;
    println!("wrote {} and {}", dir.display(), resumed.path().display());
    Ok(())
}
