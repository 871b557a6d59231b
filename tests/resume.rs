//! Interrupted runs and sweeps: killed with SIGKILL in a real child process, resumed, and
//! compared byte for byte with uninterrupted ones; damaged checkpoints; numerical faults.
//!
//! The child is this test binary itself, running the hidden test [`child_process`] with its
//! job in the `AE_TEST_CHILD` environment variable.
use crate::util::{options, small_mnist_vae, training_lock};
use ae::train::ExperimentConfig;
use ae::train::run::{RunOptions, last_checkpoint, resume, train, train_in};
use ae::train::sweep::{SweepConfig, run_point, run_sweep};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Entry point of the child processes (does nothing in a normal `--ignored` run).
#[test]
#[ignore = "entry point of the child processes of the kill tests"]
fn child_process() {
    let Ok(job) = std::env::var("AE_TEST_CHILD") else {
        return;
    };
    let args: Vec<&str> = job.split('\t').collect();
    match args[..] {
        ["train", config, dir] => {
            let cfg = ExperimentConfig::load(Path::new(config)).unwrap();
            train_in(cfg, Path::new(dir), &options(Path::new(dir))).unwrap();
        }
        ["train", config, dir, device] => {
            let cfg = ExperimentConfig::load(Path::new(config)).unwrap();
            let mut opts = options(Path::new(dir));
            opts.device = Some(device.into());
            train_in(cfg, Path::new(dir), &opts).unwrap();
        }
        ["sweep", config, dir] => {
            let cfg = SweepConfig::load(Path::new(config)).unwrap();
            sweep_in_process(&cfg, Path::new(dir));
        }
        ["point", index, dir] => {
            let dir = Path::new(dir);
            ae::train::grid::run_point(dir, index.parse().unwrap(), &options(dir)).unwrap();
        }
        _ => panic!("unknown child job {job:?}"),
    }
}

/// This test binary, set to run `job` in the hidden test [`child_process`] (stdout discarded).
///
/// `AE_TEST_CHILD_WRAPPER` (e.g. `qemu-x86_64 -cpu Haswell`) runs the child under that
/// command, so an AVX-512 machine can run the kernels' tests on the AVX2 paths (.ci/run).
pub fn child_command(job: &[&str]) -> Command {
    let exe = std::env::current_exe().unwrap();
    let wrapper = std::env::var("AE_TEST_CHILD_WRAPPER").unwrap_or_default();
    let mut words = wrapper.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    command
        .args([
            "--exact",
            "resume::child_process",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("AE_TEST_CHILD", job.join("\t"))
        .stdout(Stdio::null());
    command
}

pub fn spawn_child(job: &[&str]) -> Child {
    child_command(job).stderr(Stdio::null()).spawn().unwrap()
}

/// Waits until the run in `run_dir` has written the first record of its epoch-1 checkpoint
/// (`complete = false`: the kill then lands while the background thread saves the others) or
/// all three (`complete = true`), then kills `child` with SIGKILL. Fails if the child ended
/// first (the kill would then test nothing).
pub fn kill_at_first_checkpoint(child: &mut Child, run_dir: &Path, complete: bool) {
    let start = Instant::now();
    let parts =
        ["model", "optim", "scheduler"].map(|p| run_dir.join(format!("checkpoint/{p}-1.bpk")));
    let ready = || {
        let n = parts.iter().filter(|p| p.is_file()).count();
        if complete { n == 3 } else { n >= 1 }
    };
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child ended ({status}) before its first checkpoint");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "child too slow");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix: no handler, no flush, no cleanup.
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child finished before the kill");
}

fn sweep_in_process(cfg: &SweepConfig, dir: &Path) {
    let opts = RunOptions {
        out_dir: dir.to_path_buf(),
        ..options(dir)
    };
    run_sweep(cfg, dir, &|todo| {
        for &p in todo {
            run_point(cfg, dir, p, &opts)?;
        }
        Ok(())
    })
    .unwrap();
}

/// Six short epochs: long enough that the kill after epoch 1 lands mid-run.
pub fn kill_test_config() -> ExperimentConfig {
    let mut cfg = small_mnist_vae();
    cfg.epochs = 6;
    cfg
}

#[test]
fn a_run_killed_after_its_first_checkpoint_resumes_to_identical_files() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let cfg = kill_test_config();
    let whole = train(cfg.clone(), &options(out.path())).unwrap().dir;

    let config = out.path().join("kill.toml");
    std::fs::write(&config, cfg.to_toml()).unwrap();
    // Killed once the checkpoint is complete, and once in the middle of saving it.
    for complete in [true, false] {
        let dir = out.path().join(format!("killed-{complete}"));
        let mut child = spawn_child(&["train", config.to_str().unwrap(), dir.to_str().unwrap()]);
        kill_at_first_checkpoint(&mut child, &dir, complete);
        assert!(!dir.join("summary.json").exists());

        let run = resume(&dir, &options(out.path())).unwrap();
        assert!(!run.interrupted);
        for f in ["metrics.csv", "summary.json"] {
            assert_eq!(read(&dir.join(f)), read(&whole.join(f)), "{f} differs");
        }
        assert_eq!(
            std::fs::read(dir.join("samples.png")).unwrap(),
            std::fs::read(whole.join("samples.png")).unwrap()
        );
    }
}

#[test]
fn a_sweep_killed_in_its_second_run_resumes_to_an_identical_results_csv() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut base = small_mnist_vae();
    base.epochs = 4;
    base.device = Some("flex".into());
    let cfg = SweepConfig {
        name: "beta_sweep".into(),
        betas: vec![0.5, 4.0],
        seeds: 1,
        jobs: 1,
        base,
    };
    let whole = out.path().join("whole");
    sweep_in_process(&cfg, &whole);

    let config = out.path().join("sweep.toml");
    std::fs::write(&config, cfg.to_toml()).unwrap();
    let dir = out.path().join("killed");
    let mut child = spawn_child(&["sweep", config.to_str().unwrap(), dir.to_str().unwrap()]);
    kill_at_first_checkpoint(&mut child, &dir.join("beta_4_seed1"), true);
    assert!(dir.join("beta_0.5_seed1/summary.json").is_file());
    assert!(!dir.join("results.csv").exists());

    let saved = SweepConfig::load(&dir.join("sweep.toml")).unwrap();
    sweep_in_process(&saved, &dir);
    assert_eq!(
        read(&dir.join("results.csv")),
        read(&whole.join("results.csv"))
    );
}

