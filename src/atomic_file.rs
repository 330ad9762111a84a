//! Whole-file replacement: a file is written beside its destination and renamed over it, so a
//! reader sees the old contents or the new, never half of them.

use std::fs;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file created with `mode`, then renames it over `path`, so a
/// reader never sees half a file and a private file is never world-readable, even briefly.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
