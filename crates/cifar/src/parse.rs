//! Reading the batch files of the binary and the python formats, validating every record,
//! from any [`Source`]: an extracted folder or an archive read in place.

use std::path::Path;

use crate::error::{CifarError, Result};
use crate::files::{BatchFiles, read_archive};
use crate::kind::CifarKind;
use crate::pickle::{self, Value};
use crate::set::{CifarData, CifarSet, IMAGE_BYTES};
use crate::source::Source;

/// Reads the data set `kind` from `source` (see [`crate::locate`]), which is only read.
///
/// A file missing from a folder is a [`CifarError::MissingBatch`], a member missing from an
/// archive a [`CifarError::IncompleteArchive`]; the messages of a bad file in an archive name
/// both, as `ARCHIVE: FOLDER/FILE`.
pub fn read_source(kind: CifarKind, source: &Source) -> Result<CifarData> {
    let format = match source {
        Source::BinaryFolder(_) | Source::BinaryArchive(_) => Format::Binary,
        Source::PythonFolder(_) | Source::PythonArchive(_) => Format::Python,
    };
    let mut files = match source {
        Source::BinaryFolder(folder) | Source::PythonFolder(folder) => {
            BatchFiles::Folder(folder.clone())
        }
        Source::BinaryArchive(archive) | Source::PythonArchive(archive) => {
            read_archive(archive, format.folder(kind), &format.files(kind))?
        }
    };
    let (train_files, test_file) = format.batches(kind);
    // Check every batch first so that a missing one is reported before minutes of parsing.
    let mut every_batch = train_files.iter().chain([&test_file]);
    if let Some(missing) = every_batch.find(|name| !files.contains(name)) {
        return Err(files.missing(missing));
    }
    let (classes, parse): (_, Parse) = match format {
        Format::Binary => (
            read_binary_class_names(kind, &mut files)?,
            parse_binary_batch,
        ),
        Format::Python => (
            read_python_class_names(kind, &mut files)?,
            parse_python_batch,
        ),
    };
    let train = read_batches(kind, &mut files, &train_files, &classes, parse)?;
    let test = read_batches(kind, &mut files, &[test_file], &classes, parse)?;
    Ok(CifarData {
        train,
        test,
        source: source.clone(),
    })
}

/// The two layouts of the batch files.
#[derive(Clone, Copy)]
enum Format {
    Binary,
    Python,
}

impl Format {
    /// The folder of the batch files, in an archive or extracted.
    fn folder(self, kind: CifarKind) -> &'static str {
        match self {
            Self::Binary => kind.binary().folder,
            Self::Python => kind.python().folder,
        }
    }

    /// The training batch files and the test batch file.
    fn batches(self, kind: CifarKind) -> (Vec<&'static str>, &'static str) {
        match self {
            Self::Binary => kind.binary_batches(),
            Self::Python => kind.python_batches(),
        }
    }

    /// Every file read: the batches, then the class-name list.
    fn files(self, kind: CifarKind) -> Vec<&'static str> {
        let (mut files, test) = self.batches(kind);
        files.push(test);
        files.push(match self {
            Self::Binary => kind.binary_class_names_file(),
            Self::Python => kind.python_meta().0,
        });
        files
    }
}

/// Images and labels of one batch file.
type Batch = (Vec<u8>, Vec<u8>);

/// Parses one batch file, named as messages name it.
type Parse = fn(CifarKind, &Path, &[u8]) -> Result<Batch>;

/// Reads and parses `names`, which are all in `files`, into one set.
fn read_batches(
    kind: CifarKind,
    files: &mut BatchFiles,
    names: &[&str],
    classes: &[String],
    parse: Parse,
) -> Result<CifarSet> {
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for name in names {
        let bytes = files.take(name)?;
        let (batch_images, batch_labels) = parse(kind, &files.name(name), &bytes)?;
        images.extend_from_slice(&batch_images);
        labels.extend_from_slice(&batch_labels);
    }
    Ok(CifarSet::cifar(images, labels, classes.to_vec()))
}

