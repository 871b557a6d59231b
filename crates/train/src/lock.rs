//! Lock files, so that two processes never work in the same place at once: one per run or
//! sweep folder (two `--resume` of one run, two sweeps on one folder), and one per point of
//! a grid sweep whose workers may run on several hosts of a cluster.
//!
//! A lock holds `<pid> <host>`; its holder rewrites it every [`HEARTBEAT`]. A lock is stale,
//! and taken over, when its process no longer exists on this host, or, for a lock of another
//! host (whose processes cannot be seen), when its heartbeat is older than [`STALE_AFTER`].
use anyhow::bail;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a holder refreshes its lock file.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A lock of another host whose file is older than this is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(300);

/// Holds a lock file (the owner's process id and host) until dropped.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    heartbeat: Option<JoinHandle<()>>,
}

fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    // Linux and most Unixes: a live (or not yet reaped) process has a /proc entry. Where
    // /proc does not exist, assume it is alive and let the user remove the file.
    let proc = Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// This machine's host name (as the lock files record it).
pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && !h.contains(char::is_whitespace))
        .unwrap_or_else(|| "localhost".into())
}

/// Why the lock at `path` (holding `owner`) is still held, or None when it is stale.
fn holder(path: &Path, owner: &str) -> Option<String> {
    let mut words = owner.split_whitespace();
    let pid: u32 = words.next()?.parse().ok()?;
    let here = host();
    let their_host = words.next().unwrap_or(&here).to_string();
    if their_host == here {
        return alive(pid).then(|| format!("process {pid}"));
    }
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or_default();
    (age < STALE_AFTER).then(|| format!("process {pid} on host {their_host}"))
}

impl FolderLock {
    /// Takes the lock of `dir` (`<dir>/.lock`; `what` names it in messages: "run",
    /// "sweep"). Fails, naming the other process, while another live process holds it;
    /// takes over a stale lock left by a killed process, saying so.
    pub fn acquire(dir: &Path, what: &str) -> anyhow::Result<Self> {
        Self::acquire_file(
            &dir.join(".lock"),
            &format!("the {what} folder {}", dir.display()),
        )
    }

    /// Takes the lock file `path`, which guards `what` (for messages).
    pub fn acquire_file(path: &Path, what: &str) -> anyhow::Result<Self> {
        let me = format!("{} {}\n", std::process::id(), host());
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
            {
                Ok(mut f) => {
                    f.write_all(me.as_bytes())?;
                    return Ok(Self::hold(path, me));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(path).unwrap_or_default();
                    if owner.trim().is_empty() {
                        // Being written right now: look again.
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    match holder(path, &owner) {
                        Some(who) => bail!(
                            "{what} is in use by {who} ({}); wait for it to finish, or remove \
                             that file if the process is not yours to wait for",
                            path.display()
                        ),
                        None => {
                            println!(
                                "removing the stale lock {} of {} (no longer running)",
                                path.display(),
                                owner.trim()
                            );
                            let _ = std::fs::remove_file(path);
                        }
                    }
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot create the lock file {}", path.display())));
                }
            }
        }
        bail!(
            "cannot take the lock of {what} ({}): remove that file if no other process uses it",
            path.display()
        )
    }

    /// The held lock, with a thread that rewrites it every [`HEARTBEAT`].
    fn hold(path: &Path, me: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (file, flag) = (path.to_path_buf(), stop.clone());
        let heartbeat = std::thread::Builder::new()
            .name("lock-heartbeat".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(HEARTBEAT);
                    if !flag.load(Ordering::Relaxed) {
                        let _ = std::fs::write(&file, &me);
                    }
                }
            })
            .ok();
        Self {
            path: path.to_path_buf(),
            stop,
            heartbeat,
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let held = FolderLock::acquire(dir.path(), "sweep").unwrap();
        let err = FolderLock::acquire(dir.path(), "sweep")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in use by process") && err.contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(held);
        assert!(!dir.path().join(".lock").exists());
        // A lock left by a process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        std::fs::write(dir.path().join(".lock"), pid.to_string()).unwrap();
        let _again = FolderLock::acquire(dir.path(), "sweep").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(".lock")).unwrap(),
            format!("{} {}\n", std::process::id(), host())
        );
    }

    #[test]
    fn a_lock_of_another_host_is_stale_only_without_a_recent_heartbeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.lock");
        // A live-looking lock of another host (fresh file): refused, naming the host.
        std::fs::write(&path, "4242 node-17\n").unwrap();
        let err = FolderLock::acquire_file(&path, "point 3")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("point 3 is in use by process 4242 on host node-17"),
            "{err}"
        );
        // Its heartbeat stopped long ago: taken over.
        let old = std::time::SystemTime::now() - STALE_AFTER - Duration::from_secs(1);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let held = FolderLock::acquire_file(&path, "point 3").unwrap();
        drop(held);
        assert!(!path.exists());
    }
}
