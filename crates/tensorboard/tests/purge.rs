mod common;

use cnnzoo_tensorboard::{EventWriter, event_files, read_events, scalars};
use common::{Scratch, log_losses, write_losses};

fn steps(dir: &std::path::Path, tag: &str) -> Vec<(i64, f32)> {
    let mut events = Vec::new();
    for file in event_files(dir).expect("list") {
        events.extend(read_events(&file).expect("read").events);
    }
    scalars(&events)[tag]
        .iter()
        .map(|p| (p.step, p.value))
        .collect()
}

#[test]
fn session_start_purges_later_steps_like_tensorboard() {
    let scratch = Scratch::new("purge");
    let mut writer = EventWriter::create(scratch.path()).expect("create");
    log_losses(&mut writer, 1..=10);
    for step in 1..=10 {
        writer
            .add_scalar("acc", -(step as f64), step, step as f64)
            .expect("scalar");
    }
    writer.add_session_start(6, 100.0).expect("start");
    for step in 6..=8 {
        writer
            .add_scalar("loss", 100.0 + step as f64, step, 100.0 + step as f64)
            .expect("scalar");
    }
    writer.flush().expect("flush");

    let loss = steps(scratch.path(), "loss");
    let expected: Vec<(i64, f32)> = (1..=5)
        .map(|s| (s, s as f32))
        .chain((6..=8).map(|s| (s, 100.0 + s as f32)))
        .collect();
    assert_eq!(loss, expected);
    // A tag not re-logged after the restart is purged too (the Python accumulator purges all tags).
    let acc = steps(scratch.path(), "acc");
    assert_eq!(acc, (1..=5).map(|s| (s, -(s as f32))).collect::<Vec<_>>());
}

#[test]
fn purge_spans_files_of_one_run() {
    let scratch = Scratch::new("purge-files");
    write_losses(scratch.path(), 1..=10);
    let mut resumed = EventWriter::create(scratch.path()).expect("create");
    resumed.add_session_start(6, 50.0).expect("start");
    for step in 6..=8 {
        resumed.add_scalar("loss", 0.5, step, 50.0).expect("scalar");
    }
    resumed.flush().expect("flush");

    let got: Vec<i64> = steps(scratch.path(), "loss").iter().map(|p| p.0).collect();
    assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn start_at_every_process_start_purges_only_on_resume() {
    // The recommended pattern: the fresh process also writes a START (which TensorBoard's server
    // needs, as it ignores a run's first one); it precedes every point and purges nothing.
    let scratch = Scratch::new("purge-pattern");
    let mut first = EventWriter::create(scratch.path()).expect("create");
    first.add_session_start(1, 0.0).expect("start");
    log_losses(&mut first, 1..=10);
    first.flush().expect("flush");
    drop(first);
    assert_eq!(steps(scratch.path(), "loss").len(), 10);

    let mut resumed = EventWriter::create(scratch.path()).expect("create");
    resumed.add_session_start(6, 50.0).expect("start");
    for step in 6..=8 {
        resumed.add_scalar("loss", 0.5, step, 50.0).expect("scalar");
    }
    resumed.flush().expect("flush");
    let got = steps(scratch.path(), "loss");
    let expected: Vec<(i64, f32)> = (1..=5)
        .map(|s| (s, s as f32))
        .chain((6..=8).map(|s| (s, 0.5)))
        .collect();
    assert_eq!(got, expected);
}
