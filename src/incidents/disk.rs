//! The on-disk layout of incidents, under `<state_dir>/incidents/<id>/`:
//!
//! - `incident.json`: the [`Incident`], replaced atomically
//!   ([`crate::files::write_atomic`]), so a crash leaves the old or the new record;
//! - `timeline.jsonl`: append-only [`TimelineEntry`] lines; a torn last line
//!   (a crash mid-append) is skipped on load and fenced off by a newline
//!   before the next append;
//! - `evidence/<nn>-<name>.json`: snapshots, created with `create_new`, so an
//!   evidence file is never overwritten;
//! - `postmortem.md` and `postmortem.json`, written on resolution.
//!
//! Directories are created 0700 and files 0600: evidence holds the
//! configuration and probe output.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::files::{
    PRIVATE_DIR_MODE, create_private_dir_all, create_private_new, open_private_append,
};

use super::IncidentError;
use super::model::{Incident, TimelineEntry};

/// `incident.json`.
pub(crate) const INCIDENT_FILE: &str = "incident.json";
/// `timeline.jsonl`.
pub(crate) const TIMELINE_FILE: &str = "timeline.jsonl";
/// `evidence/`.
pub(crate) const EVIDENCE_DIR: &str = "evidence";

/// `<state_dir>/incidents`.
pub fn incidents_root(state_dir: &Path) -> PathBuf {
    state_dir.join("incidents")
}

fn io(path: &Path) -> impl FnOnce(io::Error) -> IncidentError + '_ {
    move |source| IncidentError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Claims a new id `INC-<date>-NNN` by creating its directory: the first
/// counter whose directory does not exist yet wins, so ids stay unique across
/// restarts and even if two commanders raced.
pub(crate) fn claim_id(root: &Path, date: &str) -> Result<String, IncidentError> {
    create_private_dir_all(root).map_err(io(root))?;
    for n in 1u32.. {
        let id = format!("INC-{date}-{n:03}");
        let dir = root.join(&id);
        match fs::DirBuilder::new().mode(PRIVATE_DIR_MODE).create(&dir) {
            Ok(()) => return Ok(id),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(io(&dir)(error)),
        }
    }
    Err(IncidentError::Exhausted)
}

/// Runs `work` (file I/O under `root`) on a blocking thread; a panic in it
/// is an I/O error on `root`.
pub(crate) async fn blocking<T: Send + 'static>(
    root: &Path,
    work: impl FnOnce() -> Result<T, IncidentError> + Send + 'static,
) -> Result<T, IncidentError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| io(root)(io::Error::other(error.to_string())))?
}

/// Replaces `path` atomically (see [`crate::files::write_atomic`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IncidentError> {
    crate::files::write_atomic(path, bytes).map_err(io(path))
}

/// Saves `incident.json`.
pub(crate) fn save(root: &Path, incident: &Incident) -> Result<(), IncidentError> {
    let dir = root.join(&incident.id);
    create_private_dir_all(&dir).map_err(io(&dir))?;
    let bytes = serde_json::to_vec_pretty(incident).map_err(IncidentError::Encode)?;
    write_atomic(&dir.join(INCIDENT_FILE), &bytes)
}

/// Appends one entry to `timeline.jsonl` (and syncs it).
pub(crate) fn append_timeline(
    root: &Path,
    id: &str,
    entry: &TimelineEntry,
) -> Result<(), IncidentError> {
    let dir = root.join(id);
    create_private_dir_all(&dir).map_err(io(&dir))?;
    let path = dir.join(TIMELINE_FILE);
    let mut file = open_private_append(&path).map_err(io(&path))?;
    let mut line = Vec::new();
    // A torn last line must not swallow this entry: start on a fresh line.
    let len = file.metadata().map_err(io(&path))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::Start(len - 1)).map_err(io(&path))?;
        file.read_exact(&mut last).map_err(io(&path))?;
        if last[0] != b'\n' {
            line.push(b'\n');
        }
    }
    serde_json::to_writer(&mut line, entry).map_err(IncidentError::Encode)?;
    line.push(b'\n');
    file.write_all(&line).map_err(io(&path))?;
    file.sync_data().map_err(io(&path))?;
    Ok(())
}

/// Every readable timeline entry, oldest first. Lines that do not parse (a
/// torn last line, or one fenced off by a later append) are skipped.
pub fn read_timeline(root: &Path, id: &str) -> Result<Vec<TimelineEntry>, IncidentError> {
    let path = root.join(id).join(TIMELINE_FILE);
    let text = match fs::read(&path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(io(&path)(error)),
    };
    Ok(text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect())
}

/// Writes a new evidence file `evidence/<nn>-<name>.json` and returns its
/// path relative to the incident directory. Never overwrites: a taken
/// number moves on to the next.
pub(crate) fn write_evidence(
    root: &Path,
    id: &str,
    name: &str,
    value: &serde_json::Value,
) -> Result<String, IncidentError> {
    let dir = root.join(id).join(EVIDENCE_DIR);
    create_private_dir_all(&dir).map_err(io(&dir))?;
    let bytes = serde_json::to_vec_pretty(value).map_err(IncidentError::Encode)?;
    let name = safe_name(name);
    // After the highest number in use, so numbers keep the order of writing.
    let mut n = fs::read_dir(&dir)
        .map_err(io(&dir))?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.split('-').next()?.parse::<usize>().ok()
        })
        .max()
        .unwrap_or(0)
        + 1;
    loop {
        let file_name = format!("{n:02}-{name}.json");
        let path = dir.join(&file_name);
        match create_private_new(&path) {
            Ok(mut file) => {
                file.write_all(&bytes).map_err(io(&path))?;
                file.sync_all().map_err(io(&path))?;
                return Ok(format!("{EVIDENCE_DIR}/{file_name}"));
            }
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => n += 1,
            Err(error) => return Err(io(&path)(error)),
        }
    }
}

/// Keeps `[A-Za-z0-9_.-]`, replacing anything else, so a probe name cannot
/// leave the evidence directory.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    cleaned.trim_start_matches('.').chars().take(64).collect()
}

/// Writes `postmortem.md` and `postmortem.json` (atomically, each).
pub(crate) fn write_postmortem(
    root: &Path,
    id: &str,
    markdown: &str,
    json: &serde_json::Value,
) -> Result<(), IncidentError> {
    let dir = root.join(id);
    write_atomic(&dir.join("postmortem.md"), markdown.as_bytes())?;
    let bytes = serde_json::to_vec_pretty(json).map_err(IncidentError::Encode)?;
    write_atomic(&dir.join("postmortem.json"), &bytes)
}

/// Every incident under `root`. A directory without a readable
/// `incident.json` (claimed, then a crash before the first save) is skipped
/// and named in the second list.
pub fn load_all(root: &Path) -> Result<(Vec<Incident>, Vec<PathBuf>), IncidentError> {
    let entries = match fs::read_dir(root) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new()));
        }
        Err(error) => return Err(io(root)(error)),
    };
    let mut incidents = Vec::new();
    let mut skipped = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(root))?;
        if !entry.path().is_dir() {
            continue;
        }
        let path = entry.path().join(INCIDENT_FILE);
        match fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Incident>(&bytes).ok())
        {
            Some(incident) => incidents.push(incident),
            None => skipped.push(entry.path()),
        }
    }
    incidents.sort_by(|a, b| a.id.cmp(&b.id));
    Ok((incidents, skipped))
}
