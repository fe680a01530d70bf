//! Typed configuration: the structs every config key deserialises into, the
//! layered loader (defaults in code → one TOML file → `WARDEN__*` environment)
//! and the validation pass behind `warden check-config`.
//!
//! Every section struct is `#[serde(deny_unknown_fields, default)]` with an
//! explicit `Default`, so a key that is absent takes its documented default and
//! a key that is misspelt is an error that names it. The one exception is the
//! restart policy ([`RestartSettings`], in `restart.rs`), shared by
//! `[supervision]` and `components[].restart` with a default set for each: it
//! and `[supervision]` deserialise by hand to the same effect. Loading never stops at the
//! first problem: [`load`] collects every bad key, bad value and broken
//! cross-reference, each with its key path, so an operator fixes a file in one
//! pass instead of one error per run.

mod audit;
mod chaos;
mod cluster;
mod components;
mod debounce;
mod dr;
mod incidents;
mod investigator;
mod load;
mod maintenance;
mod notifiers;
mod probes;
mod restart;
mod seal;
mod secret;
mod service;
mod sources;
mod supervision;
mod telemetry;
mod validate;
mod wake;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use audit::AuditSettings;
pub use chaos::ChaosSettings;
pub use cluster::{ClusterKind, ClusterSettings};
pub use components::{
    ComponentSettings, Criticality, FixActionSettings, FixKind, FixSettings, PatchSettings,
    RollbackSettings, TierKind, TierSettings,
};
pub use debounce::{DebounceOverride, DebounceSettings};
pub use dr::DrSettings;
pub use incidents::{CadenceSettings, IncidentSettings};
pub use investigator::{InvestigatorKind, InvestigatorSettings};
pub use load::{ConfigSource, DEFAULT_CONFIG, load, load_with_env};
pub use maintenance::MaintenanceSettings;
pub use notifiers::{MATCH_LABELS, Matcher, NotifierKind, NotifierSettings};
pub use probes::{ProbeDefaults, ProbeKind, ProbeSettings, Severity};
pub use restart::RestartSettings;
pub use seal::{seal as seal_config_text, unseal as unseal_config_text};
pub use secret::{
    REDACTED, Secret, SecretFileError, SecretMap, SecretUrl, inline_or_file, read_secret,
    redact_url, scrub,
};
pub use service::ServiceSettings;
pub use supervision::SupervisionSettings;
pub use telemetry::{LogFormat, OtlpProtocol, TelemetrySettings};
pub use validate::Problem;
pub(crate) use validate::Problems;
pub use wake::WakeSettings;

/// The whole configuration of one Warden instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Process-level settings: state directory, API listener, operator token.
    pub service: ServiceSettings,
    /// The durable audit log.
    pub audit: AuditSettings,
    /// Logging (and, later, trace export).
    pub telemetry: TelemetrySettings,
    /// Restart policy of Warden's own supervision tree.
    pub supervision: SupervisionSettings,
    /// Defaults applied to every probe that does not set its own value.
    pub probe_defaults: ProbeDefaults,
    /// When failing observations become issues and wakes.
    pub debounce: DebounceSettings,
    /// The probes: what Warden watches. Empty by default.
    pub probes: Vec<ProbeSettings>,
    /// Components: named groups of probes that heal and escalate together.
    pub components: Vec<ComponentSettings>,
    /// Maintenance windows: issues inside one are recorded, not woken.
    pub maintenance: Vec<MaintenanceSettings>,
    /// The wake consumer: issue rows to investigation and notices.
    pub wake: WakeSettings,
    /// Notifiers: where notices about issues are delivered.
    pub notifiers: Vec<NotifierSettings>,
    /// Who writes the summary in a wake, and how much it may spend.
    pub investigator: InvestigatorSettings,
    /// Disaster recovery: the known DR epoch, kept outside the state dir.
    pub dr: DrSettings,
    /// The incident commander: severity, update cadence, freezes, resolution.
    pub incidents: IncidentSettings,
    /// The chaos suite's fault-injection surface (off).
    pub chaos: ChaosSettings,
    /// Single node (default) or a cluster on NATS JetStream.
    pub cluster: ClusterSettings,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        /// The file that was asked for.
        path: std::path::PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or the sources could not be merged.
    #[error("cannot parse configuration: {0}")]
    Parse(String),
    /// The configuration parsed but has problems; every one is listed.
    #[error("invalid configuration ({} problem(s))", .0.len())]
    Invalid(Vec<Problem>),
}

impl SettingsError {
    /// Every problem as one line each, ready to print to an operator.
    pub fn lines(&self) -> Vec<String> {
        match self {
            SettingsError::Invalid(problems) => problems.iter().map(ToString::to_string).collect(),
            other => vec![other.to_string()],
        }
    }
}

impl Settings {
    /// A one-line summary for `check-config` and the boot log.
    pub fn summary(&self) -> String {
        format!(
            "{} probe(s), {} component(s), state_dir {}, api {}",
            self.probes.len(),
            self.components.len(),
            self.service.state_dir.display(),
            self.service.api_listen,
        )
    }
}
