//! Boot gates: the checks that must pass, in order, before Warden reports
//! RUNNING. Their results are kept for `GET /api/boot-status` so an operator
//! sees why a boot failed or what it repaired.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::escalation::snapshot::{config_digest, config_snapshot_path, rejected_config_path};

/// Outcome of one gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateStatus {
    /// The gate passed.
    Pass,
    /// The gate failed; Warden does not become RUNNING.
    Fail,
}

/// One gate's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootGate {
    /// Stable gate name, e.g. `state_dir_writable`.
    pub name: String,
    /// Pass or fail.
    pub status: GateStatus,
    /// What was checked or repaired, or why it failed.
    pub detail: String,
    /// When the gate ran, RFC 3339 UTC.
    pub at: String,
}

/// Where the configuration this boot runs on came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConfigSourceKind {
    /// The operator's configuration (`--config`, or the embedded default).
    Operator,
    /// The last-known-good copy in the state dir, because the operator's
    /// configuration melted the supervision tree down.
    LastKnownGood,
}

/// Which configuration Warden booted from, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigOrigin {
    /// `operator` or `last_known_good`.
    pub source: ConfigSourceKind,
    /// The file it was read from (`embedded` or `text` when none).
    pub path: String,
    /// `sha256:<hex>` of the configuration text.
    pub digest: String,
    /// Why this one.
    pub reason: String,
    /// The operator's configuration when it is not the one in force: its
    /// path and digest, so the operator sees which version was set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator_config: Option<SetAside>,
}

impl ConfigOrigin {
    /// The operator's own configuration, in force as given.
    pub fn operator(path: &str, text: &str) -> Self {
        Self {
            source: ConfigSourceKind::Operator,
            path: path.to_owned(),
            digest: config_digest(text),
            reason: "the operator's configuration".to_owned(),
            operator_config: None,
        }
    }

    /// A boot on the last-known-good copy in `state_dir` (`good`, inline
    /// secrets restored) that set aside the operator's configuration at
    /// `operator_path`.
    pub fn known_good(
        state_dir: &Path,
        operator_path: &str,
        operator_text: &str,
        good: &str,
        reason: String,
    ) -> Self {
        Self {
            source: ConfigSourceKind::LastKnownGood,
            path: config_snapshot_path(state_dir).display().to_string(),
            // The digest of the copy at `path`, which holds its inline secrets
            // redacted (`good` has them back from the operator's text).
            digest: config_digest(&crate::settings::seal_config_text(good)),
            reason,
            operator_config: Some(SetAside {
                path: operator_path.to_owned(),
                digest: config_digest(operator_text),
                kept_at: rejected_config_path(state_dir).display().to_string(),
            }),
        }
    }
}

/// The operator's configuration that was set aside by a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAside {
    /// Where it is (left untouched).
    pub path: String,
    /// `sha256:<hex>` of its text.
    pub digest: String,
    /// A copy kept in the state dir for diagnosis.
    pub kept_at: String,
}

/// Results of every gate run so far, shared with the API.
#[derive(Debug, Clone, Default)]
pub struct BootStatus {
    gates: Arc<Mutex<Vec<BootGate>>>,
    config: Arc<Mutex<Option<ConfigOrigin>>>,
}

/// The JSON shape of `GET /api/boot-status`.
#[derive(Debug, Clone, Serialize)]
pub struct BootReport {
    /// True when every gate passed.
    pub ready: bool,
    /// The gates in the order they ran.
    pub gates: Vec<BootGate>,
    /// Which configuration this boot runs on (absent when the settings were
    /// handed in directly, as in-process tests do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigOrigin>,
}

impl BootStatus {
    /// Records a gate's result and returns whether it passed.
    pub fn record(&self, name: &str, result: Result<String, String>) -> bool {
        let (status, detail) = match result {
            Ok(detail) => (GateStatus::Pass, detail),
            Err(reason) => (GateStatus::Fail, reason),
        };
        let gate = BootGate {
            name: name.to_owned(),
            status,
            detail,
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        };
        self.gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(gate);
        status == GateStatus::Pass
    }

    /// Records which configuration this boot runs on.
    pub fn set_config(&self, origin: ConfigOrigin) {
        *self.config.lock().unwrap_or_else(PoisonError::into_inner) = Some(origin);
    }

    /// A copy of every result so far.
    pub fn report(&self) -> BootReport {
        let gates = self
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        BootReport {
            ready: !gates.is_empty() && gates.iter().all(|g| g.status == GateStatus::Pass),
            gates,
            config: self
                .config
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Gates that failed, for error messages.
    pub fn failures(&self) -> Vec<BootGate> {
        self.report()
            .gates
            .into_iter()
            .filter(|gate| gate.status == GateStatus::Fail)
            .collect()
    }
}

/// The `state_dir_writable` gate: the directory exists (created 0700 if
/// missing) and a file can be written, synced and removed in it. A state dir
/// other users can enter passes with a warning: it holds evidence and the
/// old content of patched files.
pub fn check_state_dir(dir: &Path) -> Result<String, String> {
    let describe =
        |what: &str, error: std::io::Error| format!("cannot {what} {}: {error}", dir.display());
    crate::files::create_private_dir_all(dir).map_err(|e| describe("create", e))?;
    let probe = dir.join(".warden-write-check");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let _ = std::fs::remove_file(&probe);
        let mut file = crate::files::create_private_new(&probe)?;
        file.write_all(b"ok")?;
        file.sync_all()?;
        std::fs::remove_file(&probe)
    };
    write().map_err(|e| describe("write to", e))?;
    match crate::files::loose_permissions(dir) {
        Ok(Some(mode)) => {
            tracing::warn!(dir = %dir.display(), mode = format!("{mode:04o}"), "The state directory is open to other users; chmod 700 it.");
            Ok(format!(
                "{} is writable (warning: mode {mode:04o} lets other users in; chmod 700 it)",
                dir.display()
            ))
        }
        _ => Ok(format!("{} is writable", dir.display())),
    }
}

/// The `cursors_consistent` gate: every cursor file in `cursor_dir` is at
/// most `last_seq`. A cursor beyond the end of the log means the log was
/// rewound under its consumers (a restore, a replaced disk); the caller
/// pauses Warden with reason `substrate` instead of refusing to boot.
pub fn check_cursors(cursor_dir: &Path, last_seq: u64) -> Result<String, String> {
    let entries = match std::fs::read_dir(cursor_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok("no cursors yet".to_owned());
        }
        Err(error) => return Err(format!("cannot list {}: {error}", cursor_dir.display())),
    };
    let mut checked = 0usize;
    let mut ahead = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("cannot list {}: {e}", cursor_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Temporary files of an interrupted store start with '.'.
        if name.starts_with('.') {
            continue;
        }
        let seq = crate::audit::Cursor::load(cursor_dir, &name).map_err(|e| e.to_string())?;
        checked += 1;
        if let Some(seq) = seq.filter(|seq| *seq > last_seq) {
            ahead.push(format!("{name} at {seq}"));
        }
    }
    if ahead.is_empty() {
        Ok(format!(
            "{checked} cursor(s) within the log (last seq {last_seq})"
        ))
    } else {
        ahead.sort();
        Err(format!(
            "cursor(s) beyond the end of the log (last seq {last_seq}): {}; the log was rewound",
            ahead.join(", ")
        ))
    }
}
