//! What Warden parses from the endpoints it calls: a webhook tier's answer,
//! an investigator's answer (webhook or OpenAI-compatible) and a notifier
//! webhook's `Retry-After`.
//!
//! Input: line 1 is `tier <http status>`, `investigator_webhook`,
//! `investigator_openai` or `retry_after`; the rest is the body (or the
//! header value). Unknown first lines feed every parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::escalation::tier::{TierStatus, parse_answer as tier_answer};
use warden::investigate::{AnswerFormat, parse_answer as engine_answer};
use warden::notify::retry_after;

/// An error from a remote answer ends up in an audit row; it must stay short
/// whatever the remote sent.
const MAX_ERROR_BYTES: usize = 1024;

fn tier(status: u16, body: &[u8]) {
    let answer = tier_answer(status, body, 0);
    assert_eq!(answer.http_status, Some(status));
    assert_eq!(answer.status == TierStatus::Failed, answer.error.is_some());
    if !(200..300).contains(&status) {
        assert_eq!(answer.status, TierStatus::Failed);
    }
    if let Some(error) = &answer.error {
        assert!(
            error.len() <= MAX_ERROR_BYTES,
            "error of {} bytes",
            error.len()
        );
    }
}

fn engine(format: AnswerFormat, body: &[u8]) {
    match engine_answer(format, body, "fuzz-model") {
        Ok(answer) => {
            assert!(!answer.summary.is_empty());
            assert_eq!(answer.summary.trim(), answer.summary);
            assert!(
                answer
                    .actions
                    .iter()
                    .all(|a| !a.is_empty() && a.trim() == a)
            );
        }
        Err(reason) => assert!(
            reason.len() <= MAX_ERROR_BYTES,
            "reason of {} bytes",
            reason.len()
        ),
    }
}

fn retry(value: &[u8]) {
    if let Ok(value) = reqwest::header::HeaderValue::from_bytes(value) {
        let _ = retry_after(&value);
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let head = String::from_utf8_lossy(head);
    let mut words = head.split_whitespace();
    match words.next() {
        Some("tier") => {
            let status = words.next().and_then(|s| s.parse().ok()).unwrap_or(200);
            tier(status, body);
        }
        Some("investigator_webhook") => engine(AnswerFormat::Webhook, body),
        Some("investigator_openai") => engine(AnswerFormat::Openai, body),
        Some("retry_after") => retry(body),
        _ => {
            tier(200, data);
            engine(AnswerFormat::Webhook, data);
            engine(AnswerFormat::Openai, data);
            retry(data);
        }
    }
});
