//! Training-throughput benchmark: the training step loop (forward, backward, Adam) over an
//! epoch, fed by the same data loader as `train` (one background worker, so batching stays off
//! the critical path), without validation or metrics.
use crate::{ExperimentConfig, KlPenalty, KlSchedule, Trainable, device};
use ae_data::{DataConfig, FolderConfig};
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::train::TrainStep;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The benchmark cases run by default.
pub const CASES: [&str; 3] = ["mlp_vae", "conv_vae_dsprites", "vq_vae"];

/// Cases run only when named: `conv_vae_folder` trains the conv β-VAE on a streamed folder of
/// 2,000 CelebA-sized (178 × 218) RGB JPEGs resized and centre-cropped to 64 × 64, decoded by
/// 2 loader workers, to measure the data wait of on-the-fly decoding;
/// `conv_vae_folder_memory` is the same folder decoded into memory up front.
pub const EXTRA_CASES: [&str; 2] = ["conv_vae_folder", "conv_vae_folder_memory"];

/// One measured case.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BenchResult {
    /// Case name.
    pub case: String,
    /// Device name.
    pub device: String,
    /// Training images per epoch.
    pub samples: usize,
    /// Seconds of each measured epoch (after the warm-up).
    pub seconds_per_epoch: Vec<f64>,
    /// Peak resident memory of the process, MB.
    pub peak_rss_mb: f64,
    /// Where the measured epochs' wall time went, in seconds summed over them.
    pub phases: Phases,
    /// The fused conv kernels' time per op and layer over the measured epochs, when asked for
    /// (`bench --conv-ops`; empty otherwise, and for backends without the kernels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conv_ops: Vec<ConvOp>,
}

/// One fused conv op on one layer shape, summed over the measured epochs
/// (`ae_cpu::conv::profile`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ConvOp {
    /// `conv forward`, `conv backward`, `conv_transpose forward` or `conv_transpose backward`.
    pub op: String,
    /// The layer, `c_in×h×w → c_out×oh×ow`.
    pub layer: String,
    /// Calls.
    pub calls: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Multiply-adds of the unfolded products (padding taps included).
    pub macs: f64,
}

/// Starts timing the fused conv ops when `on` (a no-op without the `fast-cpu` feature).
fn profile_conv_ops(on: bool) {
    #[cfg(feature = "fast-cpu")]
    if on {
        ae_cpu::conv::profile::enable();
    }
    #[cfg(not(feature = "fast-cpu"))]
    let _ = on;
}

/// The conv ops timed since the last call (empty without the `fast-cpu` feature).
fn take_conv_ops() -> Vec<ConvOp> {
    #[cfg(feature = "fast-cpu")]
    {
        ae_cpu::conv::profile::take()
            .into_iter()
            .map(|t| ConvOp {
                op: t.op,
                layer: t.layer,
                calls: t.calls,
                seconds: t.seconds,
                macs: t.macs,
            })
            .collect()
    }
    #[cfg(not(feature = "fast-cpu"))]
    Vec::new()
}

/// Wall-time split of the measured epochs. On CPU backends the clocks are exact; GPU backends
/// queue work asynchronously, so there the split shows only where the host waited.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Phases {
    /// Waiting for the data loader's next batch (zero when loading keeps up).
    pub data_wait: f64,
    /// Forward pass, loss and backward pass (`TrainStep::step`).
    pub forward_backward: f64,
    /// Optimizer update (Adam).
    pub optimizer: f64,
}

impl BenchResult {
    /// Median, min and max seconds per epoch.
    pub fn stats(&self) -> (f64, f64, f64) {
        median_min_max(&self.seconds_per_epoch)
    }
}

/// Median, min and max of `times` (NaN for each when empty).
pub fn median_min_max(times: &[f64]) -> (f64, f64, f64) {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    let at = |i: Option<usize>| i.and_then(|i| t.get(i)).copied().unwrap_or(f64::NAN);
    (
        at(Some(t.len() / 2)),
        at(Some(0)),
        at(t.len().checked_sub(1)),
    )
}

