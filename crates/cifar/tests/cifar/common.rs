//! Helpers shared by the integration tests: the mini archive, synthetic batches, archives,
//! pickles and a local HTTP server on 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use cnnzoo_cifar::{CifarData, CifarKind, FetchOptions, IMAGE_BYTES, load};

pub use crate::synthetic::{Py2Pickle, gzip, python_batch, tar_gz};

/// The real CIFAR-10 subset shipped in shared/ (never copied into the repository).
pub const MINI_ARCHIVE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/cifar10-mini/cifar-10-binary.tar.gz"
);

/// Options that never print and never reach a real server.
pub fn quiet() -> FetchOptions {
    FetchOptions {
        url: Some("http://127.0.0.1:9/unused".to_owned()),
        verbose: false,
    }
}

/// The data folder shipped in shared/ that holds the mini archive; it is only ever read.
pub fn mini_folder() -> &'static Path {
    Path::new(MINI_ARCHIVE)
        .parent()
        .expect("the archive is in a folder")
}

/// A fresh data folder holding a copy of the mini archive, which a test may change the
/// permissions of (a link would change the shared file's).
pub fn mini_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(MINI_ARCHIVE, dir.path().join("cifar-10-binary.tar.gz"))
        .expect("copy the mini archive");
    dir
}

/// The mini data set, loaded once per test binary, straight from shared/: the archive is read in
/// place.
pub fn mini() -> &'static CifarData {
    static DATA: OnceLock<CifarData> = OnceLock::new();
    DATA.get_or_init(|| {
        load(CifarKind::Cifar10, mini_folder(), &quiet()).expect("the mini archive loads")
    })
}

/// The names of the files and folders in `dir` with the md5 of each file, sorted: what a test
/// compares to show that nothing in a data folder was written.
pub fn listing_with_md5s(dir: &Path) -> Vec<(String, Option<String>)> {
    let mut entries: Vec<(String, Option<String>)> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            let entry = entry.expect("entry");
            let path = entry.path();
            let md5 = path
                .is_file()
                .then(|| md5_hex(&std::fs::read(&path).expect("read")));
            (entry.file_name().to_string_lossy().into_owned(), md5)
        })
        .collect();
    entries.sort();
    entries
}

/// A synthetic image whose pixels depend on `seed`, channel, row and column.
pub fn synthetic_image(seed: usize) -> [u8; IMAGE_BYTES] {
    let mut image = [0u8; IMAGE_BYTES];
    for (i, pixel) in image.iter_mut().enumerate() {
        *pixel = ((i * 7 + seed * 31 + i / 97) % 256) as u8;
    }
    image
}

/// A binary CIFAR-10 batch of `labels.len()` synthetic records.
pub fn binary_batch(labels: &[u8], seed: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (i, &label) in labels.iter().enumerate() {
        bytes.push(label);
        bytes.extend_from_slice(&synthetic_image(seed * 1000 + i));
    }
    bytes
}

/// The batch files of CIFAR-10, the five training ones and then the test one, each name ending
/// in `extension` (".bin" in the binary format, "" in the python one).
pub fn cifar10_batch_files(extension: &str) -> Vec<String> {
    (1..=5)
        .map(|batch| format!("data_batch_{batch}"))
        .chain(["test_batch".to_owned()])
        .map(|name| name + extension)
        .collect()
}

/// Writes a complete synthetic `cifar-10-batches-bin/` (3 records per batch) into `dir`.
pub fn write_binary_folder(dir: &Path) -> PathBuf {
    let folder = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&folder).expect("folder");
    for batch in 1..=5 {
        let labels = [batch as u8, (batch + 3) as u8 % 10, 9];
        std::fs::write(
            folder.join(format!("data_batch_{batch}.bin")),
            binary_batch(&labels, batch),
        )
        .expect("batch");
    }
    std::fs::write(
        folder.join("test_batch.bin"),
        binary_batch(&[0, 1, 2, 3], 9),
    )
    .expect("test");
    folder
}

/// A tar holding one file whose header names `raw_path` verbatim (the tar crate refuses to
/// write `..` itself, which is exactly what an attacker's archive would contain).
pub fn tar_with_raw_path(raw_path: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.set_path("placeholder").expect("path");
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    let name = &mut header.as_old_mut().name;
    name.fill(0);
    name[..raw_path.len()].copy_from_slice(raw_path.as_bytes());
    header.set_cksum();
    let mut tar = Vec::new();
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512 + 1024, 0);
    tar
}

/// What the local server does with each request.
#[derive(Clone)]
pub enum Reply {
    /// The whole body (200), or the requested range (206) when honour_range is set.
    Serve { honour_range: bool },
    /// Headers for the whole body, then only `bytes` of it, then the connection closes.
    CutAfter { bytes: usize },
}

/// A one-thread HTTP server on 127.0.0.1 that answers `replies.len()` requests in turn and
/// records each request's `Range` header.
pub struct LocalServer {
    pub url: String,
    pub ranges: Arc<Mutex<Vec<Option<String>>>>,
    handle: Option<JoinHandle<()>>,
}

impl LocalServer {
    pub fn start(body: Vec<u8>, replies: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("address").port();
        let ranges = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&ranges);
        let handle = std::thread::spawn(move || {
            for reply in replies {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let range = serve(stream, &body, &reply);
                seen.lock().expect("lock").push(range);
            }
        });
        Self {
            url: format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz"),
            ranges,
            handle: Some(handle),
        }
    }

    /// Waits until every planned request has been answered.
    pub fn join(mut self) -> Vec<Option<String>> {
        if let Some(handle) = self.handle.take() {
            handle.join().expect("server thread");
        }
        self.ranges.lock().expect("lock").clone()
    }
}

fn serve(mut stream: TcpStream, body: &[u8], reply: &Reply) -> Option<String> {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_owned());
        }
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|r| r.parse::<usize>().ok());
    let response = match (reply, start) {
        (Reply::Serve { honour_range: true }, Some(start)) if start >= body.len() => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                body.len()
            );
            head.into_bytes()
        }
        (Reply::Serve { honour_range: true }, Some(start)) => {
            let mut out = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{}/{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len() - 1,
                body.len(),
                body.len() - start
            )
            .into_bytes();
            out.extend_from_slice(&body[start..]);
            out
        }
        (Reply::Serve { .. }, _) => full_response(body, body.len()),
        (Reply::CutAfter { bytes }, _) => full_response(body, *bytes),
    };
    let _ = stream.write_all(&response);
    let _ = stream.flush();
    let _ = stream.shutdown(std::net::Shutdown::Both);
    range
}

fn full_response(body: &[u8], sent: usize) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body[..sent.min(body.len())]);
    out
}

/// An address on 127.0.0.1 where nothing listens: connections are refused.
pub fn refused_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/cifar-10-binary.tar.gz")
}

/// Serves `body` as `kind`'s archive to a `load` into a fresh folder, which must refuse it as
/// not the official file; returns the error's message and the folder.
pub fn refused_download(kind: CifarKind, body: Vec<u8>) -> (String, tempfile::TempDir) {
    let server = LocalServer::start(body, vec![Reply::Serve { honour_range: true }]);
    let dir = tempfile::tempdir().expect("temp dir");
    let options = FetchOptions {
        url: Some(server.url.clone()),
        verbose: false,
    };
    let message = load(kind, dir.path(), &options)
        .expect_err("not the official archive")
        .to_string();
    server.join();
    (message, dir)
}

/// md5 of bytes, as hex.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
