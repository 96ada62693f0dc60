//! CLIENT TRACKING (L1 near caches): invalidations over real sockets for every kind of
//! change, RESP2 redirect, BCAST, OPTIN/OPTOUT, NOLOOP, `l1: false`, the tracking-table
//! limit with 1,000 clients, strong caches, and redis-py's client-side cache.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use redis_protocol::resp3::types::OwnedFrame as F;

use crate::caches::with_caches;
use crate::util::{Resp3, TestServer, read_n};

/// How long to wait for an invalidation that must not come.
const QUIET: Duration = Duration::from_millis(300);
/// How long an invalidation that must come may take (expiry runs every 100 ms).
const SOON: Duration = Duration::from_secs(5);

fn server(caches: &str, limits: &str) -> TestServer {
    let yaml = format!("{}{limits}", with_caches(caches));
    TestServer::start_with(Some(&yaml), &[])
}

fn keys(k: &[&str]) -> Option<Option<Vec<String>>> {
    Some(Some(k.iter().map(|s| s.to_string()).collect()))
}

/// A RESP3 connection with tracking on (extra CLIENT TRACKING options in `opts`).
fn tracker(s: &TestServer, opts: &[&str]) -> Resp3 {
    let mut c = Resp3::connect(s.port);
    let mut args = vec!["CLIENT", "TRACKING", "ON"];
    args.extend_from_slice(opts);
    assert_eq!(c.text(&args), "OK");
    c
}

#[test]
fn every_kind_of_change_invalidates_a_tracked_key() {
    let s = server(
        "  - { name: small, max_entries: 2 }\n  - { name: idle, tti: 1s }\n  - { name: x }\n",
        "",
    );
    let mut r = tracker(&s, &[]);
    let mut w = Resp3::connect(s.port);
    for k in ["a", "b", "c"] {
        assert_eq!(w.text(&["SET", k, "1"]), "OK");
        assert_eq!(r.text(&["GET", k]), "1");
    }
    assert_eq!(
        r.invalidation(QUIET),
        None,
        "reads alone invalidate nothing"
    );

    assert_eq!(w.text(&["SET", "a", "2"]), "OK");
    assert_eq!(r.invalidation(SOON), keys(&["a"]), "write");
    assert_eq!(w.text(&["DEL", "b"]), "1");
    assert_eq!(r.invalidation(SOON), keys(&["b"]), "DEL");
    assert_eq!(w.text(&["RENAME", "c", "c2"]), "OK");
    assert_eq!(r.invalidation(SOON), keys(&["c"]), "RENAME");
    // One-shot: the entry was consumed; only a new read tracks the key again.
    assert_eq!(w.text(&["SET", "a", "3"]), "OK");
    assert_eq!(
        r.invalidation(QUIET),
        None,
        "untracked after its invalidation"
    );

    // A key read while missing is tracked too (the L1 may cache the nil).
    assert_eq!(r.text(&["GET", "ttl"]), "nil");
    assert_eq!(w.text(&["SET", "ttl", "v", "PX", "150"]), "OK");
    assert_eq!(
        r.invalidation(SOON),
        keys(&["ttl"]),
        "write of a missing key"
    );
    assert_eq!(r.text(&["GET", "ttl"]), "v");
    assert_eq!(r.invalidation(SOON), keys(&["ttl"]), "TTL expiry (active)");

    assert_eq!(w.text(&["SET", "idle:k", "v"]), "OK");
    assert_eq!(r.text(&["GET", "idle:k"]), "v");
    let t = Instant::now();
    assert_eq!(r.invalidation(SOON), keys(&["idle:k"]), "TTI expiry");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "not before the TTI"
    );

    for k in ["small:1", "small:2"] {
        assert_eq!(w.text(&["SET", k, "v"]), "OK");
        assert_eq!(r.text(&["GET", k]), "v");
    }
    assert_eq!(w.text(&["SET", "small:3", "v"]), "OK");
    let evicted = r.invalidation(SOON).flatten().expect("eviction");
    assert_eq!(evicted.len(), 1);
    assert_eq!(w.text(&["EXISTS", &evicted[0]]), "0", "the evicted key");

    assert_eq!(w.text(&["SET", "x:1", "v"]), "OK");
    assert_eq!(r.text(&["GET", "x:1"]), "v");
    assert_eq!(w.text(&["CACHE.CLEAR", "x"]), "1");
    assert_eq!(r.invalidation(SOON), keys(&["x:1"]), "CACHE.CLEAR");

    assert_eq!(r.text(&["GET", "m"]), "nil");
    assert_eq!(w.text(&["MULTI"]), "OK");
    assert_eq!(w.text(&["SET", "m", "1"]), "QUEUED");
    assert_eq!(r.invalidation(QUIET), None, "nothing changed before EXEC");
    assert!(matches!(w.call(&["EXEC"]), F::Array { .. }));
    assert_eq!(r.invalidation(SOON), keys(&["m"]), "EXEC");

    assert_eq!(r.text(&["GET", "a"]), "3");
    assert_eq!(w.text(&["FLUSHALL"]), "OK");
    assert_eq!(r.invalidation(SOON), Some(None), "FLUSHALL flushes the L1");
    assert_eq!(r.invalidation(QUIET), None);
}

