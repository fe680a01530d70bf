//! `dns`: one query for one record type (`A`, `AAAA`, `CNAME` or `TXT`) of
//! one name, to a configured server or the system's name servers, judged by
//! the response code and whether anything answered. This file owns the kind's
//! keys (`query`, `record`, `server`), their validation, the resolver it
//! builds and the facts it reports: `answers` (how many), `answer` (the
//! records, one per line), `rcode` (`NOERROR`, `NXDOMAIN`, ...).
//!
//! Every run asks the server: the resolver keeps no cache, since a cached
//! answer would hide an outage for as long as its TTL. The name is asked as
//! written (fully qualified, no search domains, no `/etc/hosts`), so the
//! probe watches DNS and not the host's local overrides. The timeout of the
//! whole query is enforced by [`Check::run`](super::Check::run).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RecordType};
use hickory_resolver::{Resolver, ResolverBuilder, TokioResolver};

use super::check::{CheckContext, ProbeError, timed_out};
use super::facts::{CheckOutcome, FactSpec, FactType, FactValue, Facts};
use super::kind::{OwnKey, ProbeKindSpec, RunFuture, Runner, required};
use crate::messages::Health;
use crate::settings::{ProbeKind, ProbeSettings, Problems};

/// The port of a `server` written without one.
const DNS_PORT: u16 = 53;

/// The `dns` kind.
pub(crate) struct Dns;

impl ProbeKindSpec for Dns {
    fn keys(&self) -> &'static [OwnKey] {
        &[
            ("query", |p| p.query.is_some()),
            ("record", |p| p.record.is_some()),
            ("server", |p| p.server.is_some()),
        ]
    }

    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems) {
        match probe.query.as_deref() {
            None => required(problems, at, "query", ProbeKind::Dns.as_str()),
            Some(query) => {
                if let Err(reason) = parse_query(query) {
                    problems.push(format!("{at}.query"), reason);
                }
            }
        }
        if let Some(record) = probe.record.as_deref()
            && let Err(reason) = Record::parse(record)
        {
            problems.push(format!("{at}.record"), reason);
        }
        if let Some(server) = probe.server.as_deref()
            && let Err(reason) = parse_server(server)
        {
            problems.push(format!("{at}.server"), reason);
        }
    }

    fn build(
        &self,
        probe: &ProbeSettings,
        timeout: Duration,
        _ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError> {
        let invalid = |key, reason| ProbeError::Invalid {
            probe: probe.name.clone(),
            key,
            reason,
        };
        let written = probe
            .query
            .as_deref()
            .ok_or_else(|| ProbeError::MissingField {
                probe: probe.name.clone(),
                kind: ProbeKind::Dns.as_str(),
                field: "query",
            })?;
        let query = parse_query(written).map_err(|reason| invalid("query", reason))?;
        let record = match probe.record.as_deref() {
            None => Record::A,
            Some(record) => Record::parse(record).map_err(|reason| invalid("record", reason))?,
        };
        let server = match probe.server.as_deref() {
            None => None,
            Some(server) => Some(parse_server(server).map_err(|reason| invalid("server", reason))?),
        };
        Ok(Box::new(DnsCheck {
            shown: format!(
                "{} {}",
                query.to_ascii().trim_end_matches('.'),
                record.name()
            ),
            query,
            record,
            resolver: resolver(server, timeout),
        }))
    }

    fn facts(&self) -> &'static [FactSpec] {
        &[
            FactSpec {
                name: "answers",
                ty: FactType::Integer,
                example: "1",
                absent: "only dns probes count answers",
            },
            FactSpec {
                name: "answer",
                ty: FactType::Text,
                example: "\"192.0.2.1\"",
                absent: "only dns probes have one",
            },
            FactSpec {
                name: "rcode",
                ty: FactType::Text,
                example: "\"NOERROR\"",
                absent: "only dns probes have one",
            },
        ]
    }
}

/// The record types a probe may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    A,
    Aaaa,
    Cname,
    Txt,
}

impl Record {
    const ALL: [Record; 4] = [Record::A, Record::Aaaa, Record::Cname, Record::Txt];

    /// Reads `record`; any case, since `aaaa` is no less clear.
    fn parse(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|record| record.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("\"{text}\" is not one of A, AAAA, CNAME or TXT"))
    }

    fn name(self) -> &'static str {
        match self {
            Record::A => "A",
            Record::Aaaa => "AAAA",
            Record::Cname => "CNAME",
            Record::Txt => "TXT",
        }
    }

    fn record_type(self) -> RecordType {
        match self {
            Record::A => RecordType::A,
            Record::Aaaa => RecordType::AAAA,
            Record::Cname => RecordType::CNAME,
            Record::Txt => RecordType::TXT,
        }
    }
}

