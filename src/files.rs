//! How Warden writes and reads files it must keep private or must not be
//! tricked into following: the process umask, 0700 directories and 0600
//! files, the one atomic-replace helper every module uses, and reads and
//! checks that refuse to go through a symbolic link.
//!
//! The state directory holds the audit log, evidence and the old content of
//! patched files, which can include secrets; another user on the host must
//! not read it, and a symlink planted in a directory Warden writes to must
//! not redirect a write (Warden usually runs as root). The helpers block on
//! file I/O: call them from `spawn_blocking` in async code.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Mode of every file Warden creates.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Mode of every directory Warden creates.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// The umask Warden runs under: nothing it creates is readable by group or others.
pub const UMASK: u32 = 0o077;

/// Sets the process umask to [`UMASK`], so that files created by code that
/// does not pass a mode (libraries, child processes' defaults) stay private
/// too.
pub fn set_private_umask() {
    nix::sys::stat::umask(Mode::from_bits_truncate(UMASK));
}

/// Creates `path` and any missing parents with mode 0700. Directories that
/// already exist keep their mode.
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(path)
}

/// Opens `path` for appending, creating it 0600 if missing. Refuses a
/// symlink at `path` (`O_NOFOLLOW`).
pub fn open_private_append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(PRIVATE_FILE_MODE)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// Creates `path`, which must not exist yet (not even as a dangling
/// symlink), with mode 0600.
pub fn create_private_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(PRIVATE_FILE_MODE)
        .open(path)
}

/// Replaces `path` with `bytes` atomically.
///
/// The temporary file is created in `path`'s directory under a random name
/// with `O_CREAT|O_EXCL` (the `tempfile` crate), so a symlink planted at a
/// guessable name cannot redirect the write. It is written, synced, given the
/// mode (and, when allowed, the owner) of the file it replaces (0600 for a new
/// file), renamed over `path`, and the directory is synced so the rename
/// survives a crash. A symlink at `path` itself is replaced, not followed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .tempfile_in(dir)?;
    let existing = std::fs::symlink_metadata(path)
        .ok()
        .filter(std::fs::Metadata::is_file);
    if let Some(meta) = &existing {
        let file = tmp.as_file();
        let mine = file.metadata()?;
        if (mine.uid(), mine.gid()) != (meta.uid(), meta.gid()) {
            // Only root may give a file away; otherwise the replacement is
            // owned by Warden's user, which is all an unprivileged run can do.
            let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
        }
        file.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|error| error.error)?;
    sync_dir(dir);
    Ok(())
}

/// [`write_atomic`] for a file Warden was asked to write on someone else's
/// behalf (a tier's patch and its revert), without following a symbolic
/// link anywhere in `path`, even one swapped in after a check.
///
/// Each directory is opened relative to the previous one with `O_NOFOLLOW`
/// (as [`open_nofollow`] does), and the temporary file, the rename and the
/// directory sync all go through the last directory's descriptor, so the
/// write lands in the directory that was checked or nowhere. `path` must be
/// absolute and contain no `..`; its directory must exist. The replaced
/// file's mode (and owner, when allowed) is kept; a new file is 0600.
pub fn write_atomic_nofollow(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use nix::fcntl::{AtFlags, RenameFlags};
    use nix::sys::stat::{FileStat, fstatat};

    let parts = plain_components(path)?;
    let Some((name, parents)) = parts.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the root directory is not a file",
        ));
    };
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open("/", dir_flags, Mode::empty()).map_err(io::Error::from)?;
    let mut walked = PathBuf::from("/");
    for part in parents {
        walked.push(part);
        dir = nix::fcntl::openat(&dir, *part, dir_flags, Mode::empty())
            .map_err(|errno| explain(&walked, errno))?;
    }
    let existing: Option<FileStat> = match fstatat(&dir, *name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(stat) => Some(stat),
        Err(nix::errno::Errno::ENOENT) => None,
        Err(errno) => return Err(io::Error::from(errno)),
    };
    // A symlink at the name itself is replaced by the rename, never followed;
    // its mode and owner are not copied.
    let existing = existing.filter(|stat| {
        stat.st_mode & nix::sys::stat::SFlag::S_IFMT.bits() == nix::sys::stat::SFlag::S_IFREG.bits()
    });
    let tmp_name = format!(
        ".{}.{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let fd = nix::fcntl::openat(
        &dir,
        tmp_name.as_str(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(PRIVATE_FILE_MODE),
    )
    .map_err(io::Error::from)?;
    let mut file = File::from(fd);
    let written = (|| {
        if let Some(stat) = &existing {
            let mine = file.metadata()?;
            if (mine.uid(), mine.gid()) != (stat.st_uid, stat.st_gid) {
                // Only root may give a file away; see `write_atomic`.
                let _ = std::os::unix::fs::fchown(&file, Some(stat.st_uid), Some(stat.st_gid));
            }
            file.set_permissions(std::fs::Permissions::from_mode(stat.st_mode & 0o7777))?;
        }
        file.write_all(bytes)?;
        file.sync_all()?;
        nix::fcntl::renameat2(&dir, tmp_name.as_str(), &dir, *name, RenameFlags::empty())
            .map_err(io::Error::from)
    })();
    if let Err(error) = written {
        let _ = nix::unistd::unlinkat(
            &dir,
            tmp_name.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        return Err(error);
    }
    let _ = File::from(dir).sync_all();
    Ok(())
}

/// Makes each temporary name of [`write_atomic_nofollow`] unique in this process.
static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Syncs a directory so a rename or a new entry in it survives a crash.
/// Best effort: not every filesystem can fsync a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// The error for a path that goes through a symbolic link.
fn symlink_error(link: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{} is a symbolic link", link.display()),
    )
}

