use std::time::{Duration, SystemTime};

use super::*;

#[test]
fn encodes_fields_in_contract_order_with_nulls() {
    let row = NewRow::new("probe.wake_requested", serde_json::json!({"b": 1, "a": 2}))
        .component("api")
        .stamp(7, SystemTime::UNIX_EPOCH + Duration::from_millis(1_500));
    let mut buf = Vec::new();
    row.encode_into(&mut buf);
    let line = String::from_utf8(buf).unwrap();
    assert_eq!(
        line,
        "{\"seq\":7,\"ts\":\"1970-01-01T00:00:01.500Z\",\"seam\":\"probe.wake_requested\",\
         \"caller_session_id\":null,\"trace_id\":null,\"component\":\"api\",\
         \"details\":{\"a\":2,\"b\":1}}\n"
    );
    let back: AuditRow = serde_json::from_str(line.trim_end()).unwrap();
    assert_eq!(back, row);
}

#[test]
fn details_are_always_an_object() {
    assert_eq!(
        NewRow::new("s", serde_json::Value::Null).details(),
        serde_json::json!({})
    );
    assert_eq!(
        NewRow::new("s", serde_json::json!(3)).details(),
        serde_json::json!({"value": 3})
    );
    let row = NewRow::new("s", serde_json::json!({}))
        .session("x")
        .trace("t");
    assert_eq!(row.caller_session_id.as_deref(), Some("x"));
    assert_eq!(row.trace_id.as_deref(), Some("t"));
}

#[test]
fn seam_filter_exact_and_prefix() {
    assert!(seam_matches(
        "supervision.restarted",
        "supervision.restarted"
    ));
    assert!(!seam_matches(
        "supervision.restarted",
        "supervision.restarted2"
    ));
    assert!(seam_matches("supervision.*", "supervision.restarted"));
    assert!(!seam_matches("supervision.*", "probe.wake_requested"));
    assert!(seam_matches("*", "anything"));
}

#[test]
fn seq_placeholder_in_session_id_becomes_the_rows_seq() {
    let row = NewRow::new("probe.wake_requested", serde_json::json!({}))
        .session(format!("probe:api:service_unhealthy:{}", SEQ_PLACEHOLDER))
        .stamp(42, std::time::SystemTime::UNIX_EPOCH);
    assert_eq!(
        row.caller_session_id.as_deref(),
        Some("probe:api:service_unhealthy:42")
    );
}
