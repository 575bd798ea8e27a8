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

/// Create `path` and its missing parents with `mode` (exactly, whatever the umask). A
/// directory that already exists is left as it is: redisctl never changes the mode of a
/// directory it did not create (`--state-dir /tmp` must not take /tmp's sticky bit away).
/// Returns whether `path` itself was created.
pub fn ensure_dir(path: &Path, mode: u32) -> io::Result<bool> {
    if path.is_dir() {
        return Ok(false);
    }
    // The missing ancestors, outermost first: each is created and given `mode`.
    let mut missing = Vec::new();
    let mut p = path;
    while !p.as_os_str().is_empty() && !p.is_dir() {
        missing.push(p);
        match p.parent() {
            Some(parent) => p = parent,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        match fs::DirBuilder::new().mode(mode).create(dir) {
            Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode))?,
            // Created meanwhile by someone else (another redisctl): not ours to change.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// An exclusive lock on a deployment's state directory, held while redisctl changes it.
pub struct StateLock {
    _file: nix::fcntl::Flock<File>,
}

/// In a state directory redisctl created: `destroy` may remove the directory itself once it
/// is empty. A directory the operator made (`--state-dir /srv/x`, even /tmp) stays.
const CREATED_MARK: &str = ".created-by-redisctl";

/// Take the lock of `state_dir` (creating the directory), or say who holds it.
pub fn lock_state(state_dir: &Path) -> io::Result<StateLock> {
    lock_named(state_dir, ".lock", "another redisctl")
}

/// The running agent's lock: one agent per deployment and host.
pub const AGENT_LOCK: &str = ".agent.lock";

/// Take the agent's lock of `state_dir`, or say which agent holds it.
pub fn lock_agent(state_dir: &Path) -> io::Result<StateLock> {
    lock_named(state_dir, AGENT_LOCK, "another redisctl agent")
}

/// The pid of the agent holding `state_dir`'s agent lock, if one does. Only reads.
pub fn agent_pid(state_dir: &Path) -> Option<u32> {
    let path = state_dir.join(AGENT_LOCK);
    let mut file = File::open(&path).ok()?;
    let mut holder = String::new();
    let _ = io::Read::read_to_string(&mut file, &mut holder);
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err(_) => holder.trim().parse().ok(),
    }
}

fn lock_named(state_dir: &Path, name: &str, who: &str) -> io::Result<StateLock> {
    if ensure_dir(state_dir, 0o750)? {
        write_atomic(&state_dir.join(CREATED_MARK), b"", 0o640)?;
    }
    let path = state_dir.join(name);
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
                "{who} (pid {}) is changing this deployment ({} is locked); wait for it or stop it",
                holder.trim(),
                path.display()
            ),
        )),
        Err((_, errno)) => Err(io::Error::from(errno)),
    }
}

/// Whether redisctl created this state directory (it may then change its group and mode).
pub fn created_by_redisctl(state_dir: &Path) -> bool {
    state_dir.join(CREATED_MARK).exists()
}

/// Remove `state_dir` when redisctl created it and nothing but its own bookkeeping is left;
/// otherwise leave it (and say nothing: it is the operator's).
pub fn remove_state_dir_if_ours(state_dir: &Path) {
    let mark = state_dir.join(CREATED_MARK);
    if !mark.exists() {
        return;
    }
    let only_ours = fs::read_dir(state_dir)
        .is_ok_and(|entries| entries.flatten().all(|e| e.file_name() == CREATED_MARK));
    if only_ours {
        let _ = fs::remove_file(&mark);
        let _ = fs::remove_dir(state_dir);
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

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn ensure_dir_leaves_an_existing_directorys_mode_alone() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(!ensure_dir(&shared, 0o750).unwrap());
        let lock = lock_state(&shared).unwrap();
        assert_eq!(mode(&shared), 0o1777, "sticky, world-writable dir changed");
        drop(lock);
        fs::remove_file(shared.join(".lock")).unwrap();
        remove_state_dir_if_ours(&shared);
        assert!(shared.is_dir(), "the operator's directory was removed");
        // One redisctl made is removed once only its mark is left.
        let made = dir.path().join("made");
        drop(lock_state(&made).unwrap());
        fs::remove_file(made.join(".lock")).unwrap();
        remove_state_dir_if_ours(&made);
        assert!(!made.exists());
    }

    #[test]
    fn ensure_dir_gives_the_directories_it_creates_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let deep = dir.path().join("a/b/c");
        assert!(ensure_dir(&deep, 0o750).unwrap());
        for p in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&dir.path().join(p)), 0o750, "{p}");
        }
        assert_eq!(mode(dir.path()), 0o755);
    }
}
