//! `terrace status -f FILE`: every server of a cluster config with its role and state, the
//! status lights of Terracotta's console. Asks each server over its client port
//! (`INFO terrace persistence`, after `AUTH` when the config sets a password).

use std::io::{Read, Write};
use std::time::Duration;

use crate::config::Config;

/// What one server said, or why it said nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerStatus {
    /// Its stripe.
    pub stripe: String,
    /// Its name.
    pub server: String,
    /// `host:port` asked.
    pub addr: String,
    /// `active` or `mirror`, when it answered.
    pub role: Option<String>,
    /// `ACTIVE-COORDINATOR`, `PASSIVE-STANDBY`, ..., `LOADING`, or why it could not be
    /// asked (`UNREACHABLE (...)`).
    pub state: String,
    /// The epoch it knows, when it answered.
    pub epoch: Option<u64>,
}

impl ServerStatus {
    /// True when the server answered.
    pub fn is_up(&self) -> bool {
        self.role.is_some()
    }
}

/// The value of `name` in INFO text.
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Asks every server of `config`, each within `timeout`.
pub fn status(config: &Config, timeout: Duration) -> Vec<ServerStatus> {
    let password = config.security.requirepass.as_deref();
    let mut out = Vec::new();
    for stripe in &config.cluster.stripes {
        for s in &stripe.servers {
            let addr = format!("{}:{}", s.host, s.port);
            let (role, state, epoch) = match ask(
                &addr,
                password,
                timeout,
                &["INFO", "terrace", "persistence"],
            ) {
                Ok(info) => {
                    let field = |name: &str| info_field(&info, name);
                    let state = if field("loading").as_deref() == Some("1") {
                        "LOADING".to_string()
                    } else {
                        field("terrace_state").unwrap_or_else(|| "UNKNOWN".into())
                    };
                    let epoch = field("terrace_epoch").and_then(|e| e.parse().ok());
                    (
                        Some(field("terrace_role").unwrap_or_default()),
                        state,
                        epoch,
                    )
                }
                Err(e) => (None, format!("UNREACHABLE ({e})"), None),
            };
            out.push(ServerStatus {
                stripe: stripe.name.clone(),
                server: s.name.clone(),
                addr,
                role,
                state,
                epoch,
            });
        }
    }
    out
}

/// The table `terrace status` prints.
pub fn render(list: &[ServerStatus]) -> String {
    let rows: Vec<[String; 6]> = list
        .iter()
        .map(|s| {
            [
                s.stripe.clone(),
                s.server.clone(),
                s.addr.clone(),
                s.role.clone().unwrap_or_else(|| "-".into()),
                s.epoch.map_or_else(|| "-".into(), |e| e.to_string()),
                s.state.clone(),
            ]
        })
        .collect();
    let head = ["STRIPE", "SERVER", "ADDRESS", "ROLE", "EPOCH", "STATE"].map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut text = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// Sends `AUTH` (if `password`) and `cmd`; returns the text of `cmd`'s reply (an error
/// reply is an `Err`).
pub fn ask(
    addr: &str,
    password: Option<&str>,
    timeout: Duration,
    cmd: &[&str],
) -> Result<String, String> {
    let mut s = crate::net::connect(addr, timeout)?;
    let mut req = Vec::new();
    if let Some(p) = password {
        req.extend_from_slice(&command(&["AUTH", p]));
    }
    req.extend_from_slice(&command(cmd));
    s.write_all(&req).map_err(|e| e.to_string())?;
    // One reply per command sent: AUTH's status, then the command's.
    let mut replies = Vec::new();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let want = 1 + usize::from(password.is_some());
    while replies.len() < want {
        while let Some((frame, n)) =
            redis_protocol::resp2::decode::decode(&buf).map_err(|e| e.to_string())?
        {
            buf.drain(..n);
            replies.push(text_of(frame)?);
        }
        if replies.len() >= want {
            break;
        }
        let n = s.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(replies.pop().unwrap_or_default())
}

/// The text of a status or bulk reply; an error reply is an error.
fn text_of(frame: redis_protocol::resp2::types::OwnedFrame) -> Result<String, String> {
    use redis_protocol::resp2::types::OwnedFrame as F;
    match frame {
        F::SimpleString(b) | F::BulkString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        F::Error(e) => Err(e),
        _ => Err("unexpected reply".into()),
    }
}

/// A command as a RESP array of bulk strings.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_become_text_and_errors_surface() {
        use redis_protocol::resp2::types::OwnedFrame as F;
        assert_eq!(text_of(F::SimpleString(b"OK".to_vec())), Ok("OK".into()));
        assert_eq!(
            text_of(F::BulkString(b"role:x".to_vec())),
            Ok("role:x".into())
        );
        assert_eq!(
            text_of(F::Error("NOAUTH Authentication required.".into())),
            Err("NOAUTH Authentication required.".into())
        );
        assert!(text_of(F::Integer(1)).is_err());
    }

    #[test]
    fn the_table_lines_up() {
        let t = render(&[
            ServerStatus {
                stripe: "s".into(),
                server: "a".into(),
                addr: "127.0.0.1:1".into(),
                role: Some("active".into()),
                state: "ACTIVE-COORDINATOR".into(),
                epoch: Some(12),
            },
            ServerStatus {
                stripe: "s".into(),
                server: "server-two".into(),
                addr: "127.0.0.1:2".into(),
                role: None,
                state: "UNREACHABLE (refused)".into(),
                epoch: None,
            },
        ]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("STRIPE  SERVER      ADDRESS"));
        assert!(lines[1].contains("active  12     ACTIVE-COORDINATOR"));
        assert!(lines[2].contains("-       -      UNREACHABLE (refused)"));
    }
}
