//! `cnnzoo import`: PyTorch weights (`.pt`/`.pth`, Lightning `.ckpt`, `.safetensors`) into a
//! self-describing cnnzoo checkpoint that `eval`, `predict` and `train --init` take. Reading,
//! key mapping and checks live in the models crate (`cnnzoo_models::import`); this writes the
//! result the way `train` writes its best checkpoint.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use burn::module::Module;
use burn::tensor::Device;
use cnnzoo_cifar::{CIFAR10_MEAN, CIFAR10_STD, CifarKind};
use cnnzoo_models::import::TorchWeights;
use cnnzoo_models::{ImageStatistics, ModelConfig, ModelEntry, lookup};

use crate::atomic;
use crate::checkpoint::{self, CheckpointMeta, DatasetInfo, FORMAT};
use crate::classifier::Classifier;
use crate::data::Labels;

/// torchvision's ImageNet statistics, which its pretrained models expect.
const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// What `cnnzoo import` is asked to do.
#[derive(clap::Args, Clone, Debug)]
pub struct ImportRequest {
    /// The PyTorch file: torch.save (.pt/.pth, zip or legacy format), Lightning .ckpt or .safetensors.
    #[arg(long)]
    pub from: PathBuf,
    /// Model name (see `cnnzoo models`) the weights belong to.
    #[arg(long)]
    pub model: String,
    /// The cnnzoo checkpoint to write (NAME.bpk, with NAME.bpk.json beside it).
    #[arg(long)]
    pub output: PathBuf,
    /// Classes of the model's last layer.
    #[arg(long, default_value_t = 10)]
    pub num_classes: usize,
    /// Per-channel mean (R,G,B, in [0, 1]) the weights expect inputs normalised with; default:
    /// the statistics of the data the zoo entry is made for (CIFAR-10 or ImageNet).
    #[arg(long, value_delimiter = ',', requires = "std", value_name = "R,G,B")]
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation (R,G,B), with --mean.
    #[arg(long, value_delimiter = ',', requires = "mean", value_name = "R,G,B")]
    pub std: Option<Vec<f32>>,
}

/// The tensors of the PyTorch file, read and mapped onto the model's keys, not yet checked
/// against the model.
pub struct ReadWeights {
    entry: &'static ModelEntry,
    config: ModelConfig,
    weights: TorchWeights,
}

impl ReadWeights {
    /// What was found in the file: its format, the tensors, and what was set aside.
    pub fn description(&self, from: &Path) -> String {
        let weights = &self.weights;
        let mut found = format!(
            "{}: {} file, {} tensors",
            from.display(),
            weights.container,
            weights.len()
        );
        if let Some(nest) = &weights.nested_under {
            found.push_str(&format!(" under '{nest}'"));
        }
        if let Some(prefix) = &weights.stripped_prefix {
            found.push_str(&format!(", key prefix '{prefix}' dropped"));
        }
        if !weights.ignored.is_empty() {
            found.push_str(&format!(
                ", {} num_batches_tracked ignored",
                weights.ignored.len()
            ));
        }
        found
    }
}

/// The model with the imported weights and the metadata of the checkpoint to write.
pub struct Imported {
    classifier: Classifier,
    meta: CheckpointMeta,
    pub model: &'static str,
    pub parameters: usize,
    pub num_classes: usize,
    /// Where the normalisation statistics in the metadata come from, in words.
    pub statistics: String,
}

impl Imported {
    /// Whether the metadata names the classes (a CIFAR-10 model) or numbers them.
    pub fn class_names_known(&self) -> bool {
        self.meta.dataset.name == "cifar10"
    }
}

/// Checks the request and reads the PyTorch file.
pub fn read(request: &ImportRequest) -> Result<ReadWeights> {
    let entry = lookup(&request.model)?;
    if request.num_classes == 0 {
        bail!("--num-classes must be at least 1");
    }
    if same_file(&request.from, &request.output) {
        bail!(
            "{}: --output would overwrite the file being imported",
            request.output.display()
        );
    }
    let config = entry.config(request.num_classes);
    let weights = TorchWeights::read(&request.from, &config)?;
    Ok(ReadWeights {
        entry,
        config,
        weights,
    })
}

/// Loads the weights into the model; fails naming every missing, unexpected or misshapen tensor.
pub fn convert(request: &ImportRequest, read: ReadWeights) -> Result<Imported> {
    let ReadWeights {
        entry,
        config,
        weights,
    } = read;
    // The weights only pass through: the CPU backend is always there and needs no probing.
    let model = weights
        .into_model(&config, &Device::flex())
        .with_context(|| {
            format!(
                "cannot import as model '{}' with {} classes (`cnnzoo models` lists the models)",
                entry.name, request.num_classes
            )
        })?;
    let parameters = model.num_trainable_params();
    let (dataset, statistics) = dataset_for(request, entry)?;
    let meta = CheckpointMeta {
        format: FORMAT.into(),
        model: entry.name.into(),
        config,
        dataset,
        epoch: None,
        val_top1: None,
        split_seed: 42,
        val_fraction: cnnzoo_cifar::DEFAULT_VAL_FRACTION,
        ema: false,
    };
    Ok(Imported {
        classifier: Classifier::new(model),
        meta,
        model: entry.name,
        parameters,
        num_classes: request.num_classes,
        statistics,
    })
}

