//! W3C trace context across actors, the audit log and HTTP.
//!
//! ractor runs a receiver's handler inside the sender's current span, so a
//! span opened inside a handler would join whatever trace the message came
//! from. Each unit of work therefore opens its span with an explicit parent:
//! `None` for an issue's root, or the context restored from the `traceparent`
//! stored in the row being handled. Log lines do not rely on ractor's
//! `Actor{..}` prefix to name the actor (it names the sender's actor); our
//! spans carry an `actor` field instead.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The `traceparent` of `span`, or `None` when it is not recorded (export
/// off, or not sampled).
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return None;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.remove("traceparent")
}

/// Makes `traceparent` the parent of `span`. A missing or malformed value
/// leaves the span a root (a broken trace beats a dropped event).
pub fn continue_from(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(value) = traceparent else { return };
    let carrier: HashMap<String, String> = [("traceparent".to_owned(), value.to_owned())].into();
    let context = TraceContextPropagator::new().extract(&carrier);
    if context.span().span_context().is_valid() {
        let _ = span.set_parent(context);
    }
}

/// The 32-hex trace id inside a `traceparent`.
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.split('-');
    let (_version, id) = (parts.next()?, parts.next()?);
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_owned())
}

/// Adds `traceparent` (and `tracestate`) of the current span to a request.
pub fn inject(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        return request;
    }
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&context, &mut carrier);
    carrier.into_iter().fold(request, |request, (name, value)| {
        request.header(name, value)
    })
}

#[cfg(test)]
mod tests {
    use super::trace_id;

    #[test]
    fn trace_id_is_read_from_a_traceparent() {
        assert_eq!(
            trace_id("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(trace_id("garbage"), None);
        assert_eq!(trace_id("00-xyz-00f067aa0ba902b7-01"), None);
    }
}
