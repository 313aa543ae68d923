mod common;

use cnnzoo_tensorboard::{Error, EventWriter, masked_crc32c, read_events};
use common::{Scratch, single_file};

#[test]
fn masked_crc_matches_published_check_value() {
    // CRC-32C (Castagnoli) check value of "123456789" (RFC 3720, CRC catalogue).
    let crc: u32 = 0xE306_9283;
    #[expect(
        clippy::manual_rotate,
        reason = "the TFRecord formula, spelled out independently of the library's rotate_right"
    )]
    let masked = ((crc >> 15) | (crc << 17)).wrapping_add(0xa282_ead8);
    assert_eq!(masked_crc32c(b"123456789"), masked);
    // The empty input has CRC 0, so its masked value is the mask constant alone.
    assert_eq!(masked_crc32c(b""), 0xa282_ead8);
}

fn write_two_scalars(dir: &std::path::Path) -> std::path::PathBuf {
    let mut writer = EventWriter::create(dir).expect("create");
    writer.add_scalar("a", 1.0, 1, 10.0).expect("scalar");
    writer.add_scalar("a", 2.0, 2, 20.0).expect("scalar");
    writer.flush().expect("flush");
    drop(writer);
    single_file(dir)
}

fn first_record_len(bytes: &[u8]) -> usize {
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    12 + len as usize + 4
}

#[test]
fn flipped_payload_byte_is_an_error_naming_the_offset() {
    let scratch = Scratch::new("crc-payload");
    let path = write_two_scalars(scratch.path());
    let mut bytes = std::fs::read(&path).expect("read");
    assert_eq!(read_events(&path).expect("intact file").events.len(), 3);

    // Damage the payload of the second record (the first scalar).
    let second = first_record_len(&bytes);
    bytes[second + 12 + 2] ^= 0x40;
    std::fs::write(&path, &bytes).expect("write");

    let err = read_events(&path).expect_err("corrupt payload must fail");
    match &err {
        Error::Corrupt {
            path: p,
            offset,
            reason,
        } => {
            assert_eq!(p, &path);
            assert_eq!(*offset, second as u64);
            assert_eq!(*reason, "payload checksum mismatch");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains(&format!("byte offset {second}")),
        "{message}"
    );
}

#[test]
fn flipped_length_byte_is_an_error() {
    let scratch = Scratch::new("crc-length");
    let path = write_two_scalars(scratch.path());
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[0] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    match read_events(&path) {
        Err(Error::Corrupt {
            offset: 0, reason, ..
        }) => assert_eq!(reason, "length checksum mismatch"),
        other => panic!("expected Corrupt at 0, got {other:?}"),
    }
}
