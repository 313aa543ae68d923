//! `cnnzoo train`: the reference recipe on burn-train's learner, into a run folder that survives
//! being killed at any point and can be resumed.
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::{LearningRateMetric, LossMetric};
use burn::train::renderer::MetricsRenderer;
use burn::train::{Interruption, Learner, LearningResult, SupervisedTraining, TrainingError};
use cnnzoo_models::{ModelConfig, ModelEntry, lookup};
use serde::Serialize;

use crate::accuracy::{RawTop1, TopKAccuracy};
use crate::atomic;
use crate::checkpoint::{self, CheckpointMeta, FORMAT};
use crate::classifier::Classifier;
use crate::config::{Overrides, TrainConfig};
use crate::data::{self, Data, DataRequest, Loaders};
use crate::ema::Ema;
use crate::evaluation::{self, Evaluation};
use crate::fault;
use crate::import;
use crate::learner_hooks::{AtomicCheckpointer, KeepBestAndLast, RunLogger, SharedRun};
use crate::optim;
use crate::parallel::{self, Placement};
use crate::progress::LineRenderer;
use crate::recipes;
use crate::report::curves::Curves;
use crate::resume;
use crate::run_dir::{DeviceThroughput, RunDir, RunFile, RunResults};
use crate::run_lock::{self, RunLock};
use crate::schedule::EpochSchedule;
use crate::tensorboard::TensorBoardLog;
use crate::terminal::{self, TerminalDisplay};
use crate::tta::Tta;

/// What `cnnzoo train` is asked to do.
#[derive(clap::Args, Clone, Debug)]
pub struct TrainRequest {
    /// Model name (see `cnnzoo models`); overrides the config's `model`.
    #[arg(long)]
    pub model: Option<String>,
    /// TOML config (see configs/); without it, the model's shipped recipe.
    #[arg(long = "config", value_name = "CONFIG")]
    pub config_file: Option<PathBuf>,
    #[command(flatten)]
    pub overrides: Overrides,
    /// Continue the run in the output folder from its last checkpoint, with the config it
    /// started with (`--resume --output DIR` needs nothing else).
    #[arg(long)]
    pub resume: bool,
    /// With --resume, accept a config or flags that change how the run trains (seed, batch
    /// size, optimizer, ...); the changes are recorded in the run's config_history.json.
    #[arg(long, requires = "resume")]
    pub allow_config_change: bool,
    /// Replace a run already in the output folder.
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Start from the weights of this cnnzoo checkpoint (from `cnnzoo import` or a run's best.bpk).
    #[arg(long, conflicts_with = "resume")]
    pub init: Option<PathBuf>,
}

/// A finished run: its folder, and the evaluation of `best.bpk` that `results.json` records.
#[derive(Clone, Debug, Serialize)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub best_epoch: usize,
    /// `None` when no images were held out for validation.
    pub val: Option<Evaluation>,
    /// `None` when the data has no test images (a folder without `test/`).
    pub test: Option<Evaluation>,
}

