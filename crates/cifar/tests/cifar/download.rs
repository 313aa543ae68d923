//! Downloads from a local server on 127.0.0.1: success, resume, restart, bad checksum, no
//! network.

use std::path::PathBuf;

use cnnzoo_cifar::{CifarError, CifarKind, FetchOptions, download, load, part_path};
use tempfile::TempDir;

use crate::common::{LocalServer, MINI_ARCHIVE, Reply, md5_hex, refused_download, refused_url};

/// Starts a local server of a 200 kB payload that answers with `replies`. Returns the payload, the
/// server, the path to download the archive to and its temporary folder (deleted when dropped).
fn serve_payload(replies: Vec<Reply>) -> (Vec<u8>, LocalServer, PathBuf, TempDir) {
    let body: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let server = LocalServer::start(body.clone(), replies);
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    (body, server, archive, dir)
}

#[test]
fn downloads_verifies_and_renames() {
    let (body, server, archive, _dir) = serve_payload(vec![Reply::Serve { honour_range: true }]);
    download(&server.url, &archive, &md5_hex(&body), false).expect("download");
    assert_eq!(std::fs::read(&archive).expect("archive"), body);
    assert!(!part_path(&archive).exists());
    assert_eq!(server.join(), [None]);
}

#[test]
fn interrupted_download_resumes_with_a_range_request() {
    let (body, server, archive, _dir) = serve_payload(vec![
        Reply::CutAfter { bytes: 70_000 },
        Reply::Serve { honour_range: true },
    ]);
    let md5 = md5_hex(&body);

    let message = download(&server.url, &archive, &md5, false)
        .expect_err("the connection is cut")
        .to_string();
    assert!(message.contains("run again to resume"), "{message}");
    assert!(
        !archive.exists(),
        "no archive before the download is complete"
    );
    let part = std::fs::read(part_path(&archive)).expect("partial file kept");
    assert_eq!(part, body[..part.len()]);
    assert!(
        !part.is_empty() && part.len() <= 70_000,
        "{} bytes",
        part.len()
    );

    download(&server.url, &archive, &md5, false).expect("resumed download");
    assert_eq!(std::fs::read(&archive).expect("archive"), body);
    assert!(!part_path(&archive).exists());
    let ranges = server.join();
    assert_eq!(ranges, [None, Some(format!("bytes={}-", part.len()))]);
}

#[test]
fn a_server_that_ignores_ranges_restarts_cleanly() {
    let (body, server, archive, _dir) = serve_payload(vec![Reply::Serve {
        honour_range: false,
    }]);
    // A stale partial file that does not even match the body.
    std::fs::write(part_path(&archive), vec![0xAA; 5_000]).expect("stale part");
    download(&server.url, &archive, &md5_hex(&body), false).expect("restarted download");
    assert_eq!(std::fs::read(&archive).expect("archive"), body);
    assert_eq!(server.join(), [Some("bytes=5000-".to_owned())]);
}

#[test]
fn a_complete_partial_file_is_verified_and_kept() {
    let (body, server, archive, _dir) = serve_payload(vec![Reply::Serve { honour_range: true }]);
    std::fs::write(part_path(&archive), &body).expect("complete part");
    download(&server.url, &archive, &md5_hex(&body), false).expect("verified");
    assert_eq!(std::fs::read(&archive).expect("archive"), body);
    assert_eq!(server.join(), [Some(format!("bytes={}-", body.len()))]);
}

#[test]
fn a_bad_checksum_deletes_the_partial_file() {
    let (body, server, archive, _dir) = serve_payload(vec![Reply::Serve { honour_range: true }]);
    let error = download(
        &server.url,
        &archive,
        "00000000000000000000000000000000",
        false,
    )
    .expect_err("wrong checksum");
    let message = error.to_string();
    assert!(matches!(error, CifarError::ChecksumMismatch { .. }));
    assert!(message.contains("cifar-10-binary.tar.gz.part"), "{message}");
    assert!(message.contains(&md5_hex(&body)), "{message}");
    assert!(message.contains("the download was deleted"), "{message}");
    assert!(!part_path(&archive).exists());
    assert!(!archive.exists());
    server.join();
}

#[test]
fn a_downloaded_archive_must_be_the_official_one() {
    // The mini archive is real CIFAR data but not the official file: a download of it is
    // refused (a local copy of it is accepted, see the data tests).
    let body = std::fs::read(MINI_ARCHIVE).expect("mini archive");
    let (message, dir) = refused_download(CifarKind::Cifar10, body);
    assert!(
        message.contains("c32a1d4ab5d03f1284b67883e8d87530"),
        "{message}"
    );
    let left: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
    assert!(left.is_empty(), "nothing is left behind");
}

#[test]
fn no_network_says_where_to_put_the_archive() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data_dir = dir.path().join("data");
    let options = FetchOptions {
        url: Some(refused_url()),
        verbose: false,
    };
    let message = load(CifarKind::Cifar10, &data_dir, &options)
        .expect_err("nothing listens")
        .to_string();
    assert!(
        message.contains(&format!(
            "download cifar-10-binary.tar.gz by hand and put it in {}",
            data_dir.display()
        )),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one sentence: {message}");
    assert!(!part_path(&data_dir.join("cifar-10-binary.tar.gz")).exists());
}
