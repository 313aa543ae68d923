//! [`EpochLoader`]: burn's `DataLoader` over a [`CifarDataset`] with exact, resumable epochs.
//!
//! burn's own loader cannot drop a last partial batch and its shuffle generator cannot be
//! restored on resume. Here each call to `iter()` runs the next epoch, whose order is a pure
//! function of (seed, epoch) and whose augmentation is a pure function of (seed, epoch, index),
//! so a run resumed at epoch k sees exactly what an uninterrupted run saw, with any number of
//! workers.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::Device;
use rand::seq::SliceRandom;

use crate::batch::{CifarBatch, CifarBatcher, CifarDataset};
use crate::error::{CifarError, Result};
use crate::seed::{Purpose, rng_for};

/// Batches each worker may build ahead of the consumer.
const PREFETCH_PER_WORKER: usize = 2;

/// The first epoch's number unless told otherwise; burn-train numbers epochs from 1 too, so
/// its epoch numbers can be passed to [`EpochLoader::with_start_epoch`] unchanged.
pub const FIRST_EPOCH: usize = 1;

/// A data loader whose every `iter()` is one epoch, reproducible from (seed, epoch).
///
/// With `shuffle`, `drop_last` and an augmenting batcher it is the training loader; without
/// them the evaluation loader. Clones made by `to_device` share the epoch counter; slices
/// (`slice`) count their own epochs from the current one.
#[derive(Debug, Clone)]
pub struct EpochLoader {
    dataset: CifarDataset,
    batcher: Arc<CifarBatcher>,
    positions: Range<usize>,
    batch_size: usize,
    shuffle: bool,
    drop_last: bool,
    /// The devices the loader will be split across (`slice`); see [`Self::with_shards`].
    shards: usize,
    num_workers: usize,
    seed: u64,
    device: Device,
    next_epoch: Arc<AtomicUsize>,
}

impl EpochLoader {
    /// A loader over `dataset` in batches of `batch_size` on `device`, in order, keeping a
    /// last partial batch, without workers, starting at [`FIRST_EPOCH`].
    pub fn new(
        dataset: CifarDataset,
        batcher: CifarBatcher,
        batch_size: usize,
        device: &Device,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(CifarError::ZeroBatchSize);
        }
        let positions = 0..dataset.len();
        let seed = batcher.seed();
        Ok(Self {
            dataset,
            batcher: Arc::new(batcher),
            positions,
            batch_size,
            shuffle: false,
            drop_last: false,
            shards: 1,
            num_workers: 0,
            seed,
            device: device.clone(),
            next_epoch: Arc::new(AtomicUsize::new(FIRST_EPOCH)),
        })
    }

    /// The SPEC's training loader: shuffled, last partial batch dropped, flip + crop
    /// augmentation and CIFAR-10 normalisation, all seeded by `seed`.
    pub fn train(
        dataset: CifarDataset,
        batch_size: usize,
        num_workers: usize,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        let batcher = CifarBatcher::train(seed);
        Self::train_with(dataset, batcher, batch_size, num_workers, device)
    }

    /// A training loader (shuffled, the last partial batch dropped) whose batches `batcher`
    /// augments: a configured recipe's (see [`CifarBatcher::recipe`]).
    pub fn train_with(
        dataset: CifarDataset,
        batcher: CifarBatcher,
        batch_size: usize,
        num_workers: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self::new(dataset, batcher, batch_size, device)?
            .shuffle(true)
            .drop_last(true)
            .num_workers(num_workers))
    }

    /// The SPEC's evaluation loader: in order, every image, no augmentation.
    pub fn eval(
        dataset: CifarDataset,
        batch_size: usize,
        num_workers: usize,
        device: &Device,
    ) -> Result<Self> {
        Ok(Self::new(dataset, CifarBatcher::eval(), batch_size, device)?.num_workers(num_workers))
    }

    /// Reshuffle every epoch.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Leave out the last batch of an epoch when it is not full.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// With `drop_last`, cut each epoch to a multiple of `shards` batches, so that splitting
    /// the loader into `shards` equal slices (burn-train's multi-device training does) gives
    /// every slice the same number of full batches. Slices are not sharded further.
    pub fn with_shards(mut self, shards: usize) -> Self {
        self.shards = shards.max(1);
        self
    }

    /// Threads that build batches ahead of the consumer; 0 builds them on the caller's thread.
    pub fn num_workers(mut self, num_workers: usize) -> Self {
        self.num_workers = num_workers;
        self
    }

    /// Number the next epoch `epoch`: a run resumed at epoch k passes k.
    pub fn with_start_epoch(self, epoch: usize) -> Self {
        self.set_next_epoch(epoch);
        self
    }

    /// The number of the epoch the next `iter()` runs.
    pub fn next_epoch(&self) -> usize {
        self.next_epoch.load(Ordering::SeqCst)
    }

    /// Sets the number of the epoch the next `iter()` runs.
    pub fn set_next_epoch(&self, epoch: usize) {
        self.next_epoch.store(epoch, Ordering::SeqCst);
    }

    /// Images per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Batches per epoch.
    pub fn num_batches(&self) -> usize {
        self.num_items().div_ceil(self.batch_size)
    }

    /// The batcher.
    pub fn batcher(&self) -> &CifarBatcher {
        &self.batcher
    }

    /// Dataset indices in the order epoch `epoch` visits them (after `drop_last`).
    pub fn epoch_order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = self.positions.clone().collect();
        if self.shuffle {
            order.shuffle(&mut rng_for(self.seed, Purpose::Shuffle, &[epoch as u64]));
        }
        order.truncate(self.num_items());
        order
    }

    fn spawn_workers(plan: &Arc<EpochPlan>, count: usize) -> Option<Workers> {
        let mut receivers = Vec::with_capacity(count);
        let mut handles = Vec::with_capacity(count);
        for worker in 0..count {
            let (sender, receiver) = sync_channel(PREFETCH_PER_WORKER);
            let plan = Arc::clone(plan);
            let spawned = std::thread::Builder::new()
                .name(format!("cifar-loader-{worker}"))
                .spawn(move || plan.produce(worker, count, sender));
            match spawned {
                Ok(handle) => {
                    receivers.push(receiver);
                    handles.push(handle);
                }
                Err(_) => {
                    // Fewer threads than asked would change nothing but speed, but the batch
                    // assignment assumes all of them: fall back to building on the caller.
                    drop(Workers { receivers, handles });
                    return None;
                }
            }
        }
        Some(Workers { receivers, handles })
    }
}

