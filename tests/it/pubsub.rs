//! Pub/sub over raw sockets: exact RESP2 and RESP3 wire forms, pattern delivery, the
//! RESP2 subscribed-mode rules, introspection and clean-up on disconnect; sharded pub/sub
//! and CROSSSLOT; keyspace notifications and their setting; PUBLISH, SPUBLISH and
//! notifications across a cluster of two stripes with mirrors.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::util::{TestServer, read_n, run};

fn send(s: &mut std::net::TcpStream, req: &str, want: &str) {
    s.write_all(req.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_n(s, want.len())),
        want,
        "reply to {req:?}"
    );
}

#[tokio::test]
async fn messages_reach_channel_and_pattern_subscribers_in_their_protocol() {
    let s = TestServer::start();
    let mut sub2 = s.raw();
    send(
        &mut sub2,
        "SUBSCRIBE news\r\n",
        "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    let mut psub = s.raw();
    send(
        &mut psub,
        "PSUBSCRIBE n*\r\n",
        "*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:1\r\n",
    );
    let mut sub3 = s.raw();
    sub3.write_all(b"HELLO 3\r\n").unwrap();
    // Skip HELLO's map: a PING reply marks its end.
    sub3.write_all(b"PING\r\n").unwrap();
    let mut seen = Vec::new();
    while !seen.ends_with(b"+PONG\r\n") {
        seen.extend(read_n(&mut sub3, 1));
    }
    send(
        &mut sub3,
        "SUBSCRIBE news\r\n",
        ">3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    // RESP3 clients may run any command while subscribed.
    send(&mut sub3, "GET nothing\r\n", "_\r\n");

    let mut c = s.conn().await;
    let n: i64 = run(&mut c, ("PUBLISH", "news", "hello")).await;
    assert_eq!(n, 3, "two channel subscribers and one pattern subscriber");
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut sub2, 33)),
        "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut sub3, 33)),
        ">3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut psub, 42)),
        "*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    let n: i64 = run(&mut c, ("PUBLISH", "other", "x")).await;
    assert_eq!(n, 0);

    // Introspection.
    let chans: Vec<String> = run(&mut c, ("PUBSUB", "CHANNELS")).await;
    assert_eq!(chans, vec!["news"]);
    let numsub: (String, i64, String, i64) = run(&mut c, ("PUBSUB", "NUMSUB", "news", "x")).await;
    assert_eq!(numsub, ("news".into(), 2, "x".into(), 0));
    let numpat: i64 = run(&mut c, ("PUBSUB", "NUMPAT")).await;
    assert_eq!(numpat, 1);
    let list: String = run(&mut c, ("CLIENT", "LIST")).await;
    assert_eq!(
        list.lines().filter(|l| l.contains(" sub=1 ")).count(),
        2,
        "{list}"
    );
    assert_eq!(
        list.lines().filter(|l| l.contains(" psub=1 ")).count(),
        1,
        "{list}"
    );
    assert!(list.lines().any(|l| l.contains("flags=P")), "{list}");

    // Disconnecting unsubscribes.
    drop(sub2);
    drop(sub3);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let numsub: (String, i64) = run(&mut c, ("PUBSUB", "NUMSUB", "news")).await;
        if numsub.1 == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscriptions survived disconnect"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn resp2_subscribed_mode_allows_only_pubsub_commands() {
    let s = TestServer::start();
    let mut t = s.raw();
    send(
        &mut t,
        "SUBSCRIBE a b\r\nGET x\r\nPING\r\nPING hi\r\nUNSUBSCRIBE\r\nGET x\r\nUNSUBSCRIBE\r\n",
        concat!(
            "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n",
            "*3\r\n$9\r\nsubscribe\r\n$1\r\nb\r\n:2\r\n",
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
            "*2\r\n$4\r\npong\r\n$2\r\nhi\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\na\r\n:1\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$1\r\nb\r\n:0\r\n",
            "$-1\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n",
        ),
    );
    // RESET leaves subscribed mode too.
    send(
        &mut t,
        "PSUBSCRIBE p*\r\nRESET\r\nGET x\r\n",
        "*3\r\n$10\r\npsubscribe\r\n$2\r\np*\r\n:1\r\n+RESET\r\n$-1\r\n",
    );
    let mut c = s.conn().await;
    let numpat: i64 = run(&mut c, ("PUBSUB", "NUMPAT")).await;
    assert_eq!(numpat, 0);
}

use redis_protocol::resp3::types::OwnedFrame as F;

use crate::util::{Resp3, show};

