//! Starting, config checking and stopping the real binary.

use std::process::Command;
use std::time::Duration;

use redis::cmd;

use crate::util::TestServer;

fn terrace() -> Command {
    Command::new(env!("CARGO_BIN_EXE_terrace"))
}

#[test]
fn sigterm_exits_cleanly_after_in_flight_work() {
    let mut s = TestServer::start();
    assert!(
        s.log_text()
            .contains("ready to accept connections on 127.0.0.1:"),
        "{}",
        s.log_text()
    );
    let status = s.terminate().expect("exits within the bound");
    assert!(status.success(), "{status:?}");
    assert!(s.log_text().contains("received SIGTERM"));
}

#[tokio::test]
async fn shutdown_command_stops_the_server() {
    let mut s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = cmd("SET")
        .arg("k")
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    let r: redis::RedisResult<()> = cmd("SHUTDOWN").query_async(&mut c).await;
    assert!(r.is_err(), "SHUTDOWN closes the connection without a reply");
    let status = s.wait_exit(Duration::from_secs(15)).expect("exits");
    assert!(status.success());
}

#[test]
fn config_file_and_name() {
    let yaml = "cluster:\n  stripes:\n    - name: groupA\n      servers:\n        - { name: alpha, port: 7001 }\n        - { name: beta, port: 7002 }\n";
    let s = TestServer::start_with(Some(yaml), &["-n", "beta", "--log-level", "debug"]);
    let out = std::process::Command::new("redis-cli")
        .args(["-p", &s.port.to_string(), "INFO", "terrace"])
        .output()
        .expect("redis-cli");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("terrace_server:beta") && text.contains("terrace_stripe:groupA"),
        "{text}"
    );
}

#[test]
fn check_reports_every_error_with_its_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 7001 }\n        - { name: s2, port: 7001 }\ncaches:\n  - { name: ev, ttl: 5x }\n",
    )
    .expect("write");
    let out = terrace()
        .args(["check", "-f"])
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("caches[0].ttl"),
        "{err}"
    );

    std::fs::write(&bad, "cluster:\n  stripes:\n    - name: a\n      servers:\n        - { name: s1, port: 7001 }\n        - { name: s2, port: 7001 }\n").expect("write");
    let out = terrace()
        .args(["check", "-f"])
        .arg(&bad)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cluster.stripes[0].servers[1].port: 7001 is used twice"),
        "{err}"
    );

    let unknown = dir.path().join("unknown.yaml");
    std::fs::write(&unknown, "storage:\n  heep: 1g\n").expect("write");
    let out = terrace()
        .args(["check", "-f"])
        .arg(&unknown)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `heep`"));

    for good in ["conf/dev.yaml", "conf/reference.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(good);
        let out = terrace()
            .args(["check", "--print-config", "-f"])
            .arg(&path)
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{good}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(": OK") && text.contains("stripe"), "{text}");
    }
}

#[test]
fn help_is_there() {
    let out = terrace().arg("--help").output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("server") && text.contains("check"));
    let out = terrace().args(["server", "--help"]).output().expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--name",
        "--port",
        "--bind",
        "--log-level",
        "--threads",
    ] {
        assert!(text.contains(flag), "server --help lacks {flag}");
    }
}

#[test]
fn port_in_use_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    let out = terrace()
        .args(["server", "--port", &port.to_string()])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(&format!("could not listen on 127.0.0.1:{port}"))
    );
}

#[test]
fn shutdown_is_bounded_when_a_client_stops_reading() {
    use std::io::Write;
    let mut s = TestServer::start();
    // A client that pipelines large replies and never reads them: the server's write to it
    // blocks once the socket buffers fill.
    let mut stuck = s.raw();
    let big = "x".repeat(1 << 20);
    let mut setup = s.raw();
    setup
        .write_all(
            format!(
                "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n${}\r\n{big}\r\n",
                big.len()
            )
            .as_bytes(),
        )
        .expect("write");
    assert_eq!(crate::util::read_n(&mut setup, 5), b"+OK\r\n");
    let burst = "GET big\r\n".repeat(200);
    stuck.write_all(burst.as_bytes()).expect("write");
    std::thread::sleep(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = s
        .terminate()
        .expect("exits within the bound despite the stuck client");
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(14));
    drop(stuck);
}

#[test]
fn sigterm_still_stops_a_server_whose_stderr_was_closed() {
    use std::io::{BufRead, BufReader};
    // A log reader that went away (`terrace server 2>&1 | head -1`): every later log line
    // fails with EPIPE, and the one SIGTERM logs must not take the shutdown down with it.
    let port = crate::util::free_port();
    let mut child = terrace()
        .args(["server", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr"));
    // Up to the ready line (the signal handlers are installed before it), then the reader
    // is dropped: the pipe has no reader any more.
    while !first.contains("ready to accept connections") {
        first.clear();
        if lines.read_line(&mut first).expect("a log line") == 0 {
            panic!("the server ended before it was ready");
        }
    }
    drop(lines);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "not listening: {first}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid = rustix::process::Pid::from_raw(child.id() as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break Some(s);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM with a closed stderr: {status:?}"
    );
}
