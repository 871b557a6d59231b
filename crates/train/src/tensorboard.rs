//! A run's TensorBoard logs, `<run>/tensorboard/`, so that `tensorboard --logdir runs` shows
//! runs (and sweeps) side by side:
//!
//! | folder                  | content                                                          |
//! |-------------------------|------------------------------------------------------------------|
//! | `tensorboard/train/`    | every `metrics.csv` column of the training split, step = epoch, and `kl_dim/<j>` for each latent dimension |
//! | `tensorboard/valid/`    | the same for the validation split                                |
//! | `tensorboard/eval/`     | the figures of `eval.json` (`evaluate`, and every point of a sweep: `disentanglement/mig`, `elbo/neg_elbo`, …) at the run's last epoch |
//! | `tensorboard/`          | the hparams session (the resolved config's scalar keys, e.g. `model.beta`; its end status) and the run's image grids (`images/reconstructions`, `images/samples`, `images/traversal`) |
//!
//! TensorBoard's hparams dashboard pairs each session with the scalars of its `train` and
//! `valid` sub-runs (metrics `train/loss`, `valid/kl`, …) and of its `eval` sub-run, so a
//! sweep's disentanglement scores sit beside its hyper-parameters. Scalars are written as each
//! epoch's value is recorded and flushed at once, so a run is visible while it trains. A
//! resumed session appends a new file per folder that starts with a `SessionLog` `START` at
//! its first epoch, which makes TensorBoard drop whatever the interrupted session logged for
//! that epoch and later (also when it restarts from scratch, having no checkpoint yet).
//! Event files carry wall-clock times, so unlike the results files they differ between
//! reruns.
use crate::tfevents::{
    Event, EventWriter, HParam, HParamKind, Image, Kind, Session, SessionEndInfo, SessionLog,
    SessionStartInfo, Value, What, now,
};
use ae_metrics::{EpochRow, SplitKind};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::Path;

/// The run-folder sub-folder holding the event files.
pub const FOLDER: &str = "tensorboard";

/// The event writers of one training session of a run.
#[derive(Debug)]
pub struct RunBoard {
    train: EventWriter,
    valid: EventWriter,
    session: EventWriter,
    /// (epoch, split, tag) already written this session.
    written: HashSet<(usize, SplitKind, String)>,
    /// The first epoch that may still get values: earlier ones belong to an earlier session
    /// (they are in its files) or were complete, and written, before a later epoch began.
    open_epoch: usize,
}

impl RunBoard {
    /// Opens new event files under `run_dir/tensorboard/` for a session that trains from
    /// `first_epoch` (1 for a fresh run); a resumed session marks its restart.
    pub fn open(run_dir: &Path, first_epoch: usize) -> io::Result<Self> {
        let root = run_dir.join(FOLDER);
        // An earlier session (resumed, or restarted before its first checkpoint) may have
        // logged epochs this one trains again.
        let earlier = root.join("train").is_dir();
        let mut board = Self {
            train: EventWriter::create(&root.join("train"))?,
            valid: EventWriter::create(&root.join("valid"))?,
            session: EventWriter::create(&root)?,
            written: HashSet::new(),
            open_epoch: first_epoch,
        };
        if earlier {
            let restart = Event {
                wall_time: now(),
                step: first_epoch as i64,
                what: Some(What::SessionLog(SessionLog {
                    status: crate::tfevents::SESSION_START,
                })),
            };
            board.train.write(&restart)?;
            board.valid.write(&restart)?;
        }
        Ok(board)
    }

    /// Writes the values of `rows` (the run's epoch log) that this session has not written
    /// yet: one scalar event per (epoch, split, column), `kl_dim/<j>` for the per-dimension KL.
    pub fn log_rows(&mut self, rows: &BTreeMap<(usize, SplitKind), EpochRow>) -> io::Result<()> {
        for ((epoch, split), row) in rows.range((self.open_epoch, SplitKind::Train)..) {
            let mut values = Vec::new();
            for (column, v) in &row.values {
                if self.written.insert((*epoch, *split, column.clone())) {
                    values.push(Value::scalar(column, *v as f32));
                }
            }
            if !row.kl_per_dim.is_empty() && self.written.insert((*epoch, *split, "kl_dim".into()))
            {
                for (j, v) in row.kl_per_dim.iter().enumerate() {
                    values.push(Value::scalar(&format!("kl_dim/{j}"), *v as f32));
                }
            }
            if values.is_empty() {
                continue;
            }
            let writer = match split {
                SplitKind::Train => &mut self.train,
                SplitKind::Valid => &mut self.valid,
            };
            writer.write(&Event::summary(*epoch as i64, values))?;
        }
        // Metrics record each epoch's values at its end, so once epoch e has values, the
        // rows of earlier epochs are complete and written.
        if let Some(&(last, _)) = rows.keys().next_back() {
            self.open_epoch = self.open_epoch.max(last);
        }
        Ok(())
    }

