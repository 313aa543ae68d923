//! The crate's single error type.

use std::io;
use std::path::{Path, PathBuf};

/// Everything that can go wrong writing or reading an event file.
///
/// Every variant carries the file (or folder) involved, because a training run usually has many
/// event files and an error without a path is useless for finding the damaged one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A record whose checksum does not match: the bytes on disk are damaged, not merely cut short.
    #[error("corrupt record in {} at byte offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        /// Offset of the start of the damaged record.
        offset: u64,
        reason: &'static str,
    },
    /// A record with valid checksums whose payload is not an `Event`.
    #[error("undecodable event in {} at byte offset {offset}: {source}", path.display())]
    Decode {
        path: PathBuf,
        offset: u64,
        #[source]
        source: prost::DecodeError,
    },
}

/// Shorthand used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A `map_err` adapter that copies the path only when there is an error.
    pub(crate) fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
