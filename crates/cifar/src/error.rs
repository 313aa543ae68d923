//! The one error type of the crate: every message names the file or value at fault.

use std::path::PathBuf;

/// Everything that can go wrong between a data folder and a batch.
///
/// A `file` inside an archive (which is read in place) is named `ARCHIVE: FOLDER/FILE`, e.g.
/// `data/cifar-10-binary.tar.gz: cifar-10-batches-bin/data_batch_3.bin`.
#[derive(Debug, thiserror::Error)]
pub enum CifarError {
    /// Reading, writing, renaming or listing a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// A batch file is not a whole number of records.
    #[error("{}: {size} bytes is not a multiple of the {record_size}-byte record size", file.display())]
    BadBatchSize {
        /// The batch file.
        file: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The size of one record.
        record_size: usize,
    },

    /// A batch file holds no record at all.
    #[error("{}: the batch file is empty", file.display())]
    EmptyBatch {
        /// The batch file.
        file: PathBuf,
    },

    /// A record carries a label outside the data set's classes.
    #[error("{}: record {record} has {what} {label}, {dataset} {what}s are 0..={max}", file.display())]
    BadLabel {
        /// The batch file.
        file: PathBuf,
        /// The record's position in the file, from 0.
        record: usize,
        /// Which label: "label", "fine label" or "coarse label".
        what: &'static str,
        /// The label found.
        label: i64,
        /// The data set's name.
        dataset: &'static str,
        /// The largest valid label.
        max: usize,
    },

    /// A batch file the data set needs is not in the folder.
    #[error("{}: batch file missing from {}", file.display(), folder.display())]
    MissingBatch {
        /// The missing file.
        file: PathBuf,
        /// The folder it should be in.
        folder: PathBuf,
    },

    /// A class-name list does not have one name per class.
    #[error("{}: lists {found} class names, expected {expected}", file.display())]
    BadClassNames {
        /// The list's file.
        file: PathBuf,
        /// Names found.
        found: usize,
        /// Classes of the data set.
        expected: usize,
    },

    /// A python-format batch is not the pickle the data set's authors wrote.
    #[error("{}: {detail}", file.display())]
    BadPickle {
        /// The pickle file.
        file: PathBuf,
        /// What is wrong with it.
        detail: String,
    },

    /// An archive does not start with the gzip magic bytes.
    #[error("{}: not a gzip archive", path.display())]
    NotGzip {
        /// The archive.
        path: PathBuf,
    },

    /// The gzip stream of an archive is corrupt or cut short.
    #[error("{}: corrupt or truncated gzip data ({detail})", path.display())]
    CorruptGzip {
        /// The archive.
        path: PathBuf,
        /// What the decompressor said.
        detail: String,
    },

    /// An archive decompresses but is not a tar archive.
    #[error("{}: not a tar archive ({detail})", path.display())]
    NotTar {
        /// The archive.
        path: PathBuf,
        /// What the tar reader said.
        detail: String,
    },

    /// A tar entry's path is absolute or climbs out with `..`: the archive is malformed (it is
    /// only read, but no CIFAR archive holds such a path).
    #[error("{}: tar entry '{entry}' would escape the data folder", path.display())]
    UnsafeTarEntry {
        /// The archive.
        path: PathBuf,
        /// The entry's path as written in the archive.
        entry: String,
    },

    /// A tar entry is a link or device, which no CIFAR archive holds.
    #[error("{}: tar entry '{entry}' is a {kind}, a CIFAR archive holds only files and folders", path.display())]
    UnsupportedTarEntry {
        /// The archive.
        path: PathBuf,
        /// The entry's path.
        entry: String,
        /// What kind of entry it is.
        kind: String,
    },

    /// An archive lacks a file the data set needs.
    #[error("{}: the archive has no {expected}", path.display())]
    IncompleteArchive {
        /// The archive.
        path: PathBuf,
        /// The missing member, as a path inside the archive.
        expected: String,
    },