    /// Starts the hparams session with the given hyper-parameters.
    pub fn start_session(&mut self, hparams: BTreeMap<String, HParam>) -> io::Result<()> {
        let start = SessionStartInfo {
            hparams,
            group_name: String::new(),
            start_time_secs: now(),
        };
        self.session.write(&Event::summary(
            0,
            vec![Value::hparams(Session::Start(start))],
        ))
    }

    /// Ends the hparams session: `success` or failure.
    pub fn end_session(&mut self, success: bool) -> io::Result<()> {
        let end = SessionEndInfo {
            status: if success { 1 } else { 2 },
            end_time_secs: now(),
        };
        self.session
            .write(&Event::summary(0, vec![Value::hparams(Session::End(end))]))
    }

    /// Adds the PNG file at `png` as image `tag` at `step`.
    pub fn image(&mut self, tag: &str, step: usize, png: &Path) -> anyhow::Result<()> {
        let bytes = std::fs::read(png)?;
        let (width, height, colorspace) = png_header(&bytes)
            .ok_or_else(|| anyhow::anyhow!("{} is not an 8-bit PNG", png.display()))?;
        let value = Value {
            tag: tag.into(),
            metadata: None,
            kind: Some(Kind::Image(Image {
                height,
                width,
                colorspace,
                encoded_image_string: bytes,
            })),
        };
        self.session
            .write(&Event::summary(step as i64, vec![value]))?;
        Ok(())
    }
}

/// Writes the numeric leaves of an evaluation report (`eval.json`) as scalars of
/// `run_dir/tensorboard/eval/` at `step`, tagged by their path (`disentanglement/mig`);
/// arrays and the `config` section are left out. The new file starts with a restart at
/// `step`, so a re-evaluation replaces the previous figures instead of adding to them.
pub fn log_evaluation(run_dir: &Path, step: usize, report: &serde_json::Value) -> io::Result<()> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<Value>) {
        match v {
            serde_json::Value::Number(n) => {
                if let Some(x) = n.as_f64() {
                    out.push(Value::scalar(prefix, x as f32));
                }
            }
            serde_json::Value::Object(map) => {
                for (k, inner) in map {
                    if k != "config" {
                        let key = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}/{k}")
                        };
                        walk(&key, inner, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut values = Vec::new();
    walk("", report, &mut values);
    let mut writer = EventWriter::create(&run_dir.join(FOLDER).join("eval"))?;
    writer.write(&Event {
        wall_time: now(),
        step: step as i64,
        what: Some(What::SessionLog(SessionLog {
            status: crate::tfevents::SESSION_START,
        })),
    })?;
    writer.write(&Event::summary(step as i64, values))
}

/// Width, height and channel count (1 grey, 3 RGB, 4 RGBA) from a PNG's header chunk.
fn png_header(b: &[u8]) -> Option<(i32, i32, i32)> {
    if b.len() < 26 || &b[1..4] != b"PNG" || &b[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| i32::from_be_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let channels = match b[25] {
        0 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    Some((be(16), be(20), channels))
}

/// The scalar leaves of a TOML document as hparams, keyed by their dotted path
/// (`model.beta`, `optimizer.lr`, `seed`); arrays become their TOML text.
pub fn hparams_of(doc: &toml::Table) -> BTreeMap<String, HParam> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut BTreeMap<String, HParam>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let kind = match v {
                toml::Value::Table(inner) => {
                    walk(&key, inner, out);
                    continue;
                }
                toml::Value::Integer(i) => HParamKind::Number(*i as f64),
                toml::Value::Float(f) => HParamKind::Number(*f),
                toml::Value::Boolean(b) => HParamKind::Bool(*b),
                toml::Value::String(s) => HParamKind::Text(s.clone()),
                other => HParamKind::Text(other.to_string()),
            };
            out.insert(key, HParam { kind: Some(kind) });
        }
    }
    let mut out = BTreeMap::new();
    walk("", doc, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hparams_are_the_dotted_scalar_leaves() {
        let doc: toml::Table =
            toml::from_str("seed = 3\n[model]\nbeta = 4.0\nhidden = [1, 2]\nkind = \"vae\"\n")
                .unwrap();
        let h = hparams_of(&doc);
        let kind = |k: &str| h[k].kind.clone().unwrap();
        assert_eq!(kind("seed"), HParamKind::Number(3.0));
        assert_eq!(kind("model.beta"), HParamKind::Number(4.0));
        assert_eq!(kind("model.hidden"), HParamKind::Text("[1, 2]".into()));
        assert_eq!(kind("model.kind"), HParamKind::Text("vae".into()));
    }
}