impl DataLoader<CifarBatch> for EpochLoader {
    /// Starts the next epoch.
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<CifarBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        let order = self.epoch_order(epoch);
        let num_batches = order.len().div_ceil(self.batch_size);
        let plan = Arc::new(EpochPlan {
            dataset: self.dataset.clone(),
            batcher: Arc::clone(&self.batcher),
            order,
            batch_size: self.batch_size,
            epoch,
            device: self.device.clone(),
        });
        let workers = if self.num_workers > 0 && num_batches > 1 {
            Self::spawn_workers(&plan, self.num_workers.min(num_batches))
        } else {
            None
        };
        Box::new(EpochIterator {
            plan,
            workers,
            next_batch: 0,
            num_batches,
            items_done: 0,
        })
    }

    /// Items per epoch, after `drop_last`.
    fn num_items(&self) -> usize {
        let len = self.positions.len();
        if self.drop_last {
            let group = self.batch_size * self.shards;
            len / group * group
        } else {
            len
        }
    }

    /// The same loader on `device`, sharing the epoch counter.
    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<CifarBatch>> {
        Arc::new(Self {
            device: device.clone(),
            ..self.clone()
        })
    }

    /// The loader restricted to dataset positions `start..end` of this loader (each epoch
    /// shuffles within them), counting epochs on its own from the current one.
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<CifarBatch>> {
        let first = self
            .positions
            .start
            .saturating_add(start)
            .min(self.positions.end);
        let last = self
            .positions
            .start
            .saturating_add(end)
            .clamp(first, self.positions.end);
        let mut slice = self.clone();
        slice.positions = first..last;
        slice.shards = 1;
        slice.next_epoch = Arc::new(AtomicUsize::new(self.next_epoch()));
        Arc::new(slice)
    }
}

/// Everything one epoch needs, shared with its workers.
struct EpochPlan {
    dataset: CifarDataset,
    batcher: Arc<CifarBatcher>,
    order: Vec<usize>,
    batch_size: usize,
    epoch: usize,
    device: Device,
}

type BatchResult = std::result::Result<CifarBatch, DatasetError>;

impl EpochPlan {
    fn items_in(&self, batch: usize) -> &[usize] {
        let start = (batch * self.batch_size).min(self.order.len());
        let end = (start + self.batch_size).min(self.order.len());
        &self.order[start..end]
    }

    fn build(&self, batch: usize) -> BatchResult {
        let items = self
            .items_in(batch)
            .iter()
            .map(|&index| self.dataset.get(index))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(self
            .batcher
            .batch_for_epoch(&items, self.epoch, &self.device))
    }

    /// Worker `worker` of `count` builds batches worker, worker + count, ... in order; the
    /// consumer reads them round-robin, so batches arrive in epoch order.
    fn produce(&self, worker: usize, count: usize, sender: SyncSender<BatchResult>) {
        let num_batches = self.order.len().div_ceil(self.batch_size);
        for batch in (worker..num_batches).step_by(count) {
            if sender.send(self.build(batch)).is_err() {
                return;
            }
        }
    }
}

struct Workers {
    receivers: Vec<Receiver<BatchResult>>,
    handles: Vec<JoinHandle<()>>,
}

impl Drop for Workers {
    /// Hangs up first so that workers blocked on a full channel stop, then waits for them.
    fn drop(&mut self) {
        self.receivers.clear();
        for handle in self.handles.drain(..) {
            // A worker that panicked has already been reported through its closed channel.
            let _ = handle.join();
        }
    }
}

struct EpochIterator {
    plan: Arc<EpochPlan>,
    workers: Option<Workers>,
    next_batch: usize,
    num_batches: usize,
    items_done: usize,
}

impl Iterator for EpochIterator {
    type Item = BatchResult;

    fn next(&mut self) -> Option<BatchResult> {
        if self.next_batch >= self.num_batches {
            return None;
        }
        let batch = self.next_batch;
        self.next_batch += 1;
        let result = match &self.workers {
            Some(workers) => {
                let receiver = &workers.receivers[batch % workers.receivers.len()];
                receiver
                    .recv()
                    .unwrap_or_else(|_| Err(DatasetError::new(CifarError::WorkerStopped { batch })))
            }
            None => self.plan.build(batch),
        };
        if result.is_ok() {
            self.items_done += self.plan.items_in(batch).len();
        } else {
            self.next_batch = self.num_batches;
        }
        Some(result)
    }
}

impl DataLoaderIterator<CifarBatch> for EpochIterator {
    fn progress(&self) -> Progress {
        Progress::new(
            self.items_done,
            self.plan.order.len(),
            Some("items".to_owned()),
        )
    }
}
