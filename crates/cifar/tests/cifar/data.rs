//! Finding, extracting and parsing data folders, and every corrupt input the issue lists.

use std::path::Path;

use cnnzoo_cifar::{
    CifarError, CifarKind, IMAGE_BYTES, SourceFolder, load, locate, parse_python_batch,
    split_train_val, val_count,
};

use crate::common::{
    MINI_ARCHIVE, binary_batch, cifar10_batch_files, gzip, mini, mini_data_dir, python_batch,
    quiet, synthetic_image, tar_gz, tar_with_raw_path, write_binary_folder,
};

fn cifar10(dir: &Path) -> Result<cnnzoo_cifar::CifarData, CifarError> {
    load(CifarKind::Cifar10, dir, &quiet())
}

/// Asserts that `result` failed and its message names `file` and says `what`.
fn assert_error<T: std::fmt::Debug>(result: Result<T, CifarError>, file: &str, what: &str) {
    let message = result.expect_err("the input is invalid").to_string();
    assert!(message.contains(file), "'{message}' should name {file}");
    assert!(message.contains(what), "'{message}' should say '{what}'");
}

#[test]
fn mini_archive_parses_to_the_documented_counts() {
    let data = mini();
    assert_eq!(data.train.len(), 4065);
    assert_eq!(data.test.len(), 1020);
    assert_eq!(data.train.images.len(), 4065 * IMAGE_BYTES);
    assert_eq!(data.test.images.len(), 1020 * IMAGE_BYTES);
    assert_eq!(data.train.classes, CifarKind::Cifar10.default_classes());
    for set in [&data.train, &data.test] {
        assert!(set.labels.iter().all(|&label| label < 10));
        let counts = set.class_counts();
        assert!(counts.iter().all(|&count| count > 0), "{counts:?}");
        // "balanced to within a few images"
        let (min, max) = (counts.iter().min(), counts.iter().max());
        assert!(
            max.zip(min)
                .is_some_and(|(max, min)| max - min < set.len() / 20)
        );
    }
    // Real photographs use the whole range of pixel values.
    assert_eq!(data.train.images.iter().max(), Some(&255));
    assert_eq!(data.train.images.iter().min(), Some(&0));
}

#[test]
fn archive_is_extracted_once_then_the_folder_is_reused() {
    let dir = mini_data_dir();
    let folder = dir.path().join("cifar-10-batches-bin");
    assert!(!folder.exists());

    let first = locate(CifarKind::Cifar10, dir.path(), &quiet()).expect("extracts");
    assert_eq!(first, SourceFolder::Binary(folder.clone()));
    for name in ["data_batch_1.bin", "data_batch_5.bin", "test_batch.bin"] {
        assert!(folder.join(name).is_file(), "{name} extracted");
    }
    // Nothing but the archive and the folder is left: the staging folder is gone.
    assert_eq!(
        entry_names(dir.path()),
        ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"]
    );

    // Replace the archive by garbage: a second call must not touch it.
    std::fs::remove_file(dir.path().join("cifar-10-binary.tar.gz")).expect("remove link");
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), b"garbage").expect("garbage");
    let marker = folder
        .join("data_batch_1.bin")
        .metadata()
        .expect("meta")
        .modified()
        .ok();
    let second = cifar10(dir.path()).expect("reuses the folder");
    assert_eq!(second.train.len(), 4065);
    assert_eq!(
        folder
            .join("data_batch_1.bin")
            .metadata()
            .expect("meta")
            .modified()
            .ok(),
        marker
    );
}

#[test]
fn split_sizes_follow_the_rounding_rule_and_are_seeded() {
    let train = &mini().train;
    // round(4065 * 0.1) = round(406.5) = 407, halves rounded up.
    assert_eq!(val_count(4065, 0.1), 407);
    assert_eq!(val_count(50_000, 0.1), 5_000);
    let (a_train, a_val) = split_train_val(train, 0.1, 42).expect("split");
    assert_eq!((a_train.len(), a_val.len()), (3658, 407));
    assert_eq!(a_train.images.len(), 3658 * IMAGE_BYTES);

    let (b_train, b_val) = split_train_val(train, 0.1, 42).expect("split");
    assert_eq!(
        (&a_train, &a_val),
        (&b_train, &b_val),
        "same seed, same split"
    );
    let (_, c_val) = split_train_val(train, 0.1, 7).expect("split");
    assert_ne!(a_val, c_val, "another seed, another split");

    // The two parts partition the images: per-class counts add up.
    let total = train.class_counts();
    let parts: Vec<usize> = a_train
        .class_counts()
        .iter()
        .zip(a_val.class_counts())
        .map(|(t, v)| t + v)
        .collect();
    assert_eq!(parts, total);

    let (all, none) = split_train_val(train, 0.0, 42).expect("no validation");
    assert_eq!((all.len(), none.len()), (4065, 0));
    assert_eq!(&all, train);

    for bad in [1.0, -0.1, f64::NAN, 1.5] {
        let message = split_train_val(train, bad, 42)
            .expect_err("bad fraction")
            .to_string();
        assert!(
            message.contains(&format!("val_fraction {bad}")),
            "{message}"
        );
    }
}

