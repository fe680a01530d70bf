//! What keeps the state directory from filling the disk: each configuration
//! version stored once by digest ([`config_versions`]), retention of audit
//! segments and resolved incidents ([`retention`]), and the disk-use figures
//! shown on `/metrics` ([`disk_use`]).

pub mod config_versions;
pub mod disk_use;
pub mod retention;

pub use config_versions::{StoredConfig, store_config};
pub use disk_use::{DiskUse, measure};
pub use retention::{RetentionPolicy, RetentionReport, run_retention};