#[test]
fn resp2_clients_get_invalidations_through_a_redirect_subscriber() {
    let s = TestServer::start();
    let mut sub = s.raw();
    sub.write_all(b"CLIENT ID\r\n").unwrap();
    let id_line = String::from_utf8(read_n(&mut sub, 4)).unwrap();
    let id = id_line.trim().trim_start_matches(':').to_string();
    sub.write_all(b"SUBSCRIBE __redis__:invalidate\r\n")
        .unwrap();
    let want = "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n";
    assert_eq!(String::from_utf8_lossy(&read_n(&mut sub, want.len())), want);

    let mut r = s.raw();
    let req = format!("CLIENT TRACKING ON REDIRECT {id}\r\nGET k\r\nCLIENT GETREDIR\r\n");
    r.write_all(req.as_bytes()).unwrap();
    let want = format!("+OK\r\n$-1\r\n:{id}\r\n");
    assert_eq!(String::from_utf8_lossy(&read_n(&mut r, want.len())), want);

    let mut w = s.raw();
    w.write_all(b"SET k v\r\nFLUSHALL\r\n").unwrap();
    assert_eq!(read_n(&mut w, 10), b"+OK\r\n+OK\r\n");
    let want = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n\
                *3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n$-1\r\n";
    assert_eq!(String::from_utf8_lossy(&read_n(&mut sub, want.len())), want);

    // The redirect target leaves: a RESP3 tracker is told its redirect is broken.
    drop(sub);
    std::thread::sleep(Duration::from_millis(200));
    let mut r3 = Resp3::connect(s.port);
    let mut again = Resp3::connect(s.port);
    let gone = again.text(&["CLIENT", "ID"]);
    drop(again);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        r3.text(&["CLIENT", "TRACKING", "ON", "REDIRECT", &gone]),
        "ERR The client ID you want redirect to does not exist"
    );
    let mut target = Resp3::connect(s.port);
    let tid = target.text(&["CLIENT", "ID"]);
    assert_eq!(
        r3.text(&["CLIENT", "TRACKING", "ON", "REDIRECT", &tid]),
        "OK"
    );
    assert_eq!(r3.text(&["GET", "k2"]), "nil");
    drop(target);
    std::thread::sleep(Duration::from_millis(200));
    let mut w3 = Resp3::connect(s.port);
    assert_eq!(w3.text(&["SET", "k2", "v"]), "OK");
    let F::Push { data, .. } = r3.frame(SOON).expect("broken-redirect push") else {
        panic!("expected a push");
    };
    assert!(matches!(&data[0], F::BlobString { data, .. } if data == b"tracking-redir-broken"));
    assert!(matches!(&data[1], F::Number { data, .. } if data.to_string() == tid));
    assert_eq!(
        r3.text(&["CLIENT", "TRACKINGINFO"]),
        format!("{{flags={{broken_redirect on}} prefixes=[] redirect={tid}}}")
    );
}

