//! burn integration: dataset, batcher and the epoch loader on the flex CPU device.

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use cnnzoo_cifar::{
    CIFAR10_MEAN, CIFAR10_STD, CifarBatch, CifarBatcher, CifarDataset, CifarSet, EpochLoader,
    IMAGE_BYTES, split_train_val,
};

use crate::common::{mini, synthetic_image};

fn device() -> Device {
    Device::flex()
}

fn mini_train() -> CifarDataset {
    CifarDataset::new(mini().train.clone())
}

/// A small synthetic set: image i is `synthetic_image(i)`, label i % 10.
fn synthetic_set(len: usize) -> CifarSet {
    CifarSet::cifar(
        (0..len).flat_map(synthetic_image).collect(),
        (0..len).map(|i| (i % 10) as u8).collect(),
        (0..10).map(|c| format!("class {c}")).collect(),
    )
}

struct Plain {
    shape: Vec<usize>,
    images: Vec<f32>,
    targets: Vec<i64>,
}

fn plain(batch: CifarBatch) -> Plain {
    Plain {
        shape: batch.images.dims().to_vec(),
        images: batch
            .images
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 images"),
        targets: batch
            .targets
            .into_data()
            .try_to_vec_as::<i64>()
            .expect("integer targets"),
    }
}

fn epoch(loader: &EpochLoader) -> Vec<Plain> {
    loader
        .iter()
        .map(|batch| plain(batch.expect("a batch")))
        .collect()
}

#[test]
fn dataset_items_and_bounds() {
    let dataset = mini_train();
    assert_eq!(dataset.len(), 4065);
    let item = dataset.get(17).expect("item 17");
    assert_eq!(item.index, 17);
    assert_eq!(item.label, usize::from(mini().train.labels[17]));
    assert_eq!(&item.image[..], mini().train.image(17).expect("image"));
    let message = dataset.get(4065).expect_err("past the end").to_string();
    assert!(message.contains("index 4065"), "{message}");
}

#[test]
fn batches_have_the_spec_shapes_and_normalised_values() {
    let set = synthetic_set(5);
    let dataset = CifarDataset::new(set.clone());
    let items: Vec<_> = (0..5).map(|i| dataset.get(i).expect("item")).collect();

    let batch = plain(CifarBatcher::eval().batch(items.clone(), &device()));
    assert_eq!(batch.shape, [5, 3, 32, 32]);
    assert_eq!(batch.targets, [0, 1, 2, 3, 4]);
    // Image 3, green channel, row 7, column 11, worked out by hand.
    let pixel = set.image(3).expect("image")[1024 + 7 * 32 + 11];
    let expected = (f64::from(pixel) / 255.0 - 0.482_158_41) / 0.243_485_13;
    let got = batch.images[3 * IMAGE_BYTES + 1024 + 7 * 32 + 11];
    assert!(
        (f64::from(got) - expected).abs() < 1e-5,
        "{got} vs {expected}"
    );
    assert_eq!(CIFAR10_MEAN[1], 0.482_158_41);
    assert_eq!(CIFAR10_STD[1], 0.243_485_13);

    // Augmented batches keep the shapes, stay in the normalised range and change pixels.
    let augmented = plain(CifarBatcher::train(42).batch(items, &device()));
    assert_eq!(augmented.shape, [5, 3, 32, 32]);
    assert_eq!(augmented.targets, [0, 1, 2, 3, 4]);
    for (i, value) in augmented.images.iter().enumerate() {
        let c = i / 1024 % 3;
        let low = (0.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c] - 1e-4;
        let high = (1.0 - CIFAR10_MEAN[c]) / CIFAR10_STD[c] + 1e-4;
        assert!((low..=high).contains(value), "value {i} = {value}");
    }
    assert_ne!(augmented.images, batch.images);
}

#[test]
fn drop_last_and_progress() {
    let (train, _) = split_train_val(&mini().train, 0.1, 42).expect("split");
    let dataset = CifarDataset::new(train);
    // 3,658 training images: 28 full batches of 128 (3,584 images), 74 left over.
    let training = EpochLoader::train(dataset.clone(), 128, 0, 42, &device()).expect("loader");
    assert_eq!(training.num_items(), 3584);
    assert_eq!(training.num_batches(), 28);
    let mut iterator = training.iter();
    let mut count = 0;
    while let Some(batch) = iterator.next() {
        assert_eq!(batch.expect("batch").images.dims(), [128, 3, 32, 32]);
        count += 1;
        let progress = iterator.progress();
        assert_eq!(
            (progress.items_processed, progress.items_total),
            (count * 128, 3584)
        );
    }
    assert_eq!(count, 28);
    assert!(iterator.progress().is_completed());

    let evaluation = EpochLoader::eval(dataset, 128, 0, &device()).expect("loader");
    assert_eq!(evaluation.num_items(), 3658);
    let batches = epoch(&evaluation);
    assert_eq!(batches.len(), 29);
    assert_eq!(batches[28].shape, [74, 3, 32, 32]);
}

#[test]
fn eval_loader_is_in_order_and_the_same_every_epoch() {
    let set = synthetic_set(70);
    let loader =
        EpochLoader::eval(CifarDataset::new(set.clone()), 32, 2, &device()).expect("loader");
    let first = epoch(&loader);
    let second = epoch(&loader);
    let targets: Vec<i64> = first.iter().flat_map(|b| b.targets.clone()).collect();
    let expected: Vec<i64> = set.labels.iter().map(|&l| i64::from(l)).collect();
    assert_eq!(targets, expected);
    assert_eq!(first.len(), 3);
    for (a, b) in first.iter().zip(&second) {
        assert_eq!(a.images, b.images);
    }
}

