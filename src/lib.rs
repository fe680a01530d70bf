//! Warden: an actor-based supervision service.
//!
//! # Layout
//! - [`settings`]: typed configuration, layered loading, validation.
//! - [`audit`]: the append-only audit log, Warden's source of truth.

pub mod audit;
pub mod settings;
