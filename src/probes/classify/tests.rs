//! Unit tests for the condition language: parsing, type checks, evaluation,
//! `classify()`, and proptests that no input panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use proptest::prelude::*;

use super::{Condition, classify, parse};
use crate::messages::Health;
use crate::probes::{CheckOutcome, Facts};

fn cond(expression: &str) -> Condition {
    parse(expression).unwrap_or_else(|error| panic!("{expression:?} should parse: {error}"))
}

fn parse_error(expression: &str) -> String {
    match parse(expression) {
        Ok(condition) => panic!("{expression:?} should not parse, got {condition:?}"),
        Err(error) => error.to_string(),
    }
}

fn holds(expression: &str, facts: &Facts) -> bool {
    cond(expression)
        .eval(facts)
        .unwrap_or_else(|error| panic!("{expression:?} should evaluate: {error}"))
}

fn eval_error(expression: &str, facts: &Facts) -> String {
    match cond(expression).eval(facts) {
        Ok(value) => panic!("{expression:?} should not evaluate, got {value}"),
        Err(error) => error,
    }
}

fn http(status: u16, body: &str, latency_ms: u64) -> Facts {
    Facts {
        latency: Duration::from_millis(latency_ms),
        status: Some(status),
        body: Some(body.to_owned()),
        ..Facts::default()
    }
}

fn refused() -> Facts {
    Facts {
        latency: Duration::from_millis(3),
        error: Some("connection refused".to_owned()),
        ..Facts::default()
    }
}

fn conditions(expressions: &[&str]) -> Vec<Condition> {
    expressions.iter().map(|e| cond(e)).collect()
}

// ---- parsing ------------------------------------------------------------

#[test]
fn every_field_parses() {
    for expression in [
        "status == 200",
        "exit_code != 0",
        "latency > 300ms",
        "cert_expires_in < 7d",
        "since_last_heartbeat >= 5m",
        "connected == false",
        "body contains \"ok\"",
        "stdout contains \"ok\"",
        "stderr not contains \"panic\"",
        "error matches \"refused|reset\"",
        "body.status == \"ok\"",
        "body.checks[0].ok == true",
        "stdout.a.b == null",
        "body[\"odd key\"][2] != 1.5",
    ] {
        assert_eq!(cond(expression).text(), expression);
    }
}

#[test]
fn whitespace_is_tolerated_and_text_is_trimmed() {
    let facts = http(503, "", 10);
    for expression in [
        "status==503",
        "  status   ==   503  ",
        "\tstatus\t==\n503",
        "status>=503",
    ] {
        let condition = cond(expression);
        assert_eq!(condition.text(), expression.trim());
        assert_eq!(condition.eval(&facts), Ok(true), "{expression:?}");
    }
    assert_eq!(cond(" latency > 1h 30m ").text(), "latency > 1h 30m");
    assert_eq!(
        cond("body  not   contains\"x\"").text(),
        "body  not   contains\"x\""
    );
}

#[test]
fn empty_expression_is_rejected() {
    for expression in ["", "   ", "\n\t"] {
        assert!(
            parse_error(expression).starts_with("empty condition"),
            "{expression:?}"
        );
    }
}

#[test]
fn unknown_field_lists_the_valid_ones() {
    let message = parse_error("laatency > 5ms");
    assert!(
        message.starts_with(
            "unknown field \"laatency\" (expected one of status, exit_code, latency, cert_expires_in, since_last_heartbeat, connected, body, stdout, stderr, error"
        ),
        "{message}"
    );
    assert!(message.contains("body.status"), "{message}");
}

#[test]
fn a_value_where_the_field_should_be_is_rejected() {
    assert_eq!(
        parse_error("== 200"),
        "expected a field name at column 1, found \"==\""
    );
    assert_eq!(
        parse_error("200 == status"),
        "expected a field name at column 1, found \"200\""
    );
}