#[test]
fn corrupt_batch_files_are_reported_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = write_binary_folder(dir.path());
    assert_eq!(cifar10(dir.path()).expect("valid folder").train.len(), 15);

    // A batch cut in the middle of a record.
    let batch3 = folder.join("data_batch_3.bin");
    let mut bytes = std::fs::read(&batch3).expect("read");
    bytes.truncate(2 * 3073 + 1000);
    std::fs::write(&batch3, &bytes).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_3.bin",
        "7146 bytes is not a multiple of the 3073-byte record size",
    );

    // The lead's example size: ten records and one stray byte.
    std::fs::write(&batch3, vec![0u8; 30731]).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_3.bin",
        "30731 bytes is not a multiple of the 3073-byte record size",
    );

    std::fs::write(&batch3, b"").expect("write");
    assert_error(cifar10(dir.path()), "data_batch_3.bin", "empty");
    std::fs::write(&batch3, binary_batch(&[1, 2], 3)).expect("restore");

    // A label above 9 in record 17.
    let mut labels = vec![3u8; 20];
    labels[17] = 12;
    std::fs::write(folder.join("data_batch_2.bin"), binary_batch(&labels, 2)).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2.bin",
        "record 17 has label 12, CIFAR-10 labels are 0..=9",
    );
    std::fs::write(folder.join("data_batch_2.bin"), binary_batch(&[1], 2)).expect("restore");

    std::fs::remove_file(folder.join("data_batch_4.bin")).expect("remove");
    assert_error(cifar10(dir.path()), "data_batch_4.bin", "missing");
    std::fs::write(folder.join("data_batch_4.bin"), binary_batch(&[4], 4)).expect("restore");

    std::fs::write(folder.join("batches.meta.txt"), "cat\ndog\n").expect("write");
    assert_error(
        cifar10(dir.path()),
        "batches.meta.txt",
        "lists 2 class names, expected 10",
    );
}

#[test]
fn cifar100_fine_and_coarse_labels_are_validated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("cifar-100-binary");
    std::fs::create_dir_all(&folder).expect("folder");
    let record = |coarse: u8, fine: u8, seed: usize| {
        let mut bytes = vec![coarse, fine];
        bytes.extend_from_slice(&synthetic_image(seed));
        bytes
    };
    let train: Vec<u8> = (0..4u8)
        .flat_map(|i| record(i, 97 + i % 3, i.into()))
        .collect();
    std::fs::write(folder.join("train.bin"), &train).expect("train");
    std::fs::write(folder.join("test.bin"), record(19, 0, 9)).expect("test");
    let data = load(CifarKind::Cifar100, dir.path(), &quiet()).expect("valid folder");
    assert_eq!(data.train.labels, [97, 98, 99, 97]);
    assert_eq!(data.train.num_classes(), 100);
    assert_eq!(data.train.classes[97], "wolf");
    assert_eq!(data.test.len(), 1);

    std::fs::write(folder.join("test.bin"), record(3, 100, 9)).expect("test");
    assert_error(
        load(CifarKind::Cifar100, dir.path(), &quiet()),
        "test.bin",
        "record 0 has fine label 100, CIFAR-100 fine labels are 0..=99",
    );
    std::fs::write(folder.join("test.bin"), record(20, 1, 9)).expect("test");
    assert_error(
        load(CifarKind::Cifar100, dir.path(), &quiet()),
        "test.bin",
        "coarse label 20",
    );
    std::fs::write(folder.join("test.bin"), vec![0u8; 3073]).expect("test");
    assert_error(
        load(CifarKind::Cifar100, dir.path(), &quiet()),
        "test.bin",
        "3073 bytes is not a multiple of the 3074-byte record size",
    );
}

