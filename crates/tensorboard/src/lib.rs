//! Writes (and reads back) TensorBoard event files, so training runs can be watched and compared
//! in TensorBoard without a Python or TensorFlow dependency in the trainer.
//!
//! An event file is a sequence of TFRecords (`u64` length, masked CRC32C of the length, payload,
//! masked CRC32C of the payload), each payload a serialized `tensorflow.Event`. The first record
//! carries `file_version = "brain.Event:2"`. [`EventWriter`] writes scalars, markdown text,
//! hparams-plugin summaries and restart markers; [`read_events`], [`event_files`] and [`scalars`]
//! read them back for tests and for resume logic.
//!
//! # Resuming after a crash
//!
//! A process killed after its last checkpoint has logged points that the resumed process will log
//! again. [`EventWriter::add_session_start`] writes a `SessionLog.START` that tells TensorBoard to
//! forget them. TensorBoard has three loaders, and they treat it differently (read in
//! `tensorboard/backend/event_processing/{event_accumulator,plugin_event_accumulator}.py` and
//! `tensorboard/data/server/reservoir.rs`, then confirmed by serving a crash-and-resume run with
//! the `tensorboard` command):
//!
//! * `event_accumulator.EventAccumulator` (the library class, and what [`scalars`] reproduces):
//!   `_ProcessEvent` records the `file_version` first (`ParseFileVersion("brain.Event:2")` is
//!   `2.0`); from version 2 on, `_MaybePurgeOrphanedData` calls `_CheckForRestartAndMaybePurge`,
//!   and *every* `START` at step `s` runs `_Purge(event, by_tags=False)`: every tag of the run
//!   keeps only its points with step `< s`. Points read afterwards, from this file or a later
//!   file of the same run folder, are kept. Plugin metadata (such as hparams) is never purged.
//!   Below version 2 it falls back to `_CheckForOutOfOrderStepAndMaybePurge`: a summary whose
//!   step is below the most recent step purges the points `>=` that step of its own tags.
//! * `plugin_event_accumulator.EventAccumulator`, which the `tensorboard` server uses with
//!   `--load_fast=false` or where its Rust data server is unavailable: the same, except that the
//!   *first* `START` of a run counts as the session's beginning and purges nothing
//!   (`_seen_session_start`, since 2021); only later ones do. A resumed run that writes a single
//!   `START` is therefore not purged there.
//! * The Rust data server (`--load_fast`, the default where available) ignores `SessionLog`.
//!   Each tag's series instead drops its points with step `>=` any newly read step, so a tag that
//!   the resumed run logs again is cleaned up, and a tag it never logs again keeps stale points.
//!
//! Both Python loaders purge only with `purge_orphaned_data`, which is on by default. So: call
//! `add_session_start` at the beginning of *every* process, fresh or resumed, with the first step
//! it will log (after a resume, the step after the checkpoint's). A fresh run's `START` precedes
//! all its points and purges nothing, and each resume's purges the orphans in every loader.
//!
//! # HParams
//!
//! [`EventWriter::add_hparams_start`] writes the same three summaries as tensorboardX's
//! `add_hparams`. The HParams plugin takes its column list from the first `_hparams_/experiment`
//! it finds in any run, so every run of one comparison should declare the same hparam names and
//! metric tags; each run's values come from its own `_hparams_/session_start_info`.

mod error;
pub mod proto;
mod reader;
mod record;
mod writer;

pub use error::{Error, Result};
pub use reader::{EventFile, ScalarPoint, event_files, read_events, scalars};
pub use record::masked_crc32c;
pub use writer::{
    EventWriter, HPARAMS_EXPERIMENT_TAG, HPARAMS_SESSION_END_TAG, HPARAMS_SESSION_START_TAG,
    HParamValue, SessionStatus,
};
