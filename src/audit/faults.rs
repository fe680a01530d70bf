//! [`AuditFaults`]: a failpoint switch in front of the writer's file I/O, so
//! tests and chaos scenarios can make real writes fail (disk full, EIO) a
//! given number of times.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

/// Injected I/O failures for the audit writer. Shared (`Arc`) through
/// [`AuditWriterArgs::faults`](super::AuditWriterArgs::faults); all counters start at zero (no faults).
#[derive(Debug, Default)]
pub struct AuditFaults {
    fail_writes: AtomicU32,
    fail_syncs: AtomicU32,
    fail_rotations: AtomicU32,
    partial_writes: AtomicBool,
}

impl AuditFaults {
    /// No faults armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` batch writes fail. With `partial`, each failing write
    /// first really writes half of its bytes, like a disk filling up mid-write.
    pub fn fail_next_writes(&self, n: u32, partial: bool) {
        self.partial_writes.store(partial, Ordering::SeqCst);
        self.fail_writes.store(n, Ordering::SeqCst);
    }

    /// The next `n` syncs fail (after their write succeeded).
    pub fn fail_next_syncs(&self, n: u32) {
        self.fail_syncs.store(n, Ordering::SeqCst);
    }

    /// The next `n` attempts to create a rotated file fail.
    pub fn fail_next_rotations(&self, n: u32) {
        self.fail_rotations.store(n, Ordering::SeqCst);
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

fn injected(what: &str) -> io::Error {
    io::Error::other(format!("injected fault: {what}"))
}

/// `write_all` through the failpoints.
pub(crate) fn write_all(
    faults: Option<&AuditFaults>,
    file: &mut File,
    buf: &[u8],
) -> io::Result<()> {
    if let Some(f) = faults
        && AuditFaults::take(&f.fail_writes)
    {
        if f.partial_writes.load(Ordering::SeqCst) {
            file.write_all(&buf[..buf.len() / 2])?;
        }
        return Err(injected("no space left on device"));
    }
    file.write_all(buf)
}

/// `sync_data` through the failpoints.
pub(crate) fn sync_data(faults: Option<&AuditFaults>, file: &File) -> io::Result<()> {
    if let Some(f) = faults
        && AuditFaults::take(&f.fail_syncs)
    {
        return Err(injected("sync failed"));
    }
    file.sync_data()
}

/// Checks the rotation failpoint before a new file is created.
pub(crate) fn rotate(faults: Option<&AuditFaults>) -> io::Result<()> {
    match faults {
        Some(f) if AuditFaults::take(&f.fail_rotations) => Err(injected("cannot create file")),
        _ => Ok(()),
    }
}
