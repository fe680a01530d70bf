//! Warden: an actor-based supervision service.
//!
//! # Layout
//! - [`settings`]: typed configuration, layered loading, validation.
//! - [`audit`]: the append-only audit log, Warden's source of truth.
//! - [`control`]: operational state (RUNNING / PAUSED / STOPPED), the boot gates in order, the DR
//!   epoch and which configuration a boot runs on (operator's or last-known-good).
//! - [`telemetry`]: logging setup.
//! - [`escalation`]: the intake that reads issue rows after its cursor, one
//!   coordinator per component, fix actions, tier calls, the escalation
//!   ladder, patches and snapshots.
//! - [`notify`]: notifiers (log, webhook, Slack, PagerDuty) and delivery retries.
//! - [`incidents`]: the incident commander: severity, evidence, timeline, cadence, postmortem.
//! - [`investigate`]: investigators that write the summary sent with a wake.
//! - [`api`]: the HTTP API (axum) and the actor that serves it.
//! - [`managed`]: processes Warden runs itself (`run`), their output and restart ladder.
//! - [`demo_target`]: `warden demo-target`, a service that fails on demand.
//! - [`storage`]: keeps the state dir bounded: config versions by digest, retention, disk use.
//! - [`app`]: the table of contents: `start_with` builds each actor's arguments from its settings
//!   section (`app/api.rs`, `pipeline.rs`, `escalation.rs`, `audit.rs`), the tree's specs
//!   (`spec.rs`), the lifecycle and meltdown response (`lifecycle.rs`), background chores
//!   (`chores.rs`) and the config-rollback boot loop (`source.rs`).
//! - [`files`]: private modes, the atomic-write helper and symlink-refusing reads.
//! - `tasks`: `AbortOnDrop`, the guard that keeps a helper task from outliving its owner.

pub mod api;
pub mod app;
pub mod audit;
pub mod chaos;
pub mod control;
pub mod debounce;
pub mod demo_target;
pub mod escalation;
pub mod events;
pub mod files;
pub mod incidents;
pub mod investigate;
pub mod managed;
pub mod messages;
pub mod metrics;
pub mod notify;
pub mod probes;
mod process;
pub mod settings;
pub mod storage;
mod tasks;
pub mod telemetry;
mod text;
pub mod wake;
