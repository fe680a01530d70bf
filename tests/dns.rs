//! The `dns` probe kind through the public API, against a DNS server inside
//! the test: a UDP socket on 127.0.0.1 answering with messages encoded by
//! hickory-proto, so every answer, response code and silence is chosen here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::proto::op::{Message, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, CNAME, TXT};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::time::Instant;
use warden::messages::Health;
use warden::probes::classify::{classify, parse};
use warden::probes::{Check, CheckContext, CheckOutcome, FactValue, Heartbeats, http_client};
use warden::settings::{ConfigSource, ProbeDefaults, ProbeKind, ProbeSettings, load_with_env};

/// What the test server does with one query.
#[derive(Clone)]
enum Reply {
    /// NOERROR with these records, after a pause.
    Records(Vec<RData>, Duration),
    /// This response code and no answer.
    Code(ResponseCode),
    /// Nothing at all.
    Silence,
}

/// A DNS server on 127.0.0.1 that answers every query by `reply`, for as
/// long as the test runs.
async fn server(reply: fn(&Name, RecordType) -> Reply) -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0_u8; 4096];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buffer).await else {
                return;
            };
            let Ok(query) = Message::from_vec(&buffer[..len]) else {
                continue;
            };
            let Some(question) = query.queries.first().cloned() else {
                continue;
            };
            let mut response = Message::response(query.metadata.id, query.metadata.op_code);
            response.metadata.recursion_desired = query.metadata.recursion_desired;
            response.metadata.recursion_available = true;
            response.add_query(question.clone());
            match reply(&question.name, question.query_type) {
                Reply::Silence => continue,
                Reply::Code(code) => response.metadata.response_code = code,
                Reply::Records(records, pause) => {
                    tokio::time::sleep(pause).await;
                    for data in records {
                        response.add_answer(Record::from_rdata(question.name.clone(), 60, data));
                    }
                }
            }
            socket
                .send_to(&response.to_vec().unwrap(), peer)
                .await
                .unwrap();
        }
    });
    address
}

fn a(last: u8) -> RData {
    RData::A(A(Ipv4Addr::new(192, 0, 2, last)))
}

/// The test zone: `up.test` has one A record, a TXT and a CNAME (and no
/// other type);
/// `two.test` has two A records, 50 ms late; `broken.test` fails; the rest
/// does not exist.
fn zone(name: &Name, record: RecordType) -> Reply {
    let name = name.to_ascii().to_ascii_lowercase();
    match (name.as_str(), record) {
        ("up.test.", RecordType::A) => Reply::Records(vec![a(10)], Duration::ZERO),
        ("up.test.", RecordType::TXT) => Reply::Records(
            vec![RData::TXT(TXT::new(vec!["v=spf1 -all".to_owned()]))],
            Duration::ZERO,
        ),
        ("up.test.", RecordType::CNAME) => Reply::Records(
            vec![RData::CNAME(CNAME(Name::from_ascii("real.test.").unwrap()))],
            Duration::ZERO,
        ),
        ("up.test.", _) => Reply::Records(Vec::new(), Duration::ZERO),
        ("two.test.", RecordType::A) => {
            Reply::Records(vec![a(11), a(12)], Duration::from_millis(50))
        }
        ("broken.test.", _) => Reply::Code(ResponseCode::ServFail),
        _ => Reply::Code(ResponseCode::NXDomain),
    }
}

fn probe(server: SocketAddr, query: &str, record: Option<&str>) -> ProbeSettings {
    ProbeSettings {
        name: "dns".into(),
        kind: Some(ProbeKind::Dns),
        query: Some(query.into()),
        record: record.map(Into::into),
        server: Some(server.to_string()),
        timeout: Some(Duration::from_secs(3)),
        ..ProbeSettings::default()
    }
}

async fn run(probe: &ProbeSettings) -> CheckOutcome {
    let ctx = CheckContext {
        http: http_client().unwrap(),
        heartbeats: Heartbeats::default(),
    };
    let check = Check::build(probe, &ProbeDefaults::default(), &ctx).unwrap();
    check.run().await
}

fn fact<'a>(outcome: &'a CheckOutcome, name: &str) -> &'a FactValue {
    outcome
        .facts
        .kind_fact(name)
        .unwrap_or_else(|| panic!("no {name} in {outcome:?}"))
}

fn text(value: &str) -> FactValue {
    FactValue::Text(value.to_owned())
}

#[tokio::test]
async fn an_a_record_that_answers_is_healthy() {
    let address = server(zone).await;
    let outcome = run(&probe(address, "up.test", None)).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{outcome:?}");
    assert_eq!(fact(&outcome, "answers"), &FactValue::Integer(1));
    assert_eq!(fact(&outcome, "answer"), &text("192.0.2.10"));
    assert_eq!(fact(&outcome, "rcode"), &text("NOERROR"));
    let details = outcome.facts.to_details();
    assert_eq!(details["rcode"], "NOERROR", "{details}");
    assert_eq!(details["answers"], 1, "{details}");
}

#[tokio::test]
async fn txt_and_cname_records_are_reported_as_text() {
    let address = server(zone).await;
    let outcome = run(&probe(address, "up.test.", Some("TXT"))).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{outcome:?}");
    assert_eq!(fact(&outcome, "answer"), &text("v=spf1 -all"));
    let outcome = run(&probe(address, "up.test", Some("cname"))).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{outcome:?}");
    assert_eq!(fact(&outcome, "answer"), &text("real.test."));
}

