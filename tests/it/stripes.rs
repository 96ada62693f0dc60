//! Stripes with real processes: slots spread over stripes, the redis crate's cluster client,
//! MOVED and CROSSSLOT for cluster clients, transparent routing (forward, split, fan-out,
//! SCAN) for plain ones, transactions' same-slot rule, redis-cli -c and redis-py's
//! RedisCluster.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redis::Value;

use crate::util::{TestServer, free_port};

/// A cluster of `stripes` stripes (`stripe1`..) of `per` servers each (`s1`.. in order) in a
/// temp dir; the first server of each stripe is its active.
pub(crate) struct Cluster {
    _dir: tempfile::TempDir,
    conf: PathBuf,
    pub(crate) servers: Vec<TestServer>,
}

impl Cluster {
    fn start(stripes: usize) -> Cluster {
        Cluster::start_with(stripes, 1)
    }

    pub(crate) fn start_with(stripes: usize, per: usize) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports: Vec<u16> = (0..stripes * per).map(|_| free_port()).collect();
        let mut yaml = String::from("cluster:\n  stripes:\n");
        for (i, p) in ports.iter().enumerate() {
            if i % per == 0 {
                yaml.push_str(&format!(
                    "    - name: stripe{}\n      servers:\n",
                    i / per + 1
                ));
            }
            yaml.push_str(&format!(
                "        - {{ name: s{n}, host: 127.0.0.1, port: {p}, group_port: {g} }}\n",
                n = i + 1,
                g = free_port()
            ));
        }
        let conf: PathBuf = dir.path().join("conf.yaml");
        std::fs::write(&conf, yaml).expect("config");
        let mut servers = Vec::new();
        for (i, &p) in ports.iter().enumerate() {
            servers.push(TestServer::start_named(&conf, &format!("s{}", i + 1), p));
        }
        // The control plane (a majority of the servers) makes the first listed of each
        // stripe its active once every server reported.
        for (i, s) in servers.iter().enumerate() {
            let want = if i % per == 0 {
                "ACTIVE-COORDINATOR"
            } else {
                "PASSIVE-STANDBY"
            };
            wait_field(s.port, "terrace_state", want);
        }
        for s in &servers {
            wait_ok(s.port);
        }
        Cluster {
            _dir: dir,
            conf,
            servers,
        }
    }

    pub(crate) fn port(&self, i: usize) -> u16 {
        self.servers[i].port
    }
}

fn con(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .expect("client")
        .get_connection_with_timeout(Duration::from_secs(5))
        .expect("connect")
}