/// The next push message within 5 s, as text.
fn push(c: &mut Resp3) -> Vec<String> {
    let f = match c.pushes.pop_front() {
        Some(f) => f,
        None => c.frame(Duration::from_secs(5)).expect("a push within 5s"),
    };
    match f {
        F::Push { data, .. } => data.iter().map(show).collect(),
        other => panic!("not a push: {other:?}"),
    }
}

/// Subscribes a RESP3 connection with `cmd` (SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE) to one
/// name; returns the confirmation push, or the error text.
fn subscribe(c: &mut Resp3, cmd: &str, name: &str) -> Result<Vec<String>, String> {
    c.send(&[cmd, name]);
    match c
        .frame(Duration::from_secs(5))
        .expect("an answer within 5s")
    {
        F::Push { data, .. } => Ok(data.iter().map(show).collect()),
        other => Err(show(&other)),
    }
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn sharded_pubsub_confirms_delivers_smessage_and_refuses_crossslot() {
    let s = TestServer::start();
    // RESP2: exact wire forms; counts are shard channels only (Redis 7).
    let mut t = s.raw();
    send(
        &mut t,
        "SUBSCRIBE plain\r\nSSUBSCRIBE {t}a {t}b\r\nSSUBSCRIBE a b\r\nGET x\r\nPING\r\n",
        concat!(
            "*3\r\n$9\r\nsubscribe\r\n$5\r\nplain\r\n:1\r\n",
            "*3\r\n$10\r\nssubscribe\r\n$4\r\n{t}a\r\n:1\r\n",
            "*3\r\n$10\r\nssubscribe\r\n$4\r\n{t}b\r\n:2\r\n",
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
            "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
            "*2\r\n$4\r\npong\r\n$0\r\n\r\n",
        ),
    );
    // RESP3: confirmations and messages are push frames.
    let mut r3 = Resp3::connect(s.port);
    assert_eq!(
        subscribe(&mut r3, "SSUBSCRIBE", "{t}a"),
        Ok(strs(&["ssubscribe", "{t}a", "1"]))
    );
    assert_eq!(
        r3.text(&["GET", "nothing"]),
        "nil",
        "RESP3 may run any command"
    );

    let mut c = s.conn().await;
    let n: i64 = run(&mut c, ("SPUBLISH", "{t}a", "hi")).await;
    assert_eq!(n, 2);
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut t, 34)),
        "*3\r\n$8\r\nsmessage\r\n$4\r\n{t}a\r\n$2\r\nhi\r\n"
    );
    assert_eq!(push(&mut r3), strs(&["smessage", "{t}a", "hi"]));
    // PUBLISH and SPUBLISH are separate name spaces.
    let n: i64 = run(&mut c, ("PUBLISH", "{t}a", "x")).await;
    assert_eq!(n, 0);
    let n: i64 = run(&mut c, ("SPUBLISH", "plain", "x")).await;
    assert_eq!(n, 0);

    let chans: Vec<String> = run(&mut c, ("PUBSUB", "SHARDCHANNELS")).await;
    assert_eq!(chans, vec!["{t}a", "{t}b"]);
    let chans: Vec<String> = run(&mut c, ("PUBSUB", "SHARDCHANNELS", "*b")).await;
    assert_eq!(chans, vec!["{t}b"]);
    let numsub: (String, i64, String, i64) =
        run(&mut c, ("PUBSUB", "SHARDNUMSUB", "{t}a", "plain")).await;
    assert_eq!(numsub, ("{t}a".into(), 2, "plain".into(), 0));
    let chans: Vec<String> = run(&mut c, ("PUBSUB", "CHANNELS")).await;
    assert_eq!(chans, vec!["plain"]);
    let e = crate::util::try_run::<i64>(&mut c, ("PUBSUB.RELAY", "message", "plain", "x"))
        .await
        .expect_err("only peers may relay");
    assert!(
        e.to_string().contains("PUBSUB.RELAY is only accepted"),
        "{e}"
    );
    let list: String = run(&mut c, ("CLIENT", "LIST")).await;
    assert!(list.contains(" sub=1 psub=0 ssub=2 "), "{list}");

    // Leaving shard channels; the plain subscription keeps the RESP2 connection subscribed.
    send(
        &mut t,
        "SUNSUBSCRIBE\r\nSUNSUBSCRIBE\r\nUNSUBSCRIBE\r\nGET x\r\n",
        concat!(
            "*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{t}a\r\n:1\r\n",
            "*3\r\n$12\r\nsunsubscribe\r\n$4\r\n{t}b\r\n:0\r\n",
            "*3\r\n$12\r\nsunsubscribe\r\n$-1\r\n:0\r\n",
            "*3\r\n$11\r\nunsubscribe\r\n$5\r\nplain\r\n:0\r\n",
            "$-1\r\n",
        ),
    );
    let numsub: (String, i64) = run(&mut c, ("PUBSUB", "SHARDNUMSUB", "{t}a")).await;
    assert_eq!(numsub, ("{t}a".into(), 1));
}

