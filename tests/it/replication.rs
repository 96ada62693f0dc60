//! Mirror groups with real processes: full sync under load, a mirror killed mid-sync,
//! strong acks, planned switchover under load, a stopped mirror, redirects, `terrace stop`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::util::{TestServer, free_port};

/// A stripe's config in a temp dir: server names with their client ports.
struct Stripe {
    dir: tempfile::TempDir,
    conf: PathBuf,
    ports: Vec<(String, u16)>,
    groups: Vec<u16>,
}

impl Stripe {
    /// `n` servers (`m0`, `m1`, ...) in stripe `s1`; `restartable` gives each a data dir.
    fn new(n: usize, restartable: bool, cluster: &str, caches: &str) -> Stripe {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut servers = String::new();
        let mut ports = Vec::new();
        let mut groups = Vec::new();
        for i in 0..n {
            let (port, group) = (free_port(), free_port());
            let data = dir.path().join(format!("data{i}"));
            servers.push_str(&format!(
                "        - {{ name: m{i}, host: 127.0.0.1, port: {port}, group_port: {group}, data: {} }}\n",
                data.display()
            ));
            ports.push((format!("m{i}"), port));
            groups.push(group);
        }
        let yaml = format!(
            "cluster:\n  replica_timeout: 3s\n{cluster}  stripes:\n    - name: s1\n      servers:\n{servers}storage:\n  restartable: {restartable}\n  fsync: everysec\ncaches:\n{caches}"
        );
        let conf = dir.path().join("conf.yaml");
        std::fs::write(&conf, yaml).expect("config");
        Stripe {
            dir,
            conf,
            ports,
            groups,
        }
    }

    /// An active `m0` and its PASSIVE-STANDBY mirror `m1`, not restartable.
    fn pair() -> (Stripe, TestServer, TestServer) {
        let st = Stripe::new(2, false, "", CACHES);
        let a = st.start(0);
        wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(20));
        let b = st.start(1);
        wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(60));
        (st, a, b)
    }

    fn port(&self, i: usize) -> u16 {
        self.ports[i].1
    }

    fn start(&self, i: usize) -> TestServer {
        TestServer::start_named(&self.conf, &self.ports[i].0, self.port(i))
    }

    /// Runs the `terrace` CLI with this config.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["-f", self.conf.to_str().expect("utf-8 path")]);
        std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(&all)
            .output()
            .expect("terrace cli")
    }
}

const CACHES: &str =
    "  - { name: s, consistency: strong }\n  - { name: default, consistency: eventual }\n";

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect")
}

fn info(port: u16, field: &str) -> Option<String> {
    let text: String = redis::cmd("INFO")
        .arg("terrace")
        .query(&mut con(port))
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Waits (bounded) until server `s` reports `state`.
fn wait_state(s: &TestServer, state: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        if info(s.port, "terrace_state").as_deref() == Some(state) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "server on {} not {state} after {within:?}:\n{}",
            s.port,
            s.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until the mirror holds every record the active has.
fn wait_caught_up(active: &TestServer, mirror: &TestServer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let a = info(active.port, "terrace_lsn");
        if a.is_some() && a == info(mirror.port, "terrace_lsn") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "mirror at lsn {:?}, active at {a:?}",
            info(mirror.port, "terrace_lsn")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn set(c: &mut redis::Connection, key: impl redis::ToRedisArgs, val: impl redis::ToRedisArgs) {
    let _: () = redis::cmd("SET").arg(key).arg(val).query(c).expect("set");
}

/// WAIT numreplicas timeout.
fn wait(c: &mut redis::Connection, replicas: u64, ms: u64) -> i64 {
    redis::cmd("WAIT")
        .arg(replicas)
        .arg(ms)
        .query(c)
        .expect("wait")
}

fn digest(port: u16) -> String {
    redis::cmd("DEBUG")
        .arg("DIGEST")
        .query(&mut con(port))
        .expect("DEBUG DIGEST")
}

fn load(port: u16, keys: u64) {
    let mut c = con(port);
    for chunk in (0..keys).collect::<Vec<_>>().chunks(10_000) {
        let mut p = redis::pipe();
        for i in chunk {
            p.cmd("SET")
                .arg(format!("k:{i}"))
                .arg(format!("v{i}"))
                .ignore();
        }
        p.query::<()>(&mut c).expect("load");
    }
}

/// `n` threads writing until `stop`: new keys and overwrites of loaded ones.
fn writers(
    port: u16,
    n: usize,
    stop: &Arc<AtomicBool>,
    loaded: u64,
) -> Vec<std::thread::JoinHandle<u64>> {
    (0..n)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = con(port);
                let mut j = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut p = redis::pipe();
                    for _ in 0..10 {
                        p.cmd("SET").arg(format!("w:{t}:{j}")).arg(j).ignore();
                        p.cmd("SET")
                            .arg(format!("k:{}", fastrand::u64(..loaded.max(1))))
                            .arg(format!("x{t}.{j}"))
                            .ignore();
                        j += 1;
                    }
                    p.query::<()>(&mut c).expect("write");
                }
                j
            })
        })
        .collect()
}

