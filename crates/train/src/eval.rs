//! `cnnzoo eval`: top-1, top-5 and per-class accuracy of a checkpoint on one split, and the
//! confusion heat map.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::atomic;
use crate::checkpoint;
use crate::config::resolve_data_dir;
use crate::data::{self, DataRequest, DataSource};
use crate::device;
use crate::evaluation::{Evaluation, evaluate};
use crate::report::{self, confusion, group_thousands};
use crate::run_dir;
use crate::tta::Tta;

/// What `cnnzoo eval` is asked to do.
#[derive(clap::Args, Clone, Debug)]
pub struct EvalRequest {
    /// A checkpoint written by `cnnzoo train` (best.bpk) or `cnnzoo import`, or a run folder
    /// (its best.bpk).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The images to evaluate on: the test set, or the validation or training part of the split
    /// the checkpoint was trained with.
    #[arg(long, value_enum, default_value = "test")]
    pub split: data::Split,
    /// Folder with the data set (default: a folder data set's own folder, recorded in the
    /// checkpoint; for CIFAR ./data, or CNNZOO_DATA, downloaded if missing).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// auto, cpu, ndarray, wgpu, vulkan, metal, dx12, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Images per evaluation batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Test-time augmentation: none, or flip (each image's logits averaged with its mirror's).
    #[arg(long, value_enum, default_value = "none")]
    pub tta: Tta,
    /// Print one JSON object.
    // How the binary prints the report; the evaluation does not depend on it.
    #[arg(long)]
    pub json: bool,
    /// Also draw the confusion matrix as a heat map into this PNG file.
    #[arg(long, value_name = "PNG")]
    pub confusion: Option<PathBuf>,
    /// Leave out (and count) image files of a folder data set that cannot be decoded.
    #[arg(long)]
    pub skip_bad_images: bool,
}

/// Classes beyond which the printed table lists only the worst ones and the heat map draws no
/// counts: a hundred rows of numbers are read by no one.
pub const READABLE_CLASSES: usize = 20;

impl EvalReport {
    /// The rows of the printed per-class table: every class in the data set's order, or, beyond
    /// [`READABLE_CLASSES`], the [`READABLE_CLASSES`] worst, worst first (ties in the data set's
    /// order).
    pub fn table_rows(&self) -> Vec<&ClassAccuracy> {
        let mut rows: Vec<&ClassAccuracy> = self.class_rows.iter().collect();
        if rows.len() > READABLE_CLASSES {
            rows.sort_by(|a, b| a.accuracy.total_cmp(&b.accuracy));
            rows.truncate(READABLE_CLASSES);
        }
        rows
    }
}

