//! `terrace status -f FILE`: every server and voter of a cluster config with its role,
//! state, epoch, replication lag and memory: the status lights of Terracotta's console
//! (in colour on a terminal: green active, cyan standby, orange syncing, red down), or JSON
//! for scripts. Asks each server over its client port (`INFO terrace persistence memory`,
//! after `AUTH` when the config sets a password) and each voter over its group port.

use std::io::{Read, Write};
use std::time::Duration;

use serde::Serialize;

use crate::config::Config;
use crate::replication::wire::PeerView;

/// What one server (or voter) said, or why it said nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    /// Its stripe (`-` for a voter).
    pub stripe: String,
    /// Its name.
    pub server: String,
    /// `host:port` asked.
    pub addr: String,
    /// `active`, `mirror`, `starting` or `voter`, when it answered.
    pub role: Option<String>,
    /// `ACTIVE-COORDINATOR`, `PASSIVE-STANDBY`, ..., `LOADING`, `VOTER`, or why it could
    /// not be asked (`UNREACHABLE (...)`).
    pub state: String,
    /// The epoch it knows, when it answered (a voter: none).
    pub epoch: Option<u64>,
    /// Its last log sequence number.
    pub lsn: Option<u64>,
    /// A mirror: how many records it is behind its stripe's active (by lsn).
    pub lag: Option<u64>,
    /// Bytes its caches use (`used_memory`).
    pub used_memory: Option<u64>,
    /// Bytes in the heap tier.
    pub heap_used: Option<u64>,
    /// Bytes of off-heap segments in use.
    pub offheap_used: Option<u64>,
    /// Its data directory in the config (tools read its role file to restart the last
    /// actives first).
    pub data: Option<String>,
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

/// Asks every server and voter of `config`, each within `timeout`.
pub fn status(config: &Config, timeout: Duration) -> Vec<ServerStatus> {
    let creds = config.security.peer_credentials();
    let password = creds.as_ref();
    let mut out = Vec::new();
    for stripe in &config.cluster.stripes {
        let first = out.len();
        for s in &stripe.servers {
            let addr = format!("{}:{}", s.host, s.port);
            let mut st = ServerStatus {
                stripe: stripe.name.clone(),
                server: s.name.clone(),
                addr: addr.clone(),
                data: s.data.clone(),
                ..Default::default()
            };
            match ask(
                &addr,
                password,
                timeout,
                &["INFO", "terrace", "persistence", "memory"],
            ) {
                Ok(info) => {
                    let field = |name: &str| info_field(&info, name);
                    let num = |name: &str| field(name).and_then(|v| v.parse().ok());
                    st.state = if field("loading").as_deref() == Some("1") {
                        "LOADING".to_string()
                    } else {
                        field("terrace_state").unwrap_or_else(|| "UNKNOWN".into())
                    };
                    st.role = Some(field("terrace_role").unwrap_or_default());
                    st.epoch = num("terrace_epoch");
                    st.lsn = num("terrace_lsn");
                    st.used_memory = num("used_memory");
                    st.heap_used = num("heap_used");
                    st.offheap_used = num("offheap_used");
                }
                Err(e) => st.state = format!("UNREACHABLE ({e})"),
            }
            out.push(st);
        }
        // A mirror's lag: the records its stripe's active has and it has not (only for a
        // mirror of the active's epoch: another epoch's lsns are another history).
        let head = out[first..]
            .iter()
            .find(|s| s.role.as_deref() == Some("active"))
            .and_then(|s| s.lsn.zip(s.epoch));
        if let Some((head, epoch)) = head {
            for s in &mut out[first..] {
                if s.role.as_deref() == Some("mirror") && s.epoch == Some(epoch) {
                    s.lag = s.lsn.map(|l| head.saturating_sub(l));
                }
            }
        }
    }
    for v in &config.cluster.voters {
        let addr = format!("{}:{}", v.host, v.group_port);
        let mut st = ServerStatus {
            stripe: "-".into(),
            server: v.name.clone(),
            addr: addr.clone(),
            data: v.data.clone(),
            ..Default::default()
        };
        match crate::replication::role::probe_within(&addr, timeout) {
            Ok(view) if is_voter(&view, &v.name) => {
                st.role = Some("voter".into());
                st.state = "VOTER".into();
            }
            Ok(view) => st.state = format!("UNKNOWN ({} says {})", view.name, view.state),
            Err(e) => st.state = format!("UNREACHABLE ({e})"),
        }
        out.push(st);
    }
    out
}

/// Whether a group port's HELLO answer is voter `name`'s.
pub fn is_voter(view: &PeerView, name: &str) -> bool {
    view.name == name && view.state == "VOTER"
}

