//! The decoded-image cache of a folder data set's split: decode every file once (on every
//! core, with progress), resize and centre-crop it to the run's image size, and keep the uint8
//! pixels in one file that later epochs and runs map into memory instead of decoding again.
//!
//! A cache is named by the md5 of what its content depends on: each file's path, class, size
//! and modification time, the image size and the resize. Change any of them and the name
//! changes, so a stale cache is never read (it is left for the user to delete). The file is
//! written under a temporary name and renamed, so a killed build leaves no half cache.
//!
//! Layout: a 64-byte preamble (magic and version), the pixels (image after image, CHW), then a
//! trailer (side, count, channel statistics, labels, the files that could not be decoded) and
//! the trailer's length in the last 8 bytes, so the pixels can be streamed out as they are
//! decoded.
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::sync_channel;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use crate::augment::{ChannelStatistics, Normalization};
use crate::decode::{read_image, resize_center_crop};
use crate::error::{CifarError, Result};
use crate::folder::{FolderOptions, ImageFile};
use crate::set::{CHANNELS, Pixels};
use crate::source::human_bytes;

const MAGIC: &[u8; 16] = b"cnnzoo-pixels-01";
const PREAMBLE: usize = 64;

/// One split's images, mapped from its cache.
pub(crate) struct CachedSplit {
    pub images: Pixels,
    pub labels: Vec<u8>,
    pub normalization: Normalization,
    pub skipped: Vec<(PathBuf, String)>,
    /// Images decoded to build the cache now (0 when it was read).
    pub decoded: usize,
    pub path: PathBuf,
    pub bytes: u64,
}

/// The split of `files` (named `split` in messages) at `options.image_size`, resized to
/// `resize` before the centre crop: from its cache, built first when there is none.
pub(crate) fn load_or_build(
    split: &str,
    files: &[ImageFile],
    resize: usize,
    options: &FolderOptions,
) -> Result<CachedSplit> {
    let side = options.image_size;
    if files.is_empty() {
        return Ok(CachedSplit {
            images: Vec::new().into(),
            labels: Vec::new(),
            normalization: Normalization::UNIT,
            skipped: Vec::new(),
            decoded: 0,
            path: PathBuf::new(),
            bytes: 0,
        });
    }
    let path = options
        .cache_dir
        .join(format!("{split}-{}.pixels", key(files, side, resize)));
    if let Some(cached) = open(&path, side)? {
        if options.verbose {
            eprintln!(
                "cnnzoo: read {} {split} images from the cache {}",
                cached.labels.len(),
                path.display()
            );
        }
        return Ok(cached);
    }
    std::fs::create_dir_all(&options.cache_dir).map_err(|e| CifarError::Folder {
        path: options.cache_dir.clone(),
        message: format!(
            "cannot create the image cache folder ({e}); point data.cache_dir or {} at a writable folder",
            crate::folder::CACHE_DIR_ENV
        ),
    })?;
    build(split, files, side, resize, &path, options.verbose)?;
    let mut built = open(&path, side)?.ok_or_else(|| CifarError::Folder {
        path: path.clone(),
        message: "the cache just written cannot be read back".into(),
    })?;
    built.decoded = files.len();
    if options.verbose {
        eprintln!(
            "cnnzoo: decoded {} {split} images into the cache {} ({})",
            files.len(),
            path.display(),
            human_bytes(built.bytes)
        );
    }
    Ok(built)
}

fn key(files: &[ImageFile], side: usize, resize: usize) -> String {
    let mut hasher = Md5::new();
    hasher.update(MAGIC);
    hasher.update((side as u64).to_le_bytes());
    hasher.update((resize as u64).to_le_bytes());
    for file in files {
        hasher.update(file.path.as_os_str().as_encoded_bytes());
        hasher.update([0, file.label]);
        hasher.update(file.size.to_le_bytes());
        hasher.update(file.modified.to_le_bytes());
    }
    format!("{:x}", hasher.finalize())
}

