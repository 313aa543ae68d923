mod common;

use cnnzoo_tensorboard::{EventWriter, event_files, read_events};
use common::Scratch;

#[test]
fn writers_created_back_to_back_get_distinct_files() {
    let scratch = Scratch::new("naming");
    let a = EventWriter::create(scratch.path()).expect("first");
    let b = EventWriter::create(scratch.path()).expect("second");
    assert_ne!(a.path(), b.path());
    for w in [&a, &b] {
        let name = w
            .path()
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(&parts[..3], ["events", "out", "tfevents"], "{name}");
        assert!(
            parts[3].parse::<u64>().is_ok_and(|s| s > 1_600_000_000),
            "{name}"
        );
        assert_eq!(
            parts[parts.len() - 2],
            std::process::id().to_string(),
            "{name}"
        );
        assert!(parts[parts.len() - 1].parse::<u64>().is_ok(), "{name}");
    }
    drop((a, b));
    let files = event_files(scratch.path()).expect("list");
    assert_eq!(files.len(), 2);
    for file in &files {
        assert_eq!(
            read_events(file).expect("read").events.len(),
            1,
            "{}",
            file.display()
        );
    }
}

#[test]
fn create_makes_missing_folders_and_lists_only_event_files() {
    let scratch = Scratch::new("nested");
    let dir = scratch.path().join("runs/a");
    let writer = EventWriter::create(&dir).expect("create nested");
    std::fs::write(dir.join("notes.txt"), "not an event file").expect("write");
    assert_eq!(
        event_files(&dir).expect("list"),
        [writer.path().to_path_buf()]
    );
}
