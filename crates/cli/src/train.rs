//! `cnnzoo train`: the reference recipe on burn-train's learner, into a run folder that survives
//! being killed at any point and can be resumed.
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, TopKAccuracyMetric};
use burn::train::{Learner, SupervisedTraining};
use cnnzoo_cifar::IMAGE_SIDE;
use cnnzoo_models::lookup;
use serde_json::json;

use crate::atomic;
use crate::checkpoint::{self, CheckpointMeta, FORMAT};
use crate::classifier::Classifier;
use crate::config::{Overrides, TrainConfig};
use crate::data;
use crate::device;
use crate::eval;
use crate::optim;
use crate::progress::LineRenderer;
use crate::report;
use crate::run::{self, AtomicCheckpointer, KeepBestAndLast, SharedRun};
use crate::runs_cmd;
use crate::schedule::EpochSchedule;

pub struct TrainRequest {
    pub config_file: Option<PathBuf>,
    pub overrides: Overrides,
    pub resume: bool,
    pub overwrite: bool,
    /// A checkpoint whose weights replace the initialisation.
    pub init: Option<PathBuf>,
}

/// Reads the config file (or the model's shipped recipe) and applies the flags.
pub fn resolve_config(request: &TrainRequest) -> Result<TrainConfig> {
    let mut config = match &request.config_file {
        Some(path) => TrainConfig::from_file(path)?,
        None => {
            let Some(model) = &request.overrides.model else {
                bail!(
                    "name a model with --model, or a config file with --config (`cnnzoo models` lists the models)"
                );
            };
            TrainConfig::recipe_for(model)
        }
    };
    config.apply(&request.overrides);
    let source = request
        .config_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "the command line".into());
    config
        .validate()
        .with_context(|| format!("invalid configuration from {source}"))?;
    lookup(&config.model)?;
    Ok(config)
}

/// `--print-config`: the configuration a run would use (defaults, then the file, then the flags),
/// as TOML that `--config` reads back.
pub fn print_config(request: &TrainRequest) -> Result<()> {
    print!("{}", resolve_config(request)?.to_toml()?);
    Ok(())
}

