//! `[[components]]`: named groups of probes that heal and escalate together,
//! optionally a process Warden runs itself (`run`), with the self-heal
//! envelope (`[components.fix]`), the escalation tiers
//! (`[[components.tiers]]`), the files restored when the ladder is
//! exhausted (`rollback.snapshot`) and the files a tier may patch (`patch`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use serde::{Deserialize, Serialize};

use super::{RestartSettings, SecretMap, SecretUrl};

/// How much a component matters; incidents use it for severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    /// Nice to have.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Users notice quickly.
    High,
    /// Down means the service is down.
    Critical,
}

/// One component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComponentSettings {
    /// Unique name. Required.
    pub name: String,
    /// What the component is, for operators reading notices.
    pub description: Option<String>,
    /// Names of the probes that watch this component; each must exist.
    pub probes: Vec<String>,
    /// Components this one needs; each must exist, and cycles are rejected.
    pub depends_on: Vec<String>,
    /// How much it matters (`low`, `normal`, `high`, `critical`). Default `normal`.
    pub criticality: Criticality,
    /// A process Warden runs and restarts itself (argv, no shell). Empty: not managed.
    pub run: Vec<String>,
    /// Extra environment for `run`; the values are secret.
    pub env: SecretMap,
    /// Extra environment for `run` whose values are read from files
    /// (name → path; surrounding whitespace ignored).
    pub env_files: BTreeMap<String, PathBuf>,
    /// Whether `run` inherits Warden's environment (minus its `WARDEN__*`
    /// variables, which no child sees). False: only `env` plus `PATH`.
    /// Default true.
    pub inherit_env: bool,
    /// Working directory for `run`. Default: Warden's own.
    pub cwd: Option<PathBuf>,
    /// Signal that asks the process to stop (`TERM`, `INT`, `HUP`, `QUIT`, `USR1`, `USR2`). Default `TERM`.
    pub stop_signal: String,
    /// Time between the stop signal and SIGKILL. Default `10s`.
    #[serde(with = "humantime_serde")]
    pub stop_timeout: Duration,
    /// How long a managed component waits at boot for its `depends_on` to be
    /// healthy before it starts anyway. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// The managed process's restart ladder; unset keys take
    /// [`RestartSettings::managed`], not the `[supervision]` defaults.
    #[serde(deserialize_with = "super::restart::managed")]
    pub restart: RestartSettings,
    /// Size at which the process's captured output rotates. Default `10MiB`.
    pub log_max_bytes: ByteSize,
    /// Rotated output files kept. Default 5.
    pub log_files: u32,
    /// Escalations (fix attempts and tier calls) in one cycle after which the
    /// operator is warned. Default 1.
    pub warning_threshold: u32,
    /// Attempts across all rungs before the final tier (the last of `tiers`)
    /// is engaged; 0 never engages it. Default 9.
    pub final_tier_threshold: u32,
    /// Last-known-good snapshot restored when the ladder is exhausted.
    pub rollback: RollbackSettings,
    /// Where a tier's `patch` may write. Empty (the default): patches are refused.
    pub patch: PatchSettings,
    /// The self-heal envelope.
    pub fix: FixSettings,
    /// Escalation tiers, in order; the last one is the final tier.
    pub tiers: Vec<TierSettings>,
}

impl Default for ComponentSettings {
    fn default() -> Self {
        Self {
            name: String::new(),
            description: None,
            probes: Vec::new(),
            depends_on: Vec::new(),
            criticality: Criticality::Normal,
            run: Vec::new(),
            env: SecretMap::new(),
            env_files: BTreeMap::new(),
            inherit_env: true,
            cwd: None,
            stop_signal: "TERM".to_owned(),
            stop_timeout: Duration::from_secs(10),
            start_timeout: Duration::from_secs(30),
            restart: RestartSettings::managed(),
            log_max_bytes: ByteSize::mib(10),
            log_files: 5,
            warning_threshold: 1,
            final_tier_threshold: 9,
            rollback: RollbackSettings::default(),
            patch: PatchSettings::default(),
            fix: FixSettings::default(),
            tiers: Vec::new(),
        }
    }
}

impl ComponentSettings {
    /// Whether Warden runs this component's process.
    pub fn is_managed(&self) -> bool {
        !self.run.is_empty()
    }
}

/// Files restored when the ladder is exhausted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RollbackSettings {
    /// Files copied at boot and restored byte for byte on exhaustion.
    pub snapshot: Vec<PathBuf>,
}

/// `[components.patch]`: the files a tier's answer may rewrite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PatchSettings {
    /// Globs of absolute paths (`*` stays within one directory, `**` spans
    /// several). A patch writing anywhere else is refused; empty refuses every patch.
    pub paths: Vec<String>,
    /// The most content one patch may write, all files together. Default `1MiB`.
    pub max_bytes: ByteSize,
}

impl Default for PatchSettings {
    fn default() -> Self {
        Self {
            paths: Vec::new(),
            max_bytes: ByteSize::mib(1),
        }
    }
}

/// What a fix does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    /// Restart the managed process (`run` required).
    Restart,
    /// Run an argv (`command` required).
    Command,
    /// Send an HTTP request (`url` required).
    Http,
}

impl FixKind {
    /// The kind as written in the configuration (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            FixKind::Restart => "restart",
            FixKind::Command => "command",
            FixKind::Http => "http",
        }
    }
}

