//! Limits, each with a test: query buffer, bulk length, multibulk count, output buffer
//! (hard and soft, normal and pubsub classes), pattern complexity, and Redis's limits for
//! unauthenticated clients, up to 1,000 of them sending huge headers and never reading.
//! (maxclients: bad_input.rs; tracking-table-max-keys: tracking.rs.)

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::util::{TestServer, field, read_n, read_to_close, run};

/// `GET big` as a RESP array.
const GET_BIG: &[u8] = b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n";

/// The ids in CLIENT LIST.
async fn client_ids(c: &mut MultiplexedConnection) -> Vec<u64> {
    let list: String = run(c, ("CLIENT", "LIST")).await;
    list.lines()
        .filter_map(|l| l.strip_prefix("id=")?.split(' ').next()?.parse().ok())
        .collect()
}

/// Waits (bounded) until client `id` is gone from CLIENT LIST.
async fn wait_gone(c: &mut MultiplexedConnection, id: u64, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if !client_ids(c).await.contains(&id) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// An INFO stats counter.
async fn stat(c: &mut MultiplexedConnection, name: &str) -> u64 {
    let info: String = run(c, ("INFO", "stats")).await;
    field(&info, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO stats has no {name}"))
}

/// A raw connection and its client id.
fn raw_with_id(s: &TestServer) -> (TcpStream, u64) {
    let mut raw = s.raw();
    raw.write_all(b"CLIENT ID\r\n").unwrap();
    let line = String::from_utf8_lossy(&read_n(&mut raw, 3)).to_string();
    let mut rest = line;
    while !rest.ends_with("\r\n") {
        rest.push_str(&String::from_utf8_lossy(&read_n(&mut raw, 1)));
    }
    let id = rest
        .trim_start_matches(':')
        .trim()
        .parse()
        .expect("client id");
    (raw, id)
}

/// Reads until the server ends the connection; a reset (the server closed with requests
/// of ours unread) counts as ended too. False on the read timeout.
fn read_until_ended(s: &mut TcpStream) -> (Vec<u8>, bool) {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

async fn set_big(c: &mut MultiplexedConnection, size: usize) {
    let _: () = run(c, ("SET", "big", "x".repeat(size))).await;
}

#[tokio::test]
async fn query_buffer_limit_closes_the_client() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(
        &mut c,
        ("CONFIG", "SET", "client-query-buffer-limit", "1mb"),
    )
    .await;
    let mut raw = s.raw();
    // A 2 MB bulk is allowed (proto-max-bulk-len is 512 MB) but cannot be buffered.
    raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n")
        .unwrap();
    let chunk = vec![b'x'; 64 << 10];
    for _ in 0..20 {
        if raw.write_all(&chunk).is_err() {
            break;
        }
    }
    let (out, closed) = read_until_ended(&mut raw);
    assert!(closed, "closed at the query buffer limit");
    assert!(out.is_empty(), "{:?}", String::from_utf8_lossy(&out));
    assert_eq!(
        stat(&mut c, "client_query_buffer_limit_disconnections").await,
        1
    );
    let n: i64 = run(&mut c, ("EXISTS", "k")).await;
    assert_eq!(n, 0, "the half-sent SET never ran");
}

#[tokio::test]
async fn proto_max_bulk_len_is_enforced_at_the_header() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(&mut c, ("CONFIG", "SET", "proto-max-bulk-len", "1mb")).await;
    let mut raw = s.raw();
    raw.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n")
        .unwrap();
    let (out, closed) = read_to_close(&mut raw);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR Protocol error: invalid bulk length\r\n"
    );
    assert!(closed);
    // Exactly the limit is fine.
    let _: () = run(&mut c, ("SET", "k", "v".repeat(1 << 20))).await;
    let n: i64 = run(&mut c, ("STRLEN", "k")).await;
    assert_eq!(n, 1 << 20);
}

#[tokio::test]
async fn multibulk_count_limit() {
    let s = TestServer::start_with(Some("limits:\n  max_multibulk_len: 100\n"), &[]);
    let mut raw = s.raw();
    let mut ok = b"*100\r\n$3\r\nDEL\r\n".to_vec();
    for i in 0..99 {
        let k = format!("k{i:02}");
        ok.extend_from_slice(format!("$3\r\n{k}\r\n").as_bytes());
    }
    raw.write_all(&ok).unwrap();
    assert_eq!(read_n(&mut raw, 4), b":0\r\n", "100 elements are allowed");
    raw.write_all(b"*101\r\n").unwrap();
    let (out, closed) = read_to_close(&mut raw);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR Protocol error: invalid multibulk length\r\n"
    );
    assert!(closed);
}

