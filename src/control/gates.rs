//! The boot gates in the order they run, and what each one found: the first
//! three refuse the boot, the last two (`cursors_consistent`, `dr_epoch`)
//! let Warden boot PAUSED with reason `substrate` and leave audit rows for
//! the log once it is up.

use std::path::Path;

use super::{BootStatus, DrEpoch, EpochCheck, check_cursors, check_state_dir};
use crate::audit::{NewRow, RecoveryReport};
use crate::events::{self, service as ev};
use crate::settings::{DrSettings, Settings};

/// What the gates that pause rather than refuse found.
#[derive(Debug, Default)]
pub struct BootFindings {
    /// Set when the substrate was rewound: Warden boots PAUSED (`substrate`).
    pub substrate_rewind: Option<String>,
    /// Rows to append once the audit log is up.
    pub rows: Vec<NewRow>,
}

/// The DR epoch files of `state_dir`. A known epoch still at its pre-upgrade
/// location is adopted first, so an upgrade does not read as a rewind.
pub fn dr_epoch(settings: &DrSettings, state_dir: &Path) -> DrEpoch {
    let dr = DrEpoch::new(state_dir, &settings.known_epoch_path(state_dir));
    if let Some(legacy) = settings.legacy_known_epoch_path(state_dir) {
        match dr.adopt_legacy(&legacy) {
            Ok(true) => {
                tracing::info!(legacy = %legacy.display(), "Adopted the known DR epoch from its pre-upgrade location.")
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(error = %error, "Could not adopt the known DR epoch from its pre-upgrade location; the dr_epoch gate decides.")
            }
        }
    }
    dr
}

/// Runs the boot gates in order, recording each in `boot`. On a refusal the
/// error lists every failed gate with its detail.
pub fn boot_gates(
    settings: &Settings,
    audit_dir: &Path,
    boot: &BootStatus,
    dr: &DrEpoch,
) -> Result<BootFindings, String> {
    boot.record("config_valid", Ok(settings.summary()));
    let state_dir = &settings.service.state_dir;
    let mut last_seq = 0;
    let passed = boot.record("state_dir_writable", check_state_dir(state_dir))
        && boot.record(
            "audit_recovered",
            crate::audit::inspect(audit_dir)
                .map(|report| {
                    last_seq = report.last_good_seq.unwrap_or(0);
                    describe_recovery(&report)
                })
                .map_err(|error| error.to_string()),
        );
    if passed {
        let mut findings = BootFindings::default();
        if let Err(detail) = check_cursors(&state_dir.join("cursors"), last_seq) {
            boot.record("cursors_consistent", Err(detail.clone()));
            findings.rows.push(events::row(&ev::CursorBeyondLog {
                detail: detail.clone(),
                log_last_seq: last_seq,
            }));
            findings.substrate_rewind = Some(detail);
        } else {
            boot.record(
                "cursors_consistent",
                check_cursors(&state_dir.join("cursors"), last_seq),
            );
        }
        let epoch = dr.check(last_seq).map_err(|error| error.to_string());
        let (result, row) = describe_epoch(epoch);
        if let Err(detail) = &result {
            findings
                .substrate_rewind
                .get_or_insert_with(|| detail.clone());
        }
        findings.rows.extend(row);
        boot.record("dr_epoch", result);
        return Ok(findings);
    }
    let failures: Vec<String> = boot
        .failures()
        .into_iter()
        .map(|gate| format!("{} ({})", gate.name, gate.detail))
        .collect();
    Err(failures.join("; "))
}

/// What the audit scan found, for the boot report. The writer does the
/// repair itself when it starts (and records it as `audit.recovered`), so the
/// gate only inspects.
fn describe_recovery(report: &RecoveryReport) -> String {
    let mut text = match report.last_good_seq {
        Some(seq) => format!("audit log intact up to seq {seq}"),
        None => "audit log is empty".to_owned(),
    };
    if let Some(torn) = &report.truncated {
        text.push_str(&format!(
            "; a torn last row ({} bytes in {}) will be truncated",
            torn.truncated_bytes,
            torn.file.display()
        ));
    }
    if !report.corrupt_rows.is_empty() {
        text.push_str(&format!(
            "; {} corrupt row(s) left in place (first at byte {} of {})",
            report.corrupt_rows.len(),
            report.corrupt_rows[0].offset,
            report.corrupt_rows[0].file.display()
        ));
    }
    text
}

/// The `dr_epoch` gate's result and its audit row, if any.
fn describe_epoch(epoch: Result<EpochCheck, String>) -> (Result<String, String>, Option<NewRow>) {
    match epoch {
        Ok(EpochCheck::Created) => (Ok("first boot: DR epoch 1 recorded".to_owned()), None),
        Ok(EpochCheck::Consistent { epoch }) => (
            Ok(format!("DR epoch {epoch} matches the known epoch")),
            None,
        ),
        Ok(EpochCheck::Rewind(facts)) => (
            Err(format!(
                "rewind detected: state epoch {}, known epoch {}, log last seq {}, known high water {}; verify, then bump_epoch and reset",
                facts.state_epoch, facts.known_epoch, facts.log_last_seq, facts.known_high_water
            )),
            Some(events::row(&ev::RewindDetected(facts))),
        ),
        Ok(EpochCheck::KnownEpochViolation(facts)) => (
            Err(format!(
                "KnownEpochMonotonicViolation: state epoch {} is ahead of known epoch {} (the known epoch file was rewound or replaced); verify, then bump_epoch and reset",
                facts.state_epoch, facts.known_epoch
            )),
            Some(events::row(&ev::KnownEpochViolation(facts))),
        ),
        Err(detail) => (
            Err(format!("cannot check the DR epoch: {detail}")),
            Some(events::row(&ev::EpochUnreadable { detail })),
        ),
    }
}