/// `[components.fix].action`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixActionSettings {
    /// `restart`, `command` or `http`. Required when the envelope is enabled.
    pub kind: Option<FixKind>,
    /// `command`: the argv.
    pub command: Vec<String>,
    /// `http`: the URL.
    pub url: Option<String>,
    /// `http`: the method. Default `POST`.
    pub method: Option<String>,
    /// `http`: extra headers; the values are secret.
    pub headers: SecretMap,
    /// `http`: extra headers whose values are read from files (name → path).
    pub headers_files: BTreeMap<String, PathBuf>,
    /// `http`: the body.
    pub body: Option<String>,
    /// Longest the action may take. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

/// `[components.fix]`: the self-heal envelope. Off unless enabled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FixSettings {
    /// Whether the fix may run at all. Default false (fail closed).
    pub enabled: bool,
    /// What the fix does.
    pub action: FixActionSettings,
    /// Fix attempts per issue before escalating to the tiers. Default 1.
    pub attempts: u32,
    /// The same fix never runs again on the component within this. Default `10m`.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    /// How long to wait for the component's probes to be healthy after a fix. Default `30s`.
    #[serde(with = "humantime_serde")]
    pub verify_timeout: Duration,
}

impl Default for FixSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            action: FixActionSettings::default(),
            attempts: 1,
            cooldown: Duration::from_secs(600),
            verify_timeout: Duration::from_secs(30),
        }
    }
}

impl FixSettings {
    /// The envelope's state as operators are told when an issue wakes:
    /// `enabled` (it will run unless a hold stops it), `disabled` (an action
    /// is configured but switched off) or `absent` (no action configured).
    pub fn status(&self) -> &'static str {
        match (self.action.kind.is_some(), self.enabled) {
            (false, _) => "absent",
            (true, false) => "disabled",
            (true, true) => "enabled",
        }
    }

    /// What the fix does, in a few words (`restart the managed process`,
    /// `run /usr/bin/reset-cache`, `send POST to http://127.0.0.1:9000`).
    /// Only the program and the URL's origin: arguments, paths and query
    /// strings can carry secrets.
    pub fn describe(&self) -> Option<String> {
        let action = &self.action;
        match action.kind? {
            FixKind::Restart => Some("restart the managed process".to_owned()),
            FixKind::Command => Some(match action.command.first() {
                Some(program) => format!("run {program}"),
                None => "run a command".to_owned(),
            }),
            FixKind::Http => {
                let method = action
                    .method
                    .as_deref()
                    .unwrap_or("POST")
                    .to_ascii_uppercase();
                let origin = action
                    .url
                    .as_deref()
                    .and_then(|url| reqwest::Url::parse(url).ok())
                    .map(|url| url.origin().ascii_serialization())
                    .filter(|origin| origin != "null");
                Some(match origin {
                    Some(origin) => format!("send {method} to {origin}"),
                    None => format!("send an HTTP {method}"),
                })
            }
        }
    }
}

/// What a tier is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierKind {
    /// POST the escalation context to `url`; the answer says fixed, rejected or in progress.
    Webhook,
    /// Page through a configured notifier (`notifier` names it).
    Notifier,
}

impl TierKind {
    /// The kind as written in the configuration (its serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            TierKind::Webhook => "webhook",
            TierKind::Notifier => "notifier",
        }
    }
}

/// `[[components.tiers]]`: one step of the escalation ladder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierSettings {
    /// Name, in audit rows and notices. Required.
    pub name: String,
    /// `webhook` or `notifier`. Required.
    pub kind: Option<TierKind>,
    /// `webhook`: where to POST. Its userinfo and query are secret; `https`
    /// unless the host is loopback or `allow_insecure_http` is set.
    pub url: Option<SecretUrl>,
    /// `webhook`: a file holding `url` (surrounding whitespace ignored).
    pub url_file: Option<PathBuf>,
    /// `webhook`: extra request headers (e.g. `Authorization`); the values
    /// are secret.
    pub headers: SecretMap,
    /// `webhook`: extra request headers whose values are read from files
    /// (name → path; surrounding whitespace ignored).
    pub headers_files: BTreeMap<String, PathBuf>,
    /// `webhook`: a file holding a bearer token, sent as
    /// `Authorization: Bearer <token>`.
    pub bearer_token_file: Option<PathBuf>,
    /// `webhook`: allow plain `http` to a non-loopback host. Default false.
    pub allow_insecure_http: bool,
    /// `notifier`: the notifier's name.
    pub notifier: Option<String>,
    /// Calls to this tier per cycle before moving up. Default 1.
    pub attempts: Option<u32>,
    /// Longest one call may take. Default `60s`.
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
    /// Whether the tier is called. Default false for webhooks (they can act),
    /// true for notifiers (they only page).
    pub enabled: Option<bool>,
}

impl TierSettings {
    /// Attempts per cycle.
    pub fn attempts(&self) -> u32 {
        self.attempts.unwrap_or(1)
    }

    /// Call timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Duration::from_secs(60))
    }

    /// Whether the tier is enabled, with the per-kind default.
    pub fn is_enabled(&self) -> bool {
        self.enabled
            .unwrap_or(self.kind == Some(TierKind::Notifier))
    }
}
