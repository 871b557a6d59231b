//! `sweep`: a grid of runs over any config keys, in this process, as local workers, or as a
//! cluster job array (plan / point / collect). See README, "Sweeps over any grid".
//!
//! ```text
//! sweep --config assets/configs/vae_mnist.toml --grid model.beta=1,4,16 --grid model.latent_dim=6,10
//! sweep --config assets/experiments/grid_sweep.toml --jobs 2
//! sweep --plan assets/experiments/grid_sweep.toml --out /shared/sweeps/g1   # then sbatch .../slurm.sh
//! sweep --point 3 /shared/sweeps/g1
//! sweep --collect /shared/sweeps/g1
//! ```
use ae_train::grid::{self, GridConfig, collect, parse_axis, plan, run_point};
use ae_train::run::{Display, RunOptions};
use ae_train::scheduler::{Job, run_jobs};
use ae_train::{ExperimentConfig, device};
use anyhow::{Context, bail};
use clap::Parser;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// mimalloc, as in `train` and `bench`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sweeps over any grid of config keys: each point a run folder, then results.csv (a column
/// per key), results.md and report.md.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// A sweep file (name, grid and base tables) or an experiment config to sweep with --grid; runs
    /// every point here, then collects.
    #[arg(long, conflicts_with_all = ["plan", "point", "collect", "resume"])]
    config: Option<PathBuf>,
    /// A grid axis KEY=V1,V2,… over any config key (repeatable; replaces the file's axis of
    /// the same key), e.g. --grid model.beta=1,4,16 --grid model.latent_dim=6,10.
    #[arg(long)]
    grid: Vec<String>,
    /// Sweep name (default: the file's, or `<experiment>_grid`).
    #[arg(long)]
    name: Option<String>,
    /// Write the sweep folder --out for a cluster (sweep.toml, points.csv, slurm.sh,
    /// run_local.sh) from this config, and train nothing.
    #[arg(long, requires = "out")]
    plan: Option<PathBuf>,
    /// Train point I of the sweep folder DIR (skipped when finished, resumed when begun).
    #[arg(long, value_names = ["I", "DIR"], num_args = 2)]
    point: Option<Vec<String>>,
    /// Write results.csv, results.md and report.md of the sweep folder DIR (all points done).
    #[arg(long, value_name = "DIR")]
    collect: Option<PathBuf>,
    /// Train the unfinished points of the sweep folder DIR, then collect.
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
    /// Points trained at the same time on CPU, as worker processes (`sweep --point`).
    #[arg(long)]
    jobs: Option<usize>,
    /// Backend of every run: flex, ndarray, wgpu[:N], cuda[:N].
    // The brackets are `--help` text, not links.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long)]
    device: Option<String>,
    /// MNIST directory of the base config (else its data_dir, else $AE_MNIST_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Root of the sweep folders (with --config), or the sweep folder itself (with --plan).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Plain log lines even in a terminal.
    #[arg(long)]
    plain: bool,
}

/// The grid of `path` (a sweep file, or an experiment config) with the command line's axes.
fn load_grid(path: &Path, args: &Args) -> anyhow::Result<GridConfig> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "malformed config {}: {}",
            path.display(),
            e.to_string().lines().next().unwrap_or_default()
        )
    })?;
    let mut grid = if table.contains_key("base") {
        let mut g: GridConfig = table.try_into().map_err(|e: toml::de::Error| {
            anyhow::anyhow!(
                "malformed sweep config {}: {}",
                path.display(),
                e.to_string().lines().next().unwrap_or_default()
            )
        })?;
        if let Some(n) = &args.name {
            g.name.clone_from(n);
        }
        g
    } else {
        let base = ExperimentConfig::load(path)?;
        GridConfig {
            name: args
                .name
                .clone()
                .unwrap_or_else(|| format!("{}_grid", base.name)),
            jobs: 1,
            evaluate: vec![
                "elbo".into(),
                "decomposition".into(),
                "disentanglement".into(),
            ],
            grid: Vec::new(),
            base,
        }
    };
    for arg in &args.grid {
        let axis = parse_axis(arg)?;
        match grid.grid.iter_mut().find(|a| a.key == axis.key) {
            Some(a) => *a = axis,
            None => grid.grid.push(axis),
        }
    }
    if let Some(j) = args.jobs {
        grid.jobs = j;
    }
    if let Some(d) = &args.data_dir {
        grid.base.data.set_data_dir(d.clone());
    }
    device::choose(&mut grid.base.device, args.device.as_deref())?;
    grid.validate()
        .with_context(|| format!("invalid sweep {}", path.display()))?;
    Ok(grid)
}