/// Parses one binary batch file: records of label byte(s) then 3,072 pixel bytes.
pub fn parse_binary_batch(kind: CifarKind, file: &Path, bytes: &[u8]) -> Result<Batch> {
    let label_bytes = match kind {
        CifarKind::Cifar10 => 1,
        CifarKind::Cifar100 | CifarKind::Cifar100Coarse => 2,
    };
    let record_size = label_bytes + IMAGE_BYTES;
    if !bytes.len().is_multiple_of(record_size) {
        return Err(CifarError::BadBatchSize {
            file: file.to_path_buf(),
            size: bytes.len() as u64,
            record_size,
        });
    }
    if bytes.is_empty() {
        return Err(CifarError::EmptyBatch {
            file: file.to_path_buf(),
        });
    }
    let count = bytes.len() / record_size;
    let mut images = Vec::with_capacity(count * IMAGE_BYTES);
    let mut labels = Vec::with_capacity(count);
    for (record, chunk) in bytes.chunks_exact(record_size).enumerate() {
        let (label_part, pixels) = chunk.split_at(label_bytes);
        // CIFAR-100's records hold the coarse label, then the fine one; both are checked
        // whichever is trained on, so a corrupt file is refused the same way for both.
        let label = match (kind, label_part) {
            (CifarKind::Cifar100 | CifarKind::Cifar100Coarse, &[coarse, fine]) => {
                let coarse_kind = CifarKind::Cifar100Coarse;
                check_label(file, record, i64::from(coarse), coarse_kind)?;
                check_label(file, record, i64::from(fine), CifarKind::Cifar100)?;
                if kind == coarse_kind { coarse } else { fine }
            }
            _ => {
                let label = label_part[0];
                check_label(file, record, i64::from(label), kind)?;
                label
            }
        };
        labels.push(label);
        images.extend_from_slice(pixels);
    }
    Ok((images, labels))
}

/// Refuses a label outside `kind`'s classes, naming the label as `kind` calls it.
fn check_label(file: &Path, record: usize, label: i64, kind: CifarKind) -> Result<()> {
    let classes = kind.num_classes();
    if (0..classes as i64).contains(&label) {
        Ok(())
    } else {
        Err(CifarError::BadLabel {
            file: file.to_path_buf(),
            record,
            what: kind.label_name(),
            label,
            dataset: kind.name(),
            max: classes - 1,
        })
    }
}

fn read_binary_class_names(kind: CifarKind, files: &mut BatchFiles) -> Result<Vec<String>> {
    let file = kind.binary_class_names_file();
    if !files.contains(file) {
        return Ok(default_classes(kind));
    }
    let path = files.name(file);
    let text = String::from_utf8(files.take(file)?).map_err(|err| {
        CifarError::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, err),
        )
    })?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect();
    check_class_count(kind, &path, names)
}

fn read_python_class_names(kind: CifarKind, files: &mut BatchFiles) -> Result<Vec<String>> {
    let (meta_file, key) = kind.python_meta();
    if !files.contains(meta_file) {
        return Ok(default_classes(kind));
    }
    let path = files.name(meta_file);
    let bytes = files.take(meta_file)?;
    let bad = |detail: String| CifarError::BadPickle {
        file: path.clone(),
        detail,
    };
    let meta = pickle::parse(&bytes).map_err(bad)?;
    let names = meta
        .dict_get(key)
        .and_then(Value::items)
        .ok_or_else(|| bad(format!("no '{key}' list")))?
        .iter()
        .map(|name| name.as_text())
        .collect::<Option<Vec<String>>>()
        .ok_or_else(|| bad(format!("'{key}' holds something that is not a string")))?;
    check_class_count(kind, &path, names)
}

fn check_class_count(kind: CifarKind, path: &Path, names: Vec<String>) -> Result<Vec<String>> {
    if names.len() == kind.num_classes() {
        Ok(names)
    } else {
        Err(CifarError::BadClassNames {
            file: path.to_path_buf(),
            found: names.len(),
            expected: kind.num_classes(),
        })
    }
}

fn default_classes(kind: CifarKind) -> Vec<String> {
    kind.default_classes()
        .iter()
        .map(|&name| name.to_owned())
        .collect()
}

