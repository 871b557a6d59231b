use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
/// A reader sees the old file or the new one, never half of one. On failure (unwritable or
/// vanished folder, full disk) the temporary file is removed, the old file is untouched, and
/// the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// [`write_atomic`] with the content written by `fill` (tests inject failing writers here).
pub(crate) fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let named = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display()))
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(named)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        fill(&mut f)?;
        f.sync_all()
    });
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_failing_half_way_leaves_the_old_file_and_no_debris() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.csv");
        write_atomic(&p, b"old,complete\n").unwrap();
        // A full disk: half the bytes go through, then ENOSPC.
        let err = write_atomic_with(&p, |f| {
            f.write_all(b"new,hal")?;
            Err(std::io::Error::from_raw_os_error(28))
        })
        .unwrap_err();
        assert!(err.to_string().contains("results.csv"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"old,complete\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["results.csv"], "temporary file left behind");
    }

    #[test]
    fn an_unwritable_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        // A regular file where the folder should be: creating the folder fails for root too.
        let blocker = dir.path().join("runs");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let err = write_atomic(&blocker.join("summary.json"), b"{}").unwrap_err();
        assert!(err.to_string().contains("summary.json"), "{err}");
        assert_eq!(std::fs::read(&blocker).unwrap(), b"not a folder");
    }
}
