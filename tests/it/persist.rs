//! Fast restart: every acknowledged write survives SIGKILL under `always`, `everysec` loses
//! at most about a second, a log cut at any byte starts with exactly its complete records,
//! a damaged record refuses the start until `--repair`, compaction under load loses
//! nothing, a failed write refuses writes until a rewrite recovers, deadlines survive and
//! idle clocks restart. Real processes, the real disk, real SIGKILL.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use terrace::persist::record::{self, Frame};

use crate::util::{TestServer, run, try_run};

/// A data directory that outlives the servers started on it.
struct DataDir {
    dir: tempfile::TempDir,
}

impl DataDir {
    fn new() -> DataDir {
        DataDir {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A one-server restartable config on this directory; `storage` adds lines to the
    /// `storage:` section, `caches` is the `caches:` section (may be empty).
    fn yaml(&self, storage: &str, caches: &str) -> String {
        config(self.path(), storage, caches)
    }

    fn start(&self, storage: &str) -> TestServer {
        TestServer::start_with(Some(&self.yaml(storage, "")), &[])
    }

    fn log(&self, seq: u64) -> PathBuf {
        self.path().join(format!("terrace.log.{seq}"))
    }
}

fn config(data: &Path, storage: &str, caches: &str) -> String {
    format!(
        "cluster:\n  stripes:\n    - name: s\n      servers:\n        - {{ name: a, host: 127.0.0.1, port: 6379, data: {} }}\nstorage:\n  restartable: true\n{}{}",
        data.display(),
        storage
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>(),
        caches
    )
}

async fn info(c: &mut MultiplexedConnection) -> String {
    run(c, ("INFO", "persistence")).await
}

/// The value of `name` in INFO text.
fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Every live key with its value and absolute expiry (ms; -1 = none).
async fn dump(c: &mut MultiplexedConnection) -> HashMap<Vec<u8>, (Vec<u8>, i64)> {
    let mut out = HashMap::new();
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = run(c, ("SCAN", cursor, "COUNT", 1000)).await;
        for k in keys {
            let v: Option<Vec<u8>> = run(c, ("GET", &k)).await;
            let at: i64 = run(c, ("PEXPIRETIME", &k)).await;
            if let Some(v) = v {
                out.insert(k, (v, at));
            }
        }
        if next == 0 {
            return out;
        }
        cursor = next;
    }
}

/// What one writer had acknowledged when the server died.
#[derive(Default)]
struct Oracle {
    /// Keys whose SET was acknowledged (and not deleted since), with their values.
    present: HashMap<String, String>,
    /// Keys whose DEL was acknowledged.
    absent: HashSet<String>,
    /// The key of the write in flight when the connection failed: either outcome is right.
    unsure: Option<String>,
    /// The last value an acknowledged INCR of the writer's counter returned.
    counter: i64,
}

/// Writes until the connection fails: new keys, deletions of earlier ones, and a counter.
async fn write_until_killed(mut c: MultiplexedConnection, w: usize, round: usize, o: &mut Oracle) {
    let ctr = format!("ctr:{w}");
    for n in 0u64.. {
        let key = format!("w{w}:{round}:{n}");
        let val = format!("v{round}.{n}");
        o.unsure = Some(key.clone());
        if try_run::<()>(&mut c, ("SET", &key, &val)).await.is_err() {
            return;
        }
        o.present.insert(key, val);
        if n % 5 == 4 {
            let victim = format!("w{w}:{round}:{}", n - 2);
            o.unsure = Some(victim.clone());
            if try_run::<i64>(&mut c, ("DEL", &victim)).await.is_err() {
                return;
            }
            o.present.remove(&victim);
            o.absent.insert(victim);
        }
        o.unsure = Some(ctr.clone());
        match try_run::<i64>(&mut c, ("INCR", &ctr)).await {
            Ok(v) => o.counter = v,
            Err(_) => return,
        }
        o.unsure = None;
    }
}

/// Checks the restarted server against what was acknowledged.
async fn check(c: &mut MultiplexedConnection, w: usize, o: &Oracle) {
    let sure = |k: &&String| o.unsure.as_ref() != Some(*k);
    let present: Vec<(&String, &String)> = o.present.iter().filter(|(k, _)| sure(k)).collect();
    for chunk in present.chunks(500) {
        let keys: Vec<&String> = chunk.iter().map(|(k, _)| *k).collect();
        let got: Vec<Option<String>> = run(c, ("MGET", keys)).await;
        for ((k, v), got) in chunk.iter().zip(got) {
            assert_eq!(got.as_ref(), Some(*v), "acknowledged SET {k} lost");
        }
    }
    let absent: Vec<&String> = o.absent.iter().filter(sure).collect();
    for chunk in absent.chunks(500) {
        let got: Vec<Option<String>> = run(c, ("MGET", chunk)).await;
        for (k, got) in chunk.iter().zip(got) {
            assert_eq!(got, None, "acknowledged DEL {k} lost");
        }
    }
    let got: Option<i64> = run(c, ("GET", format!("ctr:{w}"))).await;
    let got = got.unwrap_or(0);
    assert!(
        got == o.counter || got == o.counter + 1,
        "writer {w}: counter {got}, acknowledged {}",
        o.counter
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_always_loses_no_acknowledged_write() {
    // 20 rounds in CI; TERRACE_TEST_KILL_ROUNDS=N for a longer soak.
    let rounds: usize = std::env::var("TERRACE_TEST_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    const WRITERS: usize = 4;
    let data = DataDir::new();
    // Small rewrite thresholds: compactions run (and get killed) during the load too.
    let storage = "fsync: always\nrewrite_min_size: 4k\nrewrite_percentage: 25";
    let mut oracles: Vec<Oracle> = (0..WRITERS).map(|_| Oracle::default()).collect();
    let mut rewrites = 0;
    for round in 0..rounds {
        let mut s = data.start(storage);
        let mut c = s.conn().await;
        for (w, o) in oracles.iter().enumerate() {
            check(&mut c, w, o).await;
        }
        // Settle what was in flight at the kill by what the server holds now: an
        // unacknowledged write may or may not have made it, but from here on it is fact.
        for (w, o) in oracles.iter_mut().enumerate() {
            let now: Option<i64> = run(&mut c, ("GET", format!("ctr:{w}"))).await;
            o.counter = now.unwrap_or(0);
            if let Some(k) = o.unsure.take().filter(|k| *k != format!("ctr:{w}")) {
                let v: Option<String> = run(&mut c, ("GET", &k)).await;
                match v {
                    Some(v) => {
                        o.absent.remove(&k);
                        o.present.insert(k, v);
                    }
                    None => {
                        o.present.remove(&k);
                        o.absent.insert(k);
                    }
                }
            }
        }
        let mut tasks = Vec::new();
        for (w, mut o) in std::mem::take(&mut oracles).into_iter().enumerate() {
            let conn = s.conn().await;
            tasks.push(tokio::spawn(async move {
                write_until_killed(conn, w, round, &mut o).await;
                o
            }));
        }
        tokio::time::sleep(Duration::from_millis(30 + fastrand::u64(..150))).await;
        // Every other round a compaction starts under the load, and the kill may cut it.
        if round % 2 == 0 && try_run::<String>(&mut c, "BGREWRITEAOF").await.is_ok() {
            rewrites += 1;
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..150))).await;
        s.sigkill();
        for t in tasks {
            oracles.push(t.await.expect("writer"));
        }
    }
    let s = data.start(storage);
    let mut c = s.conn().await;
    let mut acked = 0;
    for (w, o) in oracles.iter().enumerate() {
        check(&mut c, w, o).await;
        acked += o.present.len() + o.absent.len();
    }
    assert!(
        acked > rounds * WRITERS,
        "the writers got too little done ({acked})"
    );
    assert!(rewrites > 0, "no compaction was started during the rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_everysec_loses_at_most_about_a_second() {
    let data = DataDir::new();
    let mut s = data.start("fsync: everysec");
    let mut c = s.conn().await;
    let start = Instant::now();
    let mut acked: Vec<(u64, Duration)> = Vec::new();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_millis(1500) {
        let mut p = redis::pipe();
        for i in n..n + 50 {
            p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
        }
        let () = p.query_async(&mut c).await.expect("pipelined SET");
        let at = start.elapsed();
        acked.extend((n..n + 50).map(|i| (i, at)));
        n += 50;
    }
    let killed = start.elapsed();
    s.sigkill();
    let s = data.start("fsync: everysec");
    let mut c = s.conn().await;
    let mut lost = Vec::new();
    for chunk in acked.chunks(500) {
        let keys: Vec<String> = chunk.iter().map(|(i, _)| format!("k{i}")).collect();
        let got: Vec<Option<u64>> = run(&mut c, ("MGET", keys)).await;
        for ((i, at), v) in chunk.iter().zip(got) {
            match v {
                Some(v) => assert_eq!(v, *i),
                None => lost.push(*at),
            }
        }
    }
    // Writes reach the kernel within milliseconds; only an OS crash could lose up to the
    // last fsync, a second. What a process kill loses must be younger than that.
    let oldest_lost = lost.iter().min();
    assert!(
        oldest_lost.is_none_or(|at| killed.saturating_sub(*at) <= Duration::from_millis(1100)),
        "lost {} writes, the oldest acknowledged {:?} before the kill",
        lost.len(),
        oldest_lost.map(|at| killed - *at)
    );
}

/// Where each record of a log file starts and ends.
fn record_bounds(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 8;
    while let Frame::Ok { len, .. } = record::frame(&bytes[pos..]) {
        out.push((pos, pos + len));
        pos += len;
    }
    assert_eq!(pos, bytes.len(), "the log holds whole records only");
    out
}

/// A copy of `from`'s data files in a new directory, log 1 replaced by `log`.
fn copy_with_log(from: &Path, log: &[u8]) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("tempdir");
    std::fs::copy(
        from.join("terrace.manifest"),
        to.path().join("terrace.manifest"),
    )
    .expect("copy manifest");
    std::fs::write(to.path().join("terrace.log.1"), log).expect("write log");
    to
}

#[tokio::test]
async fn a_log_cut_at_any_byte_starts_with_exactly_its_complete_records() {
    let data = DataDir::new();
    let mut s = data.start("fsync: always");
    let mut c = s.conn().await;
    const N: usize = 8;
    for i in 0..N {
        let () = run(&mut c, ("SET", format!("k{i}"), format!("value-{i}"))).await;
    }
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    let bytes = std::fs::read(data.log(1)).expect("read log");
    let bounds = record_bounds(&bytes);
    assert_eq!(bounds.len(), N, "one record per SET");
    // Every byte offset from the start of the third-to-last record to the end.
    let first = bounds[N - 3].0;
    let mut starts = 0;
    for cut in first..=bytes.len() {
        let dir = copy_with_log(data.path(), &bytes[..cut]);
        let s = TestServer::start_with(Some(&config(dir.path(), "fsync: always", "")), &[]);
        starts += 1;
        let mut c = s.conn().await;
        for (i, &(_, end)) in bounds.iter().enumerate() {
            let got: Option<String> = run(&mut c, ("GET", format!("k{i}"))).await;
            let want = (end <= cut).then(|| format!("value-{i}"));
            assert_eq!(got, want, "cut at {cut}: k{i}");
        }
        let on_boundary = bounds.iter().any(|&(_, end)| end == cut) || cut == first;
        if !on_boundary {
            let at = bounds
                .iter()
                .rfind(|&&(start, _)| start < cut)
                .expect("record")
                .0;
            let log = s.log_text();
            assert!(
                log.contains("dropping a torn record") && log.contains(&format!("offset {at}")),
                "cut at {cut}: no warning naming offset {at}:\n{log}"
            );
        }
        if cut == bounds[N - 1].0 + 3 {
            // Appending resumes where the complete records end.
            let () = run(&mut c, ("SET", "after", "cut")).await;
            drop(c);
            let mut s = s;
            s.sigkill();
            let s = TestServer::start_with(Some(&config(dir.path(), "fsync: always", "")), &[]);
            let mut c = s.conn().await;
            let got: Option<String> = run(&mut c, ("GET", "after")).await;
            assert_eq!(got.as_deref(), Some("cut"));
            let got: Option<String> = run(&mut c, ("GET", format!("k{}", N - 2))).await;
            assert_eq!(got, Some(format!("value-{}", N - 2)));
        }
    }
    assert!(starts > 40, "{starts} starts");
}

#[tokio::test]
async fn a_damaged_record_refuses_the_start_and_repair_keeps_what_precedes_it() {
    let data = DataDir::new();
    let mut s = data.start("fsync: always");
    let mut c = s.conn().await;
    for i in 0..20 {
        let () = run(&mut c, ("SET", format!("k{i}"), format!("value-{i}"))).await;
    }
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    let mut bytes = std::fs::read(data.log(1)).expect("read log");
    let bounds = record_bounds(&bytes);
    let (start, end) = bounds[10];
    bytes[(start + end) / 2] ^= 0x5a;
    std::fs::write(data.log(1), &bytes).expect("write damaged log");

    let yaml = data.yaml("fsync: always", "");
    let err = match TestServer::try_start_with(Some(&yaml), &[]) {
        Ok(_) => panic!("started on a damaged log"),
        Err(e) => e,
    };
    assert!(
        err.contains(&format!("corrupt at offset {start}")) && err.contains("--repair"),
        "{err}"
    );
    assert!(!err.contains("exit status: 0"), "{err}");

    let s = TestServer::start_with(Some(&yaml), &["--repair"]);
    let mut c = s.conn().await;
    for i in 0..20 {
        let got: Option<String> = run(&mut c, ("GET", format!("k{i}"))).await;
        assert_eq!(got, (i < 10).then(|| format!("value-{i}")), "k{i}");
    }
    // The original is kept.
    let backup = std::fs::read_dir(data.path())
        .expect("read dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("repair-backup-"))
        })
        .expect("a backup directory");
    assert_eq!(
        std::fs::read(backup.join("terrace.log.1")).expect("backup log"),
        bytes
    );
    // Writes after the repair survive the next restart.
    let () = run(&mut c, ("SET", "later", "yes")).await;
    drop(c);
    let mut s = s;
    s.sigkill();
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let got: Option<String> = run(&mut c, ("GET", "later")).await;
    assert_eq!(got.as_deref(), Some("yes"));
    assert_eq!(run::<u64>(&mut c, "DBSIZE").await, 11);
}

/// Mixed writes until `stop`: sets with and without deadlines, counters, appends,
/// deletions, expiry changes, transactions.
async fn mixed_writes(
    mut c: MultiplexedConnection,
    w: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> u64 {
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let k = format!("m{w}:{}", n % 700);
        let r: redis::RedisResult<()> = match n % 7 {
            0 => try_run(&mut c, ("SET", &k, n)).await,
            1 => try_run(&mut c, ("SET", &k, n, "PX", 3_600_000 + n)).await,
            2 => try_run::<i64>(&mut c, ("INCR", format!("c{w}:{}", n % 13)))
                .await
                .map(drop),
            3 => try_run::<i64>(&mut c, ("APPEND", format!("a{w}:{}", n % 11), "xy"))
                .await
                .map(drop),
            4 => try_run::<i64>(&mut c, ("DEL", &k)).await.map(drop),
            5 => try_run::<i64>(&mut c, ("PEXPIREAT", &k, 4_000_000_000_000u64 + n))
                .await
                .map(drop),
            _ => {
                redis::pipe()
                    .atomic()
                    .cmd("SET")
                    .arg(&k)
                    .arg("tx")
                    .ignore()
                    .cmd("PERSIST")
                    .arg(&k)
                    .ignore()
                    .query_async(&mut c)
                    .await
            }
        };
        r.expect("write");
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn compaction_under_load_then_restart_keeps_exactly_the_data() {
    let data = DataDir::new();
    let storage = "fsync: always\nrewrite_min_size: 64k\nrewrite_percentage: 100";
    let mut s = data.start(storage);
    let mut c = s.conn().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..3 {
        tasks.push(tokio::spawn(mixed_writes(s.conn().await, w, stop.clone())));
    }
    // Three rewrites by hand while the writers run, each waited for.
    for want in 1..=3u64 {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match try_run::<String>(&mut c, "BGREWRITEAOF").await {
                Ok(r) => {
                    assert_eq!(r, "Background append only file rewriting started");
                    break;
                }
                Err(e) => assert!(e.to_string().contains("already in progress"), "{e}"),
            }
            assert!(Instant::now() < deadline, "BGREWRITEAOF refused for 30s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let i = info(&mut c).await;
            let done: u64 = field(&i, "aof_rewrites")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if done >= want && field(&i, "aof_rewrite_in_progress").as_deref() == Some("0") {
                assert_eq!(
                    field(&i, "aof_last_bgrewrite_status").as_deref(),
                    Some("ok")
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "rewrite {want} did not finish:\n{i}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut writes = 0;
    for t in tasks {
        writes += t.await.expect("writer");
    }
    assert!(writes > 300, "only {writes} writes");
    let before = dump(&mut c).await;
    assert!(before.len() > 50, "{} keys", before.len());
    let i = info(&mut c).await;
    let files: u64 = field(&i, "aof_files")
        .and_then(|v| v.parse().ok())
        .expect("aof_files");
    assert!(files <= 3, "compaction left {files} files:\n{i}");
    drop(c);
    s.sigkill();
    let s = data.start(storage);
    let mut c = s.conn().await;
    let after = dump(&mut c).await;
    assert_eq!(after.len(), before.len());
    assert!(after == before, "the data after the restart differs");
}

#[tokio::test]
async fn every_effect_kind_replays_in_order() {
    let data = DataDir::new();
    let yaml = data.yaml(
        "fsync: everysec",
        "caches:\n  - { name: events, ttl: 1h }\n  - { name: default }\n",
    );
    let mut s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    for cmd in [
        vec!["SET", "gone", "x"],
        vec!["FLUSHALL"],
        vec!["SET", "a", "1"],
        vec!["INCRBY", "a", "41"],
        vec!["APPEND", "b", "he"],
        vec!["APPEND", "b", "llo"],
        vec!["SET", "events:1", "e1"],
        vec!["CACHE.CLEAR", "events"],
        vec!["SET", "events:2", "e2"],
        vec!["SET", "t", "v", "EX", "1000"],
        vec!["SET", "p", "v", "EX", "1000"],
        vec!["PERSIST", "p"],
        vec!["RENAME", "b", "c"],
        vec!["SET", "d", "v"],
        vec!["DEL", "d"],
        vec!["SET", "old", "v", "PX", "200"],
    ] {
        let _: redis::Value = run(&mut c, cmd).await;
    }
    let before = dump(&mut c).await;
    drop(c);
    assert!(s.terminate().is_some_and(|st| st.success()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let after = dump(&mut c).await;
    let mut want = before.clone();
    want.remove(b"old".as_slice());
    assert_eq!(after, want);
    let keys: HashSet<String> = after
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let expect: HashSet<String> = ["a", "c", "events:2", "t", "p"].map(String::from).into();
    assert_eq!(keys, expect);
    assert_eq!(after[b"a".as_slice()].0, b"42");
    assert_eq!(after[b"c".as_slice()].0, b"hello");
    // The cache's default TTL is an absolute deadline in the record: it survives as is.
    assert!(after[b"events:2".as_slice()].1 > 0);
    assert_eq!(after[b"p".as_slice()].1, -1);
    assert!(after[b"t".as_slice()].1 > 0);
}

#[tokio::test]
async fn deadlines_survive_a_restart_and_idle_clocks_start_again() {
    let data = DataDir::new();
    let yaml = data.yaml(
        "fsync: everysec",
        "caches:\n  - { name: idle, tti: 2s }\n  - { name: default }\n",
    );
    let mut s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    let () = run(&mut c, ("SET", "long", "v", "PX", 60_000)).await;
    let () = run(&mut c, ("SET", "idle:k", "v")).await;
    let at: i64 = run(&mut c, ("PEXPIRETIME", "long")).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(s.terminate().is_some_and(|st| st.success()));
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    assert_eq!(run::<i64>(&mut c, ("PEXPIRETIME", "long")).await, at);
    // Idle 1.5 s before the restart and 1 s after: alive, because the restart began its
    // 2 s idle clock again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got: Option<String> = run(&mut c, ("GET", "idle:k")).await;
    assert_eq!(got.as_deref(), Some("v"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_log_write_refuses_writes_until_a_rewrite_recovers() {
    let data = DataDir::new();
    let yaml = data.yaml("fsync: always", "");
    // A real limit on the size of files the server writes (RLIMIT_FSIZE): past it, the
    // kernel fails its writes with EFBIG.
    let limit = 256 * 1024;
    let conf = data.path().join("conf.yaml");
    std::fs::write(&conf, &yaml).expect("write config");
    let port = crate::util::free_port();
    let log = data.path().join("server.log");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"));
    cmd.args(["server", "--port", &port.to_string(), "-f"])
        .arg(&conf)
        .stderr(std::fs::File::create(&log).expect("log"));
    // SAFETY: setrlimit is async-signal-safe, and the closure touches nothing else.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            rustix::process::setrlimit(
                rustix::process::Resource::Fsize,
                rustix::process::Rlimit {
                    current: Some(limit),
                    maximum: None,
                },
            )
            .map_err(std::io::Error::from)
        });
    }
    let mut child = cmd.spawn().expect("spawn");
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        if let Ok(cl) = redis::Client::open(url.as_str())
            && let Ok(c) = cl.get_multiplexed_async_connection().await
        {
            break c;
        }
        assert!(Instant::now() < deadline, "server did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // 40 keys rewritten over and over: the log outgrows the limit, the data never does.
    let value = "x".repeat(1000);
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut refused = None;
    for n in 0..2000u64 {
        let k = format!("k{}", n % 40);
        match try_run::<()>(&mut c, ("SET", &k, format!("{n}:{value}"))).await {
            Ok(()) => {
                acked.insert(k, n);
            }
            Err(e) => {
                // Applied in memory, not acknowledged: either value may survive.
                refused = Some((e.to_string(), k, n));
                break;
            }
        }
    }
    let (refused, refused_key, refused_n) = refused.expect("the log never hit the file size limit");
    assert!(
        refused.contains("MISCONF") && refused.contains("Errors writing to the AOF file"),
        "{refused}"
    );
    // Refused while poisoned, accepted again once a rewrite (a fresh base and log, each
    // under the limit) has replaced the broken file.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut saw_err_status = false;
    loop {
        let i = info(&mut c).await;
        saw_err_status |= field(&i, "aof_last_write_status").as_deref() == Some("err");
        match try_run::<()>(&mut c, ("SET", "k0", format!("9999:{value}"))).await {
            Ok(()) => {
                acked.insert("k0".into(), 9999);
                break;
            }
            Err(e) => assert!(e.to_string().contains("MISCONF"), "{e}"),
        }
        assert!(Instant::now() < deadline, "writes never recovered:\n{i}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_err_status || refused.contains("MISCONF"));
    let text = std::fs::read_to_string(&log).expect("server log");
    assert!(text.contains("fast-restart log write failed"), "{text}");
    let _ = child.kill();
    let _ = child.wait();
    // Nothing acknowledged was lost.
    let s = TestServer::start_with(Some(&yaml), &[]);
    let mut c = s.conn().await;
    for (k, n) in &acked {
        let got: Option<String> = run(&mut c, ("GET", k)).await;
        let got = got.expect("acknowledged key lost");
        let ok = got.starts_with(&format!("{n}:"))
            || (*k == refused_key && got.starts_with(&format!("{refused_n}:")));
        assert!(ok, "{k}: acknowledged {n}, found {}", &got[..10]);
    }
}

#[tokio::test]
async fn loading_reports_progress_and_answers_loading() {
    // A big log written with the real record format, so loading takes a while.
    let data = DataDir::new();
    let mut log = terrace::persist::files::LOG_MAGIC.to_vec();
    const KEYS: u64 = 400_000;
    for i in 0..KEYS {
        record::encode(
            &mut log,
            i + 1,
            &[record::set_str(
                format!("key:{i}").as_bytes(),
                b"some value",
                0,
            )],
        );
    }
    std::fs::write(data.log(1), &log).expect("write log");
    std::fs::write(data.path().join("terrace.manifest"), "log 1\n").expect("manifest");
    let yaml = data.yaml("fsync: everysec", "");
    let conf = data.path().join("conf.yaml");
    std::fs::write(&conf, &yaml).expect("config");
    let port = crate::util::free_port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["server", "--port", &port.to_string(), "-f"])
        .arg(&conf)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut saw_loading, mut saw_refusal) = (None, None);
    loop {
        assert!(Instant::now() < deadline, "never finished loading");
        let Ok(mut c) = async {
            redis::Client::open(url.as_str())?
                .get_multiplexed_async_connection()
                .await
        }
        .await
        else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let t = Instant::now();
        let i = match try_run::<String>(&mut c, ("INFO", "persistence")).await {
            Ok(i) => i,
            Err(e) => panic!("INFO after {:?}: {e}", t.elapsed()),
        };
        if field(&i, "loading").as_deref() == Some("1") {
            saw_loading = Some(i);
            if let Err(e) = try_run::<Option<String>>(&mut c, ("GET", "key:1")).await {
                saw_refusal = Some(e.to_string());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        assert_eq!(run::<u64>(&mut c, "DBSIZE").await, KEYS);
        break;
    }
    let _ = child.kill();
    let _ = child.wait();
    let i = saw_loading.expect("INFO never showed loading:1");
    let total: u64 = field(&i, "loading_total_bytes")
        .and_then(|v| v.parse().ok())
        .expect("total");
    assert_eq!(total, log.len() as u64);
    let perc: f64 = field(&i, "loading_loaded_perc")
        .and_then(|v| v.parse().ok())
        .expect("perc");
    assert!((0.0..=100.0).contains(&perc), "{perc}");
    if let Some(e) = saw_refusal {
        assert!(e.contains("loading the dataset in memory"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn always_shares_fsyncs_between_concurrent_writers() {
    let data = DataDir::new();
    let s = data.start("fsync: always");
    const WRITERS: usize = 16;
    const EACH: usize = 100;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let mut c = s.conn().await;
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let () = run(&mut c, ("SET", format!("w{w}:{i}"), i)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let mut c = s.conn().await;
    let i = info(&mut c).await;
    let num = |name: &str| -> u64 {
        field(&i, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in\n{i}"))
    };
    let (records, fsyncs) = (num("aof_lsn"), num("aof_fsyncs"));
    assert_eq!(records, (WRITERS * EACH) as u64);
    eprintln!("group commit: {fsyncs} fsyncs for {records} records");
    // Every acknowledged write was fsynced, and writers waiting together shared fsyncs.
    assert!(
        fsyncs >= 1 && fsyncs < records,
        "{fsyncs} fsyncs for {records} records"
    );
    assert_eq!(field(&i, "aof_fsync").as_deref(), Some("always"));
}
