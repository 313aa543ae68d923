//! Appending events to a fresh event file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::hparams::{
    self, Experiment, HParamInfo, HParamsPluginData, MetricInfo, MetricName, SessionEndInfo,
    SessionStartInfo, hparams_plugin_data::Data,
};
use crate::proto::session_log::SessionStatus as LogStatus;
use crate::proto::summary::{self, value::Value as Payload};
use crate::proto::summary_metadata::PluginData;
use crate::proto::{
    DataType, Event, SessionLog, Summary, SummaryMetadata, TensorProto, TensorShapeProto, event,
    protobuf,
};
use crate::record;

/// The version string TensorBoard needs to apply `SessionLog.START` purges (it parses the number
/// after the colon and purges by session log only from version 2 on).
pub(crate) const FILE_VERSION: &str = "brain.Event:2";

/// Tag of the hparams plugin's column declaration (`tensorboard.plugins.hparams.metadata`); the
/// plugin finds its data by these exact tags.
pub const HPARAMS_EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// Tag of a run's hparam values.
pub const HPARAMS_SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// Tag of a run's final status.
pub const HPARAMS_SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// Makes file names unique among the writers of one process; the pid in the name separates
/// processes, and `create_new` catches anything left over (e.g. a recycled pid).
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Taken names skipped before giving up; only a folder full of files from a recycled pid in the
/// same second gets near it, and a bound turns a naming bug into an error instead of a hang.
const MAX_NAME_ATTEMPTS: u32 = 1000;

/// How a session ended, for [`EventWriter::add_hparams_end`].
pub use crate::proto::hparams::Status as SessionStatus;

/// One hyperparameter value; the variant decides how the HParams tab filters and sorts it.
#[derive(Debug, Clone, PartialEq)]
pub enum HParamValue {
    Number(f64),
    Text(String),
    Bool(bool),
}

/// Writes one event file; each training process (or resume) gets its own.
///
/// Records go through a `BufWriter` and are each handed to it whole, so a crash leaves at most
/// one partial record at the end, which [`read_events`](crate::read_events) reports instead of
/// failing on. Dropping the writer flushes the buffer but swallows errors and does not sync:
/// call [`flush`](Self::flush) at the points (checkpoints) whose data must survive.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
}