#[test]
fn bcast_sends_every_change_under_the_prefixes() {
    let s = TestServer::start();
    let mut r = tracker(&s, &["BCAST", "PREFIX", "user:", "PREFIX", "session:"]);
    let mut w = Resp3::connect(s.port);
    // Nothing was read: BCAST clients hear of every change under their prefixes.
    for k in ["user:1", "other:1", "session:9"] {
        assert_eq!(w.text(&["SET", k, "v"]), "OK");
    }
    assert_eq!(r.invalidation(SOON), keys(&["user:1"]));
    assert_eq!(r.invalidation(SOON), keys(&["session:9"]));
    assert_eq!(
        r.invalidation(QUIET),
        None,
        "other:1 is outside the prefixes"
    );
    assert_eq!(
        r.text(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:x"]),
        "ERR Prefix 'user:x' overlaps with an existing prefix 'user:'. Prefixes for a single client must not overlap."
    );
    assert_eq!(
        r.text(&["CLIENT", "TRACKING", "ON"]),
        "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode."
    );
    assert_eq!(
        r.text(&["CLIENT", "TRACKINGINFO"]),
        "{flags={bcast on} prefixes=[session: user:] redirect=0}"
    );
    assert_eq!(r.text(&["CLIENT", "TRACKING", "OFF"]), "OK");
    assert_eq!(w.text(&["SET", "user:2", "v"]), "OK");
    assert_eq!(r.invalidation(QUIET), None, "tracking is off");
}

#[test]
fn optin_and_optout_follow_client_caching() {
    let s = TestServer::start();
    let mut w = Resp3::connect(s.port);
    let mut r = tracker(&s, &["OPTIN"]);
    assert_eq!(r.text(&["GET", "a"]), "nil");
    assert_eq!(r.text(&["CLIENT", "CACHING", "YES"]), "OK");
    assert_eq!(r.text(&["GET", "b"]), "nil");
    assert_eq!(
        r.text(&["GET", "c"]),
        "nil",
        "CACHING YES covers one command"
    );
    for k in ["a", "b", "c"] {
        assert_eq!(w.text(&["SET", k, "v"]), "OK");
    }
    assert_eq!(r.invalidation(SOON), keys(&["b"]));
    assert_eq!(r.invalidation(QUIET), None);
    assert_eq!(
        r.text(&["CLIENT", "CACHING", "NO"]),
        "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."
    );

    let mut o = tracker(&s, &["OPTOUT"]);
    assert_eq!(o.text(&["CLIENT", "CACHING", "NO"]), "OK");
    assert_eq!(o.text(&["GET", "a"]), "v");
    assert_eq!(o.text(&["GET", "b"]), "v");
    for k in ["a", "b"] {
        assert_eq!(w.text(&["SET", k, "w"]), "OK");
    }
    assert_eq!(o.invalidation(SOON), keys(&["b"]));
    assert_eq!(o.invalidation(QUIET), None);
}

#[test]
fn noloop_clients_are_not_told_of_their_own_writes() {
    let s = TestServer::start();
    let mut w = Resp3::connect(s.port);
    let mut plain = tracker(&s, &[]);
    assert_eq!(plain.text(&["GET", "k"]), "nil");
    assert_eq!(plain.text(&["SET", "k", "1"]), "OK");
    assert_eq!(
        plain.invalidation(SOON),
        keys(&["k"]),
        "own write, no NOLOOP"
    );

    let mut nl = tracker(&s, &["NOLOOP"]);
    assert_eq!(nl.text(&["GET", "k"]), "1");
    assert_eq!(nl.text(&["SET", "k", "2"]), "OK");
    assert_eq!(nl.invalidation(QUIET), None, "own write with NOLOOP");
    assert_eq!(nl.text(&["GET", "k"]), "2");
    assert_eq!(w.text(&["SET", "k", "3"]), "OK");
    assert_eq!(
        nl.invalidation(SOON),
        keys(&["k"]),
        "another client's write"
    );
}

#[test]
fn tracking_commands_answer_like_redis() {
    let s = TestServer::start();
    let mut c = Resp3::connect(s.port);
    assert_eq!(c.text(&["CLIENT", "GETREDIR"]), "-1");
    assert_eq!(
        c.text(&["CLIENT", "TRACKINGINFO"]),
        "{flags={off} prefixes=[] redirect=-1}"
    );
    let cases: &[(&[&str], &str)] = &[
        (
            &["CLIENT", "TRACKING", "ON", "PREFIX", "a"],
            "ERR PREFIX option requires BCAST mode to be enabled",
        ),
        (
            &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ),
        (
            &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ),
        (
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
            "ERR The client ID you want redirect to does not exist",
        ),
        (
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "x"],
            "ERR value is not an integer or out of range",
        ),
        (
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab",
            ],
            "ERR Prefix 'ab' overlaps with another provided prefix 'a'. Prefixes for a single client must not overlap.",
        ),
        (&["CLIENT", "TRACKING", "MAYBE"], "ERR syntax error"),
        (
            &["CLIENT", "TRACKING"],
            "ERR wrong number of arguments for 'client|tracking' command",
        ),
        (
            &["CLIENT", "CACHING", "YES"],
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(c.text(args), *want, "{args:?}");
    }
    let me = c.text(&["CLIENT", "ID"]);
    assert_eq!(
        c.text(&[
            "CLIENT", "TRACKING", "ON", "REDIRECT", &me, "OPTIN", "NOLOOP"
        ]),
        "OK"
    );
    assert_eq!(c.text(&["CLIENT", "GETREDIR"]), me);
    assert_eq!(c.text(&["CLIENT", "CACHING", "YES"]), "OK");
    assert_eq!(
        c.text(&["CLIENT", "TRACKINGINFO"]),
        format!("{{flags={{caching-yes noloop on optin}} prefixes=[] redirect={me}}}")
    );
    let list = c.text(&["CLIENT", "INFO"]);
    assert!(list.contains(&format!("redir={me}")), "{list}");
    assert_eq!(
        c.text(&["CLIENT", "TRACKING", "ON", "OPTOUT"]),
        "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode."
    );
    assert_eq!(c.text(&["RESET"]), "RESET");
    let mut c = Resp3::connect(s.port);
    assert_eq!(c.text(&["CLIENT", "GETREDIR"]), "-1");
}

