//! A lock file per run or sweep folder, so that two processes never train into the same
//! folder at once (two `--resume` of one run, two sweeps on one folder).
use anyhow::bail;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Holds `<dir>/.lock` (the owner's process id) until dropped.
#[derive(Debug)]
pub struct FolderLock {
    path: PathBuf,
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

impl FolderLock {
    /// Takes the lock of `dir` (`what` names it in messages: "run", "sweep"). Fails, naming
    /// the other process, while another live process holds it; takes over a stale lock left
    /// by a killed process, saying so.
    pub fn acquire(dir: &Path, what: &str) -> anyhow::Result<Self> {
        let path = dir.join(".lock");
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    write!(f, "{}", std::process::id())?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path).unwrap_or_default();
                    match owner.trim().parse::<u32>() {
                        Ok(pid) if alive(pid) => bail!(
                            "the {what} folder {} is in use by process {pid} ({}); wait for it \
                             to finish, or remove that file if the process is not yours to wait for",
                            dir.display(),
                            path.display()
                        ),
                        // A stale lock (a killed process), or one being written right now
                        // (empty): remove it and try again.
                        Ok(pid) => {
                            println!(
                                "removing the stale lock of process {pid} (no longer running)"
                            );
                            let _ = std::fs::remove_file(&path);
                        }
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(50)),
                    }
                }
                Err(e) => {
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot create the lock file {}", path.display())));
                }
            }
        }
        bail!(
            "cannot take the lock of the {what} folder {} ({}): remove that file if no other \
             process uses the folder",
            dir.display(),
            path.display()
        )
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
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
            std::process::id().to_string()
        );
    }
}