/// Puts `bytes` as the data folder's `cifar-10-binary.tar.gz` and tries to load it.
fn load_archive(
    bytes: &[u8],
) -> (
    tempfile::TempDir,
    Result<cnnzoo_cifar::CifarData, CifarError>,
) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cifar-10-binary.tar.gz"), bytes).expect("archive");
    let result = cifar10(dir.path());
    (dir, result)
}

/// Asserts that loading `archive` fails with a message that names it and says `what`, and that
/// the data folder holds only the archive: a failed extraction leaves nothing behind. Returns
/// the data folder.
fn assert_archive_refused(archive: &[u8], what: &str) -> tempfile::TempDir {
    let (dir, result) = load_archive(archive);
    assert_error(result, "cifar-10-binary.tar.gz", what);
    assert_eq!(entry_names(dir.path()), ["cifar-10-binary.tar.gz"]);
    dir
}

/// The names of the files and folders in `dir`, sorted.
fn entry_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn corrupt_archives_are_reported_by_name() {
    assert_archive_refused(
        b"PK\x03\x04 this is a zip, not a gzip",
        "not a gzip archive",
    );

    assert_archive_refused(b"", "not a gzip archive");

    let text = "this is a gzip of plain text, not of a tar archive\n".repeat(40);
    assert_archive_refused(&gzip(text.as_bytes()), "not a tar archive");

    let mut truncated = std::fs::read(MINI_ARCHIVE).expect("mini archive");
    truncated.truncate(truncated.len() / 2);
    assert_archive_refused(&truncated, "corrupt or truncated gzip data");

    let dir = assert_archive_refused(
        &gzip(&tar_with_raw_path("../evil", b"owned")),
        "tar entry '../evil' would escape the data folder",
    );
    assert!(!dir.path().parent().expect("parent").join("evil").exists());

    assert_archive_refused(
        &gzip(&tar_with_raw_path("/tmp/evil-absolute", b"owned")),
        "would escape the data folder",
    );

    let batch = binary_batch(&[1], 1);
    let incomplete = tar_gz(&[
        ("cifar-10-batches-bin/data_batch_1.bin", &batch),
        ("cifar-10-batches-bin/data_batch_2.bin", &batch),
        ("cifar-10-batches-bin/data_batch_3.bin", &batch),
        ("cifar-10-batches-bin/data_batch_4.bin", &batch),
        ("cifar-10-batches-bin/test_batch.bin", &batch),
    ]);
    assert_archive_refused(
        &incomplete,
        "the archive has no cifar-10-batches-bin/data_batch_5.bin",
    );

    assert_archive_refused(
        &tar_gz(&[("something/else.txt", b"x")]),
        "has no cifar-10-batches-bin/",
    );
}

#[test]
fn links_in_archives_are_refused() {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    tar.append_link(
        &mut header,
        "cifar-10-batches-bin/data_batch_1.bin",
        "/etc/passwd",
    )
    .expect("link entry");
    assert_archive_refused(
        &gzip(&tar.into_inner().expect("tar")),
        "tar entry 'cifar-10-batches-bin/data_batch_1.bin' is a symlink",
    );
}

#[test]
fn a_synthetic_archive_round_trips() {
    let batches: Vec<Vec<u8>> = (1..=6)
        .map(|i| binary_batch(&[i as u8 % 10, 7], i))
        .collect();
    let paths: Vec<String> = cifar10_batch_files(".bin")
        .iter()
        .map(|name| format!("cifar-10-batches-bin/{name}"))
        .collect();
    let files: Vec<(&str, &[u8])> = paths
        .iter()
        .zip(&batches)
        .map(|(path, batch)| (path.as_str(), batch.as_slice()))
        .collect();
    let (_dir, result) = load_archive(&tar_gz(&files));
    let data = result.expect("valid archive");
    assert_eq!(data.train.labels, [1, 7, 2, 7, 3, 7, 4, 7, 5, 7]);
    assert_eq!(data.test.labels, [6, 7]);
    assert_eq!(data.train.image(2), Some(&synthetic_image(2000)[..]));
}