#[test]
fn missing_and_unknown_operators_are_rejected() {
    assert_eq!(
        parse_error("status"),
        "expected an operator after status (==, !=, <, <=, >, >=, contains, not contains, matches, not matches), found end of input"
    );
    assert!(parse_error("status 200").ends_with("found \"200\""));
    assert!(parse_error("status = 200").starts_with("unknown operator \"=\""));
    assert!(parse_error("status => 200").starts_with("unknown operator \"=>\""));
    assert!(parse_error("body has \"x\"").starts_with("unknown operator \"has\""));
    assert!(parse_error("body not equals \"x\"").starts_with("unknown operator \"not equals\""));
    assert!(parse_error("body not").starts_with("unknown operator \"not\""));
}

#[test]
fn missing_and_malformed_values_are_rejected() {
    assert_eq!(
        parse_error("status =="),
        "expected a value after \"==\", found end of input"
    );
    assert_eq!(
        parse_error("body not contains   "),
        "expected a value after \"not contains\", found end of input"
    );
    assert!(parse_error("body == ok").contains("\"ok\" (strings need double quotes)"));
    assert!(parse_error("status == @").contains("found \"@\""));
    assert!(
        parse_error("status == 99999999999999999999")
            .starts_with("invalid number \"99999999999999999999\": out of range")
    );
    assert!(parse_error("body.x == 1.2.3").starts_with("invalid number \"1.2.3\""));
    assert!(parse_error("latency > 5parsecs").starts_with("invalid duration \"5parsecs\""));
}

#[test]
fn string_errors_are_located() {
    assert_eq!(
        parse_error("body == \"abc"),
        "unterminated string starting at column 9 (missing closing \")"
    );
    assert_eq!(
        parse_error("body == \"abc\\"),
        "unterminated string starting at column 9 (missing closing \")"
    );
    assert_eq!(
        parse_error("body == \"a\\n\""),
        "invalid escape \"\\n\" in string at column 11 (only \\\" and \\\\ are allowed)"
    );
}

#[test]
fn trailing_input_is_rejected() {
    assert_eq!(
        parse_error("status == 200 and latency > 1s"),
        "unexpected \"and latency > 1s\" after the condition at column 15 (write one condition per entry)"
    );
    assert!(parse_error("body == \"a\" \"b\"").starts_with("unexpected \"\"b\"\""));
}

#[test]
fn values_are_type_checked_per_field() {
    assert_eq!(
        parse_error("latency < 300"),
        "latency compares to a duration such as 300ms"
    );
    assert_eq!(
        parse_error("cert_expires_in > \"7d\""),
        "cert_expires_in compares to a duration such as 7d"
    );
    assert_eq!(
        parse_error("since_last_heartbeat > true"),
        "since_last_heartbeat compares to a duration such as 5m"
    );
    assert_eq!(
        parse_error("status == \"ok\""),
        "status compares to a whole number such as 200"
    );
    assert_eq!(
        parse_error("exit_code == 1s"),
        "exit_code compares to a whole number such as 0"
    );
    assert_eq!(
        parse_error("status == 200.5"),
        "status compares to a whole number such as 200"
    );
    assert_eq!(
        parse_error("connected == 1"),
        "connected compares to true or false"
    );
    assert_eq!(
        parse_error("body == 200"),
        "body compares to a quoted string such as \"ok\""
    );
    assert_eq!(
        parse_error("stderr matches 5"),
        "matches takes a quoted regular expression such as \"^ok\""
    );
    assert_eq!(
        parse_error("body.x == 5s"),
        "body.x compares to a string, number, true, false or null (JSON has no durations)"
    );
    assert_eq!(
        parse_error("body.x > \"a\""),
        "\">\" compares numbers: body.x > needs a number such as 10"
    );
    assert_eq!(
        parse_error("body.x contains 1"),
        "contains takes a quoted string such as \"ok\""
    );
}

#[test]
fn operators_are_type_checked_per_field() {
    assert!(parse_error("status contains \"5\"").starts_with("status takes ==, !=, <, <=, >, >="));
    assert!(parse_error("latency matches \"1\"").starts_with("latency takes ==, !=, <, <=, >, >="));
    assert_eq!(
        parse_error("connected < true"),
        "connected takes only == or !="
    );
    assert!(parse_error("body > \"a\"").starts_with("body is text: it takes ==, !=, contains"));
    assert!(parse_error("error <= \"a\"").starts_with("error is text"));
}

