//! CIFAR-100's two labellings: the fine labels and the 20 coarse ones, from the binary records'
//! two label bytes and from the python batches' two label lists, with their class names; and
//! the python archive a missing CIFAR-100 is downloaded as.

use cnnzoo_cifar::{CifarKind, FetchOptions, Source, load};

use crate::common::{quiet, refused_download, synthetic_image};
use crate::synthetic::{cifar100_labels, cifar100_python_archive};

/// A binary record: the coarse label byte, the fine one, then the pixels.
fn record(coarse: u8, fine: u8, seed: usize) -> Vec<u8> {
    let mut bytes = vec![coarse, fine];
    bytes.extend_from_slice(&synthetic_image(seed));
    bytes
}

#[test]
fn binary_records_give_the_first_byte_as_the_coarse_label() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path().join("cifar-100-binary");
    std::fs::create_dir_all(&folder).expect("folder");
    let train: Vec<u8> = [(4, 98, 1), (19, 0, 2), (0, 99, 3)]
        .iter()
        .flat_map(|&(coarse, fine, seed)| record(coarse, fine, seed))
        .collect();
    std::fs::write(folder.join("train.bin"), &train).expect("train");
    std::fs::write(folder.join("test.bin"), record(7, 5, 9)).expect("test");

    let coarse = load(CifarKind::Cifar100Coarse, dir.path(), &quiet()).expect("coarse");
    assert_eq!(coarse.train.labels, [4, 19, 0]);
    assert_eq!(coarse.test.labels, [7]);
    assert_eq!(coarse.train.num_classes(), 20);
    // Without coarse_label_names.txt the official names are used.
    assert_eq!(coarse.train.classes[19], "vehicles_2");
    assert_eq!(coarse.train.image(1), Some(&synthetic_image(2)[..]));
    let fine = load(CifarKind::Cifar100, dir.path(), &quiet()).expect("fine");
    assert_eq!(fine.train.labels, [98, 0, 99]);

    // The class-name file of the binary layout is read, and must list 20 names.
    let names: Vec<String> = (0..20).map(|i| format!("group{i}")).collect();
    std::fs::write(folder.join("coarse_label_names.txt"), names.join("\n")).expect("names");
    let named = load(CifarKind::Cifar100Coarse, dir.path(), &quiet()).expect("named");
    assert_eq!(named.train.classes, names);
    std::fs::write(folder.join("coarse_label_names.txt"), "a\nb\n").expect("names");
    let message = load(CifarKind::Cifar100Coarse, dir.path(), &quiet())
        .expect_err("2 names")
        .to_string();
    assert!(message.contains("coarse_label_names.txt"), "{message}");
    assert!(
        message.contains("lists 2 class names, expected 20"),
        "{message}"
    );

    // A fine label out of range is refused even when training on the coarse ones.
    std::fs::remove_file(folder.join("coarse_label_names.txt")).expect("remove");
    std::fs::write(folder.join("test.bin"), record(7, 100, 9)).expect("test");
    let message = load(CifarKind::Cifar100Coarse, dir.path(), &quiet())
        .expect_err("fine label 100")
        .to_string();
    assert!(message.contains("record 0 has fine label 100"), "{message}");
}

#[test]
fn python_archives_give_either_label_list_and_its_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cifar-100-python.tar.gz");
    std::fs::write(&path, cifar100_python_archive(30, 7)).expect("archive");

    let fine = load(CifarKind::Cifar100, dir.path(), &quiet()).expect("fine");
    let coarse = load(CifarKind::Cifar100Coarse, dir.path(), &quiet()).expect("coarse");
    assert_eq!(fine.source, Source::PythonArchive(path));
    let expected = |range: std::ops::Range<usize>, pick: fn((u8, u8)) -> u8| {
        range.map(|i| pick(cifar100_labels(i))).collect::<Vec<u8>>()
    };
    assert_eq!(fine.train.labels, expected(0..30, |(f, _)| f));
    assert_eq!(fine.test.labels, expected(30..37, |(f, _)| f));
    assert_eq!(coarse.train.labels, expected(0..30, |(_, c)| c));
    assert_eq!(coarse.test.labels, expected(30..37, |(_, c)| c));
    assert_eq!(fine.train.labels[1..3], [37, 74]);
    assert_eq!(coarse.train.labels[1..3], [17, 14]);
    assert_eq!(fine.train.images, coarse.train.images);
    assert_eq!(fine.train.classes.len(), 100);
    assert_eq!(fine.train.classes[99], "worm");
    assert_eq!(coarse.train.classes.len(), 20);
    assert_eq!(coarse.train.classes[0], "aquatic_mammals");
}

#[test]
fn a_missing_cifar100_is_downloaded_as_the_python_archive() {
    let official = FetchOptions {
        url: None,
        verbose: false,
    };
    for kind in [CifarKind::Cifar100, CifarKind::Cifar100Coarse] {
        assert_eq!(
            official.url_for(kind),
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
        );
    }
    assert_eq!(
        official.url_for(CifarKind::Cifar10),
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    );

    // A download is checked against torchvision's md5 of the python archive, under its name.
    let (message, _dir) = refused_download(CifarKind::Cifar100, cifar100_python_archive(3, 1));
    assert!(
        message.contains("eb9058c3a382ffc7106e4002c42a8d85"),
        "{message}"
    );
    assert!(message.contains("cifar-100-python.tar.gz"), "{message}");
}