/// The experiment config of a case (shipped configs, with benchmark-sized data).
pub fn case_config(
    case: &str,
    assets: &Path,
    mnist: Option<PathBuf>,
) -> anyhow::Result<ExperimentConfig> {
    let load = |f: &str| ExperimentConfig::load(&assets.join("configs").join(f));
    let mnist_data = |limit| DataConfig::Mnist {
        data_dir: mnist.clone(),
        train_limit: limit,
        valid_limit: Some(100),
        split_seed: 0,
        binarize: Default::default(),
        exclude_classes: Vec::new(),
    };
    Ok(match case {
        "mlp_vae" => ExperimentConfig {
            data: mnist_data(None),
            ..load("vae_mnist.toml")?
        },
        "conv_vae_dsprites" => {
            let mut c = load("beta_vae_dsprites.toml")?;
            c.data = DataConfig::Dsprites {
                train_limit: Some(2_000),
                valid_size: 100,
                split_seed: 0,
            };
            c
        }
        "vq_vae" => ExperimentConfig {
            data: mnist_data(Some(10_000)),
            ..load("vq_vae_mnist.toml")?
        },
        "conv_vae_folder" | "conv_vae_folder_memory" => {
            let mut c = load("beta_vae_dsprites.toml")?;
            let mut folder = FolderConfig::new(synthetic_jpeg_folder(2_000)?);
            folder.size = Some([64, 64]);
            folder.channels = 3;
            folder.stream = case == "conv_vae_folder";
            folder.valid_limit = Some(100);
            c.data = DataConfig::ImageFolder(folder);
            c.num_workers = 2;
            c
        }
        other => anyhow::bail!(
            "unknown case {other:?}: use {}, {}",
            CASES.join(", "),
            EXTRA_CASES.join(", ")
        ),
    })
}

/// A folder of `n` procedurally drawn 178 × 218 RGB JPEGs (CelebA's aligned size: a
/// gradient and a coloured ellipse), made once in the system's temporary folder and reused.
pub fn synthetic_jpeg_folder(n: usize) -> anyhow::Result<PathBuf> {
    use rayon::prelude::*;
    let dir = std::env::temp_dir().join(format!("ae-bench-jpegs-{n}"));
    let done = dir.join(".complete");
    if done.is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    (0..n).into_par_iter().try_for_each(|i| {
        let (w, h) = (178u32, 218u32);
        let hue = |k: u32| ((i as u32).wrapping_mul(2_654_435_761).rotate_left(k) % 200) as f32;
        let (cx, cy) = (60.0 + hue(3) * 0.3, 80.0 + hue(7) * 0.3);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            let (dx, dy) = ((x as f32 - cx) / 45.0, (y as f32 - cy) / 60.0);
            if dx * dx + dy * dy < 1.0 {
                image::Rgb([hue(11) as u8 + 40, hue(13) as u8 + 30, hue(17) as u8 + 20])
            } else {
                image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, hue(19) as u8])
            }
        });
        img.save(dir.join(format!("{i:06}.jpg")))
    })?;
    std::fs::write(&done, b"")?;
    Ok(dir)
}