#[tokio::test]
async fn config_get_set_client_output_buffer_limit() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let v: Vec<String> = run(&mut c, ("CONFIG", "GET", "client-output-buffer-limit")).await;
    assert_eq!(
        v,
        vec![
            "client-output-buffer-limit".to_string(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60".to_string()
        ]
    );
    let _: () = run(
        &mut c,
        (
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "replica 64mb 1mb 10",
        ),
    )
    .await;
    let v: Vec<String> = run(&mut c, ("CONFIG", "GET", "client-output-buffer-limit")).await;
    assert_eq!(
        v[1],
        "normal 0 0 0 slave 67108864 1048576 10 pubsub 33554432 8388608 60"
    );
    let e = crate::util::try_run::<()>(
        &mut c,
        (
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "master 0 0 0",
        ),
    )
    .await
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("Invalid client class specified in buffer limit configuration."),
        "{e}"
    );
}

#[tokio::test]
async fn normal_client_that_never_reads_is_closed_at_the_hard_limit() {
    let s = TestServer::start_with(
        Some("limits:\n  client_output_buffer_limit:\n    normal: { hard: 1m }\n"),
        &[],
    );
    let mut c = s.conn().await;
    set_big(&mut c, 100_000).await;
    // Under the limit: served in full.
    let (mut polite, _) = raw_with_id(&s);
    polite.write_all(&GET_BIG.repeat(5)).unwrap();
    assert_eq!(read_n(&mut polite, 5 * 100_011).len(), 5 * 100_011);
    // 20 MB of replies it never reads.
    let (mut greedy, id) = raw_with_id(&s);
    greedy.write_all(&GET_BIG.repeat(200)).unwrap();
    assert!(
        wait_gone(&mut c, id, Duration::from_secs(20)).await,
        "the client over its hard limit is gone from CLIENT LIST"
    );
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        1
    );
    assert!(
        s.log_text()
            .contains("scheduled to be closed ASAP for overcoming of output buffer limits"),
        "logged like Redis"
    );
    let (out, closed) = read_until_ended(&mut greedy);
    assert!(closed);
    assert!(
        out.len() < 1 << 20,
        "its replies were dropped: {}",
        out.len()
    );
    // The polite one is still served.
    polite.write_all(b"PING\r\n").unwrap();
    assert_eq!(read_n(&mut polite, 7), b"+PONG\r\n");
}