#[test]
fn paths_are_checked() {
    assert_eq!(
        parse_error("status.code == 1"),
        "status has no fields; only body (or stdout) takes a JSON path such as body.status"
    );
    assert!(parse_error("body. == 1").starts_with("expected a key after \".\" at column 6"));
    assert!(parse_error("body[x] == 1").starts_with("expected an array index or a quoted key"));
    assert!(parse_error("body[0 == 1").starts_with("expected \"]\" at column 7"));
    assert!(parse_error("body[99999999999999999999999] == 1").contains("too large"));
}

#[test]
fn bad_regex_is_rejected() {
    assert!(parse_error("body matches \"(\"").starts_with("invalid regular expression \"(\""));
}

// ---- evaluation: fields and operators -------------------------------------

#[test]
fn integer_fields_take_every_ordering_operator() {
    let facts = http(503, "", 10);
    let expectations = [
        ("status == 503", true),
        ("status != 503", false),
        ("status < 500", false),
        ("status <= 503", true),
        ("status > 499", true),
        ("status >= 504", false),
    ];
    for (expression, expected) in expectations {
        assert_eq!(holds(expression, &facts), expected, "{expression}");
    }
    let command = Facts {
        exit_code: Some(-1),
        ..Facts::default()
    };
    assert!(holds("exit_code == -1", &command));
    assert!(holds("exit_code != 0", &command));
    assert!(holds("exit_code < 0", &command));
    assert!(!holds("exit_code >= 0", &command));
}

#[test]
fn durations_compare_with_units() {
    let facts = http(200, "", 812);
    assert!(holds("latency > 500ms", &facts));
    assert!(holds("latency <= 812ms", &facts));
    assert!(!holds("latency < 812ms", &facts));
    assert!(holds("latency == 812ms", &facts));
    assert!(holds("latency != 1s", &facts));
    assert!(holds("latency < 1h30m", &facts));
    assert!(holds("latency >= 0s", &facts));

    let heartbeat = Facts {
        since_last_heartbeat: Some(Duration::from_secs(6 * 60)),
        ..Facts::default()
    };
    assert!(holds("since_last_heartbeat > 5m", &heartbeat));
    assert!(!holds("since_last_heartbeat > 1h 30m", &heartbeat));
}

#[test]
fn certificate_expiry_handles_negative_seconds() {
    let expired = Facts {
        cert_expires_in: Some(-3600),
        ..Facts::default()
    };
    assert!(!holds("cert_expires_in > 7d", &expired));
    assert!(holds("cert_expires_in < 7d", &expired));
    assert!(holds("cert_expires_in < 0s", &expired));
    assert!(holds("cert_expires_in == -1h", &expired));
    assert!(holds("cert_expires_in <= -1h", &expired));
    assert!(!holds("cert_expires_in < -1h", &expired));

    let fresh = Facts {
        cert_expires_in: Some(8 * 86_400),
        ..Facts::default()
    };
    assert!(holds("cert_expires_in > 7d", &fresh));
    assert!(!holds("cert_expires_in < 7d", &fresh));
}

#[test]
fn connected_compares_to_booleans() {
    let down = Facts {
        connected: Some(false),
        ..Facts::default()
    };
    assert!(holds("connected == false", &down));
    assert!(holds("connected != true", &down));
    assert!(!holds("connected == true", &down));
}

#[test]
fn text_fields_take_every_text_operator() {
    let facts = Facts {
        body: Some("status: OK\nall good".to_owned()),
        stderr: Some("warning: disk 91% full".to_owned()),
        ..Facts::default()
    };
    assert!(holds("body contains \"OK\"", &facts));
    assert!(!holds("body not contains \"OK\"", &facts));
    assert!(holds("stdout contains \"all good\"", &facts));
    assert!(holds("body == \"status: OK\nall good\"", &facts));
    assert!(holds("body != \"status: OK\"", &facts));
    assert!(holds("body matches \"^status: (OK|FINE)\"", &facts));
    assert!(holds("body not matches \"(?i)error\"", &facts));
    assert!(holds("stderr matches \"disk \\\\d+% full\"", &facts));
    assert!(holds("stderr contains \"warning\"", &facts));
    assert!(!holds("stderr not contains \"warning\"", &facts));
}

