//! What a coordinator keeps on disk, under `<state_dir>/escalation/`, so
//! that a coordinator restarted (or a Warden `kill -9`ed) takes up its
//! component where it stopped, from its own files and the log alone:
//!
//! - `<component>.json`: [`IssueView`], the component's open issues as the
//!   coordinator has read them from the log, and the seq of the last issue
//!   row it took in (rows the escalation intake delivers again after a
//!   crash are recognised by it);
//! - `<component>.cycle.json`: the [`CycleRecord`](super::CycleRecord),
//!   written after every step of a cycle.
//!
//! Each file has one writer at a time: the view is the coordinator's; the
//! cycle record is the running cycle's, or the coordinator's between cycles.

use std::collections::BTreeSet;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The directory under `state_dir`.
pub(super) const DIR: &str = "escalation";

/// The component's issues as read from the log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IssueView {
    /// The last issue row taken in.
    pub seq: u64,
    /// Probes of the component with an open issue (woken or suppressed).
    pub open: BTreeSet<String>,
}

/// One JSON file, written atomically and only when its content changed (a
/// held cycle saves its unchanged record on every poll).
#[derive(Debug)]
pub struct SavedFile<T> {
    path: PathBuf,
    last: Mutex<Vec<u8>>,
    kind: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> SavedFile<T> {
    /// The file `<state_dir>/escalation/<component><suffix>`.
    pub fn new(state_dir: &Path, component: &str, suffix: &str) -> Self {
        Self {
            path: state_dir.join(DIR).join(format!("{component}{suffix}")),
            last: Mutex::new(Vec::new()),
            kind: PhantomData,
        }
    }

    /// The saved value; `None` when there is none. An unreadable file is
    /// logged and treated as absent: the coordinator starts clean rather
    /// than not at all.
    pub fn load(&self) -> Option<T> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "Could not read the escalation state; starting clean.");
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(value) => {
                if let Ok(mut last) = self.last.lock() {
                    *last = bytes;
                }
                Some(value)
            }
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "The escalation state is unreadable; starting clean.");
                None
            }
        }
    }

    /// Writes `value` if it differs from what was last written. A failed
    /// write is logged: the in-memory state goes on, and a restart resumes
    /// from the previous write (a step may then be taken again).
    pub fn save(&self, value: &T) {
        let bytes = match serde_json::to_vec(value) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "Could not encode the escalation state.");
                return;
            }
        };
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if *last == bytes {
            return;
        }
        let written = self
            .path
            .parent()
            .map_or(Ok(()), crate::files::create_private_dir_all)
            .and_then(|()| crate::files::write_atomic(&self.path, &bytes));
        match written {
            Ok(()) => *last = bytes,
            Err(error) => {
                tracing::error!(path = %self.path.display(), %error, "Could not save the escalation state.");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_view_loads_back_and_an_unreadable_file_starts_clean() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = SavedFile::<IssueView>::new(dir.path(), "web", ".json");
        assert_eq!(file.load(), None);
        let view = IssueView {
            seq: 7,
            open: BTreeSet::from(["web-http".to_owned()]),
        };
        file.save(&view);
        let again = SavedFile::<IssueView>::new(dir.path(), "web", ".json");
        assert_eq!(again.load(), Some(view));
        let path = dir.path().join(DIR).join("web.json");
        std::fs::write(&path, b"{torn").expect("write");
        assert_eq!(again.load(), None);
    }
}
