//! `bench`: training throughput of the reference models on each compiled backend, optionally
//! against the PyTorch twins in `bench/pytorch/` in the same invocation.
//!
//! ```text
//! cargo run --release -p experiments --bin bench -- --compare-pytorch
//! AE_PYTHON=venv/bin/python cargo run --release -p experiments --bin bench -- --compare-pytorch
//! cargo run --release -p experiments --features ndarray --bin bench -- --devices flex,ndarray
//! ```
use ae_train::bench::{BenchResult, CASES, case_config, median_min_max, run_case};
use ae_train::device;
use anyhow::{Context, bail};
use clap::Parser;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Training-throughput benchmark (samples/s, seconds per epoch, peak memory).
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Cases to run (comma-separated): mlp_vae, conv_vae_dsprites, vq_vae (the default), and
    /// conv_vae_folder (the conv β-VAE on a streamed folder of JPEGs: decoding's data wait)
    /// and conv_vae_folder_memory (the same folder decoded up front).
    #[arg(long, value_delimiter = ',', default_values_t = CASES.map(String::from))]
    cases: Vec<String>,
    /// Devices (comma-separated); default: every compiled backend.
    #[arg(long, value_delimiter = ',')]
    devices: Option<Vec<String>>,
    /// Measured epochs per case.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Warm-up epochs per case (not measured).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// MNIST directory (default: $AE_MNIST_DIR, else ../shared/datasets/mnist).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also run each case's PyTorch twin in bench/pytorch/ (same model, Adam, batch size and
    /// images per epoch) and print Burn/PyTorch. The Python is $AE_PYTHON (default python3);
    /// skipped with a message if `import torch` fails there.
    #[arg(long)]
    compare_pytorch: bool,
    /// With --compare-pytorch: per case, rounds of (Burn on each device, then PyTorch), so that
    /// both sides see the same drift of a shared machine; the ratio is of the medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Instead of training cases: time `evaluate`'s IWAE bounds (k up to 5000) on this many
    /// MNIST test images (10000 for the full test set) with the binarised-MNIST VAE.
    #[arg(long)]
    iwae: Option<usize>,
    /// Also time each fused conv op (forward and backward of every conv and transposed conv
    /// layer) over the measured epochs, and print its share, seconds per epoch and GMAC/s
    /// (flex with the `fast-cpu` kernels; other backends have nothing to report).
    #[arg(long)]
    conv_ops: bool,
    /// Internal: run one case in this process and print its JSON.
    #[arg(long, hide = true)]
    child: Option<String>,
}

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn mnist_dir(args: &Args) -> PathBuf {
    args.data_dir
        .clone()
        .or_else(|| std::env::var_os("AE_MNIST_DIR").map(PathBuf::from))
        .unwrap_or_else(|| repo().join("../shared/datasets/mnist"))
}

