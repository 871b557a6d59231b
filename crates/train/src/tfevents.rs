//! TensorBoard event files: the record framing, the protobuf messages a run writes (scalars,
//! PNG images, hparams sessions), a writer and a checking reader.
//!
//! An event file is a sequence of records, each `len: u64 LE`, `masked_crc32c(len): u32 LE`,
//! `data`, `masked_crc32c(data): u32 LE`, where `data` is a serialized `tensorboard.Event`
//! and the first event names the file version (`brain.Event:2`). The messages below are the
//! subset of TensorBoard's `event.proto`, `summary.proto` and `plugins/hparams/*.proto` that
//! this crate writes, with TensorBoard's field numbers, encoded by `prost` (no `protoc`).
//!
//! Why not a TensorBoard crate: the Rust writers on crates.io (`tensorboard-rs`, last
//! released in 2022 and archived; `tfrecord`) are unmaintained and pull in old `protobuf`
//! and `image` versions, while the format is small and stable. `prost` (tokio-rs) and
//! `crc32c` are maintained; the bytes are checked against TensorBoard's own writer and reader
//! (tests, and `assets/tensorboard_check.py`).
use prost::Message;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// `tensorboard.Event`: one record of an event file.
#[derive(Clone, PartialEq, Message)]
pub struct Event {
    /// Seconds since the Unix epoch when the event was written.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step (here: the epoch).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// What the event carries.
    #[prost(oneof = "What", tags = "3, 5, 7")]
    pub what: Option<What>,
}

/// `Event.what`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum What {
    /// The file version, first event of every file: `brain.Event:2`.
    #[prost(string, tag = "3")]
    FileVersion(String),
    /// Scalars, images or plugin data.
    #[prost(message, tag = "5")]
    Summary(Summary),
    /// A session marker; `START` at step s makes TensorBoard drop earlier events of step ≥ s
    /// (a resumed run's epochs replace those of the interrupted session).
    #[prost(message, tag = "7")]
    SessionLog(SessionLog),
}

/// `tensorboard.SessionLog`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionLog {
    /// `SessionLog.SessionStatus`: 1 = START.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `SessionLog.SessionStatus.START`.
pub const SESSION_START: i32 = 1;

/// `tensorboard.Summary`.
#[derive(Clone, PartialEq, Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `tensorboard.Summary.Value`.
#[derive(Clone, PartialEq, Message)]
pub struct Value {
    /// The tag (chart name; `/` groups charts).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// Plugin metadata (hparams).
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
    /// The value.
    #[prost(oneof = "Kind", tags = "2, 4")]
    pub kind: Option<Kind>,
}

/// `Summary.Value.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// A scalar.
    #[prost(float, tag = "2")]
    SimpleValue(f32),
    /// An encoded image.
    #[prost(message, tag = "4")]
    Image(Image),
}

/// `tensorboard.Summary.Image`.
#[derive(Clone, PartialEq, Message)]
pub struct Image {
    /// Height in pixels.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Width in pixels.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 3 RGB.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}

/// `tensorboard.SummaryMetadata`.
#[derive(Clone, PartialEq, Message)]
pub struct SummaryMetadata {
    /// The plugin the value belongs to.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
}

/// `tensorboard.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, Message)]
pub struct PluginData {
    /// `hparams`.
    #[prost(string, tag = "1")]
    pub plugin_name: String,
    /// A serialized [`HParamsPluginData`].
    #[prost(bytes = "vec", tag = "2")]
    pub content: Vec<u8>,
}

/// `tensorboard.hparams.HParamsPluginData` (version 0).
#[derive(Clone, PartialEq, Message)]
pub struct HParamsPluginData {
    /// Always 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// A session's start or end.
    #[prost(oneof = "Session", tags = "3, 4")]
    pub data: Option<Session>,
}

/// `HParamsPluginData.data`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Session {
    /// The hyper-parameters of a run, at its start.
    #[prost(message, tag = "3")]
    Start(SessionStartInfo),
    /// How it ended.
    #[prost(message, tag = "4")]
    End(SessionEndInfo),
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionStartInfo {
    /// Hyper-parameter name → value.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, HParam>,
    /// Sessions of one group differ only in their seed.
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, Message)]
pub struct SessionEndInfo {
    /// `tensorboard.hparams.Status`: 1 success, 2 failure.
    #[prost(int32, tag = "1")]
    pub status: i32,
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `google.protobuf.Value`, restricted to what a hyper-parameter can be.
#[derive(Clone, PartialEq, Message)]
pub struct HParam {
    /// The value.
    #[prost(oneof = "HParamKind", tags = "2, 3, 4")]
    pub kind: Option<HParamKind>,
}

/// `google.protobuf.Value.kind`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum HParamKind {
    /// A number.
    #[prost(double, tag = "2")]
    Number(f64),
    /// A string.
    #[prost(string, tag = "3")]
    Text(String),
    /// A boolean.
    #[prost(bool, tag = "4")]
    Bool(bool),
}

