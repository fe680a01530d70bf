//! Warden: an actor-based supervision service.
//!
//! # Layout
//! - [`settings`]: typed configuration, layered loading, validation.
//! - [`messages`]: the vocabulary every module shares (observations, issue
//!   events, `Severity`, `Sev`, `Health`, `WakeKind`).
//! - [`events`]: one Rust type per audit seam, the rows they make and how
//!   they are read back (`docs/events.md`).
//! - [`audit`]: the append-only audit log, Warden's source of truth, its
//!   cursors and the `Follower` that reads after one.
//! - [`control`]: operational state (RUNNING / PAUSED / STOPPED), the boot gates in order, the DR
//!   epoch and which configuration a boot runs on (operator's or last-known-good).
//! - [`telemetry`]: logging, traces (OTLP) and their context in rows.
//! - [`metrics`]: the Prometheus registry and every metric family.
//! - [`probes`]: one actor per probe; each kind (http, tcp, command,
//!   heartbeat, credential_expiry, dns) in its own file behind `kind.rs`.
//! - [`observations`]: what the probes observe (latest, history, the queue
//!   to the debouncer), written only by each probe's actor.
//! - [`debounce`]: the debouncer: observations into issue rows.
//! - [`wake`]: the wake consumer: issue rows into investigations and notices,
//!   and the one deliverer of every `notice.requested` row.
//! - [`escalation`]: the intake that reads issue rows after its cursor, one
//!   coordinator per component, fix actions, tier calls, the escalation
//!   ladder, patches and snapshots.
//! - [`notify`]: notifiers (log, webhook, Slack, PagerDuty), routing
//!   (`min_severity`, matchers), the requesters' side of the notice ledger
//!   (`outbox.rs`), conversations and retries.
//! - [`incidents`]: the incident commander: a pure core (`core.rs`) and the
//!   actor that executes its effects; severity, evidence, timeline, cadence,
//!   postmortem.
//! - [`investigate`]: investigators that write the summary sent with a wake.
//! - [`api`]: the HTTP API (axum) and the actor that serves it.
//! - [`managed`]: processes Warden runs itself (`run`), their output and restart ladder.
//! - [`demo_target`]: `warden demo-target`, a service that fails on demand.
//! - [`storage`]: keeps the state dir bounded: config versions by digest, retention, disk use.
//! - [`chaos`]: the fault-injection surface (`chaos.enabled`) the chaos suite drives.
//! - [`cluster`]: cluster mode, the audit log on a replicated NATS JetStream stream.
//! - [`app`]: the table of contents: `start_with` builds each actor's arguments from its settings
//!   section (`app/api.rs`, `pipeline.rs`, `escalation.rs`, `audit.rs`), the tree's specs
//!   (`spec.rs`), the lifecycle and meltdown response (`lifecycle.rs`), background chores
//!   (`chores.rs`) and the config-rollback boot loop (`source.rs`).
//! - [`files`]: private modes, the atomic-write helpers and symlink-refusing reads.
//! - `process`: a short-lived argv under a time limit (command probes and fixes).
//! - `text`: excerpts of remote text kept in rows.
//! - `tasks`: `AbortOnDrop`, the guard that keeps a helper task from outliving its owner.

pub mod api;
pub mod app;
pub mod audit;
pub mod chaos;
pub mod cluster;
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
pub mod observations;
pub mod probes;
mod process;
pub mod settings;
pub mod storage;
mod tasks;
pub mod telemetry;
mod text;
pub mod wake;
