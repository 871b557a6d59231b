//! The β sweep: the rate–distortion study (`beta_sweep`).
//!
//! One run per (β, seed) through the same path as `train`, each in its own run folder
//! `<sweep>/beta_<β>_seed<s>/`; then `results.csv`, `results.md`, plots and `report.md`.
//! Finished runs are skipped on `--resume`; an unfinished one continues from its checkpoint.
use crate::results::{ResultRow, mean_rows, results_csv, results_md};
use crate::run::{RunOptions, last_checkpoint};
use crate::scheduler::{Job, run_jobs};
use crate::{ExperimentConfig, plots, write_atomic};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn one() -> usize {
    1
}

/// A β sweep, as written in `assets/experiments/beta_sweep.toml` and saved as `sweep.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Sweep name: folders go to `<out>/<name>/<sweep-id>/`.
    pub name: String,
    /// β values, one model each (per seed).
    pub betas: Vec<f64>,
    /// Seeds per β: `base.seed`, `base.seed + 1`, ...
    #[serde(default = "one")]
    pub seeds: usize,
    /// Runs trained at the same time on CPU (separate processes sharing the cores). GPU runs
    /// go one after another.
    #[serde(default = "one")]
    pub jobs: usize,
    /// Everything else of each run: model (a VAE), data, epochs, optimiser, KL schedule.
    pub base: ExperimentConfig,
}

/// One (β, seed) of a sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepPoint {
    /// β of the run.
    pub beta: f64,
    /// Seed of the run.
    pub seed: u64,
}

impl SweepPoint {
    /// Folder name of the run.
    pub fn dir_name(&self) -> String {
        format!("beta_{}_seed{}", self.beta, self.seed)
    }
}

impl SweepConfig {
    /// Reads and validates a sweep file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read sweep config {}", path.display()))?;
        let cfg = Self::from_toml(&text, &path.display().to_string())?;
        cfg.validate()
            .with_context(|| format!("invalid sweep config {}", path.display()))?;
        Ok(cfg)
    }

    /// Parses TOML (without validating), with a one-line error naming `origin` and the key.
    pub fn from_toml(text: &str, origin: &str) -> anyhow::Result<Self> {
        toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "malformed sweep config {origin}: {}",
                one_line(&e.to_string())
            )
        })
    }

    /// The config as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("sweep config serialises")
    }

    /// Checks every value before any training, naming the key.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.name.trim().is_empty() || self.name.contains(['/', '\\']) {
            bail!("name must be a non-empty folder name, got {:?}", self.name);
        }
        if self.betas.is_empty() {
            bail!("betas must list at least one value");
        }
        for (i, b) in self.betas.iter().enumerate() {
            if !(b.is_finite() && *b >= 0.0) {
                bail!("betas[{i}] = {b}: every β must be a finite number ≥ 0");
            }
        }
        if self.seeds == 0 {
            bail!("seeds must be at least 1");
        }
        if self.jobs == 0 {
            bail!("jobs must be at least 1");
        }
        if let Err(e) = self.base.model.clone().set_beta(1.0) {
            bail!("base.model: {e}; a β sweep needs a family with a KL term");
        }
        self.base
            .validate()
            .map_err(|e| anyhow::anyhow!("base.{e}"))?;
        self.base
            .check_shapes()
            .map_err(|e| anyhow::anyhow!("base.{e}"))?;
        Ok(())
    }

    /// Every (β, seed), in β order then seed order.
    pub fn points(&self) -> Vec<SweepPoint> {
        self.betas
            .iter()
            .flat_map(|&beta| {
                (0..self.seeds as u64).map(move |k| SweepPoint {
                    beta,
                    seed: self.base.seed + k,
                })
            })
            .collect()
    }

    /// The experiment config of one point.
    pub fn run_config(&self, p: SweepPoint) -> ExperimentConfig {
        let mut cfg = self.base.clone();
        cfg.name = format!("{}_{}", self.name, p.dir_name());
        cfg.seed = p.seed;
        cfg.model
            .set_beta(p.beta)
            .expect("validated: the family has a β");
        cfg
    }
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Trains (or resumes, or skips) one point of the sweep in `sweep_dir`, then evaluates it
/// (KL decomposition and, on dSprites, MIG, FactorVAE score, SAP, DCI): the point runner of
/// `sweep` ([`crate::grid::run_sweep_point`]: per-point lock, skip, resume).
pub fn run_point(
    sweep: &SweepConfig,
    sweep_dir: &Path,
    p: SweepPoint,
    opts: &RunOptions,
) -> anyhow::Result<()> {
    let dsprites = sweep.base.data.name() == "dsprites";
    if !point_done(sweep_dir, p) {
        println!(
            "β = {} seed {}: training (if needed) and evaluating (KL decomposition{})",
            p.beta,
            p.seed,
            if dsprites {
                ", MIG, FactorVAE score, SAP, DCI"
            } else {
                ""
            }
        );
    }
    crate::grid::run_sweep_point(
        sweep_dir,
        &p.dir_name(),
        &format!("β = {} seed {}", p.beta, p.seed),
        &|| Ok(sweep.run_config(p)),
        &[
            "elbo".into(),
            "decomposition".into(),
            "disentanglement".into(),
        ],
        opts,
    )?;
    Ok(())
}