/// Waits (bounded) until the server reports `cluster_state:ok`.
fn wait_ok(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: Option<String> = redis::cmd("CLUSTER").arg("INFO").query(&mut con(port)).ok();
        if info.is_some_and(|i| i.contains("cluster_state:ok")) {
            return;
        }
        assert!(Instant::now() < deadline, "cluster not ok on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until INFO terrace shows `field:value`.
fn wait_field(port: u16, field: &str, value: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info: Option<String> = redis::cmd("INFO").arg("terrace").query(&mut con(port)).ok();
        if info.is_some_and(|i| i.lines().any(|l| l == format!("{field}:{value}"))) {
            return;
        }
        assert!(Instant::now() < deadline, "{port} not {field}:{value}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `CLUSTER SLOTS` as (first, last, "host:port") ranges.
fn slot_ranges(c: &mut redis::Connection) -> Vec<(u16, u16, String)> {
    let v: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query(c).expect("slots");
    v.into_iter()
        .map(|r| {
            let Value::Array(r) = r else {
                panic!("range {r:?}")
            };
            let n = |v: &Value| match v {
                Value::Int(i) => *i,
                other => panic!("not an int: {other:?}"),
            };
            let Value::Array(node) = &r[2] else {
                panic!("node")
            };
            let host = match &node[0] {
                Value::BulkString(b) => String::from_utf8(b.clone()).expect("utf-8"),
                other => panic!("host {other:?}"),
            };
            (
                n(&r[0]) as u16,
                n(&r[1]) as u16,
                format!("{host}:{}", n(&node[1])),
            )
        })
        .collect()
}

/// The address owning `slot` in `ranges`.
fn owner_of(ranges: &[(u16, u16, String)], slot: u16) -> &str {
    ranges
        .iter()
        .find(|r| r.0 <= slot && slot <= r.1)
        .map(|r| r.2.as_str())
        .expect("every slot is covered")
}

fn keyslot(c: &mut redis::Connection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(c)
        .expect("keyslot")
}

#[test]
fn hundred_thousand_keys_through_the_cluster_client_read_back_from_any_server() {
    let cl = Cluster::start(3);
    // Every server publishes the same map, covering all 16384 slots, about a third each.
    let ranges = slot_ranges(&mut con(cl.port(0)));
    for i in 1..3 {
        assert_eq!(
            slot_ranges(&mut con(cl.port(i))),
            ranges,
            "server {i} disagrees"
        );
    }
    assert_eq!(ranges.first().map(|r| r.0), Some(0));
    assert_eq!(ranges.last().map(|r| r.1), Some(16383));
    assert!(
        ranges.windows(2).all(|w| w[0].1 + 1 == w[1].0),
        "gaps in the map"
    );
    let mut share: HashMap<&str, usize> = HashMap::new();
    for (a, b, addr) in &ranges {
        *share.entry(addr).or_default() += usize::from(b - a) + 1;
    }
    assert_eq!(share.len(), 3);
    for (addr, n) in &share {
        let even = 16384.0 / 3.0;
        assert!(
            (*n as f64 - even).abs() / even <= 0.10,
            "{addr} owns {n} slots"
        );
    }

    let n = 100_000;
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", cl.port(0))])
            .expect("cluster client");
    let mut cc = client.get_connection().expect("cluster connection");
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        let mut p = redis::cluster::cluster_pipe();
        for i in chunk {
            p.set(format!("key:{i}"), format!("v{i}")).ignore();
        }
        let () = p.query(&mut cc).expect("pipeline");
    }
    // The keys really are spread: each stripe holds its third (DBSIZE from a cluster
    // client is the server's own count).
    let mut total = 0;
    for i in 0..3 {
        let mut c = con(cl.port(i));
        let _: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut c)
            .expect("slots");
        let local: usize = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
        assert!(
            (25_000..41_000).contains(&local),
            "server {i} holds {local} of {n}"
        );
        total += local;
    }
    assert_eq!(total, n);

    // Every key through plain redis-cli connected to one server (pipelined from stdin).
    let mut cmds = String::new();
    for i in 0..n {
        cmds.push_str(&format!("GET key:{i}\n"));
    }
    let mut cli = std::process::Command::new("redis-cli")
        .args(["-p", &cl.port(1).to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli (tools/test installs redis-tools)");
    let mut stdin = cli.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(cmds.as_bytes()));
    let out = cli.wait_with_output().expect("redis-cli output");
    writer.join().expect("writer").expect("write");
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(lines.len(), n);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("v{i}"), "key:{i}");
    }
    // DBSIZE from a plain connection is the whole cluster's.
    let all: usize = redis::cmd("DBSIZE")
        .query(&mut con(cl.port(2)))
        .expect("dbsize");
    assert_eq!(all, n);
}

#[test]
fn cluster_clients_get_moved_for_every_stripe_and_crossslot() {
    let cl = Cluster::start(3);
    let ranges = slot_ranges(&mut con(cl.port(0)));
    // Keys covering every stripe.
    let mut by_owner: HashMap<String, String> = HashMap::new();
    let mut probe = con(cl.port(0));
    for i in 0.. {
        let k = format!("m{i}");
        let owner = owner_of(&ranges, keyslot(&mut probe, &k)).to_string();
        by_owner.entry(owner).or_insert(k);
        if by_owner.len() == 3 {
            break;
        }
    }
    for s in 0..3 {
        let me = format!("127.0.0.1:{}", cl.port(s));
        let mut c = con(cl.port(s));
        // Asking for the slot map makes it a cluster client.
        let _: Value = redis::cmd("CLUSTER")
            .arg("SHARDS")
            .query(&mut c)
            .expect("shards");
        for (owner, key) in &by_owner {
            let slot = keyslot(&mut c, key);
            let r: redis::RedisResult<Option<String>> = redis::cmd("GET").arg(key).query(&mut c);
            if *owner == me {
                assert_eq!(r.expect("local key"), None);
            } else {
                let e = r.expect_err("another stripe's key");
                assert_eq!(e.code(), Some("MOVED"), "{e}");
                assert_eq!(
                    e.redirect_node(),
                    Some((owner.as_str(), slot)),
                    "{key} from server {s}"
                );
            }
        }
        // Two slots in one command: CROSSSLOT, even when both are on this server.
        let e = redis::cmd("MGET")
            .arg("{a}1")
            .arg("{b}1")
            .query::<Value>(&mut c)
            .expect_err("crossslot");
        assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
        // Hash tags keep keys together.
        let r: Vec<Option<String>> = redis::cmd("MGET")
            .arg("{x}1")
            .arg("{x}2")
            .query(&mut c)
            .unwrap_or_else(|e| {
                assert_eq!(e.code(), Some("MOVED"));
                vec![None, None]
            });
        assert_eq!(r, vec![None, None]);
    }
    // CLUSTER NODES lists three masters, each with its slots; MYID is this server's line.
    let mut c = con(cl.port(1));
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut c)
        .expect("nodes");
    let myid: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut c)
        .expect("myid");
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    assert!(
        lines
            .iter()
            .all(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("master")))
    );
    let mine = lines
        .iter()
        .find(|l| l.starts_with(&myid))
        .expect("my line");
    assert!(mine.contains("myself"), "{mine}");
    assert!(
        mine.contains(&format!("127.0.0.1:{}@", cl.port(1))),
        "{mine}"
    );
    // Unknown slots and subcommands are Redis's errors.
    let e = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(16384)
        .query::<i64>(&mut c)
        .expect_err("slot");
    assert_eq!(e.detail(), Some("Invalid slot"), "{e}");
    let e = redis::cmd("CLUSTER")
        .arg("ADDSLOTS")
        .arg(1)
        .query::<Value>(&mut c)
        .expect_err("sub");
    assert!(
        e.to_string().contains("unknown subcommand 'ADDSLOTS'"),
        "{e}"
    );
}

