//! What each command prints: the library's typed results as tables, lines or JSON.
use std::path::Path;

use anyhow::{Context, Result};
use cnnzoo_train::augment_grid::{self, AugmentRequest};
use cnnzoo_train::bench::{self, BenchRequest};
use cnnzoo_train::eval::{self, EvalRequest};
use cnnzoo_train::import::{self, ImportRequest};
use cnnzoo_train::models;
use cnnzoo_train::predict::{self, PredictRequest};
use cnnzoo_train::report::group_thousands;
use cnnzoo_train::run_dir::{RunDir, RunFile};
use cnnzoo_train::runs::{self, RunInfo};
use cnnzoo_train::train::{self, TrainRequest};
use serde::Serialize;

/// Pretty JSON through a `Value`, whose keys are sorted: the order cnnzoo has always printed.
/// An array of plain values stays on one line, so a confusion matrix reads as its rows.
fn print_sorted_json(result: &impl Serialize) -> Result<()> {
    let mut out = String::new();
    write_json(&serde_json::to_value(result)?, 0, &mut out);
    println!("{out}");
    Ok(())
}

fn write_json(value: &serde_json::Value, depth: usize, out: &mut String) {
    use serde_json::Value;
    let indent = |depth: usize| "  ".repeat(depth);
    match value {
        Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            out.push_str(&format!("[{}]", items.join(", ")));
        }
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&indent(depth + 1));
                write_json(item, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{}]", indent(depth)));
        }
        Value::Object(fields) if fields.is_empty() => out.push_str("{}"),
        Value::Object(fields) => {
            out.push_str("{\n");
            for (i, (key, item)) in fields.iter().enumerate() {
                out.push_str(&format!(
                    "{}{}: ",
                    indent(depth + 1),
                    Value::from(key.as_str())
                ));
                write_json(item, depth + 1, out);
                out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
            }
            out.push_str(&format!("{}}}", indent(depth)));
        }
        plain => out.push_str(&plain.to_string()),
    }
}

pub fn models(json: bool, family: Option<&str>, num_classes: usize) -> Result<()> {
    let models = models::list(family, num_classes)?;
    if json {
        return print_sorted_json(&models);
    }
    println!(
        "{:<20} {:<12} {:>12} {:>7}  description",
        "name", "family", "parameters", "input"
    );
    for m in models {
        println!(
            "{:<20} {:<12} {:>12} {:>7}  {}",
            m.name,
            m.family,
            group_thousands(m.parameters),
            format!("{0}x{0}", m.input_size),
            m.description
        );
    }
    println!("(parameters at {num_classes} classes: trainable weights and biases)");
    Ok(())
}

/// `--print-config`: the configuration a run would use (defaults, then the file, then the flags),
/// as TOML that `--config` reads back.
pub fn config(request: &TrainRequest) -> Result<()> {
    let config = train::resolve_config(request)?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    print!("{}", config.to_toml()?);
    Ok(())
}

pub fn train(request: &TrainRequest) -> Result<()> {
    let outcome = train::run(request)?;
    if let Some(v) = &outcome.val {
        println!(
            "best epoch {}: validation top-1 {:.2}%  top-5 {:.2}%",
            outcome.best_epoch, v.top1, v.top5
        );
    }
    match &outcome.test {
        Some(test) => println!(
            "test top-1 {:.2}%  top-5 {:.2}%  ({} images)",
            test.top1, test.top5, test.n
        ),
        None => println!("no test images (a folder data set without test/): not evaluated"),
    }
    println!("run folder: {}", outcome.run_dir.display());
    Ok(())
}

pub fn augment(request: &AugmentRequest) -> Result<()> {
    let written = augment_grid::run(request)?;
    println!(
        "cnnzoo: {} training images, each with {} augmented versions: {}",
        request.images,
        request.samples,
        written.display()
    );
    Ok(())
}

pub fn bench(request: &BenchRequest) -> Result<()> {
    let plan = bench::plan(request)?;
    if !request.json {
        if let Some(cpu) = bench::cpu_model() {
            println!("processor: {cpu}");
        }
        println!(
            "cnnzoo bench on {}: batch {}, inference batch {}, {} warm-up + {} timed steps, {} threads",
            plan.device.description,
            request.batch,
            request.infer_batch,
            request.warmup,
            request.steps,
            bench::threads()
        );
    }
    if !plan.skipped.is_empty() {
        let names: Vec<&str> = plan.skipped.iter().map(|m| m.name).collect();
        eprintln!(
            "note: skipped the ImageNet-sized models on the CPU ({}); add --large to run them",
            names.join(", ")
        );
    }
    for &entry in &plan.models {
        let figures = match plan.models.len() {
            1 => bench::measure(entry, &plan.device, request)?,
            _ => {
                let exe = std::env::current_exe().context("cannot find the cnnzoo executable")?;
                bench::measure_apart(&exe, entry, request)?
            }
        };
        if request.json {
            // One compact line per model, keys sorted through a `Value` as ever.
            println!("{}", serde_json::to_value(&figures)?);
        } else {
            let loader = figures.loader_img_s.map_or_else(
                || "n/a".into(),
                |r| format!("{r:.0} img/s ({:.0}x train)", r / figures.train_img_s),
            );
            println!(
                "{:<14} train {:>8.1} img/s ({:.0} ms/step)  infer {:>8.1} img/s  loader {loader}  peak RSS {}",
                entry.name,
                figures.train_img_s,
                figures.train_step_ms,
                figures.infer_img_s,
                figures
                    .peak_rss_mb
                    .map_or_else(|| "unknown".into(), |mb| format!("{mb:.0} MB"))
            );
        }
    }
    Ok(())
}