fn sync_keys() -> u64 {
    std::env::var("TERRACE_TEST_SYNC_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

#[test]
fn full_sync_of_a_million_keys_under_twenty_writers_ends_identical() {
    let st = Stripe::new(2, false, "", CACHES);
    let a = st.start(0);
    wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(20));
    let keys = sync_keys();
    load(a.port, keys);
    let stop = Arc::new(AtomicBool::new(false));
    let ws = writers(a.port, 20, &stop, keys);
    std::thread::sleep(Duration::from_millis(300));
    let b = st.start(1);
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(180));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let written: u64 = ws.into_iter().map(|w| w.join().expect("writer")).sum();
    assert!(written > 0);
    wait_caught_up(&a, &b);
    let size = |p: u16| -> u64 { redis::cmd("DBSIZE").query(&mut con(p)).expect("dbsize") };
    assert!(size(a.port) >= keys, "{}", size(a.port));
    assert_eq!(size(a.port), size(b.port));
    assert_eq!(digest(a.port), digest(b.port), "mirror and active differ");
    let log = b.log_text();
    assert!(log.contains("full sync from m0"), "{log}");
    assert!(log.contains("INITIALIZING -> PASSIVE-STANDBY"), "{log}");
}

#[test]
fn a_mirror_killed_during_its_sync_resyncs_to_identical_data() {
    let st = Stripe::new(2, true, "", CACHES);
    let a = st.start(0);
    wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(20));
    let keys = sync_keys() / 2;
    load(a.port, keys);
    let stop = Arc::new(AtomicBool::new(false));
    let ws = writers(a.port, 2, &stop, keys);
    let mut b = st.start(1);
    // Kill it while it is INITIALIZING (bounded wait for that state).
    let deadline = Instant::now() + Duration::from_secs(60);
    while info(b.port, "terrace_state").as_deref() != Some("INITIALIZING") {
        assert!(
            Instant::now() < deadline,
            "never INITIALIZING:\n{}",
            b.log_text()
        );
        assert_ne!(
            info(b.port, "terrace_state").as_deref(),
            Some("PASSIVE-STANDBY"),
            "the sync ended before the test could kill it; raise TERRACE_TEST_SYNC_KEYS"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    b.sigkill();
    let b = st.start(1);
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(180));
    stop.store(true, Ordering::Relaxed);
    for w in ws {
        w.join().expect("writer");
    }
    wait_caught_up(&a, &b);
    assert_eq!(digest(a.port), digest(b.port), "mirror and active differ");
    assert!(b.log_text().contains("full sync from m0"));
}

#[test]
fn a_strong_write_is_on_the_mirror_when_its_reply_arrives_and_wait_counts_mirrors() {
    let (_st, a, b) = Stripe::pair();
    let (mut ca, mut cb) = (con(a.port), con(b.port));
    let dv = |c: &mut redis::Connection, k: &str| -> Vec<String> {
        redis::cmd("DEBUG")
            .arg("DIGEST-VALUE")
            .arg(k)
            .query(c)
            .expect("digest-value")
    };
    for i in 0..300 {
        let k = format!("s:{}", i % 7);
        set(&mut ca, &k, i);
        // No wait, no retry: the reply itself says the mirror has it.
        assert_eq!(dv(&mut cb, &k), dv(&mut ca, &k), "write {i} of {k}");
    }
    // WAIT: an eventual write, then the number of mirrors that have it.
    set(&mut ca, "e:1", "v");
    let n = wait(&mut ca, 1, 5000);
    assert_eq!(n, 1);
    assert_eq!(dv(&mut cb, "e:1"), dv(&mut ca, "e:1"));
    let n = wait(&mut ca, 2, 200);
    assert_eq!(n, 1, "only one mirror exists: the timeout answers with 1");
    let err = redis::cmd("WAIT")
        .arg(1)
        .arg(0)
        .query::<i64>(&mut cb)
        .expect_err("WAIT on a mirror");
    assert!(err.to_string().contains("replica"), "{err}");
}

