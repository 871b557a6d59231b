//! Sweeps over any grid of config keys (`sweep`), run in one process, as local worker
//! processes, or as a cluster job array.
//!
//! A [`GridConfig`] names a base experiment and axes over any of its keys (`model.beta`,
//! `model.latent_dim`, `optimizer.lr`, `seed`, …); every combination is a point, trained as
//! a normal run folder `<sweep>/<point>/` whose name is derived from its values
//! (`beta_4-latent_dim_10`). The sweep folder is the only thing workers share:
//!
//! - [`plan`] writes `sweep.toml` (the resolved grid), `points.csv` (index, folder, values),
//!   `slurm.sh` (a job array, one task per point) and `run_local.sh` (`xargs -P`);
//! - [`run_point`] trains and evaluates point `i`: a finished point is skipped, an
//!   unfinished one resumes from its checkpoint, and `locks/<point>.lock` (process id, host,
//!   heartbeat) keeps a second worker off a point while a stale lock of a killed worker is
//!   taken over;
//! - [`collect`] writes `results.csv`, `results.md` and `report.md` once every point is done,
//!   and lists the missing ones otherwise.
//!
//! **Invariant:** a point's config, folder name and results row are functions of the grid
//! alone, so workers in any order, on any hosts, give the same `results.csv`.
use crate::results::{FIGURE_COLUMNS as FIGURES, ResultRow, csv_text};
use crate::run::{RunOptions, resume, train_in};
use crate::{ExperimentConfig, write_atomic};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn one() -> usize {
    1
}

fn default_evaluate() -> Vec<String> {
    vec![
        "elbo".into(),
        "decomposition".into(),
        "disentanglement".into(),
    ]
}

/// One axis of the grid: a dotted config key and its values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// A key of the experiment config, dotted: `model.beta`, `optimizer.lr`, `seed`.
    pub key: String,
    /// Its values, one point each (times the other axes).
    pub values: Vec<toml::Value>,
}

/// A grid sweep, as written in a sweep file and saved as `sweep.toml` in the sweep folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// Sweep name: the folder is `<out>/<name>/<sweep-id>/` (or the `--out` of a plan).
    pub name: String,
    /// Points trained at the same time on CPU by `sweep --jobs N` (worker processes).
    #[serde(default = "one")]
    pub jobs: usize,
    /// `evaluate` metrics run on every point after training (`elbo`, `decomposition`,
    /// `disentanglement` on dSprites, `iwae`); empty: none.
    #[serde(default = "default_evaluate")]
    pub evaluate: Vec<String>,
    /// The axes, first one slowest.
    pub grid: Vec<Axis>,
    /// Everything each run does not take from the grid.
    pub base: ExperimentConfig,
}

/// One point of the grid.
#[derive(Clone, Debug, PartialEq)]
pub struct GridPoint {
    /// Position in [`GridConfig::points`] (the job-array index).
    pub index: usize,
    /// (key, value) per axis.
    pub values: Vec<(String, toml::Value)>,
}

/// A value as written in a folder name and in `results.csv`: strings bare, numbers as Rust
/// prints them (`1` for 1.0, `0.001` for 1e-3), so `1` and `1.0` name the same point.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Float(f) => f.to_string(),
        other => other.to_string(),
    }
}

/// A grid value from the command line: a TOML number, boolean or array if it parses as one,
/// else a string (`model.beta=4`, `model.likelihood.kind=gaussian`).
pub fn parse_value(text: &str) -> toml::Value {
    let text = text.trim();
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_string()))
}

/// `key=v1,v2,…` (a `--grid` argument) as an axis.
pub fn parse_axis(arg: &str) -> anyhow::Result<Axis> {
    let Some((key, values)) = arg.split_once('=') else {
        bail!("--grid {arg}: write KEY=V1,V2,… (e.g. --grid model.beta=1,4,16)");
    };
    let values = values
        .split(',')
        .filter(|v| !v.trim().is_empty())
        .map(parse_value)
        .collect();
    Ok(Axis {
        key: key.trim().to_string(),
        values,
    })
}

