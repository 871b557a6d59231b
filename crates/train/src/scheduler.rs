//! A process pool: runs commands as child processes, at most `parallel` at a time, each with
//! its output in its own log file. `beta_sweep --jobs N` trains its points this way (see
//! [`crate::sweep::train_points`]).
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// One child process to run.
#[derive(Debug)]
pub struct Job {
    /// The command (program, arguments, environment); stdin, stdout and stderr are set by
    /// [`run_jobs`].
    pub command: Command,
    /// File that receives the child's stdout and stderr (created, or truncated).
    pub log: PathBuf,
}

/// A job that ended.
#[derive(Clone, Debug)]
pub struct Finished {
    /// Index of the job in the list given to [`run_jobs`].
    pub index: usize,
    /// How it exited.
    pub status: ExitStatus,
    /// Its wall time, seconds.
    pub seconds: f64,
    /// Jobs ended so far, this one included.
    pub done: usize,
}

/// How often the pool looks for children that have exited.
const POLL: Duration = Duration::from_millis(200);

/// Runs every job, starting them in order, with at most `parallel` (≥ 1) running at once.
/// `on_finish` hears about each job as it ends. Returns the jobs that did not exit
/// successfully, in the order they ended; an error only when a log file cannot be created or
/// a child cannot be started or waited for.
pub fn run_jobs(
    jobs: Vec<Job>,
    parallel: usize,
    mut on_finish: impl FnMut(&Finished),
) -> std::io::Result<Vec<Finished>> {
    let parallel = parallel.max(1);
    let mut queue = jobs.into_iter().enumerate();
    let mut running: Vec<(usize, Child, Instant)> = Vec::new();
    let (mut done, mut failed) = (0, Vec::new());
    loop {
        while running.len() < parallel {
            let Some((index, mut job)) = queue.next() else {
                break;
            };
            let log = std::fs::File::create(&job.log)?;
            let child = job
                .command
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            running.push((index, child, Instant::now()));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(POLL);
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].1.try_wait()? {
                let (index, _, started) = running.remove(i);
                done += 1;
                let finished = Finished {
                    index,
                    status,
                    seconds: started.elapsed().as_secs_f64(),
                    done,
                };
                on_finish(&finished);
                if !status.success() {
                    failed.push(finished);
                }
            } else {
                i += 1;
            }
        }
    }
    Ok(failed)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::path::Path;

    fn sh(script: &str, log: &Path) -> Job {
        let mut command = Command::new("sh");
        command.arg("-c").arg(script);
        Job {
            command,
            log: log.to_path_buf(),
        }
    }

    #[test]
    fn runs_every_job_with_at_most_parallel_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (running, counts) = (dir.path().join("running"), dir.path().join("counts"));
        std::fs::create_dir_all(&running).unwrap();
        std::fs::create_dir_all(&counts).unwrap();
        // Each job marks itself running, records how many are running, works, unmarks itself.
        // The pool reaps a child only after it exits, so the count bounds the concurrency.
        let jobs = (0..5)
            .map(|i| {
                let script = format!(
                    "touch {r}/{i}; ls {r} | wc -l > {c}/{i}; echo job {i}; sleep 1; rm {r}/{i}",
                    r = running.display(),
                    c = counts.display()
                );
                sh(&script, &dir.path().join(format!("{i}.log")))
            })
            .collect();
        let mut ended = Vec::new();
        let failed = run_jobs(jobs, 2, |f| ended.push((f.index, f.done))).unwrap();
        assert!(failed.is_empty());
        ended.sort();
        assert_eq!(
            ended.iter().map(|e| e.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let mut dones: Vec<usize> = ended.iter().map(|e| e.1).collect();
        dones.sort();
        assert_eq!(dones, [1, 2, 3, 4, 5]);
        let mut max = 0;
        for i in 0..5 {
            let n: usize = std::fs::read_to_string(counts.join(i.to_string()))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&n), "job {i} saw {n} jobs running");
            max = max.max(n);
            let log = std::fs::read_to_string(dir.path().join(format!("{i}.log"))).unwrap();
            assert_eq!(log, format!("job {i}\n"));
        }
        assert_eq!(max, 2, "the pool never ran two jobs at once");
    }

    #[test]
    fn failures_are_reported_and_do_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let log = |i: usize| dir.path().join(format!("{i}.log"));
        let jobs = vec![
            sh("true", &log(0)),
            sh("echo broken >&2; exit 3", &log(1)),
            sh("true", &log(2)),
            sh("false", &log(3)),
        ];
        let mut heard = 0;
        let failed = run_jobs(jobs, 3, |_| heard += 1).unwrap();
        assert_eq!(heard, 4);
        let mut bad: Vec<(usize, Option<i32>)> =
            failed.iter().map(|f| (f.index, f.status.code())).collect();
        bad.sort();
        assert_eq!(bad, [(1, Some(3)), (3, Some(1))]);
        assert_eq!(std::fs::read_to_string(log(1)).unwrap(), "broken\n");
    }

    #[test]
    fn a_command_that_cannot_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let job = Job {
            command: Command::new(dir.path().join("no-such-program")),
            log: dir.path().join("x.log"),
        };
        assert!(run_jobs(vec![job], 1, |_| {}).is_err());
    }
}
