//! Helpers shared by the fuzz targets in `fuzz_targets/`: the server state a target runs
//! against, deterministic splits of an input, a scratch directory.
//!
//! Every target is deterministic in its input (no clock-driven branching it depends on,
//! no state carried between inputs), so a crash file reproduces with
//! `cargo fuzz run TARGET CRASH-FILE`.

use std::path::PathBuf;

use terrace::config::Config;
use terrace::server::Shared;

/// The config the targets run with: two caches (one with TTL and an entry limit, so
/// eviction and expiry run) and the smallest `proto_max_bulk_len` (1m), so a valid
/// command cannot legally ask for hundreds of megabytes (`SETRANGE k 500000000 x`) and
/// trip the RSS limit.
const CONFIG: &str = r#"
cluster:
  stripes:
    - name: stripe1
      servers:
        - { name: server1, host: 127.0.0.1, port: 6379 }
storage:
  restartable: false
limits:
  proto_max_bulk_len: 1m
caches:
  - { name: events, consistency: strong, ttl: 1h, max_entries: 64, eviction: lru }
  - { name: default, consistency: eventual }
"#;

/// The fuzzing config (see [`CONFIG`]).
pub fn config() -> Config {
    match Config::from_yaml(CONFIG, "<fuzz config>") {
        Ok(c) => c,
        Err(e) => panic!("the fuzz config does not load: {e}"),
    }
}

/// Fresh server state, as `terrace server` builds it for its only server, without
/// sockets, persistence or tasks.
pub fn shared() -> Shared {
    Shared::detached(config(), None)
}

/// Splits `len` bytes into consecutive chunk lengths (each at least 1) drawn from `seed`:
/// how a stream arrives over several reads.
pub fn splits(seed: u64, len: usize) -> Vec<usize> {
    let mut x = seed | 1;
    let mut left = len;
    let mut out = Vec::new();
    while left > 0 {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Mostly small reads, now and then a large one.
        let n = if x.is_multiple_of(8) {
            (x >> 8) % 4096
        } else {
            (x >> 8) % 16
        } as usize
            + 1;
        let n = n.min(left);
        out.push(n);
        left -= n;
    }
    out
}

/// An empty directory of this process for files a target writes (in /dev/shm when
/// there is one: the targets write a file per input).
pub fn scratch_dir(name: &str) -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("terrace-fuzz-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create {}: {e}", dir.display());
    }
    dir
}
