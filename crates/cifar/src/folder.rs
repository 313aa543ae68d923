//! Folder data sets with torchvision's `ImageFolder` conventions: `root/<class>/<image>`, class
//! indices from the sorted folder names, and either `root/train/...` beside `root/val/...`
//! (optionally `root/test/...`) or one folder split by `val_fraction` with the run's seed.
//!
//! Every split is decoded once into a memory-mapped cache (see `folder_cache`) at the run's
//! `image_size`: the training images as the largest centred square resized to `image_size`,
//! which the training augmentation then crops from, and the validation and test images as
//! torchvision's evaluation protocol leaves them (shorter side resized to
//! `image_size / crop_pct`, centre crop).
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::augment::Normalization;
use crate::error::{CifarError, Result};
use crate::folder_cache::{self, CachedSplit};
use crate::set::CifarSet;
use crate::split::split_indices;

/// The file extensions (any case) read as images; other files are ignored, as `ImageFolder`
/// ignores them.
pub const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "bmp", "webp"];

/// timm's and torchvision's evaluation crop: resize to `image_size / 0.875`, keep the centre.
pub const DEFAULT_CROP_PCT: f64 = 0.875;

/// Labels are stored in a byte, as CIFAR's are.
pub const MAX_FOLDER_CLASSES: usize = 256;

/// Environment variable naming the folder that holds the decoded-image caches.
pub const CACHE_DIR_ENV: &str = "CNNZOO_CACHE_DIR";

/// The side evaluation resizes the shorter side of an image to before its centre crop of
/// `image_size` (timm's `floor(image_size / crop_pct)`).
pub fn eval_resize(image_size: usize, crop_pct: f64) -> usize {
    ((image_size as f64 / crop_pct).floor() as usize).max(image_size)
}

/// The cache folder: [`CACHE_DIR_ENV`], else `$XDG_CACHE_HOME/cnnzoo`, else
/// `~/.cache/cnnzoo`, else `.cnnzoo-cache` here.
pub fn default_cache_dir() -> PathBuf {
    let from = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(dir) = from(CACHE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = from("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("cnnzoo");
    }
    match from("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("cnnzoo"),
        None => PathBuf::from(".cnnzoo-cache"),
    }
}

/// How a folder data set is read.
#[derive(Debug, Clone, PartialEq)]
pub struct FolderOptions {
    /// Side of the images the model sees.
    pub image_size: usize,
    /// Share of the evaluation resize that the centre crop keeps.
    pub crop_pct: f64,
    /// Share of a single folder's images held out for validation (ignored beside `root/val`).
    pub val_fraction: f64,
    /// Seeds the split of a single folder.
    pub seed: u64,
    /// Leave out (and count) files that cannot be decoded rather than failing.
    pub skip_bad_images: bool,
    /// Where the decoded images are cached.
    pub cache_dir: PathBuf,
    /// Print progress and what was decoded or read from the cache on stderr.
    pub verbose: bool,
}

/// One image file of a split, with what identifies its content for the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageFile {
    pub path: PathBuf,
    pub label: u8,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 where the system has none).
    pub modified: u128,
}

/// A folder data set read into (cached) sets.
#[derive(Debug, Clone)]
pub struct FolderData {
    pub train: CifarSet,
    pub val: CifarSet,
    /// Empty without a `test` folder.
    pub test: CifarSet,
    /// Class names in label order: the sorted folder names.
    pub classes: Vec<String>,
    /// Mean and standard deviation of the training images, computed when their cache was built.
    pub normalization: Normalization,
    /// Images decoded by this call (0 when every split came from the cache).
    pub decoded: usize,
    /// Files left out because they could not be decoded.
    pub skipped: Vec<(PathBuf, String)>,
    /// The cache files, with their sizes in bytes.
    pub caches: Vec<(PathBuf, u64)>,
    /// The data folder, as an absolute path.
    pub root: PathBuf,
}