/// The hparams plugin's name and its session tags.
pub const HPARAMS_PLUGIN: &str = "hparams";
/// Tag of a session's start.
pub const SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// Tag of a session's end.
pub const SESSION_END_TAG: &str = "_hparams_/session_end_info";

impl Event {
    /// An event at `step` carrying `summary`, stamped now.
    pub fn summary(step: i64, value: Vec<Value>) -> Self {
        Self {
            wall_time: now(),
            step,
            what: Some(What::Summary(Summary { value })),
        }
    }
}

impl Value {
    /// A scalar.
    pub fn scalar(tag: &str, v: f32) -> Self {
        Self {
            tag: tag.into(),
            metadata: None,
            kind: Some(Kind::SimpleValue(v)),
        }
    }

    /// A hparams session record (start or end): plugin data only, no value.
    pub fn hparams(session: Session) -> Self {
        let tag = match session {
            Session::Start(_) => SESSION_START_TAG,
            Session::End(_) => SESSION_END_TAG,
        };
        let content = HParamsPluginData {
            version: 0,
            data: Some(session),
        }
        .encode_to_vec();
        Self {
            tag: tag.into(),
            metadata: Some(SummaryMetadata {
                plugin_data: Some(PluginData {
                    plugin_name: HPARAMS_PLUGIN.into(),
                    content,
                }),
            }),
            kind: None,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// TFRecord's checksum: CRC-32C, rotated right by 15 bits, plus a constant.
pub fn masked_crc(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// One framed record.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
    out
}

/// An event file being appended to; every event is flushed as it is written, so TensorBoard
/// shows a run while it trains.
#[derive(Debug)]
pub struct EventWriter {
    out: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates `dir` if needed and a new event file in it, named
    /// `events.out.tfevents.<seconds>.<microseconds>.ae.<pid>` so that a later session's file
    /// sorts after an earlier one's (TensorBoard reads a folder's files in name order).
    pub fn create(dir: &Path) -> io::Result<Self> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        std::fs::create_dir_all(dir)?;
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "events.out.tfevents.{}.{:06}.ae.{}.{serial}",
            t.as_secs(),
            t.subsec_micros(),
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::options().write(true).create_new(true).open(&path)?;
        let mut writer = Self {
            out: BufWriter::new(file),
            path,
        };
        writer.write(&Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        Ok(writer)
    }

    /// Appends one event and flushes it.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.out.write_all(&record(&event.encode_to_vec()))?;
        self.out.flush()
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads every event of one file, checking the framing and both checksums of each record.
pub fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    let mut events = Vec::new();
    let mut rest = &bytes[..];
    let bad = |what: &str| anyhow::anyhow!("{}: {what}", path.display());
    while !rest.is_empty() {
        if rest.len() < 12 {
            return Err(bad("truncated record header"));
        }
        let (len_bytes, crc) = (&rest[..8], &rest[8..12]);
        if masked_crc(len_bytes).to_le_bytes() != crc {
            return Err(bad("record length checksum mismatch"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")) as usize;
        let body = rest
            .get(12..12 + len + 4)
            .ok_or_else(|| bad("truncated record"))?;
        let (data, crc) = body.split_at(len);
        if masked_crc(data).to_le_bytes() != crc {
            return Err(bad("record data checksum mismatch"));
        }
        events.push(Event::decode(data)?);
        rest = &rest[12 + len + 4..];
    }
    Ok(events)
}

/// The events of a folder's files (not its sub-folders), in file-name order, as TensorBoard
/// reads them: a `SessionLog` `START` at step s drops the earlier events of step ≥ s.
pub fn read_folder(dir: &Path) -> anyhow::Result<Vec<Event>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("tfevents"))
        })
        .collect();
    files.sort();
    let mut events: Vec<Event> = Vec::new();
    for f in files {
        for e in read_events(&f)? {
            if let Some(What::SessionLog(s)) = &e.what
                && s.status == SESSION_START
            {
                events.retain(|old| old.step < e.step || old.what_is_file_version());
            }
            events.push(e);
        }
    }
    Ok(events)
}

impl Event {
    fn what_is_file_version(&self) -> bool {
        matches!(self.what, Some(What::FileVersion(_)))
    }

    /// The event's values, if it is a summary.
    pub fn values(&self) -> &[Value] {
        match &self.what {
            Some(What::Summary(s)) => &s.value,
            _ => &[],
        }
    }
}

/// Tag → (step, value) of every scalar in `events`, in order.
pub fn scalars(events: &[Event]) -> BTreeMap<String, Vec<(i64, f32)>> {
    let mut out: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for e in events {
        for v in e.values() {
            if let Some(Kind::SimpleValue(x)) = v.kind {
                out.entry(v.tag.clone()).or_default().push((e.step, x));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes written by TensorBoard's own writer (`tensorboard.summary.writer.event_file_writer`
    /// with `Event(wall_time=1700000000.5, step=3, summary=Summary(value=[Summary.Value(
    /// tag="valid/loss", simple_value=0.25)]))`), see `assets/tensorboard_check.py`.
    const TENSORBOARD_SCALAR_RECORD: &str = "200000000000000029eda9500900002040fc54d94110032a130a110a0a76616c69642f6c6f7373150000803ec4c2945b";

    #[test]
    fn a_scalar_record_matches_tensorboards_own_bytes() {
        let event = Event {
            wall_time: 1_700_000_000.5,
            step: 3,
            what: Some(What::Summary(Summary {
                value: vec![Value::scalar("valid/loss", 0.25)],
            })),
        };
        let got: String = record(&event.encode_to_vec())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(got, TENSORBOARD_SCALAR_RECORD);
    }

    #[test]
    fn the_checksum_is_tfrecords_masked_crc32c() {
        // CRC-32C("123456789") is RFC 3720's check value; the masked value is TensorBoard's
        // (`tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c`).
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(masked_crc(b"123456789"), 0xC78A_B0E5);
    }

    #[test]
    fn written_events_read_back_and_a_restart_drops_later_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = EventWriter::create(dir.path()).unwrap();
        for step in 1..=3 {
            a.write(&Event::summary(
                step,
                vec![Value::scalar("loss", step as f32)],
            ))
            .unwrap();
        }
        // A resumed session restarts at step 3.
        let mut b = EventWriter::create(dir.path()).unwrap();
        assert!(b.path() > a.path());
        b.write(&Event {
            wall_time: now(),
            step: 3,
            what: Some(What::SessionLog(SessionLog {
                status: SESSION_START,
            })),
        })
        .unwrap();
        b.write(&Event::summary(3, vec![Value::scalar("loss", 30.0)]))
            .unwrap();
        let events = read_folder(dir.path()).unwrap();
        assert_eq!(
            scalars(&events)["loss"],
            vec![(1, 1.0), (2, 2.0), (3, 30.0)]
        );

        // A flipped byte is caught.
        let mut bytes = std::fs::read(a.path()).unwrap();
        let last = bytes.len() - 6;
        bytes[last] ^= 1;
        std::fs::write(a.path(), bytes).unwrap();
        let err = read_events(a.path()).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }
}