/// The name to ask for, fully qualified so that no search domain is tried.
fn parse_query(text: &str) -> Result<Name, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty (the name to resolve, e.g. example.com)".to_owned());
    }
    let mut name =
        Name::from_utf8(text).map_err(|err| format!("\"{text}\" is not a DNS name: {err}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// `ip:port`, or a bare `ip` on port 53. Not a host name: resolving the
/// resolver would need a resolver.
fn parse_server(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    text.parse::<SocketAddr>()
        .or_else(|_| {
            text.parse::<IpAddr>()
                .map(|ip| SocketAddr::new(ip, DNS_PORT))
        })
        .map_err(|_| format!("\"{text}\" is not ip:port (an address, e.g. 192.0.2.53:53)"))
}

/// A resolver asking `server` (or the system's name servers), with no cache
/// and its own timeout set to the check's. `Err` when the system
/// configuration cannot be read: every run then reports that, so a host
/// without `/etc/resolv.conf` shows as an unhealthy probe, not a dead one.
fn resolver(server: Option<SocketAddr>, timeout: Duration) -> Result<TokioResolver, String> {
    let mut builder: ResolverBuilder<TokioRuntimeProvider> = match server {
        Some(address) => {
            let mut name_server = NameServerConfig::udp_and_tcp(address.ip());
            for connection in &mut name_server.connections {
                connection.port = address.port();
            }
            let mut config = ResolverConfig::default();
            config.name_servers.push(name_server);
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
        }
        None => TokioResolver::builder_tokio()
            .map_err(|err| format!("cannot read the system's DNS configuration: {err}"))?,
    };
    let options = builder.options_mut();
    options.cache_size = 0;
    options.use_hosts_file = ResolveHosts::Never;
    options.timeout = timeout;
    // CNAME records the server followed to reach the answer are not the
    // answer: only records of the asked type are reported.
    options.preserve_intermediates = false;
    builder
        .build()
        .map_err(|err| format!("cannot set up the DNS resolver: {err}"))
}

pub(crate) struct DnsCheck {
    query: Name,
    record: Record,
    /// `example.com A`, for reasons.
    shown: String,
    resolver: Result<TokioResolver, String>,
}

impl Runner for DnsCheck {
    fn run(&self, timeout: Duration) -> RunFuture<'_> {
        Box::pin(self.query_once(timeout))
    }
}

impl DnsCheck {
    async fn query_once(&self, timeout: Duration) -> CheckOutcome {
        let resolver = match &self.resolver {
            Ok(resolver) => resolver,
            Err(reason) => return CheckOutcome::failed(Facts::default(), reason.clone()),
        };
        let asked = self.record.record_type();
        match resolver.lookup(self.query.clone(), asked).await {
            Ok(lookup) => {
                let answers = lookup
                    .answers()
                    .iter()
                    .filter(|record| record.record_type() == asked)
                    .map(|record| record.data.to_string())
                    .collect();
                self.judge(lookup.message().metadata.response_code, answers)
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(none))) => {
                self.judge(none.response_code, Vec::new())
            }
            Err(NetError::Dns(DnsError::ResponseCode(code))) => self.judge(code, Vec::new()),
            // The resolver's own timeout is the check's, so this is the same
            // event as the check being cut off, and says so the same way.
            Err(NetError::Timeout) => CheckOutcome::failed(Facts::default(), timed_out(timeout)),
            Err(err) => CheckOutcome::failed(
                Facts::default(),
                format!("dns query for {} failed: {err}", self.shown),
            ),
        }
    }

    /// The verdict on a response: NOERROR with at least one record is
    /// healthy; an empty answer, NXDOMAIN, SERVFAIL or any other code is not,
    /// since the probe watches a record that should be there.
    fn judge(&self, code: ResponseCode, answers: Vec<String>) -> CheckOutcome {
        let rcode = rcode_name(code);
        let count = i64::try_from(answers.len()).unwrap_or(i64::MAX);
        let facts = Facts {
            kind_facts: vec![
                ("answers", FactValue::Integer(count)),
                ("answer", FactValue::Text(answers.join("\n"))),
                ("rcode", FactValue::Text(rcode.clone())),
            ],
            ..Facts::default()
        };
        let shown = &self.shown;
        let reason = match code {
            ResponseCode::NoError if !answers.is_empty() => return CheckOutcome::healthy(facts),
            ResponseCode::NoError => format!("no {shown} record (NOERROR with an empty answer)"),
            ResponseCode::NXDomain => format!("{shown}: the name does not exist (NXDOMAIN)"),
            ResponseCode::ServFail => {
                format!("{shown}: the server failed to resolve it (SERVFAIL)")
            }
            _ => format!("{shown}: the server answered {rcode}"),
        };
        CheckOutcome::with(facts, Health::Unhealthy, reason)
    }
}

/// The response code as DNS tools print it (`dig`'s status).
fn rcode_name(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".to_owned(),
        ResponseCode::FormErr => "FORMERR".to_owned(),
        ResponseCode::ServFail => "SERVFAIL".to_owned(),
        ResponseCode::NXDomain => "NXDOMAIN".to_owned(),
        ResponseCode::NotImp => "NOTIMP".to_owned(),
        ResponseCode::Refused => "REFUSED".to_owned(),
        ResponseCode::YXDomain => "YXDOMAIN".to_owned(),
        ResponseCode::YXRRSet => "YXRRSET".to_owned(),
        ResponseCode::NXRRSet => "NXRRSET".to_owned(),
        ResponseCode::NotAuth => "NOTAUTH".to_owned(),
        ResponseCode::NotZone => "NOTZONE".to_owned(),
        other => format!("RCODE{}", u16::from(other)),
    }
}