#[test]
fn plain_clients_are_routed_split_and_fanned_out() {
    let cl = Cluster::start(3);
    let mut c = con(cl.port(0));
    let keys: Vec<String> = (0..60).map(|i| format!("p{i}")).collect();
    let mut mset = redis::cmd("MSET");
    for k in &keys {
        mset.arg(k).arg(format!("val-{k}"));
    }
    let () = mset.query(&mut c).expect("mset across stripes");
    // Read back from another server, in order, with a missing key in the middle.
    let mut c2 = con(cl.port(2));
    let mut mget = redis::cmd("MGET");
    for k in keys.iter().take(30) {
        mget.arg(k);
    }
    mget.arg("missing");
    for k in keys.iter().skip(30) {
        mget.arg(k);
    }
    let got: Vec<Option<String>> = mget.query(&mut c2).expect("mget across stripes");
    let mut want: Vec<Option<String>> = keys
        .iter()
        .take(30)
        .map(|k| Some(format!("val-{k}")))
        .collect();
    want.push(None);
    want.extend(keys.iter().skip(30).map(|k| Some(format!("val-{k}"))));
    assert_eq!(got, want);
    // Single keys of other stripes are forwarded, writes included.
    for k in &keys {
        let v: String = redis::cmd("APPEND")
            .arg(k)
            .arg("!")
            .query(&mut c2)
            .map(|n: i64| n.to_string())
            .expect("append");
        assert_eq!(v, (format!("val-{k}").len() + 1).to_string());
    }
    let v: String = redis::cmd("GET")
        .arg("p7")
        .query(&mut con(cl.port(1)))
        .expect("get");
    assert_eq!(v, "val-p7!");
    // Multi-key counts add up over the stripes.
    let n: i64 = redis::cmd("EXISTS")
        .arg(&keys)
        .arg("missing")
        .query(&mut c2)
        .expect("exists");
    assert_eq!(n, 60);
    let n: i64 = redis::cmd("TOUCH")
        .arg(&keys[..10])
        .query(&mut c2)
        .expect("touch");
    assert_eq!(n, 10);
    // KEYS, SCAN and DBSIZE see the whole cluster.
    let mut all: Vec<String> = redis::cmd("KEYS").arg("p*").query(&mut c2).expect("keys");
    all.sort();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(all, sorted);
    let mut scanned = Vec::new();
    let mut cursor = 0u64;
    for _ in 0..10_000 {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(7)
            .query(&mut c)
            .expect("scan");
        scanned.extend(page);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert_eq!(cursor, 0, "scan did not finish");
    scanned.sort();
    scanned.dedup();
    assert_eq!(scanned, sorted);
    let e = redis::cmd("SCAN")
        .arg(u64::MAX)
        .query::<Value>(&mut c)
        .expect_err("bad cursor");
    assert!(e.to_string().contains("invalid cursor"), "{e}");
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(n, 60);
    // The owner counts and lists a slot's keys (from a cluster connection: the local view).
    let mut probe = con(cl.port(0));
    let slot = keyslot(&mut probe, "p0");
    let in_slot: Vec<String> = keys
        .iter()
        .filter(|k| keyslot(&mut probe, k) == slot)
        .cloned()
        .collect();
    let owner = owner_of(&slot_ranges(&mut probe), slot).to_string();
    let port: u16 = owner
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let mut oc = con(port);
    let n: usize = redis::cmd("CLUSTER")
        .arg("COUNTKEYSINSLOT")
        .arg(slot)
        .query(&mut oc)
        .expect("count");
    assert_eq!(n, in_slot.len());
    let got: Vec<String> = redis::cmd("CLUSTER")
        .arg("GETKEYSINSLOT")
        .arg(slot)
        .arg(100)
        .query(&mut oc)
        .expect("keys");
    assert_eq!(got, in_slot);
    let n: i64 = redis::cmd("DEL")
        .arg(&keys[..10])
        .query(&mut c)
        .expect("del");
    assert_eq!(n, 10);
    let n: i64 = redis::cmd("UNLINK")
        .arg(&keys[..20])
        .query(&mut c)
        .expect("unlink");
    assert_eq!(n, 10);
    let n: i64 = redis::cmd("DBSIZE").query(&mut c2).expect("dbsize");
    assert_eq!(n, 40);
    // A command that cannot be split across stripes is refused, not half done.
    // (Asked on its own connection: asking for the slot map makes a cluster client.)
    let (a, b) = two_keys_on_other_stripes(&mut con(cl.port(0)));
    let e = redis::cmd("MSETNX")
        .arg(&a)
        .arg(1)
        .arg(&b)
        .arg(2)
        .query::<i64>(&mut c)
        .expect_err("msetnx");
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    let n: i64 = redis::cmd("EXISTS")
        .arg(&a)
        .arg(&b)
        .query(&mut c)
        .expect("exists");
    assert_eq!(n, 0);
    let () = redis::cmd("FLUSHALL").query(&mut c2).expect("flushall");
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).expect("dbsize");
    assert_eq!(n, 0);
}

