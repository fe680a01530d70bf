//! [`Follower`]: a consumer's reader of the log after its own durable
//! [`Cursor`], in batches, as the incident commander and the escalation
//! intake read it (the wake consumer keeps its own loop: it also waits on
//! lag and retries).
//!
//! A follower resumes after its stored cursor. A missing or unreadable
//! cursor starts at the log's tail: history written before the consumer had
//! a cursor is not replayed as new. The cursor is an ordinary one under
//! `<state_dir>/cursors/`, so the boot gate checks it and retention never
//! prunes past it.

use std::path::Path;
use std::time::Duration;

use tokio::time::Instant;

use super::{AuditError, AuditReader, Cursor, RowIter, RowRef};

/// A reader of the log after a named cursor.
pub struct Follower {
    reader: AuditReader,
    cursor: Cursor,
    who: &'static str,
    next_seq: u64,
    /// Kept between batches, so each batch reads on from the open file.
    rows: Option<RowIter>,
    /// The last row the consumer has handled.
    handled: u64,
    /// The last row stored, and when.
    stored: (u64, Instant),
}

/// How often, at most, a follower's cursor is written during a burst: each
/// write is two fsyncs on the disk the audit log syncs on, and a crash only
/// replays what the cursor has not passed (consumers make replays harmless).
const STORE_EVERY: Duration = Duration::from_millis(200);

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower")
            .field("cursor", &self.cursor.name())
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl Follower {
    /// Opens the log and the cursor `name`; `who` names the consumer in
    /// log messages. Returns the seq to resume after (the cursor, or the
    /// tail when there is none). The cursor is stored at once, so the boot
    /// gate and retention see it from the first boot.
    pub fn open(
        audit_dir: &Path,
        cursor_dir: &Path,
        name: &str,
        who: &'static str,
    ) -> Result<(Follower, u64), AuditError> {
        let reader = AuditReader::open(audit_dir)?;
        let cursor = Cursor::new(cursor_dir, name)?;
        let tail = || reader.last_seq().map(|seq| seq.unwrap_or(0));
        let seq = match cursor.current() {
            Ok(Some(seq)) => seq,
            Ok(None) => tail()?,
            Err(AuditError::CorruptCursor { path, reason }) => {
                tracing::error!(path = %path.display(), %reason, who, "A cursor is unreadable; resuming at the log's tail.");
                tail()?
            }
            Err(other) => return Err(other),
        };
        cursor.store(seq)?;
        let follower = Follower {
            reader,
            cursor,
            who,
            next_seq: seq + 1,
            rows: None,
            handled: seq,
            stored: (seq, Instant::now()),
        };
        Ok((follower, seq))
    }

    /// The next rows after the last one read, up to `max`: each row's seq
    /// with what `pick` made of it, for rows whose seam is one of `seams`
    /// (`None` for every other row, which the cursor moves past all the
    /// same; those are read for their seq and seam only). A corrupt row is
    /// logged and skipped; a read error ends the batch early and the next
    /// call retries.
    pub fn next_batch<T>(
        &mut self,
        max: usize,
        seams: &[&str],
        mut pick: impl FnMut(&RowRef<'_>) -> Option<T>,
    ) -> Vec<(u64, Option<T>)> {
        let mut out = Vec::new();
        let next_seq = self.next_seq;
        let reader = &self.reader;
        let iter = self
            .rows
            .get_or_insert_with(|| reader.rows_from(next_seq, None));
        while out.len() < max {
            let Some(item) = iter.next_head(|seam| seams.contains(&seam), &mut pick) else {
                break;
            };
            match item {
                Ok((seq, picked)) => {
                    self.next_seq = seq + 1;
                    out.push((seq, picked));
                }
                Err(AuditError::CorruptRow {
                    path,
                    offset,
                    reason,
                }) => {
                    tracing::error!(path = %path.display(), offset, %reason, who = self.who, "Skipped a corrupt audit row.");
                }
                Err(error) => {
                    tracing::error!(error = %error, who = self.who, "Could not read the audit log; retrying on the next row.");
                    self.rows = None;
                    return out;
                }
            }
        }
        out
    }

    /// Marks every row up to `seq` as handled (not yet stored).
    pub fn handled(&mut self, seq: u64) {
        self.handled = seq;
    }

    /// The seq to store now, if rows were handled since the last store and
    /// `STORE_EVERY` passed, or at once with `now` (at stop, and on a tick
    /// so a quiet log is not left behind).
    pub fn due(&self, now: bool) -> Option<u64> {
        let (seq, at) = self.stored;
        (self.handled > seq && (now || at.elapsed() >= STORE_EVERY)).then_some(self.handled)
    }

    /// Stores the cursor: every row up to `seq` is handled.
    pub fn store(&mut self, seq: u64) -> Result<(), AuditError> {
        self.cursor.store(seq)?;
        self.stored = (seq, Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::file_name;
    use crate::audit::test_support::{append_bytes, line};

    fn write(dir: &Path, seqs: std::ops::RangeInclusive<u64>, seam: &str) {
        std::fs::create_dir_all(dir).expect("dir");
        for seq in seqs {
            append_bytes(&dir.join(file_name(1)), &line(seq, seam));
        }
    }

    #[test]
    fn a_new_follower_starts_at_the_tail_and_a_stored_one_resumes_after_its_cursor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (audit, cursors) = (dir.path().join("audit"), dir.path().join("cursors"));
        write(&audit, 1..=3, "probe.observed");
        let (mut follower, seq) = Follower::open(&audit, &cursors, "t", "test").expect("open");
        assert_eq!(seq, 3, "history before the first cursor is not replayed");
        assert!(
            follower
                .next_batch(10, &["probe.observed"], |_| Some(()))
                .is_empty()
        );
        write(&audit, 4..=5, "probe.resolved");
        let batch = follower.next_batch(1, &["probe.resolved"], |row| Some(row.seam.to_string()));
        assert_eq!(batch, vec![(4, Some("probe.resolved".to_owned()))]);
        follower.store(4).expect("store");
        let (mut again, seq) = Follower::open(&audit, &cursors, "t", "test").expect("reopen");
        assert_eq!(seq, 4);
        let rest: Vec<u64> = again
            .next_batch(10, &["probe.resolved"], |_| None::<()>)
            .into_iter()
            .map(|(seq, _)| seq)
            .collect();
        assert_eq!(rest, vec![5]);
    }
}
