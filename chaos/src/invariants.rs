//! The properties every chaos run must satisfy, whatever faults hit it:
//! nothing acknowledged is lost, the log stays gap-free and parseable, every
//! issue the world's ground truth implies was woken and reached the notifier
//! (once per idempotency key), restarts match the kills, escalation happened
//! as configured, nothing acted while it was not allowed to, memory and
//! backlogs stayed bounded, and Warden is live again once the faults stop.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use warden::audit::AuditRow;

use crate::faults::Landed;
use crate::harness::{Outcome, WorldReport};
use crate::{ChaosError, Scenario};

/// After a bad stretch ends, how long Warden may take to record its issue
/// (the debouncer, the audit writer or the whole process may have been
/// restarting at the time).
const WAKE_GRACE: Duration = Duration::from_secs(10);
/// A fix call may arrive this long after Warden paused (it started before).
const FIX_GRACE: Duration = Duration::from_secs(1);
/// Rows that say an issue is open (was woken).
const OPENING: [&str; 2] = ["probe.wake_requested", "probe.flapping"];
/// Seams the wake consumer turns into notices.
const NOTIFIED: [&str; 3] = ["probe.wake_requested", "probe.flapping", "probe.resolved"];
/// The world's notifier.
const NOTIFIER: &str = "chaos";

fn ts(row: &AuditRow) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(&row.ts).ok()
}

/// When Warden saw what the row reports: the time of the observation that
/// crossed the threshold, which is earlier than the row itself when the
/// audit log was failing and the row was written late.
fn observed(row: &AuditRow) -> Option<SystemTime> {
    row.details["observation"]["at"]
        .as_str()
        .and_then(|at| humantime::parse_rfc3339_weak(at).ok())
        .or_else(|| ts(row))
}

fn probe_of(row: &AuditRow) -> Option<&str> {
    row.details["probe"].as_str()
}

/// Whether a notice is due for `row` (the wake consumer's rule: a recovery
/// of an issue nobody was told about is not news).
fn needs_notice(row: &AuditRow) -> bool {
    NOTIFIED.contains(&row.seam.as_str())
        && !(row.seam == "probe.resolved" && row.details["woken"] == false)
}

/// `(wake seq → notification.sent rows for the world's notifier)`.
fn sent(rows: &[AuditRow]) -> HashMap<u64, usize> {
    let mut sent = HashMap::new();
    for row in rows {
        if row.seam == "notification.sent"
            && row.details["notifier"] == NOTIFIER
            && let Some(seq) = row.details["wake_seq"].as_u64()
        {
            *sent.entry(seq).or_default() += 1;
        }
    }
    sent
}

/// Whether every world probe's issue is resolved and every notice for the
/// world has been taken by its notifier (what the harness waits for).
pub fn world_settled(rows: &[AuditRow], targets: usize) -> bool {
    let mut open = vec![false; targets];
    for row in rows {
        let Some(index) = probe_of(row)
            .and_then(|p| p.strip_prefix('t'))
            .and_then(|i| i.parse::<usize>().ok())
        else {
            continue;
        };
        // Flapping is its own story (it settles on its own schedule); an
        // issue is open from its wake to its resolution.
        if let Some(open) = open.get_mut(index) {
            if row.seam == "probe.wake_requested" {
                *open = true;
            } else if row.seam == "probe.resolved" {
                *open = false;
            }
        }
    }
    let sent = sent(rows);
    !open.contains(&true)
        && rows
            .iter()
            .filter(|row| needs_notice(row))
            .all(|row| sent.contains_key(&row.seq))
}

