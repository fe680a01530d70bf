//! `[[components]]`: named groups of probes that heal and escalate together.

use serde::{Deserialize, Serialize};

/// One component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}