/// Writes the checkpoint and its metadata; returns the metadata file's path.
pub fn write(request: &ImportRequest, imported: Imported) -> Result<PathBuf> {
    atomic::write_with(&request.output, |temp| {
        imported
            .classifier
            .into_record()
            .save(temp)
            .map_err(|e| anyhow!("cannot write {}: {e}", temp.display()))
    })?;
    checkpoint::write_meta(&request.output, &imported.meta)?;
    Ok(checkpoint::meta_path(&request.output))
}

/// What `predict` needs to know about the data the weights were trained on: the class names
/// where they are known (a CIFAR-10 model with its 10 classes; otherwise they are numbered), and
/// the normalisation statistics, from the flags or else from the zoo entry; the second value
/// says which.
fn dataset_for(request: &ImportRequest, entry: &ModelEntry) -> Result<(DatasetInfo, String)> {
    let (mean, std, source) = match (&request.mean, &request.std) {
        (Some(mean), Some(std)) => {
            if mean.len() != 3 || std.len() != 3 {
                bail!(
                    "--mean and --std take three values each, R,G,B (got --mean {mean:?} --std {std:?})"
                );
            }
            if std.iter().any(|s| !(s.is_finite() && *s > 0.0))
                || mean.iter().any(|m| !m.is_finite())
            {
                bail!(
                    "--std must be positive and --mean finite (got --mean {mean:?} --std {std:?})"
                );
            }
            let three = |v: &[f32]| [v[0], v[1], v[2]];
            (three(mean), three(std), "--mean/--std".to_string())
        }
        _ => {
            let (mean, std) = match entry.statistics {
                ImageStatistics::Cifar10 => (CIFAR10_MEAN, CIFAR10_STD),
                ImageStatistics::ImageNet => (IMAGENET_MEAN, IMAGENET_STD),
            };
            let source = format!(
                "{}'s, as the zoo entry of {} says",
                entry.statistics.name(),
                entry.name
            );
            (mean, std, source)
        }
    };
    let cifar10 = entry.statistics == ImageStatistics::Cifar10
        && request.num_classes == CifarKind::Cifar10.num_classes();
    let (name, classes) = if cifar10 {
        let classes = CifarKind::Cifar10.default_classes().iter();
        ("cifar10", classes.map(|c| c.to_string()).collect())
    } else {
        (
            "custom",
            (0..request.num_classes).map(|c| c.to_string()).collect(),
        )
    };
    let dataset = DatasetInfo {
        name: name.into(),
        labels: Labels::Fine,
        classes,
        mean,
        std,
        input_size: entry.input_size,
        crop_pct: None,
        root: None,
        skip_bad_images: false,
    };
    Ok((dataset, source))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// `train --init`: the weights of a cnnzoo checkpoint (trained or imported) for the model about
/// to be trained, on its device. The checkpoint must describe the same model with the same
/// hyper-parameters; its weights then replace the fresh initialisation.
pub fn init_from(
    path: &Path,
    model: &str,
    config: &ModelConfig,
    device: &Device,
) -> Result<Classifier> {
    let (classifier, meta) = checkpoint::load(path, device).context("--init")?;
    let as_json = |c: &ModelConfig| serde_json::to_value(c).unwrap_or_default();
    if meta.model != model || as_json(&meta.config) != as_json(config) {
        bail!(
            "--init {}: the checkpoint holds model '{}' with {}, but this run trains '{model}' with {}",
            path.display(),
            meta.model,
            as_json(&meta.config),
            as_json(config)
        );
    }
    println!("cnnzoo: starting from the weights of {}", path.display());
    Ok(classifier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(model: &str, num_classes: usize, mean_std: Option<[f32; 3]>) -> ImportRequest {
        ImportRequest {
            from: "weights.pth".into(),
            model: model.into(),
            output: "out.bpk".into(),
            num_classes,
            mean: mean_std.map(|v| v.to_vec()),
            std: mean_std.map(|v| v.to_vec()),
        }
    }

    fn dataset(request: &ImportRequest) -> Result<(DatasetInfo, String)> {
        dataset_for(request, lookup(&request.model).unwrap())
    }

    #[test]
    fn statistics_come_from_the_zoo_entry_not_the_input_size() {
        let (cifar, source) = dataset(&request("resnet", 10, None)).unwrap();
        assert_eq!((cifar.mean, cifar.std), (CIFAR10_MEAN, CIFAR10_STD));
        assert_eq!(cifar.classes[0], "airplane");
        assert!(source.starts_with("CIFAR-10's"), "{source}");

        // A torchvision model keeps ImageNet's statistics whatever its classes or input size.
        let (imagenet, source) = dataset(&request("resnet18", 10, None)).unwrap();
        assert_eq!((imagenet.mean, imagenet.std), (IMAGENET_MEAN, IMAGENET_STD));
        assert_eq!(imagenet.name, "custom");
        assert_eq!(imagenet.classes[9], "9");
        assert!(source.starts_with("ImageNet's"), "{source}");

        let (given, source) = dataset(&request("resnet18", 5, Some([0.5; 3]))).unwrap();
        assert_eq!((given.mean, given.std), ([0.5; 3], [0.5; 3]));
        assert_eq!(source, "--mean/--std");
    }

    #[test]
    fn a_zero_standard_deviation_or_two_channels_are_refused_by_flag() {
        let error = dataset(&request("resnet", 10, Some([0.0; 3]))).unwrap_err();
        assert!(
            format!("{error}").contains("--std must be positive"),
            "{error}"
        );
        let mut two = request("resnet", 10, Some([0.5; 3]));
        two.std = Some(vec![0.2, 0.2]);
        let error = dataset(&two).unwrap_err();
        assert!(format!("{error}").contains("three values each"), "{error}");
    }
}
