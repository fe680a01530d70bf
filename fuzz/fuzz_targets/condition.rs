//! The probe condition language (`unhealthy_if` / `degraded_if`), which an
//! operator types and which then reads whatever a probed target answered.
//!
//! Input: line 1 is the expression; line 2 holds facts as whitespace-separated
//! `key=value` tokens (`status`, `latency_ms`, `exit_code`, `cert_s`,
//! `connected`, `heartbeat_ms`, `error`, `verdict`); the rest is the body
//! (and stderr). Parsing, evaluating and classifying must never panic, and
//! whatever parses must parse again from its own text.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use warden::messages::Health;
use warden::probes::classify::{classify, parse};
use warden::probes::{CheckOutcome, Facts};

fn facts(line: &str, body: Option<&str>) -> (Facts, Health) {
    let mut facts = Facts {
        body: body.map(str::to_owned),
        stderr: body.map(str::to_owned),
        ..Facts::default()
    };
    let mut verdict = Health::Healthy;
    for token in line.split_whitespace() {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        match key {
            "status" => facts.status = value.parse().ok(),
            "latency_ms" => facts.latency = Duration::from_millis(value.parse().unwrap_or(0)),
            "exit_code" => facts.exit_code = value.parse().ok(),
            "cert_s" => facts.cert_expires_in = value.parse().ok(),
            "connected" => facts.connected = value.parse().ok(),
            "heartbeat_ms" => {
                facts.since_last_heartbeat = value.parse().ok().map(Duration::from_millis)
            }
            "error" => facts.error = Some(value.to_owned()),
            "truncated" => facts.body_truncated = value == "true",
            "verdict" => {
                verdict = match value {
                    "unhealthy" => Health::Unhealthy,
                    "degraded" => Health::Degraded,
                    _ => Health::Healthy,
                }
            }
            _ => {}
        }
    }
    (facts, verdict)
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let expression = parts.next().unwrap_or_default();
    let facts_line = parts.next().unwrap_or_default();
    let body = parts.next();
    let Ok(condition) = parse(expression) else {
        return;
    };
    let again = parse(condition.text());
    assert!(
        again.is_ok(),
        "{:?} parsed, but its text {:?} does not: {:?}",
        expression,
        condition.text(),
        again.err()
    );
    let (facts, verdict) = facts(facts_line, body);
    let _ = condition.eval(&facts);
    let outcome = CheckOutcome {
        facts,
        verdict,
        // Every kind says why when its own verdict is not healthy.
        reasons: if verdict == Health::Healthy {
            Vec::new()
        } else {
            vec!["the check failed".to_owned()]
        },
        stage: None,
    };
    let conditions = [condition];
    let (health, reasons) = classify(outcome, &conditions, &conditions);
    assert_eq!(health == Health::Healthy, reasons.is_empty());
});