/// Writes a python-format CIFAR-10 folder with `per_batch` synthetic images per batch.
fn write_python_folder(dir: &Path, per_batch: usize) -> Vec<u8> {
    let folder = dir.join("cifar-10-batches-py");
    std::fs::create_dir_all(&folder).expect("folder");
    let mut all_labels = Vec::new();
    for (batch, name) in cifar10_batch_files("").iter().enumerate() {
        let labels: Vec<u8> = (0..per_batch).map(|i| ((i + batch) % 10) as u8).collect();
        let images: Vec<u8> = (0..per_batch)
            .flat_map(|i| synthetic_image(batch * 100 + i))
            .collect();
        std::fs::write(folder.join(name), python_batch(&images, &labels, "labels")).expect("batch");
        if batch < 5 {
            all_labels.extend(labels);
        }
    }
    let mut meta = crate::common::Py2Pickle::default();
    meta.begin_dict();
    meta.string(b"label_names");
    meta.string_list(CifarKind::Cifar10.default_classes());
    meta.string(b"num_vis");
    meta.int(3072);
    meta.end_dict();
    std::fs::write(folder.join("batches.meta"), meta.finish()).expect("meta");
    all_labels
}

#[test]
fn torchvision_python_folder_is_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let labels = write_python_folder(dir.path(), 1200);
    let data = cifar10(dir.path()).expect("python folder");
    assert_eq!(data.folder, dir.path().join("cifar-10-batches-py"));
    assert_eq!(data.train.len(), 6000);
    assert_eq!(data.train.labels, labels);
    assert_eq!(data.test.len(), 1200);
    assert_eq!(data.train.image(1201), Some(&synthetic_image(101)[..]));
    assert_eq!(data.train.classes[9], "truck");

    // The binary folder wins when both are there.
    write_binary_folder(dir.path());
    assert_eq!(cifar10(dir.path()).expect("binary folder").train.len(), 15);
}

#[test]
fn torchvision_python_archive_is_extracted() {
    let source = tempfile::tempdir().expect("temp dir");
    let labels = write_python_folder(source.path(), 2);
    let mut names = cifar10_batch_files("");
    names.push("batches.meta".to_owned());
    let contents: Vec<(String, Vec<u8>)> = names
        .iter()
        .map(|name| {
            let path = format!("cifar-10-batches-py/{name}");
            let bytes = std::fs::read(source.path().join(&path)).expect("batch");
            (path, bytes)
        })
        .collect();
    let files: Vec<(&str, &[u8])> = contents
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("cifar-10-python.tar.gz"), tar_gz(&files)).expect("archive");
    assert_eq!(
        locate(CifarKind::Cifar10, dir.path(), &quiet()).expect("extracts"),
        SourceFolder::Python(dir.path().join("cifar-10-batches-py"))
    );
    assert_eq!(
        cifar10(dir.path()).expect("python folder").train.labels,
        labels
    );
}

#[test]
fn corrupt_python_batches_are_reported_by_name() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_python_folder(dir.path(), 3);
    let batch = dir.path().join("cifar-10-batches-py/data_batch_2");

    let good = std::fs::read(&batch).expect("read");
    std::fs::write(&batch, &good[..good.len() / 2]).expect("truncate");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2",
        "pickle data ends early",
    );

    let images: Vec<u8> = (0..2).flat_map(synthetic_image).collect();
    std::fs::write(&batch, python_batch(&images, &[1, 12], "labels")).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2",
        "record 1 has label 12, CIFAR-10 labels are 0..=9",
    );

    std::fs::write(&batch, python_batch(&images, &[1], "labels")).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2",
        "1 entries for 2 images",
    );

    std::fs::write(&batch, python_batch(&images, &[1, 2], "fine_labels")).expect("write");
    assert_error(cifar10(dir.path()), "data_batch_2", "no 'labels' list");

    std::fs::write(&batch, b"not a pickle").expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2",
        "unsupported pickle opcode",
    );

    std::fs::remove_file(&batch).expect("remove");
    assert_error(cifar10(dir.path()), "data_batch_2", "missing");
}

#[test]
fn pickles_written_by_real_numpy_are_read() {
    let expected: Vec<u8> = (0..2 * 3072).map(|i| (i * 7 % 256) as u8).collect();
    for protocol in [2, 5] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/numpy2-protocol{protocol}.pickle"));
        let bytes = std::fs::read(&path).expect("fixture");
        let (images, labels) =
            parse_python_batch(CifarKind::Cifar10, &path, &bytes).expect("numpy's pickle");
        assert_eq!(labels, [3, 9], "protocol {protocol}");
        assert_eq!(images, expected, "protocol {protocol}");
    }
}
