//! Finding and parsing data folders and archives (read in place: nothing is written), and every
//! corrupt input the issue lists.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cnnzoo_cifar::{
    CifarError, CifarKind, IMAGE_BYTES, Source, load, locate, parse_python_batch, read_source,
    split_train_val, val_count,
};

use crate::common::{
    MINI_ARCHIVE, binary_batch, cifar10_batch_files, gzip, listing_with_md5s, mini, mini_data_dir,
    mini_folder, python_batch, quiet, synthetic_image, tar_gz, tar_with_raw_path,
    write_binary_folder,
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
fn archive_is_read_in_place_and_nothing_is_written() {
    let dir = mini_data_dir();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let before = listing_with_md5s(dir.path());
    assert_eq!(
        before,
        [(
            "cifar-10-binary.tar.gz".to_owned(),
            Some(crate::common::md5_hex(
                &std::fs::read(MINI_ARCHIVE).expect("mini archive")
            ))
        )]
    );

    let source = locate(CifarKind::Cifar10, dir.path(), &quiet()).expect("finds the archive");
    assert_eq!(source, Source::BinaryArchive(archive.clone()));
    assert_eq!(source.path(), archive);
    let data = cifar10(dir.path()).expect("reads the archive");
    assert_eq!((data.train.len(), data.test.len()), (4065, 1020));
    assert_eq!(data.source, Source::BinaryArchive(archive));
    // No extracted folder, no staging folder, the archive untouched.
    assert_eq!(listing_with_md5s(dir.path()), before);

    // The archive read in place gives exactly what its extracted folder gives.
    let extracted = tempfile::tempdir().expect("temp dir");
    let file = std::fs::File::open(MINI_ARCHIVE).expect("mini archive");
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(extracted.path())
        .expect("unpack");
    let folder = extracted.path().join("cifar-10-batches-bin");
    let from_folder = cifar10(extracted.path()).expect("reads the folder");
    assert_eq!(from_folder.source, Source::BinaryFolder(folder.clone()));
    assert_eq!(from_folder.train, data.train);
    assert_eq!(from_folder.test, data.test);
    assert_eq!(
        read_source(CifarKind::Cifar10, &Source::BinaryFolder(folder)).expect("folder"),
        from_folder
    );
}

#[test]
fn a_read_only_data_folder_loads() {
    let dir = mini_data_dir();
    let archive = dir.path().join("cifar-10-binary.tar.gz");
    let before = listing_with_md5s(dir.path());
    std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o444)).expect("chmod");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o555)).expect("chmod");
    let result = cifar10(dir.path());
    let after = listing_with_md5s(dir.path());
    // Writable again, so that the folder can be deleted.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let data = result.expect("a read-only data folder is only read");
    assert_eq!((data.train.len(), data.test.len()), (4065, 1020));
    // Root ignores the permission bits: the listing shows that nothing was written anyway.
    assert_eq!(after, before);
}

