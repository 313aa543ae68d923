//! cnnzoo: train the classic CNNs on CIFAR-10 with burn, on any GPU (wgpu) or the CPU.
mod atomic;
mod bench;
mod checkpoint;
mod classifier;
mod config;
mod data;
mod device;
mod eval;
mod fault;
mod import_cmd;
mod models_cmd;
mod optim;
mod predict;
mod progress;
mod recipes;
mod report;
mod run;
mod runs_cmd;
mod schedule;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::config::Overrides;

/// A training step allocates and frees every activation and gradient, megabytes each. glibc
/// hands such buffers back to the kernel on free, so each new one is page-faulted in 4 KiB at a
/// time (a quarter of batch norm's time at ResNet-20's first stage); mimalloc keeps them for
/// reuse. DenseNet trains 15-25% faster with it (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its position in `mi_option_e` of mimalloc 3, which
/// libmimalloc-sys builds but names no constant for).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc still hands pages that stayed free for a second back to the kernel, and a training
/// step of 0.5-2 s frees most of its memory in between: ResNet-20's benchmark took 25,000 page
/// faults. Never purging keeps the pages, as a training process holds its peak anyway.
fn keep_freed_pages() {
    // Safety: sets one integer option, before any thread but this one has started.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

#[derive(Parser)]
#[command(
    name = "cnnzoo",
    version,
    about = "Train the classic CNNs on CIFAR-10 with burn, on any GPU or the CPU",
    after_help = "Examples:
  cnnzoo models
  cnnzoo train --model resnet --config configs/resnet.toml
  cnnzoo runs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model: the reference recipe, a progress display, the best checkpoint kept.
    #[command(
        after_help = "Each epoch redraws curves.png in the run folder: loss, top-1 and learning rate over the
epochs, the best epoch marked, and the reference accuracy of the model where there is one.

Examples:
  cnnzoo train --model densenet --config configs/densenet.toml
  cnnzoo train --model resnet --epochs 2 --batch-size 64 --data-dir ../shared/data/cifar10-mini --output runs/quick
  cnnzoo train --config runs/resnet/config.toml --resume
  cnnzoo train --model resnet --lr 0.05 --epochs 30 --print-config > resnet-30.toml"
    )]
    Train(TrainArgs),
    /// Evaluate a checkpoint: top-1, top-5 and per-class accuracy.
    #[command(after_help = "Examples:
  cnnzoo eval --checkpoint runs/densenet/best.bpk
  cnnzoo eval --checkpoint runs/resnet/best.bpk --split val --json
  cnnzoo eval --checkpoint runs/resnet/best.bpk --confusion runs/resnet/confusion.png")]
    Eval(EvalArgs),
    /// List the models of the zoo with their parameter counts.
    #[command(after_help = "Examples:
  cnnzoo models
  cnnzoo models --json
  cnnzoo models --family resnet")]
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only models of this family.
        #[arg(long)]
        family: Option<String>,
    },
    /// Measure training and inference throughput (images/s) and peak memory, as `train` runs.
    #[command(after_help = "Examples:
  cnnzoo bench --model resnet --device cpu --batch 128
  cnnzoo bench --model all --device cpu --steps 20 --json
  cnnzoo bench --model densenet --device wgpu --batch 256 --infer-batch 512")]
    Bench(BenchArgs),
    /// Import PyTorch weights (.pt/.pth, Lightning .ckpt, .safetensors) as a cnnzoo checkpoint.
    #[command(
        after_help = "Every tensor of the model must be in the file with its shape, and nothing else: missing or
unexpected keys and shape mismatches are errors that name them. BatchNorm running statistics
are loaded; num_batches_tracked is ignored. The format is recognised from the content.

Examples:
  cnnzoo import --from ResNet.ckpt --model resnet --output resnet-pretrained.bpk
  cnnzoo import --from ResNetPreAct.ckpt --model resnet_preact --output resnet_preact.bpk
  cnnzoo import --from densenet.safetensors --model densenet --output densenet.bpk
  cnnzoo import --from resnet100.pt --model resnet --num-classes 100 --output resnet100.bpk"
    )]
    Import(ImportArgs),
    /// Classify image files (PNG, JPEG, BMP, WebP) with a checkpoint: the top classes and their probabilities.
    #[command(
        after_help = "Each image is converted to RGB, its shorter side resized to the model's input size (bilinear,
antialiased when shrinking), centre-cropped to a square, as torchvision's Resize + CenterCrop,
and normalised with the checkpoint's dataset statistics. A file that is missing or not an image
is reported by name, the others are still predicted, and the exit status is then 1.

