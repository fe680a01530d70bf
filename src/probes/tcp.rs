//! `tcp`: can a connection to `host:port` be established? Resolution and
//! connect are both inside the check's timeout (enforced by
//! [`Check::run`](super::Check::run)).

use std::io;
use std::time::Duration;

use super::check::{CheckContext, ProbeError, timed_out};
use super::facts::{CheckOutcome, Facts};
use super::kind::{OwnKey, ProbeKindSpec, RunFuture, Runner, required};
use crate::settings::{ProbeKind, ProbeSettings, Problems};

/// The `tcp` kind.
pub(crate) struct Tcp;

impl ProbeKindSpec for Tcp {
    fn keys(&self) -> &'static [OwnKey] {
        &[("address", |p| p.address.is_some())]
    }

    fn validate(&self, probe: &ProbeSettings, at: &str, problems: &mut Problems) {
        match probe.address.as_deref() {
            None => required(problems, at, "address", ProbeKind::Tcp.as_str()),
            Some(address) => {
                let port_ok = address.rsplit_once(':').is_some_and(|(host, port)| {
                    !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
                });
                if !port_ok {
                    problems.push(
                        format!("{at}.address"),
                        format!("\"{address}\" is not host:port"),
                    );
                }
            }
        }
    }

    fn build(
        &self,
        probe: &ProbeSettings,
        _timeout: Duration,
        _ctx: &CheckContext,
    ) -> Result<Box<dyn Runner>, ProbeError> {
        Ok(Box::new(TcpCheck::build(probe)?))
    }
}

pub(crate) struct TcpCheck {
    address: String,
}

impl TcpCheck {
    pub(crate) fn build(probe: &ProbeSettings) -> Result<Self, ProbeError> {
        let address = probe
            .address
            .clone()
            .ok_or_else(|| ProbeError::MissingField {
                probe: probe.name.clone(),
                kind: ProbeKind::Tcp.as_str(),
                field: "address",
            })?;
        Ok(Self { address })
    }

    pub(crate) async fn run(&self) -> CheckOutcome {
        let down = |reason: String| {
            CheckOutcome::failed(
                Facts {
                    connected: Some(false),
                    ..Facts::default()
                },
                reason,
            )
        };
        let addrs: Vec<_> = match tokio::net::lookup_host(&self.address).await {
            Ok(addrs) => addrs.collect(),
            Err(err) => return down(format!("dns error resolving {}: {err}", self.address)),
        };
        if addrs.is_empty() {
            return down(format!(
                "dns error: {} resolved to no address",
                self.address
            ));
        }
        let mut last = None;
        for addr in addrs {
            match tokio::net::TcpStream::connect(addr).await {
                Ok(_stream) => {
                    return CheckOutcome::healthy(Facts {
                        connected: Some(true),
                        ..Facts::default()
                    });
                }
                Err(err) => last = Some((addr, err)),
            }
        }
        match last {
            Some((addr, err)) => down(format!("connect to {addr} failed: {}", io_cause(&err))),
            None => down(format!("could not connect to {}", self.address)),
        }
    }
}

impl Runner for TcpCheck {
    fn run(&self, _timeout: Duration) -> RunFuture<'_> {
        Box::pin(TcpCheck::run(self))
    }

    // A cut-off connect is a connection that was not established.
    fn timed_out(&self, timeout: Duration) -> CheckOutcome {
        let facts = Facts {
            connected: Some(false),
            ..Facts::default()
        };
        CheckOutcome::failed(facts, timed_out(timeout))
    }
}

/// A short, lowercase cause for the common socket errors; the OS text otherwise.
pub(crate) fn io_cause(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by peer".to_owned(),
        io::ErrorKind::TimedOut => "connection timed out".to_owned(),
        io::ErrorKind::NotFound => "not found".to_owned(),
        io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests;