/// The cache at `path`, or `None` when there is none or it is damaged (it is then rebuilt).
fn open(path: &Path, side: usize) -> Result<Option<CachedSplit>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CifarError::io(path, e)),
    };
    // SAFETY: the cache is only ever written under a temporary name and renamed into place, so
    // the mapped file is complete and no cnnzoo process modifies it while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CifarError::io(path, e))?;
    let bytes = map.len() as u64;
    let Some(trailer) = Trailer::parse(&map, side) else {
        eprintln!(
            "cnnzoo: the image cache {} is damaged; decoding again",
            path.display()
        );
        return Ok(None);
    };
    let len = trailer.labels.len();
    let images = Pixels::mapped(Arc::new(map), PREAMBLE, len * CHANNELS * side * side);
    Ok(images.map(|images| CachedSplit {
        images,
        labels: trailer.labels,
        normalization: trailer.normalization,
        skipped: trailer.skipped,
        decoded: 0,
        path: path.to_path_buf(),
        bytes,
    }))
}

struct Trailer {
    labels: Vec<u8>,
    normalization: Normalization,
    skipped: Vec<(PathBuf, String)>,
}

impl Trailer {
    fn write(&self, side: usize, out: &mut impl Write) -> std::io::Result<()> {
        let mut trailer = Vec::new();
        trailer.extend((side as u64).to_le_bytes());
        trailer.extend((self.labels.len() as u64).to_le_bytes());
        for value in self
            .normalization
            .mean
            .iter()
            .chain(&self.normalization.std)
        {
            trailer.extend(value.to_le_bytes());
        }
        trailer.extend(&self.labels);
        trailer.extend((self.skipped.len() as u64).to_le_bytes());
        for (path, why) in &self.skipped {
            for text in [path.to_string_lossy().as_bytes(), why.as_bytes()] {
                trailer.extend((text.len() as u64).to_le_bytes());
                trailer.extend(text);
            }
        }
        out.write_all(&trailer)?;
        out.write_all(&(trailer.len() as u64).to_le_bytes())
    }

