//! redis-cli against Terrace: plain commands, --pipe mass insertion, RESP3 mode.

use std::io::Write;
use std::process::Stdio;

use crate::util::{TestServer, redis_cli};

fn cli(s: &TestServer, args: &[&str]) -> String {
    let out = redis_cli()
        .arg("-p")
        .arg(s.port.to_string())
        .args(args)
        .output()
        .expect("redis-cli must be installed (the README's test command installs redis-tools)");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn plain_commands() {
    let s = TestServer::start();
    assert_eq!(cli(&s, &["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&s, &["GET", "greeting"]), "hello world\n");
    assert_eq!(cli(&s, &["INCRBY", "n", "5"]), "5\n");
    assert_eq!(cli(&s, &["GET", "nope"]), "\n");
    assert!(cli(&s, &["FOO"]).starts_with("ERR unknown command 'FOO'"));
    // Interactive-style session on stdin, as a person would type it.
    let mut child = redis_cli()
        .arg("-p")
        .arg(s.port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"SET a 1\nINCR a\nMGET a greeting\nTTL a\n")
        .expect("write");
    let out = child.wait_with_output().expect("output");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\n2\n2\nhello world\n-1\n"
    );
}

#[test]
fn pipe_mass_insertion_of_100k_keys() {
    let s = TestServer::start();
    let mut payload = Vec::with_capacity(5_000_000);
    for i in 0..100_000 {
        let k = format!("mass:{i}");
        let v = format!("value-{i}");
        payload.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
                k.len(),
                v.len()
            )
            .as_bytes(),
        );
    }
    let mut child = redis_cli()
        .arg("-p")
        .arg(s.port.to_string())
        .arg("--pipe")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("redis-cli");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&payload));
    let out = child.wait_with_output().expect("output");
    writer.join().expect("writer").expect("write payload");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("errors: 0, replies: 100000"), "{text}");
    assert_eq!(cli(&s, &["DBSIZE"]), "100000\n");
    assert_eq!(cli(&s, &["GET", "mass:99999"]), "value-99999\n");
}

#[test]
fn resp3_mode() {
    let s = TestServer::start();
    assert_eq!(cli(&s, &["-3", "SET", "k", "v"]), "OK\n");
    assert_eq!(cli(&s, &["-3", "GET", "k"]), "v\n");
    // redis-cli prints a RESP3 null as an empty line when stdout is not a terminal.
    assert_eq!(cli(&s, &["-3", "GET", "nope"]), "\n");
    let hello = cli(&s, &["-3", "HELLO", "3"]);
    assert!(hello.contains("proto") && hello.contains('3'), "{hello}");
    let cfg = cli(&s, &["-3", "CONFIG", "GET", "maxclients"]);
    assert!(cfg.contains("maxclients") && cfg.contains("10000"), "{cfg}");
}

#[test]
fn status_shows_every_server_of_the_config_with_its_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (up, down) = (crate::util::free_port(), crate::util::free_port());
    let (gup, gdown) = (crate::util::free_port(), crate::util::free_port());
    let conf = dir.path().join("conf.yaml");
    std::fs::write(
        &conf,
        format!(
            "cluster:\n  stripes:\n    - name: alpha\n      servers:\n        - {{ name: one, host: 127.0.0.1, port: {up}, group_port: {gup} }}\n        - {{ name: two, host: 127.0.0.1, port: {down}, group_port: {gdown} }}\nsecurity:\n  requirepass: sesame\n"
        ),
    )
    .expect("config");
    let bin = env!("CARGO_BIN_EXE_terrace");
    let mut server = std::process::Command::new(bin)
        .args(["server", "-n", "one", "-f"])
        .arg(&conf)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let status = || {
        std::process::Command::new(bin)
            .args(["status", "--timeout-ms", "500", "-f"])
            .arg(&conf)
            .output()
            .expect("terrace status")
    };
    // Bounded wait for server one to answer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let out = loop {
        let out = status();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if text.contains("ACTIVE-COORDINATOR") || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = server.kill();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
            .to_string()
    };
    assert!(text.starts_with("STRIPE"), "{text}");
    let one = line("one");
    assert!(
        one.contains(&format!("127.0.0.1:{up}"))
            && one.contains("active")
            && one.contains("ACTIVE-COORDINATOR"),
        "{one}"
    );
    let two = line("two");
    assert!(two.contains("UNREACHABLE"), "{two}");
    assert_eq!(out.status.code(), Some(1), "a server did not answer");
}