/// Trains the points `todo` of the sweep in `dir` (the `run` argument of [`run_sweep`]): as
/// child processes, `sweep.jobs` at a time sharing the cores, when the device is a CPU and
/// there are several jobs and points; otherwise one after another in this process.
/// `worker(p)` is the command that trains point `p` in a child (the calling binary in its
/// worker mode, which calls [`run_point`]).
pub fn train_points(
    sweep: &SweepConfig,
    dir: &Path,
    opts: &RunOptions,
    todo: &[SweepPoint],
    worker: &dyn Fn(SweepPoint) -> Command,
) -> anyhow::Result<()> {
    let cpu = sweep
        .base
        .device
        .as_deref()
        .is_some_and(|d| d == "flex" || d == "ndarray");
    if sweep.jobs > 1 && cpu && todo.len() > 1 {
        train_in_children(sweep, dir, todo, worker)
    } else {
        train_in_turn(sweep, dir, opts, todo)
    }
}

/// Trains `todo` one after another in this process.
fn train_in_turn(
    sweep: &SweepConfig,
    dir: &Path,
    opts: &RunOptions,
    todo: &[SweepPoint],
) -> anyhow::Result<()> {
    for (i, p) in todo.iter().enumerate() {
        println!(
            "== [{}/{}] β = {} seed {} ==",
            i + 1,
            todo.len(),
            p.beta,
            p.seed
        );
        run_point(sweep, dir, *p, opts).with_context(|| {
            format!(
                "β = {} seed {} did not finish; continue with: beta_sweep --resume {}",
                p.beta,
                p.seed,
                dir.display()
            )
        })?;
    }
    Ok(())
}

