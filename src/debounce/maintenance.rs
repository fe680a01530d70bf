//! Maintenance windows (being built on a branch).

use crate::settings::MaintenanceSettings;

/// Problems with a window's definition, as (key, message). Placeholder.
pub fn check(_window: &MaintenanceSettings) -> Vec<(String, String)> {
    Vec::new()
}