#[test]
fn keys_of_an_l1_false_cache_are_invalidated_right_behind_the_read() {
    let s = server("  - { name: hot, l1: false }\n", "");
    let mut r = tracker(&s, &[]);
    let mut w = Resp3::connect(s.port);
    assert_eq!(w.text(&["SET", "hot:k", "v"]), "OK");
    assert_eq!(r.text(&["GET", "hot:k"]), "v");
    assert_eq!(
        r.invalidation(SOON),
        keys(&["hot:k"]),
        "right after the read"
    );
    assert_eq!(w.text(&["SET", "hot:k", "w"]), "OK");
    assert_eq!(r.invalidation(QUIET), None, "never in the tracking table");
    let info = w.text(&["INFO", "stats"]);
    assert!(info.contains("tracking_total_keys:0"), "{info}");
    // Keys of other caches are tracked as usual.
    assert_eq!(r.text(&["GET", "cold"]), "nil");
    assert_eq!(w.text(&["SET", "cold", "v"]), "OK");
    assert_eq!(r.invalidation(SOON), keys(&["cold"]));
}

#[test]
fn a_strong_write_waits_for_the_invalidation_to_reach_a_stuck_reader() {
    let s = server("  - { name: strong, consistency: strong }\n", "");
    let mut w = Resp3::connect(s.port);
    let big = "x".repeat(1 << 20);
    assert_eq!(w.text(&["SET", "big", &big]), "OK");

    // A tracking reader of strong:k that stops reading its socket: the server's write of
    // its replies blocks, so its connection cannot take an invalidation.
    let mut r = tracker(&s, &[]);
    assert_eq!(r.text(&["GET", "strong:k"]), "nil");
    for _ in 0..64 {
        r.send(&["GET", "big"]);
    }
    std::thread::sleep(Duration::from_millis(500));

    let t = Instant::now();
    assert_eq!(w.text(&["SET", "strong:k", "v"]), "OK");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "the reply waited for the stuck reader ({:?})",
        t.elapsed()
    );
    // The reader was closed rather than left with a stale L1: draining its socket ends
    // in EOF.
    let mut sock = r.into_socket();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match sock.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => assert!(Instant::now() < deadline, "still open"),
            Err(e) => panic!("reader not closed: {e}"),
        }
    }
}

