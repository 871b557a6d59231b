use ae::metrics::{EpochRow, SplitKind};
use ae::train::ExperimentConfig;
use ae::train::results::parse_metrics_csv;
use ae::train::run::{Display, RunOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The committed MNIST fixture: 2,000 training and 500 test images of the real MNIST files
/// (`tests/fixtures/README.md` says how they were cut), so the tests pass on a fresh clone.
pub fn mnist_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist-small")
}

/// The full MNIST files, for the reference tests run with `-- --ignored`: `$AE_MNIST_DIR`.
/// Panics (fails the test) when it is not set, so that a CI run that forgot it cannot pass.
pub fn full_mnist_dir() -> PathBuf {
    let d = std::env::var_os("AE_MNIST_DIR").map(PathBuf::from).expect(
        "the full-MNIST reference tests need AE_MNIST_DIR=<folder with the four MNIST files>",
    );
    assert!(
        ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
            .iter()
            .any(|f| d.join(f).is_file()),
        "AE_MNIST_DIR={} holds no train-images-idx3-ubyte(.gz)",
        d.display()
    );
    d
}

/// The rows of a run folder's `metrics.csv` by (epoch, split), read with the parser `--resume`
/// uses.
pub fn metrics_rows(dir: &Path) -> BTreeMap<(usize, SplitKind), EpochRow> {
    parse_metrics_csv(
        &std::fs::read_to_string(dir.join("metrics.csv")).unwrap(),
        usize::MAX,
    )
}

/// An experiment config shipped in `assets/configs/`.
pub fn shipped(name: &str) -> ExperimentConfig {
    ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("assets/configs/{name}.toml")),
    )
    .unwrap()
}

/// Burn's CPU RNG is seeded per process, so runs that must be reproducible cannot overlap
/// with other runs in the same test binary.
pub fn training_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reference MNIST VAE on a small seeded subset, one epoch.
pub fn small_mnist_vae() -> ExperimentConfig {
    let mut cfg = ExperimentConfig::load(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/vae_mnist.toml"),
    )
    .unwrap();
    cfg.epochs = 1;
    cfg.data = ae::data::DataConfig::Mnist {
        data_dir: Some(mnist_dir()),
        train_limit: Some(2_000),
        valid_limit: Some(500),
        split_seed: 0,
        binarize: Default::default(),
        exclude_classes: Vec::new(),
    };
    cfg
}

/// Plain output into `out`.
pub fn options(out: &Path) -> RunOptions {
    RunOptions {
        out_dir: out.to_path_buf(),
        device: Some("flex".into()),
        run_id: None,
        display: Display::Plain,
    }
}

/// The model of a finished run folder: `cfg`'s architecture with the weights of `model.bpk`.
pub fn saved_model(
    dir: &Path,
    cfg: &ExperimentConfig,
    device: &burn::prelude::Device,
) -> ae::models::Model {
    use burn::module::Module;
    cfg.model
        .init(cfg.data.shape(), device)
        .load_record(burn::store::ModuleRecord::load(dir.join("model.bpk")).unwrap())
}

/// Checks that the run folder has the files every finished run with a prior writes.
pub fn assert_run_files(dir: &Path) {
    for f in [
        "config.toml",
        "metrics.csv",
        "summary.json",
        "model.bpk",
        "reconstructions.png",
        "samples.png",
    ] {
        assert!(dir.join(f).is_file(), "missing {f}");
    }
}

/// Checks the run's TensorBoard logs, read back record by record (checksums included): every
/// `metrics.csv` value is a scalar of its split's event files at its epoch (`kl_dim_j` as
/// `kl_dim/j`), as `f32`; the hparams session has started and ended; the grids are images.
/// Returns the number of scalars compared.
pub fn tensorboard_matches_metrics_csv(dir: &Path) -> usize {
    use ae::train::tfevents::{Kind, read_folder, scalars};
    let board = dir.join("tensorboard");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    let csv = read(&dir.join("metrics.csv"));
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let splits = ["train", "valid"].map(|s| (s, scalars(&read_folder(&board.join(s)).unwrap())));
    let mut compared = 0;
    for line in lines {
        let cells: Vec<&str> = line.split(',').collect();
        let epoch: i64 = cells[0].parse().unwrap();
        let (_, logged) = splits.iter().find(|(s, _)| *s == cells[1]).unwrap();
        for (column, text) in header.iter().zip(&cells).skip(2) {
            let Ok(want) = text.parse::<f64>() else {
                continue;
            };
            let tag = column.replace("kl_dim_", "kl_dim/");
            let points = logged
                .get(&tag)
                .unwrap_or_else(|| panic!("{}: no scalar {tag}", cells[1]));
            let at: Vec<f32> = points
                .iter()
                .filter(|(step, _)| *step == epoch)
                .map(|p| p.1)
                .collect();
            assert_eq!(at, vec![want as f32], "{}/{tag} at epoch {epoch}", cells[1]);
            compared += 1;
        }
    }
    let session = read_folder(&board).unwrap();
    let tags: Vec<&str> = session
        .iter()
        .flat_map(|e| e.values())
        .map(|v| v.tag.as_str())
        .collect();
    assert!(tags.contains(&"_hparams_/session_start_info"), "{tags:?}");
    assert_eq!(tags.last(), Some(&"_hparams_/session_end_info"), "{tags:?}");
    // The last reconstructions image is the final PNG (a resumed run logs one per session).
    let mut png = session
        .iter()
        .flat_map(|e| e.values())
        .filter_map(|v| match &v.kind {
            Some(Kind::Image(i)) if v.tag == "images/reconstructions" => Some(i.clone()),
            _ => None,
        });
    let png = png.next_back().expect("a reconstructions image");
    let file = std::fs::read(dir.join("reconstructions.png")).unwrap();
    assert!(png.encoded_image_string == file);
    let width = u32::from_be_bytes(file[16..20].try_into().unwrap());
    assert_eq!(png.width as u32, width);
    // PNG colour type 2 is RGB, 0 grey.
    assert_eq!(png.colorspace, if file[25] == 2 { 3 } else { 1 });
    compared
}
