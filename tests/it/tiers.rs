//! Heap and off-heap tiers: data larger than the heap budget round-trips exactly through
//! the off-heap tier (anonymous and file-backed), expired segments are reclaimed without
//! reads, full tiers evict by each cache's policy or refuse, and sizes that cannot be
//! backed are refused at start.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;

use crate::caches::{cache_info, field, info_u64};
use crate::util::{TestServer, free_port, run, try_run};

/// The value of key `i`: 10 to 1000 pseudo-random bytes, the same every time.
fn value(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let len = 10 + (next() % 991) as usize;
    (0..len).map(|_| next() as u8).collect()
}

/// FNV-1a over a stream of values.
fn fold(sum: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(sum, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Writes keys `prefix<i>` for `i` in `0..n` with `make(i)`, pipelined in batches.
async fn load(c: &mut MultiplexedConnection, prefix: &str, n: u64, make: impl Fn(u64) -> Vec<u8>) {
    let mut i = 0;
    while i < n {
        let mut p = redis::pipe();
        for j in i..(i + 1000).min(n) {
            p.cmd("SET")
                .arg(format!("{prefix}{j}"))
                .arg(make(j))
                .ignore();
        }
        let () = p.query_async(c).await.expect("pipelined SET");
        i += 1000;
    }
}

/// Reads keys `prefix<i>` back with MGET and checks each against `make(i)`; returns the
/// checksum of everything read and of everything expected.
async fn verify(
    c: &mut MultiplexedConnection,
    prefix: &str,
    n: u64,
    make: impl Fn(u64) -> Vec<u8>,
) -> (u64, u64) {
    let (mut got_sum, mut want_sum) = (0xcbf2_9ce4_8422_2325u64, 0xcbf2_9ce4_8422_2325u64);
    let mut i = 0;
    while i < n {
        let end = (i + 500).min(n);
        let keys: Vec<String> = (i..end).map(|j| format!("{prefix}{j}")).collect();
        let got: Vec<Option<Vec<u8>>> = run(c, ("MGET", keys)).await;
        for (j, g) in (i..end).zip(got) {
            let want = make(j);
            let g = g.unwrap_or_else(|| panic!("{prefix}{j} is missing"));
            assert_eq!(g, want, "{prefix}{j} differs");
            got_sum = fold(got_sum, &g);
            want_sum = fold(want_sum, &want);
        }
        i = end;
    }
    (got_sum, want_sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_keys_round_trip_with_a_quarter_of_them_on_heap() {
    const N: u64 = 1_000_000;
    let data: u64 = (0..N).map(|i| value(i).len() as u64).sum();
    let heap = format!("{}", data / 4);
    let s = TestServer::start_with(None, &["--heap", &heap, "--offheap", "2g"]);
    let mut c = s.conn().await;
    load(&mut c, "k", N, value).await;
    let dbsize: u64 = run(&mut c, ("DBSIZE",)).await;
    assert_eq!(dbsize, N);
    // Let the cron finish moving what writes left over the budget.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heap_used = info_u64(&mut c, "memory", "heap_used").await;
    let off_entries = info_u64(&mut c, "memory", "offheap_entries").await;
    let heap_entries = info_u64(&mut c, "memory", "heap_entries").await;
    assert!(
        heap_used <= data / 4 + (1 << 20),
        "heap_used {heap_used} over the budget {}",
        data / 4
    );
    assert_eq!(off_entries + heap_entries, N);
    assert!(off_entries > N / 2, "only {off_entries} entries off-heap");
    let (got, want) = verify(&mut c, "k", N, value).await;
    assert_eq!(got, want, "checksums");
    let off_hits = info_u64(&mut c, "memory", "offheap_hits").await;
    assert!(off_hits > N / 2, "{off_hits} off-heap hits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_backed_offheap_of_2g_with_a_256m_heap() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let yaml = format!(
        "cluster:\n  stripes:\n    - name: s1\n      servers:\n        - {{ name: server1, port: 6379, data: {} }}\nstorage: {{ heap: 256m, offheap: 2g, offheap_file: true }}\n",
        data.display()
    );
    let s = TestServer::start_with(Some(&yaml), &[]);
    let file = data.join("offheap.seg");
    assert_eq!(
        std::fs::metadata(&file).expect("offheap.seg").len(),
        2 << 30
    );
    let mut c = s.conn().await;
    // 640 MB of values: well past the heap budget.
    const N: u64 = 400_000;
    let big = |i: u64| {
        let mut v = value(i);
        v.resize(1600, (i % 251) as u8);
        v
    };
    load(&mut c, "f", N, big).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let info: String = run(&mut c, ("INFO", "memory")).await;
    assert!(info.contains("offheap_backing:file"), "{info}");
    let used = info_u64(&mut c, "memory", "offheap_used").await;
    assert!(used > 300 << 20, "offheap_used {used}");
    let heap_used = info_u64(&mut c, "memory", "heap_used").await;
    assert!(
        heap_used <= (256 << 20) + (1 << 20),
        "heap_used {heap_used}"
    );
    let (got, want) = verify(&mut c, "f", N, big).await;
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_segments_are_reclaimed_without_reads() {
    let s = TestServer::start_with(None, &["--heap", "0", "--offheap", "64m"]);
    let mut c = s.conn().await;
    let mut p = redis::pipe();
    for i in 0..20_000 {
        p.cmd("SET")
            .arg(format!("t{i}"))
            .arg(vec![b'x'; 200])
            .arg("PX")
            .arg(1500)
            .ignore();
    }
    let () = p.query_async(&mut c).await.expect("SET PX");
    let () = run(&mut c, ("SET", "keep", "v")).await;
    let used_before = info_u64(&mut c, "memory", "offheap_used").await;
    assert!(used_before > 4 << 20, "{used_before}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if info_u64(&mut c, "memory", "offheap_entries").await == 1 || Instant::now() > deadline {
            break;
        }
    }
    assert_eq!(info_u64(&mut c, "memory", "offheap_entries").await, 1);
    assert!(info_u64(&mut c, "memory", "offheap_segments_expired").await > 0);
    assert_eq!(info_u64(&mut c, "stats", "expired_keys").await, 20_000);
    assert!(info_u64(&mut c, "memory", "offheap_used").await < used_before / 10);
    assert_eq!(
        info_u64(&mut c, "stats", "keyspace_hits").await,
        0,
        "no reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_tiers_evict_by_each_policy_or_refuse() {
    let yaml = "cluster:\n  stripes:\n    - name: s1\n      servers:\n        - { name: server1, port: 6379 }\nstorage: { heap: 0, offheap: 16m }\ncaches:\n  - { name: lru, eviction: lru, offheap: 2m }\n  - { name: lfu, eviction: lfu, offheap: 2m }\n  - { name: rnd, eviction: random, offheap: 2m }\n  - { name: none, eviction: none, offheap: 2m }\n";
    let s = TestServer::start_with(Some(yaml), &[]);
    let mut c = s.conn().await;
    for cache in ["lru", "lfu", "rnd"] {
        let hot: Vec<String> = (0..20).map(|i| format!("{cache}:hot{i}")).collect();
        for h in &hot {
            let () = run(&mut c, ("SET", h, "h")).await;
        }
        // 20k values of 200 bytes: about twice the cache's 2m pool.
        for batch in 0..20 {
            let mut p = redis::pipe();
            for i in batch * 1000..(batch + 1) * 1000 {
                p.cmd("SET")
                    .arg(format!("{cache}:{i}"))
                    .arg(vec![b'v'; 200])
                    .ignore();
            }
            let () = p.query_async(&mut c).await.expect("room is made");
            for _ in 0..3 {
                let _: Vec<Option<String>> = run(&mut c, ("MGET", &hot)).await;
            }
        }
        let info = cache_info(&mut c, cache).await;
        let evictions: u64 = field(&info, "evictions").parse().expect("evictions");
        let entries: u64 = field(&info, "entries").parse().expect("entries");
        assert!(evictions > 5_000, "{cache}: {evictions} evictions");
        assert_eq!(field(&info, "offheap_pool"), "own");
        let pool: u64 = field(&info, "offheap_pool_size").parse().expect("size");
        let used: u64 = field(&info, "offheap_pool_used").parse().expect("used");
        assert!(used <= pool, "{cache}: {used} > {pool}");
        assert!(entries < 20_000, "{cache}: {entries}");
        let mut kept = 0;
        for h in &hot {
            let e: i64 = run(&mut c, ("EXISTS", h)).await;
            kept += e;
        }
        if cache == "rnd" {
            assert!(field(&info, "segments_evicted") != "0");
        } else {
            assert!(kept >= 18, "{cache}: {kept}/20 hot keys kept");
        }
    }
    // eviction: none refuses once both tiers are full, and loses nothing acknowledged.
    let mut acked = 0;
    let mut refused = None;
    'fill: for batch in 0..40 {
        for i in batch * 500..(batch + 1) * 500 {
            match try_run::<()>(&mut c, ("SET", format!("none:{i}"), vec![b'v'; 200])).await {
                Ok(()) => acked = i + 1,
                Err(e) => {
                    assert_eq!(e.code(), Some("OOM"), "{e}");
                    refused = Some(e.to_string());
                    break 'fill;
                }
            }
        }
    }
    let refused = refused.expect("a full cache with eviction none refuses writes");
    assert!(
        refused.contains("cache 'none' is full (heap 0 and offheap 2m)"),
        "{refused}"
    );
    for i in 0..acked {
        let e: i64 = run(&mut c, ("EXISTS", format!("none:{i}"))).await;
        assert_eq!(e, 1, "none:{i} was acknowledged and lost");
    }
    let info = cache_info(&mut c, "none").await;
    assert_eq!(field(&info, "evictions"), "0");
}

/// Starts `terrace server` expecting it to refuse; returns its stderr.
fn refused(args: &[&str], yaml: Option<&str>) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_terrace"));
    cmd.arg("server")
        .arg("--port")
        .arg(free_port().to_string())
        .args(args);
    if let Some(y) = yaml {
        let f = dir.path().join("conf.yaml");
        std::fs::write(&f, y.replace("DIR", &dir.path().display().to_string())).expect("write");
        cmd.arg("-f").arg(f);
    }
    let out = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn")
        .wait_with_output()
        .expect("exit");
    assert!(!out.status.success(), "started with {args:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn offheap_that_cannot_be_backed_is_refused_at_start() {
    let err = refused(&["--offheap", "100t"], None);
    assert!(
        err.contains("larger than the memory that can back it"),
        "{err}"
    );
    let err = refused(
        &[],
        Some(
            "cluster:\n  stripes:\n    - name: s1\n      servers:\n        - { name: a, port: 6379, data: DIR/a }\nstorage: { offheap: 100t, offheap_file: true }\n",
        ),
    );
    assert!(err.contains("free disk space under"), "{err}");
    let err = refused(
        &[],
        Some(
            "cluster:\n  stripes:\n    - name: s1\n      servers:\n        - { name: a, port: 6379 }\nstorage: { offheap: 1g, offheap_file: true }\n",
        ),
    );
    assert!(
        err.contains("data") && err.contains("offheap_file"),
        "{err}"
    );
    let err = refused(&["--offheap", "1m"], None);
    assert!(
        err.contains("storage.offheap") && err.contains("at least"),
        "{err}"
    );
}

#[test]
fn a_mirror_with_less_offheap_than_its_stripe_is_refused() {
    let yaml = "cluster:\n  stripes:\n    - name: g\n      servers:\n        - { name: a, port: 6379, offheap: 64m }\n        - { name: b, port: 6380, offheap: 32m }\nstorage: { offheap: 64m }\n";
    let err = refused(&["-n", "b"], Some(yaml));
    assert!(
        err.contains("server 'b' has offheap 32m but 'a' in stripe 'g' has 64m"),
        "{err}"
    );
    let mut ok = TestServer::start_with(Some(yaml), &["-n", "a"]);
    assert!(ok.terminate().is_some());
}
