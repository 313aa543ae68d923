//! The seeded train/validation split of the training images.

use rand::seq::SliceRandom;

use crate::error::{CifarError, Result};
use crate::seed::{Purpose, rng_for};
use crate::set::CifarSet;

/// The reference's validation share: 5,000 of the 50,000 training images.
pub const DEFAULT_VAL_FRACTION: f64 = 0.1;

/// Number of validation images for `total` images: `round(total * val_fraction)`, halves
/// rounded up (50,000 × 0.1 = 5,000; the mini set's 4,065 × 0.1 = 406.5 gives 407).
pub fn val_count(total: usize, val_fraction: f64) -> usize {
    (total as f64 * val_fraction).round() as usize
}

/// Splits `set` into (train, validation) with a permutation seeded by `seed`.
///
/// Which images go to validation depends only on `seed` and the set's size; both parts keep
/// the images in their original order. `val_fraction` must be in [0, 1); 0 gives an empty
/// validation set.
pub fn split_train_val(
    set: &CifarSet,
    val_fraction: f64,
    seed: u64,
) -> Result<(CifarSet, CifarSet)> {
    let (train, val) = split_indices(set.len(), val_fraction, seed)?;
    Ok((set.subset(&train), set.subset(&val)))
}

/// The positions of `total` items that [`split_train_val`] puts in (train, validation), each in
/// increasing order: what a folder data set splits its file list with.
pub fn split_indices(
    total: usize,
    val_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&val_fraction) {
        return Err(CifarError::BadValFraction(val_fraction));
    }
    let n_val = val_count(total, val_fraction);
    if n_val >= total && total > 0 {
        return Err(CifarError::NoTrainingImages {
            val_fraction,
            total,
        });
    }
    let mut order: Vec<usize> = (0..total).collect();
    order.shuffle(&mut rng_for(seed, Purpose::Split, &[total as u64]));
    let (val, train) = order.split_at_mut(n_val);
    val.sort_unstable();
    train.sort_unstable();
    Ok((train.to_vec(), val.to_vec()))
}
