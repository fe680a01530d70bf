//! Evidence capture: what goes into an incident's evidence files and how
//! they are gathered (the observations, the stories' audit rows, a reference
//! to the effective configuration). The core decides when and for which
//! probes and sessions ([`Snapshot`]); this module does the reading and
//! writing, off the actor's thread.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::{Value, json};

use super::core::Snapshot;
use super::{CommanderArgs, IncidentError, disk};
use crate::audit::AuditReader;

/// The effective configuration for incident evidence, rendered (secrets
/// redacted) only when an incident is written: kept as a JSON tree it would
/// cost kilobytes per configured probe for the life of the process. The
/// rendering is stored once per version in the state dir
/// ([`crate::storage::store_config`]) and evidence names its digest.
#[derive(Clone)]
pub struct EffectiveConfig {
    render: Arc<dyn Fn() -> Value + Send + Sync>,
    /// The version this process already stored: later incidents only check
    /// that the file is still there instead of rendering it again.
    stored: Arc<Mutex<Option<crate::storage::StoredConfig>>>,
}

impl EffectiveConfig {
    /// Renders `settings` when asked; secrets serialise redacted.
    pub fn of(settings: Arc<crate::settings::Settings>) -> Self {
        Self::from_fn(move || serde_json::to_value(&*settings).unwrap_or_default())
    }

    /// A fixed value (tests).
    pub fn fixed(value: Value) -> Self {
        Self::from_fn(move || value.clone())
    }

    fn from_fn(render: impl Fn() -> Value + Send + Sync + 'static) -> Self {
        Self {
            render: Arc::new(render),
            stored: Arc::default(),
        }
    }

    /// The configuration as JSON.
    pub fn render(&self) -> Value {
        (self.render)()
    }

    /// Stores this configuration version under `state_dir` (once per
    /// digest) and says where. Blocks on file I/O.
    pub fn store(
        &self,
        state_dir: &Path,
    ) -> Result<crate::storage::StoredConfig, crate::storage::config_versions::StoreError> {
        let mut stored = self.stored.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = stored.as_ref()
            && std::fs::metadata(state_dir.join(&known.path))
                .is_ok_and(|meta| meta.len() == known.size)
        {
            return Ok(known.clone());
        }
        let bytes = serde_json::to_vec_pretty(&self.render()).unwrap_or_default();
        let fresh = crate::storage::store_config(state_dir, &bytes)?;
        *stored = Some(fresh.clone());
        Ok(fresh)
    }
}

impl std::fmt::Debug for EffectiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EffectiveConfig")
    }
}

/// Writes the evidence files `snapshot` asks for under `root` (the
/// incidents root) and returns their paths relative to the incident's
/// directory. The observations are copied on the caller's thread (the maps
/// change under it); the files are written on a blocking thread.
pub(crate) async fn capture(
    args: &CommanderArgs,
    root: &Path,
    snapshot: &Snapshot,
) -> Result<Vec<String>, IncidentError> {
    let mut probes = snapshot.probes.clone();
    for observation in args.latest.iter() {
        if snapshot.components.contains(&observation.component)
            && !probes.contains(&observation.probe)
        {
            probes.push(observation.probe.clone());
        }
    }
    let observations: serde_json::Map<String, Value> = probes
        .iter()
        .map(|probe| {
            let history = args
                .history
                .get(probe)
                .map(|h| h.iter().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            let latest = args.latest.get(probe).map(|o| o.clone());
            (
                probe.clone(),
                json!({ "latest": latest, "history": history }),
            )
        })
        .collect();
    let root = root.to_owned();
    let id = snapshot.id.clone();
    let audit_dir = args.audit_dir.clone();
    let sessions = snapshot.sessions.clone();
    let max_rows = args.settings.evidence_rows;
    let config = snapshot.with_config.then(|| args.effective_config.clone());
    let state_dir = args.state_dir.clone();
    let label = snapshot.label.clone();
    let dir = root.clone();
    disk::blocking(&dir, move || {
        let mut written = Vec::new();
        written.push(disk::write_evidence(
            &root,
            &id,
            &format!("{label}-observations"),
            &Value::Object(observations),
        )?);
        written.push(disk::write_evidence(
            &root,
            &id,
            &format!("{label}-audit"),
            &audit_rows(&audit_dir, &sessions, max_rows),
        )?);
        if let Some(config) = config {
            // A reference, not a copy: the version is stored once per digest.
            let reference = match config.store(&state_dir) {
                Ok(stored) => json!({
                    "config_digest": stored.digest,
                    "path": stored.path,
                    "size": stored.size,
                    "note": "the effective configuration (secrets shown as ***) is stored once per version; path is relative to the state dir",
                }),
                Err(error) => json!({ "error": error.to_string() }),
            };
            written.push(disk::write_evidence(
                &root,
                &id,
                "effective-config",
                &reference,
            )?);
        }
        Ok(written)
    })
    .await
}

/// Rows scanned when a session id does not say where its story starts.
const UNBOUNDED_SCAN_ROWS: u64 = 50_000;

/// The first seq worth reading for `sessions`: a story id ends in the seq of
/// its first row (`probe:<probe>:<category>:<seq>`), and no row of the story
/// comes before it. Ids without one fall back to the log's last rows.
fn scan_start(reader: &AuditReader, sessions: &[String]) -> u64 {
    let starts: Option<Vec<u64>> = sessions
        .iter()
        .map(|s| s.rsplit(':').next().and_then(|tail| tail.parse().ok()))
        .collect();
    match starts.and_then(|starts| starts.into_iter().min()) {
        Some(first) => first,
        None => reader
            .last_seq()
            .ok()
            .flatten()
            .map_or(1, |last| last.saturating_sub(UNBOUNDED_SCAN_ROWS).max(1)),
    }
}

/// The last `max_rows` audit rows of `sessions`, read from where the oldest
/// story begins (not the whole log: an incident storm must not cost a full
/// scan per incident).
fn audit_rows(audit_dir: &Path, sessions: &[String], max_rows: usize) -> Value {
    if sessions.is_empty() {
        return json!({ "sessions": sessions, "rows": [], "note": "no caller session joined" });
    }
    let reader = match AuditReader::open(audit_dir) {
        Ok(reader) => reader,
        Err(error) => {
            return json!({ "sessions": sessions, "rows": [], "error": error.to_string() });
        }
    };
    let mut rows = VecDeque::new();
    let mut corrupt = 0u64;
    let mut dropped = 0u64;
    let mut iter = reader.rows_from(scan_start(&reader, sessions), None);
    // Only the story's rows are parsed whole: in a storm the scan from the
    // oldest story's start crosses thousands of other stories' rows.
    let ours = |row: &crate::audit::RowRef<'_>| {
        row.caller_session_id
            .as_deref()
            .is_some_and(|s| sessions.iter().any(|session| session == s))
    };
    while let Some(row) = iter.next_where(ours) {
        match row {
            Ok(row) => {
                rows.push_back(row);
                if rows.len() > max_rows {
                    rows.pop_front();
                    dropped += 1;
                }
            }
            Err(_) => corrupt += 1,
        }
    }
    json!({ "sessions": sessions, "rows": rows, "older_rows_dropped": dropped, "corrupt_rows_skipped": corrupt })
}
