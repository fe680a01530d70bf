//! `[[probes]]` and `[probe_defaults]`: what Warden watches and how often.
//!
//! One flat table per probe with a `kind` tag. Fields that only some kinds use
//! are optional here, and each kind's own file under `src/probes/` says which
//! of them it reads and checks them: that gives clearer errors than a serde
//! enum (and serde cannot combine `flatten` with `deny_unknown_fields`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::{DebounceOverride, SecretMap};
pub use crate::messages::Severity;

/// Declares [`ProbeKind`] from one list, so a kind's configuration name is
/// written once: its serde name, [`ProbeKind::as_str`] and [`ProbeKind::ALL`]
/// all come from the same line.
macro_rules! probe_kinds {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)+) => {
        /// The kinds of probe. What each one reads, checks and runs lives in
        /// its own file under `src/probes/`, registered in `src/probes.rs`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum ProbeKind {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)+
        }

        impl ProbeKind {
            /// Every kind, in the order the documentation lists them.
            pub const ALL: &'static [ProbeKind] = &[$(ProbeKind::$variant),+];

            /// The kind as written in the configuration (its serde name), for
            /// messages, the API and metrics. Debug output is not a name:
            /// `CredentialExpiry` would read `credentialexpiry`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ProbeKind::$variant => $name,)+
                }
            }
        }
    };
}

probe_kinds! {
    /// An HTTP(S) request; `url` required.
    Http = "http",
    /// A TCP connect; `address` (`host:port`) required.
    Tcp = "tcp",
    /// A local command; `command` (argv) required.
    Command = "command",
    /// A dead-man switch the watched service pushes to; `max_silence` required.
    Heartbeat = "heartbeat",
    /// A credential's expiry date; `expires_at` required.
    CredentialExpiry = "credential_expiry",
    /// A DNS query for one record type of one name; `query` required.
    Dns = "dns",
}

/// Defaults for every probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeDefaults {
    /// Time between two checks of a probe. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Longest a single check may take. Default `5s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ProbeDefaults {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

/// One probe.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeSettings {
    /// Unique name; appears in issues, metrics and `/api/probes/<name>`. Required.
    pub name: String,
    /// The probe kind. Required.
    pub kind: Option<ProbeKind>,
    /// The component this probe belongs to. Default: the probe's own name.
    pub component: Option<String>,
    /// Overrides `probe_defaults.interval`. At least `100ms`.
    #[serde(with = "humantime_serde")]
    pub interval: Option<Duration>,
    /// Overrides `probe_defaults.timeout`. Must be shorter than the interval.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Severity of the issue raised when unhealthy. Default `critical`.
    pub severity: Severity,
    /// Category of the issue raised when unhealthy. Default `service_unhealthy`
    /// (`credential_expired` for kind credential_expiry).
    pub category: Option<String>,
    /// Category of the issue raised when degraded. Default `service_degraded`
    /// (`credential_expiring` for kind credential_expiry).
    pub degraded_category: Option<String>,
    /// Per-probe overrides of `[debounce]`.
    pub debounce: DebounceOverride,
    /// Conditions that make an observation unhealthy, e.g. `status != 200`.
    pub unhealthy_if: Vec<String>,
    /// Conditions that make an observation degraded, e.g. `latency > 500ms`.
    pub degraded_if: Vec<String>,
    /// `http`: the URL to request.
    pub url: Option<String>,
    /// `http`: the method. Default `GET`.
    pub method: Option<String>,
    /// `http`: extra request headers; the values are secret.
    pub headers: SecretMap,
    /// `http`: extra request headers whose values are read from files
    /// (name → path; surrounding whitespace ignored).
    pub headers_files: BTreeMap<String, std::path::PathBuf>,
    /// `http`: request body.
    pub body: Option<String>,
    /// `http`: the expected status code. Default: any 2xx.
    pub expect_status: Option<u16>,
    /// `http`: most of the response body read (the rest is discarded). Default `64KiB`.
    pub max_body_bytes: Option<ByteSize>,
    /// `http`: redirects followed before giving up. Default 5; 0 disables following.
    pub max_redirects: Option<u32>,
    /// `tcp`: `host:port` to connect to.
    pub address: Option<String>,
    /// `command`: the argv to run (no shell unless you write one).
    pub command: Vec<String>,
    /// `heartbeat`: longest gap between two heartbeats before the probe is unhealthy.
    #[serde(with = "humantime_serde")]
    pub max_silence: Option<Duration>,
    /// `credential_expiry`: when the credential expires, RFC 3339.
    pub expires_at: Option<String>,
    /// `credential_expiry`: a file whose content is the RFC 3339 expiry.
    pub expires_at_file: Option<std::path::PathBuf>,
    /// `credential_expiry`: an environment variable holding the RFC 3339 expiry.
    pub expires_at_env: Option<String>,
    /// `credential_expiry`: days before expiry at which to warn. Default `[30, 14, 7, 1]`.
    pub alert_days: Option<Vec<u32>>,
    /// `dns`: the name to resolve, e.g. `example.com`; asked as written,
    /// without search domains.
    pub query: Option<String>,
    /// `dns`: the record type to ask for: `A`, `AAAA`, `CNAME` or `TXT`.
    /// Default `A`.
    pub record: Option<String>,
    /// `dns`: the server to ask, `ip:port` (or `ip`, port 53). Default: the
    /// system's name servers from `/etc/resolv.conf`.
    pub server: Option<String>,
    /// `heartbeat`: a file holding the token a heartbeat must present as
    /// `Authorization: Bearer <token>`; without it any local client may beat.
    /// Default: none.
    pub token_file: Option<std::path::PathBuf>,
}

impl ProbeSettings {
    /// The component this probe reports under.
    pub fn component_name(&self) -> &str {
        self.component.as_deref().unwrap_or(&self.name)
    }
}