#[tokio::test]
async fn nxdomain_is_unhealthy_with_a_reason() {
    let address = server(zone).await;
    let outcome = run(&probe(address, "gone.test", None)).await;
    assert_eq!(outcome.verdict, Health::Unhealthy, "{outcome:?}");
    assert_eq!(fact(&outcome, "rcode"), &text("NXDOMAIN"));
    assert_eq!(fact(&outcome, "answers"), &FactValue::Integer(0));
    let (health, reasons) = classify(outcome, &[], &[]);
    assert_eq!(health, Health::Unhealthy);
    assert_eq!(
        reasons,
        ["gone.test A: the name does not exist (NXDOMAIN)"],
        "{reasons:?}"
    );
}

#[tokio::test]
async fn servfail_and_an_empty_answer_are_unhealthy() {
    let address = server(zone).await;
    let outcome = run(&probe(address, "broken.test", None)).await;
    assert_eq!(outcome.verdict, Health::Unhealthy, "{outcome:?}");
    assert!(
        outcome
            .reasons
            .iter()
            .any(|reason| reason.contains("SERVFAIL")),
        "{outcome:?}"
    );
    let outcome = run(&probe(address, "up.test", Some("AAAA"))).await;
    assert_eq!(outcome.verdict, Health::Unhealthy, "{outcome:?}");
    assert_eq!(fact(&outcome, "answers"), &FactValue::Integer(0));
    assert!(
        outcome
            .reasons
            .iter()
            .any(|reason| reason.contains("no up.test AAAA record")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn conditions_read_answers_answer_rcode_and_latency() {
    let address = server(zone).await;
    let outcome = run(&probe(address, "two.test", None)).await;
    assert_eq!(outcome.verdict, Health::Healthy, "{outcome:?}");
    assert_eq!(fact(&outcome, "answer"), &text("192.0.2.11\n192.0.2.12"));
    let conditions = |list: &[&str]| list.iter().map(|c| parse(c).unwrap()).collect::<Vec<_>>();
    let unhealthy = conditions(&[
        "answers < 3",
        "answer not contains \"192.0.2.12\"",
        "rcode != \"NOERROR\"",
    ]);
    // The server waits 50 ms before it answers.
    let degraded = conditions(&["latency > 40ms"]);
    let (health, reasons) = classify(outcome.clone(), &unhealthy, &degraded);
    assert_eq!(health, Health::Unhealthy, "{reasons:?}");
    assert_eq!(
        reasons.first().map(String::as_str),
        Some("condition \"answers < 3\" matched (answers 2)"),
        "{reasons:?}"
    );
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(reasons[1].starts_with("condition \"latency > 40ms\" matched"));
    let (health, reasons) = classify(outcome, &conditions(&["answers < 2"]), &[]);
    assert_eq!(health, Health::Healthy, "{reasons:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let address = server(|_, _| Reply::Silence).await;
    let mut probe = probe(address, "up.test", None);
    probe.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    let outcome = run(&probe).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome.verdict, Health::Unhealthy, "{outcome:?}");
    assert_eq!(outcome.reasons, ["timed out after 300ms"], "{outcome:?}");
    assert!(outcome.facts.kind_fact("rcode").is_none());
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
    // A condition on a fact the timeout never measured adds nothing.
    let unhealthy = [parse("rcode != \"NOERROR\"").unwrap()];
    let (health, reasons) = classify(outcome, &unhealthy, &[]);
    assert_eq!(health, Health::Unhealthy);
    assert_eq!(reasons, ["timed out after 300ms"]);
}

fn problems(toml: &str) -> Vec<String> {
    let source = ConfigSource::Text {
        name: "dns.toml".to_owned(),
        toml: toml.to_owned(),
    };
    match load_with_env(&source, Some(HashMap::new())) {
        Ok(settings) => panic!("expected problems, got {settings:?}"),
        Err(error) => error.lines(),
    }
}

#[test]
fn dns_keys_are_validated_and_named() {
    let lines = problems(
        r#"
[[probes]]
name = "no-query"
kind = "dns"

[[probes]]
name = "bad-values"
kind = "dns"
query = "a..b"
record = "MX"
server = "dns.example:53"
unhealthy_if = ["rcode == 3"]

[[probes]]
name = "wrong-kind"
kind = "http"
url = "http://127.0.0.1/"
query = "example.com"
"#,
    );
    let joined = lines.join("\n");
    for needle in [
        "probes[0].query: is required for kind dns",
        "probes[1].query: \"a..b\" is not a DNS name",
        "probes[1].record: \"MX\" is not one of A, AAAA, CNAME or TXT",
        "probes[1].server: \"dns.example:53\" is not ip:port",
        "probes[1].unhealthy_if[0]: invalid condition \"rcode == 3\": rcode compares to a quoted string",
        "probes[2].query: is not used by kind http",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn a_valid_dns_probe_loads() {
    let source = ConfigSource::Text {
        name: "dns.toml".to_owned(),
        toml: r#"
[[probes]]
name = "resolver"
kind = "dns"
query = "example.com"
record = "AAAA"
server = "127.0.0.1:5353"
unhealthy_if = ["answers == 0", "rcode != \"NOERROR\""]
degraded_if = ["latency > 200ms", "answer not contains \"2001:db8::1\""]
"#
        .to_owned(),
    };
    let settings = load_with_env(&source, Some(HashMap::new())).unwrap();
    assert_eq!(settings.probes[0].kind, Some(ProbeKind::Dns));
}