/// Checks every invariant and the scenario's own expectations; reports all violations at once.
pub fn check(scenario: &Scenario, outcome: &Outcome) -> Result<(), ChaosError> {
    let mut violations = Vec::new();
    log_and_load(scenario, outcome, &mut violations);
    supervision(scenario, outcome, &mut violations);
    if let Some(world) = &outcome.world {
        issues_woken(world, &outcome.rows, &mut violations);
        notices_delivered(world, &outcome.rows, &mut violations);
        no_forbidden_fix(world, &outcome.rows, &mut violations);
        if world.fixes.len() < scenario.expect.min_fixes {
            violations.push(format!(
                "the fix endpoint was called {} time(s), expected at least {}",
                world.fixes.len(),
                scenario.expect.min_fixes
            ));
        }
        if world.tier_calls.len() < scenario.expect.min_tier_calls {
            violations.push(format!(
                "the escalation tier was called {} time(s), expected at least {}",
                world.tier_calls.len(),
                scenario.expect.min_tier_calls
            ));
        }
        if scenario.expect.stories_decided {
            stories_decided(&outcome.rows, &mut violations);
        }
        if !outcome.drained {
            violations.push(
                "Warden did not resolve every issue and deliver every notice within 60s of the world healing".to_owned(),
            );
        }
    }
    if outcome.max_rss_kib > scenario.expect.max_rss_mib * 1024 {
        violations.push(format!(
            "resident memory reached {} MiB, above {} MiB",
            outcome.max_rss_kib / 1024,
            scenario.expect.max_rss_mib
        ));
    }
    if outcome.max_backlog > scenario.expect.max_backlog {
        violations.push(format!(
            "a backlog reached {}, above {}",
            outcome.max_backlog, scenario.expect.max_backlog
        ));
    }
    if let Some(error) = &outcome.shutdown_error {
        violations.push(format!("the graceful stop failed: {error}"));
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ChaosError::Violated(violations))
    }
}

/// Gap-free seq, every acknowledged append present and unaltered, enough load.
fn log_and_load(scenario: &Scenario, outcome: &Outcome, violations: &mut Vec<String>) {
    let rows: BTreeMap<u64, &AuditRow> = outcome.rows.iter().map(|row| (row.seq, row)).collect();
    for (index, row) in outcome.rows.iter().enumerate() {
        if row.seq != index as u64 + 1 {
            violations.push(format!("seq gap: row {index} has seq {}", row.seq));
            break;
        }
    }
    for (seq, payload) in &outcome.acked {
        let held = rows.get(seq).map(|row| {
            // In-process appends are `chaos.append` rows; the binary's are
            // operator notes posted through the API.
            match row.seam.as_str() {
                "chaos.append" => row.details["payload"] == payload.as_str(),
                "operator.note" => row.details["text"] == payload.as_str(),
                _ => false,
            }
        });
        match held {
            None => violations.push(format!("acknowledged seq {seq} is missing")),
            Some(false) => violations.push(format!("acknowledged seq {seq} holds something else")),
            Some(true) => {}
        }
    }
    if outcome.acked.len() < scenario.expect.min_acked {
        violations.push(format!(
            "only {} appends acknowledged, expected at least {}",
            outcome.acked.len(),
            scenario.expect.min_acked
        ));
    }
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
}

/// Restarts match kills; meltdowns and process restarts happened as expected.
fn supervision(scenario: &Scenario, outcome: &Outcome, violations: &mut Vec<String>) {
    let count = |seam: &str| outcome.rows.iter().filter(|row| row.seam == seam).count();
    let meltdowns = count("service.meltdown");
    if let Some(expected) = scenario.expect.meltdowns
        && meltdowns != expected
    {
        violations.push(format!("{meltdowns} root meltdown(s), expected {expected}"));
    }
    let process_kills = outcome
        .landed
        .iter()
        .filter(|l| matches!(l, Landed::Process))
        .count();
    let kills = outcome
        .landed
        .iter()
        .filter(|l| matches!(l, Landed::Actor(_)))
        .count();
    if kills > 0 && count("supervision.exited") == 0 {
        violations.push("actors were killed but no supervision.exited row was written".to_owned());
    }
    // With no meltdown each kill of a root child is exactly one restart of
    // it (the root is one_for_one). A meltdown rebuilds the tree instead, so
    // there the count is not one for one.
    if meltdowns == 0 {
        for role in warden::chaos::ROLES {
            let killed = outcome
                .landed
                .iter()
                .filter(|l| matches!(l, Landed::Actor(r) if r == role))
                .count();
            let restarted = outcome
                .rows
                .iter()
                .filter(|row| row.seam == "supervision.restarted" && row.details["child"] == role)
                .count();
            // A kill -9 can take the row of a restart that had just
            // happened with it (supervision rows are not acknowledged
            // appends), at most one per process kill.
            // A kill just before the end of the round can leave its
            // restart scheduled (a backoff delay) when Warden stops: that
            // one is pending, not lost (kill-pipeline seed 20261396).
            let pending = outcome
                .rows
                .iter()
                .rfind(|row| {
                    row.details["child"] == role
                        && matches!(
                            row.seam.as_str(),
                            "supervision.restart_scheduled" | "supervision.restarted"
                        )
                })
                .is_some_and(|row| row.seam == "supervision.restart_scheduled");
            let lost = killed.saturating_sub(restarted + usize::from(pending));
            if restarted > killed || lost > process_kills {
                violations.push(format!(
                    "{role}: {killed} kill(s) landed but {restarted} restart(s) recorded"
                ));
            }
        }
    }
    let boots = count("service.boot");
    if boots != process_kills + 1 {
        violations.push(format!(
            "{process_kills} kill -9 of the process but {boots} boot(s) recorded (expected {})",
            process_kills + 1
        ));
    }
}

