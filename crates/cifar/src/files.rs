//! The files of a data folder by name, wherever they are: in an extracted folder on disk, or
//! members of an archive, streamed once from the gzip-compressed tar into memory. Nothing is
//! written anywhere, so a read-only data folder (or one shared between users) is read as it is.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;

use crate::error::{CifarError, Result};

/// The batch and class-name files of one data set, by their names inside its folder.
pub(crate) enum BatchFiles {
    /// An extracted folder: files are read from disk when asked for.
    Folder(PathBuf),
    /// The members of `folder/` in `archive` that were asked for, already read.
    Archive {
        /// The archive they were read from.
        archive: PathBuf,
        /// The folder the archive holds them in (`cifar-10-batches-bin`, ...).
        folder: &'static str,
        /// Their bytes, by name inside `folder`; a file is removed once taken.
        members: HashMap<String, Vec<u8>>,
    },
}

impl BatchFiles {
    /// How messages name `file`: its path in a folder, `ARCHIVE: FOLDER/FILE` in an archive.
    pub(crate) fn name(&self, file: &str) -> PathBuf {
        match self {
            Self::Folder(folder) => folder.join(file),
            Self::Archive {
                archive, folder, ..
            } => PathBuf::from(format!("{}: {folder}/{file}", archive.display())),
        }
    }

    /// Whether `file` is there.
    pub(crate) fn contains(&self, file: &str) -> bool {
        match self {
            Self::Folder(folder) => folder.join(file).is_file(),
            Self::Archive { members, .. } => members.contains_key(file),
        }
    }

    /// The error for a `file` the data set needs that is not there.
    pub(crate) fn missing(&self, file: &str) -> CifarError {
        match self {
            Self::Folder(folder) => CifarError::MissingBatch {
                file: folder.join(file),
                folder: folder.clone(),
            },
            Self::Archive {
                archive, folder, ..
            } => CifarError::IncompleteArchive {
                path: archive.clone(),
                expected: format!("{folder}/{file}"),
            },
        }
    }

    /// The bytes of `file`; an archive's member is handed over, not copied, so each file can be
    /// taken once.
    pub(crate) fn take(&mut self, file: &str) -> Result<Vec<u8>> {
        match self {
            Self::Folder(folder) => {
                let path = folder.join(file);
                std::fs::read(&path).map_err(|err| CifarError::io(&path, err))
            }
            Self::Archive { members, .. } => {
                let bytes = members.remove(file);
                bytes.ok_or_else(|| self.missing(file))
            }
        }
    }
}

/// Largest buffer reserved up front for one member: a header may claim any size.
const MAX_RESERVE: u64 = 1 << 28;

/// Streams the gzip-compressed tar `archive` once and keeps the members `folder/NAME` for each
/// NAME in `wanted` that it holds (which of them are required is the reader's business).
///
/// Every entry is checked, as the archive is malformed otherwise: a path that would leave the
/// folder (absolute, or with `..`) and links or devices are errors, and an archive without
/// `folder/` at all is incomplete. Nothing is written.
pub(crate) fn read_archive(
    archive: &Path,
    folder: &'static str,
    wanted: &[&str],
) -> Result<BatchFiles> {
    let mut file = File::open(archive).map_err(|err| CifarError::io(archive, err))?;
    let mut magic = [0u8; 2];
    let magic_len =
        read_up_to(&mut file, &mut magic).map_err(|err| CifarError::io(archive, err))?;
    if magic_len < 2 || magic != [0x1f, 0x8b] {
        return Err(CifarError::NotGzip {
            path: archive.to_path_buf(),
        });
    }
    file.seek(SeekFrom::Start(0))
        .map_err(|err| CifarError::io(archive, err))?;

    let gzip_failure = Rc::new(RefCell::new(None));
    let reader = GzipReader {
        inner: flate2::read::GzDecoder::new(file),
        failure: gzip_failure.clone(),
    };
    let read_error = |err: io::Error| match gzip_failure.borrow().clone() {
        Some(detail) => CifarError::CorruptGzip {
            path: archive.to_path_buf(),
            detail,
        },
        None => CifarError::NotTar {
            path: archive.to_path_buf(),
            detail: err.to_string(),
        },
    };
    let mut members = HashMap::new();
    let mut saw_folder = false;
    let mut tar = tar::Archive::new(reader);
    for entry in tar.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        let entry_path = entry.path().map_err(read_error)?.into_owned();
        let entry_name = entry_path.display().to_string();
        let safe = entry_path
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir));
        if !safe {
            return Err(CifarError::UnsafeTarEntry {
                path: archive.to_path_buf(),
                entry: entry_name,
            });
        }
        let parts: Vec<&OsStr> = entry_path
            .components()
            .filter_map(|part| match part {
                Component::Normal(name) => Some(name),
                _ => None,
            })
            .collect();
        saw_folder |= parts.first() == Some(&OsStr::new(folder));
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let member = match parts[..] {
                    [top, name] if top == folder => {
                        wanted.iter().find(|&&wanted| OsStr::new(wanted) == name)
                    }
                    _ => None,
                };
                if let Some(&member) = member {
                    let reserve = entry.size().min(MAX_RESERVE) as usize;
                    let mut bytes = Vec::with_capacity(reserve);
                    entry.read_to_end(&mut bytes).map_err(read_error)?;
                    // A later copy replaces an earlier one, as it would on extraction.
                    members.insert(member.to_owned(), bytes);
                }
            }
            tar::EntryType::Directory | tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {
            }
            other => {
                return Err(CifarError::UnsupportedTarEntry {
                    path: archive.to_path_buf(),
                    entry: entry_name,
                    kind: format!("{other:?}").to_lowercase(),
                });
            }
        }
    }
    if !saw_folder {
        return Err(CifarError::IncompleteArchive {
            path: archive.to_path_buf(),
            expected: format!("{folder}/"),
        });
    }
    Ok(BatchFiles::Archive {
        archive: archive.to_path_buf(),
        folder,
        members,
    })
}

fn read_up_to(reader: &mut impl Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Remembers whether the gzip layer failed, so that a broken gzip stream is not reported as a
/// broken tar.
struct GzipReader<R> {
    inner: flate2::read::GzDecoder<R>,
    failure: Rc<RefCell<Option<String>>>,
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|err| {
            self.failure.borrow_mut().replace(err.to_string());
        })
    }
}