/// Parses one python batch: a dict whose `data` is a uint8 numpy array of shape (N, 3072) and
/// whose label list (`labels`, or `fine_labels` / `coarse_labels` for CIFAR-100) has N entries.
pub fn parse_python_batch(kind: CifarKind, file: &Path, bytes: &[u8]) -> Result<Batch> {
    let bad = |detail: String| CifarError::BadPickle {
        file: file.to_path_buf(),
        detail,
    };
    let batch = pickle::parse(bytes).map_err(bad)?;
    let data = batch
        .dict_get("data")
        .ok_or_else(|| bad("no 'data' array".to_owned()))?;
    let (shape, pixels) = uint8_array(data).map_err(|detail| bad(format!("'data': {detail}")))?;
    if shape.len() != 2 || shape[1] != IMAGE_BYTES {
        return Err(bad(format!(
            "'data' has shape {shape:?}, expected (N, {IMAGE_BYTES})"
        )));
    }
    if shape[0] == 0 {
        return Err(CifarError::EmptyBatch {
            file: file.to_path_buf(),
        });
    }
    let key = kind.python_label_key();
    let label_values = batch
        .dict_get(key)
        .and_then(Value::items)
        .ok_or_else(|| bad(format!("no '{key}' list")))?;
    if label_values.len() != shape[0] {
        return Err(bad(format!(
            "'{key}' has {} entries for {} images",
            label_values.len(),
            shape[0]
        )));
    }
    let mut labels = Vec::with_capacity(label_values.len());
    for (record, value) in label_values.iter().enumerate() {
        let label = value
            .as_int()
            .ok_or_else(|| bad(format!("'{key}'[{record}] is not an integer")))?;
        check_label(file, record, label, kind)?;
        labels.push(label as u8);
    }
    Ok((pixels.to_vec(), labels))
}

const NUMPY_MULTIARRAY: [&str; 2] = ["numpy.core.multiarray", "numpy._core.multiarray"];
const NUMPY_NUMERIC: [&str; 2] = ["numpy.core.numeric", "numpy._core.numeric"];

/// The shape and bytes of a pickled C-ordered uint8 numpy array.
///
/// numpy pickles an array as `_reconstruct(ndarray, (0,), b"b")` with the state
/// `(version, shape, dtype, is_fortran, raw_bytes)` (protocols 0 to 4), or as
/// `_frombuffer(buffer, dtype, shape, order)` (protocol 5).
fn uint8_array(value: &Value) -> std::result::Result<(Vec<usize>, &[u8]), String> {
    let Value::Call {
        callable,
        args,
        state,
    } = value
    else {
        return Err("not a numpy array".to_owned());
    };
    let (shape, dtype, fortran, data) = if callable.is_global(&NUMPY_MULTIARRAY, "_reconstruct") {
        let state = state
            .as_deref()
            .and_then(Value::items)
            .ok_or("numpy array without its state")?;
        match state {
            [.., shape, dtype, fortran, data] => (
                shape.as_ref(),
                dtype.as_ref(),
                fortran.as_int().ok_or("order flag is not a boolean")? != 0,
                data.as_ref(),
            ),
            _ => return Err(format!("numpy state has {} fields", state.len())),
        }
    } else if callable.is_global(&NUMPY_NUMERIC, "_frombuffer") {
        match args.items() {
            Some([data, dtype, shape, order]) => (
                shape.as_ref(),
                dtype.as_ref(),
                order.as_text().as_deref() == Some("F"),
                data.as_ref(),
            ),
            _ => return Err("_frombuffer without (buffer, dtype, shape, order)".to_owned()),
        }
    } else {
        return Err("not a numpy array".to_owned());
    };
    if !is_uint8_dtype(dtype) {
        return Err("the array's dtype is not uint8".to_owned());
    }
    let shape = shape
        .items()
        .ok_or("the array's shape is not a tuple")?
        .iter()
        .map(|dim| dim.as_int().and_then(|dim| usize::try_from(dim).ok()))
        .collect::<Option<Vec<usize>>>()
        .ok_or("the array's shape holds something that is not a size")?;
    let Value::Bytes(bytes) = data else {
        return Err("the array's data is not a byte string".to_owned());
    };
    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &dim| acc.checked_mul(dim))
        .ok_or("the array's shape overflows")?;
    if bytes.len() != expected {
        return Err(format!(
            "the array has {} bytes for shape {shape:?} ({expected} expected)",
            bytes.len()
        ));
    }
    if fortran && shape.len() > 1 {
        return Err("the array is in Fortran order, expected C order".to_owned());
    }
    Ok((shape, bytes))
}

fn is_uint8_dtype(dtype: &Value) -> bool {
    match dtype {
        Value::Call { callable, args, .. } if callable.is_global(&["numpy"], "dtype") => args
            .items()
            .and_then(|items| items.first())
            .and_then(|name| name.as_text())
            .is_some_and(|name| name == "u1" || name == "|u1"),
        _ => false,
    }
}