#[test]
fn the_shared_mini_folder_is_read_where_it_is() {
    let before = listing_with_md5s(mini_folder());
    let data = cifar10(mini_folder()).expect("mini folder");
    assert_eq!(
        data.source,
        Source::BinaryArchive(mini_folder().join("cifar-10-binary.tar.gz"))
    );
    assert_eq!(&data, mini());
    assert_eq!(listing_with_md5s(mini_folder()), before);
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
/// the data folder holds only the archive: nothing is written, not even for a bad archive.
/// Returns the data folder.
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

/// The members of a synthetic binary CIFAR-10 archive: `cifar-10-batches-bin/NAME` for each
/// batch, with two records each (labels `batch % 10` and 7) and a class-name list of its own.
fn synthetic_binary_members() -> Vec<(String, Vec<u8>)> {
    let mut members: Vec<(String, Vec<u8>)> = cifar10_batch_files(".bin")
        .iter()
        .zip(1..=6)
        .map(|(name, i)| {
            (
                format!("cifar-10-batches-bin/{name}"),
                binary_batch(&[i as u8 % 10, 7], i),
            )
        })
        .collect();
    let names: String = (0..10).map(|i| format!("class {i}\n")).collect();
    members.push((
        "cifar-10-batches-bin/batches.meta.txt".to_owned(),
        names.into_bytes(),
    ));
    members
}

/// A gzip-compressed tar of `members`.
fn archive_of(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let files: Vec<(&str, &[u8])> = members
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    tar_gz(&files)
}

#[test]
fn a_synthetic_archive_round_trips() {
    let (dir, result) = load_archive(&archive_of(&synthetic_binary_members()));
    let data = result.expect("valid archive");
    assert_eq!(data.train.labels, [1, 7, 2, 7, 3, 7, 4, 7, 5, 7]);
    assert_eq!(data.test.labels, [6, 7]);
    assert_eq!(data.train.image(2), Some(&synthetic_image(2000)[..]));
    // The class names are the archive's own list, not the defaults.
    assert_eq!(data.train.classes[0], "class 0");
    assert_eq!(data.test.classes[9], "class 9");
    assert_eq!(entry_names(dir.path()), ["cifar-10-binary.tar.gz"]);
}

#[test]
fn a_bad_member_of_an_archive_is_named_with_the_archive() {
    let archive_with = |member: &str, bytes: Vec<u8>| {
        let mut members = synthetic_binary_members();
        let path = format!("cifar-10-batches-bin/{member}");
        members.retain(|(name, _)| *name != path);
        members.push((path, bytes));
        archive_of(&members)
    };
    let named = |dir: &Path, member: &str| {
        format!(
            "{}: cifar-10-batches-bin/{member}: ",
            dir.join("cifar-10-binary.tar.gz").display()
        )
    };

    let (dir, result) = load_archive(&archive_with("data_batch_3.bin", vec![0; 7146]));
    assert_error(
        result,
        &named(dir.path(), "data_batch_3.bin"),
        "7146 bytes is not a multiple of the 3073-byte record size",
    );

    let mut labels = vec![3u8; 20];
    labels[17] = 12;
    let (dir, result) = load_archive(&archive_with("test_batch.bin", binary_batch(&labels, 2)));
    assert_error(
        result,
        &named(dir.path(), "test_batch.bin"),
        "record 17 has label 12, CIFAR-10 labels are 0..=9",
    );

    let (dir, result) = load_archive(&archive_with("data_batch_1.bin", Vec::new()));
    assert_error(
        result,
        &named(dir.path(), "data_batch_1.bin"),
        "the batch file is empty",
    );

    let (dir, result) = load_archive(&archive_with("batches.meta.txt", b"cat\ndog\n".to_vec()));
    assert_error(
        result,
        &named(dir.path(), "batches.meta.txt"),
        "lists 2 class names, expected 10",
    );

    // Only the test batch is missing: reported before any batch is parsed, as a member.
    let mut members = synthetic_binary_members();
    members.retain(|(name, _)| !name.ends_with("test_batch.bin"));
    assert_archive_refused(
        &archive_of(&members),
        "the archive has no cifar-10-batches-bin/test_batch.bin",
    );
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
        std::fs::write(
            folder.join(name),
            python_batch(&images, &[("labels", &labels)]),
        )
        .expect("batch");
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
    assert_eq!(
        data.source,
        Source::PythonFolder(dir.path().join("cifar-10-batches-py"))
    );
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
fn torchvision_python_archive_is_read_in_place() {
    let source = tempfile::tempdir().expect("temp dir");
    let labels = write_python_folder(source.path(), 2);
    let mut members: Vec<(String, Vec<u8>)> = cifar10_batch_files("")
        .iter()
        .map(|name| {
            let path = format!("cifar-10-batches-py/{name}");
            let bytes = std::fs::read(source.path().join(&path)).expect("batch");
            (path, bytes)
        })
        .collect();
    // A class-name list of its own, to show that the archive's meta file is the one read.
    let names: Vec<String> = (0..10).map(|i| format!("kind {i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut meta = crate::common::Py2Pickle::default();
    meta.begin_dict();
    meta.string(b"label_names");
    meta.string_list(&names);
    meta.end_dict();
    members.push(("cifar-10-batches-py/batches.meta".to_owned(), meta.finish()));
    let dir = tempfile::tempdir().expect("temp dir");
    let archive = dir.path().join("cifar-10-python.tar.gz");
    std::fs::write(&archive, archive_of(&members)).expect("archive");
    let before = listing_with_md5s(dir.path());

    assert_eq!(
        locate(CifarKind::Cifar10, dir.path(), &quiet()).expect("finds the archive"),
        Source::PythonArchive(archive.clone())
    );
    let data = cifar10(dir.path()).expect("python archive");
    assert_eq!(data.source, Source::PythonArchive(archive.clone()));
    assert_eq!(data.train.labels, labels);
    assert_eq!(data.test.len(), 2);
    assert_eq!(data.train.image(3), Some(&synthetic_image(101)[..]));
    assert_eq!(data.train.classes, names);
    assert_eq!(listing_with_md5s(dir.path()), before);

    // A bad batch is named inside the archive; a missing one makes the archive incomplete.
    let member = "cifar-10-batches-py/data_batch_2";
    let mut broken = members.clone();
    broken
        .iter_mut()
        .filter(|(name, _)| name == member)
        .for_each(|(_, bytes)| *bytes = b"not a pickle".to_vec());
    std::fs::write(&archive, archive_of(&broken)).expect("archive");
    assert_error(
        cifar10(dir.path()),
        &format!("{}: {member}: ", archive.display()),
        "unsupported pickle opcode",
    );
    broken.retain(|(name, _)| name != member);
    std::fs::write(&archive, archive_of(&broken)).expect("archive");
    assert_error(
        cifar10(dir.path()),
        "cifar-10-python.tar.gz",
        "the archive has no cifar-10-batches-py/data_batch_2",
    );
}

#[test]
fn cifar100_archives_are_read_in_place() {
    let record = |coarse: u8, fine: u8, seed: usize| {
        let mut bytes = vec![coarse, fine];
        bytes.extend_from_slice(&synthetic_image(seed));
        bytes
    };
    let train: Vec<u8> = [(4, 98, 1), (19, 0, 2), (0, 99, 3)]
        .iter()
        .flat_map(|&(coarse, fine, seed)| record(coarse, fine, seed))
        .collect();
    let archive = archive_of(&[
        ("cifar-100-binary/train.bin".to_owned(), train),
        ("cifar-100-binary/test.bin".to_owned(), record(1, 5, 9)),
    ]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cifar-100-binary.tar.gz");
    std::fs::write(&path, archive).expect("archive");
    let data = load(CifarKind::Cifar100, dir.path(), &quiet()).expect("CIFAR-100 archive");
    assert_eq!(data.source, Source::BinaryArchive(path));
    assert_eq!(data.train.labels, [98, 0, 99]);
    assert_eq!(data.test.labels, [5]);
    assert_eq!(data.train.classes[98], "woman");
    assert_eq!(data.train.image(1), Some(&synthetic_image(2)[..]));
    assert_eq!(entry_names(dir.path()), ["cifar-100-binary.tar.gz"]);

    // A CIFAR-10 archive is not CIFAR-100 data.
    std::fs::remove_file(dir.path().join("cifar-100-binary.tar.gz")).expect("remove");
    std::fs::write(
        dir.path().join("cifar-100-binary.tar.gz"),
        archive_of(&synthetic_binary_members()),
    )
    .expect("archive");
    assert_error(
        load(CifarKind::Cifar100, dir.path(), &quiet()),
        "cifar-100-binary.tar.gz",
        "the archive has no cifar-100-binary/",
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
    std::fs::write(&batch, python_batch(&images, &[("labels", &[1, 12])])).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2",
        "record 1 has label 12, CIFAR-10 labels are 0..=9",
    );

    std::fs::write(&batch, python_batch(&images, &[("labels", &[1])])).expect("write");
    assert_error(
        cifar10(dir.path()),
        "data_batch_2",
        "1 entries for 2 images",
    );

    std::fs::write(&batch, python_batch(&images, &[("fine_labels", &[1, 2])])).expect("write");
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