impl EventWriter {
    /// Creates `dir` if needed and a new `events.out.tfevents.<secs>.<host>.<pid>.<n>` in it,
    /// starting with the `file_version` record.
    pub fn create(dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let prefix = format!(
            "events.out.tfevents.{}.{}.{}",
            now.as_secs(),
            hostname(),
            std::process::id()
        );
        let mut attempt = 0;
        let (path, file) = loop {
            let n = FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{prefix}.{n}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < MAX_NAME_ATTEMPTS => {
                    attempt += 1;
                }
                Err(source) => return Err(Error::Io { path, source }),
            }
        };
        let mut writer = Self {
            path,
            out: BufWriter::new(file),
        };
        writer.write_event(
            now.as_secs_f64(),
            0,
            event::What::FileVersion(FILE_VERSION.into()),
        )?;
        Ok(writer)
    }

    /// The file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logs a scalar in the legacy `simple_value` form, which the scalar dashboard reads without
    /// any plugin metadata. TensorBoard stores scalars as `f32`, so `value` is narrowed here.
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64, wall_time: f64) -> Result<()> {
        self.write_value(
            step,
            wall_time,
            tag,
            None,
            Payload::SimpleValue(value as f32),
        )
    }

    /// Logs markdown for the Text tab: a scalar `DT_STRING` tensor owned by the `text` plugin.
    pub fn add_text(&mut self, tag: &str, markdown: &str, step: i64, wall_time: f64) -> Result<()> {
        let tensor = TensorProto {
            dtype: DataType::DtString as i32,
            tensor_shape: Some(TensorShapeProto::default()),
            string_val: vec![markdown.as_bytes().to_vec()],
        };
        // The text plugin's content is a `TextPluginData { version: 0 }`, which encodes to nothing.
        let metadata = plugin_metadata("text", Vec::new());
        self.write_value(
            step,
            wall_time,
            tag,
            Some(metadata),
            Payload::Tensor(Box::new(tensor)),
        )
    }

    /// Declares this run's hyperparameters and the scalar tags the HParams tab should show as
    /// metrics, as tensorboardX's `add_hparams` does: an `_hparams_/experiment` summary listing
    /// the columns and an `_hparams_/session_start_info` summary with this run's values.
    ///
    /// The metrics themselves are ordinary [`add_scalar`](Self::add_scalar) series in the same
    /// run. Runs with the same `group_name` are aggregated into one row. A name given twice keeps
    /// its last value. Both summaries are written at step 0 so that no restart purge removes them.
    pub fn add_hparams_start(
        &mut self,
        hparams: &[(String, HParamValue)],
        metric_tags: &[&str],
        group_name: &str,
        start_time_secs: f64,
    ) -> Result<()> {
        let values: BTreeMap<String, HParamValue> = hparams.iter().cloned().collect();
        let experiment = Experiment {
            hparam_infos: values
                .iter()
                .map(|(name, value)| HParamInfo {
                    name: name.clone(),
                    r#type: hparam_type(value) as i32,
                    ..HParamInfo::default()
                })
                .collect(),
            metric_infos: metric_tags
                .iter()
                .map(|tag| MetricInfo {
                    name: Some(MetricName {
                        group: String::new(),
                        tag: (*tag).to_owned(),
                    }),
                    ..MetricInfo::default()
                })
                .collect(),
            ..Experiment::default()
        };
        let start = SessionStartInfo {
            hparams: values
                .into_iter()
                .map(|(name, value)| (name, protobuf_value(value)))
                .collect(),
            group_name: group_name.to_owned(),
            start_time_secs,
            ..SessionStartInfo::default()
        };
        self.write_hparams(Data::Experiment(experiment), start_time_secs)?;
        self.write_hparams(Data::SessionStartInfo(start), start_time_secs)
    }

    /// Marks the session finished, which sets its status in the HParams tab.
    pub fn add_hparams_end(&mut self, status: SessionStatus, end_time_secs: f64) -> Result<()> {
        let end = SessionEndInfo {
            status: status as i32,
            end_time_secs,
        };
        self.write_hparams(Data::SessionEndInfo(end), end_time_secs)
    }

    /// Marks the beginning of a training process whose first logged step will be `step`.
    ///
    /// Call it in every process, fresh or resumed: TensorBoard drops the points of this run that
    /// it loaded before with a step `>= step`, but its server ignores the first `START` of a run,
    /// so a resume is only recognised if the fresh start wrote one too (see the crate docs).
    pub fn add_session_start(&mut self, step: i64, wall_time: f64) -> Result<()> {
        let log = SessionLog {
            status: LogStatus::Start as i32,
        };
        self.write_event(wall_time, step, event::What::SessionLog(log))
    }

    /// Pushes buffered records to the file and `sync_data`s it, so that what was logged so far
    /// survives a crash of the process or of the machine.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(Error::io(&self.path))?;
        self.out
            .get_ref()
            .sync_data()
            .map_err(Error::io(&self.path))
    }

    fn write_hparams(&mut self, data: Data, wall_time: f64) -> Result<()> {
        let tag = match &data {
            Data::Experiment(_) => HPARAMS_EXPERIMENT_TAG,
            Data::SessionStartInfo(_) => HPARAMS_SESSION_START_TAG,
            Data::SessionEndInfo(_) => HPARAMS_SESSION_END_TAG,
        };
        let content = HParamsPluginData {
            version: 0,
            data: Some(data),
        }
        .encode_to_vec();
        let value = summary::Value {
            tag: tag.to_owned(),
            metadata: Some(plugin_metadata("hparams", content)),
            value: None,
        };
        let summary = Summary { value: vec![value] };
        self.write_event(wall_time, 0, event::What::Summary(summary))
    }

    fn write_value(
        &mut self,
        step: i64,
        wall_time: f64,
        tag: &str,
        metadata: Option<SummaryMetadata>,
        payload: Payload,
    ) -> Result<()> {
        let value = summary::Value {
            tag: tag.to_owned(),
            metadata,
            value: Some(payload),
        };
        let summary = Summary { value: vec![value] };
        self.write_event(wall_time, step, event::What::Summary(summary))
    }

    fn write_event(&mut self, wall_time: f64, step: i64, what: event::What) -> Result<()> {
        let event = Event {
            wall_time,
            step,
            what: Some(what),
        };
        let record = record::frame(&event.encode_to_vec());
        self.out.write_all(&record).map_err(Error::io(&self.path))
    }
}

fn plugin_metadata(plugin_name: &str, content: Vec<u8>) -> SummaryMetadata {
    SummaryMetadata {
        plugin_data: Some(PluginData {
            plugin_name: plugin_name.to_owned(),
            content,
        }),
    }
}

fn hparam_type(value: &HParamValue) -> hparams::DataType {
    match value {
        HParamValue::Number(_) => hparams::DataType::Float64,
        HParamValue::Text(_) => hparams::DataType::String,
        HParamValue::Bool(_) => hparams::DataType::Bool,
    }
}

fn protobuf_value(value: HParamValue) -> protobuf::Value {
    use protobuf::value::Kind;
    let kind = match value {
        HParamValue::Number(x) => Kind::NumberValue(x),
        HParamValue::Text(s) => Kind::StringValue(s),
        HParamValue::Bool(b) => Kind::BoolValue(b),
    };
    protobuf::Value { kind: Some(kind) }
}

/// The host part of the file name. TensorBoard only needs "tfevents" in the name; the host keeps
/// files from different machines writing to a shared folder apart, so an unreadable host name
/// degrades to a placeholder instead of failing.
fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "localhost".to_owned()
    } else {
        clean
    }
}
