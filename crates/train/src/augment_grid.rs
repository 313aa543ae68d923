//! `cnnzoo augment`: a grid of training images as a config's recipe augments them (the original
//! in the first column, then one augmented version per column, each from another epoch's random
//! draws), so that a user can check a recipe by eye before training with it. Mixup and CutMix mix
//! the images of a row's column with each other, as the batches of a run do.
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::Device;
use cnnzoo_cifar::{CifarBatch, CifarItem, Normalization};

use crate::atomic;
use crate::config::TrainConfig;
use crate::data::{self, DataRequest};
use crate::report::grid::image_grid;

/// The side each image is drawn at, at least: 32x32 images three times larger, a folder's
/// images of 96 pixels and more as they are.
const CELL_SIDE: usize = 96;

/// What `cnnzoo augment` is asked to draw.
#[derive(clap::Args, Clone, Debug)]
pub struct AugmentRequest {
    /// The training config whose `[augment]` section (and mixing) to draw.
    #[arg(long)]
    pub config: PathBuf,
    /// The PNG file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Training images, one per row.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub images: u64,
    /// Augmented versions of each image, one per column after the original.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=32))]
    pub samples: u64,
    /// Folder with the data set (default: the config's, else ./data or CNNZOO_DATA).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Draws the grid and writes it to `request.out`; returns its path.
pub fn run(request: &AugmentRequest) -> Result<PathBuf> {
    let config = TrainConfig::from_file(&request.config)?;
    config
        .validate()
        .with_context(|| format!("invalid configuration from {}", request.config.display()))?;
    let data_dir = match &request.data_dir {
        Some(dir) => dir.clone(),
        None => config.data_dir(),
    };
    let entry = cnnzoo_models::lookup(&config.model)?;
    let data = data::load(&DataRequest::for_config(
        &config,
        data_dir,
        entry.input_size,
    )?)?;
    let (rows, samples) = (request.images as usize, request.samples as usize);
    if data.train.len() < rows {
        bail!(
            "--images {rows}: the training split holds only {} images",
            data.train.len()
        );
    }
    let items: Vec<CifarItem> = (0..rows)
        .map(|index| CifarItem {
            image: data.train.image(index).expect("in range").to_vec(),
            label: usize::from(data.train.labels[index]),
            index,
        })
        .collect();
    let batcher = data::train_batcher(&config, data.classes.len(), data.normalization)?;
    let device = Device::flex();
    let columns: Vec<Vec<Vec<u8>>> = (1..=samples)
        .map(|epoch| {
            let batch = batcher.batch_for_epoch(&items, epoch, &device);
            pixels_of(batch, batcher.normalization())
        })
        .collect::<Result<_>>()?;
    let mut cells = Vec::with_capacity(rows * (samples + 1));
    for (row, item) in items.iter().enumerate() {
        cells.push(item.image.clone());
        cells.extend(columns.iter().map(|column| column[row].clone()));
    }
    let side = data.train.side;
    let png = image_grid(&cells, (rows, samples + 1), side, (CELL_SIDE / side).max(1))?;
    atomic::write_bytes(&request.out, &png)?;
    Ok(request.out.clone())
}

/// The batch's images back in uint8 pixels: normalisation undone, rounded and clamped.
fn pixels_of(batch: CifarBatch, normalization: &Normalization) -> Result<Vec<Vec<u8>>> {
    let batch_dims = batch.images.dims();
    let values = batch
        .images
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("cannot read the augmented images: {e:?}"))?;
    let [_, channels, height, width] = batch_dims;
    Ok(values
        .chunks_exact(channels * height * width)
        .map(|image| {
            let planes = image.chunks_exact(height * width).enumerate();
            planes
                .flat_map(|(channel, plane)| {
                    let (mean, std) = (normalization.mean[channel], normalization.std[channel]);
                    plane
                        .iter()
                        .map(move |&v| ((v * std + mean) * 255.0).round().clamp(0.0, 255.0) as u8)
                })
                .collect()
        })
        .collect())
}