#[test]
fn batches_do_not_depend_on_the_number_of_workers() {
    let dataset = CifarDataset::new(synthetic_set(300));
    let run = |workers: usize| {
        let loader =
            EpochLoader::train(dataset.clone(), 32, workers, 7, &device()).expect("loader");
        (epoch(&loader), epoch(&loader))
    };
    let (inline_1, inline_2) = run(0);
    assert_eq!(inline_1.len(), 9);
    for workers in [1, 2, 3] {
        let (epoch_1, epoch_2) = run(workers);
        for (a, b) in epoch_1
            .iter()
            .zip(&inline_1)
            .chain(epoch_2.iter().zip(&inline_2))
        {
            assert_eq!(a.targets, b.targets, "{workers} workers");
            assert_eq!(a.images, b.images, "{workers} workers");
        }
    }
    // Two epochs differ in order and in crops.
    assert_ne!(inline_1[0].targets, inline_2[0].targets);
}

#[test]
fn a_resumed_loader_replays_the_epoch_it_resumes_at() {
    let dataset = CifarDataset::new(synthetic_set(200));
    let uninterrupted = EpochLoader::train(dataset.clone(), 64, 2, 3, &device()).expect("loader");
    assert_eq!(uninterrupted.next_epoch(), 1);
    let epochs: Vec<Vec<Plain>> = (0..3).map(|_| epoch(&uninterrupted)).collect();
    assert_eq!(uninterrupted.next_epoch(), 4);

    let resumed = EpochLoader::train(dataset, 64, 1, 3, &device())
        .expect("loader")
        .with_start_epoch(3);
    assert_eq!(resumed.epoch_order(3), uninterrupted.epoch_order(3));
    let replay = epoch(&resumed);
    for (a, b) in replay.iter().zip(&epochs[2]) {
        assert_eq!(a.targets, b.targets);
        assert_eq!(a.images, b.images);
    }
    assert_ne!(epochs[0][0].targets, epochs[1][0].targets);
    assert_eq!(resumed.next_epoch(), 4);
}

#[test]
fn to_device_shares_the_epoch_and_slices_cover_the_epoch() {
    let set = synthetic_set(100);
    let loader = EpochLoader::train(CifarDataset::new(set), 10, 0, 5, &device()).expect("loader");
    let moved: Arc<dyn DataLoader<CifarBatch>> = loader.to_device(&device());
    assert_eq!(moved.iter().count(), 10);
    assert_eq!(
        loader.next_epoch(),
        2,
        "the moved loader advanced the shared epoch"
    );

    // As burn's split_dataloader does for two devices.
    let halves = [loader.slice(0, 50), loader.slice(50, 100)];
    let mut seen: Vec<i64> = Vec::new();
    for half in &halves {
        assert_eq!(half.num_items(), 50);
        for batch in half.iter() {
            seen.extend(plain(batch.expect("batch")).targets);
        }
    }
    seen.sort_unstable();
    let mut expected: Vec<i64> = (0..100).map(|i| i % 10).collect();
    expected.sort_unstable();
    assert_eq!(seen, expected);
    assert_eq!(loader.next_epoch(), 2, "slices count their own epochs");
    assert_eq!(loader.slice(90, 200).num_items(), 10);
}

#[test]
fn a_sharded_loader_splits_into_slices_of_equal_full_batches() {
    use burn::data::dataloader::split::split_dataloader;
    // 103 images, batches of 8 on 3 devices: 24 images a global step, 4 steps (96 images).
    let loader = EpochLoader::train(CifarDataset::new(synthetic_set(103)), 8, 0, 5, &device())
        .expect("loader")
        .with_shards(3);
    assert_eq!(loader.num_items(), 96);
    let slices = split_dataloader(Arc::new(loader), &[device(), device(), device()]);
    let mut seen: Vec<i64> = Vec::new();
    for slice in &slices {
        assert_eq!(slice.num_items(), 32);
        let batches: Vec<Plain> = slice.iter().map(|b| plain(b.expect("batch"))).collect();
        assert_eq!(batches.len(), 4, "every device takes as many steps");
        for batch in batches {
            assert_eq!(batch.shape[0], 8);
            seen.extend(batch.targets);
        }
    }
    assert_eq!(seen.len(), 96);

    // 20 images in batches of 4 over 3 devices: unsharded, burn's split gives the slices 6, 6
    // and 8 of the 20 images, so the last device would take a step alone, with a gradient the
    // others do not share; sharded, 12 images in three single batches.
    let batches_per_slice = |shards: usize| -> Vec<usize> {
        let loader = EpochLoader::train(CifarDataset::new(synthetic_set(20)), 4, 0, 5, &device())
            .expect("loader")
            .with_shards(shards);
        split_dataloader(Arc::new(loader), &[device(), device(), device()])
            .iter()
            .map(|slice| slice.iter().count())
            .collect()
    };
    assert_eq!(batches_per_slice(1), [1, 1, 2]);
    assert_eq!(batches_per_slice(3), [1, 1, 1]);
}

#[test]
fn dropping_an_epoch_early_stops_its_workers() {
    let loader = EpochLoader::train(CifarDataset::new(synthetic_set(400)), 16, 2, 1, &device())
        .expect("loader");
    let mut iterator = loader.iter();
    assert!(iterator.next().is_some_and(|batch| batch.is_ok()));
    drop(iterator);
    // The next epoch starts cleanly.
    assert_eq!(loader.iter().count(), 25);
}

#[test]
fn zero_batch_size_is_an_error() {
    let message = EpochLoader::eval(CifarDataset::new(synthetic_set(3)), 0, 0, &device())
        .expect_err("zero batch size")
        .to_string();
    assert!(message.contains("batch_size"), "{message}");
}
