//! Warden: an actor-based supervision service.
//!
//! # Layout
//! - [`settings`]: typed configuration, layered loading, validation.
//! - [`audit`]: the append-only audit log, Warden's source of truth.
//! - [`control`]: operational state (RUNNING / PAUSED / STOPPED) and boot gates.
//! - [`telemetry`]: logging setup.
//! - [`notify`]: notifiers (log, webhook, Slack, PagerDuty) and delivery retries.
//! - [`incidents`]: the incident commander: severity, evidence, timeline, cadence, postmortem.
//! - [`investigate`]: investigators that write the summary sent with a wake.
//! - [`api`]: the HTTP API (axum) and the actor that serves it.
//! - [`app`]: the supervision tree, boot gates and process lifecycle.

pub mod api;
pub mod app;
pub mod audit;
pub mod control;
pub mod debounce;
pub mod incidents;
pub mod investigate;
pub mod messages;
pub mod notify;
pub mod probes;
pub mod settings;
pub mod telemetry;
pub mod wake;