    /// The trailer of a whole cache file, when the file is one for images of `side`.
    fn parse(file: &[u8], side: usize) -> Option<Self> {
        if file.len() < PREAMBLE + 8 || &file[..MAGIC.len()] != MAGIC {
            return None;
        }
        let length = u64::from_le_bytes(file[file.len() - 8..].try_into().ok()?) as usize;
        let start = file.len().checked_sub(8)?.checked_sub(length)?;
        let mut reader = Reader(&file[start..file.len() - 8]);
        let stored_side = reader.u64()? as usize;
        let count = reader.u64()? as usize;
        let mut statistics = [0f32; 6];
        for value in &mut statistics {
            *value = f32::from_le_bytes(reader.take(4)?.try_into().ok()?);
        }
        let labels = reader.take(count)?.to_vec();
        let skipped = (0..reader.u64()?)
            .map(|_| {
                let path = String::from_utf8_lossy(reader.text()?).into_owned();
                let why = String::from_utf8_lossy(reader.text()?).into_owned();
                Some((PathBuf::from(path), why))
            })
            .collect::<Option<Vec<_>>>()?;
        let pixels = count.checked_mul(CHANNELS * side * side)?;
        (stored_side == side && PREAMBLE.checked_add(pixels)? == start).then(|| Self {
            labels,
            normalization: Normalization {
                mean: [statistics[0], statistics[1], statistics[2]],
                std: [statistics[3], statistics[4], statistics[5]],
            },
            skipped,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(count)?;
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<&'a [u8]> {
        let length = self.u64()? as usize;
        self.take(length)
    }
}

/// Decodes `files` on every core and writes the cache to `path` (through a temporary file).
fn build(
    split: &str,
    files: &[ImageFile],
    side: usize,
    resize: usize,
    path: &Path,
    verbose: bool,
) -> Result<()> {
    let temporary = path.with_extension(format!("pixels.tmp-{}", std::process::id()));
    let written = write_cache(split, files, side, resize, &temporary, verbose);
    let renamed = written
        .and_then(|()| std::fs::rename(&temporary, path).map_err(|e| CifarError::io(path, e)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    renamed
}

fn write_cache(
    split: &str,
    files: &[ImageFile],
    side: usize,
    resize: usize,
    temporary: &Path,
    verbose: bool,
) -> Result<()> {
    let io_error = |e| CifarError::io(temporary, e);
    let mut out = BufWriter::new(File::create(temporary).map_err(io_error)?);
    let mut preamble = [0u8; PREAMBLE];
    preamble[..MAGIC.len()].copy_from_slice(MAGIC);
    out.write_all(&preamble).map_err(io_error)?;

    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    let next = AtomicUsize::new(0);
    let (sender, receiver) = sync_channel(workers * 4);
    let mut trailer = Trailer {
        labels: Vec::with_capacity(files.len()),
        normalization: Normalization::UNIT,
        skipped: Vec::new(),
    };
    let mut statistics = ChannelStatistics::default();
    let mut progress = Progress::new(split, files.len(), verbose);
    std::thread::scope(|scope| -> Result<()> {
        for _ in 0..workers {
            let sender = sender.clone();
            let next = &next;
            scope.spawn(move || {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(index) else { break };
                    let pixels = read_image(&file.path)
                        .map(|image| resize_center_crop(&image, resize, side));
                    if sender.send((index, pixels)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        // Images arrive in any order and are written in file order.
        let mut waiting = BTreeMap::new();
        let mut expected = 0;
        for (index, pixels) in receiver {
            waiting.insert(index, pixels);
            while let Some(pixels) = waiting.remove(&expected) {
                let file = &files[expected];
                match pixels {
                    Ok(pixels) => {
                        out.write_all(&pixels).map_err(io_error)?;
                        statistics.add(&pixels);
                        trailer.labels.push(file.label);
                    }
                    Err(why) => trailer.skipped.push((file.path.clone(), why)),
                }
                expected += 1;
                progress.update(expected);
            }
        }
        Ok(())
    })?;
    trailer.normalization = statistics.normalization();
    trailer.write(side, &mut out).map_err(io_error)?;
    let file = out.into_inner().map_err(|e| io_error(e.into_error()))?;
    file.sync_all().map_err(io_error)
}

/// Decoding progress on stderr: a redrawn line on a terminal, a line per quarter otherwise.
struct Progress {
    split: String,
    total: usize,
    began: Instant,
    last_draw: Option<Instant>,
    terminal: bool,
    verbose: bool,
    next_quarter: usize,
}

impl Progress {
    fn new(split: &str, total: usize, verbose: bool) -> Self {
        if verbose {
            eprintln!("cnnzoo: decoding {total} {split} images once, into the image cache");
        }
        Self {
            split: split.to_owned(),
            total,
            began: Instant::now(),
            last_draw: None,
            terminal: std::io::stderr().is_terminal(),
            verbose,
            next_quarter: 1,
        }
    }

    fn update(&mut self, done: usize) {
        if !self.verbose {
            return;
        }
        let status = || {
            let seconds = self.began.elapsed().as_secs_f64();
            format!(
                "{} images: {done}/{} decoded ({:.0} images/s)",
                self.split,
                self.total,
                done as f64 / seconds.max(1e-3)
            )
        };
        if self.terminal {
            let due = self
                .last_draw
                .is_none_or(|last| last.elapsed() >= Duration::from_millis(200));
            if due || done == self.total {
                eprint!("\r{}\x1b[K", status());
                self.last_draw = Some(Instant::now());
            }
            if done == self.total {
                eprintln!();
            }
        } else {
            while self.next_quarter <= 4 && done * 4 >= self.total * self.next_quarter {
                eprintln!("{}", status());
                self.next_quarter += 1;
            }
        }
    }
}