/// The evaluation of a checkpoint on one split; serialises to `cnnzoo eval --json`.
#[derive(Clone, Debug, Serialize)]
pub struct EvalReport {
    pub checkpoint: PathBuf,
    pub model: String,
    pub split: &'static str,
    /// The test-time augmentation the accuracy was measured with.
    pub tta: Tta,
    pub top1: f64,
    pub top5: f64,
    pub n: usize,
    /// Images whose logits held a NaN or an infinity: counted wrong at every k.
    pub nonfinite: usize,
    /// Accuracy (%) by class name.
    pub per_class: BTreeMap<String, f64>,
    /// The class names in the data set's order: the order of `confusion`'s rows and columns.
    pub classes: Vec<String>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// One row per class, in the data set's order.
    #[serde(skip)]
    pub class_rows: Vec<ClassAccuracy>,
    /// Where the heat map was drawn.
    #[serde(skip)]
    pub confusion_png: Option<PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClassAccuracy {
    pub class: String,
    /// Percent of the class's images predicted as the class.
    pub accuracy: f64,
    pub correct: usize,
    pub total: usize,
}

pub fn run(request: &EvalRequest) -> Result<EvalReport> {
    if let Some(path) = &request.confusion {
        check_writable(path)?;
    }
    let selected = device::select(&request.device)?;
    let checkpoint_file = run_dir::checkpoint_of(&request.checkpoint);
    let (classifier, meta) = checkpoint::load(&checkpoint_file, &selected.device)?;
    // A folder data set is read where training read it unless told otherwise.
    let data_dir = match (&request.data_dir, &meta.dataset.root) {
        (None, Some(root)) => root.clone(),
        (flag, _) => resolve_data_dir(flag.as_deref()),
    };
    // The data set, labels and statistics the weights were trained with, from the sidecar.
    let data = data::load(&DataRequest::for_checkpoint(
        &meta,
        data_dir,
        request.skip_bad_images,
    ))?;
    if let DataSource::Folder { .. } = data.source {
        data.check_classes(&meta.dataset.classes)?;
    }
    let set = data.split(request.split)?;
    let loader = data.eval_loader(
        set,
        request.batch_size,
        data::EVAL_WORKERS,
        &selected.device,
    )?;
    let result = evaluate(
        classifier.inference_model(),
        &loader,
        &selected.device,
        request.tta,
    )?;
    let classes = &meta.dataset.classes;
    if let Some(path) = &request.confusion {
        let mut title = format!(
            "{} on the {} split: top-1 {:.2}% of {} images",
            meta.model,
            request.split.name(),
            result.top1,
            group_thousands(result.n)
        );
        if request.tta == Tta::Flip {
            title.push_str(" with flip TTA");
        }
        if matches!(request.split, data::Split::Test)
            && let Some(reference) = report::reference_test_top1(&meta.model, classes.len())
        {
            title.push_str(&format!(" (tutorial reference {reference:.2}%)"));
        }
        let png = confusion::draw(&result, classes, &title)?;
        atomic::write_bytes(path, &png)
            .with_context(|| format!("cannot write the confusion heat map {}", path.display()))?;
    }
    Ok(report_of(
        request,
        checkpoint_file,
        meta.model,
        classes,
        result,
    ))
}

fn report_of(
    request: &EvalRequest,
    checkpoint_file: PathBuf,
    model: String,
    classes: &[String],
    result: Evaluation,
) -> EvalReport {
    let rows: Vec<ClassAccuracy> = classes
        .iter()
        .zip(result.per_class())
        .enumerate()
        .map(|(c, (class, accuracy))| ClassAccuracy {
            class: class.clone(),
            accuracy,
            correct: result.confusion[c][c],
            total: result.class_total(c),
        })
        .collect();
    EvalReport {
        checkpoint: checkpoint_file,
        model,
        split: request.split.name(),
        tta: request.tta,
        top1: result.top1,
        top5: result.top5,
        n: result.n,
        nonfinite: result.nonfinite,
        per_class: rows.iter().map(|r| (r.class.clone(), r.accuracy)).collect(),
        classes: classes.to_vec(),
        confusion: result.confusion,
        class_rows: rows,
        confusion_png: request.confusion.clone(),
    }
}

/// Fails before the evaluation, not after it, when the picture could not be written.
fn check_writable(path: &Path) -> Result<()> {
    if path.is_dir() {
        bail!(
            "--confusion {}: is a folder; name a .png file",
            path.display()
        );
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        bail!(
            "--confusion {}: the folder {} does not exist",
            path.display(),
            parent.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(accuracies: &[f64]) -> EvalReport {
        let class_rows: Vec<ClassAccuracy> = accuracies
            .iter()
            .enumerate()
            .map(|(i, &accuracy)| ClassAccuracy {
                class: format!("c{i}"),
                accuracy,
                correct: 0,
                total: 0,
            })
            .collect();
        EvalReport {
            checkpoint: PathBuf::new(),
            model: "m".into(),
            split: "test",
            tta: Tta::None,
            top1: 0.0,
            top5: 0.0,
            n: 0,
            nonfinite: 0,
            per_class: BTreeMap::new(),
            classes: Vec::new(),
            confusion: Vec::new(),
            class_rows,
            confusion_png: None,
        }
    }

    fn names(rows: &[&ClassAccuracy]) -> Vec<String> {
        rows.iter().map(|row| row.class.clone()).collect()
    }

    #[test]
    fn the_table_lists_every_class_up_to_20_and_the_20_worst_beyond() {
        let twenty: Vec<f64> = (0..20).map(|i| f64::from(i * 7 % 20)).collect();
        let all = report(&twenty);
        assert_eq!(
            names(&all.table_rows()),
            names(&all.class_rows.iter().collect::<Vec<_>>())
        );

        // 100 classes: accuracy (i * 37) % 100, so class 0 (0%) is the worst, then class 73
        // (1%), then 46 (2%).
        let hundred: Vec<f64> = (0..100).map(|i| f64::from(i * 37 % 100)).collect();
        let big = report(&hundred);
        let rows = big.table_rows();
        assert_eq!(rows.len(), 20);
        assert_eq!(names(&rows[..3]), ["c0", "c73", "c46"]);
        assert_eq!(rows[19].accuracy, 19.0);
    }
}
