//! Finding the data in a folder: an extracted folder, an archive read in place, or a download.
//!
//! Nothing is written into the data folder except a download, the one case where there is no
//! data at all: it goes to a `.part` file that is renamed only after its md5 matched, so a kill
//! leaves either nothing usable or the complete archive. Archives are read where they are (see
//! [`crate::read_source`]), so the data folder may be read-only or shared.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use crate::error::{CifarError, Result};
use crate::kind::CifarKind;

/// Environment variable that replaces the official download address.
pub const URL_ENV: &str = "CNNZOO_CIFAR_URL";
/// Environment variable naming the data folder when no `--data-dir` is given.
pub const DATA_DIR_ENV: &str = "CNNZOO_DATA";
/// The data folder when neither `--data-dir` nor [`DATA_DIR_ENV`] is given.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// The data folder from [`DATA_DIR_ENV`], else [`DEFAULT_DATA_DIR`].
pub fn data_dir_from_env() -> PathBuf {
    std::env::var_os(DATA_DIR_ENV)
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
}

/// How data that is not on disk yet is fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchOptions {
    /// Address of the archive to download; `None` means the official one (see
    /// [`FetchOptions::url_for`]).
    pub url: Option<String>,
    /// Whether to print progress and notes on stderr.
    pub verbose: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            url: None,
            verbose: true,
        }
    }
}

impl FetchOptions {
    /// Verbose, with the address from [`URL_ENV`] when it is set.
    pub fn from_env() -> Self {
        Self {
            url: std::env::var(URL_ENV).ok().filter(|url| !url.is_empty()),
            verbose: true,
        }
    }

    /// The address to download `kind` from: CIFAR-10's binary archive, CIFAR-100's python
    /// archive (the one torchvision fetches, so a data folder shared with it needs no second
    /// download), unless [`Self::url`] replaces it.
    pub fn url_for(&self, kind: CifarKind) -> String {
        self.url.clone().unwrap_or_else(|| {
            match kind {
                CifarKind::Cifar10 => kind.binary().url,
                CifarKind::Cifar100 | CifarKind::Cifar100Coarse => kind.python().url,
            }
            .to_owned()
        })
    }

    fn note(&self, message: impl std::fmt::Display) {
        if self.verbose {
            eprintln!("{message}");
        }
    }
}

/// Where the data of a data set is read from: an extracted folder or an archive, in one of the
/// two formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An extracted binary folder (`cifar-10-batches-bin/`, `cifar-100-binary/`).
    BinaryFolder(PathBuf),
    /// An extracted python pickle folder (`cifar-10-batches-py/`, `cifar-100-python/`), as
    /// torchvision leaves it.
    PythonFolder(PathBuf),
    /// The binary archive (`cifar-10-binary.tar.gz`, `cifar-100-binary.tar.gz`), read in place.
    BinaryArchive(PathBuf),
    /// The python archive (`cifar-10-python.tar.gz`, `cifar-100-python.tar.gz`), read in place.
    PythonArchive(PathBuf),
}

impl Source {
    /// The folder or archive.
    pub fn path(&self) -> &Path {
        match self {
            Self::BinaryFolder(path)
            | Self::PythonFolder(path)
            | Self::BinaryArchive(path)
            | Self::PythonArchive(path) => path,
        }
    }
}

/// Finds the data of `kind` in `data_dir`, downloading it when there is none.
///
/// Order: the extracted binary folder; the python folder torchvision leaves behind; the binary
/// archive; the python archive; else an archive is downloaded into `data_dir` (the only
/// write into it): CIFAR-10's binary one, CIFAR-100's python one, as [`FetchOptions::url_for`]. Archives are read in place, never extracted. An archive found on disk is
/// used even when it is not the official file (a note says so); a downloaded one must match
/// the official md5.
pub fn locate(kind: CifarKind, data_dir: &Path, options: &FetchOptions) -> Result<Source> {
    let binary_folder = data_dir.join(kind.binary().folder);
    if binary_folder.is_dir() {
        return Ok(Source::BinaryFolder(binary_folder));
    }
    let python_folder = data_dir.join(kind.python().folder);
    if python_folder.is_dir() {
        return Ok(Source::PythonFolder(python_folder));
    }
    let binary_archive = data_dir.join(kind.binary().file);
    if binary_archive.is_file() {
        note_unofficial(&binary_archive, kind.binary().md5, options)?;
        return Ok(Source::BinaryArchive(binary_archive));
    }
    let python_archive = data_dir.join(kind.python().file);
    if python_archive.is_file() {
        note_unofficial(&python_archive, kind.python().md5, options)?;
        return Ok(Source::PythonArchive(python_archive));
    }
    let url = options.url_for(kind);
    match kind {
        CifarKind::Cifar10 => {
            download(&url, &binary_archive, kind.binary().md5, options.verbose)?;
            Ok(Source::BinaryArchive(binary_archive))
        }
        CifarKind::Cifar100 | CifarKind::Cifar100Coarse => {
            let md5 = kind.python().md5;
            download(&url, &python_archive, md5, options.verbose)?;
            Ok(Source::PythonArchive(python_archive))
        }
    }
}

