mod common;

use cnnzoo_tensorboard::proto::event::What;
use cnnzoo_tensorboard::proto::hparams::{self, HParamsPluginData, hparams_plugin_data::Data};
use cnnzoo_tensorboard::proto::protobuf::value::Kind;
use cnnzoo_tensorboard::proto::session_log::SessionStatus as LogStatus;
use cnnzoo_tensorboard::proto::summary::value::Value as Payload;
use cnnzoo_tensorboard::proto::summary_metadata::PluginData;
use cnnzoo_tensorboard::proto::{DataType, Event, summary};
use cnnzoo_tensorboard::{EventWriter, HParamValue, SessionStatus, read_events, scalars};
use common::{Scratch, single_file};
use prost::Message;

fn only_value(event: &Event) -> &summary::Value {
    match &event.what {
        Some(What::Summary(s)) if s.value.len() == 1 => &s.value[0],
        other => panic!("expected a one-value summary, got {other:?}"),
    }
}

/// The one value of `event`, after checking its tag, step and wall time.
fn value_at<'a>(event: &'a Event, (tag, step, wall_time): (&str, i64, f64)) -> &'a summary::Value {
    let value = only_value(event);
    assert_eq!(
        (value.tag.as_str(), event.step, event.wall_time),
        (tag, step, wall_time)
    );
    value
}

/// The plugin data of `value`, after checking which plugin owns it.
fn plugin_data<'a>(value: &'a summary::Value, plugin_name: &str) -> &'a PluginData {
    let plugin = value
        .metadata
        .as_ref()
        .and_then(|m| m.plugin_data.as_ref())
        .expect("plugin data");
    assert_eq!(plugin.plugin_name, plugin_name);
    plugin
}

fn hparams_data(value: &summary::Value) -> Data {
    let plugin = plugin_data(value, "hparams");
    let data = HParamsPluginData::decode(plugin.content.as_slice()).expect("decode plugin data");
    assert_eq!(data.version, 0);
    data.data.expect("hparams oneof set")
}

#[test]
fn everything_written_reads_back() {
    let scratch = Scratch::new("roundtrip");
    let mut writer = EventWriter::create(scratch.path()).expect("create");
    let hp = vec![
        ("lr".to_owned(), HParamValue::Number(0.01)),
        ("optimizer".to_owned(), HParamValue::Text("adam".to_owned())),
        ("augment".to_owned(), HParamValue::Bool(true)),
    ];
    writer
        .add_hparams_start(&hp, &["val/acc", "train/loss"], "grp", 1000.5)
        .expect("hp start");
    writer
        .add_scalar("train/loss", 2.5, 1, 1001.25)
        .expect("scalar");
    writer
        .add_scalar("train/loss", 1.75, 2, 1002.0)
        .expect("scalar");
    writer
        .add_scalar("val/acc", 0.625, 2, 1002.5)
        .expect("scalar");
    writer
        .add_text("notes", "# Title\n*emph* ünïcode", 3, 1003.0)
        .expect("text");
    writer.add_session_start(2, 1004.0).expect("session start");
    writer
        .add_hparams_end(SessionStatus::Failure, 1005.75)
        .expect("hp end");
    writer.flush().expect("flush");
    let path = writer.path().to_path_buf();
    drop(writer);
    assert_eq!(single_file(scratch.path()), path);

    let file = read_events(&path).expect("read");
    assert!(!file.truncated_tail);
    let ev = &file.events;
    assert_eq!(ev.len(), 9);

    assert_eq!(
        ev[0].what,
        Some(What::FileVersion("brain.Event:2".to_owned()))
    );
    assert!(
        ev[0].wall_time > 1.6e9,
        "file_version wall time is now: {}",
        ev[0].wall_time
    );

    let exp = only_value(&ev[1]);
    assert_eq!(
        (exp.tag.as_str(), ev[1].step, ev[1].wall_time),
        ("_hparams_/experiment", 0, 1000.5)
    );
    assert_eq!(exp.value, None);
    let Data::Experiment(exp) = hparams_data(exp) else {
        panic!("not an experiment")
    };
    let infos: Vec<(&str, i32)> = exp
        .hparam_infos
        .iter()
        .map(|h| (h.name.as_str(), h.r#type))
        .collect();
    assert_eq!(
        infos,
        [
            ("augment", hparams::DataType::Bool as i32),
            ("lr", hparams::DataType::Float64 as i32),
            ("optimizer", hparams::DataType::String as i32),
        ]
    );
    let metrics: Vec<(&str, &str)> = exp
        .metric_infos
        .iter()
        .map(|m| {
            m.name
                .as_ref()
                .map(|n| (n.group.as_str(), n.tag.as_str()))
                .expect("metric name")
        })
        .collect();
    assert_eq!(metrics, [("", "val/acc"), ("", "train/loss")]);

    let start = value_at(&ev[2], ("_hparams_/session_start_info", 0, 1000.5));
    let Data::SessionStartInfo(start) = hparams_data(start) else {
        panic!("not a start info")
    };
    assert_eq!(start.group_name, "grp");
    assert_eq!(start.start_time_secs, 1000.5);
    let values: Vec<(&str, Option<Kind>)> = start
        .hparams
        .iter()
        .map(|(k, v)| (k.as_str(), v.kind.clone()))
        .collect();
    assert_eq!(
        values,
        [
            ("augment", Some(Kind::BoolValue(true))),
            ("lr", Some(Kind::NumberValue(0.01))),
            ("optimizer", Some(Kind::StringValue("adam".to_owned()))),
        ]
    );

    for (i, tag, value, step, wall) in [
        (3, "train/loss", 2.5, 1, 1001.25),
        (4, "train/loss", 1.75, 2, 1002.0),
        (5, "val/acc", 0.625, 2, 1002.5),
    ] {
        let v = value_at(&ev[i], (tag, step, wall));
        assert_eq!(v.value, Some(Payload::SimpleValue(value)));
        assert_eq!(v.metadata, None);
    }

    let text = value_at(&ev[6], ("notes", 3, 1003.0));
    plugin_data(text, "text");
    let Some(Payload::Tensor(t)) = &text.value else {
        panic!("text is not a tensor")
    };
    assert_eq!(t.dtype, DataType::DtString as i32);
    let shape = t.tensor_shape.as_ref().expect("shape present");
    assert!(shape.dim.is_empty() && !shape.unknown_rank, "scalar shape");
    assert_eq!(
        t.string_val,
        vec!["# Title\n*emph* ünïcode".as_bytes().to_vec()]
    );

    let Some(What::SessionLog(log)) = &ev[7].what else {
        panic!("not a session log")
    };
    assert_eq!(
        (log.status, ev[7].step, ev[7].wall_time),
        (LogStatus::Start as i32, 2, 1004.0)
    );

    let end = value_at(&ev[8], ("_hparams_/session_end_info", 0, 1005.75));
    let Data::SessionEndInfo(end) = hparams_data(end) else {
        panic!("not an end info")
    };
    assert_eq!(
        (end.status, end.end_time_secs),
        (hparams::Status::Failure as i32, 1005.75)
    );

    // The START at step 2 purges the step-2 points logged before it.
    let series = scalars(ev);
    let steps: Vec<(&str, Vec<i64>)> = series
        .iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(|p| p.step).collect()))
        .collect();
    assert_eq!(steps, [("train/loss", vec![1]), ("val/acc", vec![])]);
    assert_eq!(series["train/loss"][0].wall_time, 1001.25);
    assert_eq!(series["train/loss"][0].value, 2.5);
}