/// Opens `path` read-only without following a symbolic link anywhere in it:
/// each directory is opened relative to the previous one with `O_NOFOLLOW`,
/// so a link swapped in between a check and the open cannot redirect the
/// read. `path` must be absolute and contain no `..`.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    let parts = plain_components(path)?;
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mut dir = nix::fcntl::open("/", dir_flags, Mode::empty()).map_err(io::Error::from)?;
    let mut walked = PathBuf::from("/");
    let Some((last, parents)) = parts.split_last() else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the root directory is not a file",
        ));
    };
    for part in parents {
        walked.push(part);
        dir = nix::fcntl::openat(&dir, *part, dir_flags, Mode::empty())
            .map_err(|errno| explain(&walked, errno))?;
    }
    walked.push(last);
    let file = nix::fcntl::openat(
        &dir,
        *last,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|errno| explain(&walked, errno))?;
    let file = File::from(file);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", walked.display()),
        ));
    }
    Ok(file)
}

/// Reads a whole file through [`open_nofollow`].
pub fn read_nofollow(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    open_nofollow(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Maps an `openat` failure, naming a symbolic link as such.
fn explain(walked: &Path, errno: nix::errno::Errno) -> io::Error {
    let is_link = std::fs::symlink_metadata(walked).is_ok_and(|m| m.file_type().is_symlink());
    if is_link {
        symlink_error(walked)
    } else {
        io::Error::from(errno)
    }
}

/// The normal components of an absolute path without `..`.
fn plain_components(path: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    if !path.is_absolute() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not an absolute path", path.display()),
        ));
    }
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(part) => parts.push(part),
            Component::ParentDir | Component::Prefix(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} contains \"..\"", path.display()),
                ));
            }
        }
    }
    Ok(parts)
}

/// Fails if `path` is not absolute, contains `..`, or if it or any of its
/// existing ancestors is a symbolic link. Components that do not exist yet
/// are fine (a write creates the file, never its directory).
pub fn refuse_symlinks(path: &Path) -> io::Result<()> {
    let parts = plain_components(path)?;
    let mut walked = PathBuf::from("/");
    for part in parts {
        walked.push(part);
        match std::fs::symlink_metadata(&walked) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_error(&walked)),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The mode of `path` when group or others may read or write it, `None`
/// when it is private. For files holding secrets (operator tokens).
pub fn loose_permissions(path: &Path) -> io::Result<Option<u32>> {
    let mode = std::fs::metadata(path)?.mode() & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

/// One warning line per operator token file that group or others can read.
pub fn token_file_warnings<'a>(files: impl IntoIterator<Item = (String, &'a Path)>) -> Vec<String> {
    files
        .into_iter()
        .filter_map(|(key, path)| match loose_permissions(path) {
            Ok(Some(mode)) => Some(format!(
                "{key}: {} has mode {mode:04o}; group or others can read the token (chmod 600 it)",
                path.display()
            )),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests;