/// The colour of a state's status light (ANSI SGR), as in Terracotta's console.
fn light(state: &str) -> Option<&'static str> {
    match state {
        "ACTIVE-COORDINATOR" => Some("32"),
        "PASSIVE-STANDBY" => Some("36"),
        "INITIALIZING" | "PASSIVE-UNINITIALIZED" | "LOADING" | "STARTING" => Some("38;5;208"),
        s if s.starts_with("UNREACHABLE") => Some("31"),
        _ => None,
    }
}

/// Bytes for people: `512B`, `1.5K`, `12.0M`, `3.2G`.
fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["K", "M", "G", "T"];
    if n < 1024 {
        return format!("{n}B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1}{}", UNITS[u])
}

/// The table `terrace status` prints; `colour` paints the STATE column's lights.
pub fn render(list: &[ServerStatus], colour: bool) -> String {
    let dash = || "-".to_string();
    let rows: Vec<[String; 8]> = list
        .iter()
        .map(|s| {
            [
                s.stripe.clone(),
                s.server.clone(),
                s.addr.clone(),
                s.role.clone().unwrap_or_else(dash),
                s.epoch.map_or_else(dash, |e| e.to_string()),
                s.lag.map_or_else(dash, |l| l.to_string()),
                s.used_memory.map_or_else(dash, human),
                s.state.clone(),
            ]
        })
        .collect();
    let head = [
        "STRIPE", "SERVER", "ADDRESS", "ROLE", "EPOCH", "LAG", "MEMORY", "STATE",
    ]
    .map(String::from);
    let mut widths = head.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut text = String::new();
    for r in std::iter::once(&head).chain(&rows) {
        let mut line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        // STATE is last: colouring it does not upset the padding of the others.
        if let (true, Some(last)) = (colour, line.last_mut())
            && let Some(sgr) = light(last.trim_end())
        {
            *last = format!("\x1b[{sgr}m{}\x1b[0m", last.trim_end());
        }
        text.push_str(line.join("  ").trim_end());
        text.push('\n');
    }
    text
}

/// The JSON `terrace status --json` prints: an array of every server and voter.
pub fn render_json(list: &[ServerStatus]) -> String {
    serde_json::to_string_pretty(list).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Sends `AUTH` (if `password`: `security.peer_user`/`peer_password` or `requirepass`) and `cmd`; returns the text of `cmd`'s reply (an error
/// reply is an `Err`).
pub fn ask(
    addr: &str,
    password: Option<&crate::config::Credentials>,
    timeout: Duration,
    cmd: &[&str],
) -> Result<String, String> {
    let mut s = crate::net::connect_to(addr, crate::net::Port::Client, timeout)?;
    let mut req = Vec::new();
    if let Some(p) = password {
        req.extend_from_slice(&command(&p.auth_args()));
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
        let list = [
            ServerStatus {
                stripe: "s".into(),
                server: "a".into(),
                addr: "127.0.0.1:1".into(),
                role: Some("active".into()),
                state: "ACTIVE-COORDINATOR".into(),
                epoch: Some(12),
                used_memory: Some(1536),
                ..Default::default()
            },
            ServerStatus {
                stripe: "s".into(),
                server: "b".into(),
                addr: "127.0.0.1:3".into(),
                role: Some("mirror".into()),
                state: "PASSIVE-STANDBY".into(),
                epoch: Some(12),
                lag: Some(7),
                used_memory: Some(100),
                ..Default::default()
            },
            ServerStatus {
                stripe: "s".into(),
                server: "server-two".into(),
                addr: "127.0.0.1:2".into(),
                state: "UNREACHABLE (refused)".into(),
                ..Default::default()
            },
        ];
        let t = render(&list, false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("STRIPE  SERVER      ADDRESS"));
        assert!(lines[1].contains("active  12     -    1.5K    ACTIVE-COORDINATOR"));
        assert!(lines[2].contains("mirror  12     7    100B    PASSIVE-STANDBY"));
        assert!(lines[3].contains("-       -      -    -       UNREACHABLE (refused)"));
        assert!(!t.contains('\x1b'));
        let c = render(&list, true);
        assert!(c.contains("\x1b[32mACTIVE-COORDINATOR\x1b[0m"));
        assert!(c.contains("\x1b[36mPASSIVE-STANDBY\x1b[0m"));
        assert!(c.contains("\x1b[31mUNREACHABLE (refused)\x1b[0m"));
        let j: serde_json::Value = serde_json::from_str(&render_json(&list)).expect("json");
        assert_eq!(j[1]["lag"], 7);
        assert_eq!(j[2]["role"], serde_json::Value::Null);
        assert_eq!(human(3 << 30), "3.0G");
        let peer = |line: &str| PeerView::parse(line).expect("a PEER line");
        assert!(is_voter(&peer("PEER v1 VOTER 4 0 0 0"), "v1"));
        assert!(!is_voter(&peer("PEER v2 VOTER 4 0 0 0"), "v1"));
        assert!(!is_voter(&peer("PEER v1 PASSIVE-STANDBY 4 0 0 0"), "v1"));
    }
}
