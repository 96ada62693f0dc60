//! Operating a cluster with the shipped tools, on real processes: `tools/cluster up`,
//! `terrace status --json` (servers and voters), `terrace health`, the safe `terrace
//! shutdown` (mirrors first), a restart that brings the last active back first, and JSON
//! logs that record every role change.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::util::free_port;

fn terrace(args: &[&str], conf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(args)
        .arg("-f")
        .arg(conf)
        .output()
        .expect("terrace")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `terrace status --json`.
fn status(conf: &Path) -> Vec<serde_json::Value> {
    let o = terrace(&["status", "--json"], conf);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

fn member<'a>(list: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|m| m["server"] == name)
        .unwrap_or_else(|| panic!("{name} not in {list:?}"))
}

/// Waits (bounded) until `name` is in `state`.
fn wait_state(conf: &Path, name: &str, state: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = status(conf);
        if member(&list, name)["state"] == state {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not {state}: {list:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn safe_shutdown_then_up_brings_the_last_active_back_first_with_json_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p1, p2) = (free_port(), free_port());
    let conf = dir.path().join("ha.yaml");
    std::fs::write(
        &conf,
        format!(
            "cluster:\n  election_time: 1s\n  stripes:\n    - name: s1\n      servers:\n        - {{ name: a, port: {p1}, group_port: {}, data: data/a }}\n        - {{ name: b, port: {p2}, group_port: {}, data: data/b }}\n  voters:\n    - {{ name: v, group_port: {}, data: data/v }}\nstorage:\n  restartable: true\ncaches:\n  - {{ name: s, consistency: strong }}\n",
            free_port(),
            free_port(),
            free_port()
        ),
    )
    .expect("config");
    let folder = dir.path().join("run");
    let tool = |action: &str| {
        Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/cluster"))
            .args([action, "-f", conf.to_str().expect("path"), "--dir"])
            .arg(&folder)
            .env("TERRACE_BIN", env!("CARGO_BIN_EXE_terrace"))
            .env("TERRACE_LOG_FORMAT", "json")
            .output()
            .expect("tools/cluster")
    };
    let up = tool("up");
    assert!(up.status.success(), "{}", text(&up));
    let list = status(&conf);
    assert_eq!(list.len(), 3, "two servers and a voter: {list:?}");
    assert_eq!(member(&list, "v")["role"], "voter");
    assert_eq!(member(&list, "a")["state"], "ACTIVE-COORDINATOR");
    wait_state(&conf, "b", "PASSIVE-STANDBY");
    for name in ["a", "b", "v"] {
        let h = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(["health", "-n", name])
            .env("TERRACE_CONFIG", &conf)
            .output()
            .expect("health");
        assert!(h.status.success(), "{name}: {}", text(&h));
    }
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{p1}/"))
        .and_then(|c| c.get_connection())
        .expect("connect");
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("s:{i}"))
            .arg(i)
            .query(&mut c)
            .expect("set");
    }
    // b becomes the active: the last active is then not the first listed.
    let f = terrace(&["failover", "--stripe", "s1"], &conf);
    assert!(f.status.success(), "{}", text(&f));
    wait_state(&conf, "b", "ACTIVE-COORDINATOR");
    wait_state(&conf, "a", "PASSIVE-STANDBY");

    // Safe shutdown: the mirror (a) first, then the active (b); the voter keeps running.
    let down = terrace(&["shutdown"], &conf);
    let said = text(&down);
    assert!(down.status.success(), "{said}");
    let (ia, ib) = (said.find("a (mirror"), said.find("b (active"));
    assert!(
        ia.is_some() && ib.is_some() && ia < ib,
        "mirror first: {said}"
    );
    let list = status(&conf);
    for name in ["a", "b"] {
        assert!(
            member(&list, name)["state"]
                .as_str()
                .is_some_and(|s| s.starts_with("UNREACHABLE")),
            "{name} stopped: {list:?}"
        );
    }
    let h = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["health", "-n", "a"])
        .env("TERRACE_CONFIG", &conf)
        .output()
        .expect("health");
    assert_eq!(h.status.code(), Some(1), "a stopped server is unhealthy");

    // Up again: b, the last active, is started first and is active again, with the data.
    let up = tool("up");
    let said = text(&up);
    assert!(up.status.success(), "{said}");
    assert!(said.contains("last actives first: b"), "{said}");
    assert!(said.contains("v: already running"), "{said}");
    wait_state(&conf, "b", "ACTIVE-COORDINATOR");
    wait_state(&conf, "a", "PASSIVE-STANDBY");
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{p2}/"))
        .and_then(|c| c.get_connection())
        .expect("connect");
    for i in 0..100 {
        let v: Option<i64> = redis::cmd("GET")
            .arg(format!("s:{i}"))
            .query(&mut c)
            .expect("get");
        assert_eq!(v, Some(i), "s:{i} after the restart");
    }

    // JSON logs: every line an object; role changes are among them.
    let log = std::fs::read_to_string(folder.join("logs").join("b.log")).expect("log");
    let mut roles = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string(),
            "{line}"
        );
        if v["message"]
            .as_str()
            .is_some_and(|m| m.contains("made it active") || m.contains("PASSIVE-STANDBY"))
        {
            roles += 1;
        }
    }
    assert!(roles >= 2, "role changes logged:\n{log}");
    let down = tool("down");
    assert!(down.status.success(), "{}", text(&down));
}
