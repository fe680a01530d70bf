//! The properties every chaos run must satisfy, whatever faults hit it:
//! nothing acknowledged is lost, the log stays gap-free and parseable,
//! restarts stay within the configured intensity or escalate, and Warden is
//! live again once the faults stop.

use std::collections::BTreeMap;

use crate::harness::Outcome;
use crate::{ChaosError, Scenario};

/// Checks every invariant and the scenario's own expectations; reports all violations at once.
pub fn check(scenario: &Scenario, outcome: &Outcome) -> Result<(), ChaosError> {
    let mut violations = Vec::new();
    let rows: BTreeMap<u64, &warden::audit::AuditRow> =
        outcome.rows.iter().map(|row| (row.seq, row)).collect();

    // 1. The log is gap-free from seq 1.
    for (index, row) in outcome.rows.iter().enumerate() {
        if row.seq != index as u64 + 1 {
            violations.push(format!("seq gap: row {index} has seq {}", row.seq));
            break;
        }
    }
    // 2. Every acknowledged append is present, unaltered, exactly once.
    for (seq, payload) in &outcome.acked {
        match rows.get(seq) {
            None => violations.push(format!("acknowledged seq {seq} is missing")),
            Some(row)
                if row.seam != "chaos.append" || row.details["payload"] != payload.as_str() =>
            {
                violations.push(format!(
                    "acknowledged seq {seq} holds something else: {}",
                    row.seam
                ));
            }
            Some(_) => {}
        }
    }
    let appended = outcome
        .rows
        .iter()
        .filter(|row| row.seam == "chaos.append")
        .count();
    if appended < outcome.acked.len() {
        violations.push(format!(
            "{} acknowledged appends but {appended} rows",
            outcome.acked.len()
        ));
    }
    if outcome.acked.len() < scenario.expect.min_acked {
        violations.push(format!(
            "only {} appends acknowledged, expected at least {}",
            outcome.acked.len(),
            scenario.expect.min_acked
        ));
    }
    // 3. Every injected fault that killed or stopped an actor was noticed by a supervisor.
    let exits = outcome
        .rows
        .iter()
        .filter(|row| row.seam == "supervision.exited")
        .count();
    if outcome.injected > 0 && exits == 0 {
        violations
            .push("faults were injected but no supervision.exited row was written".to_owned());
    }
    // 4. Escalation happened exactly as often as expected.
    let meltdowns = outcome
        .rows
        .iter()
        .filter(|row| row.seam == "service.meltdown")
        .count();
    if let Some(expected) = scenario.expect.meltdowns
        && meltdowns != expected
    {
        violations.push(format!("{meltdowns} root meltdown(s), expected {expected}"));
    }
    // 5. Liveness: after the faults, Warden healed and accepted a fresh append.
    if !outcome.live_after_faults {
        violations.push("Warden was not live after the faults stopped".to_owned());
    }
    if let Some(state) = &scenario.expect.final_state
        && &outcome.final_state != state
    {
        violations.push(format!(
            "final state {}, expected {state}",
            outcome.final_state
        ));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ChaosError::Violated(violations))
    }
}