#[tokio::test]
async fn normal_client_over_the_soft_limit_for_its_seconds_is_closed() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(
        &mut c,
        (
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "normal 0 512kb 1",
        ),
    )
    .await;
    set_big(&mut c, 100_000).await;
    let (mut greedy, id) = raw_with_id(&s);
    greedy.write_all(&GET_BIG.repeat(300)).unwrap();
    // No hard limit: only staying above the soft one can close it. Meanwhile CLIENT
    // LIST shows its pending output.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_omem = false;
    loop {
        let list: String = run(&mut c, ("CLIENT", "LIST")).await;
        let Some(line) = list.lines().find(|l| l.starts_with(&format!("id={id} "))) else {
            break;
        };
        let omem: u64 = line
            .split(' ')
            .find_map(|f| f.strip_prefix("omem="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        saw_omem |= omem > 512 << 10;
        assert!(Instant::now() < deadline, "never closed: {line}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_omem, "CLIENT LIST showed omem over the soft limit");
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        1
    );
}

/// A raw RESP2 subscriber to `ch` that never reads again.
fn subscriber(s: &TestServer) -> (TcpStream, u64) {
    let (mut raw, id) = raw_with_id(s);
    raw.write_all(b"SUBSCRIBE ch\r\n").unwrap();
    let want = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    assert_eq!(read_n(&mut raw, want.len()), want);
    (raw, id)
}

/// Publishes 10 KB messages to `ch` until client `id` is gone (bounded).
async fn publish_until_gone(c: &mut MultiplexedConnection, id: u64) -> bool {
    let msg = "m".repeat(10_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let mut p = redis::pipe();
        for _ in 0..50 {
            p.cmd("PUBLISH").arg("ch").arg(&msg);
        }
        let _: Vec<i64> = p.query_async(c).await.unwrap();
        if !client_ids(c).await.contains(&id) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

#[tokio::test]
async fn pubsub_subscriber_that_never_reads_is_closed_at_the_hard_limit() {
    let s = TestServer::start_with(
        Some(
            "limits:\n  client_output_buffer_limit:\n    pubsub: { hard: 256k, soft: 0, soft_seconds: 0 }\n",
        ),
        &[],
    );
    let mut c = s.conn().await;
    let (_sub, id) = subscriber(&s);
    assert!(
        publish_until_gone(&mut c, id).await,
        "the subscriber was closed"
    );
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        1
    );
    let n: Vec<redis::Value> = run(&mut c, ("PUBSUB", "NUMSUB", "ch")).await;
    assert_eq!(n[1], redis::Value::Int(0), "its subscription is gone");
    // A normal client is not held to the pubsub class.
    set_big(&mut c, 1 << 20).await;
    let v: Vec<u8> = run(&mut c, ("GET", "big")).await;
    assert_eq!(v.len(), 1 << 20);
}

#[tokio::test]
async fn pubsub_subscriber_over_the_soft_limit_is_closed() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(
        &mut c,
        (
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 0 256kb 1",
        ),
    )
    .await;
    let (_sub, id) = subscriber(&s);
    assert!(
        publish_until_gone(&mut c, id).await,
        "the subscriber was closed"
    );
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        1
    );
}

#[tokio::test]
async fn pathological_patterns_answer_quickly() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let long = "a".repeat(50_000);
    let _: () = run(&mut c, ("SET", &long, "v")).await;
    let _: () = run(&mut c, ("SET", "ab", "v")).await;
    let pat = format!("{}b", "*a".repeat(12));
    let keys: Vec<String> = tokio::time::timeout(
        Duration::from_secs(30),
        run::<Vec<String>>(&mut c, ("KEYS", &pat)),
    )
    .await
    .expect("KEYS answers");
    assert!(keys.is_empty(), "{keys:?}");
    let keys: Vec<String> = run(&mut c, ("KEYS", "*a*b")).await;
    assert_eq!(keys, vec!["ab".to_string()]);
    let (_, found): (String, Vec<String>) = tokio::time::timeout(
        Duration::from_secs(30),
        run(&mut c, ("SCAN", "0", "MATCH", &pat, "COUNT", "1000")),
    )
    .await
    .expect("SCAN answers");
    assert!(found.is_empty());
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = field(&status.replace('\t', " "), "VmRSS")
        .and_then(|v| v.trim_end_matches(" kB").trim().parse().ok())
        .expect("VmRSS");
    kb * 1024
}

#[tokio::test]
async fn unauthenticated_clients_get_redis_limits() {
    let s = TestServer::start_with(Some("security:\n  requirepass: s3cret\n"), &[]);
    for (send, want) in [
        (
            &b"*11\r\n"[..],
            "-ERR Protocol error: unauthenticated multibulk length\r\n",
        ),
        (
            b"*2\r\n$4\r\nAUTH\r\n$16385\r\n",
            "-ERR Protocol error: unauthenticated bulk length\r\n",
        ),
    ] {
        let mut raw = s.raw();
        raw.write_all(send).unwrap();
        let (out, closed) = read_to_close(&mut raw);
        assert_eq!(String::from_utf8_lossy(&out), want);
        assert!(closed);
    }
    // More than 1 KB of replies (NOAUTH errors) before authenticating: closed.
    let mut raw = s.raw();
    raw.write_all(&b"PING\r\n".repeat(100)).unwrap();
    let (out, closed) = read_until_ended(&mut raw);
    assert!(closed && out.len() <= 1024, "{}", out.len());
    // Once authenticated, the usual limits.
    let mut raw = s.raw();
    raw.write_all(b"AUTH s3cret\r\n").unwrap();
    assert_eq!(read_n(&mut raw, 5), b"+OK\r\n");
    let mut big = b"*13\r\n$4\r\nMSET\r\n$1\r\nk\r\n$20000\r\n".to_vec();
    big.extend_from_slice(&[b'v'; 20000]);
    big.extend_from_slice(b"\r\n");
    for i in 0..4 {
        big.extend_from_slice(format!("$2\r\nk{i}\r\n$1\r\n{i}\r\n").as_bytes());
    }
    big.extend_from_slice(b"$2\r\nk9\r\n$1\r\n9\r\n");
    raw.write_all(&big).unwrap();
    assert_eq!(read_n(&mut raw, 5), b"+OK\r\n");
    raw.write_all(&b"PING\r\n".repeat(300)).unwrap();
    assert_eq!(read_n(&mut raw, 300 * 7).len(), 300 * 7);
}