/// Reads the folder data set at `root` (see the module docs), decoding only what no cache
/// holds yet.
pub fn load_folder(root: &Path, options: &FolderOptions) -> Result<FolderData> {
    if options.image_size == 0 {
        return Err(CifarError::Folder {
            path: root.to_path_buf(),
            message: "image_size must be at least 1 pixel".into(),
        });
    }
    let root = std::fs::canonicalize(root).map_err(|e| CifarError::io(root, e))?;
    let train_dir = root.join("train");
    let splits = train_dir.is_dir();
    let class_dir = if splits { &train_dir } else { &root };
    let classes = list_classes(class_dir)?;
    let all = list_files(class_dir, &classes, class_dir)?;
    let val_dir = root.join("val");
    let (train_files, val_files) = if splits && val_dir.is_dir() {
        (all, list_files(&val_dir, &classes, &train_dir)?)
    } else {
        let (train, val) = split_indices(all.len(), options.val_fraction, options.seed)?;
        let pick = |indices: Vec<usize>| indices.into_iter().map(|i| all[i].clone()).collect();
        (pick(train), pick(val))
    };
    let test_dir = root.join("test");
    let test_files = if splits && test_dir.is_dir() {
        list_files(&test_dir, &classes, &train_dir)?
    } else {
        Vec::new()
    };

    let eval = eval_resize(options.image_size, options.crop_pct);
    let train = folder_cache::load_or_build("train", &train_files, options.image_size, options)?;
    let val = folder_cache::load_or_build("val", &val_files, eval, options)?;
    let test = folder_cache::load_or_build("test", &test_files, eval, options)?;
    let splits = [&train, &val, &test];
    let skipped: Vec<(PathBuf, String)> = splits
        .iter()
        .flat_map(|split| split.skipped.iter().cloned())
        .collect();
    if !skipped.is_empty() {
        if !options.skip_bad_images {
            return Err(CifarError::BadImages { files: skipped });
        }
        if options.verbose {
            eprintln!(
                "cnnzoo: skipped {} image file(s) that cannot be decoded (skip_bad_images), e.g. {}: {}",
                skipped.len(),
                skipped[0].0.display(),
                skipped[0].1
            );
        }
    }
    let decoded = splits.iter().map(|split| split.decoded).sum();
    let caches = splits
        .iter()
        .filter(|split| !split.labels.is_empty())
        .map(|split| (split.path.clone(), split.bytes))
        .collect();
    let normalization = train.normalization;
    let set = |split: CachedSplit| CifarSet {
        images: split.images,
        labels: split.labels,
        classes: classes.clone(),
        side: options.image_size,
    };
    Ok(FolderData {
        train: set(train),
        val: set(val),
        test: set(test),
        classes: classes.clone(),
        normalization,
        decoded,
        skipped,
        caches,
        root,
    })
}

/// The class folders of `dir`, sorted by name as `ImageFolder` sorts them: at least two.
fn list_classes(dir: &Path) -> Result<Vec<String>> {
    let folder_error = |message: String| CifarError::Folder {
        path: dir.to_path_buf(),
        message,
    };
    let classes = class_folders(dir)?;
    match classes.len() {
        0 => Err(folder_error(
            "no class folders: a folder data set holds one folder of images per class (root/<class>/<image>), or train/ and val/ folders laid out so".into(),
        )),
        1 => Err(folder_error(format!(
            "only one class folder ('{}'): a classifier needs at least two",
            classes[0]
        ))),
        n if n > MAX_FOLDER_CLASSES => Err(folder_error(format!(
            "{n} class folders; cnnzoo reads up to {MAX_FOLDER_CLASSES}"
        ))),
        _ => Ok(classes),
    }
}

/// The names of the folders in `dir` (hidden ones left out), sorted.
fn class_folders(dir: &Path) -> Result<Vec<String>> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| CifarError::io(dir, e))? {
        let entry = entry.map_err(|e| CifarError::io(dir, e))?;
        if !entry.path().is_dir() {
            continue;
        }
        let name = entry.file_name();
        let name = name.to_str().ok_or_else(|| CifarError::Folder {
            path: entry.path(),
            message: "the class folder is not named in UTF-8, which checkpoints record names in"
                .into(),
        })?;
        if !name.starts_with('.') {
            classes.push(name.to_owned());
        }
    }
    classes.sort();
    Ok(classes)
}

/// The image files under `dir/<class>/` (searched recursively, in sorted order), labelled by
/// the class's index in `classes`. A class folder of `dir` that `classes` lacks is an error
/// naming `classes_from`, where the classes were read.
fn list_files(dir: &Path, classes: &[String], classes_from: &Path) -> Result<Vec<ImageFile>> {
    if dir != classes_from {
        for class in class_folders(dir)? {
            if !classes.contains(&class) {
                return Err(CifarError::Folder {
                    path: dir.join(&class),
                    message: format!(
                        "class '{class}' is not a class of {} (whose folders name the classes)",
                        classes_from.display()
                    ),
                });
            }
        }
    }
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let class_dir = dir.join(class);
        if !class_dir.is_dir() {
            continue;
        }
        let before = files.len();
        walk(&class_dir, label as u8, &mut files)?;
        if files.len() == before && dir == classes_from {
            return Err(CifarError::Folder {
                path: class_dir,
                message: format!(
                    "no image files ({}) in this class folder",
                    IMAGE_EXTENSIONS.join(", ")
                ),
            });
        }
    }
    Ok(files)
}

fn walk(dir: &Path, label: u8, files: &mut Vec<ImageFile>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| CifarError::io(dir, e))?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(|e| CifarError::io(dir, e))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, label, files)?;
            continue;
        }
        let is_image = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()));
        if !is_image {
            continue;
        }
        let metadata = std::fs::metadata(&path).map_err(|e| CifarError::io(&path, e))?;
        let modified = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_nanos());
        files.push(ImageFile {
            path,
            label,
            size: metadata.len(),
            modified,
        });
    }
    Ok(())
}