/// Truncates `path` to half its length (a save cut short by a kill or a full disk).
fn truncate_half(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn a_damaged_last_checkpoint_falls_back_to_the_previous_one() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    cfg.epochs = 3;
    let whole = train(cfg.clone(), &options(out.path())).unwrap().dir;

    for damaged in ["model-2.bpk", "optim-2.bpk"] {
        // A run of 2 epochs, then told it should have run 3 and lost its summary.
        let mut short = cfg.clone();
        short.epochs = 2;
        let dir: PathBuf = train(short, &options(out.path())).unwrap().dir;
        let text = read(&dir.join("config.toml")).replace("epochs = 2", "epochs = 3");
        std::fs::write(dir.join("config.toml"), text).unwrap();
        std::fs::remove_file(dir.join("summary.json")).unwrap();
        truncate_half(&dir.join("checkpoint").join(damaged));
        assert_eq!(last_checkpoint(&dir), Some(1), "{damaged}");
        resume(&dir, &options(out.path())).unwrap();
        // Epochs 2 and 3 were trained again from epoch 1's checkpoint: same result.
        assert_eq!(
            read(&dir.join("metrics.csv")),
            read(&whole.join("metrics.csv")),
            "{damaged}"
        );
        assert_eq!(
            read(&dir.join("summary.json")),
            read(&whole.join("summary.json"))
        );
    }
}

#[test]
fn a_diverging_run_stops_in_the_faulty_step_and_keeps_its_last_good_checkpoint() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let mut cfg = small_mnist_vae();
    cfg.epochs = 1;
    let dir = train(cfg, &options(out.path())).unwrap().dir;
    let good = std::fs::read(dir.join("checkpoint/model-1.bpk")).unwrap();
    // Continue for two more epochs with an absurd learning rate.
    let text = read(&dir.join("config.toml"))
        .replace("epochs = 1", "epochs = 3")
        .replace("lr = 0.001", "lr = 10000000000.0");
    assert!(text.contains("lr = 10000000000.0"), "{text}");
    std::fs::write(dir.join("config.toml"), text).unwrap();
    std::fs::remove_file(dir.join("summary.json")).unwrap();
    let started = Instant::now();
    let err = format!("{:#}", resume(&dir, &options(out.path())).unwrap_err());
    assert!(err.contains("epoch 2, step"), "{err}");
    assert!(
        err.contains("optimizer.lr") && err.contains("grad_clip_norm"),
        "{err}"
    );
    assert!(err.contains("epoch 1"), "names the kept checkpoint: {err}");
    assert!(
        !dir.join("summary.json").exists(),
        "no summary claiming success"
    );
    assert!(
        !dir.join("checkpoint/model-2.bpk").exists(),
        "no checkpoint of a bad epoch"
    );
    assert_eq!(
        std::fs::read(dir.join("checkpoint/model-1.bpk")).unwrap(),
        good
    );
    assert_eq!(last_checkpoint(&dir), Some(1));
    // Stopped at once: no validation of epoch 2, nothing of epoch 3.
    let csv = read(&dir.join("metrics.csv"));
    assert!(!csv.contains("\n2,valid") && !csv.contains("\n3,"), "{csv}");
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[test]
fn two_runs_of_the_same_config_in_the_same_second_get_distinct_folders() {
    let _g = training_lock();
    let out = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        run_id: Some("fixed".into()),
        ..options(out.path())
    };
    let base = out.path().join("vae_mnist");
    std::fs::create_dir_all(base.join("fixed")).unwrap();
    // The first folder is taken: a run with a bad config fails in a folder of its own
    // (`fixed-2`, removed again since the run wrote nothing), never writing into the taken one.
    let mut bad = small_mnist_vae();
    bad.data.set_data_dir(out.path().join("no-such-dir"));
    let err = format!("{:#}", train(bad, &opts).unwrap_err());
    assert!(err.contains("no-such-dir"), "{err}");
    assert!(
        !base.join("fixed-2").exists(),
        "an empty run folder was left"
    );
    assert_eq!(std::fs::read_dir(base.join("fixed")).unwrap().count(), 0);
    // A run that succeeds claims the next free name.
    let mut good = small_mnist_vae();
    good.data.set_train_limit(Some(200));
    let run = train(good, &opts).unwrap();
    assert_eq!(run.dir, base.join("fixed-2"));
}

#[test]
fn an_unwritable_output_folder_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    // A regular file where the output folder should be: no permission trick, so it fails
    // for root too.
    let blocker = out.path().join("runs");
    std::fs::write(&blocker, b"not a folder").unwrap();
    let err = format!(
        "{:#}",
        train(small_mnist_vae(), &options(&blocker)).unwrap_err()
    );
    assert!(
        err.contains("cannot create output folder") && err.contains("runs"),
        "{err}"
    );
    assert_eq!(std::fs::read(&blocker).unwrap(), b"not a folder");
}
