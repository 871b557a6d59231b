use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename
/// ([`tempfile::NamedTempFile::persist`]), fsync of the directory. A reader sees the old file
/// or the new one, never half of one, and the rename survives a power cut. On failure
/// (unwritable or vanished folder, full disk) the temporary file is removed, the old file is
/// untouched, and the error names `path`.
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
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // tempfile creates 0600 files; results are ordinary files (0666 less the umask), as
    // `File::create` made them before.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    // Dropping the temporary file on any error below deletes it.
    let mut tmp = builder.tempfile_in(dir).map_err(named)?;
    fill(tmp.as_file_mut()).map_err(named)?;
    tmp.as_file().sync_all().map_err(named)?;
    tmp.persist(path).map_err(|e| named(e.error))?;
    sync_dir(dir).map_err(named)
}

/// Makes a rename in `dir` durable (Unix; elsewhere the rename is all there is).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect()
    }

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
        assert_eq!(
            names(dir.path()),
            vec!["results.csv"],
            "temporary file left behind"
        );
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

    #[test]
    fn a_write_replaces_the_file_with_the_permissions_of_a_created_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("summary.json");
        write_atomic(&p, b"{}").unwrap();
        write_atomic(&p, b"{\"a\": 1}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{\"a\": 1}");
        assert_eq!(names(dir.path()), vec!["summary.json"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let created = dir.path().join("created");
            std::fs::File::create(&created).unwrap();
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(&p), mode(&created));
        }
    }
}
