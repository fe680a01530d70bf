//! Open-file budget: the soft `RLIMIT_NOFILE` is raised to the hard limit at
//! start (systemd's default soft limit of 1024 is far below what one host
//! allows), and the API's connection cap is kept below that limit minus a
//! reserve, so a flood of clients can never take the descriptors that probes,
//! managed processes and the audit log need.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

use crate::settings::Settings;

/// Descriptors kept back for everything but client connections: the audit
/// log and its directory, cursors, incident files, the listener, the OTLP
/// exporter, the runtime's own.
const RESERVE_BASE: u64 = 128;
/// Per probe: a command probe's child holds a pipe pair while it runs, an
/// HTTP or TCP probe a socket.
const RESERVE_PER_PROBE: u64 = 3;
/// Per component: a managed process's pipes and its log file, a fix's child.
const RESERVE_PER_COMPONENT: u64 = 6;
/// The cap never drops below this, however tight the limit.
const MIN_CONNECTIONS: u64 = 8;

/// Raises the soft open-file limit to the hard one; returns the soft limit
/// in force afterwards (`None` if it cannot be read).
pub(super) fn raise_nofile_limit() -> Option<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to = hard, "Raised the open-file limit.");
                return Some(hard);
            }
            Err(error) => {
                tracing::warn!(soft, hard, error = %error, "Could not raise the open-file limit.");
            }
        }
    }
    Some(soft)
}

/// The descriptors the rest of Warden may need, given its configuration.
pub(super) fn reserve(settings: &Settings) -> u64 {
    let probes = u64::try_from(settings.probes.len()).unwrap_or(u64::MAX);
    let components = u64::try_from(settings.components.len()).unwrap_or(u64::MAX);
    RESERVE_BASE
        .saturating_add(probes.saturating_mul(RESERVE_PER_PROBE))
        .saturating_add(components.saturating_mul(RESERVE_PER_COMPONENT))
}

/// `service.max_connections`, lowered to fit `limit - reserve` (with a
/// warning) so accepted clients cannot starve the reserve.
pub(super) fn connection_cap(configured: usize, limit: Option<u64>, reserve: u64) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let room = limit.saturating_sub(reserve).max(MIN_CONNECTIONS);
    let configured_u64 = u64::try_from(configured).unwrap_or(u64::MAX);
    if configured_u64 <= room {
        return configured;
    }
    tracing::warn!(
        configured,
        open_file_limit = limit,
        reserve,
        cap = room,
        "service.max_connections does not fit the open-file limit minus the reserve for probes and the audit log; lowering it."
    );
    usize::try_from(room).unwrap_or(configured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_the_reserve_free() {
        assert_eq!(connection_cap(512, Some(1024), 200), 512);
        assert_eq!(connection_cap(512, Some(600), 200), 400);
        assert_eq!(connection_cap(512, Some(100), 200), 8);
        assert_eq!(connection_cap(512, None, 200), 512);
    }
}
