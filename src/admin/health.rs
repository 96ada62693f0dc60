//! `terrace health`: exit 0 when a server answers PING (or a voter its group-port
//! handshake), for container health checks. It reads the same `-f` / `-n` (or
//! `TERRACE_CONFIG` / `TERRACE_NAME`) as `terrace server`, so an image's HEALTHCHECK needs
//! no arguments; with no config it checks the dev server on 127.0.0.1:6379.

use std::time::Duration;

use super::status::{ask, is_voter};
use crate::config::Config;

/// Checks the server or voter `name` of `config` (the only server when `name` is `None`).
pub fn check(
    config: Option<&Config>,
    name: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let Some(config) = config else {
        return ping("127.0.0.1:6379", None, timeout);
    };
    let servers: Vec<_> = config
        .cluster
        .stripes
        .iter()
        .flat_map(|s| &s.servers)
        .collect();
    let creds = config.security.peer_credentials();
    let pass = creds.as_ref();
    match name {
        None => match servers.as_slice() {
            [only] => ping(&format!("{}:{}", only.host, only.port), pass, timeout),
            _ => Err("the config lists several servers: name one with -n".into()),
        },
        Some(n) => {
            if let Some(s) = servers.iter().find(|s| s.name == n) {
                return ping(&format!("{}:{}", s.host, s.port), pass, timeout);
            }
            let v = config
                .cluster
                .voters
                .iter()
                .find(|v| v.name == n)
                .ok_or_else(|| format!("no server or voter named '{n}' in the config"))?;
            let addr = format!("{}:{}", v.host, v.group_port);
            let view = crate::replication::role::probe_within(&addr, timeout)
                .map_err(|e| format!("{addr}: {e}"))?;
            if is_voter(&view, n) {
                Ok(format!("{n} ({addr}): voter up"))
            } else {
                Err(format!("{addr}: {} answers, as {}", view.name, view.state))
            }
        }
    }
}

/// PING over the client port; LOADING and other errors are unhealthy.
fn ping(
    addr: &str,
    pass: Option<&crate::config::Credentials>,
    timeout: Duration,
) -> Result<String, String> {
    match ask(addr, pass, timeout, &["PING"]) {
        Ok(r) if r == "PONG" => Ok(format!("{addr}: PONG")),
        Ok(r) => Err(format!("{addr}: unexpected answer {r:?}")),
        Err(e) => Err(format!("{addr}: {e}")),
    }
}