fn note_unofficial(archive: &Path, official: &str, options: &FetchOptions) -> Result<()> {
    if !options.verbose {
        return Ok(());
    }
    let actual = md5_of_file(archive)?;
    if actual != official {
        options.note(format_args!(
            "note: {} has md5 {actual}, not the official {official}; using it as it is",
            archive.display()
        ));
    }
    Ok(())
}

/// md5 of a file, as 32 lowercase hex digits.
pub fn md5_of_file(path: &Path) -> Result<String> {
    let mut hasher = Md5::new();
    hash_file(path, &mut hasher)?;
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Downloads `url` to `destination` through `<destination>.part`, resuming a partial file with
/// an HTTP range request, and renames it into place once its md5 is `expected_md5`.
///
/// A server that cannot be reached gives [`CifarError::NoNetwork`], which says where to put the
/// archive by hand; a checksum mismatch deletes the partial file.
pub fn download(url: &str, destination: &Path, expected_md5: &str, verbose: bool) -> Result<()> {
    let archive_name = destination
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data_dir = destination
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let no_network = |reason: String| CifarError::NoNetwork {
        url: url.to_owned(),
        reason,
        archive: archive_name.clone(),
        data_dir: data_dir.to_path_buf(),
    };
    fs::create_dir_all(data_dir).map_err(|err| CifarError::io(data_dir, err))?;
    let part = part_path(destination);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .build()
        .into();

    // A part file that is already complete makes the server answer 416 to a range request;
    // then the part is checked as it is, and a second pass restarts from scratch if needed.
    for _ in 0..2 {
        let existing = fs::metadata(&part).map(|meta| meta.len()).unwrap_or(0);
        let mut request = agent.get(url);
        if existing > 0 {
            request = request.header("Range", format!("bytes={existing}-"));
        }
        let response = request.call().map_err(|err| no_network(err.to_string()))?;
        let status = response.status().as_u16();
        let (append, total) = match status {
            200 => (false, response.body().content_length()),
            206 => {
                let range = response
                    .headers()
                    .get("content-range")
                    .and_then(|value| value.to_str().ok())
                    .and_then(parse_content_range);
                match range {
                    Some((start, total)) if start == existing => (true, total),
                    _ => {
                        remove_part(&part)?;
                        continue;
                    }
                }
            }
            416 if existing > 0 => {
                if md5_of_file(&part)? == expected_md5 {
                    return rename_into_place(&part, destination);
                }
                remove_part(&part)?;
                continue;
            }
            _ => {
                return Err(CifarError::Download {
                    url: url.to_owned(),
                    reason: format!("the server answered HTTP {status}"),
                });
            }
        };
        let mut hasher = Md5::new();
        let mut file = if append {
            hash_file(&part, &mut hasher)?;
            OpenOptions::new()
                .append(true)
                .open(&part)
                .map_err(|err| CifarError::io(&part, err))?
        } else {
            File::create(&part).map_err(|err| CifarError::io(&part, err))?
        };
        let start = if append { existing } else { 0 };
        let mut progress = DownloadProgress::new(&archive_name, start, total, verbose);
        let mut body = response.into_body().into_reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut received = start;
        loop {
            let read = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    progress.finish(received);
                    return Err(CifarError::Download {
                        url: url.to_owned(),
                        reason: format!(
                            "interrupted after {received} bytes ({err}); run again to resume"
                        ),
                    });
                }
            };
            file.write_all(&buffer[..read])
                .map_err(|err| CifarError::io(&part, err))?;
            hasher.update(&buffer[..read]);
            received += read as u64;
            progress.update(received);
        }
        progress.finish(received);
        file.sync_all().map_err(|err| CifarError::io(&part, err))?;
        drop(file);
        if let Some(total) = total
            && received < total
        {
            return Err(CifarError::Download {
                url: url.to_owned(),
                reason: format!(
                    "the connection closed after {received} of {total} bytes; run again to resume"
                ),
            });
        }
        let actual = hex(&hasher.finalize());
        if actual != expected_md5 {
            remove_part(&part)?;
            return Err(CifarError::ChecksumMismatch {
                path: part,
                actual,
                expected: expected_md5.to_owned(),
            });
        }
        return rename_into_place(&part, destination);
    }
    Err(CifarError::Download {
        url: url.to_owned(),
        reason: "the server does not resume downloads consistently; run again".to_owned(),
    })
}