pub fn run(request: TrainRequest) -> Result<()> {
    let config = resolve_config(&request)?;
    let entry = lookup(&config.model)?;
    let out = config.output_dir();
    runs_cmd::ensure_not_running(&out)?;
    let resume_from = prepare_output(&out, &request)?;

    let data = data::load_cifar10(&config.data_dir(), config.val_fraction, config.seed)?;
    let model_params = serde_json::to_value(&config.model_params)
        .context("model_params")?
        .as_object()
        .cloned()
        .unwrap_or_default();
    let model_config = entry
        .config_with(data.classes.len(), &model_params)
        .map_err(|e| anyhow::anyhow!("model_params: {e}"))?;
    if let Some(side) = model_config.min_input_side()
        && side > IMAGE_SIDE
    {
        bail!(
            "model '{}' needs images of at least {side}x{side} pixels and CIFAR-10's are {IMAGE_SIDE}x{IMAGE_SIDE}: set cifar_stem = true under [model_params] in the config",
            config.model
        );
    }

    let selected = device::select(&config.device)?;
    let device = selected.device.clone();
    println!(
        "cnnzoo: training {} on {}",
        config.model, selected.description
    );

    std::fs::create_dir_all(&out)
        .with_context(|| format!("cannot create the run folder {}", out.display()))?;
    // Marks the run as running for `cnnzoo runs` until this function returns.
    let mut lock = runs_cmd::RunLock::create(&out)?;
    atomic::write_bytes(&out.join("config.toml"), config.to_toml()?.as_bytes())?;

    let steps_per_epoch = data.train.len() / config.batch_size;
    if steps_per_epoch == 0 {
        bail!(
            "batch_size {} is larger than the {} training images: no full batch to train on",
            config.batch_size,
            data.train.len()
        );
    }
    let start_epoch = resume_from.map_or(1, |e| e + 1);
    let loaders = data::training_loaders(&data, &config, start_epoch, &device)?;

    let meta = CheckpointMeta {
        format: FORMAT.into(),
        model: config.model.clone(),
        config: model_config.clone(),
        dataset: data.info(entry.input_size),
        epoch: None,
        val_top1: None,
        split_seed: config.seed,
        val_fraction: config.val_fraction,
    };
    let summary_path = out.join("summary.csv");
    let done_rows = match resume_from {
        Some(epoch) if summary_path.exists() => run::read_summary(&summary_path)?
            .into_iter()
            .filter(|r| r.epoch <= epoch)
            .collect(),
        _ => Vec::new(),
    };
    let meta_for_export = meta.clone();
    let run = SharedRun::new(&out, done_rows, meta);
    let curves = report::Curves::for_run(&out, &config);
    run.on_epoch_end(move |rows| curves.redraw(rows));

    device.seed(config.seed);
    let autodiff = device.clone().autodiff();
    let classifier = match &request.init {
        Some(path) => crate::import_cmd::init_from(path, &config.model, &model_config, &autodiff)?,
        None => Classifier {
            model: model_config.init(&autodiff),
        },
    };
    let num_params = classifier.model.num_trainable_params();
    lock.set_parameters(num_params)?;
    let optimizer = optim::build_optimizer(&config.optimizer);
    let schedule = EpochSchedule::new(
        &config.schedule,
        config.optimizer.lr(),
        steps_per_epoch,
        config.epochs,
    );

    let training = SupervisedTraining::new(&out, loaders.train.clone(), loaders.valid.clone());
    let interrupter = training.interrupter();
    stop_on_ctrl_c(interrupter.clone())?;
    let mut training = training
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(TopKAccuracyMetric::new(5))
        .metric_train_numeric(LearningRateMetric::new())
        .with_metric_logger(run::RunLogger::new(
            run.clone(),
            config.batch_size,
            interrupter,
        ))
        .with_custom_checkpointers(
            AtomicCheckpointer::new(&out, "model", Some(run.clone())),
            AtomicCheckpointer::new(&out, "optim", None),
            AtomicCheckpointer::new(&out, "scheduler", None),
        )
        .with_checkpointing_strategy(KeepBestAndLast::new(
            run.clone(),
            run::complete_checkpoints(&out)
                .into_iter()
                .collect::<BTreeSet<_>>(),
        ))
        .with_application_logger(None)
        .num_epochs(config.epochs);
    if !std::io::stdout().is_terminal() {
        training = training.renderer(Box::new(LineRenderer::new()));
    }
    if let Some(epoch) = resume_from {
        println!("cnnzoo: resuming {} after epoch {epoch}", out.display());
        training = training.checkpoint(epoch);
    }

    let started = Instant::now();
    let result = training.launch(Learner::new(classifier, optimizer, schedule));
    let resume_hint = || match run::last_complete_checkpoint(&out) {
        Some(epoch) => format!(
            "the checkpoint of epoch {epoch} is kept; continue with: cnnzoo train --config {} --resume",
            out.join("config.toml").display()
        ),
        None => "no epoch was completed, so there is no checkpoint to resume from".into(),
    };
    if let Some(error) = result.error {
        bail!("training stopped with an error: {error}; {}", resume_hint());
    }
    if let Some((epoch, step)) = run.diverged() {
        bail!(
            "the training loss became NaN or infinite at epoch {epoch}, step {step}; the learning rate ({}) is the likely cause: lower it with --lr (or add warm-up epochs); {}",
            config.optimizer.lr(),
            resume_hint()
        );
    }
    if result.interrupted.is_some() {
        let stopped = out.join("interrupted.bpk");
        atomic::write_with(&stopped, |temp| {
            result
                .model
                .save_file(temp)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", temp.display()))
        })?;
        let mut meta = meta_for_export.clone();
        meta.epoch = None;
        checkpoint::write_meta(&stopped, &meta)?;
        eprintln!(
            "stopped by Ctrl-C; the weights at the last step are in {} (eval, predict and train --init read it)",
            stopped.display()
        );
        bail!("training was interrupted; {}", resume_hint());
    }
    let wall_seconds = started.elapsed().as_secs_f64();

    let best = run
        .best()
        .context("training finished without a single completed epoch")?;
    let best_path = out.join("best.bpk");
    let (model, meta) = checkpoint::load(&best_path, &device)?;
    let val = if data.val.is_empty() {
        None
    } else {
        Some(eval::evaluate(
            &model.model,
            &data::eval_loader(&data.val, config.batch_size, &device)?,
            &device,
        )?)
    };
    let test = eval::evaluate(
        &model.model,
        &data::eval_loader(&data.test, config.batch_size, &device)?,
        &device,
    )?;
    let results = json!({
        "model": config.model,
        "best_epoch": best.epoch,
        "epochs_done": run.rows().len(),
        "epochs_planned": config.epochs,
        "val_top1": val.as_ref().map(|v| v.top1),
        "val_top5": val.as_ref().map(|v| v.top5),
        "test_top1": test.top1,
        "test_top5": test.top5,
        "test_images": test.n,
        "parameters": num_params,
        "wall_seconds": wall_seconds,
        "device": selected.description,
        "checkpoint": best_path,
        "classes": meta.dataset.classes,
    });
    atomic::write_bytes(
        &out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    if let Some(v) = &val {
        println!(
            "best epoch {}: validation top-1 {:.2}%  top-5 {:.2}%",
            best.epoch, v.top1, v.top5
        );
    }
    println!(
        "test top-1 {:.2}%  top-5 {:.2}%  ({} images)",
        test.top1, test.top5, test.n
    );
    println!("run folder: {}", out.display());
    Ok(())
}

/// Temporary files a killed run left behind (see `atomic`): never read, so only removed.
fn remove_partial_writes(out: &Path) -> Result<()> {
    for dir in [out.to_path_buf(), run::checkpoint_dir(out)] {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().contains(".tmp-") {
                std::fs::remove_file(entry.path()).with_context(|| {
                    format!("cannot remove the partial file {}", entry.path().display())
                })?;
            }
        }
    }
    Ok(())
}