    /// The server could not be reached at all.
    #[error(
        "could not download {url} ({reason}): download {archive} by hand and put it in {}",
        data_dir.display()
    )]
    NoNetwork {
        /// The address tried.
        url: String,
        /// Why it failed.
        reason: String,
        /// The archive's file name.
        archive: String,
        /// Where the archive should go.
        data_dir: PathBuf,
    },

    /// The server answered, but not with the archive.
    #[error("{url}: {reason}")]
    Download {
        /// The address asked.
        url: String,
        /// What went wrong.
        reason: String,
    },

    /// A downloaded archive is not the official file; the partial file has been deleted.
    #[error(
        "{}: md5 {actual} does not match the expected {expected}; the download was deleted, run again to restart it",
        path.display()
    )]
    ChecksumMismatch {
        /// The deleted download.
        path: PathBuf,
        /// md5 of what was downloaded.
        actual: String,
        /// The md5 it should have.
        expected: String,
    },

    /// A folder data set's layout is not what `ImageFolder` reads.
    #[error("{}: {message}", path.display())]
    Folder {
        /// The folder at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// Image files of a folder data set cannot be decoded (and are not to be skipped).
    #[error(
        "{} image file(s) cannot be decoded; fix or remove them, or set data.skip_bad_images = true to train without them:\n{}",
        files.len(),
        files.iter().map(|(path, why)| format!("  {}: {why}", path.display())).collect::<Vec<_>>().join("\n")
    )]
    BadImages {
        /// Each file with why it cannot be decoded.
        files: Vec<(PathBuf, String)>,
    },

    /// The validation fraction is not in [0, 1).
    #[error("val_fraction {0} is outside [0, 1)")]
    BadValFraction(f64),

    /// The validation fraction leaves no training image.
    #[error("val_fraction {val_fraction} leaves no training image out of {total}")]
    NoTrainingImages {
        /// The fraction asked for.
        val_fraction: f64,
        /// Images available.
        total: usize,
    },

    /// A batch size of zero.
    #[error("batch_size must be at least 1")]
    ZeroBatchSize,

    /// A loader worker thread stopped before delivering its batch.
    #[error("the data loader worker building batch {batch} stopped unexpectedly")]
    WorkerStopped {
        /// The batch it was to deliver.
        batch: usize,
    },

    /// A dataset index past the end.
    #[error("index {index} is past the end of a data set of {len} images")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The data set's size.
        len: usize,
    },

    /// A label that has no column in the soft targets of Mixup, CutMix or label smoothing.
    #[error("label {label} of batch image {index} is outside the {num_classes} classes")]
    LabelOutOfRange {
        /// The image's position in the batch.
        index: usize,
        /// The label found.
        label: usize,
        /// Classes of the targets.
        num_classes: usize,
    },

    /// A batch buffer whose length does not match the shape it is said to have.
    #[error("{what} holds {found} values where its shape needs {expected}")]
    BatchShape {
        /// Which buffer: "images" or "labels".
        what: &'static str,
        /// Values it holds.
        found: usize,
        /// Values its shape needs.
        expected: usize,
    },

    /// An image buffer is not 3 x height x width bytes.
    #[error("a 3x{height}x{width} image needs {expected} bytes, the buffer holds {len}")]
    ImageSize {
        /// Rows of the image.
        height: usize,
        /// Columns of the image.
        width: usize,
        /// Bytes the image needs.
        expected: usize,
        /// Bytes the buffer holds.
        len: usize,
    },

    /// An augmentation policy's parameters are outside what torchvision accepts.
    #[error("{policy}: {detail}")]
    BadPolicy {
        /// The policy, e.g. "RandAugment".
        policy: &'static str,
        /// What is out of range.
        detail: String,
    },
}

impl CifarError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = CifarError> = std::result::Result<T, E>;
