//! Files written whole: atomically, durably, and — for anything secret — readable by the
//! owner alone from the first byte.
//!
//! What holds for every file written here ([`write_atomic`], [`write_secret`]):
//!
//! * **Atomic.** The bytes go to a fresh temporary file beside the target (a name of its own,
//!   created with `O_EXCL`, so a stale or planted temporary file is never reused), which is
//!   then renamed over the target: a reader sees the old file or the new one, never half.
//! * **Durable.** The temporary file is fsynced before the rename, and the folder after it,
//!   so an acknowledged write survives a crash or power loss.
//! * **Private when secret.** [`write_secret`] creates the temporary file with mode `0600`
//!   (`open(2)`'s mode, before any byte is written), so no other user can open it at any
//!   moment, not even between creation and a later `chmod`. Private keys (the CA's, the
//!   nodes' and clients' TLS keys), at-rest keys and the sealed secrets file all go through
//!   it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Who may read a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Anyone the folder and the umask allow (certificates, configs, public key state).
    Public,
    /// The owner alone: mode `0600` from creation.
    Secret,
}

/// Creates a fresh temporary file beside `path` (never an existing one), with mode `0600`
/// for [`Secrecy::Secret`]. Returns the open, empty file and its name.
///
/// # Errors
/// The I/O error of creating it.
pub fn create_temp(path: &Path, secrecy: Secrecy) -> std::io::Result<(File, PathBuf)> {
    let dir = parent(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secrecy == Secrecy::Secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secrecy;
    loop {
        let tmp = dir.join(format!(
            ".{name}.tmp-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        match options.open(&tmp) {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Writes `bytes` to `path` as [`Secrecy`] says: a fresh temporary file, fsynced, renamed
/// over `path`, the folder fsynced. On failure the temporary file is removed and `path` is
/// left as it was.
///
/// # Errors
/// The I/O error of any step.
pub fn write_file(path: &Path, bytes: &[u8], secrecy: Secrecy) -> std::io::Result<()> {
    let (mut file, tmp) = create_temp(path, secrecy)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            drop(file);
            std::fs::rename(&tmp, path)
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(parent(path))
}

/// fsyncs a folder, so a rename in it is durable (a no-op where folders cannot be opened).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// The `.gitignore` a folder of private keys gets, so that git never takes its files
/// (wherever the folder is, a repository included): `*`, which ignores the file itself too.
pub const IGNORE_ALL: &str = "# Private keys and a node's data: never for version control.\n*\n";

/// Writes `dir/.gitignore` ([`IGNORE_ALL`]) unless the folder has one.
///
/// # Errors
/// The I/O error of the write.
pub fn ignore_folder(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".gitignore");
    if path.exists() {
        return Ok(());
    }
    write_atomic(&path, IGNORE_ALL.as_bytes())
}

/// [`write_file`] of a public file.
///
/// # Errors
/// The I/O error of any step.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_file(path, bytes, Secrecy::Public)
}

/// [`write_file`] of a secret: mode `0600` from the first byte.
///
/// # Errors
/// The I/O error of any step.
pub fn write_secret(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_file(path, bytes, Secrecy::Secret)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> std::io::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
    }

    #[test]
    fn a_secret_temp_file_is_0600_before_its_first_byte() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("x.key");
        let (file, tmp) = create_temp(&target, Secrecy::Secret)?;
        let meta = file.metadata()?;
        assert_eq!(meta.len(), 0, "nothing written yet");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(file);
        std::fs::remove_file(tmp)
    }

    #[test]
    fn a_secret_replaces_a_world_readable_file_and_ignores_a_planted_temp() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("node.key");
        std::fs::write(&target, b"old")?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))?;
        // A temporary name an attacker could guess from the old scheme, world-readable.
        let planted = dir.path().join("node.tmp");
        std::fs::write(&planted, b"")?;
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o666))?;
        write_secret(&target, b"secret")?;
        assert_eq!(std::fs::read(&target)?, b"secret");
        assert_eq!(mode(&target)?, 0o600);
        assert_eq!(
            std::fs::read(&planted)?,
            b"",
            "the planted file was not used"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind");
        Ok(())
    }
}