/// Two keys owned by two different stripes, neither of them server 0's.
fn two_keys_on_other_stripes(c: &mut redis::Connection) -> (String, String) {
    let ranges = slot_ranges(c);
    let myself = {
        let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(c).expect("nodes");
        let line = nodes
            .lines()
            .find(|l| l.contains("myself"))
            .expect("myself")
            .to_string();
        line.split(' ')
            .nth(1)
            .and_then(|a| a.split('@').next())
            .expect("addr")
            .to_string()
    };
    let mut found: Vec<(String, String)> = Vec::new();
    for i in 0.. {
        let k = format!("o{i}");
        let owner = owner_of(&ranges, keyslot(c, &k)).to_string();
        if owner != myself && !found.iter().any(|(o, _)| *o == owner) {
            found.push((owner, k));
        }
        if found.len() == 2 {
            break;
        }
    }
    (found[0].1.clone(), found[1].1.clone())
}

#[test]
fn transactions_keep_the_same_slot_rule() {
    let cl = Cluster::start(2);
    let mut c = con(cl.port(0));
    let ranges = slot_ranges(&mut con(cl.port(0)));
    let me = format!("127.0.0.1:{}", cl.port(0));
    // A hash tag of this server's stripe, and one of the other's.
    let mut local_tag = None;
    let mut remote_tag = None;
    for i in 0.. {
        let tag = format!("t{i}");
        let owner = owner_of(&ranges, keyslot(&mut c, &tag)).to_string();
        if owner == me {
            local_tag.get_or_insert(tag);
        } else {
            remote_tag.get_or_insert(tag);
        }
        if local_tag.is_some() && remote_tag.is_some() {
            break;
        }
    }
    let (l, r) = (local_tag.expect("local"), remote_tag.expect("remote"));
    // Same slot, this stripe: WATCH/MULTI/EXEC work as in Redis.
    let () = redis::cmd("WATCH")
        .arg(format!("{{{l}}}a"))
        .query(&mut c)
        .expect("watch");
    let () = redis::cmd("MULTI").query(&mut c).expect("multi");
    let q: String = redis::cmd("SET")
        .arg(format!("{{{l}}}a"))
        .arg(1)
        .query(&mut c)
        .expect("queued");
    assert_eq!(q, "QUEUED");
    let _: String = redis::cmd("INCR")
        .arg(format!("{{{l}}}b"))
        .query(&mut c)
        .expect("queued");
    let done: Vec<Value> = redis::cmd("EXEC").query(&mut c).expect("exec");
    assert_eq!(done.len(), 2);
    // Another slot inside the same transaction: CROSSSLOT, and EXEC aborts.
    let () = redis::cmd("MULTI").query(&mut c).expect("multi");
    let _: String = redis::cmd("SET")
        .arg(format!("{{{l}}}a"))
        .arg(2)
        .query(&mut c)
        .expect("queued");
    let e = redis::cmd("SET")
        .arg("elsewhere-x")
        .arg(1)
        .query::<String>(&mut c)
        .expect_err("crossslot");
    assert_eq!(e.code(), Some("CROSSSLOT"), "{e}");
    let e = redis::cmd("EXEC")
        .query::<Value>(&mut c)
        .expect_err("execabort");
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
    let v: String = redis::cmd("GET")
        .arg(format!("{{{l}}}a"))
        .query(&mut c)
        .expect("get");
    assert_eq!(v, "1");
    // Another stripe's keys in a transaction of a plain connection: a clear error.
    let e = redis::cmd("WATCH")
        .arg(format!("{{{r}}}a"))
        .query::<()>(&mut c)
        .expect_err("remote watch");
    assert!(e.to_string().contains("can only use keys of stripe"), "{e}");
}