#[test]
fn escapes_in_strings_are_unescaped() {
    let facts = Facts {
        body: Some(r#"say "hi" \o/"#.to_owned()),
        ..Facts::default()
    };
    assert!(holds(r#"body == "say \"hi\" \\o/""#, &facts));
    assert!(holds(r#"body contains "\"hi\"""#, &facts));
}

#[test]
fn error_is_empty_when_the_check_completed() {
    let fine = http(200, "", 5);
    assert!(holds("error == \"\"", &fine));
    assert!(!holds("error contains \"refused\"", &fine));
    assert!(holds("error contains \"refused\"", &refused()));
    assert!(holds("error matches \"refused|reset\"", &refused()));
}

#[test]
fn json_paths_read_objects_and_arrays() {
    let body = r#"{"status":"ok","count":12,"ratio":0.25,"a":{"b":null},
        "checks":[{"name":"db","ok":true},{"name":"cache","ok":false}],"odd key":1}"#;
    let facts = http(200, body, 5);
    assert!(holds("body.status == \"ok\"", &facts));
    assert!(holds("body.status != \"down\"", &facts));
    assert!(holds("body.checks[0].ok == true", &facts));
    assert!(holds("body.checks[1].ok == false", &facts));
    assert!(holds("body.checks[1].name contains \"cac\"", &facts));
    assert!(holds("body.checks[1].name matches \"^c\"", &facts));
    assert!(holds("body.checks[0].name not contains \"x\"", &facts));
    assert!(holds("body.a.b == null", &facts));
    assert!(holds("body[\"odd key\"] == 1", &facts));
    assert!(holds("stdout.count > 10", &facts));
    assert!(holds("body.count == 12", &facts));
    assert!(holds("body.count == 12.0", &facts));
    assert!(holds("body.count <= 12", &facts));
    assert!(!holds("body.count < -3", &facts));
    assert!(holds("body.ratio < 0.5", &facts));
    assert!(holds("body.ratio >= 0.25", &facts));
    // Different types are unequal rather than an error.
    assert!(!holds("body.count == \"12\"", &facts));
    assert!(holds("body.count != \"12\"", &facts));
    assert!(!holds("body.a.b == false", &facts));

    let array = http(200, r#"[{"up":1},{"up":0}]"#, 5);
    assert!(holds("body[1].up == 0", &array));
}

// ---- evaluation errors ----------------------------------------------------

#[test]
fn absent_facts_say_why() {
    assert_eq!(
        eval_error("status != 200", &refused()),
        "no status: the check failed before a response (connection refused)"
    );
    assert_eq!(
        eval_error("status != 200", &Facts::default()),
        "no status: only http probes have a status"
    );
    assert_eq!(
        eval_error("connected == false", &Facts::default()),
        "no connection result: only tcp probes report connected"
    );
    assert_eq!(
        eval_error("exit_code != 0", &refused()),
        "no exit code: the check failed (connection refused)"
    );
    assert!(
        eval_error("cert_expires_in < 7d", &Facts::default()).starts_with("no certificate expiry")
    );
    assert!(eval_error("since_last_heartbeat > 1m", &Facts::default()).starts_with("no heartbeat"));
    assert!(eval_error("stdout contains \"x\"", &Facts::default()).starts_with("no stdout"));
    assert!(eval_error("stderr contains \"x\"", &Facts::default()).starts_with("no stderr"));
    assert_eq!(
        eval_error("body.status == \"ok\"", &refused()),
        "no body: the check failed before a response (connection refused)"
    );
}

#[test]
fn json_errors_say_why() {
    let html = http(200, "<html>", 5);
    assert!(eval_error("body.status == \"ok\"", &html).starts_with("body is not JSON: "));

    let json = http(200, r#"{"checks":[]}"#, 5);
    assert_eq!(
        eval_error("body.checks[0].ok == true", &json),
        "body has no field checks[0].ok"
    );

    let mut truncated = http(200, r#"{"status":"ok"}"#, 5);
    truncated.body_truncated = true;
    assert_eq!(
        eval_error("body.status == \"ok\"", &truncated),
        "body was cut at the size cap, so body.status cannot be read as JSON (raise max_body_bytes)"
    );
    // A plain body condition still works on a truncated body.
    assert!(holds("body contains \"ok\"", &truncated));

    let typed = http(200, r#"{"status":"ok","n":3}"#, 5);
    assert_eq!(
        eval_error("body.status > 1", &typed),
        "body.status is a string, not a number"
    );
    assert_eq!(
        eval_error("body.n contains \"3\"", &typed),
        "body.n is a number, not a string"
    );
}

// ---- classify ---------------------------------------------------------------

#[test]
fn healthy_without_conditions_has_no_reasons() {
    let outcome = CheckOutcome::healthy(http(200, "", 5));
    assert_eq!(classify(outcome, &[], &[]), (Health::Healthy, Vec::new()));
}

#[test]
fn conditions_that_do_not_hold_keep_it_healthy() {
    let outcome = CheckOutcome::healthy(http(200, "", 5));
    let unhealthy = conditions(&["status != 200"]);
    let degraded = conditions(&["latency > 500ms"]);
    assert_eq!(
        classify(outcome, &unhealthy, &degraded),
        (Health::Healthy, Vec::new())
    );
}

#[test]
fn degraded_condition_gives_degraded_with_reason() {
    let outcome = CheckOutcome::healthy(http(200, "", 812));
    let degraded = conditions(&["latency > 500ms"]);
    assert_eq!(
        classify(outcome, &[], &degraded),
        (
            Health::Degraded,
            vec!["condition \"latency > 500ms\" matched (latency 812ms)".to_owned()]
        )
    );
}

#[test]
fn unhealthy_beats_degraded_and_lists_both_reasons() {
    let outcome = CheckOutcome::healthy(http(200, r#"{"status":"down"}"#, 812));
    let unhealthy = conditions(&["body.status != \"ok\""]);
    let degraded = conditions(&["latency > 500ms"]);
    assert_eq!(
        classify(outcome, &unhealthy, &degraded),
        (
            Health::Unhealthy,
            vec![
                "condition \"body.status != \"ok\"\" matched (body.status \"down\")".to_owned(),
                "condition \"latency > 500ms\" matched (latency 812ms)".to_owned(),
            ]
        )
    );
}

#[test]
fn kind_reasons_come_first_and_duplicates_are_dropped() {
    let outcome = CheckOutcome::with(
        http(503, "", 812),
        Health::Unhealthy,
        "status 503 (expected 2xx)",
    );
    let unhealthy = conditions(&["status >= 500", "status >= 500"]);
    let degraded = conditions(&["latency > 500ms"]);
    let (health, reasons) = classify(outcome, &unhealthy, &degraded);
    assert_eq!(health, Health::Unhealthy);
    assert_eq!(
        reasons,
        vec![
            "status 503 (expected 2xx)".to_owned(),
            "condition \"status >= 500\" matched (status 503)".to_owned(),
            "condition \"latency > 500ms\" matched (latency 812ms)".to_owned(),
        ]
    );
}

#[test]
fn kind_degraded_is_not_lowered_by_conditions() {
    let outcome = CheckOutcome::with(http(200, "", 5), Health::Degraded, "slow start");
    let degraded = conditions(&["latency > 500ms"]);
    assert_eq!(
        classify(outcome, &[], &degraded),
        (Health::Degraded, vec!["slow start".to_owned()])
    );
}

#[test]
fn unevaluable_unhealthy_condition_fails_closed() {
    let outcome = CheckOutcome::healthy(http(200, "<html>", 5));
    let unhealthy = conditions(&["body.status != \"ok\""]);
    let (health, reasons) = classify(outcome, &unhealthy, &[]);
    assert_eq!(health, Health::Unhealthy);
    assert_eq!(reasons.len(), 1);
    assert!(
        reasons[0].starts_with(
            "condition \"body.status != \"ok\"\" could not be evaluated: body is not JSON: "
        ),
        "{}",
        reasons[0]
    );
}

#[test]
fn unevaluable_degraded_condition_gives_degraded() {
    let outcome = CheckOutcome::healthy(http(200, "", 5));
    let degraded = conditions(&["connected == false"]);
    assert_eq!(
        classify(outcome, &[], &degraded),
        (
            Health::Degraded,
            vec![
                "condition \"connected == false\" could not be evaluated: no connection result: only tcp probes report connected"
                    .to_owned()
            ]
        )
    );
}

#[test]
fn failed_check_skips_conditions_on_absent_facts() {
    let outcome = CheckOutcome::with(refused(), Health::Unhealthy, "connection refused");
    let unhealthy = conditions(&[
        "status != 200",
        "body.ok != true",
        "error contains \"refused\"",
    ]);
    let degraded = conditions(&["latency > 1ms"]);
    assert_eq!(
        classify(outcome, &unhealthy, &degraded),
        (
            Health::Unhealthy,
            vec![
                "connection refused".to_owned(),
                "condition \"error contains \"refused\"\" matched (error \"connection refused\")"
                    .to_owned(),
                "condition \"latency > 1ms\" matched (latency 3ms)".to_owned(),
            ]
        )
    );
}

#[test]
fn absent_facts_are_reported_when_the_check_did_not_fail() {
    // The kind is unhealthy for its own reason, but no error: a condition on
    // a fact the kind never measures is a configuration mistake to show.
    let outcome = CheckOutcome::with(http(500, "", 5), Health::Unhealthy, "status 500");
    let unhealthy = conditions(&["exit_code != 0"]);
    let (health, reasons) = classify(outcome, &unhealthy, &[]);
    assert_eq!(health, Health::Unhealthy);
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons[1].contains("could not be evaluated: no exit code"),
        "{}",
        reasons[1]
    );
}

#[test]
fn healthy_verdict_drops_stray_reasons() {
    let mut outcome = CheckOutcome::healthy(http(200, "", 5));
    outcome.reasons.push("left over".to_owned());
    assert_eq!(classify(outcome, &[], &[]), (Health::Healthy, Vec::new()));
}

#[test]
fn reasons_format_signed_durations_and_excerpts() {
    let expired = Facts {
        cert_expires_in: Some(-7200),
        ..Facts::default()
    };
    let (health, reasons) = classify(
        CheckOutcome::healthy(expired),
        &conditions(&["cert_expires_in < 7d"]),
        &[],
    );
    assert_eq!(health, Health::Unhealthy);
    assert_eq!(
        reasons,
        vec!["condition \"cert_expires_in < 7d\" matched (cert_expires_in -2h)".to_owned()]
    );

    let long = "x".repeat(200);
    let (_, reasons) = classify(
        CheckOutcome::healthy(http(200, &long, 5)),
        &[],
        &conditions(&["body contains \"x\""]),
    );
    let expected = format!(
        "condition \"body contains \"x\"\" matched (body \"{}…\")",
        "x".repeat(80)
    );
    assert_eq!(reasons, vec![expected]);
}

// ---- proptests ------------------------------------------------------------

/// Escapes a string for a condition literal.
fn quote(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn ordering_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["==", "!=", "<", "<=", ">", ">="])
}

fn text_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["==", "!=", "contains", "not contains"])
}

/// Well-formed conditions over every field type.
fn valid_condition() -> impl Strategy<Value = String> {
    prop_oneof![
        (ordering_op(), -1000i64..1000).prop_map(|(op, n)| format!("status {op} {n}")),
        (ordering_op(), -300i64..300).prop_map(|(op, n)| format!("exit_code {op} {n}")),
        (ordering_op(), 0u64..5000).prop_map(|(op, n)| format!("latency {op} {n}ms")),
        (ordering_op(), -100i64..100).prop_map(|(op, n)| format!("cert_expires_in {op} {n}h")),
        (prop::sample::select(vec!["==", "!="]), any::<bool>())
            .prop_map(|(op, b)| format!("connected {op} {b}")),
        (text_op(), ".{0,12}").prop_map(|(op, s)| format!("body {op} {}", quote(&s))),
        (ordering_op(), -50i64..50).prop_map(|(op, n)| format!("body.n {op} {n}")),
        (prop::sample::select(vec!["==", "!="]), "[a-z]{0,4}")
            .prop_map(|(op, s)| format!("body.items[0].name {op} {}", quote(&s))),
    ]
}

fn facts() -> impl Strategy<Value = Facts> {
    (
        prop::option::of(100u16..600),
        prop::option::of(-300i32..300),
        0u64..5000,
        prop::option::of(-400_000i64..400_000),
        prop::option::of(any::<bool>()),
        prop::option::of(prop_oneof![
            ".{0,12}",
            (-60i64..60, "[a-z]{0,4}")
                .prop_map(|(n, s)| format!(r#"{{"n":{n},"items":[{{"name":"{s}"}}]}}"#)),
        ]),
        prop::option::of("[a-z ]{0,10}"),
    )
        .prop_map(
            |(status, exit_code, latency, cert, connected, body, error)| Facts {
                latency: Duration::from_millis(latency),
                status,
                body,
                body_truncated: false,
                exit_code,
                stderr: None,
                connected,
                cert_expires_in: cert,
                since_last_heartbeat: None,
                error,
                kind_facts: Vec::new(),
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(input in any::<String>()) {
        if let Ok(condition) = parse(&input) {
            let _ = condition.eval(&Facts::default());
        }
    }

    #[test]
    fn condition_shaped_strings_never_panic(
        input in r#"[ a-z_.\[\]0-9"\\=!<>~-]{0,40}"#,
        facts in facts(),
    ) {
        if let Ok(condition) = parse(&input) {
            let _ = condition.eval(&facts);
            let _ = classify(CheckOutcome::healthy(facts), std::slice::from_ref(&condition), std::slice::from_ref(&condition));
        }
    }

    #[test]
    fn text_round_trips(expression in valid_condition(), padding in "[ \t]{0,3}", facts in facts()) {
        let padded = format!("{padding}{expression}{padding}");
        let condition = parse(&padded).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(condition.text(), expression.as_str());
        let again = parse(condition.text()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(condition.eval(&facts), again.eval(&facts));
    }

    #[test]
    fn quoted_strings_round_trip(text in any::<String>()) {
        let facts = Facts { body: Some(text.clone()), ..Facts::default() };
        let condition = parse(&format!("body == {}", quote(&text)))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(condition.eval(&facts), Ok(true));
    }

    #[test]
    fn opposite_orderings_disagree(n in -1000i64..1000, status in 100u16..600) {
        let facts = Facts { status: Some(status), ..Facts::default() };
        let below = parse(&format!("status < {n}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let at_least = parse(&format!("status >= {n}")).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_ne!(below.eval(&facts), at_least.eval(&facts));
    }

    #[test]
    fn classify_never_improves_the_kind_verdict(
        facts in facts(),
        unhealthy in prop::collection::vec(valid_condition(), 0..3),
        degraded in prop::collection::vec(valid_condition(), 0..3),
        verdict in prop::sample::select(vec![Health::Healthy, Health::Degraded, Health::Unhealthy]),
    ) {
        let unhealthy: Vec<Condition> = unhealthy.iter().map(|e| cond(e)).collect();
        let degraded: Vec<Condition> = degraded.iter().map(|e| cond(e)).collect();
        let mut outcome = CheckOutcome::healthy(facts);
        outcome.verdict = verdict;
        let (health, reasons) = classify(outcome, &unhealthy, &degraded);
        prop_assert!(health >= verdict);
        // A condition that made it worse always says so.
        if health > verdict {
            prop_assert!(!reasons.is_empty());
        }
        if health == Health::Healthy {
            prop_assert!(reasons.is_empty());
        }
    }
}
