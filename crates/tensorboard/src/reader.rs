//! Reading event files back, for tests and for resume logic.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::proto::Event;
use crate::proto::event::What;
use crate::proto::session_log::SessionStatus;
use crate::proto::summary::value::Value as Payload;
use crate::record::{self, Unframe};

/// The complete records of one event file.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFile {
    pub events: Vec<Event>,
    /// The file ends inside a record, as it does when the writing process was killed mid-write.
    /// That is normal after a crash, so it is reported rather than raised; the partial record is
    /// not in `events`.
    pub truncated_tail: bool,
}

/// One point of a scalar series, as TensorBoard would chart it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalarPoint {
    pub step: i64,
    pub wall_time: f64,
    pub value: f32,
}

/// Reads every complete record of `path`, checking both checksums of each.
///
/// A checksum mismatch is an [`Error::Corrupt`] naming the record's byte offset: unlike a
/// truncated tail it means the bytes on disk changed, and silently skipping them could hide data
/// loss in the middle of a run.
pub fn read_events(path: &Path) -> Result<EventFile> {
    let bytes = fs::read(path).map_err(Error::io(path))?;
    let mut events = Vec::new();
    let mut offset = 0;
    while offset < bytes.len() {
        match record::unframe(&bytes[offset..]) {
            Unframe::Record(payload, used) => {
                let event = Event::decode(payload).map_err(|source| Error::Decode {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    source,
                })?;
                events.push(event);
                offset += used;
            }
            Unframe::Truncated => {
                return Ok(EventFile {
                    events,
                    truncated_tail: true,
                });
            }
            Unframe::Corrupt(reason) => {
                return Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    offset: offset as u64,
                    reason,
                });
            }
        }
    }
    Ok(EventFile {
        events,
        truncated_tail: false,
    })
}

/// The event files directly in `dir`, sorted by name: the order TensorBoard loads them in, and
/// (because names start with the creation time) the order they were written in.
///
/// Like TensorBoard, any file whose name contains `tfevents` counts.
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        let is_events = path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().contains("tfevents"));
        if is_events && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The `simple_value` scalar series in `events` (one run's events, in file order), after the
/// orphaned-data purge of TensorBoard's `event_accumulator.EventAccumulator`.
///
/// The `tensorboard` server's Python loader differs only in ignoring the first `START` of a run;
/// a writer that starts every process with [`add_session_start`] gets the same result from both
/// (see the crate docs).
///
/// [`add_session_start`]: crate::EventWriter::add_session_start
///
/// Once a `file_version` of 2 or more has been seen, a `SessionLog.START` at step `s` drops
/// every point of every tag with step `>= s`. Before that (old files), a summary whose step is
/// below the highest step seen so far drops the points `>= step` of that summary's tags only.
pub fn scalars(events: &[Event]) -> BTreeMap<String, Vec<ScalarPoint>> {
    let mut series: BTreeMap<String, Vec<ScalarPoint>> = BTreeMap::new();
    let mut file_version = None;
    let mut most_recent_step = -1;
    for event in events {
        if let Some(What::FileVersion(version)) = &event.what {
            file_version = Some(parse_file_version(version));
        }
        let not_expired = |point: &ScalarPoint| point.step < event.step;
        if file_version.is_some_and(|version| version >= 2.0) {
            if let Some(What::SessionLog(log)) = &event.what
                && log.status == SessionStatus::Start as i32
            {
                series
                    .values_mut()
                    .for_each(|points| points.retain(not_expired));
            }
        } else if let Some(What::Summary(summary)) = &event.what
            && event.step < most_recent_step
        {
            for value in &summary.value {
                if let Some(points) = series.get_mut(&value.tag) {
                    points.retain(not_expired);
                }
            }
        } else {
            most_recent_step = event.step;
        }
        if let Some(What::Summary(summary)) = &event.what {
            for value in &summary.value {
                if let Some(Payload::SimpleValue(x)) = value.value {
                    series
                        .entry(value.tag.clone())
                        .or_default()
                        .push(ScalarPoint {
                            step: event.step,
                            wall_time: event.wall_time,
                            value: x,
                        });
                }
            }
        }
    }
    series
}

/// TensorBoard's `ParseFileVersion`: the number after `brain.Event:`, or -1 if there is none.
fn parse_file_version(version: &str) -> f64 {
    let number = version.rsplit("brain.Event:").next().unwrap_or(version);
    number.parse().unwrap_or(-1.0)
}
