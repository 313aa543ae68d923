//! Byte-level checks against encodings derived by hand from the protobuf wire format, so that a
//! wrong field number or wire type in `proto.rs` fails here even though it would round-trip.
//!
//! A key byte is `field_number << 3 | wire_type` (0 varint, 1 fixed64, 2 length-delimited,
//! 5 fixed32).

mod common;

use cnnzoo_tensorboard::proto::event::What;
use cnnzoo_tensorboard::proto::{Event, summary};
use cnnzoo_tensorboard::{EventWriter, HParamValue, SessionStatus, masked_crc32c};
use common::{Scratch, single_file};
use prost::Message;

/// `1.5` as a little-endian IEEE double, the `wall_time` of every event below.
const WALL: [u8; 8] = [0, 0, 0, 0, 0, 0, 0xF8, 0x3F];

/// Splits a file into payloads by the TFRecord framing, checking it along the way.
fn payloads(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u64::from_le_bytes(rest[..8].try_into().expect("len")) as usize;
        assert_eq!(&rest[8..12], masked_crc32c(&rest[..8]).to_le_bytes());
        let payload = &rest[12..12 + len];
        assert_eq!(
            &rest[12 + len..16 + len],
            masked_crc32c(payload).to_le_bytes()
        );
        out.push(payload.to_vec());
        rest = &rest[16 + len..];
    }
    out
}

fn written(write: impl FnOnce(&mut EventWriter)) -> Vec<Vec<u8>> {
    let scratch = Scratch::new("golden");
    let mut writer = EventWriter::create(scratch.path()).expect("create");
    write(&mut writer);
    writer.flush().expect("flush");
    drop(writer);
    payloads(&std::fs::read(single_file(scratch.path())).expect("read"))
}

fn event(body: &[u8]) -> Vec<u8> {
    [&[0x09][..], &WALL, body].concat()
}

#[test]
fn file_version_record() {
    let records = written(|_| {});
    assert_eq!(records.len(), 1);
    let first = &records[0];
    assert_eq!(first[0], 0x09, "field 1 (wall_time), fixed64");
    assert_eq!(
        &first[9..],
        [&[0x1A, 13][..], b"brain.Event:2"].concat(),
        "field 3, string"
    );
}

#[test]
fn scalar_event_bytes() {
    let records = written(|w| w.add_scalar("a", 2.0, 3, 1.5).expect("scalar"));
    let value = [&[0x0A, 1, b'a'][..], &[0x15, 0, 0, 0, 0x40]].concat(); // tag; simple_value 2.0f32
    let summary = [&[0x0A, value.len() as u8][..], &value].concat();
    let expected = event(&[&[0x10, 3, 0x2A, summary.len() as u8][..], &summary].concat());
    assert_eq!(expected.len(), 23);
    assert_eq!(records[1], expected);
}

#[test]
fn session_start_event_bytes() {
    let records = written(|w| w.add_session_start(6, 1.5).expect("start"));
    // step 6; field 7 (session_log) holding field 1 (status) = START (1).
    assert_eq!(records[1], event(&[0x10, 6, 0x3A, 2, 0x08, 1]));
}

#[test]
fn text_event_bytes() {
    let records = written(|w| w.add_text("t", "hi", 2, 1.5).expect("text"));
    // dtype DT_STRING (7); empty tensor_shape; string_val "hi".
    let tensor = [0x08, 7, 0x12, 0, 0x42, 2, b'h', b'i'];
    // metadata.plugin_data.plugin_name = "text"; empty content is omitted.
    let plugin_data = [&[0x0A, 4][..], b"text"].concat();
    let metadata = [&[0x0A, plugin_data.len() as u8][..], &plugin_data].concat();
    let value = [
        &[0x0A, 1, b't'][..],
        &[0x42, tensor.len() as u8],
        &tensor,
        &[0x4A, metadata.len() as u8],
        &metadata,
    ]
    .concat();
    let summary = [&[0x0A, value.len() as u8][..], &value].concat();
    let expected = event(&[&[0x10, 2, 0x2A, summary.len() as u8][..], &summary].concat());
    assert_eq!(records[1], expected);
}

fn plugin_content(payload: &[u8], tag: &str) -> Vec<u8> {
    let event = Event::decode(payload).expect("decode");
    let Some(What::Summary(s)) = event.what else {
        panic!("not a summary")
    };
    let value: &summary::Value = &s.value[0];
    assert_eq!(value.tag, tag);
    let plugin = value
        .metadata
        .clone()
        .and_then(|m| m.plugin_data)
        .expect("plugin data");
    assert_eq!(plugin.plugin_name, "hparams");
    plugin.content
}

#[test]
fn hparams_plugin_content_bytes() {
    let records = written(|w| {
        let hp = [
            ("lr".to_owned(), HParamValue::Number(0.5)),
            ("on".to_owned(), HParamValue::Bool(true)),
        ];
        w.add_hparams_start(&hp, &["acc"], "g", 1.5).expect("start");
        w.add_hparams_end(SessionStatus::Success, 1.5).expect("end");
    });
    assert_eq!(records.len(), 4);

    // HParamsPluginData.experiment (2) { hparam_infos (4) { name (1), type (4) }, metric_infos (5)
    // { name (1) { tag (2) } } }; version 0 is omitted.
    let experiment = [
        &[0x22, 6, 0x0A, 2, b'l', b'r', 0x20, 3][..], // DATA_TYPE_FLOAT64
        &[0x22, 6, 0x0A, 2, b'o', b'n', 0x20, 2],     // DATA_TYPE_BOOL
        &[0x2A, 7, 0x0A, 5, 0x12, 3, b'a', b'c', b'c'],
    ]
    .concat();
    let expected = [&[0x12, experiment.len() as u8][..], &experiment].concat();
    assert_eq!(
        plugin_content(&records[1], "_hparams_/experiment"),
        expected
    );

    // session_start_info (3) { hparams (1) map entries { key (1), value (2) google.protobuf.Value
    // { number_value (2) | bool_value (4) } }, group_name (4), start_time_secs (5) }.
    let start = [
        &[0x0A, 15, 0x0A, 2, b'l', b'r', 0x12, 9, 0x11][..],
        &[0, 0, 0, 0, 0, 0, 0xE0, 0x3F], // 0.5
        &[0x0A, 8, 0x0A, 2, b'o', b'n', 0x12, 2, 0x20, 1],
        &[0x22, 1, b'g'],
        &[0x29],
        &WALL,
    ]
    .concat();
    let expected = [&[0x1A, start.len() as u8][..], &start].concat();
    assert_eq!(
        plugin_content(&records[2], "_hparams_/session_start_info"),
        expected
    );

    // session_end_info (4) { status (1) = STATUS_SUCCESS (1), end_time_secs (2) }.
    let end = [&[0x08, 1, 0x11][..], &WALL].concat();
    let expected = [&[0x22, end.len() as u8][..], &end].concat();
    assert_eq!(
        plugin_content(&records[3], "_hparams_/session_end_info"),
        expected
    );
}