/// Trains `todo` in child processes started by `worker`, `sweep.jobs` at a time, each with
/// its share of the cores (`RAYON_NUM_THREADS`) and its log in `<dir>/<run>.log`.
fn train_in_children(
    sweep: &SweepConfig,
    dir: &Path,
    todo: &[SweepPoint],
    worker: &dyn Fn(SweepPoint) -> Command,
) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (cores / sweep.jobs).max(1);
    println!(
        "{} runs, {} at a time, {threads} thread(s) each; logs in {}/<run>.log",
        todo.len(),
        sweep.jobs,
        dir.display()
    );
    let log = |p: &SweepPoint| format!("{}.log", p.dir_name());
    let jobs = todo
        .iter()
        .map(|p| {
            let mut command = worker(*p);
            command.env("RAYON_NUM_THREADS", threads.to_string());
            Job {
                command,
                log: dir.join(log(p)),
            }
        })
        .collect();
    let started = Instant::now();
    let failed = run_jobs(jobs, sweep.jobs, |f| {
        let p = todo[f.index];
        let verdict = if f.status.success() {
            "done".to_string()
        } else {
            format!("FAILED ({})", f.status)
        };
        println!(
            "[{}/{}] β = {} seed {} {verdict} in {:.0}s (sweep {:.0}s)",
            f.done,
            todo.len(),
            p.beta,
            p.seed,
            f.seconds,
            started.elapsed().as_secs_f64()
        );
    })?;
    if !failed.is_empty() {
        let names: Vec<String> = failed.iter().map(|f| log(&todo[f.index])).collect();
        bail!(
            "{} run(s) failed (see {}); continue with: beta_sweep --resume {}",
            failed.len(),
            names.join(", "),
            dir.display()
        );
    }
    Ok(())
}

/// Whether a point is finished: trained (`summary.json`) and evaluated (`eval.json`).
pub fn point_done(sweep_dir: &Path, p: SweepPoint) -> bool {
    let dir = sweep_dir.join(p.dir_name());
    dir.join("summary.json").is_file() && dir.join("eval.json").is_file()
}

/// Index of the knee of a convex decreasing curve (Kneedle: the point farthest below the chord
/// between the end points, after normalising both axes to [0, 1]). Points must be sorted by x.
pub fn knee(points: &[(f64, f64)]) -> Option<usize> {
    if points.len() < 3 {
        return None;
    }
    let (x0, x1) = (points[0].0, points[points.len() - 1].0);
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (ymin, ymax) = ys
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
            (a.min(y), b.max(y))
        });
    if x1 == x0 || ymax == ymin {
        return None;
    }
    let norm = |p: &(f64, f64)| ((p.0 - x0) / (x1 - x0), (p.1 - ymin) / (ymax - ymin));
    let (a, b) = (norm(&points[0]), norm(&points[points.len() - 1]));
    let (mut best, mut best_d) = (None, 0.0);
    for (i, p) in points.iter().enumerate().skip(1).take(points.len() - 2) {
        let (x, y) = norm(p);
        let chord = a.1 + (b.1 - a.1) * (x - a.0) / (b.0 - a.0);
        let d = chord - y;
        if d > best_d {
            best_d = d;
            best = Some(i);
        }
    }
    best
}

