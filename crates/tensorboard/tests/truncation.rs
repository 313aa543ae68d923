mod common;

use cnnzoo_tensorboard::proto::event::What;
use cnnzoo_tensorboard::{read_events, scalars};
use common::{Scratch, single_file, write_losses};

#[test]
fn truncated_tail_keeps_complete_records() {
    let scratch = Scratch::new("truncated");
    write_losses(scratch.path(), 1..=5);
    let path = single_file(scratch.path());
    let bytes = std::fs::read(&path).expect("read");

    for cut in [1, 3, 4, 10, 20] {
        std::fs::write(&path, &bytes[..bytes.len() - cut]).expect("write");
        let file = read_events(&path).expect("a truncated tail is not an error");
        assert!(file.truncated_tail, "cut {cut}");
        assert_eq!(
            file.events.len(),
            5,
            "cut {cut}: file_version + steps 1..=4"
        );
        assert!(matches!(file.events[0].what, Some(What::FileVersion(_))));
        let steps: Vec<i64> = scalars(&file.events)["loss"]
            .iter()
            .map(|p| p.step)
            .collect();
        assert_eq!(steps, [1, 2, 3, 4], "cut {cut}");
    }

    std::fs::write(&path, &bytes).expect("restore");
    let file = read_events(&path).expect("read");
    assert!(!file.truncated_tail);
    assert_eq!(file.events.len(), 6);
}