#[test]
fn a_mirror_redirects_writes_and_strong_reads_and_serves_readonly_eventual_reads() {
    let (st, a, b) = Stripe::pair();
    let mut ca = con(a.port);
    set(&mut ca, "e:k", "ev");
    set(&mut ca, "s:k", "sv");
    let n = wait(&mut ca, 1, 5000);
    assert_eq!(n, 1);
    let mut raw = crate::util::Resp3::connect(b.port);
    let slot = |k: &str| redis_protocol::redis_keyslot(k.as_bytes());
    let text = raw.text(&["SET", "e:k", "x"]);
    assert_eq!(text, format!("MOVED {} 127.0.0.1:{}", slot("e:k"), a.port));
    assert_eq!(
        raw.text(&["GET", "e:k"]),
        format!("MOVED {} 127.0.0.1:{}", slot("e:k"), a.port),
        "without READONLY every keyed command is redirected"
    );
    assert_eq!(raw.text(&["READONLY"]), "OK");
    assert_eq!(raw.text(&["GET", "e:k"]), "ev", "eventual reads are served");
    assert_eq!(
        raw.text(&["GET", "s:k"]),
        format!("MOVED {} 127.0.0.1:{}", slot("s:k"), a.port),
        "strong reads go to the active"
    );
    assert!(raw.text(&["FLUSHALL"]).starts_with("READONLY"));
    assert_eq!(raw.text(&["READWRITE"]), "OK");
    assert!(raw.text(&["GET", "e:k"]).starts_with("MOVED"));
    let out = st.cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("m0") && l.contains("ACTIVE-COORDINATOR"))
            && text
                .lines()
                .any(|l| l.contains("m1") && l.contains("PASSIVE-STANDBY")),
        "{text}"
    );
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut con(b.port)).expect("role");
    assert_eq!(role[0], redis::Value::BulkString(b"slave".to_vec()));
    let repl: String = redis::cmd("INFO")
        .arg("replication")
        .query(&mut ca)
        .expect("info");
    assert!(
        repl.contains("role:master") && repl.contains("connected_slaves:1"),
        "{repl}"
    );
    assert!(repl.contains("state=online"), "{repl}");
}