/// Reads the config file (or, resuming, the run's own config; or the model's shipped recipe)
/// and applies the flags.
pub fn resolve_config(request: &TrainRequest) -> Result<TrainConfig> {
    let mut config = match &request.config_file {
        Some(path) => TrainConfig::from_file(path)?,
        None if request.resume => {
            let dir = match (&request.overrides.output, &request.model) {
                (Some(output), _) => RunDir::new(output),
                (None, Some(model)) => RunDir::new(std::path::Path::new("runs").join(model)),
                (None, None) => {
                    bail!("--resume needs the run folder: cnnzoo train --resume --output DIR")
                }
            };
            resume::saved_config(&dir)?
        }
        None => {
            let Some(model) = &request.model else {
                bail!(
                    "name a model with --model, or a config file with --config (`cnnzoo models` lists the models)"
                );
            };
            recipes::recipe_for(model)?
        }
    };
    if let Some(model) = &request.model {
        config.model = model.clone();
    }
    config = config.with_settings(&request.overrides.set)?;
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

/// Trains, keeps the best epoch as `best.bpk`, evaluates it and writes `results.json`.
pub fn run(request: &TrainRequest) -> Result<TrainOutcome> {
    let config = resolve_config(request)?;
    for warning in config.warnings() {
        eprintln!("warning: {warning}");
    }
    let entry = lookup(&config.model)?;
    let run_dir = config.run_dir();
    run_lock::ensure_not_running(&run_dir)?;
    let resume_from = prepare_output(&run_dir, request)?;

    let data = data::load(&DataRequest::for_config(
        &config,
        config.data_dir(),
        entry.input_size,
    )?)?;
    let steps_per_epoch = steps_per_epoch(&config, &data)?;
    let model_config = model_config(&config, entry, data.classes.len(), data.train.side)?;
    let placement = parallel::place(&config.device, config.devices.as_deref(), config.parallel)?;
    let per_device_batch = placement.per_device_batch(config.batch_size)?;
    let selected = placement.main();
    let mut classifier = initial_classifier(request, &config, &model_config, &selected.device)?;
    classifier.loss_scale = placement.loss_scale();
    if let Some(completed) = resume_from {
        check_resume(
            &run_dir,
            &config,
            completed,
            steps_per_epoch,
            &classifier,
            request,
        )?;
    }
    println!(
        "cnnzoo: training {} on {}",
        config.model,
        placement.description()
    );
    if placement.count() > 1 {
        println!(
            "cnnzoo: global batch {} = {} devices x {per_device_batch}; batch-norm statistics are per device (no SyncBatchNorm)",
            config.batch_size,
            placement.count()
        );
    }

    std::fs::create_dir_all(run_dir.path())
        .with_context(|| format!("cannot create the run folder {}", run_dir.path().display()))?;
    // Marks the run as running for `cnnzoo runs` until this function returns.
    let mut lock = RunLock::create(&run_dir)?;
    atomic::write_bytes(&run_dir.file(RunFile::Config), config.to_toml()?.as_bytes())?;

    let start_epoch = resume_from.map_or(1, |e| e + 1);
    let loaders = data::training_loaders(&data, &config, start_epoch, &placement)?;
    let meta = CheckpointMeta {
        format: FORMAT.into(),
        model: config.model.clone(),
        config: model_config.clone(),
        dataset: data.info(entry.input_size),
        epoch: None,
        val_top1: None,
        split_seed: config.seed,
        val_fraction: config.val_fraction,
        ema: config.ema.is_some(),
    };
    if data.val.is_empty() {
        println!(
            "cnnzoo: no validation images (val_fraction {}): validation is skipped, and best.bpk is the last epoch's weights",
            config.val_fraction
        );
    }
    let run = track_epochs(
        &run_dir,
        &config,
        resume_from,
        meta.clone(),
        !data.val.is_empty(),
    )?;

    let num_params = classifier.model.num_trainable_params();
    // A resumed run's time includes its earlier sessions: the epochs they completed, as
    // summary.csv timed them (work a killed session lost after its last checkpoint is not counted).
    let earlier_seconds: f64 = run.rows().iter().map(|row| row.seconds).sum();
    lock.describe(num_params, earlier_seconds)?;
    if config.log.tensorboard {
        run.log_to(TensorBoardLog::open(
            &run_dir,
            &config,
            steps_per_epoch,
            resume_from,
        )?);
    }

    let started = Instant::now();
    let result = fit(
        &run_dir,
        &config,
        &run,
        loaders,
        classifier,
        &placement,
        steps_per_epoch,
        resume_from,
    )?;
    check_completed(&run_dir, &config, &run, result, meta)?;
    let wall_seconds = earlier_seconds + started.elapsed().as_secs_f64();

    let best_epoch = run
        .best()
        .context("training finished without a single completed epoch")?
        .epoch;
    fault::pause_if_asked("report:evaluate", || false);
    let BestEvaluation {
        val,
        test,
        val_raw,
        test_raw,
        classes,
    } = evaluate_best(&run_dir, &config, &data, &selected.device)?;
    run.finish_log(
        config.epochs,
        val.as_ref().map(|v| v.top1),
        test.as_ref().map(|t| t.top1),
    );
    fault::pause_if_asked("report:results", || false);
    let devices = (placement.count() > 1).then(|| device_throughput(&placement, &run));
    for (index, device) in devices.iter().flatten().enumerate() {
        println!(
            "cnnzoo: device {index} ({}): {:.0} training images/s",
            device.device, device.images_per_second
        );
    }
    run_dir.write_results(&RunResults {
        model: Some(config.model.clone()),
        best_epoch: Some(best_epoch),
        epochs_done: Some(run.rows().len()),
        epochs_planned: Some(config.epochs),
        val_top1: val.as_ref().map(|v| v.top1),
        val_top5: val.as_ref().map(|v| v.top5),
        test_top1: test.as_ref().map(|t| t.top1),
        test_top5: test.as_ref().map(|t| t.top5),
        val_top1_raw: val_raw.map(|v| v.top1),
        test_top1_raw: test_raw.map(|t| t.top1),
        test_images: test.as_ref().map(|t| t.n),
        parameters: Some(num_params),
        wall_seconds: Some(wall_seconds),
        device: Some(placement.description()),
        devices,
        checkpoint: Some(run_dir.file(RunFile::Best)),
        classes: Some(classes),
    })?;
    Ok(TrainOutcome {
        run_dir: run_dir.path().to_path_buf(),
        best_epoch,
        val,
        test,
    })
}

/// The model's hyper-parameters: the registry variant's, with the config's `model_params`, for
/// images of `image_side` pixels.
fn model_config(
    config: &TrainConfig,
    entry: &ModelEntry,
    classes: usize,
    image_side: usize,
) -> Result<ModelConfig> {
    let model_params = serde_json::to_value(&config.model_params)
        .context("model_params")?
        .as_object()
        .cloned()
        .unwrap_or_default();
    let model_config = entry
        .config_with(classes, &model_params)
        .map_err(|e| anyhow::anyhow!("model_params: {e}"))?;
    if let Some(side) = model_config.min_input_side()
        && side > image_side
    {
        bail!(
            "model '{}' needs images of at least {side}x{side} pixels and the data's are {image_side}x{image_side}: set cifar_stem = true under [model_params] in the config, or a larger data.image_size for a folder data set",
            config.model
        );
    }
    Ok(model_config)
}

/// Each device's share of the training throughput over the run's epochs (a resumed run's
/// earlier ones too): every device takes the same number of images a step, and the steps wait
/// for the slowest.
fn device_throughput(placement: &Placement, run: &SharedRun) -> Vec<DeviceThroughput> {
    let rows = run.rows();
    let images: f64 = rows.iter().map(|r| r.images_per_second * r.seconds).sum();
    let seconds: f64 = rows.iter().map(|r| r.seconds).sum();
    let per_device = if seconds > 0.0 {
        images / seconds / placement.count() as f64
    } else {
        0.0
    };
    placement
        .devices
        .iter()
        .map(|d| DeviceThroughput {
            device: d.description.clone(),
            images_per_second: per_device,
        })
        .collect()
}

fn steps_per_epoch(config: &TrainConfig, data: &Data) -> Result<usize> {
    let steps = data.train.len() / config.batch_size;
    if steps == 0 {
        bail!(
            "batch_size {} is larger than the {} training images: no full batch to train on",
            config.batch_size,
            data.train.len()
        );
    }
    Ok(steps)
}

/// The run's bookkeeping, with the epochs a resumed run already did, redrawing the curves after
/// every epoch.
fn track_epochs(
    run_dir: &RunDir,
    config: &TrainConfig,
    resume_from: Option<usize>,
    meta: CheckpointMeta,
    validates: bool,
) -> Result<SharedRun> {
    let done_rows = match resume_from {
        Some(epoch) => run_dir
            .read_summary()?
            .into_iter()
            .filter(|r| r.epoch <= epoch)
            .collect(),
        _ => Vec::new(),
    };
    let run = SharedRun::new(run_dir.clone(), done_rows, meta, validates);
    let curves = Curves::for_run(run_dir, config);
    run.on_epoch_end(move |rows| curves.redraw(rows));
    Ok(run)
}

/// A fresh initialisation from the seed, or the weights of `--init`, clipping its gradients as
/// the config asks.
fn initial_classifier(
    request: &TrainRequest,
    config: &TrainConfig,
    model_config: &ModelConfig,
    device: &Device,
) -> Result<Classifier> {
    device.seed(config.seed);
    let autodiff = device.clone().autodiff();
    let model = match &request.init {
        Some(path) => import::init_from(path, &config.model, model_config, &autodiff)?.model,
        None => model_config.init(&autodiff),
    };
    Ok(Classifier {
        ema: config.ema.map(|ema| Ema::new(&model, ema)),
        model,
        grad_clip: config.optimizer.grad_clip(),
        loss_scale: 1.0,
    })
}

/// What training left: the weights of the last step, and why it ended early if it did.
struct Fitted {
    model: Classifier,
    interrupted: Option<Interruption>,
    error: Option<Arc<TrainingError>>,
}

/// burn-train's supervised training with cnnzoo's metrics, logger, checkpointing and Ctrl-C
/// handling, from the start or from the checkpoint of `resume_from`. The progress display has
/// closed when this returns, so what is printed next stays on the screen.
#[allow(clippy::too_many_arguments)]
fn fit(
    run_dir: &RunDir,
    config: &TrainConfig,
    run: &SharedRun,
    loaders: Loaders,
    classifier: Classifier,
    placement: &Placement,
    steps_per_epoch: usize,
    resume_from: Option<usize>,
) -> Result<Fitted> {
    let optimizer = optim::build_optimizer(&config.optimizer, &classifier);
    let schedule = EpochSchedule::new(
        &config.schedule,
        config.optimizer.lr(),
        steps_per_epoch,
        config.epochs,
    );
    let training = SupervisedTraining::new(run_dir.path(), loaders.train, loaders.valid);
    let interrupter = training.interrupter();
    terminal::stop_on_ctrl_c(interrupter.clone())?;
    let mut training = training
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_train_numeric(<TopKAccuracy>::new(1))
        .metric_valid_numeric(<TopKAccuracy>::new(1))
        .metric_valid_numeric(<TopKAccuracy>::new(5))
        .metric_train_numeric(LearningRateMetric::new());
    if config.ema.is_some() {
        training = training.metric_valid_numeric(RawTop1::raw());
    }
    let mut training = training
        .with_metric_logger(RunLogger::new(
            run.clone(),
            config.batch_size / placement.count(),
            placement.count(),
            interrupter.clone(),
        ))
        .with_custom_checkpointers(
            AtomicCheckpointer::new(run_dir.clone(), "model", Some(run.clone())),
            AtomicCheckpointer::new(run_dir.clone(), "optim", None),
            AtomicCheckpointer::new(run_dir.clone(), "scheduler", None),
        )
        .with_checkpointing_strategy(KeepBestAndLast::new(
            run.clone(),
            run_dir
                .complete_checkpoints()
                .into_iter()
                .collect::<BTreeSet<_>>(),
        ))
        .with_application_logger(None)
        .with_training_strategy(placement.execution_strategy().into())
        .num_epochs(config.epochs);
    if let Some(epoch) = resume_from {
        println!(
            "cnnzoo: resuming {} after epoch {epoch}",
            run_dir.path().display()
        );
        training = training.checkpoint(epoch);
    }
    // Last: from here until it is dropped, the live display owns the terminal.
    let display: Box<dyn MetricsRenderer> = if std::io::stdout().is_terminal() {
        Box::new(TerminalDisplay::new(interrupter, resume_from))
    } else {
        Box::new(LineRenderer::default())
    };
    let LearningResult {
        model,
        renderer,
        interrupted,
        error,
    } = training
        .renderer(display)
        .launch(Learner::new(classifier, optimizer, schedule));
    drop(renderer);
    Ok(Fitted {
        model,
        interrupted,
        error,
    })
}

/// Training stopped before its last epoch on request (Ctrl-C or the display's stop): the
/// binary exits with status 130, as a program interrupted by Ctrl-C does.
#[derive(Debug)]
pub struct Interrupted {
    pub message: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Interrupted {}

/// Fails when training did not run to its last epoch (an error, a diverged loss, a stop asked
/// for), saying how to go on; after a stop the weights of the last step are kept as
/// `interrupted.bpk`.
fn check_completed(
    run_dir: &RunDir,
    config: &TrainConfig,
    run: &SharedRun,
    fitted: Fitted,
    meta: CheckpointMeta,
) -> Result<()> {
    let resume_hint = || match run_dir.last_complete_checkpoint() {
        Some(epoch) => format!(
            "the checkpoint of epoch {epoch} is kept; continue with: cnnzoo train --resume --output {}",
            run_dir.path().display()
        ),
        None => "no epoch was completed, so there is no checkpoint to resume from".into(),
    };
    if let Some(error) = fitted.error {
        bail!("training stopped with an error: {error}; {}", resume_hint());
    }
    if let Some((epoch, step)) = run.diverged() {
        bail!(
            "the training loss became NaN or infinite at epoch {epoch}, step {step}; the learning rate ({}) is the likely cause: lower it with --lr (or add warm-up epochs); {}",
            config.optimizer.lr(),
            resume_hint()
        );
    }
    if let Some(interruption) = fitted.interrupted {
        let stopped = run_dir.file(RunFile::Interrupted);
        atomic::write_with(&stopped, |temp| {
            fitted
                .model
                .save_file(temp)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", temp.display()))
        })?;
        checkpoint::write_meta(&stopped, &meta)?;
        eprintln!(
            "stopped by {}; the weights at the last step are in {} (eval, predict and train --init read it)",
            interruption.reason.as_deref().unwrap_or("request"),
            stopped.display()
        );
        return Err(Interrupted {
            message: format!("training was interrupted; {}", resume_hint()),
        }
        .into());
    }
    Ok(())
}

/// The evaluation of `best.bpk`: validation (when images were held out) and test accuracy of
/// the weights it keeps, and of the trained weights beside a moving average.
struct BestEvaluation {
    val: Option<Evaluation>,
    test: Option<Evaluation>,
    val_raw: Option<Evaluation>,
    test_raw: Option<Evaluation>,
    classes: Vec<String>,
}

fn evaluate_best(
    run_dir: &RunDir,
    config: &TrainConfig,
    data: &Data,
    device: &Device,
) -> Result<BestEvaluation> {
    let (classifier, meta) = checkpoint::load(&run_dir.file(RunFile::Best), device)?;
    let evaluate = |model, set| {
        evaluation::evaluate(
            model,
            &data.eval_loader(set, config.batch_size, config.data.eval_workers(), device)?,
            device,
            Tta::None,
        )
    };
    let validates = !data.val.is_empty();
    let tests = !data.test.is_empty();
    let kept = classifier.inference_model();
    let raw = classifier.ema.is_some().then_some(&classifier.model);
    Ok(BestEvaluation {
        val: validates.then(|| evaluate(kept, &data.val)).transpose()?,
        test: tests.then(|| evaluate(kept, &data.test)).transpose()?,
        val_raw: (raw.filter(|_| validates))
            .map(|m| evaluate(m, &data.val))
            .transpose()?,
        test_raw: (raw.filter(|_| tests))
            .map(|m| evaluate(m, &data.test))
            .transpose()?,
        classes: meta.dataset.classes,
    })
}

/// Refuses a resume that would continue a different run or from a damaged checkpoint, before
/// anything in the folder changes; records the config changes it accepts.
fn check_resume(
    run_dir: &RunDir,
    config: &TrainConfig,
    completed: usize,
    steps_per_epoch: usize,
    model: &Classifier,
    request: &TrainRequest,
) -> Result<()> {
    let saved = resume::saved_config(run_dir)?;
    let changes = resume::check(
        run_dir,
        &saved,
        config,
        completed,
        run_dir.is_finished(),
        request.allow_config_change,
    )?;
    // Epochs of another length (an accepted change of batch size or split) end at other steps.
    let same_epochs =
        saved.batch_size == config.batch_size && saved.val_fraction == config.val_fraction;
    resume::check_records(
        run_dir,
        completed,
        same_epochs.then_some(steps_per_epoch),
        model,
    )?;
    for change in &changes {
        eprintln!(
            "note: resuming with {} = {} (was {})",
            change.key, change.new, change.old
        );
    }
    if !changes.is_empty() {
        resume::record(run_dir, completed, changes)?;
    }
    Ok(())
}

/// A finished run is kept unless `--overwrite`; `--resume` needs a checkpoint to resume from.
/// Returns the epoch to resume after.
fn prepare_output(run_dir: &RunDir, request: &TrainRequest) -> Result<Option<usize>> {
    let out = run_dir.path();
    if request.resume {
        resume::ensure_run_folder(run_dir)?;
        return match run_dir.last_complete_checkpoint() {
            Some(epoch) => {
                run_dir.remove_partial_writes()?;
                Ok(Some(epoch))
            }
            None => bail!(
                "--resume: {} holds no complete checkpoint to resume from",
                out.display()
            ),
        };
    }
    let finished = run_dir.is_finished();
    let started = run_dir.last_complete_checkpoint().is_some();
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
        run_dir.clear()?;
    }
    Ok(None)
}
