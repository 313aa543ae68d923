//! Folder data sets through `load_folder`: the layout rules, the split of a single folder, the
//! cache (read again, rebuilt when a file changes or the cache is damaged), and the errors that
//! name the folder or file at fault. The images are uncompressed BMPs written here, so every
//! expected pixel is known.
use std::path::{Path, PathBuf};

use cnnzoo_cifar::{CifarError, FolderOptions, load_folder, split_indices};

use crate::bmp::bmp;

/// A BMP of one colour.
fn uniform(width: usize, height: usize, colour: [u8; 3]) -> Vec<u8> {
    bmp(width, height, &colour.repeat(width * height))
}

/// `count` images of the colour `colour` in `dir/class/`, of varying sizes.
fn write_class(dir: &Path, class: &str, count: usize, colour: [u8; 3]) {
    let class_dir = dir.join(class);
    std::fs::create_dir_all(&class_dir).unwrap();
    for n in 0..count {
        let (width, height) = [(32, 32), (48, 40), (20, 64)][n % 3];
        std::fs::write(
            class_dir.join(format!("{n:03}.bmp")),
            uniform(width, height, colour),
        )
        .unwrap();
    }
}

/// A folder `dir/photos` with one sub-folder of images per `(class, count, colour)`.
fn photos(dir: &Path, classes: &[(&str, usize, [u8; 3])]) -> PathBuf {
    let root = dir.join("photos");
    for &(class, count, colour) in classes {
        write_class(&root, class, count, colour);
    }
    root
}

fn options(cache: &Path) -> FolderOptions {
    FolderOptions {
        image_size: 16,
        crop_pct: 0.875,
        val_fraction: 0.2,
        seed: 5,
        skip_bad_images: false,
        cache_dir: cache.to_path_buf(),
        verbose: false,
    }
}

const RED: [u8; 3] = [200, 10, 10];
const BLUE: [u8; 3] = [10, 20, 220];

#[test]
fn one_folder_is_split_by_the_seed_and_its_pixels_and_statistics_are_the_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = photos(dir.path(), &[("red", 12, RED), ("blue", 8, BLUE)]);
    std::fs::write(root.join("README.txt"), "not a class").unwrap();
    let data = load_folder(&root, &options(&dir.path().join("cache"))).unwrap();
    assert_eq!(data.classes, ["blue", "red"]);
    assert_eq!(
        (data.train.len(), data.val.len(), data.test.len()),
        (16, 4, 0)
    );
    assert_eq!(data.decoded, 20);
    assert_eq!(data.train.side, 16);
    // Files are listed blue then red, in name order: the split is split_indices' over them.
    let (train, val) = split_indices(20, 0.2, 5).unwrap();
    let label = |i: usize| u8::from(i >= 8);
    assert_eq!(
        data.train.labels,
        train.iter().map(|&i| label(i)).collect::<Vec<_>>()
    );
    assert_eq!(
        data.val.labels,
        val.iter().map(|&i| label(i)).collect::<Vec<_>>()
    );
    // A one-colour image stays that colour through the resize and crop.
    for (index, &label) in data.train.labels.iter().enumerate() {
        let colour = if label == 0 { BLUE } else { RED };
        let image = data.train.image(index).unwrap();
        for (channel, plane) in image.chunks_exact(16 * 16).enumerate() {
            assert!(plane.iter().all(|&p| p == colour[channel]), "image {index}");
        }
    }
    // The statistics are the training images': a mix of two colours in the split's proportion.
    let reds = data.train.labels.iter().filter(|&&l| l == 1).count() as f32 / 16.0;
    for channel in 0..3 {
        let mean =
            (reds * f32::from(RED[channel]) + (1.0 - reds) * f32::from(BLUE[channel])) / 255.0;
        assert!((data.normalization.mean[channel] - mean).abs() < 1e-5);
    }
}

