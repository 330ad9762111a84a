//! Whole-file replacement: a file is written beside its destination and renamed over it, so a
//! reader sees the old contents or the new, never half of them; and private directories.
//!
//! # Security
//! The temporary file has a random name and is created exclusively (`O_EXCL`, which also
//! refuses to follow a symlink), so a file or symlink planted in the directory cannot receive
//! the contents; its mode is set on the open file before anything is written.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// Writes `bytes` to a new temporary file with `mode` beside `path`, then renames it over
/// `path` (replacing a symlink there, never following it).
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // Created 0600 whatever the umask; widened (if asked) before the contents go in.
    let mut tmp = tempfile::Builder::new()
        .prefix(".jars-")
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(mode))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself survives a crash only once the directory is synced.
    fs::File::open(dir)?.sync_all()
}

/// Creates `dir` (and missing parents) with mode 0700, so files in it are reachable by the
/// owner alone whatever the umask. An existing directory is left as it is.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates `path` empty with mode 0600 unless it exists; a file created later by another
/// program (SQLite) with default permissions would otherwise follow the umask.
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn planted_symlinks_do_not_receive_the_contents() {
        let dir = tempfile::tempdir().unwrap();
        let attacker = dir.path().join("attacker-owned");
        fs::write(&attacker, "").unwrap();
        fs::set_permissions(&attacker, fs::Permissions::from_mode(0o644)).unwrap();
        let key = dir.path().join("jwt-private.pem");
        // The temporary name the old code used (`<name>.tmp<pid>`), and the destination itself.
        symlink(
            &attacker,
            key.with_extension(format!("tmp{}", std::process::id())),
        )
        .unwrap();
        let other = dir.path().join("users.toml");
        symlink(&attacker, &other).unwrap();

        write_atomically(&key, b"PRIVATE", 0o600).unwrap();
        write_atomically(&other, b"USERS", 0o600).unwrap();

        assert_eq!(
            fs::read(&attacker).unwrap(),
            b"",
            "attacker's file untouched"
        );
        assert_eq!(fs::read(&key).unwrap(), b"PRIVATE");
        assert_eq!(mode(&key), 0o600);
        // A symlink at the destination is replaced by the file, not followed.
        assert!(!fs::symlink_metadata(&other).unwrap().is_symlink());
        assert_eq!(fs::read(&other).unwrap(), b"USERS");
        assert_eq!(mode(&other), 0o600);
    }

    #[test]
    fn public_files_get_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt-public.pem");
        write_atomically(&path, b"one", 0o644).unwrap();
        write_atomically(&path, b"two", 0o644).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(mode(&path), 0o644);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_dir_and_file_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b");
        create_private_dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        let db = data.join("jars.db");
        create_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        fs::write(&db, "kept").unwrap();
        create_private_file(&db).unwrap();
        assert_eq!(
            fs::read(&db).unwrap(),
            b"kept",
            "an existing file is left alone"
        );
    }
}