#[test]
fn a_thousand_trackers_stay_within_the_table_limit_and_hear_of_every_change() {
    let s = server("", "limits:\n  tracking_table_max_keys: 1000\n");
    let mut clients: Vec<Resp3> = (0..1000).map(|_| tracker(&s, &[])).collect();
    // Client i reads keys k<10i> .. k<10i+9>: 10,000 keys, ten times the table's limit.
    for (i, c) in clients.iter_mut().enumerate() {
        for j in 0..10 {
            c.send(&["GET", &format!("k{}", i * 10 + j)]);
        }
    }
    for c in clients.iter_mut() {
        for _ in 0..10 {
            assert_eq!(c.reply(), F::Null);
        }
    }
    let mut w = Resp3::connect(s.port);
    let stat = |w: &mut Resp3, name: &str| -> u64 {
        let info = w.text(&["INFO"]);
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in INFO"))
    };
    assert_eq!(stat(&mut w, "tracking_clients"), 1000);
    let tracked = stat(&mut w, "tracking_total_keys");
    assert!(
        (900..=1000).contains(&tracked),
        "the table holds at most tracking-table-max-keys ({tracked})"
    );
    // Every key changes: each client hears of all ten of its keys, either now or
    // when the table dropped them.
    for chunk in (0..10_000).collect::<Vec<_>>().chunks(1000) {
        let mut args = vec!["MSET".to_string()];
        for i in chunk {
            args.push(format!("k{i}"));
            args.push("v".to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(w.text(&args), "OK");
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let mut want: Vec<String> = (0..10).map(|j| format!("k{}", i * 10 + j)).collect();
        let deadline = Instant::now() + SOON;
        while !want.is_empty() && Instant::now() < deadline {
            if let Some(Some(ks)) = c.invalidation(Duration::from_millis(200)) {
                want.retain(|k| !ks.contains(k));
            }
        }
        assert!(want.is_empty(), "client {i} never heard of {want:?}");
    }
    assert_eq!(stat(&mut w, "tracking_total_keys"), 0);
}

#[test]
fn redis_py_client_side_cache_stays_coherent() {
    let s = server(
        "  - { name: idle, tti: 1s }\n  - { name: strong, consistency: strong }\n",
        "",
    );
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/l1_near_cache.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(s.port.to_string())
        .output()
        .expect("python3 (tools/test installs redis-py)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("ok"), "{text}");
}

#[test]
fn lowering_the_table_limit_drops_and_invalidates_keys() {
    let s = TestServer::start();
    let mut r = tracker(&s, &[]);
    for i in 0..100 {
        r.send(&["GET", &format!("k{i}")]);
    }
    for _ in 0..100 {
        assert_eq!(r.reply(), F::Null);
    }
    let mut w = Resp3::connect(s.port);
    assert_eq!(
        w.text(&["CONFIG", "GET", "tracking-table-max-keys"]),
        "{tracking-table-max-keys=1000000}"
    );
    assert_eq!(
        w.text(&["CONFIG", "SET", "tracking-table-max-keys", "10"]),
        "OK"
    );
    // The cron trims the table; each dropped key is invalidated in the L1 holding it.
    let mut dropped = 0;
    while dropped < 90 {
        match r.invalidation(SOON) {
            Some(Some(ks)) => dropped += ks.len(),
            other => panic!("after {dropped} invalidations: {other:?}"),
        }
    }
    assert_eq!(r.invalidation(QUIET), None, "ten keys stay tracked");
    let info = w.text(&["INFO", "stats"]);
    assert!(info.contains("tracking_total_keys:10\r\n"), "{info}");
}