/// `<destination>.part`, where a download is written until it is verified.
pub fn part_path(destination: &Path) -> PathBuf {
    let mut name = destination.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

fn remove_part(part: &Path) -> Result<()> {
    match fs::remove_file(part) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(CifarError::io(part, err)),
        _ => Ok(()),
    }
}

fn rename_into_place(part: &Path, destination: &Path) -> Result<()> {
    fs::rename(part, destination).map_err(|err| CifarError::io(destination, err))
}

/// Feeds the whole file at `path` to `hasher`, a megabyte at a time.
fn hash_file(path: &Path, hasher: &mut Md5) -> Result<()> {
    let mut file = File::open(path).map_err(|err| CifarError::io(path, err))?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| CifarError::io(path, err))?;
        if read == 0 {
            return Ok(());
        }
        hasher.update(&buffer[..read]);
    }
}

/// Parses `bytes START-END/TOTAL` into the start and, when known, the total.
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, total) = rest.split_once('/')?;
    let (start, _) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// Download progress on stderr: a redrawn bar line (bytes, rate, ETA) on a terminal, a few
/// plain lines otherwise, nothing when not verbose.
struct DownloadProgress {
    name: String,
    start: u64,
    total: Option<u64>,
    began: Instant,
    last_draw: Option<Instant>,
    terminal: bool,
    verbose: bool,
    next_quarter: u64,
    finished: bool,
}

impl DownloadProgress {
    fn new(name: &str, start: u64, total: Option<u64>, verbose: bool) -> Self {
        let terminal = io::stderr().is_terminal();
        if verbose {
            let size = total
                .map(|t| format!(" ({})", human_bytes(t)))
                .unwrap_or_default();
            let resume = if start > 0 {
                format!(", resuming at {}", human_bytes(start))
            } else {
                String::new()
            };
            eprintln!("downloading {name}{size}{resume}");
        }
        Self {
            name: name.to_owned(),
            start,
            total,
            began: Instant::now(),
            last_draw: None,
            terminal,
            verbose,
            next_quarter: 1,
            finished: false,
        }
    }

    fn update(&mut self, received: u64) {
        if !self.verbose {
            return;
        }
        if self.terminal {
            let due = self
                .last_draw
                .is_none_or(|last| last.elapsed() >= Duration::from_millis(200));
            if due {
                self.draw(received);
            }
        } else if let Some(total) = self.total.filter(|&t| t > 0) {
            while self.next_quarter < 4 && received * 4 >= total * self.next_quarter {
                eprintln!("{}: {}", self.name, self.status(received));
                self.next_quarter += 1;
            }
        }
    }

    fn draw(&mut self, received: u64) {
        self.last_draw = Some(Instant::now());
        let bar = match self.total.filter(|&t| t > 0) {
            Some(total) => {
                let filled = ((received.min(total) * 30) / total) as usize;
                format!("[{}{}] ", "#".repeat(filled), "-".repeat(30 - filled))
            }
            None => String::new(),
        };
        eprint!("\r{bar}{}\x1b[K", self.status(received));
    }

    fn status(&self, received: u64) -> String {
        let seconds = self.began.elapsed().as_secs_f64().max(1e-3);
        let rate = (received - self.start) as f64 / seconds;
        let mut line = match self.total {
            Some(total) => format!("{} / {}", human_bytes(received), human_bytes(total)),
            None => human_bytes(received),
        };
        line.push_str(&format!("  {}/s", human_bytes(rate as u64)));
        if let Some(total) = self.total
            && rate > 0.0
        {
            let eta = total.saturating_sub(received) as f64 / rate;
            line.push_str(&format!("  ETA {}", clock(eta)));
        }
        line
    }

    /// Shows where the download ended, once.
    fn finish(&mut self, received: u64) {
        if self.verbose && !self.finished {
            if self.terminal {
                self.draw(received);
                eprintln!();
            } else {
                eprintln!("{}: {}", self.name, self.status(received));
            }
        }
        self.finished = true;
    }
}

pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn clock(seconds: f64) -> String {
    let seconds = seconds.round() as u64;
    format!("{}:{:02}", seconds / 60, seconds % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_is_parsed() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, None)));
        assert_eq!(parse_content_range("items 5-9/10"), None);
    }

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(170_498_071), "162.6 MiB");
        assert_eq!(clock(125.4), "2:05");
    }
}