impl GridPoint {
    /// Folder name of the point: `<leaf>_<value>` per axis joined by `-` (the last component
    /// of the key, or the whole key with `_` for `.` where two axes share a last component),
    /// with characters other than letters, digits, `.`, `+` and `-` replaced by `_`.
    pub fn dir_name(&self) -> String {
        let leaves: Vec<&str> = self
            .values
            .iter()
            .map(|(k, _)| k.rsplit('.').next().unwrap_or(k))
            .collect();
        self.values
            .iter()
            .zip(&leaves)
            .map(|((key, v), leaf)| {
                let shared = leaves.iter().filter(|l| *l == leaf).count() > 1;
                let name = if shared {
                    key.replace('.', "_")
                } else {
                    (*leaf).to_string()
                };
                let value: String = value_text(v)
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || ".+-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                format!("{name}_{value}")
            })
            .collect::<Vec<_>>()
            .join("-")
    }
}

/// The value at a dotted path of a TOML table.
fn get_path<'a>(t: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    let mut parts = key.split('.');
    let mut v = t.get(parts.next()?)?;
    for p in parts {
        v = v.as_table()?.get(p)?;
    }
    Some(v)
}

/// Sets the value at a dotted path, creating tables on the way.
fn set_path(t: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let mut table = t;
    for (i, p) in parts[..parts.len() - 1].iter().enumerate() {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("{} is a value, not a table", parts[..=i].join(".")))?;
    }
    table.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Whether two TOML values are the same number or the same value.
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    let num = |v: &toml::Value| match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

impl GridConfig {
    /// Reads and validates a sweep file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let cfg = Self::read(path)?;
        cfg.validate()
            .with_context(|| format!("invalid sweep config {}", path.display()))?;
        Ok(cfg)
    }

    /// Reads a sweep file and checks its axes, but not every point's config (a sweep
    /// folder's `sweep.toml` was validated when it was planned; each point's config is
    /// checked again when it runs).
    fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep config {}", path.display()))?;
        let cfg: Self = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "malformed sweep config {}: {}",
                path.display(),
                e.to_string().lines().next().unwrap_or_default()
            )
        })?;
        cfg.check_axes()
            .with_context(|| format!("invalid sweep config {}", path.display()))?;
        Ok(cfg)
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("sweep config serialises")
    }

    /// Checks the grid before anything runs: a folder name, at least one axis, no key twice,
    /// no empty or repeated value list, and every point's config valid with every grid key landing on a field of the config (naming the
    /// point, and the key at fault).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.check_axes()?;
        for p in self.points() {
            self.config_of(&p)?;
        }
        Ok(())
    }

    /// A folder name, at least one axis, no key twice, no empty or repeated value list.
    fn check_axes(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            bail!("name must be a non-empty folder name, got {:?}", self.name);
        }
        if self.jobs == 0 {
            bail!("jobs must be at least 1");
        }
        if self.grid.is_empty() {
            bail!("the grid has no axis; give one, e.g. --grid model.beta=1,4,16");
        }
        for (i, a) in self.grid.iter().enumerate() {
            if a.key.is_empty() || a.key.split('.').any(str::is_empty) {
                bail!("grid key {:?} is not a dotted config key", a.key);
            }
            if a.key == "name" {
                bail!("grid key name: the run names come from the sweep");
            }
            if self.grid[..i].iter().any(|b| b.key == a.key) {
                bail!("grid key {} appears twice", a.key);
            }
            if a.values.is_empty() {
                bail!("grid key {} has no values", a.key);
            }
            for (j, v) in a.values.iter().enumerate() {
                if a.values[..j].iter().any(|w| same(v, w)) {
                    bail!("grid key {} lists {} twice", a.key, value_text(v));
                }
            }
        }
        Ok(())
    }

    /// Every point, the first axis slowest.
    pub fn points(&self) -> Vec<GridPoint> {
        let mut points = vec![Vec::new()];
        for a in &self.grid {
            points = points
                .into_iter()
                .flat_map(|prefix: Vec<(String, toml::Value)>| {
                    a.values.iter().map(move |v| {
                        let mut p = prefix.clone();
                        p.push((a.key.clone(), v.clone()));
                        p
                    })
                })
                .collect();
        }
        points
            .into_iter()
            .enumerate()
            .map(|(index, values)| GridPoint { index, values })
            .collect()
    }

    /// The experiment config of a point: the base with the point's values, validated.
    pub fn config_of(&self, p: &GridPoint) -> anyhow::Result<ExperimentConfig> {
        let mut table = toml::Table::try_from(&self.base).expect("config serialises");
        for (key, v) in &p.values {
            set_path(&mut table, key, v.clone())
                .map_err(|e| anyhow::anyhow!("grid key {key}: {e}"))?;
        }
        let name_value = toml::Value::String(format!("{}_{}", self.name, p.dir_name()));
        table.insert("name".into(), name_value);
        let what = || {
            p.values
                .iter()
                .map(|(k, v)| format!("{k} = {}", value_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let cfg: ExperimentConfig = table.clone().try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!(
                "grid point {}: {}",
                what(),
                e.to_string().lines().next().unwrap_or_default()
            )
        })?;
        // A key the config does not have is ignored by some of its tables: check that every
        // value is there after the round trip.
        let back = toml::Table::try_from(&cfg).expect("config serialises");
        for (key, v) in &p.values {
            match get_path(&back, key) {
                Some(got) if same(got, v) => {}
                Some(got) => bail!(
                    "grid key {key} = {}: the config reads it as {got}; give a value of the \
                     key's type",
                    value_text(v)
                ),
                None => bail!(
                    "grid key {key} is not a key of the experiment config (see config.toml of \
                     any run for the keys, e.g. model.beta, model.latent_dim, optimizer.lr, seed)"
                ),
            }
        }
        cfg.validate()
            .map_err(|e| anyhow::anyhow!("grid point {}: {e}", what()))?;
        cfg.check_shapes()
            .map_err(|e| anyhow::anyhow!("grid point {}: {e}", what()))?;
        Ok(cfg)
    }

    /// The point with job-array index `i`.
    pub fn point(&self, i: usize) -> anyhow::Result<GridPoint> {
        let points = self.points();
        let n = points.len();
        points.into_iter().nth(i).ok_or_else(|| {
            anyhow::anyhow!(
                "point {i} does not exist: the grid has {n} points (0 to {})",
                n - 1
            )
        })
    }
}