Examples:
  cnnzoo predict --checkpoint resnet-pretrained.bpk cat.png ship.jpg
  cnnzoo predict --checkpoint runs/densenet/best.bpk --top-k 5 photos/*.jpg
  cnnzoo predict --checkpoint resnet-pretrained.bpk --json frog.webp"
    )]
    Predict(PredictArgs),
    /// List the runs in a folder: model, epochs, best validation and test top-1, size, time, state.
    #[command(
        after_help = "A run is finished when results.json is written, running while a live `cnnzoo train` holds its
run.lock, and stopped otherwise (killed, interrupted or failed: `cnnzoo train --resume` goes on).

Examples:
  cnnzoo runs
  cnnzoo runs experiments/ --json"
    )]
    Runs {
        /// The folder to look in, down to three levels.
        #[arg(default_value = "runs")]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:
  cnnzoo completions bash > ~/.local/share/bash-completion/completions/cnnzoo
  cnnzoo completions zsh > ~/.zfunc/_cnnzoo
  cnnzoo completions fish > ~/.config/fish/completions/cnnzoo.fish")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(clap::Args)]
struct ImportArgs {
    /// The PyTorch file: torch.save (.pt/.pth, zip or legacy format), Lightning .ckpt or .safetensors.
    #[arg(long)]
    from: PathBuf,
    /// Model name (see `cnnzoo models`) the weights belong to.
    #[arg(long)]
    model: String,
    /// The cnnzoo checkpoint to write (NAME.bpk, with NAME.bpk.json beside it).
    #[arg(long)]
    output: PathBuf,
    /// Classes of the model's last layer.
    #[arg(long, default_value_t = 10)]
    num_classes: usize,
}

#[derive(clap::Args)]
struct PredictArgs {
    /// A checkpoint written by `cnnzoo train` (best.bpk) or `cnnzoo import`.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Image files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// How many classes to show per image.
    #[arg(long, default_value_t = 3)]
    top_k: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// auto, cpu, ndarray, wgpu, vulkan, metal or dx12.
    #[arg(long, default_value = "auto")]
    device: String,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Model name (see `cnnzoo models`), or `all`.
    #[arg(long)]
    model: String,
    /// auto, cpu, ndarray, wgpu, vulkan, metal or dx12.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Training batch size.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Inference batch size.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    infer_batch: u64,
    /// Timed steps (training and inference each), after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Untimed steps first (kernel selection, autotuning, allocator warm-up).
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// With `--model all`, also run the ImageNet-sized models on a CPU device.
    #[arg(long)]
    large: bool,
    /// Print one JSON object per model.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Model name (see `cnnzoo models`); overrides the config's `model`.
    #[arg(long)]
    model: Option<String>,
    /// TOML config (see configs/); without it, the model's shipped recipe.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Base learning rate.
    #[arg(long)]
    lr: Option<f64>,
    #[arg(long)]
    seed: Option<u64>,
    /// Folder with the CIFAR-10 data (default ./data, or CNNZOO_DATA); downloaded if missing.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run folder (default runs/<model>).
    #[arg(long)]
    output: Option<PathBuf>,
    /// auto, cpu, ndarray, wgpu, vulkan, metal or dx12.
    #[arg(long)]
    device: Option<String>,
    /// Fraction of the training images held out for validation, in [0, 1).
    #[arg(long)]
    val_fraction: Option<f64>,
    /// Threads preparing batches.
    #[arg(long)]
    workers: Option<usize>,
    /// Continue the run in the output folder from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Replace a run already in the output folder.
    #[arg(long, conflicts_with = "resume")]
    overwrite: bool,
    /// Start from the weights of this cnnzoo checkpoint (from `cnnzoo import` or a run's best.bpk).
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Print the resolved configuration (defaults, then --config, then the flags) as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

#[derive(clap::Args)]
struct EvalArgs {
    /// A checkpoint written by `cnnzoo train` (best.bpk) or `cnnzoo import`.
    #[arg(long)]
    checkpoint: PathBuf,
    #[arg(long, value_enum, default_value = "test")]
    split: data::Split,
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Also draw the confusion matrix as a heat map into this PNG file.
    #[arg(long, value_name = "PNG")]
    confusion: Option<PathBuf>,
}

fn main() -> ExitCode {
    keep_freed_pages();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Models { json, family } => models_cmd::run(json, family.as_deref()),
        Command::Train(a) => {
            let print_config = a.print_config;
            let request = train::TrainRequest {
                config_file: a.config,
                overrides: Overrides {
                    model: a.model,
                    epochs: a.epochs,
                    batch_size: a.batch_size,
                    lr: a.lr,
                    seed: a.seed,
                    data_dir: a.data_dir,
                    output: a.output,
                    device: a.device,
                    val_fraction: a.val_fraction,
                    workers: a.workers,
                },
                resume: a.resume,
                overwrite: a.overwrite,
                init: a.init,
            };
            if print_config {
                train::print_config(&request)
            } else {
                train::run(request)
            }
        }
        Command::Bench(a) => bench::run(bench::BenchRequest {
            model: a.model,
            device: a.device,
            batch: a.batch as usize,
            infer_batch: a.infer_batch as usize,
            steps: a.steps as usize,
            warmup: a.warmup,
            large: a.large,
            json: a.json,
        }),
        Command::Import(a) => import_cmd::run(import_cmd::ImportRequest {
            from: a.from,
            model: a.model,
            output: a.output,
            num_classes: a.num_classes,
        }),
        Command::Predict(a) => predict::run(predict::PredictRequest {
            checkpoint: a.checkpoint,
            files: a.files,
            top_k: a.top_k,
            json: a.json,
            device: a.device,
        }),
        Command::Eval(a) => eval::run(eval::EvalRequest {
            checkpoint: a.checkpoint,
            split: a.split,
            data_dir: a.data_dir,
            device: a.device,
            batch_size: a.batch_size,
            json: a.json,
            confusion: a.confusion,
        }),
        Command::Runs { dir, json } => runs_cmd::run(&dir, json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cnnzoo", &mut std::io::stdout());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::MI_OPTION_PURGE_DELAY;

    /// `MI_OPTION_PURGE_DELAY` is a bare index: it must still be the purge delay of the mimalloc
    /// that libmimalloc-sys builds, the only one of its options that defaults to 1000 (ms).
    #[test]
    fn purge_delay_index_names_mimallocs_purge_delay() {
        // Safety: reads one integer option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(
            delay, 1000,
            "option {MI_OPTION_PURGE_DELAY} is not the purge delay"
        );
    }
}
