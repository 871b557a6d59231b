//! Grid sweeps over any config keys (`sweep`): the plan for a cluster (Slurm job array and a
//! local recipe), points run as separate processes concurrently and out of order, one killed
//! with SIGKILL and rerun, and `collect` giving the same `results.csv` as an in-process sweep.
use crate::resume::{kill_at_first_checkpoint, kill_test_config, spawn_child};
use crate::util::{options, training_lock};
use ae::train::grid::{GridConfig, collect, parse_axis, plan, run_point};
use std::path::Path;

fn grid() -> GridConfig {
    GridConfig {
        name: "grid".into(),
        jobs: 1,
        evaluate: vec!["elbo".into()],
        grid: ["model.beta=1,4", "seed=1,2"]
            .iter()
            .map(|a| parse_axis(a).unwrap())
            .collect(),
        base: kill_test_config(),
    }
}

#[test]
fn a_plan_writes_the_points_a_slurm_job_array_and_a_local_recipe() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep folder");
    let exe = Path::new("/opt/ae/bin/sweep");
    plan(&grid(), &dir, exe).unwrap();
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(
        read("points.csv"),
        "index,folder,model.beta,seed\n0,beta_1-seed_1,1,1\n1,beta_1-seed_2,1,2\n\
         2,beta_4-seed_1,4,1\n3,beta_4-seed_2,4,2\n"
    );
    let folder = dir.canonicalize().unwrap();
    let quoted = format!("'{}'", folder.display());
    let slurm = read("slurm.sh");
    assert!(slurm.contains("#SBATCH --array=0-3\n"), "{slurm}");
    assert!(
        slurm.contains(&format!(
            "exec /opt/ae/bin/sweep --point \"$SLURM_ARRAY_TASK_ID\" {quoted}\n"
        )),
        "{slurm}"
    );
    assert!(dir.join("logs").is_dir(), "Slurm needs the --output folder");
    let local = read("run_local.sh");
    assert!(local.contains("seq 0 3 | xargs -P"), "{local}");
    assert!(
        local.contains(&format!("/opt/ae/bin/sweep --collect {quoted}\n")),
        "{local}"
    );
    for script in ["slurm.sh", "run_local.sh"] {
        let status = std::process::Command::new("bash")
            .arg("-n")
            .arg(dir.join(script))
            .status()
            .unwrap();
        assert!(status.success(), "{script} is not valid bash");
    }
    // Planning the same grid again is a no-op; another grid in the folder is refused.
    plan(&grid(), &dir, exe).unwrap();
    let mut other = grid();
    other.grid[0] = parse_axis("model.beta=2").unwrap();
    let e = plan(&other, &dir, exe).unwrap_err().to_string();
    assert!(e.contains("already holds another sweep"), "{e}");
}

#[test]
fn points_run_as_killed_and_rerun_processes_collect_to_the_in_process_results() {
    let _g = training_lock();
    let tmp = tempfile::tempdir().unwrap();
    let exe = Path::new("sweep");

    // The reference: every point in this process, in order.
    let reference = tmp.path().join("in-process");
    plan(&grid(), &reference, exe).unwrap();
    for i in 0..4 {
        assert!(run_point(&reference, i, &options(&reference)).unwrap());
    }
    collect(&reference).unwrap();

    // Workers: points 3 and 1 at once, point 0 killed after its first checkpoint.
    let dir = tmp.path().join("workers");
    plan(&grid(), &dir, exe).unwrap();
    let d = dir.to_str().unwrap();
    let mut first = [
        spawn_child(&["point", "3", d]),
        spawn_child(&["point", "1", d]),
    ];
    let mut killed = spawn_child(&["point", "0", d]);
    kill_at_first_checkpoint(&mut killed, &dir.join("beta_1-seed_1"), true);
    for c in &mut first {
        assert!(c.wait().unwrap().success());
    }
    // The killed worker left its lock: a rerun detects it as stale and resumes the point.
    assert!(dir.join("locks/beta_1-seed_1.lock").is_file());
    let e = collect(&dir).unwrap_err().to_string();
    assert!(
        e.contains("2 of 4 points are not finished") && e.contains("0 (beta_1-seed_1)"),
        "{e}"
    );
    let mut rest = [
        spawn_child(&["point", "2", d]),
        spawn_child(&["point", "0", d]),
    ];
    for c in &mut rest {
        assert!(c.wait().unwrap().success());
    }
    let timing = std::fs::read_to_string(dir.join("beta_1-seed_1/timing.json")).unwrap();
    assert!(timing.contains("\"resumed_from_epoch\": 1"), "{timing}");
    // A finished point is skipped.
    assert!(!run_point(&dir, 3, &options(&dir)).unwrap());
    collect(&dir).unwrap();
    let csv = |d: &Path| std::fs::read(d.join("results.csv")).unwrap();
    assert_eq!(csv(&dir), csv(&reference));
    let text = String::from_utf8(csv(&dir)).unwrap();
    assert!(
        text.starts_with("model.beta,seed,rate,distortion,elbo,"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5);
    for figure in ["rd_by_model_beta.png", "rd_by_seed.png"] {
        let png = std::fs::read(dir.join(figure)).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{figure}");
    }
}