#[tokio::test]
async fn config_set_notify_keyspace_events_validates_and_normalises() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let get = |c: &mut redis::aio::MultiplexedConnection| {
        let mut c = c.clone();
        async move {
            let v: Vec<String> = run(&mut c, ("CONFIG", "GET", "notify-keyspace-events")).await;
            v
        }
    };
    assert_eq!(get(&mut c).await, strs(&["notify-keyspace-events", ""]));
    for (set, want) in [
        ("KEA", "AKE"),
        ("Kx", "xK"),
        ("Egx$lshzetdmn", "AEm"),
        ("ndt", "tdn"),
        ("", ""),
    ] {
        let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", set)).await;
        assert_eq!(get(&mut c).await[1], want, "after setting {set:?}");
    }
    let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", "Kg")).await;
    send(
        &mut s.raw(),
        "CONFIG SET notify-keyspace-events KEq\r\n",
        "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n",
    );
    assert_eq!(
        get(&mut c).await[1],
        "gK",
        "a refused value changes nothing"
    );
}

#[tokio::test]
async fn keyspace_notifications_for_set_del_expire_expired_and_evicted() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", "KEA")).await;
    let mut sub = Resp3::connect(s.port);
    assert_eq!(
        subscribe(&mut sub, "PSUBSCRIBE", "__key*@0__:*"),
        Ok(strs(&["psubscribe", "__key*@0__:*", "1"]))
    );
    let expect = |sub: &mut Resp3, key: &str, event: &str| {
        let pat = "__key*@0__:*";
        assert_eq!(
            push(sub),
            strs(&["pmessage", pat, &format!("__keyspace@0__:{key}"), event]),
            "keyspace {event} {key}"
        );
        assert_eq!(
            push(sub),
            strs(&["pmessage", pat, &format!("__keyevent@0__:{event}"), key]),
            "keyevent {event} {key}"
        );
    };
    let _: () = run(&mut c, ("SET", "k", "v", "EX", "100")).await;
    expect(&mut sub, "k", "set");
    expect(&mut sub, "k", "expire");
    let _: i64 = run(&mut c, ("APPEND", "k", "w")).await;
    expect(&mut sub, "k", "append");
    let _: i64 = run(&mut c, ("PERSIST", "k")).await;
    expect(&mut sub, "k", "persist");
    let _: () = run(&mut c, ("RENAME", "k", "k2")).await;
    expect(&mut sub, "k", "rename_from");
    expect(&mut sub, "k2", "rename_to");
    let _: i64 = run(&mut c, ("DEL", "k2", "missing")).await;
    expect(&mut sub, "k2", "del");
    let _: i64 = run(&mut c, ("INCRBY", "n", "2")).await;
    expect(&mut sub, "n", "incrby");
    let _: i64 = run(&mut c, ("EXPIRE", "n", "-1")).await;
    expect(&mut sub, "n", "del");
    // Expired by the active expiry cycle.
    let _: () = run(&mut c, ("SET", "t", "v", "PX", "30")).await;
    expect(&mut sub, "t", "set");
    expect(&mut sub, "t", "expire");
    expect(&mut sub, "t", "expired");
    // Evicted by maxmemory.
    let _: () = run(&mut c, ("SET", "big", "x".repeat(1000))).await;
    expect(&mut sub, "big", "set");
    let _: () = run(&mut c, ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")).await;
    let _: () = run(&mut c, ("CONFIG", "SET", "maxmemory", "1")).await;
    let _: () = run(&mut c, ("SET", "small", "v")).await;
    expect(&mut sub, "big", "evicted");
    expect(&mut sub, "small", "set");
    let _: () = run(&mut c, ("CONFIG", "SET", "maxmemory", "0")).await;

    // K alone: only keyspace channels; classes filter events.
    let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", "K$")).await;
    let _: () = run(&mut c, ("SET", "a", "1")).await;
    let _: i64 = run(&mut c, ("DEL", "a")).await;
    let _: i64 = run(&mut c, ("PUBLISH", "__keyspace@0__:end", "1")).await;
    assert_eq!(
        push(&mut sub),
        strs(&["pmessage", "__key*@0__:*", "__keyspace@0__:a", "set"])
    );
    assert_eq!(
        push(&mut sub),
        strs(&["pmessage", "__key*@0__:*", "__keyspace@0__:end", "1"]),
        "no del: g is off"
    );
    // E alone with x: only expired events, on the keyevent channel.
    let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", "Ex")).await;
    let _: () = run(&mut c, ("SET", "e", "1", "PX", "30")).await;
    assert_eq!(
        push(&mut sub),
        strs(&["pmessage", "__key*@0__:*", "__keyevent@0__:expired", "e"])
    );
    // n: `new` before the command's own event, for a key that did not exist only.
    let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", "En$")).await;
    let _: () = run(&mut c, ("SET", "nk", "1")).await;
    let _: () = run(&mut c, ("SET", "nk", "2")).await;
    for event in ["new", "set", "set"] {
        assert_eq!(
            push(&mut sub),
            strs(&[
                "pmessage",
                "__key*@0__:*",
                &format!("__keyevent@0__:{event}"),
                "nk"
            ])
        );
    }
    // Off: nothing.
    let _: () = run(&mut c, ("CONFIG", "SET", "notify-keyspace-events", "")).await;
    let _: () = run(&mut c, ("SET", "f", "1")).await;
    let _: i64 = run(&mut c, ("PUBLISH", "__keyspace@0__:end", "2")).await;
    assert_eq!(
        push(&mut sub),
        strs(&["pmessage", "__key*@0__:*", "__keyspace@0__:end", "2"])
    );
}