fn run(args: Args) -> anyhow::Result<()> {
    let mnist = mnist_dir(&args);
    let devices = args
        .devices
        .clone()
        .unwrap_or_else(|| device::compiled().iter().map(|s| s.to_string()).collect());
    if let Some(images) = args.iwae {
        for dev in &devices {
            let r = ae_train::bench::run_eval_case(
                &repo().join("assets"),
                Some(mnist.clone()),
                dev,
                images,
            )?;
            println!(
                "iwae k = 1..{} on {} test images, {}: {:.1} s ({:.1} ms per image), peak RSS {:.0} MB",
                r.k,
                r.images,
                r.device,
                r.seconds,
                1e3 * r.seconds / r.images.max(1) as f64,
                r.peak_rss_mb
            );
        }
        return Ok(());
    }
    if let Some(case) = &args.child {
        let cfg = case_config(case, &repo().join("assets"), Some(mnist))?;
        let epochs = (args.warmup, args.repeats);
        let r = run_case(case, &cfg, &devices[0], epochs, args.conv_ops)?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!(
        "| case | device | samples/epoch | s/epoch median (min–max) | samples/s | peak RSS MB |"
    );
    println!("|---|---|---|---|---|---|");
    let mut results: Vec<BenchResult> = Vec::new();
    for dev in &devices {
        device::parse(dev)?;
        for case in &args.cases {
            let r = child(&exe, case, dev, &args, &mnist)?;
            let (med, min, max) = r.stats();
            println!(
                "| {} | {} | {} | {med:.2} ({min:.2}–{max:.2}) | {:.0} | {:.0} |",
                r.case,
                r.device,
                r.samples,
                r.samples as f64 / med,
                r.peak_rss_mb
            );
            results.push(r);
        }
    }
    if args.compare_pytorch {
        compare_pytorch(&args, &exe, &mnist, &devices)?;
    }
    print_phases(&results);
    if args.conv_ops {
        print_conv_ops(&results);
    }
    Ok(())
}

/// Runs one case on one device in a child process (so that peak memory is the case's own).
fn child(
    exe: &Path,
    case: &str,
    dev: &str,
    args: &Args,
    mnist: &Path,
) -> anyhow::Result<BenchResult> {
    let mut cmd = Command::new(exe);
    cmd.args([
        "--child",
        case,
        "--devices",
        dev,
        "--repeats",
        &args.repeats.to_string(),
        "--warmup",
        &args.warmup.to_string(),
    ])
    .args(args.conv_ops.then_some("--conv-ops"))
    .arg("--data-dir")
    .arg(mnist);
    Ok(serde_json::from_value(json_result(
        cmd,
        &format!("{case} on {dev}"),
    )?)?)
}

/// Runs `cmd` and parses the last line of its standard output as JSON; `what` names it in
/// errors (cannot start, non-zero exit with its standard error, malformed output).
fn json_result(mut cmd: Command, what: &str) -> anyhow::Result<serde_json::Value> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!("{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .with_context(|| format!("{what} printed no result line"))
}

/// The PyTorch twin of a benchmark case in `bench/pytorch/`: its script and whether it takes
/// the MNIST directory as its argument.
fn pytorch_twin(case: &str) -> Option<(&'static str, bool)> {
    match case {
        "mlp_vae" => Some(("mlp_vae.py", true)),
        "conv_vae_dsprites" => Some(("conv_vae_dsprites.py", false)),
        "vq_vae" => Some(("vq_vae.py", true)),
        _ => None,
    }
}

/// One run of a PyTorch twin (its JSON line).
struct TorchRun {
    seconds_per_epoch: Vec<f64>,
    framework: String,
    samples: Option<u64>,
    peak_rss_mb: f64,
}

/// Runs the PyTorch twin `script` with `python` for `args.repeats` measured epochs.
fn run_twin(
    python: &OsStr,
    script: &Path,
    mnist: Option<&Path>,
    args: &Args,
    threads: usize,
) -> anyhow::Result<TorchRun> {
    let mut cmd = Command::new(python);
    cmd.arg(script);
    if let Some(dir) = mnist {
        cmd.arg(dir);
    }
    cmd.args([
        "--epochs",
        &args.repeats.to_string(),
        "--threads",
        &threads.to_string(),
    ]);
    let v = json_result(cmd, &script.display().to_string())?;
    Ok(TorchRun {
        seconds_per_epoch: v["seconds_per_epoch"]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
            .unwrap_or_default(),
        framework: v["framework"].as_str().unwrap_or("pytorch").to_string(),
        samples: v["samples"].as_u64(),
        peak_rss_mb: v["peak_rss_mb"].as_f64().unwrap_or(f64::NAN),
    })
}

/// For each selected case with a PyTorch twin: alternates rounds of the Burn case (on each
/// device) and the twin, then prints PyTorch's row and the Burn/PyTorch ratio of median epoch
/// times, per round and over all rounds; last, a summary over the cases.
fn compare_pytorch(
    args: &Args,
    exe: &Path,
    mnist: &Path,
    devices: &[String],
) -> anyhow::Result<()> {
    let python = std::env::var_os("AE_PYTHON").unwrap_or_else(|| "python3".into());
    let has_torch = Command::new(&python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        println!(
            "\n--compare-pytorch: `{} -c \"import torch\"` failed; skipping the PyTorch runs \
             (set AE_PYTHON to a Python that has torch)",
            python.to_string_lossy()
        );
        return Ok(());
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // (case, device, Burn median, PyTorch median, PyTorch peak RSS)
    let mut summary: Vec<(String, String, f64, f64, f64)> = Vec::new();
    for case in &args.cases {
        let Some((script, reads_mnist)) = pytorch_twin(case) else {
            println!("\n--compare-pytorch: no PyTorch twin of {case}; skipped");
            continue;
        };
        let script = repo().join("bench/pytorch").join(script);
        let mut torch_times = Vec::new();
        let mut burn_times: Vec<Vec<f64>> = vec![Vec::new(); devices.len()];
        let (mut framework, mut torch_rss, mut samples) = (String::from("pytorch"), 0.0, 0);
        println!(
            "\nBurn vs PyTorch, {case}, {} alternating rounds of {} epochs (after {} warm-up):\n",
            args.rounds.max(1),
            args.repeats,
            args.warmup
        );
        println!("| round | device | Burn s/epoch | PyTorch s/epoch | Burn / PyTorch |");
        println!("|---|---|---|---|---|");
        for round in 1..=args.rounds.max(1) {
            let mut burn_round = Vec::new();
            for (i, dev) in devices.iter().enumerate() {
                let r = child(exe, case, dev, args, mnist)?;
                burn_round.push(r.stats().0);
                samples = r.samples;
                burn_times[i].extend(r.seconds_per_epoch);
            }
            let t = run_twin(
                &python,
                &script,
                reads_mnist.then_some(mnist),
                args,
                threads,
            )?;
            let torch_round = median_min_max(&t.seconds_per_epoch).0;
            torch_times.extend(t.seconds_per_epoch);
            framework = t.framework;
            torch_rss = f64::max(torch_rss, t.peak_rss_mb);
            if let Some(n) = t.samples
                && n as usize != samples
            {
                eprintln!("(warning: PyTorch trains on {n} images per epoch, Burn on {samples})");
            }
            for (dev, b) in devices.iter().zip(&burn_round) {
                println!(
                    "| {round} | {dev} | {b:.2} | {torch_round:.2} | {:.2} |",
                    b / torch_round
                );
            }
        }
        let (torch_med, tmin, tmax) = median_min_max(&torch_times);
        println!(
            "\n| {case} | {framework} ({threads} threads) | {samples} | {torch_med:.2} ({tmin:.2}–{tmax:.2}) | {:.0} | {torch_rss:.0} |",
            samples as f64 / torch_med,
        );
        for (dev, t) in devices.iter().zip(burn_times) {
            let m = median_min_max(&t).0;
            println!(
                "\n{case} Burn ({dev}) / PyTorch, median epoch time over all rounds: {m:.2} / {torch_med:.2} = {:.2}",
                m / torch_med
            );
            summary.push((case.clone(), dev.clone(), m, torch_med, torch_rss));
        }
    }
    if summary.len() > 1 {
        println!(
            "\nBurn vs PyTorch ({threads} threads), median s/epoch over all rounds:\n\n\
             | case | device | Burn | PyTorch | Burn / PyTorch | PyTorch peak RSS MB |\n\
             |---|---|---|---|---|---|"
        );
        for (case, dev, b, t, rss) in summary {
            println!(
                "| {case} | {dev} | {b:.2} | {t:.2} | {:.2} | {rss:.0} |",
                b / t
            );
        }
    }
    Ok(())
}

/// Prints each case's fused conv ops: share of the conv time, seconds per measured epoch,
/// and the multiply-adds per second of the unfolded products.
fn print_conv_ops(results: &[BenchResult]) {
    println!("\nFused conv ops over the measured epochs (--conv-ops):\n");
    println!("| case | device | op | layer | s/epoch | share of conv time | GMAC/s |");
    println!("|---|---|---|---|---|---|---|");
    for r in results {
        let total: f64 = r.conv_ops.iter().map(|o| o.seconds).sum();
        let epochs = r.seconds_per_epoch.len().max(1) as f64;
        if r.conv_ops.is_empty() {
            println!(
                "| {} | {} | (no fused conv ops) | | | | |",
                r.case, r.device
            );
        }
        for o in &r.conv_ops {
            println!(
                "| {} | {} | {} | {} | {:.3} | {:.1}% | {:.0} |",
                r.case,
                r.device,
                o.op,
                o.layer,
                o.seconds / epochs,
                100.0 * o.seconds / total,
                o.macs / o.seconds.max(1e-12) / 1e9
            );
        }
        if !r.conv_ops.is_empty() {
            let share = 100.0 * total / r.seconds_per_epoch.iter().sum::<f64>();
            println!(
                "| {} | {} | all | | {:.3} | {share:.1}% of the epoch | |",
                r.case,
                r.device,
                total / epochs
            );
        }
    }
}

/// Prints where each case's measured wall time went.
fn print_phases(results: &[BenchResult]) {
    println!("\nWhere the time went (share of the measured epochs' wall time):\n");
    println!("| case | device | data wait | forward + backward | optimizer |");
    println!("|---|---|---|---|---|");
    for r in results {
        let total: f64 = r.seconds_per_epoch.iter().sum();
        let pct = |x: f64| 100.0 * x / total;
        println!(
            "| {} | {} | {:.1}% | {:.1}% | {:.1}% |",
            r.case,
            r.device,
            pct(r.phases.data_wait),
            pct(r.phases.forward_backward),
            pct(r.phases.optimizer)
        );
    }
}

fn main() {
    // The training loop's thread joins the CPU kernels' pool (see ae_train::threads).
    ae_train::threads::run_main(|| run(Args::parse()));
}