fn report_md(sweep: &SweepConfig, rows: &[ResultRow], per_beta: &[ResultRow], wall: f64) -> String {
    let latent = sweep.base.model.latent_dim();
    let mut s = format!(
        "# {}: rate–distortion study\n\n{} runs ({} β × {} seed(s)), {} on {}, {} epochs each; wall time {:.0} s.\n\
         Rate = validation KL, distortion = validation reconstruction NLL, both in nats per sample.\n\n",
        sweep.name,
        rows.len(),
        sweep.betas.len(),
        sweep.seeds,
        sweep.base.model.family(),
        sweep.base.data.name(),
        sweep.base.epochs,
        wall
    );
    s.push_str(&results_md(
        rows,
        if sweep.seeds > 1 { per_beta } else { &[] },
    ));
    s.push_str("\n## Reading\n\n");
    // Physics: rate down, distortion up as β grows.
    let mut sorted = per_beta.to_vec();
    sorted.sort_by(|a, b| a.beta.total_cmp(&b.beta));
    if let (Some(lo), Some(hi)) = (sorted.first(), sorted.last())
        && sorted.len() > 1
    {
        s.push_str(&format!(
            "- From β = {} to β = {} the rate goes {:.2} → {:.2} nats and the distortion {:.2} → {:.2} nats{}.\n",
            lo.beta,
            hi.beta,
            lo.rate,
            hi.rate,
            lo.distortion,
            hi.distortion,
            if hi.rate < lo.rate && hi.distortion > lo.distortion { " (rate falls, distortion rises, as theory says)" } else { " (**not** the expected trade-off: check training length)" }
        ));
        let inversions: Vec<String> = sorted
            .windows(2)
            .filter(|w| w[1].rate > w[0].rate)
            .map(|w| format!("β {}→{}", w[0].beta, w[1].beta))
            .collect();
        if !inversions.is_empty() {
            s.push_str(&format!(
                "- The rate rises between neighbouring β at {} (seed noise).\n",
                inversions.join(", ")
            ));
        }
    }
    let collapsing: Vec<String> = sorted
        .iter()
        .filter(|r| r.collapsed_dims > 0.0)
        .map(|r| format!("β = {} ({} of {latent})", r.beta, r.collapsed_dims))
        .collect();
    s.push_str(&if collapsing.is_empty() {
        "- No β switched off a latent dimension (every KL_j ≥ 0.01 nats).\n".to_string()
    } else {
        format!(
            "- Collapsed dimensions (mean KL_j < 0.01 nats): {}.\n",
            collapsing.join(", ")
        )
    });
    let au: Vec<String> = sorted
        .iter()
        .map(|r| format!("{}", r.active_units))
        .collect();
    s.push_str(&format!(
        "- Active units by increasing β: {}.\n",
        au.join(", ")
    ));
    let fired: Vec<String> = rows
        .iter()
        .filter(|r| r.posterior_collapse > 0.5)
        .map(|r| format!("β = {} (seed {})", r.beta, r.seed.unwrap_or(0)))
        .collect();
    s.push_str(&if fired.is_empty() {
        "- The posterior-collapse alarm fired for no run.\n".to_string()
    } else {
        format!(
            "- **The posterior-collapse alarm fired** for {}: the decoder ignores z there.\n",
            fired.join(", ")
        )
    });
    let mut by_rate: Vec<&ResultRow> = sorted.iter().collect();
    by_rate.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let pts: Vec<(f64, f64)> = by_rate.iter().map(|r| (r.rate, r.distortion)).collect();
    match knee(&pts) {
        Some(i) => s.push_str(&format!(
            "- Knee of the R–D curve (Kneedle): β = {} at rate {:.2}, distortion {:.2} nats — beyond it extra rate buys little distortion.\n",
            by_rate[i].beta, by_rate[i].rate, by_rate[i].distortion
        )),
        None => s.push_str("- The R–D curve has too few distinct points for a knee.\n"),
    }
    disentanglement_reading(&mut s, &sorted, sweep.seeds);
    s.push_str("\n## Figures\n\n- `rd_curve.png`: distortion vs rate, one point per β, with the β = 1 ELBO iso-line.\n\
                - `active_units.png`: active units vs β.\n- `kl_heatmap.png`: per-dimension KL (dimensions sorted by KL) vs β.\n\
                - `traversal_beta_<β>.png`: each active latent swept over [−3, 3] around one image.\n\
                - `disentanglement.png`, `disentanglement_vs_distortion.png` (dSprites): MIG and FactorVAE score vs β and vs distortion.\n");
    s
}

