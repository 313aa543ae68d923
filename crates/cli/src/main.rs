//! cnnzoo: train the classic CNNs on CIFAR-10, CIFAR-100 and folders of your own images with
//! burn, on any GPU (wgpu) or the CPU. The work is done by the `cnnzoo-train` library; this binary parses the arguments into its
//! request types and prints what it returns (see `print`).
mod print;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use cnnzoo_train::augment_grid::AugmentRequest;
use cnnzoo_train::bench::BenchRequest;
use cnnzoo_train::eval::EvalRequest;
use cnnzoo_train::import::ImportRequest;
use cnnzoo_train::predict::PredictRequest;
use cnnzoo_train::train::TrainRequest;

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

/// A reader that closes the pipe early (`cnnzoo models | head -1`) ends the process quietly, as
/// it ends `ls` or `cat`: Rust starts programs with SIGPIPE ignored, so the next print would
/// fail and panic with a stack trace instead.
fn end_quietly_on_closed_pipe() {
    // Safety: restores the default disposition of one signal, before any thread has started.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[derive(Parser)]
#[command(
    name = "cnnzoo",
    version,
    about = "Train the classic CNNs on CIFAR-10, CIFAR-100 or your own images with burn, on any GPU or the CPU",
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
  cnnzoo train --resume --output runs/resnet
  cnnzoo train --resume --output runs/resnet --epochs 200
  cnnzoo train --model resnet --lr 0.05 --epochs 30 --print-config > resnet-30.toml"
    )]
    Train {
        #[command(flatten)]
        request: TrainRequest,
        /// Print the resolved configuration (defaults, then --config, then the flags) as TOML and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Evaluate a checkpoint: top-1, top-5 and per-class accuracy.
    #[command(after_help = "Examples:
  cnnzoo eval --checkpoint runs/densenet/best.bpk
  cnnzoo eval --checkpoint runs/resnet/best.bpk --split val --json
  cnnzoo eval --checkpoint runs/resnet/best.bpk --tta flip
  cnnzoo eval --checkpoint runs/resnet/best.bpk --confusion runs/resnet/confusion.png")]
    Eval(EvalRequest),
    /// List the models of the zoo with their parameter counts.
    #[command(after_help = "Examples:
  cnnzoo models
  cnnzoo models --json
  cnnzoo models --family resnet
  cnnzoo models --num-classes 100")]
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Only models of this family.
        #[arg(long)]
        family: Option<String>,
        /// Count the parameters with a last layer of this many classes.
        #[arg(long, default_value_t = cnnzoo_train::models::DEFAULT_CLASSES as u64, value_parser = clap::value_parser!(u64).range(1..))]
        num_classes: u64,
    },
    /// Draw training images as a config's recipe augments them, to check it by eye.
    #[command(
        after_help = "Each row is one training image: the original first, then one augmented version per column, each
from another epoch's random draws. With mixup or cutmix, the images of a column are mixed with
each other, as the images of a training batch are.

Examples:
  cnnzoo augment --config configs/resnet_modern.toml --out grid.png
  cnnzoo augment --config my.toml --out grid.png --images 4 --samples 12 --data-dir ../shared/data/cifar10-mini"
    )]
    Augment(AugmentRequest),
    /// Measure training and inference throughput (images/s) and peak memory, as `train` runs.
    #[command(after_help = "Examples:
  cnnzoo bench --model resnet --device cpu --batch 128
  cnnzoo bench --model all --device cpu --steps 20 --json
  cnnzoo bench --model densenet --device wgpu --batch 256 --infer-batch 512
  cnnzoo bench --config configs/resnet_modern.toml --device cpu")]
    Bench(BenchRequest),
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
    Import(ImportRequest),
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
    Predict(PredictRequest),
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

fn main() -> ExitCode {
    keep_freed_pages();
    end_quietly_on_closed_pipe();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Models {
            json,
            family,
            num_classes,
        } => print::models(json, family.as_deref(), num_classes as usize),
        Command::Train {
            request,
            print_config: true,
        } => print::config(&request),
        Command::Train { request, .. } => print::train(&request),
        Command::Bench(request) => print::bench(&request),
        Command::Augment(request) => print::augment(&request),
        Command::Import(request) => print::import(&request),
        Command::Predict(request) => print::predict(&request),
        Command::Eval(request) => print::eval(&request),
        Command::Runs { dir, json } => print::runs(&dir, json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cnnzoo", &mut std::io::stdout());
            Ok(())
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            // A run stopped by Ctrl-C ends as programs interrupted by SIGINT do (128 + 2).
            if error.is::<cnnzoo_train::train::Interrupted>() {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
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
