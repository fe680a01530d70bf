//! Probes: one supervised actor per configured probe, each running cheap,
//! bounded checks on its own cadence (no LLM, no heavy work), classifying the
//! result and publishing an [`Observation`](crate::messages::Observation).
//!
//! # Layout
//! - `actor.rs`: [`ProbeActor`], the schedule and the hand-off to the debouncer.
//! - `check.rs`: [`Check`], one probe's settings built into a bounded check.
//! - `facts.rs`: [`Facts`] and [`CheckOutcome`], what a check measured; the
//!   contract between the kinds and the condition language.
//! - one file per kind: `http.rs`, `tcp.rs`, `command.rs`, `heartbeat.rs`,
//!   `credential_expiry.rs`; each turns a probe's settings into a check.
//! - `escape.rs`: [`escape_output`] and [`escape_line`], applied to what a
//!   target said before an observation carries it anywhere.
//! - `classify.rs`: the condition language (`status == 200`, `latency < 300ms`,
//!   `body.status == "ok"`) and the final verdict.

mod actor;
mod check;
mod command;
mod credential_expiry;
mod escape;
mod facts;
mod heartbeat;
mod http;
mod tcp;

pub use actor::{ProbeActor, ProbeActorArgs, ProbeMsg, ProbeStartError};
pub use check::{Check, CheckContext, ProbeError};
pub use escape::{escape_line, escape_output};
pub use facts::{CheckOutcome, Facts};
pub use heartbeat::Heartbeats;
pub use http::http_client;
pub mod classify;