/// The first Ctrl-C stops training at the end of the current step (the learner checks the
/// interrupter after each step); a second one exits at once.
fn stop_on_ctrl_c(interrupter: burn::train::Interrupter) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT])
        .context("cannot install the Ctrl-C handler")?;
    std::thread::spawn(move || {
        for (count, _) in signals.forever().enumerate() {
            if count == 0 {
                eprintln!(
                    "\nCtrl-C: stopping after the current step (press again to quit at once)"
                );
                interrupter.stop(Some("Ctrl-C"));
            } else {
                std::process::exit(130);
            }
        }
    });
    Ok(())
}

/// A finished run is kept unless `--overwrite`; `--resume` needs a checkpoint to resume from.
/// Returns the epoch to resume after.
fn prepare_output(out: &Path, request: &TrainRequest) -> Result<Option<usize>> {
    if request.resume {
        return match run::last_complete_checkpoint(out) {
            Some(epoch) => {
                remove_partial_writes(out)?;
                Ok(Some(epoch))
            }
            None => bail!(
                "--resume: {} holds no complete checkpoint to resume from",
                out.display()
            ),
        };
    }
    let finished = out.join("results.json").exists();
    let started = run::last_complete_checkpoint(out).is_some();
    if (finished || started) && !request.overwrite {
        bail!(
            "{} already holds a {} run; pass --overwrite to replace it{}",
            out.display(),
            if finished { "finished" } else { "stopped" },
            if finished {
                ""
            } else {
                ", or --resume to continue it"
            }
        );
    }
    if request.overwrite && out.exists() {
        for name in [
            "checkpoint",
            "best.bpk",
            "best.bpk.json",
            "interrupted.bpk",
            "interrupted.bpk.json",
            "summary.csv",
            "results.json",
            "config.toml",
            "curves.png",
        ] {
            let path = out.join(name);
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            if let Err(e) = removed
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(e).with_context(|| format!("cannot clear {}", path.display()));
            }
        }
    }
    Ok(None)
}