/// The disentanglement paragraph of `report.md` (rows sorted by β, one per β).
fn disentanglement_reading(s: &mut String, sorted: &[ResultRow], seeds: usize) {
    if let (Some(first), Some(last)) = (sorted.first(), sorted.last())
        && let (Some(_), Some(_)) = (first.mutual_information, first.total_correlation)
    {
        let tc: Vec<String> = sorted
            .iter()
            .map(|r| format!("{:.2}", r.total_correlation.unwrap_or(f64::NAN)))
            .collect();
        s.push_str(&format!(
            "- What the posterior uses: I(x; z) goes {:.2} → {:.2} nats from β = {} to β = {}; \
             total correlation by increasing β: {}.\n",
            first.mutual_information.unwrap_or(f64::NAN),
            last.mutual_information.unwrap_or(f64::NAN),
            first.beta,
            last.beta,
            tc.join(", ")
        ));
    }
    if sorted.iter().any(|r| r.mig.is_none()) || sorted.is_empty() {
        return;
    }
    let best = sorted
        .iter()
        .max_by(|a, b| a.mig.unwrap_or(0.0).total_cmp(&b.mig.unwrap_or(0.0)))
        .expect("non-empty");
    let migs: Vec<f64> = sorted.iter().map(|r| r.mig.unwrap_or(f64::NAN)).collect();
    let rising = migs.windows(2).all(|w| w[1] >= w[0]);
    let falling = migs.windows(2).all(|w| w[1] <= w[0]);
    let trend = if rising {
        "rises monotonically with β"
    } else if falling {
        "falls monotonically with β"
    } else {
        "is not monotone in β"
    };
    let range = migs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        - migs.iter().copied().fold(f64::INFINITY, f64::min);
    let spread = if seeds > 1 {
        let sd = sorted
            .iter()
            .filter_map(|r| r.spread.map(|s| s.0))
            .fold(0.0, f64::max);
        if range > 2.0 * sd {
            format!(
                "; its range over β ({range:.3}) is larger than twice the largest seed spread ({sd:.3})"
            )
        } else {
            format!(
                "; its range over β ({range:.3}) is **within** twice the largest seed spread \
                 ({sd:.3}): the trend is not resolved by these seeds"
            )
        }
    } else {
        " (one seed: the seed spread is unknown; Locatello et al. 2019 found it large — run \
         --seeds 3 or more before reading a trend)"
            .to_string()
    };
    let by_beta = |get: fn(&ResultRow) -> Option<f64>| {
        sorted
            .iter()
            .map(|r| format!("{:.2}", get(r).unwrap_or(f64::NAN)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    s.push_str(&format!(
        "- Disentanglement: the best MIG is at β = {} ({:.3}); MIG {trend}{spread}. FactorVAE \
         score by increasing β: {}; SAP: {}; DCI disentanglement: {}.\n",
        best.beta,
        best.mig.unwrap_or(f64::NAN),
        by_beta(|r| r.factor_vae),
        by_beta(|r| r.sap),
        by_beta(|r| r.dci)
    ));
}

/// What a finished sweep wrote.
#[derive(Clone, Debug)]
pub struct SweepOutcome {
    /// The sweep folder.
    pub dir: PathBuf,
    /// Per-run results.
    pub rows: Vec<ResultRow>,
}

/// Runs every point of the sweep (skipping finished ones), in order, calling `run` for each
/// point that still needs training, then writes the results. `run` trains in-process or spawns
/// worker processes ([`train_points`] does either).
pub fn run_sweep(
    sweep: &SweepConfig,
    dir: &Path,
    run: &dyn Fn(&[SweepPoint]) -> anyhow::Result<()>,
) -> anyhow::Result<SweepOutcome> {
    sweep.validate()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let _lock = crate::lock::FolderLock::acquire(dir, "sweep")?;
    write_atomic(&dir.join("sweep.toml"), sweep.to_toml().as_bytes())?;
    let started = Instant::now();
    let points = sweep.points();
    let todo: Vec<SweepPoint> = points
        .iter()
        .copied()
        .filter(|p| !point_done(dir, *p))
        .collect();
    let done = points.len() - todo.len();
    if done > 0 {
        println!(
            "{done} of {} runs already finished; skipping them",
            points.len()
        );
    }
    for p in &todo {
        let d = dir.join(p.dir_name());
        if let Some(n) = last_checkpoint(&d) {
            println!("β = {} seed {}: resuming from epoch {n}", p.beta, p.seed);
        }
    }
    run(&todo)?;
    let rows = points
        .iter()
        .map(|&p| ResultRow::read_run(&dir.join(p.dir_name()), p.beta, p.seed))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let per_beta = mean_rows(&rows);
    let means: &[ResultRow] = if sweep.seeds > 1 { &per_beta } else { &[] };
    write_atomic(
        &dir.join("results.csv"),
        results_csv(&rows, means).as_bytes(),
    )?;
    write_atomic(&dir.join("results.md"), results_md(&rows, means).as_bytes())?;
    plots::rd_curve(&per_beta, &dir.join("rd_curve.png"))?;
    plots::active_units(
        &per_beta,
        sweep.base.model.latent_dim(),
        &dir.join("active_units.png"),
    )?;
    plots::kl_heatmap(&per_beta, &dir.join("kl_heatmap.png"))?;
    if per_beta.iter().all(|r| r.mig.is_some()) {
        plots::disentanglement_vs_beta(&per_beta, &dir.join("disentanglement.png"))?;
        plots::disentanglement_vs_distortion(
            &per_beta,
            &dir.join("disentanglement_vs_distortion.png"),
        )?;
    }
    for &beta in &sweep.betas {
        let src = dir
            .join(
                SweepPoint {
                    beta,
                    seed: sweep.base.seed,
                }
                .dir_name(),
            )
            .join("traversal.png");
        if src.is_file() {
            let bytes = std::fs::read(&src)?;
            write_atomic(&dir.join(format!("traversal_beta_{beta}.png")), &bytes)?;
        }
    }
    write_atomic(
        &dir.join("report.md"),
        report_md(sweep, &rows, &per_beta, started.elapsed().as_secs_f64()).as_bytes(),
    )?;
    Ok(SweepOutcome {
        dir: dir.to_path_buf(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ae_models::ModelConfig;

    #[test]
    fn knee_finds_the_elbow_of_a_convex_curve() {
        let pts = [
            (0.0, 100.0),
            (1.0, 40.0),
            (2.0, 25.0),
            (4.0, 20.0),
            (8.0, 18.0),
        ];
        // Normalised: x = 0, .125, .25, .5, 1; y = 1, .268, .085, .024, 0; the chord is 1 − x,
        // so the gaps are .607, .665, .476: the knee is the third point.
        assert_eq!(knee(&pts), Some(2));
        assert_eq!(knee(&pts[..2]), None);
    }

    #[test]
    fn bad_sweeps_are_refused_naming_the_key() {
        let mut s = SweepConfig {
            name: "s".into(),
            betas: vec![1.0],
            seeds: 1,
            jobs: 1,
            base: ExperimentConfig::beta_vae_dsprites(1.0),
        };
        assert!(s.validate().is_ok());
        s.betas = vec![];
        assert!(s.validate().unwrap_err().to_string().contains("betas"));
        s.betas = vec![1.0, -0.5];
        assert!(s.validate().unwrap_err().to_string().contains("betas[1]"));
        s.betas = vec![1.0];
        // A family without a KL term is refused, naming itself.
        let ModelConfig::Vae(v) = s.base.model.clone() else {
            panic!("a VAE")
        };
        s.base.model = ModelConfig::Ae(ae_models::ae::AeConfig {
            latent_dim: v.latent_dim,
            architecture: v.architecture.clone(),
            likelihood: v.likelihood,
        });
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.contains("family = \"ae\"") && e.contains("no KL term"),
            "{e}"
        );
        s.base.model = ModelConfig::Vae(v);
        s.base.epochs = 0;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("base.epochs")
        );
    }

    #[test]
    fn points_cover_betas_and_seeds() {
        let s = SweepConfig {
            name: "s".into(),
            betas: vec![0.5, 4.0],
            seeds: 2,
            jobs: 1,
            base: ExperimentConfig::beta_vae_dsprites(1.0),
        };
        let p = s.points();
        assert_eq!(p.len(), 4);
        assert_eq!(p[3], SweepPoint { beta: 4.0, seed: 2 });
        assert_eq!(p[3].dir_name(), "beta_4_seed2");
    }
}