#[test]
fn redis_cli_c_and_redis_py_cluster_work() {
    let cl = Cluster::start(2);
    // redis-cli -c follows redirections (and plain forwarding serves it anyway).
    for (i, k) in ["alpha", "beta", "gamma", "delta"].iter().enumerate() {
        let port = cl.port(i % 2).to_string();
        let out = std::process::Command::new("redis-cli")
            .args(["-c", "-p", &port, "SET", k, &format!("{k}-v")])
            .output()
            .expect("redis-cli");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    }
    let script = r#"
import sys, redis
rc = redis.RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
for k in ["alpha", "beta", "gamma", "delta"]:
    assert rc.get(k) == (k + "-v").encode(), k
for i in range(500):
    rc.set(f"py:{i}", i)
assert all(rc.get(f"py:{i}") == str(i).encode() for i in range(500))
assert rc.mget_nonatomic(["alpha", "py:1", "nope"]) == [b"alpha-v", b"1", None]
print(len(rc.get_nodes()), rc.dbsize())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &cl.port(1).to_string()])
        .output()
        .expect("python3 (tools/test installs redis-py)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Two nodes; DBSIZE is summed over the primaries by redis-py: 504 keys.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2 504");
}

#[test]
fn routing_follows_a_switchover_in_another_stripe() {
    // Two stripes of an active and a mirror.
    let cl = Cluster::start_with(2, 2);
    let mut plain = con(cl.port(0));
    let keys: Vec<String> = (0..200).map(|i| format!("sw{i}")).collect();
    for k in &keys {
        let () = redis::cmd("SET")
            .arg(k)
            .arg(k)
            .query(&mut plain)
            .expect("set");
    }
    let client =
        redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{}/", cl.port(0))])
            .expect("cluster client");
    let mut cc = client.get_connection().expect("cluster connection");
    let v: String = redis::cmd("GET").arg("sw1").query(&mut cc).expect("get");
    assert_eq!(v, "sw1");
    // CLUSTER NODES shows each stripe's mirror as a replica of its active.
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query(&mut con(cl.port(0)))
        .expect("nodes");
    assert_eq!(
        nodes.lines().filter(|l| l.contains(" slave ")).count(),
        2,
        "{nodes}"
    );

    // stripe2's mirror (s4) takes over.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args([
            "failover",
            "-f",
            cl.conf.to_str().expect("path"),
            "--stripe",
            "stripe2",
        ])
        .output()
        .expect("terrace failover");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_field(cl.port(3), "terrace_state", "ACTIVE-COORDINATOR");

    // The plain connection on stripe1 still reads and writes every key, stripe2's included.
    for k in &keys {
        let v: String = redis::cmd("GET")
            .arg(k)
            .query(&mut plain)
            .expect("get after switchover");
        assert_eq!(&v, k);
        let () = redis::cmd("SET")
            .arg(k)
            .arg(format!("{k}+"))
            .query(&mut plain)
            .expect("set");
    }
    // The cluster client follows MOVED to the new active.
    for k in &keys {
        let v: String = redis::cmd("GET")
            .arg(k)
            .query(&mut cc)
            .expect("cluster get");
        assert_eq!(v, format!("{k}+"));
    }
    // Within a few seconds every server's slot map names the new active.
    let new_active = format!("127.0.0.1:{}", cl.port(3));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let maps: Vec<_> = (0..4).map(|i| slot_ranges(&mut con(cl.port(i)))).collect();
        if maps.iter().all(|m| m.iter().any(|r| r.2 == new_active)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot maps still name the old active: {maps:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn tools_cluster_starts_and_stops_a_cluster_from_a_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p1, p2) = (free_port(), free_port());
    let conf = dir.path().join("two.yaml");
    std::fs::write(
        &conf,
        format!(
            "cluster:\n  stripes:\n    - name: a\n      servers: [{{ name: a1, port: {p1}, group_port: {} }}]\n    - name: b\n      servers: [{{ name: b1, port: {p2}, group_port: {} }}]\n",
            free_port(),
            free_port()
        ),
    )
    .expect("config");
    let folder = dir.path().join("run");
    let tool = |action: &str| {
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tools/cluster"))
            .args([action, "-f", conf.to_str().expect("path"), "--dir"])
            .arg(&folder)
            .env("TERRACE_BIN", env!("CARGO_BIN_EXE_terrace"))
            .output()
            .expect("tools/cluster")
    };
    let up = tool("up");
    let text = String::from_utf8_lossy(&up.stdout).to_string();
    assert!(
        up.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(text.matches("ACTIVE-COORDINATOR").count(), 2, "{text}");
    let pids: Vec<u32> = ["a1", "b1"]
        .iter()
        .map(|n| {
            std::fs::read_to_string(folder.join("run").join(format!("{n}.pid")))
                .expect("pid file")
                .trim()
                .parse()
                .expect("pid")
        })
        .collect();
    // A working cluster: a key written through one server is read through the other.
    let () = redis::cmd("SET")
        .arg("tool-key")
        .arg("v")
        .query(&mut con(p1))
        .expect("set");
    let v: String = redis::cmd("GET")
        .arg("tool-key")
        .query(&mut con(p2))
        .expect("get");
    assert_eq!(v, "v");
    assert!(tool("status").status.success());
    let down = tool("down");
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    // Ended: no such process, or a zombie waiting for init to reap it.
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_string()));
        assert!(
            state.is_none_or(|s| s.starts_with('Z')),
            "server {pid} still running after down"
        );
    }
    for n in ["a1", "b1"] {
        let log =
            std::fs::read_to_string(folder.join("logs").join(format!("{n}.log"))).expect("log");
        assert!(log.contains("ready to accept connections"), "{log}");
    }
}