pub fn import(request: &ImportRequest) -> Result<()> {
    let weights = import::read(request)?;
    println!("{}", weights.description(&request.from));
    let imported = import::convert(request, weights)?;
    println!("normalisation statistics: {}", imported.statistics);
    if !imported.class_names_known() {
        println!(
            "note: the class names are not known: predictions name the classes 0..{}",
            imported.num_classes - 1,
        );
    }
    let (model, parameters, num_classes) =
        (imported.model, imported.parameters, imported.num_classes);
    let metadata = import::write(request, imported)?;
    println!(
        "wrote {} and {}: {model} ({parameters} parameters, {num_classes} classes)",
        request.output.display(),
        metadata.display(),
    );
    Ok(())
}

pub fn predict(request: &PredictRequest) -> Result<()> {
    let report = predict::run(request)?;
    for failure in &report.errors {
        eprintln!("error: {}", failure.message);
    }
    if request.json {
        print_sorted_json(&report)?;
    } else {
        for prediction in &report.predictions {
            println!("{}", prediction.file.display());
            for (rank, r) in prediction.top.iter().enumerate() {
                println!(
                    "  {}. {:<12} {:>6.2}%",
                    rank + 1,
                    r.class,
                    100.0 * r.probability
                );
            }
        }
    }
    report.ensure_every_file_predicted()
}

pub fn eval(request: &EvalRequest) -> Result<()> {
    let report = eval::run(request)?;
    if report.nonfinite > 0 {
        eprintln!(
            "warning: {} of {} images got NaN or infinite logits and count as wrong at every k: the weights are likely broken",
            report.nonfinite, report.n
        );
    }
    if request.json {
        return print_sorted_json(&report);
    }
    println!(
        "{} ({}) on the {} split, {} images:",
        report.checkpoint.display(),
        report.model,
        report.split,
        report.n
    );
    println!(
        "top-1 {:.2}%  top-5 {:.2}%  (test-time augmentation: {})",
        report.top1,
        report.top5,
        report.tta.name()
    );
    let rows = report.table_rows();
    if rows.len() < report.class_rows.len() {
        println!(
            "the {} worst of {} classes, worst first (--json lists them all):",
            rows.len(),
            report.class_rows.len()
        );
    }
    println!("{:<12} {:>9} {:>14}", "class", "accuracy", "correct/total");
    for row in rows {
        let correct = format!("{}/{}", row.correct, row.total);
        println!("{:<12} {:>8.2}% {correct:>14}", row.class, row.accuracy);
    }
    if let Some(path) = &report.confusion_png {
        println!("confusion heat map: {}", path.display());
    }
    Ok(())
}

pub fn runs(dir: &Path, json: bool) -> Result<()> {
    let runs = runs::list(dir)?;
    if json {
        // In `RunInfo`'s field order, as `cnnzoo runs --json` has always listed them.
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(());
    }
    if runs.is_empty() {
        println!("no runs under {}", dir.display());
        return Ok(());
    }
    print_runs_table(&runs);
    if runs
        .iter()
        .any(|r| RunDir::new(&r.run).file(RunFile::TensorBoard).is_dir())
    {
        println!(
            "\ncurves side by side in TensorBoard: tensorboard --logdir {}",
            dir.display()
        );
    }
    Ok(())
}

fn print_runs_table(runs: &[RunInfo]) {
    let percent = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}%"));
    let table: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                r.run.display().to_string(),
                r.model.clone().unwrap_or_else(|| "?".into()),
                format!(
                    "{}/{}",
                    r.epochs_done,
                    r.epochs_planned.map_or("?".into(), |e| e.to_string())
                ),
                percent(r.best_val_top1),
                percent(r.test_top1),
                r.parameters.map_or("-".into(), group_thousands),
                r.wall_seconds.map_or("-".into(), duration),
                match r.pid {
                    Some(pid) => format!("running (pid {pid})"),
                    None => r.status.name().to_string(),
                },
            ]
        })
        .collect();
    let header = [
        "run",
        "model",
        "epochs",
        "best val top-1",
        "test top-1",
        "parameters",
        "wall time",
        "status",
    ];
    let mut widths = header.map(str::len);
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 8]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            // Names read left-aligned, figures right-aligned.
            if (2..=6).contains(&i) {
                out.push_str(&format!("{cell:>w$}  "));
            } else {
                out.push_str(&format!("{cell:<w$}  "));
            }
        }
        out.trim_end().to_string()
    };
    println!("{}", line(header));
    for row in &table {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
}

/// `3h 05m`, `12m 40s`, `45s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m {s:02}s"),
        (h, m, _) => format!("{h}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(760.0), "12m 40s");
        assert_eq!(duration(3.0 * 3600.0 + 300.0), "3h 05m");
    }
}