/// Two stripes of an active and a mirror (s1 s2 | s3 s4): PUBLISH reaches every server,
/// SPUBLISH every server of the channel's stripe, keyspace notifications every server
/// once.
#[test]
fn publish_spublish_and_notifications_reach_every_server_of_the_cluster() {
    let cl = crate::stripes::Cluster::start_with(2, 2);
    let mut subs: Vec<Resp3> = (0..4).map(|i| Resp3::connect(cl.port(i))).collect();
    for s in subs.iter_mut() {
        assert_eq!(
            subscribe(s, "SUBSCRIBE", "news"),
            Ok(strs(&["subscribe", "news", "1"]))
        );
    }
    // PUBLISH on the mirror of stripe 2: its own subscriber is counted, every server's
    // subscriber receives it.
    let mut p = Resp3::connect(cl.port(3));
    assert_eq!(p.text(&["PUBLISH", "news", "hello"]), "1");
    for (i, s) in subs.iter_mut().enumerate() {
        assert_eq!(push(s), strs(&["message", "news", "hello"]), "server {i}");
    }

    // A shard channel of stripe 1: a plain connection to stripe 2 is redirected.
    let mut ssub1 = Resp3::connect(cl.port(0));
    let mut ch = String::new();
    for i in 0.. {
        ch = format!("ch{i}");
        match subscribe(&mut ssub1, "SSUBSCRIBE", &ch) {
            Ok(c) => {
                assert_eq!(c, strs(&["ssubscribe", &ch, "1"]));
                break;
            }
            Err(e) => assert!(e.starts_with("MOVED "), "{e}"),
        }
    }
    let mut ssub2 = Resp3::connect(cl.port(1));
    assert_eq!(
        subscribe(&mut ssub2, "SSUBSCRIBE", &ch),
        Ok(strs(&["ssubscribe", &ch, "1"])),
        "the stripe's mirror serves its shard channels"
    );
    let mut ssub3 = Resp3::connect(cl.port(2));
    let e = subscribe(&mut ssub3, "SSUBSCRIBE", &ch).expect_err("another stripe's channel");
    assert!(
        e.starts_with("MOVED ") && e.ends_with(&format!(":{}", cl.port(0))),
        "{e}"
    );
    // SPUBLISH from stripe 2 (a plain connection: forwarded to stripe 1's active, which
    // has one subscriber) reaches the subscribers on the active and on the mirror.
    assert_eq!(p.text(&["SPUBLISH", &ch, "s-hi"]), "1");
    assert_eq!(push(&mut ssub1), strs(&["smessage", &ch, "s-hi"]));
    assert_eq!(push(&mut ssub2), strs(&["smessage", &ch, "s-hi"]));

    // Keyspace notifications: generated once, by the active of the key's stripe, and
    // delivered on every server.
    for i in 0..4 {
        let mut c = Resp3::connect(cl.port(i));
        assert_eq!(
            c.text(&["CONFIG", "SET", "notify-keyspace-events", "E$"]),
            "OK"
        );
    }
    for (i, s) in subs.iter_mut().enumerate() {
        assert_eq!(
            subscribe(s, "SUBSCRIBE", "__keyevent@0__:set"),
            Ok(strs(&["subscribe", "__keyevent@0__:set", "2"])),
            "server {i}"
        );
    }
    // A key of each stripe (a cluster client of stripe 1 is redirected for stripe 2's).
    let mut probe = Resp3::connect(cl.port(0));
    probe.call(&["CLUSTER", "SLOTS"]);
    let mut keys: Vec<String> = Vec::new();
    for i in 0.. {
        let k = format!("key{i}");
        let moved = probe.text(&["GET", &k]).starts_with("MOVED");
        if keys.len() == usize::from(moved) {
            keys.push(k);
        }
        if keys.len() == 2 {
            break;
        }
    }
    // Written through stripe 2's active (stripe 1's key is forwarded to its active).
    let mut w = Resp3::connect(cl.port(2));
    for key in &keys {
        let key = key.as_str();
        assert_eq!(w.text(&["SET", key, "v"]), "OK");
        for (i, s) in subs.iter_mut().enumerate() {
            assert_eq!(
                push(s),
                strs(&["message", "__keyevent@0__:set", key]),
                "server {i}"
            );
        }
    }
    // No server announces a change twice (mirrors applying the record stay silent): the
    // next message everywhere is this one.
    assert_eq!(p.text(&["PUBLISH", "news", "end"]), "1");
    for (i, s) in subs.iter_mut().enumerate() {
        assert_eq!(push(s), strs(&["message", "news", "end"]), "server {i}");
    }
    let info = p.text(&["INFO", "stats"]);
    let relayed: u64 = crate::util::field(&info, "pubsub_relayed")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert_eq!(relayed, 6, "two PUBLISHes to three servers: {info}");
    assert_eq!(
        crate::util::field(&info, "pubsub_relay_dropped").as_deref(),
        Some("0")
    );
    assert_eq!(
        crate::util::field(&info, "pubsub_channels").as_deref(),
        Some("2")
    );

    // redis-py's RedisCluster routes SSUBSCRIBE and SPUBLISH by the channels' slots.
    let script = r#"
import sys, time, redis
rc = redis.RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
p = rc.pubsub()
names = [f"py{i}" for i in range(10)]
for n in names:
    p.ssubscribe(n)
def take(kind):
    got, t = [], time.time()
    while len(got) < len(names) and time.time() - t < 10:
        m = p.get_sharded_message(timeout=0.2)
        if m:
            assert m["type"] == kind, m
            got.append(m["channel"].decode())
    return sorted(got)
assert take("ssubscribe") == sorted(names)
for n in names:
    assert rc.spublish(n, "v") == 1, n
assert take("smessage") == sorted(names)
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &cl.port(0).to_string()])
        .output()
        .expect("python3 (tools/test installs redis-py)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

/// A stopped (SIGSTOP) server does not slow the publisher down: PUBLISH answers at once,
/// local subscribers get every message, and the stopped server's subscriber gets them, in
/// order, once it runs again.
#[test]
fn a_stopped_server_does_not_block_publish() {
    let cl = crate::stripes::Cluster::start_with(1, 2);
    let mut local = Resp3::connect(cl.port(0));
    let mut far = Resp3::connect(cl.port(1));
    for s in [&mut local, &mut far] {
        assert_eq!(
            subscribe(s, "SUBSCRIBE", "news"),
            Ok(strs(&["subscribe", "news", "1"]))
        );
    }
    let mut p = Resp3::connect(cl.port(0));
    assert_eq!(p.text(&["PUBLISH", "news", "warm"]), "1");
    assert_eq!(push(&mut local), strs(&["message", "news", "warm"]));
    assert_eq!(push(&mut far), strs(&["message", "news", "warm"]));

    cl.servers[1].signal(rustix::process::Signal::STOP);
    let started = Instant::now();
    for i in 0..200 {
        assert_eq!(p.text(&["PUBLISH", "news", &i.to_string()]), "1");
    }
    let took = started.elapsed();
    for i in 0..200 {
        assert_eq!(push(&mut local), strs(&["message", "news", &i.to_string()]));
    }
    cl.servers[1].signal(rustix::process::Signal::CONT);
    assert!(
        took < Duration::from_secs(3),
        "200 PUBLISHes took {took:?} with a stopped peer"
    );
    for i in 0..200 {
        assert_eq!(push(&mut far), strs(&["message", "news", &i.to_string()]));
    }
}