#[test]
fn a_planned_switchover_under_writes_loses_no_acknowledged_write() {
    let (st, a, b) = Stripe::pair();
    let ports = [a.port, b.port];
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(parking_lot::Mutex::new(Vec::<(String, String)>::new()));
    let retried = Arc::new(AtomicU64::new(0));
    let ws: Vec<_> = (0..4)
        .map(|t| {
            let (stop, acked, retried) = (stop.clone(), acked.clone(), retried.clone());
            std::thread::spawn(move || {
                let mut at = 0;
                let mut c = con(ports[at]);
                let mut j = 0u64;
                let deadline = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                    let key = format!("{}:{t}:{j}", if j.is_multiple_of(2) { "s" } else { "e" });
                    let val = format!("{t}.{j}");
                    match redis::cmd("SET").arg(&key).arg(&val).query::<()>(&mut c) {
                        Ok(()) => {
                            acked.lock().push((key, val));
                            j += 1;
                        }
                        Err(e) => {
                            // MOVED / TRYAGAIN during the switch: try the other server.
                            retried.fetch_add(1, Ordering::Relaxed);
                            if e.to_string().contains("MOVED") {
                                at = 1 - at;
                                c = con(ports[at]);
                            } else {
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(800));
    let out = st.cli(&["failover", "--stripe", "s1"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        a.log_text()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("active is now m1"));
    std::thread::sleep(Duration::from_millis(800));
    stop.store(true, Ordering::Relaxed);
    for w in ws {
        w.join().expect("writer");
    }
    assert_eq!(info(b.port, "terrace_role").as_deref(), Some("active"));
    wait_state(&a, "PASSIVE-STANDBY", Duration::from_secs(60));
    assert!(
        a.log_text().contains("resuming from m1"),
        "the old active resumes instead of a full sync:\n{}",
        a.log_text()
    );
    let acked = acked.lock().clone();
    assert!(acked.len() > 100, "only {} writes", acked.len());
    let mut cb = con(b.port);
    for chunk in acked.chunks(1000) {
        let keys: Vec<&String> = chunk.iter().map(|(k, _)| k).collect();
        let got: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query(&mut cb).expect("mget");
        for ((k, v), g) in chunk.iter().zip(got) {
            assert_eq!(g.as_deref(), Some(v.as_str()), "acknowledged {k} lost");
        }
    }
    wait_caught_up(&b, &a);
    assert_eq!(digest(a.port), digest(b.port));
}

#[test]
fn a_stopped_mirror_does_not_hold_eventual_writes_and_strong_ones_only_until_its_timeout() {
    let (_st, a, b) = Stripe::pair();
    b.signal(rustix::process::Signal::STOP);
    let strong_done = Arc::new(AtomicBool::new(false));
    let port = a.port;
    let strong = {
        let done = strong_done.clone();
        std::thread::spawn(move || {
            let r = redis::cmd("SET")
                .arg("s:blocked")
                .arg(1)
                .query::<()>(&mut con(port));
            done.store(true, Ordering::Release);
            r
        })
    };
    // While the strong write waits for the stopped mirror, eventual writes go through.
    let mut ca = con(a.port);
    for i in 0..1000 {
        set(&mut ca, format!("e:{i}"), i);
    }
    assert!(
        !strong_done.load(Ordering::Acquire),
        "the strong write did not wait for the stopped mirror"
    );
    // The mirror is marked out of sync after replica_timeout (3s): the strong write answers.
    strong
        .join()
        .expect("thread")
        .expect("strong SET answered OK");
    assert!(a.log_text().contains("out of sync"), "{}", a.log_text());
    b.signal(rustix::process::Signal::CONT);
    // Woken, it finds its link closed (it still says PASSIVE-STANDBY until then) and
    // resumes from the backlog: a mirror that only lost its link needs no full sync.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !b.log_text().contains("resuming from m0") {
        assert!(Instant::now() < deadline, "no resume:\n{}", b.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(60));
    wait_caught_up(&a, &b);
    assert_eq!(digest(a.port), digest(b.port));
    assert_eq!(b.log_text().matches("full sync from m0").count(), 1);
}

#[test]
fn stop_hands_an_active_over_first_and_refuses_one_without_a_standby_unless_forced() {
    let st = Stripe::new(2, false, "", CACHES);
    let mut a = st.start(0);
    wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(20));
    let out = st.cli(&["stop", "m0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no PASSIVE-STANDBY mirror"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        info(a.port, "terrace_role").as_deref(),
        Some("active"),
        "still up"
    );
    let mut b = st.start(1);
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(60));
    set(&mut con(a.port), "s:k", "v");
    // An active with a standby mirror hands over first: the stripe keeps an active.
    let out = st.cli(&["stop", "m0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("active is now m1"));
    assert!(a.wait_exit(Duration::from_secs(20)).is_some(), "m0 stopped");
    assert_eq!(info(b.port, "terrace_role").as_deref(), Some("active"));
    let v: Option<String> = redis::cmd("GET")
        .arg("s:k")
        .query(&mut con(b.port))
        .expect("get");
    assert_eq!(v.as_deref(), Some("v"));
    // Now m1 is an active alone: refused, then forced.
    assert_eq!(st.cli(&["stop", "m1"]).status.code(), Some(1));
    let out = st.cli(&["stop", "m1", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        b.wait_exit(Duration::from_secs(20)).is_some(),
        "--force stopped it"
    );
    // A mirror may always stop.
    let _a = st.start(0);
    let mut c = st.start(1);
    wait_state(&c, "PASSIVE-STANDBY", Duration::from_secs(60));
    assert!(st.cli(&["stop", "m1"]).status.success());
    assert!(c.wait_exit(Duration::from_secs(20)).is_some());
    drop(st.dir);
}

#[test]
fn after_a_whole_stripe_restart_the_last_active_is_active_again_with_all_its_data() {
    let st = Stripe::new(2, true, "  election_time: 10s\n", CACHES);
    let mut a = st.start(0);
    wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(20));
    let mut b = st.start(1);
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(60));
    load(a.port, 20_000);
    set(&mut con(a.port), "s:strong", "kept");
    wait_caught_up(&a, &b);
    let before = digest(a.port);
    // Stop the active first, then the mirror, as an operator would.
    assert!(a.terminate().is_some_and(|s| s.success()));
    assert!(b.terminate().is_some_and(|s| s.success()));
    // The mirror comes back first: its data directory says it was a mirror, so it waits
    // (up to election_time) for the last active instead of taking over.
    let b = st.start(1);
    // The mirror wrote what it received to its own fast-restart log.
    let log = b.log_text();
    assert!(
        log.contains("fast restart: loaded") && !log.contains("loaded 0 records"),
        "{log}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(info(b.port, "terrace_state").as_deref(), Some("STARTING"));
    assert!(
        b.log_text().contains("waiting up to election_time"),
        "{}",
        b.log_text()
    );
    let a = st.start(0);
    wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(30));
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(60));
    assert_eq!(digest(a.port), before, "the last active kept every write");
    wait_caught_up(&a, &b);
    assert_eq!(digest(b.port), before);
    assert_eq!(
        info(a.port, "terrace_epoch").as_deref(),
        Some("2"),
        "a new epoch"
    );
}

#[test]
fn garbage_on_the_group_port_gets_an_error_and_changes_nothing() {
    use std::io::{BufRead, BufReader, Write};
    let (st, a, b) = Stripe::pair();
    let ask = |group: u16, line: &[u8]| -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", group)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s.write_all(line).expect("write");
        let mut reply = String::new();
        let _ = BufReader::new(s).read_line(&mut reply);
        reply
    };
    assert!(ask(st.groups[0], b"NONSENSE\n").starts_with("-ERR unknown handshake"));
    assert!(ask(st.groups[0], b"SYNC x notanumber 1 a:1\n").starts_with("-ERR bad SYNC"));
    assert!(ask(st.groups[1], b"SYNC x 0 0 a:1\n").starts_with("-ERR not the active"));
    assert!(ask(st.groups[0], b"HELLO\n").starts_with("PEER m0 ACTIVE-COORDINATOR"));
    // A "mirror" that sends garbage instead of acks is dropped; the real one stays in sync.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", st.groups[0])).expect("connect");
    s.write_all(b"SYNC fake 0 0 127.0.0.1:1\n").expect("write");
    s.write_all(&[0xff; 64]).expect("garbage");
    std::thread::sleep(Duration::from_millis(300));
    set(&mut con(a.port), "s:after", "ok");
    wait_caught_up(&a, &b);
    assert_eq!(digest(a.port), digest(b.port));
    assert!(
        a.log_text().contains("unknown message tag"),
        "{}",
        a.log_text()
    );
    // One that announces a 200 MB ack and trickles it is dropped once it passed 64 KiB: the
    // active does not buffer a mirror's message up to the stream's own limit.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", st.groups[0])).expect("connect");
    s.write_all(b"SYNC fake2 0 0 127.0.0.1:1\n").expect("write");
    let mut big = vec![b'A'];
    big.extend_from_slice(&(200u32 << 20).to_le_bytes());
    s.write_all(&big).expect("header");
    let chunk = [0u8; 16 << 10];
    for _ in 0..8 {
        // The link may already be closed: the server stopped reading.
        if s.write_all(&chunk).is_err() {
            break;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a
        .log_text()
        .contains("a message from the mirror over 65536 bytes")
    {
        assert!(Instant::now() < deadline, "{}", a.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    set(&mut con(a.port), "s:after2", "ok");
    wait_caught_up(&a, &b);
    assert_eq!(digest(a.port), digest(b.port));
}

#[test]
fn evictions_replicate_so_a_size_limited_cache_stays_identical_on_the_mirror() {
    let caches = "  - { name: small, max_entries: 100, eviction: lru }\n  - { name: default }\n";
    let st = Stripe::new(2, false, "", caches);
    let a = st.start(0);
    wait_state(&a, "ACTIVE-COORDINATOR", Duration::from_secs(20));
    let b = st.start(1);
    wait_state(&b, "PASSIVE-STANDBY", Duration::from_secs(60));
    let mut c = con(a.port);
    for i in 0..100 {
        set(&mut c, format!("small:{i}"), i);
    }
    // Reads on the active make the oldest keys the most recently used there (reads are
    // not replicated): the mirror must drop what the active evicted, not its own LRU.
    for i in 0..50 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("small:{i}"))
            .query(&mut c)
            .expect("get");
    }
    for i in 100..150 {
        set(&mut c, format!("small:{i}"), i);
    }
    wait_caught_up(&a, &b);
    let size = |p: u16| -> u64 { redis::cmd("DBSIZE").query(&mut con(p)).expect("dbsize") };
    assert_eq!(size(a.port), 100);
    assert_eq!(size(b.port), 100);
    assert_eq!(
        digest(a.port),
        digest(b.port),
        "the mirror evicted other keys"
    );
}

/// Plays an active on `listener`: answers probes, then gives the syncing mirror an empty
/// snapshot and `records` (epoch, key) messages, one key each.
fn fake_active(listener: std::net::TcpListener, records: Vec<(u64, &'static str)>) {
    use std::io::{BufRead, BufReader, Write};
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        for conn in listener.incoming() {
            if Instant::now() > deadline {
                return;
            }
            let Ok(mut s) = conn else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().expect("clone"));
            if r.read_line(&mut line).is_err() {
                continue;
            }
            if line.starts_with("HELLO") {
                let _ = s.write_all(b"PEER m0 ACTIVE-COORDINATOR 5 0 1 0\n");
                continue;
            }
            let mut out = b"FULLSYNC 5 1\n".to_vec();
            out.extend_from_slice(&[b'E', 8, 0, 0, 0]);
            out.extend_from_slice(&0u64.to_le_bytes());
            for (lsn, (epoch, key)) in records.iter().enumerate() {
                let mut frame = Vec::new();
                terrace::persist::record::encode(
                    &mut frame,
                    lsn as u64 + 1,
                    &[terrace::persist::record::set_str(key.as_bytes(), b"v", 0)],
                );
                out.push(b'R');
                out.extend_from_slice(&(8 + frame.len() as u32).to_le_bytes());
                out.extend_from_slice(&epoch.to_le_bytes());
                out.extend_from_slice(&frame);
            }
            let _ = s.write_all(&out);
            std::thread::sleep(Duration::from_secs(30));
            return;
        }
    });
}

#[test]
fn a_mirror_refuses_records_of_an_older_epoch_than_it_knows() {
    let st = Stripe::new(2, false, "", CACHES);
    let listener = std::net::TcpListener::bind(("127.0.0.1", st.groups[0])).expect("bind");
    fake_active(listener, vec![(5, "e:current"), (3, "e:stale")]);
    let b = st.start(1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !b.log_text().contains("fenced") {
        assert!(Instant::now() < deadline, "not fenced:\n{}", b.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    let dv: Vec<String> = redis::cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg("e:current")
        .arg("e:stale")
        .query(&mut con(b.port))
        .expect("digest-value");
    assert_ne!(dv[0], "0".repeat(40), "the epoch-5 record was applied");
    assert_eq!(dv[1], "0".repeat(40), "the epoch-3 record was refused");
    assert!(
        b.log_text()
            .contains("epoch 3 but this mirror knows epoch 5")
    );
}

#[test]
fn replica_output_limit_disconnects_a_lagging_mirror_which_then_resumes() {
    let (_st, a, b) = Stripe::pair();
    let mut c = con(a.port);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("replica 64kb 0 0")
        .query(&mut c)
        .expect("config set");
    // 8 MB of eventual writes at once: the mirror's stream falls more than 64 KB behind.
    let value = "v".repeat(100_000);
    let mut p = redis::pipe();
    for i in 0..80 {
        p.cmd("SET").arg(format!("big:{i}")).arg(&value).ignore();
    }
    let _: () = p.query(&mut c).expect("pipeline");
    let deadline = Instant::now() + Duration::from_secs(30);
    while info(a.port, "client_output_buffer_limit_disconnections").as_deref() == Some("0") {
        assert!(Instant::now() < deadline, "never disconnected");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The log line, within the same bound (log lines reach the file a moment later).
    while !a
        .log_text()
        .contains("overcoming of output buffer limits (class slave")
    {
        assert!(Instant::now() < deadline, "{}", a.log_text());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without the limit it resumes (or resyncs) and catches up.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("client-output-buffer-limit")
        .arg("replica 0 0 0")
        .query(&mut c)
        .expect("config set");
    wait_caught_up(&a, &b);
    assert_eq!(digest(a.port), digest(b.port), "mirror and active differ");
}
