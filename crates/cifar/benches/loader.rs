//! Reading the archive in place, on the mini archive and on a full-size archive synthesized from
//! its images; then loader throughput on the mini archive: augmented training batches of 128 on
//! the flex CPU device with 0, 1 and 2 workers, the evaluation path, how long a training loop
//! whose model step takes 10 ms waits for data, and the CPU augmentation alone; last, the same
//! training images as a folder of BMP files: how fast their cache is built, and the training
//! loader from the cache beside the CIFAR loader, alternating, at image size 32.
//!
//! Run: `cargo bench -p cnnzoo-cifar --bench loader` (add `--profile dev` to skip the long
//! release build of burn; the figures are then those of the test profile, in which the
//! decompressor and every other dependency are optimised anyway).

use std::error::Error;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoader;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use cnnzoo_cifar::{
    CHANNEL_PIXELS, CifarBatcher, CifarData, CifarDataset, CifarKind, CifarSet, EpochLoader,
    FetchOptions, FolderOptions, IMAGE_BYTES, load, load_folder, md5_of_file,
};

#[path = "../tests/cifar/bmp.rs"]
mod bmp;

const MINI_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/cifar10-mini/cifar-10-binary.tar.gz"
);
const BATCH: usize = 128;
const REPEATS: usize = 5;
/// Time a model step is pretended to take when measuring how long training waits for data.
const MODEL_STEP: Duration = Duration::from_millis(10);

fn main() -> Result<(), Box<dyn Error>> {
    let options = FetchOptions {
        url: None,
        verbose: false,
    };
    let mini_dir = Path::new(MINI_ARCHIVE).parent().ok_or("no folder")?;
    let (data, seconds) = best_time(|| load(CifarKind::Cifar10, mini_dir, &options))?;
    println!(
        "reading the mini archive in place ({:.1} MB, {} images): {:.0} ms, best of {REPEATS}",
        megabytes(Path::new(MINI_ARCHIVE))?,
        data.train.len() + data.test.len(),
        seconds * 1e3
    );
    time_full_size_archive(&data, &options)?;

    let dataset = CifarDataset::new(data.train.clone());
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
    compare_folder_cache(&data.train, &dataset, &device)
}

/// The training images written as a folder of BMPs, decoded into the cache once, then the
/// training loader (2 workers) over the cache and over the CIFAR set in turn.
fn compare_folder_cache(
    set: &CifarSet,
    cifar: &CifarDataset,
    device: &Device,
) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("images");
    for (index, &label) in set.labels.iter().enumerate() {
        let class_dir = root.join(&set.classes[usize::from(label)]);
        std::fs::create_dir_all(&class_dir)?;
        let image = set.image(index).ok_or("no image")?;
        let rgb: Vec<u8> = (0..CHANNEL_PIXELS)
            .flat_map(|pixel| (0..3).map(move |c| image[c * CHANNEL_PIXELS + pixel]))
            .collect();
        std::fs::write(
            class_dir.join(format!("{index:05}.bmp")),
            bmp::bmp(32, 32, &rgb),
        )?;
    }
    let options = FolderOptions {
        image_size: 32,
        crop_pct: 0.875,
        val_fraction: 0.0,
        seed: 42,
        skip_bad_images: false,
        cache_dir: dir.path().join("cache"),
        verbose: false,
    };
    let started = Instant::now();
    let folder = load_folder(&root, &options)?;
    println!(
        "folder of {} BMP files: cache built in {:.2} s ({:.0} images/s), read again in {:.1} ms",
        folder.train.len(),
        started.elapsed().as_secs_f64(),
        folder.train.len() as f64 / started.elapsed().as_secs_f64(),
        {
            let again = Instant::now();
            load_folder(&root, &options)?;
            again.elapsed().as_secs_f64() * 1e3
        }
    );
    let cached = CifarDataset::new(folder.train);
    for round in 1..=2 {
        for (name, dataset) in [("CIFAR set", cifar), ("folder cache", &cached)] {
            let loader = EpochLoader::train(dataset.clone(), BATCH, 2, 42, device)?;
            let (rate, _) = best_epoch_rate(&loader, Duration::ZERO)?;
            println!(
                "round {round}: training batches from the {name:<12}, 2 workers: {rate:>7.0} images/s"
            );
        }
    }
    Ok(())
}

/// The result of the fastest of [`REPEATS`] calls of `read`, and its time in seconds.
fn best_time<T, E: Error + 'static>(
    mut read: impl FnMut() -> Result<T, E>,
) -> Result<(T, f64), Box<dyn Error>> {
    let mut best = None;
    for _ in 0..REPEATS {
        let started = Instant::now();
        let value = read()?;
        let seconds = started.elapsed().as_secs_f64();
        if best.as_ref().is_none_or(|(_, best)| seconds < *best) {
            best = Some((value, seconds));
        }
    }
    best.ok_or_else(|| "no repeat".into())
}

fn megabytes(path: &Path) -> Result<f64, Box<dyn Error>> {
    Ok(std::fs::metadata(path)?.len() as f64 / 1e6)
}

/// Times reading an archive of the official size in place: 5 training batches and a test batch
/// of 10,000 records each, the mini archive's images repeated (real photographs compress as the
/// official archive does; a repeat is megabytes away, out of gzip's reach), at gzip's default
/// level.
fn time_full_size_archive(mini: &CifarData, options: &FetchOptions) -> Result<(), Box<dyn Error>> {
    let dir = tempfile::tempdir()?;
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let file = std::fs::File::create(&archive)?;
    let gzip = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    let batch = |set: &cnnzoo_cifar::CifarSet, offset: usize| -> Vec<u8> {
        (0..10_000)
            .flat_map(|record| {
                let index = (offset + record) % set.len();
                std::iter::once(set.labels[index])
                    .chain(set.image(index).unwrap_or_default().iter().copied())
            })
            .collect()
    };
    let mut members: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|i| {
            let name = format!("cifar-10-batches-bin/data_batch_{i}.bin");
            (name, batch(&mini.train, i * 997))
        })
        .collect();
    members.push((
        "cifar-10-batches-bin/test_batch.bin".to_owned(),
        batch(&mini.test, 0),
    ));
    let names: String = mini
        .train
        .classes
        .iter()
        .map(|c| format!("{c}\n"))
        .collect();
    members.push((
        "cifar-10-batches-bin/batches.meta.txt".to_owned(),
        names.into_bytes(),
    ));
    for (path, bytes) in &members {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, path, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()?.flush()?;
    drop(members);

    let (data, seconds) = best_time(|| load(CifarKind::Cifar10, dir.path(), options))?;
    println!(
        "reading a full-size archive in place ({:.1} MB, {} images): {seconds:.2} s, best of {REPEATS}",
        megabytes(&archive)?,
        data.train.len() + data.test.len(),
    );
    let (_, seconds) = best_time(|| md5_of_file(&archive))?;
    println!("its md5 (the note on an unofficial archive when verbose): {seconds:.2} s");
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