/// Trains the unfinished points of the sweep in `dir`: `jobs` worker processes on CPU, else
/// one after another in this process.
fn train_all(grid: &GridConfig, dir: &Path, opts: &RunOptions) -> anyhow::Result<()> {
    let points = grid.points();
    let todo: Vec<usize> = points
        .iter()
        .filter(|p| !grid::point_done(grid, dir, p))
        .map(|p| p.index)
        .collect();
    if todo.len() < points.len() {
        println!(
            "{} of {} points already finished; skipping them",
            points.len() - todo.len(),
            points.len()
        );
    }
    let cpu = grid
        .base
        .device
        .as_deref()
        .is_some_and(|d| d == "flex" || d == "ndarray");
    if grid.jobs > 1 && cpu && todo.len() > 1 {
        let exe = std::env::current_exe()?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = (cores / grid.jobs).max(1);
        std::fs::create_dir_all(dir.join("logs"))?;
        println!(
            "{} points, {} at a time, {threads} thread(s) each; logs in {}/logs/",
            todo.len(),
            grid.jobs,
            dir.display()
        );
        let jobs = todo
            .iter()
            .map(|&i| {
                let mut command = Command::new(&exe);
                command
                    .arg("--point")
                    .arg(i.to_string())
                    .arg(dir)
                    .env("RAYON_NUM_THREADS", threads.to_string());
                Job {
                    command,
                    log: dir.join("logs").join(format!("{i}.log")),
                }
            })
            .collect();
        let failed = run_jobs(jobs, grid.jobs, |f| {
            let p = &points[todo[f.index]];
            let verdict = if f.status.success() {
                "done".to_string()
            } else {
                format!("FAILED ({})", f.status)
            };
            println!(
                "[{}/{}] point {} ({}) {verdict} in {:.0}s",
                f.done,
                todo.len(),
                p.index,
                p.dir_name(),
                f.seconds
            );
        })?;
        if !failed.is_empty() {
            let logs: Vec<String> = failed
                .iter()
                .map(|f| format!("logs/{}.log", todo[f.index]))
                .collect();
            bail!(
                "{} point(s) failed (see {} in {}); continue with: sweep --resume {}",
                failed.len(),
                logs.join(", "),
                dir.display(),
                dir.display()
            );
        }
    } else {
        for (k, &i) in todo.iter().enumerate() {
            let p = &points[i];
            println!(
                "== [{}/{}] point {i}: {} ==",
                k + 1,
                todo.len(),
                p.dir_name()
            );
            run_point(dir, i, opts).with_context(|| {
                format!(
                    "point {i} ({}) did not finish; continue with: sweep --resume {}",
                    p.dir_name(),
                    dir.display()
                )
            })?;
        }
    }
    Ok(())
}

fn finish(dir: &Path, started: Instant) -> anyhow::Result<()> {
    collect(dir)?;
    println!("\n{}", std::fs::read_to_string(dir.join("results.md"))?);
    println!(
        "results of {} points in {}/results.csv, results.md, report.md, rd_by_*.png ({:.0} s)",
        grid::open(dir)?.points().len(),
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let opts = |dir: &Path| RunOptions {
        out_dir: dir.to_path_buf(),
        device: None,
        run_id: None,
        display: if args.plain {
            Display::Plain
        } else {
            Display::Auto
        },
    };
    let exe = std::env::current_exe()?;
    if let Some(config) = &args.plan {
        let grid = load_grid(config, &args)?;
        let dir = args.out.clone().expect("clap requires --out");
        plan(&grid, &dir, &exe)?;
        let n = grid.points().len();
        println!(
            "planned {n} points in {}:\n  sbatch {}/slurm.sh              (Slurm job array 0-{})\n  JOBS=2 {}/run_local.sh         (this machine)\n  sweep --point I {}            (one point)\n  sweep --collect {}            (results, once all are done)",
            dir.display(),
            dir.display(),
            n - 1,
            dir.display(),
            dir.display(),
            dir.display()
        );
        return Ok(());
    }
    if let Some(point) = &args.point {
        let index: usize = point[0]
            .parse()
            .map_err(|_| anyhow::anyhow!("--point {}: I must be a point index", point[0]))?;
        let dir = PathBuf::from(&point[1]);
        let mut opts = opts(&dir);
        opts.display = Display::Plain;
        run_point(&dir, index, &opts)?;
        return Ok(());
    }
    if let Some(dir) = &args.collect {
        return finish(dir, started);
    }
    let (grid, dir) = match (&args.resume, &args.config) {
        (Some(dir), _) => {
            let mut grid = grid::open(dir)?;
            if let Some(j) = args.jobs {
                grid.jobs = j;
            }
            (grid, dir.clone())
        }
        (None, Some(config)) => {
            let grid = load_grid(config, &args)?;
            let out = args.out.clone().unwrap_or_else(|| PathBuf::from("runs"));
            let dir = grid::new_sweep_dir(&out, &grid)?;
            plan(&grid, &dir, &exe)?;
            (grid, dir)
        }
        (None, None) => bail!(
            "give --config FILE --grid KEY=V1,V2 (run here), --plan FILE --out DIR, --point I DIR, \
             --collect DIR or --resume DIR; see --help"
        ),
    };
    println!(
        "sweep folder: {} ({} points)",
        dir.display(),
        grid.points().len()
    );
    let _lock = ae_train::lock::FolderLock::acquire(&dir, "sweep")?;
    train_all(&grid, &dir, &opts(&dir))?;
    finish(&dir, started)
}

fn main() {
    // The training loop's thread joins the CPU kernels' pool (see ae_train::threads).
    ae_train::threads::run_main(|| run(Args::parse()));
}