#[test]
fn the_cache_is_read_again_and_rebuilt_when_a_file_changes_or_it_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write_class(&root.join("train"), "a", 6, RED);
    write_class(&root.join("train"), "b", 6, BLUE);
    write_class(&root.join("val"), "a", 2, RED);
    write_class(&root.join("val"), "b", 2, BLUE);
    let options = options(&dir.path().join("cache"));
    let first = load_folder(&root, &options).unwrap();
    assert_eq!(first.decoded, 16);
    assert_eq!((first.train.len(), first.val.len()), (12, 4));
    // A copy: the test overwrites a cache in place below, which cnnzoo itself never does to a
    // mapped file.
    let first_pixels = first.train.images.to_vec();
    let again = load_folder(&root, &options).unwrap();
    assert_eq!(again.decoded, 0);
    assert_eq!(again.train, first.train);
    assert_eq!(again.caches.len(), 2);
    let total: u64 = again.caches.iter().map(|(_, bytes)| bytes).sum();
    assert!(total > 16 * 3 * 16 * 16, "{total}");

    // A changed file changes the key of its split only.
    std::fs::write(root.join("val/a/000.bmp"), uniform(30, 30, BLUE)).unwrap();
    let changed = load_folder(&root, &options).unwrap();
    assert_eq!(changed.decoded, 4);
    assert_eq!(changed.val.image(0).unwrap()[0], BLUE[0]);

    // A cache cut short is decoded again rather than read.
    let train_cache: PathBuf = changed.caches[0].0.clone();
    let bytes = std::fs::read(&train_cache).unwrap();
    std::fs::write(&train_cache, &bytes[..bytes.len() / 2]).unwrap();
    drop((first, again));
    let repaired = load_folder(&root, &options).unwrap();
    assert_eq!(repaired.decoded, 12);
    assert_eq!(repaired.train.images[..], first_pixels[..]);
}

#[test]
fn undecodable_files_are_named_or_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let root = photos(dir.path(), &[("a", 5, RED), ("b", 5, BLUE)]);
    std::fs::write(root.join("b/zz-broken.png"), b"\x89PNG\r\n\x1a\nno").unwrap();
    let mut options = options(&dir.path().join("cache"));
    options.val_fraction = 0.0;
    let error = load_folder(&root, &options).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, CifarError::BadImages { .. }), "{message}");
    assert!(
        message.contains("zz-broken.png: cannot decode the PNG"),
        "{message}"
    );
    options.skip_bad_images = true;
    let data = load_folder(&root, &options).unwrap();
    assert_eq!(data.train.len(), 10);
    assert_eq!(data.skipped.len(), 1);
    assert!(data.skipped[0].0.ends_with("b/zz-broken.png"));
}

#[test]
fn layouts_imagefolder_cannot_read_are_errors_naming_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let message = |root: &Path| load_folder(root, &options(&cache)).unwrap_err().to_string();

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(
        message(&empty).contains("no class folders"),
        "{}",
        message(&empty)
    );

    let single = dir.path().join("single");
    write_class(&single, "only", 3, RED);
    assert!(message(&single).contains("only one class folder ('only')"));

    let no_images = dir.path().join("no-images");
    write_class(&no_images, "a", 3, RED);
    std::fs::create_dir_all(no_images.join("b")).unwrap();
    let text = message(&no_images);
    assert!(
        text.contains("no-images/b") && text.contains("no image files"),
        "{text}"
    );

    let stray = dir.path().join("stray");
    write_class(&stray.join("train"), "a", 3, RED);
    write_class(&stray.join("train"), "b", 3, BLUE);
    write_class(&stray.join("val"), "c", 1, RED);
    let text = message(&stray);
    assert!(text.contains("class 'c' is not a class of"), "{text}");
}

#[test]
fn an_image_of_the_training_size_is_cached_pixel_for_pixel_channels_first() {
    let dir = tempfile::tempdir().unwrap();
    let root = photos(dir.path(), &[("b", 1, BLUE)]);
    let rgb: Vec<u8> = (0..16 * 16 * 3).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::create_dir_all(root.join("a")).unwrap();
    std::fs::write(root.join("a/gradient.bmp"), bmp(16, 16, &rgb)).unwrap();
    let mut options = options(&dir.path().join("cache"));
    options.val_fraction = 0.0;
    let data = load_folder(&root, &options).unwrap();
    let channels_first: Vec<u8> = (0..3)
        .flat_map(|c| rgb.iter().skip(c).step_by(3).copied())
        .collect();
    assert_eq!(data.train.labels[0], 0);
    assert_eq!(data.train.image(0).unwrap(), &channels_first[..]);
}
