//! Loader throughput on the mini archive: augmented training batches of 128 on the flex CPU
//! device with 0, 1 and 2 workers, the evaluation path, how long a training loop whose model
//! step takes 10 ms waits for data, and the CPU augmentation alone.
//!
//! Run: `cargo bench -p cnnzoo-cifar --bench loader` (add `--profile dev` to skip the long
//! release build of burn; the figures are then those of the test profile).

use std::error::Error;
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use cnnzoo_cifar::{
    CifarBatcher, CifarDataset, CifarKind, EpochLoader, FetchOptions, IMAGE_BYTES, load,
};

const MINI_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/cifar10-mini/cifar-10-binary.tar.gz"
);
const BATCH: usize = 128;
const REPEATS: usize = 5;
/// Time a model step is pretended to take when measuring how long training waits for data.
const MODEL_STEP: Duration = Duration::from_millis(10);

fn main() -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    std::os::unix::fs::symlink(MINI_ARCHIVE, dir.path().join("cifar-10-binary.tar.gz"))?;
    let options = FetchOptions {
        url: None,
        verbose: false,
    };
    let data = load(CifarKind::Cifar10, dir.path(), &options)?;
    let dataset = CifarDataset::new(data.train);
    let device = Device::flex();
    println!(
        "mini training set ({} images), batches of {BATCH}, best of {REPEATS} epochs, {} threads available",
        dataset.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for workers in [0, 1, 2] {
        let loader = EpochLoader::train(dataset.clone(), BATCH, workers, 42, &device)?;
        let (rate, batches) = best_epoch_rate(&loader, Duration::ZERO)?;
        println!(
            "augmented training batches, {workers} workers: {rate:>7.0} images/s ({batches} batches an epoch)"
        );
    }
    for workers in [0, 2] {
        let loader = EpochLoader::eval(dataset.clone(), BATCH, workers, &device)?;
        let (rate, _) = best_epoch_rate(&loader, Duration::ZERO)?;
        println!("evaluation batches (no augmentation), {workers} workers: {rate:>7.0} images/s");
    }
    for workers in [0, 1, 2] {
        let loader = EpochLoader::train(dataset.clone(), BATCH, workers, 42, &device)?;
        let started = Instant::now();
        let batches = run_epoch(&loader, MODEL_STEP)?;
        let waiting = started
            .elapsed()
            .saturating_sub(MODEL_STEP * batches as u32);
        println!(
            "training waits for data, model step {} ms, {workers} workers: {:.2} ms a batch",
            MODEL_STEP.as_millis(),
            waiting.as_secs_f64() * 1e3 / batches as f64
        );
    }

    // The CPU work alone: flip + crop + bilinear + normalise into one buffer, no tensor.
    let batcher = CifarBatcher::train(42);
    let items = (0..BATCH)
        .map(|index| dataset.get(index))
        .collect::<Result<Vec<_>, _>>()?;
    let mut buffer = vec![0.0f32; BATCH * IMAGE_BYTES];
    let mut best = 0.0f64;
    for _ in 0..REPEATS {
        let started = Instant::now();
        for epoch in 0..30 {
            batcher.fill_images(&items, epoch, &mut buffer);
        }
        best = best.max((30 * BATCH) as f64 / started.elapsed().as_secs_f64());
    }
    println!("augmentation only (one thread, no tensor): {best:>7.0} images/s");
    Ok(())
}

/// Runs one epoch, pretending each batch takes `model_step` to consume; returns the batches.
fn run_epoch(loader: &EpochLoader, model_step: Duration) -> Result<usize, Box<dyn Error>> {
    let mut batches = 0;
    for batch in loader.iter() {
        batch?;
        batches += 1;
        std::thread::sleep(model_step);
    }
    Ok(batches)
}

/// Images per second of the fastest of [`REPEATS`] epochs (after one warm-up epoch), and the
/// batches in an epoch.
fn best_epoch_rate(
    loader: &EpochLoader,
    model_step: Duration,
) -> Result<(f64, usize), Box<dyn Error>> {
    run_epoch(loader, model_step)?;
    let mut best = 0.0f64;
    let mut batches = 0;
    for _ in 0..REPEATS {
        let started = Instant::now();
        batches = run_epoch(loader, model_step)?;
        best = best.max(loader.num_items() as f64 / started.elapsed().as_secs_f64());
    }
    Ok((best, batches))
}
