//! `POST /api/control`: the operator's levers on the operational state.
//! Every applied command is one `control.command` audit row, durable before
//! the command takes effect.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::auth::require_operator;
use super::record::record_then;
use super::{ApiContext, ApiError};
use crate::audit::NewRow;
use crate::control::OperationalState;

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

/// Commands are applied one at a time, so the outcome a row records (worked
/// out on a copy of the state) is the outcome the command then has.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `POST /api/control` (operator token): appends `control.command` and, once
/// it is durable, applies the command and answers the new
/// `{"state", "degradation_reasons"}`. A command the log cannot record within
/// `service.call_timeout` answers 503 and does not take effect.
pub(super) async fn command(
    State(context): State<ApiContext>,
    headers: HeaderMap,
    body: Result<Json<ControlRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    require_operator(&context, &headers)?;
    let Json(request) = body.map_err(ApiError::from)?;
    request.check()?;
    if request.command == ControlCommand::BumpEpoch {
        return bump_epoch(&context, request.reason.as_deref()).await;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let keep: &'static [&'static str] = if context.dr.unresolved() {
        &["substrate"]
    } else {
        &[]
    };
    let before = context.state.snapshot();
    let (after, detail) = context
        .state
        .preview(|state| apply(state, request.command, keep));
    let row = command_row(
        request.command,
        request.reason.as_deref(),
        "applied",
        json!(detail),
        &before,
        &after,
    );
    let (state, shutdown, command) = (
        context.state.clone(),
        context.shutdown.clone(),
        request.command,
    );
    // The command takes effect only once its row is durable; meanwhile no
    // automation may start, or its row could follow the pause row.
    let pending = matches!(command, ControlCommand::Pause | ControlCommand::Stop)
        .then(|| context.state.hold_pending());
    record_then(&context, row, "the command", move |_| {
        apply(&state, command, keep);
        drop(pending);
        if command == ControlCommand::Stop {
            shutdown.notify_one();
        }
    })
    .await?;
    let now = context.state.snapshot();
    Ok(Json(json!({
        "state": now.state,
        "degradation_reasons": now.degradation_reasons,
    })))
}

/// Applies a state command; the value is the audit row's `detail`.
fn apply(state: &OperationalState, command: ControlCommand, keep: &[&str]) -> Value {
    match command {
        ControlCommand::Pause => {
            state.pause("operator");
            Value::Null
        }
        ControlCommand::Resume => {
            state.clear("operator");
            Value::Null
        }
        ControlCommand::Stop => json!("graceful stop requested"),
        ControlCommand::Reset => {
            let cleared = state.reset(keep);
            json!({
                "cleared": cleared,
                "kept": keep,
                "note": if keep.is_empty() { None } else { Some("a DR rewind is unresolved: bump_epoch first") },
            })
        }
        // Handled by `bump_epoch`, which writes the epoch files.
        ControlCommand::BumpEpoch => Value::Null,
    }
}

/// `bump_epoch`: accepts the current state dir after a restore. The epoch
/// files change first (the new epoch names the log's end, which only a
/// flush can tell), then `dr.epoch_bumped` and `control.command` are
/// recorded; each wait is bounded by `call_timeout`.
async fn bump_epoch(context: &ApiContext, reason: Option<&str>) -> Result<Json<Value>, ApiError> {
    let _turn = ONE_AT_A_TIME.lock().await;
    let before = context.state.snapshot();
    let last_seq = tokio::time::timeout(context.call_timeout, context.audit.flush_seq())
        .await
        .map_err(|_| {
            ApiError::unavailable(format!(
                "the audit log did not answer within {} (service.call_timeout); the epoch was not bumped",
                humantime::format_duration(context.call_timeout)
            ))
        })?
        .map_err(|e| ApiError::unavailable(format!("cannot read the log's end: {e}")))?;
    let (from, to) = match context.dr.bump(last_seq) {
        Ok(bumped) => bumped,
        Err(e) => {
            let error = ApiError::unavailable(format!("cannot bump the epoch: {e}"));
            // Nothing changed, so there is nothing to hold back for this row.
            context.audit.append_nowait(command_row(
                ControlCommand::BumpEpoch,
                reason,
                "failed",
                json!(error.message),
                &before,
                &before,
            ));
            return Err(error);
        }
    };
    let bumped = crate::events::row(&crate::events::service::EpochBumped {
        from,
        to,
        audit_high_water: last_seq,
        reason: reason.map(str::to_owned),
        actor: "operator".to_owned(),
    });
    // The epoch files already changed, so these rows must not be withdrawn:
    // they stay queued until written, and the caller hears back in time.
    append_bumped(context, bumped, (from, to)).await?;
    let detail = json!({ "from": from, "to": to, "audit_high_water": last_seq });
    let after = context.state.snapshot();
    let row = command_row(
        ControlCommand::BumpEpoch,
        reason,
        "applied",
        detail,
        &before,
        &after,
    );
    append_bumped(context, row, (from, to)).await?;
    Ok(Json(json!({
        "state": after.state,
        "degradation_reasons": after.degradation_reasons,
    })))
}

/// Appends a row about a bump that already happened, waiting at most
/// `call_timeout`; the row stays queued either way.
async fn append_bumped(
    context: &ApiContext,
    row: NewRow,
    (from, to): (u64, u64),
) -> Result<(), ApiError> {
    let waited = tokio::time::timeout(context.call_timeout, context.audit.append(row)).await;
    let why = match waited {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "service.call_timeout passed".to_owned(),
    };
    Err(ApiError::unavailable(format!(
        "the epoch was bumped from {from} to {to}, but its row is not durable yet ({why}); it is written once the log is writable"
    )))
}

/// The `control.command` row of one operator command.
fn command_row(
    command: ControlCommand,
    reason: Option<&str>,
    result: &str,
    detail: Value,
    before: &crate::control::StateSnapshot,
    after: &crate::control::StateSnapshot,
) -> NewRow {
    crate::events::row(&crate::events::service::ControlCommand {
        command: command.name().to_owned(),
        reason: reason.map(str::to_owned),
        actor: "operator".to_owned(),
        result: result.to_owned(),
        detail,
        before: before.into(),
        after: after.into(),
    })
}
