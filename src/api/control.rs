//! `POST /api/control`: the operator's levers on the operational state.
//! Every command, applied or not, is one `control.command` audit row.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::require_operator;
use super::{ApiContext, ApiError};
use crate::audit::NewRow;

/// What the operator asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlCommand {
    /// Adds the degradation reason `operator`.
    Pause,
    /// Clears the reason `operator` (and only it).
    Resume,
    /// Requests a graceful stop of the process.
    Stop,
    /// Clears every explicit reason (`operator`, `meltdown`, `substrate`);
    /// `substrate` stays while a DR rewind waits for `bump_epoch`.
    Reset,
    /// Accepts the current state dir after a restore: DR epoch + 1.
    BumpEpoch,
}

impl ControlCommand {
    fn name(self) -> &'static str {
        match self {
            ControlCommand::Pause => "pause",
            ControlCommand::Resume => "resume",
            ControlCommand::Stop => "stop",
            ControlCommand::Reset => "reset",
            ControlCommand::BumpEpoch => "bump_epoch",
        }
    }
}

/// The body of `POST /api/control`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// The command.
    pub command: ControlCommand,
    /// Why, for the audit row.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Reasons longer than this are refused, so a row stays a row.
const MAX_REASON_BYTES: usize = 1024;

impl ControlRequest {
    /// What the handler refuses before it applies or records anything.
    pub(super) fn check(&self) -> Result<(), ApiError> {
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.len() > MAX_REASON_BYTES)
        {
            return Err(ApiError::bad_request(format!(
                "`reason` is longer than {MAX_REASON_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

/// `POST /api/control` (operator token): applies the command, appends
/// `control.command` and answers the new `{"state", "degradation_reasons"}`.
pub(super) async fn command(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Json<ControlRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    let Json(request) = body.map_err(ApiError::from)?;
    request.check()?;
    let before = context.state.snapshot();
    let result = apply(&context, request.command, request.reason.as_deref()).await;
    let after = context.state.snapshot();
    let (outcome, detail) = match &result {
        Ok(detail) => ("applied", detail.clone()),
        Err(error) => ("failed", json!(error.message)),
    };
    let row = NewRow::new(
        "control.command",
        json!({
            "command": request.command.name(),
            "reason": request.reason,
            "actor": "operator",
            "result": outcome,
            "detail": detail,
            "before": { "state": before.state, "degradation_reasons": before.degradation_reasons },
            "after": { "state": after.state, "degradation_reasons": after.degradation_reasons },
        }),
    );
    let recorded = context.audit.append(row).await;
    result?;
    recorded.map_err(|e| ApiError::unavailable(format!("the command was not recorded: {e}")))?;
    if request.command == ControlCommand::Stop {
        // After the row is durable, so the stop is on record before it happens.
        context.shutdown.notify_one();
    }
    Ok(Json(json!({
        "state": after.state,
        "degradation_reasons": after.degradation_reasons,
    })))
}

/// Applies `command`; the `Ok` value is the audit row's `detail`.
async fn apply(
    context: &ApiContext,
    command: ControlCommand,
    reason: Option<&str>,
) -> Result<Value, ApiError> {
    match command {
        ControlCommand::Pause => {
            context.state.pause("operator");
            Ok(Value::Null)
        }
        ControlCommand::Resume => {
            context.state.clear("operator");
            Ok(Value::Null)
        }
        ControlCommand::Stop => Ok(json!("graceful stop requested")),
        ControlCommand::Reset => {
            let keep: &[&str] = if context.dr.unresolved() {
                &["substrate"]
            } else {
                &[]
            };
            let cleared = context.state.reset(keep);
            Ok(json!({
                "cleared": cleared,
                "kept": keep,
                "note": if keep.is_empty() { None } else { Some("a DR rewind is unresolved: bump_epoch first") },
            }))
        }
        ControlCommand::BumpEpoch => {
            let last_seq =
                context.audit.flush_seq().await.map_err(|e| {
                    ApiError::unavailable(format!("cannot read the log's end: {e}"))
                })?;
            let (from, to) = context
                .dr
                .bump(last_seq)
                .map_err(|e| ApiError::unavailable(format!("cannot bump the epoch: {e}")))?;
            let row = NewRow::new(
                "dr.epoch_bumped",
                json!({ "from": from, "to": to, "audit_high_water": last_seq, "reason": reason, "actor": "operator" }),
            );
            context
                .audit
                .append(row)
                .await
                .map_err(|e| ApiError::unavailable(format!("the bump was not recorded: {e}")))?;
            Ok(json!({ "from": from, "to": to, "audit_high_water": last_seq }))
        }
    }
}
