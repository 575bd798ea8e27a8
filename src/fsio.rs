//! State directories and file writes. The only module that writes files: atomic replace
//! (temp file, fsync, rename, fsync dir) and explicit modes, so secrets are never briefly
//! world-readable and a crash never leaves a half-written redis.conf.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Write `contents` to `path` atomically with `mode`, unless it already has exactly these
/// contents and mode. Returns whether anything changed.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<bool> {
    if let Ok(existing) = fs::read(path)
        && existing == contents
        && let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o777 == mode
    {
        return Ok(false);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed the mode; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    File::open(dir)?.sync_all()?;
    Ok(true)
}

/// Create `path` (and parents) if missing and set its mode.
pub fn ensure_dir(path: &Path, mode: u32) -> io::Result<()> {
    if !path.is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// An exclusive lock on a deployment's state directory, held while redisctl changes it.
pub struct StateLock {
    _file: nix::fcntl::Flock<File>,
}

/// Take the lock of `state_dir` (creating the directory), or say who holds it.
pub fn lock_state(state_dir: &Path) -> io::Result<StateLock> {
    ensure_dir(state_dir, 0o750)?;
    let path = state_dir.join(".lock");
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o640)
        .open(&path)?;
    let mut holder = String::new();
    let _ = io::Read::read_to_string(&mut file, &mut holder);
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(mut locked) => {
            locked.set_len(0)?;
            io::Seek::seek(&mut *locked, io::SeekFrom::Start(0))?;
            write!(locked, "{}", std::process::id())?;
            Ok(StateLock { _file: locked })
        }
        Err((_, errno)) if errno == nix::errno::Errno::EWOULDBLOCK => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "another redisctl (pid {}) is changing this deployment ({} is locked); wait for it or stop it",
                holder.trim(),
                path.display()
            ),
        )),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_reports_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secrets.conf");
        assert!(write_atomic(&p, b"requirepass x\n", 0o600).unwrap());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_atomic(&p, b"requirepass x\n", 0o600).unwrap());
        assert!(write_atomic(&p, b"requirepass y\n", 0o600).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"requirepass y\n");
        // No temp file left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
