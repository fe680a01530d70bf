//! The JSON bodies of the API's mutating routes, read as each handler reads
//! them before it touches any state ([`warden::api::check_body`]).
//!
//! Input: line 1 names the route (`audit_note`, `control`, `incident_open`,
//! `incident_note`, `incident_resolve`, `incident_severity`, `issue_ack`,
//! `chaos_fault`), the rest is the body. Every body is accepted or refused
//! with a 400 or 413 in the API's error shape; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden::api::{BodyRoute, check_body};

fn route(name: &[u8]) -> Option<BodyRoute> {
    Some(match name {
        b"audit_note" => BodyRoute::AuditNote,
        b"control" => BodyRoute::Control,
        b"incident_open" => BodyRoute::IncidentOpen,
        b"incident_note" => BodyRoute::IncidentNote,
        b"incident_resolve" => BodyRoute::IncidentResolve,
        b"incident_severity" => BodyRoute::IncidentSeverity,
        b"issue_ack" => BodyRoute::IssueAck,
        b"chaos_fault" => BodyRoute::ChaosFault,
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let (name, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    // An unknown name still exercises every route, so no input is wasted.
    let routes = match route(name) {
        Some(route) => vec![route],
        None => BodyRoute::ALL.to_vec(),
    };
    for route in routes {
        if let Err(error) = check_body(route, body) {
            assert!(
                error.status.as_u16() == 400 || error.status.as_u16() == 413,
                "{route:?} refused with {}: {}",
                error.status,
                error.message
            );
            assert!(!error.message.is_empty());
        }
    }
});