/// Every stretch in which a target was failing long enough to cross the
/// threshold (the ground truth) has its issue woken.
fn issues_woken(world: &WorldReport, rows: &[AuditRow], violations: &mut Vec<String>) {
    let spec = &world.spec;
    let per_check = Duration::from_millis(spec.interval_ms + spec.timeout_ms);
    let needed = per_check * (spec.failure_threshold + 1) + Duration::from_secs(1);
    for (index, episodes) in world.episodes.iter().enumerate() {
        let probe = format!("t{index}");
        let events: Vec<(SystemTime, bool)> = rows
            .iter()
            .filter(|row| probe_of(row) == Some(probe.as_str()))
            .filter_map(|row| {
                let opening = OPENING.contains(&row.seam.as_str())
                    || (row.seam == "probe.wake_suppressed"
                        && row.details["suppression"]["reason"] == "flapping");
                let closing = row.seam == "probe.resolved";
                (opening || closing).then_some((observed(row)?, opening))
            })
            .collect();
        for (start, end) in bad_stretches(episodes) {
            if end.duration_since(start).unwrap_or_default() < needed {
                continue;
            }
            let open_at_start = events
                .iter()
                .rev()
                .find(|(at, _)| *at < start)
                .is_some_and(|(_, opening)| *opening);
            let woken_during = events
                .iter()
                .any(|(at, opening)| *opening && *at >= start && *at <= end + WAKE_GRACE);
            if !open_at_start && !woken_during {
                violations.push(format!(
                    "{probe} failed for {:?} from {} and no issue was woken (lost)",
                    end.duration_since(start).unwrap_or_default(),
                    humantime::format_rfc3339_millis(start)
                ));
            }
        }
    }
}

/// Maximal runs of consecutive failing episodes.
fn bad_stretches(episodes: &[crate::world::Episode]) -> Vec<(SystemTime, SystemTime)> {
    let mut stretches: Vec<(SystemTime, SystemTime)> = Vec::new();
    let mut current: Option<(SystemTime, SystemTime)> = None;
    for episode in episodes {
        if episode.mode.is_bad() {
            current = Some(match current {
                Some((start, _)) => (start, episode.end),
                None => (episode.start, episode.end),
            });
        } else if let Some(stretch) = current.take() {
            stretches.push(stretch);
        }
    }
    stretches.extend(current);
    stretches
}

