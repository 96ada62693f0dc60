//! The Prometheus endpoint, read over real HTTP from a stripe of an active and a mirror
//! and parsed with a real exposition-format parser (the `prometheus-parse` crate).

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{TestServer, free_port};

/// `METHOD path` over HTTP/1.1: (status code, body).
fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(s, "{method} {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read the reply");
    let (head, body) = text.split_once("\r\n\r\n").expect("a head and a body");
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status code");
    (code, body.to_string())
}

fn scrape(port: u16) -> prometheus_parse::Scrape {
    let (code, body) = http(port, "GET", "/metrics");
    assert_eq!(code, 200, "{body}");
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parses")
}

/// The value of the sample `name` whose labels include `labels`.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .and_then(|x| match &x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => Some(*v),
            _ => None,
        })
}

/// The (count, sum) of histogram `name` with `labels`, and whether its buckets only grow.
fn histogram(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> (f64, bool) {
    let h = s
        .samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no histogram {name} {labels:?}"));
    match &h.value {
        prometheus_parse::Value::Histogram(b) => {
            let monotone = b.windows(2).all(|w| w[0].count <= w[1].count);
            let inf = b
                .iter()
                .find(|c| c.less_than.is_infinite())
                .map_or(0.0, |c| c.count);
            (inf, monotone)
        }
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

#[test]
fn metrics_cover_commands_caches_tiers_replication_and_fsync_with_unique_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports: Vec<(u16, u16, u16)> = (0..2)
        .map(|_| (free_port(), free_port(), free_port()))
        .collect();
    let mut yaml = String::from("cluster:\n  stripes:\n    - name: s1\n      servers:\n");
    for (i, (p, g, m)) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "        - {{ name: m{i}, host: 127.0.0.1, port: {p}, group_port: {g}, metrics_port: {m}, data: {} }}\n",
            dir.path().join(format!("m{i}")).display()
        ));
    }
    yaml.push_str(
        "storage:\n  restartable: true\n  fsync: always\ncaches:\n  - { name: users, ttl: 1h }\n",
    );
    let conf = dir.path().join("conf.yaml");
    std::fs::write(&conf, yaml).expect("config");
    let _a = TestServer::start_named(&conf, "m0", ports[0].0);
    let _b = TestServer::start_named(&conf, "m1", ports[1].0);
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", ports[0].0))
        .and_then(|c| c.get_connection())
        .expect("connect");
    // The mirror reaches PASSIVE-STANDBY (the active's metrics then list it).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = scrape(ports[1].2);
        if value(&s, "terrace_state", &[("state", "PASSIVE-STANDBY")]) == Some(1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "the mirror did not sync");
        std::thread::sleep(Duration::from_millis(50));
    }
    for i in 0..50 {
        let _: () = redis::cmd("SET")
            .arg(format!("users:{i}"))
            .arg("v")
            .query(&mut c)
            .expect("set");
    }
    for i in 0..70 {
        let _: Option<String> = redis::cmd("GET")
            .arg(format!("users:{i}"))
            .query(&mut c)
            .expect("get");
    }
    let errors = |port| value(&scrape(port), "terrace_command_errors_total", &[]);
    let before = errors(ports[0].2);
    let _: redis::RedisResult<()> = redis::cmd("INCR").arg("users:0").query(&mut c);

    let s = scrape(ports[0].2);
    // Names: one TYPE line per family, and no sample twice.
    let (_, body) = http(ports[0].2, "GET", "/metrics");
    let mut families = HashSet::new();
    for l in body.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = l.split_whitespace().nth(2).expect("a name");
        assert!(families.insert(name.to_string()), "family {name} twice");
        assert!(name.starts_with("terrace_"), "{name}");
    }
    let mut seen = HashSet::new();
    for l in body
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let series = l.rsplit_once(' ').expect("a value").0;
        assert!(seen.insert(series.to_string()), "series {series} twice");
    }

    // Commands: calls and a histogram that counts the same calls.
    assert_eq!(
        value(&s, "terrace_commands_total", &[("cmd", "set")]),
        Some(50.0)
    );
    assert_eq!(
        value(&s, "terrace_commands_total", &[("cmd", "get")]),
        Some(70.0)
    );
    let (n, monotone) = histogram(&s, "terrace_command_duration_seconds", &[("cmd", "get")]);
    assert_eq!(n, 70.0);
    assert!(monotone, "cumulative buckets");
    assert_eq!(
        value(&s, "terrace_command_errors_total", &[]),
        before.map(|b| b + 1.0),
        "INCR on a string"
    );
    // Caches and tiers.
    assert_eq!(
        value(
            &s,
            "terrace_cache_hits_total",
            &[("cache", "users"), ("tier", "heap")]
        )
        .zip(value(
            &s,
            "terrace_cache_hits_total",
            &[("cache", "users"), ("tier", "offheap")]
        ))
        .map(|(h, o)| h + o),
        Some(50.0)
    );
    assert_eq!(
        value(&s, "terrace_cache_misses_total", &[("cache", "users")]),
        Some(20.0)
    );
    let entries = value(
        &s,
        "terrace_cache_entries",
        &[("cache", "users"), ("tier", "heap")],
    )
    .zip(value(
        &s,
        "terrace_cache_entries",
        &[("cache", "users"), ("tier", "offheap")],
    ))
    .map(|(h, o)| h + o);
    assert_eq!(entries, Some(50.0));
    let used = value(&s, "terrace_memory_used_bytes", &[("tier", "heap")]).unwrap_or(0.0)
        + value(&s, "terrace_memory_used_bytes", &[("tier", "offheap")]).unwrap_or(0.0);
    assert!(used > 0.0, "memory per tier");
    // Role, epoch and the mirror's lag (bounded: it has acknowledged all but the last few).
    assert_eq!(value(&s, "terrace_role", &[("role", "active")]), Some(1.0));
    assert!(value(&s, "terrace_epoch", &[]).is_some_and(|e| e >= 1.0));
    let lag = value(&s, "terrace_replication_lag_records", &[("mirror", "m1")]);
    assert!(
        lag.is_some_and(|l| (0.0..=51.0).contains(&l)),
        "lag {lag:?}"
    );
    let b = scrape(ports[1].2);
    assert_eq!(value(&b, "terrace_role", &[("role", "mirror")]), Some(1.0));
    // fsync always: every write was fsynced at least once in a group.
    let (fsyncs, _) = histogram(&s, "terrace_fsync_duration_seconds", &[]);
    assert!(fsyncs >= 1.0, "fsync histogram");
    // Anything but GET /metrics.
    assert_eq!(http(ports[0].2, "GET", "/nope").0, 404);
    assert_eq!(http(ports[0].2, "POST", "/metrics").0, 405);
}