/// Peak resident set size of this process (VmHWM), MB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Trains `cfg` for `warmup + repeats` epochs on `device_name`, timing the last `repeats`
/// (and, with `conv_ops`, each fused conv op over them).
pub fn run_case(
    case: &str,
    cfg: &ExperimentConfig,
    device_name: &str,
    (warmup, repeats): (usize, usize),
    conv_ops: bool,
) -> anyhow::Result<BenchResult> {
    cfg.validate()?;
    profile_conv_ops(conv_ops);
    let device = device::parse(device_name)?;
    let (train, _) = cfg.data.load()?;
    device.seed(cfg.seed);
    let ad = device.clone().autodiff();
    let mut model = Trainable::new(
        cfg.model.init(cfg.data.shape(), &ad),
        KlSchedule::Constant,
        KlPenalty::Plain,
        0,
        train.len().div_ceil(cfg.batch_size),
    );
    let loader = DataLoaderBuilder::new(cfg.data.batcher())
        .batch_size(cfg.batch_size)
        .shuffle(cfg.seed)
        .num_workers(cfg.num_workers)
        .set_device(ad.clone())
        .build(train.clone());
    let mut optim = crate::optim::optimizer(&cfg.optimizer, device_name);
    let mut times = Vec::new();
    let mut phases = Phases::default();
    for epoch in 0..warmup + repeats {
        let start = Instant::now();
        let mut last = None;
        let mut epoch_phases = Phases::default();
        let mut batches = loader.iter();
        loop {
            let t0 = Instant::now();
            let Some(batch) = batches.next() else { break };
            let batch = batch.map_err(|e| anyhow::anyhow!("{e}"))?;
            let t1 = Instant::now();
            let out = TrainStep::step(&model, batch);
            let t2 = Instant::now();
            model = optim.step(cfg.optimizer.lr, model, out.grads);
            let t3 = Instant::now();
            epoch_phases.data_wait += (t1 - t0).as_secs_f64();
            epoch_phases.forward_backward += (t2 - t1).as_secs_f64();
            epoch_phases.optimizer += (t3 - t2).as_secs_f64();
            last = Some(out.item);
        }
        // Wait for the device before stopping the clock (GPU backends are asynchronous).
        if let Some(ae_metrics::AeItem::Device(o)) = last {
            let _ = o.loss.mean().into_scalar::<f32>();
        }
        if epoch + 1 == warmup {
            let _ = take_conv_ops(); // the warm-up's ops are not measured
        }
        if epoch >= warmup {
            times.push(start.elapsed().as_secs_f64());
            phases.data_wait += epoch_phases.data_wait;
            phases.forward_backward += epoch_phases.forward_backward;
            phases.optimizer += epoch_phases.optimizer;
        }
    }
    Ok(BenchResult {
        case: case.to_string(),
        device: device_name.to_string(),
        samples: train.len(),
        seconds_per_epoch: times,
        peak_rss_mb: peak_rss_mb(),
        phases,
        conv_ops: take_conv_ops(),
    })
}

/// The evaluation benchmark: time of `evaluate`'s IWAE bounds (k = 1, 10, 100, 1000, 5000) on
/// the first `images` MNIST test images with the `vae_mnist_binarized.toml` architecture. The
/// weights are freshly initialised: the work (decodes, likelihoods, log-mean-exp) does not
/// depend on their values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalBenchResult {
    /// Device.
    pub device: String,
    /// Test images evaluated.
    pub images: usize,
    /// The largest k.
    pub k: usize,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Peak resident memory, MB.
    pub peak_rss_mb: f64,
}

/// Runs the evaluation benchmark (see [`EvalBenchResult`]).
pub fn run_eval_case(
    assets: &Path,
    mnist: Option<PathBuf>,
    device_name: &str,
    images: usize,
) -> anyhow::Result<EvalBenchResult> {
    let mut cfg = ExperimentConfig::load(&assets.join("configs/vae_mnist_binarized.toml"))?;
    if let Some(d) = mnist {
        cfg.data.set_data_dir(d);
    }
    let device = device::parse(device_name)?;
    let (_, test) = cfg.data.load()?;
    let test = test.head(images);
    device.seed(cfg.seed);
    let model = cfg.model.init(cfg.data.shape(), &device);
    let opts = ae_eval::EvalOptions {
        decomposition: false,
        ..Default::default()
    };
    let start = Instant::now();
    ae_eval::evaluate(
        &model,
        &cfg.model,
        &test,
        &cfg.data.batcher(),
        cfg.data.shape(),
        &opts,
        &device,
        &mut |_, _, _| {},
    );
    Ok(EvalBenchResult {
        device: device_name.to_string(),
        images: test.len(),
        k: opts.ks.iter().copied().max().unwrap_or(1),
        seconds: start.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
    })
}