#[tokio::test]
async fn a_thousand_unauthenticated_floods_keep_memory_bounded() {
    let s = TestServer::start_with(Some("security:\n  requirepass: s3cret\n"), &[]);
    let url = format!("redis://:s3cret@127.0.0.1:{}/", s.port);
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&crate::util::patient())
        .await
        .unwrap();
    let info: String = run(&mut c, ("INFO", "server")).await;
    let pid: u32 = field(&info, "process_id").unwrap().parse().unwrap();
    let before = rss(pid);
    let line = vec![b'x'; 64 << 10];
    let mut socks = Vec::new();
    for i in 0..1000 {
        let Ok(mut t) = TcpStream::connect(("127.0.0.1", s.port)) else {
            continue;
        };
        t.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = match i % 4 {
            0 => t.write_all(b"*1000000\r\n"),
            1 => t.write_all(b"*1\r\n$999999999\r\n"),
            2 => t.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16384\r\n"),
            _ => t.write_all(&line),
        };
        // Never read: keep the socket open.
        socks.push(t);
    }
    assert!(socks.len() >= 990, "connected {}", socks.len());
    // Meanwhile and after, an authenticated client works at its usual pace.
    let started = Instant::now();
    for i in 0..1000 {
        let _: () = run(&mut c, ("SET", format!("key:{i}"), i)).await;
        let v: i64 = run(&mut c, ("GET", format!("key:{i}"))).await;
        assert_eq!(v, i);
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "1,000 round trips took {:?}",
        started.elapsed()
    );
    let grown = rss(pid).saturating_sub(before);
    eprintln!(
        "RSS {} MB -> grew {} MB; 1,000 round trips in {:?}",
        before >> 20,
        grown >> 20,
        started.elapsed()
    );
    assert!(
        grown < 150 << 20,
        "RSS grew by {} MB with 1,000 unauthenticated floods",
        grown >> 20
    );
    drop(socks);
}

#[tokio::test]
async fn redis_py_subscriber_that_stops_reading_is_disconnected() {
    use std::io::BufRead;
    let s = TestServer::start_with(
        Some("limits:\n  client_output_buffer_limit:\n    pubsub: { hard: 512k }\n"),
        &[],
    );
    let mut c = s.conn().await;
    let script = "import redis, sys, time\n\
        r = redis.Redis(port=int(sys.argv[1]))\n\
        p = r.pubsub()\n\
        p.subscribe('slow')\n\
        assert p.get_message(timeout=10)['type'] == 'subscribe'\n\
        print('subscribed', flush=True)\n\
        time.sleep(60)\n";
    let mut py = std::process::Command::new("python3")
        .args(["-c", script, &s.port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (tools/test installs redis-py)");
    let mut line = String::new();
    let stdout = py.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read");
    assert_eq!(line.trim(), "subscribed");
    let msg = "m".repeat(10_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = run(&mut c, ("PUBLISH", "slow", &msg)).await;
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the subscriber was never closed");
    }
    let _ = py.kill();
    let _ = py.wait();
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        1
    );
}

#[tokio::test]
async fn client_kill_ends_a_write_the_client_never_takes() {
    // No output limit for normal clients (Redis's default): a client that never reads is
    // kept, but it no longer pins its connection task against CLIENT KILL.
    let s = TestServer::start();
    let mut c = s.conn().await;
    set_big(&mut c, 100_000).await;
    let (mut greedy, id) = raw_with_id(&s);
    greedy.write_all(&GET_BIG.repeat(300)).unwrap();
    // Wait until its write stalls (pending output shows in CLIENT LIST).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list: String = run(&mut c, ("CLIENT", "LIST")).await;
        let stalled = list.lines().any(|l| {
            l.starts_with(&format!("id={id} "))
                && l.split(' ')
                    .find_map(|f| f.strip_prefix("omem="))
                    .is_some_and(|v| v != "0")
        });
        if stalled {
            break;
        }
        assert!(Instant::now() < deadline, "its write never stalled: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed: i64 = run(&mut c, ("CLIENT", "KILL", "ID", id)).await;
    assert_eq!(killed, 1);
    assert!(
        wait_gone(&mut c, id, Duration::from_secs(10)).await,
        "the killed client is gone"
    );
    assert_eq!(
        stat(&mut c, "client_output_buffer_limit_disconnections").await,
        0,
        "not an output limit"
    );
}
