//! Process-group records: which groups this incarnation of Warden started,
//! so the next one can stop them after a crash.
//!
//! Every managed process runs in its own process group. While it runs, its
//! record `<state_dir>/managed/<component>.json` (0600) holds the leader's
//! pid (= the pgid), its start time (field 22 of `/proc/<pid>/stat`, clock
//! ticks since boot) and the kernel's boot id; the record is removed when
//! the process has been reaped. A record still there at boot means the
//! previous Warden died without stopping its children: [`stop_previous`]
//! stops each such group (stop signal, then SIGKILL after the grace) before
//! anything new is spawned.
//!
//! A pid can be reused, so a group is signalled only when it is provably
//! ours: same boot, and either the leader is alive with the recorded start
//! time, or the leader is gone and every member started no earlier than it.
//! Linux never hands out a pid that is still some group's id, so a group
//! whose leader has exited cannot have been replaced while members remain.
//! The check runs again before the SIGKILL.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Folder of the records under the state dir.
pub const RECORDS_DIR: &str = "managed";

/// How often the group is looked at while it is given time to stop.
const POLL: Duration = Duration::from_millis(50);

/// How long a SIGKILLed group may take to disappear.
const KILL_GRACE: Duration = Duration::from_secs(2);

/// One running group, as written to disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The leader's pid, which is also the process group id.
    pub(crate) pgid: i32,
    /// The leader's start time in clock ticks since boot.
    pub(crate) start_time: u64,
    /// `/proc/sys/kernel/random/boot_id` when it started.
    pub(crate) boot_id: String,
    /// The component's stop signal (`TERM`, …).
    pub(crate) stop_signal: String,
    /// Grace between the stop signal and SIGKILL, in milliseconds.
    pub(crate) stop_timeout_ms: u64,
}

/// What [`stop_previous`] did with one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviousGroup {
    /// The component the record belongs to.
    pub component: String,
    /// The recorded process group.
    pub pgid: i32,
    /// `stopped`, `killed` (ignored the stop signal), `gone` (nothing of it
    /// was left), `not_ours` (the pid now belongs to another process),
    /// `survived` (still there after SIGKILL) or `unreadable` (the record
    /// could not be parsed; nothing was signalled).
    pub outcome: &'static str,
}

/// Path of `component`'s record under `dir`.
pub(crate) fn path(dir: &Path, component: &str) -> PathBuf {
    dir.join(format!("{component}.json"))
}

/// The fields of `/proc/<pid>/stat` a record needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub(crate) pgrp: i32,
    pub(crate) start_time: u64,
    pub(crate) zombie: bool,
}

/// Reads `/proc/<pid>/stat`. `None` when the process is gone.
pub(crate) fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses a stat line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field n is fields[n - 3].
    let state = *fields.first()?;
    let pgrp = fields.get(2)?.parse().ok()?;
    let start_time = fields.get(19)?.parse().ok()?;
    Some(Stat {
        pgrp,
        start_time,
        zombie: state == "Z" || state == "X",
    })
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|id| id.trim().to_owned())
        .unwrap_or_default()
}

/// Writes the record of a group just started. The write is atomic (temp
/// file then rename) and the file is 0600 in a 0700 dir.
pub(crate) fn write(
    dir: &Path,
    component: &str,
    pid: u32,
    stop_signal: &str,
    stop_timeout: Duration,
) -> std::io::Result<()> {
    let pgid = i32::try_from(pid).map_err(std::io::Error::other)?;
    let Some(Stat { start_time, .. }) = stat(pgid) else {
        // Exited and reaped already: its exit is on its way to the actor,
        // and there is no group left to record.
        return Ok(());
    };
    let record = Record {
        pgid,
        start_time,
        boot_id: boot_id(),
        stop_signal: stop_signal.to_owned(),
        stop_timeout_ms: super::millis(stop_timeout),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let target = path(dir, component);
    // Ends in `.tmp`, so `stop_previous` never reads a half-written one.
    let temp = dir.join(format!("{component}.json.tmp"));
    let _ = std::fs::remove_file(&temp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(&serde_json::to_vec(&record).map_err(std::io::Error::other)?)?;
    // No fsync: a record matters only across a crash of Warden, which the
    // page cache survives; a crash of the machine ends the group anyway.
    std::fs::rename(&temp, &target)
}

/// Removes `component`'s record (its group is gone).
pub(crate) fn remove(dir: &Path, component: &str) {
    let _ = std::fs::remove_file(path(dir, component));
}

/// The live members of process group `pgid`, with their stats.
fn members(pgid: i32) -> Vec<(i32, Stat)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, stat)| stat.pgrp == pgid && !stat.zombie)
        .collect()
}

/// Whether the group in `record` still exists (`Some`) and is provably the
/// one Warden started (`Some(true)`).
fn ours(record: &Record) -> Option<bool> {
    let members = members(record.pgid);
    if members.is_empty() {
        return None;
    }
    if record.boot_id != boot_id() {
        return Some(false);
    }
    Some(match members.iter().find(|(pid, _)| *pid == record.pgid) {
        Some((_, leader)) => leader.start_time == record.start_time,
        None => members
            .iter()
            .all(|(_, member)| member.start_time >= record.start_time),
    })
}

/// Stops one recorded group: its stop signal, up to the recorded grace,
/// then SIGKILL. Verifies the group before each signal.
async fn stop_group(record: &Record) -> &'static str {
    // Never our own group, init's, or a nonsensical id.
    let own = nix::unistd::getpgrp().as_raw();
    if record.pgid <= 1 || record.pgid == own {
        return "not_ours";
    }
    match ours(record) {
        None => return "gone",
        Some(false) => return "not_ours",
        Some(true) => {}
    }
    let pgid = Pid::from_raw(record.pgid);
    let signal = super::process::parse_signal(&record.stop_signal).unwrap_or(Signal::SIGTERM);
    let _ = killpg(pgid, signal);
    if wait_gone(record, Duration::from_millis(record.stop_timeout_ms)).await {
        return "stopped";
    }
    match ours(record) {
        None => return "stopped",
        Some(false) => return "not_ours",
        Some(true) => {}
    }
    let _ = killpg(pgid, Signal::SIGKILL);
    if wait_gone(record, KILL_GRACE).await {
        "killed"
    } else {
        "survived"
    }
}

async fn wait_gone(record: &Record, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if members(record.pgid).is_empty() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Stops every group recorded under `dir` by a previous incarnation and
/// removes the records. Groups are stopped concurrently; this returns when
/// all are gone or were given up on. Unreadable records are removed and
/// reported as `unreadable`.
pub async fn stop_previous(dir: &Path) -> Vec<PreviousGroup> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut tasks = tokio::task::JoinSet::new();
    for entry in entries.flatten() {
        let file = entry.path();
        let Some(component) = file
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".json"))
            .map(str::to_owned)
        else {
            continue;
        };
        let record = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Record>(&bytes).ok());
        tasks.spawn(async move {
            let (pgid, outcome) = match &record {
                Some(record) => (record.pgid, stop_group(record).await),
                None => (0, "unreadable"),
            };
            let _ = std::fs::remove_file(&file);
            PreviousGroup {
                component,
                pgid,
                outcome,
            }
        });
    }
    let mut done = Vec::new();
    while let Some(result) = tasks.join_next().await {
        if let Ok(group) = result {
            done.push(group);
        }
    }
    done.sort_by(|a, b| a.component.cmp(&b.component));
    done
}

#[cfg(test)]
mod tests;
