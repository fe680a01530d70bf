//! What was already done for rows the cursor has not passed yet. A crash can
//! stop the consumer after it recorded work and before the cursor moved; the
//! ledger, rebuilt from the rows after the cursor, lets the replay skip that
//! work instead of doing it twice.

use std::collections::{HashMap, HashSet};

use crate::audit::RowView;
use crate::events::{self, Decoded, Delivered};
use crate::notify::Notice;

/// Seam of the row recording an investigation and its first delivery pass.
pub const COMPLETED_SEAM: &str = "probe.investigation_completed";
use crate::notify::FOLDED_SEAM;
pub use crate::notify::{FAILED_SEAM, SENT_SEAM};

/// Work recorded for wake rows after the cursor.
#[derive(Debug, Default)]
pub struct Ledger {
    completed: HashMap<u64, Notice>,
    sent: HashMap<u64, HashSet<String>>,
}

impl Ledger {
    /// Takes note of `row` if it records work for a wake row.
    pub fn observe(&mut self, row: &(impl RowView + ?Sized)) {
        match events::decode(row) {
            Decoded::InvestigationCompleted(done) => {
                self.completed.insert(done.wake_seq, done.notice);
            }
            // A folded notice was handled too: the notifier already carried
            // that state of the conversation.
            Decoded::Delivered(Delivered {
                wake_seq: Some(wake_seq),
                notifier,
                ..
            }) if row.seam() == SENT_SEAM || row.seam() == FOLDED_SEAM => {
                self.sent.entry(wake_seq).or_default().insert(notifier);
            }
            _ => {}
        }
    }

    /// The notice of a wake row whose investigation is already recorded.
    pub fn completed(&self, wake_seq: u64) -> Option<&Notice> {
        self.completed.get(&wake_seq)
    }

    /// Notifiers that already took the notice of `wake_seq`.
    pub fn sent_to(&self, wake_seq: u64) -> HashSet<String> {
        self.sent.get(&wake_seq).cloned().unwrap_or_default()
    }

    /// Drops what is known of `wake_seq` once the cursor passed it.
    pub fn forget(&mut self, wake_seq: u64) {
        self.completed.remove(&wake_seq);
        self.sent.remove(&wake_seq);
    }

    /// Wake rows with recorded work.
    pub fn len(&self) -> usize {
        self.completed.len().max(self.sent.len())
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.completed.is_empty() && self.sent.is_empty()
    }
}