/// Each notice due reached the notifier, under its own idempotency key, and
/// the receiver got nothing that no wake row explains.
fn notices_delivered(world: &WorldReport, rows: &[AuditRow], violations: &mut Vec<String>) {
    let sent = sent(rows);
    let due: Vec<&AuditRow> = rows.iter().filter(|row| needs_notice(row)).collect();
    let mut missing = Vec::new();
    for row in &due {
        let key = format!("warden-{}", row.seq);
        if !sent.contains_key(&row.seq) || !world.received.contains_key(&key) {
            missing.push(format!("{} {}", row.seq, row.seam));
        }
    }
    if !missing.is_empty() {
        violations.push(format!(
            "{} of {} notices never reached the notifier: {}",
            missing.len(),
            due.len(),
            missing.join(", ")
        ));
    }
    // Escalation notices (`escalation.*` rows) use the same key scheme.
    let explained: std::collections::HashSet<String> = due
        .iter()
        .copied()
        .chain(
            rows.iter()
                .filter(|row| row.seam.starts_with("escalation.")),
        )
        .map(|row| format!("warden-{}", row.seq))
        .collect();
    let phantom: Vec<&String> = world
        .received
        .keys()
        .filter(|key| {
            key.strip_prefix("warden-")
                .is_some_and(|n| n.parse::<u64>().is_ok())
                && !explained.contains(*key)
        })
        .collect();
    if !phantom.is_empty() {
        violations.push(format!(
            "the notifier received notices no wake row explains: {phantom:?}"
        ));
    }
}

/// The fix envelope never ran while disabled, and neither a fix nor an
/// escalation tier was called after Warden paused.
fn no_forbidden_fix(world: &WorldReport, rows: &[AuditRow], violations: &mut Vec<String>) {
    if !world.spec.fix && !world.fixes.is_empty() {
        violations.push(format!(
            "the fix envelope is disabled but the fix endpoint was called {} time(s)",
            world.fixes.len()
        ));
    }
    let paused = rows
        .iter()
        .find(|row| row.seam == "service.meltdown")
        .and_then(ts);
    if let Some(paused) = paused {
        for (what, calls) in [("fix", &world.fixes), ("tier", &world.tier_calls)] {
            let late = calls.iter().filter(|at| **at > paused + FIX_GRACE).count();
            if late > 0 {
                violations.push(format!(
                    "{late} {what} call(s) arrived after Warden paused at {}",
                    humantime::format_rfc3339_millis(paused)
                ));
            }
        }
    }
}

/// The component every world probe belongs to (`harness.rs`).
const WORLD_COMPONENT: &str = "world";

/// Whether `seam` is a cycle's work (any escalation row but the boot
/// snapshots, which no cycle writes).
fn escalation_step(seam: &str) -> bool {
    seam.starts_with("escalation.") && !seam.starts_with("escalation.snapshot")
}

/// Whatever was killed in the middle of a story (the incident commander,
/// a coordinator, the escalation intake), every story reaches its
/// decisions: no story opens a second incident on a replay, and every wake
/// of the world's component is followed by its coordinator's work (a cycle
/// running at the time of the wake ends after it, so it leaves a row after
/// it too), unless automation stopped for the component before the wake.
fn stories_decided(rows: &[AuditRow], violations: &mut Vec<String>) {
    let mut opened: HashMap<&str, usize> = HashMap::new();
    for row in rows.iter().filter(|r| r.seam == "incident.opened") {
        if let Some(session) = row.caller_session_id.as_deref() {
            *opened.entry(session).or_default() += 1;
        }
    }
    for (session, n) in opened {
        if n > 1 {
            violations.push(format!("story {session} opened {n} incidents"));
        }
    }
    let world = |r: &&AuditRow| r.component.as_deref() == Some(WORLD_COMPONENT);
    let stopped = rows
        .iter()
        .filter(world)
        .find(|r| r.seam == "escalation.automation_stopped")
        .map_or(u64::MAX, |r| r.seq);
    let last_step = rows
        .iter()
        .filter(world)
        .filter(|r| escalation_step(&r.seam))
        .map(|r| r.seq)
        .max()
        .unwrap_or(0);
    for wake in rows.iter().filter(world).filter(|r| {
        r.seam == "probe.wake_requested" && r.details["kind"] == "fired" && r.seq < stopped
    }) {
        if last_step < wake.seq {
            violations.push(format!(
                "wake {} ({}) was never taken up by the escalation coordinator",
                wake.seq,
                wake.caller_session_id.as_deref().unwrap_or("no story")
            ));
        }
    }
}
