//! cnnzoo's training library: everything the `cnnzoo` binary does, callable from Rust with typed
//! requests and typed results. The binary only parses arguments (the request types derive
//! `clap::Args`) and prints what these functions return.
//!
//! Where each concern lives:
//! - [`config`]: the training configuration (TOML), command-line overrides, validation.
//! - [`augment_config`]: its `[augment]` and `[ema]` sections, the modern recipe toolbox.
//! - [`augment_grid`]: `cnnzoo augment`, a recipe's augmentation drawn as a grid of images.
//! - [`recipes`]: the shipped reference recipe of each model (`configs/`).
//! - [`data`]: the `[data]` section, CIFAR-10's or CIFAR-100's train/validation/test splits and
//!   the loaders over them.
//! - [`device`]: choosing the CPU or a GPU by name, probing wgpu safely.
//! - [`parallel`]: training on several devices (`--devices`), through burn-train's strategies.
//! - [`cuda`]: what `--device cuda` needs (driver, nvrtc, headers, NCCL), probed before burn.
//! - [`gpu_cache`]: where burn's GPU autotune results persist between runs.
//! - [`classifier`]: a zoo model as burn-train's learner sees it (logits and cross-entropy).
//! - [`ema`]: the moving average of the weights (`[ema]`), part of every checkpoint.
//! - [`optim`] and [`schedule`]: the optimizer and the per-step learning-rate schedule.
//! - [`grad_clip`]: PyTorch's gradient clipping, by global norm or by value.
//! - [`resume`]: what `--resume` continues, and the changes it refuses.
//! - [`train`]: `cnnzoo train`, from the request to the run folder and its results.
//! - [`learner_hooks`]: the metric logger, checkpointers and checkpoint strategy `train` gives
//!   burn-train.
//! - [`progress`]: the one-line-every-few-seconds progress display for logs.
//! - [`tensorboard`]: the run's TensorBoard event files (`tb/`).
//! - [`terminal`]: Ctrl-C, and the live display on a terminal (burn-train's TUI, made to stop).
//! - [`run_dir`]: the layout of a run folder, and `results.json` ([`run_dir::RunResults`]).
//! - [`summary`]: `summary.csv`, one row per epoch, and the best epoch.
//! - [`run_lock`]: `run.lock`, which tells a running run from a stopped one.
//! - [`runs`]: `cnnzoo runs`, the run folders under a folder and their state.
//! - [`checkpoint`]: self-describing checkpoints (`NAME.bpk` and `NAME.bpk.json`).
//! - [`atomic`]: files written to a temporary name and renamed into place.
//! - [`accuracy`]: when a prediction counts as right (ties and NaN never do), everywhere.
//! - [`evaluation`]: top-1, top-5 and the confusion matrix over a loader.
//! - [`eval`]: `cnnzoo eval`, a checkpoint on one split, with the confusion heat map.
//! - [`tta`]: test-time augmentation for `eval --tta` (the mirror's logits averaged in).
//! - [`predict`]: `cnnzoo predict`, image decoding, resizing and the top classes.
//! - [`import`]: `cnnzoo import`, PyTorch weights into a cnnzoo checkpoint.
//! - [`bench`](mod@bench): `cnnzoo bench`, training and inference throughput.
//! - [`peak_memory`]: the process's peak resident memory, for `summary.csv` and `bench`.
//! - [`models`]: `cnnzoo models`, the registry's models with their sizes.
//! - [`report`]: the pictures (`curves.png`, the confusion heat map) and the reference accuracy.
//! - [`fault`]: reproducible pause points for the crash-safety tests.
pub mod accuracy;
pub mod atomic;
pub mod augment_config;
pub mod augment_grid;
pub mod bench;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod cuda;
pub mod data;
pub mod device;
pub mod ema;
pub mod eval;
pub mod evaluation;
pub mod fault;
pub mod gpu_cache;
pub mod grad_clip;
pub mod import;
pub mod learner_hooks;
pub mod models;
pub mod optim;
pub mod parallel;
pub mod peak_memory;
pub mod predict;
pub mod progress;
pub mod recipes;
pub mod report;
pub mod resume;
pub mod run_dir;
pub mod run_lock;
pub mod runs;
pub mod schedule;
pub mod summary;
pub mod tensorboard;
pub mod terminal;
pub mod train;
pub mod tta;