/// Loads the grid of a sweep folder (its `sweep.toml`).
pub fn open(dir: &Path) -> anyhow::Result<GridConfig> {
    let path = dir.join("sweep.toml");
    if !path.is_file() {
        bail!(
            "{} is not a sweep folder (no sweep.toml); make one with sweep --plan CONFIG --out {}",
            dir.display(),
            dir.display()
        );
    }
    GridConfig::read(&path)
}

/// Whether point `p` is finished: trained (`summary.json`) and, when the grid evaluates,
/// evaluated (`eval.json`).
pub fn point_done(grid: &GridConfig, dir: &Path, p: &GridPoint) -> bool {
    let run = dir.join(p.dir_name());
    run.join("summary.json").is_file()
        && (grid.evaluate.is_empty() || run.join("eval.json").is_file())
}

/// Writes the sweep folder `dir` for `grid`: `sweep.toml`, `points.csv`, `slurm.sh` and
/// `run_local.sh`, whose command lines run `exe` (the `sweep` binary). An existing plan of
/// the same grid is kept (re-planning is idempotent); another grid there is refused.
pub fn plan(grid: &GridConfig, dir: &Path, exe: &Path) -> anyhow::Result<()> {
    grid.validate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let saved = dir.join("sweep.toml");
    if saved.is_file() && GridConfig::read(&saved)? != *grid {
        bail!(
            "{} already holds another sweep; plan into a new folder",
            dir.display()
        );
    }
    write_atomic(&saved, grid.to_toml().as_bytes())?;
    let points = grid.points();
    let mut rows = vec![
        ["index", "folder"]
            .into_iter()
            .map(String::from)
            .chain(grid.grid.iter().map(|a| a.key.clone()))
            .collect::<Vec<_>>(),
    ];
    for p in &points {
        rows.push(
            [p.index.to_string(), p.dir_name()]
                .into_iter()
                .chain(p.values.iter().map(|(_, v)| value_text(v)))
                .collect(),
        );
    }
    write_atomic(&dir.join("points.csv"), csv_text(rows).as_bytes())?;
    // Slurm opens the tasks' --output files before the script runs: the folder must exist.
    std::fs::create_dir_all(dir.join("logs"))?;
    let (exe, folder) = (shell_quote(exe), shell_quote(&dir));
    let last = points.len() - 1;
    let slurm = format!(
        "#!/bin/bash\n\
         # {n} points of the sweep {name}: one array task per point. Submit with\n\
         #   sbatch {folder}/slurm.sh\n\
         # then, once every task has ended (or chained: sbatch --dependency=afterany:<jobid>),\n\
         #   {exe} --collect {folder}\n\
         # A task that is rerun skips a finished point and resumes an unfinished one.\n\
         #SBATCH --job-name={name}\n\
         #SBATCH --array=0-{last}\n\
         #SBATCH --output={folder}/logs/%a.log\n\
         #SBATCH --cpus-per-task=2\n\
         set -euo pipefail\n\
         mkdir -p {folder}/logs\n\
         exec {exe} --point \"$SLURM_ARRAY_TASK_ID\" {folder}\n",
        n = points.len(),
        name = grid.name,
    );
    let local = format!(
        "#!/bin/bash\n\
         # The {n} points of the sweep {name} on this machine, JOBS at a time (default 2;\n\
         # GNU parallel works the same: parallel -j \"$JOBS\" ...), then the results.\n\
         set -euo pipefail\n\
         mkdir -p {folder}/logs\n\
         seq 0 {last} | xargs -P \"${{JOBS:-2}}\" -I{{}} sh -c '{exe} --point {{}} {folder} > {folder}/logs/{{}}.log 2>&1'\n\
         {exe} --collect {folder}\n",
        n = points.len(),
        name = grid.name,
    );
    for (file, text) in [("slurm.sh", slurm), ("run_local.sh", local)] {
        let path = dir.join(file);
        write_atomic(&path, text.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// A path as one shell word.
fn shell_quote(p: &Path) -> String {
    let s = p.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:=".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Trains and evaluates point `index` of the sweep in `dir` (see the module doc). Returns
/// false when the point was already finished.
pub fn run_point(dir: &Path, index: usize, opts: &RunOptions) -> anyhow::Result<bool> {
    let grid = open(dir)?;
    let p = grid.point(index)?;
    run_sweep_point(
        dir,
        &p.dir_name(),
        &format!("point {index} ({})", p.dir_name()),
        &|| grid.config_of(&p),
        &grid.evaluate,
        opts,
    )
}

/// The point runner of every sweep (`sweep` and `beta_sweep`): under the lock
/// `<sweep_dir>/locks/<name>.lock`, skips the run folder `<sweep_dir>/<name>` when it is
/// finished (`summary.json`, and `eval.json` when `evaluate` names metrics), else resumes it
/// from its checkpoint or trains `config()` into it, drops its checkpoints, and evaluates it.
/// `what` names the point in messages. Returns false when it was already finished.
pub fn run_sweep_point(
    sweep_dir: &Path,
    name: &str,
    what: &str,
    config: &dyn Fn() -> anyhow::Result<ExperimentConfig>,
    evaluate: &[String],
    opts: &RunOptions,
) -> anyhow::Result<bool> {
    std::fs::create_dir_all(sweep_dir.join("locks"))?;
    let _lock = crate::lock::FolderLock::acquire_file(
        &sweep_dir.join("locks").join(format!("{name}.lock")),
        what,
    )?;
    let run = sweep_dir.join(name);
    let trained = run.join("summary.json").is_file();
    if trained && (evaluate.is_empty() || run.join("eval.json").is_file()) {
        println!("{what} is finished; skipping it");
        return Ok(false);
    }
    if !trained {
        let outcome = if run.join("config.toml").is_file() {
            resume(&run, opts)?
        } else {
            train_in(config()?, &run, opts)?
        };
        if outcome.interrupted {
            bail!("{what} was interrupted");
        }
        // The final weights are in model.bpk; checkpoints of finished runs only cost disk.
        let _ = std::fs::remove_dir_all(run.join("checkpoint"));
    }
    if !evaluate.is_empty() {
        crate::evaluation::evaluate_run(
            &run,
            &crate::evaluation::EvalRequest {
                metrics: evaluate.to_vec(),
                device: opts.device.clone(),
                ..Default::default()
            },
        )
        .with_context(|| format!("cannot evaluate {}", run.display()))?;
    }
    Ok(true)
}

/// The results of a finished sweep: `results.csv` (a column per grid key, then the run's
/// figures), `results.md`, `report.md` (the figures averaged by each key's values) and
/// `rd_by_<key>.png` (rate–distortion, a point per value of each key with several values).
/// Fails listing the unfinished points when some are.
pub fn collect(dir: &Path) -> anyhow::Result<Vec<ResultRow>> {
    let grid = open(dir)?;
    let points = grid.points();
    let missing: Vec<String> = points
        .iter()
        .filter(|p| !point_done(&grid, dir, p))
        .map(|p| format!("{} ({})", p.index, p.dir_name()))
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} of {} points are not finished: {}; run them with sweep --point I {}",
            missing.len(),
            points.len(),
            missing.join(", "),
            dir.display()
        );
    }
    let rows = points
        .iter()
        .map(|p| {
            let cfg = grid.config_of(p)?;
            ResultRow::read_run(&dir.join(p.dir_name()), cfg.model.beta(), cfg.seed)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    write_atomic(
        &dir.join("results.csv"),
        grid_csv(&grid, &points, &rows).as_bytes(),
    )?;
    write_atomic(
        &dir.join("results.md"),
        grid_md(&grid, &points, &rows).as_bytes(),
    )?;
    write_atomic(
        &dir.join("report.md"),
        report(&grid, &points, &rows).as_bytes(),
    )?;
    for (i, a) in grid.grid.iter().enumerate() {
        if a.values.len() < 2 {
            continue;
        }
        let groups: Vec<(String, f64, f64)> = a
            .values
            .iter()
            .map(|v| {
                let g: Vec<&ResultRow> = points
                    .iter()
                    .zip(&rows)
                    .filter(|(p, _)| same(&p.values[i].1, v))
                    .map(|(_, r)| r)
                    .collect();
                let n = g.len() as f64;
                let rate = g.iter().map(|r| r.rate).sum::<f64>() / n;
                let distortion = g.iter().map(|r| r.distortion).sum::<f64>() / n;
                (value_text(v), rate, distortion)
            })
            .collect();
        let file = format!("rd_by_{}.png", a.key.replace('.', "_"));
        crate::plots::rd_by_key(&a.key, &groups, &dir.join(file))?;
    }
    Ok(rows)
}

fn grid_csv(grid: &GridConfig, points: &[GridPoint], rows: &[ResultRow]) -> String {
    let dims = rows.iter().map(|r| r.kl_per_dim.len()).max().unwrap_or(0);
    let header: Vec<String> = grid
        .grid
        .iter()
        .map(|a| a.key.clone())
        .chain(FIGURES.iter().map(|c| c.to_string()))
        .chain((0..dims).map(|j| format!("kl_dim_{j}")))
        .collect();
    let body = points.iter().zip(rows).map(|(p, r)| {
        p.values
            .iter()
            .map(|(_, v)| value_text(v))
            .chain(
                r.figures()
                    .into_iter()
                    .map(|v| v.map_or(String::new(), |v| v.to_string())),
            )
            .chain(r.kl_per_dim.iter().map(f64::to_string))
            .collect()
    });
    csv_text(std::iter::once(header).chain(body))
}

fn md_cell(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or("–".into(), |v| format!("{v:.3}"))
}

fn grid_md(grid: &GridConfig, points: &[GridPoint], rows: &[ResultRow]) -> String {
    let mut s = String::new();
    let keys: Vec<&str> = grid.grid.iter().map(|a| a.key.as_str()).collect();
    let _ = writeln!(s, "| {} | {} |", keys.join(" | "), FIGURES.join(" | "));
    let _ = writeln!(s, "|{}", "---|".repeat(keys.len() + FIGURES.len()));
    for (p, r) in points.iter().zip(rows) {
        let values: Vec<String> = p.values.iter().map(|(_, v)| value_text(v)).collect();
        let cells: Vec<String> = r.figures().into_iter().map(md_cell).collect();
        let _ = writeln!(s, "| {} | {} |", values.join(" | "), cells.join(" | "));
    }
    s
}

/// `report.md`: for each key, the figures averaged over the points with each of its values
/// (the other keys marginalised), and the point with the best ELBO and, where measured, MIG.
fn report(grid: &GridConfig, points: &[GridPoint], rows: &[ResultRow]) -> String {
    let mut s = format!(
        "# {}: {} points\n\nBase config: {} on {}, {} epochs (the grid's keys override it). Rate = validation KL, distortion = \
         validation reconstruction NLL, nats per sample; ELBO = −(rate + distortion).\n",
        grid.name,
        points.len(),
        grid.base.model.family(),
        grid.base.data.name(),
        grid.base.epochs
    );
    let shown = [0, 1, 2, 3, 6, 7];
    for (i, a) in grid.grid.iter().enumerate() {
        let _ = write!(
            s,
            "\n## By {}\n\n| {} | points | {} |\n|{}\n",
            a.key,
            a.key,
            shown.map(|j| FIGURES[j]).join(" | "),
            "---|".repeat(2 + shown.len())
        );
        for v in &a.values {
            let group: Vec<&ResultRow> = points
                .iter()
                .zip(rows)
                .filter(|(p, _)| same(&p.values[i].1, v))
                .map(|(_, r)| r)
                .collect();
            let mean = |j: usize| {
                let vals: Vec<f64> = group.iter().filter_map(|r| r.figures()[j]).collect();
                (vals.len() == group.len() && !vals.is_empty())
                    .then(|| vals.iter().sum::<f64>() / vals.len() as f64)
            };
            let cells: Vec<String> = shown.iter().map(|&j| md_cell(mean(j))).collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                value_text(v),
                group.len(),
                cells.join(" | ")
            );
        }
    }
    let best = |j: usize| {
        points
            .iter()
            .zip(rows)
            .filter_map(|(p, r)| r.figures()[j].filter(|v| v.is_finite()).map(|v| (p, v)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
    };
    s.push_str("\n## Best points\n\n");
    for (j, what) in [(2, "ELBO"), (6, "MIG")] {
        if let Some((p, v)) = best(j) {
            let _ = writeln!(s, "- highest {what}: {v:.3} at {}", p.dir_name());
        }
    }
    s
}

/// The folder of a new sweep: `<out>/<name>/<UTC time>`.
pub fn new_sweep_dir(out: &Path, grid: &GridConfig) -> anyhow::Result<PathBuf> {
    crate::run::claim_folder(&out.join(&grid.name), &crate::run::utc_stamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(axes: &[&str]) -> GridConfig {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/configs/vae_mnist.toml");
        let mut base = ExperimentConfig::load(&path).unwrap();
        base.data = ae_data::DataConfig::dsprites(Some(100));
        GridConfig {
            name: "g".into(),
            jobs: 1,
            evaluate: Vec::new(),
            grid: axes.iter().map(|a| parse_axis(a).unwrap()).collect(),
            base,
        }
    }

    #[test]
    fn points_are_the_product_of_the_axes_with_names_from_their_values() {
        let g = grid(&["model.beta=1,4,16", "model.latent_dim=6,10", "seed=1,2"]);
        g.validate().unwrap();
        let points = g.points();
        assert_eq!(points.len(), 12);
        assert_eq!(points[0].dir_name(), "beta_1-latent_dim_6-seed_1");
        assert_eq!(points[11].dir_name(), "beta_16-latent_dim_10-seed_2");
        let cfg = g.config_of(&points[7]).unwrap();
        assert_eq!(cfg.model.beta(), 4.0);
        assert_eq!(cfg.model.latent_dim(), 10);
        assert_eq!(cfg.seed, 2);
        assert_eq!(cfg.name, "g_beta_4-latent_dim_10-seed_2");
        let lr = grid(&["optimizer.lr=1e-3,3e-4"]);
        assert_eq!(lr.config_of(&lr.points()[1]).unwrap().optimizer.lr, 3e-4);
    }

    #[test]
    fn bad_grids_are_refused_naming_the_key() {
        let err = |axes: &[&str]| grid(axes).validate().unwrap_err().to_string();
        let e = err(&["model.betta=1,2"]);
        assert!(
            e.contains("model.betta") && e.contains("unknown field"),
            "{e}"
        );
        let e = err(&["model.latent_dim=six"]);
        assert!(e.contains("model.latent_dim") && e.contains("six"), "{e}");
        let e = err(&["model.latent_dim=2.5"]);
        assert!(e.contains("model.latent_dim"), "{e}");
        let e = err(&["model.beta="]);
        assert!(e.contains("model.beta has no values"), "{e}");
        let e = err(&["model.beta=1,1"]);
        assert!(e.contains("twice"), "{e}");
        let e = err(&["model.beta=-1"]);
        assert!(e.contains("model.beta = -1"), "{e}");
        let e = err(&[]);
        assert!(e.contains("no axis"), "{e}");
        assert!(parse_axis("model.beta").is_err());
    }

    #[test]
    fn the_shipped_grid_sweep_is_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/experiments/grid_sweep.toml");
        let g = GridConfig::load(&path).unwrap();
        assert_eq!(g.points().len(), 12);
        assert_eq!(g.points()[0].dir_name(), "beta_1-latent_dim_6-seed_1");
    }

    #[test]
    fn command_line_values_take_their_toml_type() {
        assert_eq!(parse_value("4"), toml::Value::Integer(4));
        assert_eq!(parse_value("1e-3"), toml::Value::Float(1e-3));
        assert_eq!(parse_value("true"), toml::Value::Boolean(true));
        assert_eq!(
            parse_value("gaussian"),
            toml::Value::String("gaussian".into())
        );
    }
}
