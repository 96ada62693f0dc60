//! Writes the seed corpora of the fuzz targets (fuzz/seeds/<target>/) from real encodings:
//! RESP requests as clients send them, the fast-restart files the real writer produced
//! for real commands (log records of every effect tag, a base snapshot), the replication
//! stream a mirror reads (its frames are the log's), and the packed values in them.
//!
//! `cargo run --example fuzz_seeds` (from the repository root); the output replaces the
//! committed seeds, so run it after a change to any of these formats.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use terrace::config::Config;
use terrace::config::FsyncPolicy;
use terrace::persist::Persist;
use terrace::persist::PolicyCell;
use terrace::persist::files::{self, BASE_HEADER, LOG_HEADER, Manifest};
use terrace::persist::record::{self, Frame, Record};
use terrace::replication::wire;
use terrace::server::dispatch::{self, BatchClock};
use terrace::server::{Client, Shared};
use terrace::store::{Effect, types};

/// One request as a client library sends it: an array of bulk strings.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Requests of every family, the commands that write the records below among them.
fn requests() -> Vec<(&'static str, Vec<Vec<String>>)> {
    let many = |cmd: &str, key: &str, per: &dyn Fn(usize) -> Vec<String>| {
        let mut v = vec![cmd.to_string(), key.to_string()];
        for i in 0..40 {
            v.extend(per(i));
        }
        v
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    vec![
        (
            "strings",
            vec![
                s(&["SET", "k", "v"]),
                s(&["SET", "events:1", "x", "EX", "100", "NX", "GET"]),
                s(&["GET", "k"]),
                s(&["APPEND", "k", "more"]),
                s(&["INCRBY", "n", "5"]),
                s(&["INCRBYFLOAT", "f", "1.5"]),
                s(&["SETRANGE", "k", "3", "zz"]),
                s(&["GETEX", "k", "PX", "5000"]),
                s(&["MSET", "a", "1", "b", "2"]),
                s(&["EXPIRE", "a", "100"]),
                s(&["PERSIST", "a"]),
                s(&["DEL", "b"]),
            ],
        ),
        (
            "hash",
            vec![
                many("HSET", "h", &|i| vec![format!("f{i}"), format!("v{i}")]),
                s(&["HSET", "h", "f1", "new"]),
                s(&["HDEL", "h", "f2"]),
                s(&["HEXPIRE", "h", "100", "FIELDS", "1", "f3"]),
                s(&["HGETALL", "h"]),
                s(&["HSCAN", "h", "0", "MATCH", "f*", "COUNT", "5"]),
            ],
        ),
        (
            "list",
            vec![
                many("RPUSH", "l", &|i| vec![format!("i{i}")]),
                s(&["LPUSH", "l", "front"]),
                s(&["RPOP", "l"]),
                s(&["LPOP", "l", "2"]),
                s(&["LRANGE", "l", "0", "-1"]),
                s(&["LINSERT", "l", "BEFORE", "i5", "x"]),
                s(&["LMPOP", "1", "l", "LEFT", "COUNT", "2"]),
            ],
        ),
        (
            "set",
            vec![
                many("SADD", "s", &|i| vec![format!("m{i}")]),
                s(&["SADD", "s", "extra"]),
                s(&["SREM", "s", "m1"]),
                s(&["SINTERCARD", "1", "s", "LIMIT", "3"]),
                s(&["SMEMBERS", "s"]),
            ],
        ),
        (
            "zset",
            vec![
                many("ZADD", "z", &|i| vec![format!("{i}.5"), format!("m{i}")]),
                s(&["ZADD", "z", "XX", "GT", "CH", "100", "m1"]),
                s(&["ZREM", "z", "m2"]),
                s(&[
                    "ZRANGE",
                    "z",
                    "(1",
                    "+inf",
                    "BYSCORE",
                    "LIMIT",
                    "0",
                    "3",
                    "WITHSCORES",
                ]),
                s(&["ZUNIONSTORE", "z2", "1", "z", "WEIGHTS", "2"]),
            ],
        ),
        (
            "keys",
            vec![
                s(&["COPY", "k", "k2"]),
                s(&["RENAME", "k2", "k3"]),
                s(&["SCAN", "0", "MATCH", "*", "COUNT", "10", "TYPE", "string"]),
                s(&["KEYS", "h*"]),
                s(&["TYPE", "h"]),
                s(&["OBJECT", "ENCODING", "z"]),
                s(&["CACHE.CLEAR", "events"]),
                s(&["FLUSHALL"]),
            ],
        ),
        (
            "connection",
            vec![
                s(&["HELLO", "3"]),
                s(&["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a"]),
                s(&["MULTI"]),
                s(&["INCR", "n"]),
                s(&["EXEC"]),
                s(&["SUBSCRIBE", "ch"]),
                s(&["PING"]),
                s(&["CONFIG", "GET", "maxmemory*"]),
                s(&["INFO", "keyspace"]),
            ],
        ),
    ]
}

fn write_seed(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    std::fs::write(dir.join(name), bytes).with_context(|| format!("writing seed {name}"))
}

/// The frames of a data file after its header.
fn frames(body: &[u8]) -> Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        match record::frame(&body[pos..]) {
            Frame::Ok { len, .. } => {
                out.push(&body[pos..pos + len]);
                pos += len;
            }
            other => bail!("the writer's file has a bad frame at {pos}: {other:?}"),
        }
    }
    Ok(out)
}

fn payload(frame: &[u8]) -> &[u8] {
    &frame[record::FRAME_HEADER..]
}

/// The shared state of a restartable server with its data in `dir`, loaded.
fn restartable(dir: &Path) -> Result<(Shared, Arc<Persist>)> {
    let config = Config::from_yaml(
        "caches:\n  - { name: events, ttl: 1h }\n  - { name: default }\n",
        "<seeds>",
    )?;
    let persist = Arc::new(Persist::open(
        dir,
        Arc::new(PolicyCell::new(FsyncPolicy::Always)),
        false,
    )?);
    let shared = Shared::detached(config, Some(persist.clone()));
    persist.load(&shared.keyspace)?;
    Ok((shared, persist))
}

/// Runs one request; an error reply fails when `must_succeed`.
fn run(shared: &Shared, client: &mut Client, req: &[String], must_succeed: bool) -> Result<()> {
    let argv: Vec<&[u8]> = req.iter().map(|a| a.as_bytes()).collect();
    let reply = dispatch::execute(shared, client, &argv, &mut BatchClock::start());
    if must_succeed && reply.is_error() {
        bail!("{req:?} failed: {reply:?}");
    }
    Ok(())
}

fn main() -> Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    let dirs = ["resp", "record", "repl", "packed"].map(|t| root.join(t));
    for d in &dirs {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d)?;
    }
    let [resp_dir, record_dir, repl_dir, packed_dir] = &dirs;

    // A restartable server's state and its writer: every family's requests run (their
    // effects are the log's records), then the writer stops and the log is complete.
    let data = tempfile::tempdir()?;
    let (shared, persist) = restartable(data.path())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _in_runtime = rt.enter();
    let addr = "127.0.0.1:1".parse()?;
    let mut client = Client::new(shared.clients.register(addr, addr), &shared.acl);
    // resp: each family's requests in one stream (byte 0: the read-split seed).
    for (i, (family, reqs)) in requests().into_iter().enumerate() {
        let mut stream = vec![i as u8];
        for r in &reqs {
            let args: Vec<&str> = r.iter().map(String::as_str).collect();
            stream.extend_from_slice(&resp(&args));
            run(&shared, &mut client, r, family != "connection")?;
        }
        write_seed(resp_dir, family, &stream)?;
    }
    let mut inline = vec![7u8];
    inline.extend_from_slice(b"PING\r\nSET k \"a b\\x41\\n\"\r\nECHO 'it\\'s'\r\n\r\nGET k\n");
    write_seed(resp_dir, "inline", &inline)?;
    persist.stop();
    drop(client);
    drop(shared);
    let log_before = std::fs::read(files::log_path(data.path(), 1))?;

    // Then the server restarts from that log, writes the collections again and rewrites
    // its files: a base snapshot.
    let (shared, persist) = restartable(data.path())?;
    let mut client = Client::new(shared.clients.register(addr, addr), &shared.acl);
    for (_, reqs) in requests().into_iter().take(5) {
        for r in &reqs {
            run(&shared, &mut client, r, true)?;
        }
    }
    if !persist.request_rewrite() || !persist.claim_rewrite(0, 0) {
        bail!("the rewrite was not started");
    }
    persist.rewrite(&shared.keyspace)?;
    persist.stop();
    let m = Manifest::load(data.path())
        .map_err(anyhow::Error::msg)?
        .context("no manifest")?;
    let base = std::fs::read(files::base_path(data.path(), m.base.context("no base")?))?;

    // record: every log record's payload (mode 0), the whole log as the loader reads it
    // (mode 1 raw, 3 with CRCs fixed), the base (mode 27: base, right shard routing).
    let log_body = &log_before[LOG_HEADER..];
    let log_frames = frames(log_body)?;
    let mut tags = std::collections::BTreeSet::new();
    for (i, f) in log_frames.iter().enumerate() {
        let rec = Record::parse(payload(f)).map_err(anyhow::Error::msg)?;
        for e in rec.to_effects().map_err(anyhow::Error::msg)? {
            tags.insert(match &e {
                Effect::Set { .. } => "set",
                Effect::Del { .. } => "del",
                Effect::Expire { .. } => "expire",
                Effect::FlushAll => "flushall",
                Effect::ClearCache { .. } => "clearcache",
                Effect::Patch { .. } => "patch",
                Effect::ListOps { .. } => "listops",
            });
            if let Effect::Set { value, .. } | Effect::Patch { upserts: value, .. } = &e {
                let mut packed = vec![value.kind().tag()];
                if types::encode(value, &mut packed) {
                    write_seed(packed_dir, &format!("{}-{i}", value.kind().name()), &packed)?;
                }
            }
        }
        let mut seed = vec![0u8];
        seed.extend_from_slice(payload(f));
        write_seed(record_dir, &format!("payload-{i:03}"), &seed)?;
    }
    let want = [
        "set",
        "del",
        "expire",
        "flushall",
        "clearcache",
        "patch",
        "listops",
    ];
    if let Some(missing) = want.iter().find(|t| !tags.contains(*t)) {
        bail!("the log holds no {missing} effect: add a request that makes one");
    }
    for (mode, name) in [(1u8, "log-raw"), (3, "log-crc")] {
        let mut seed = vec![mode];
        seed.extend_from_slice(log_body);
        write_seed(record_dir, name, &seed)?;
    }
    let mut seed = vec![27u8];
    seed.extend_from_slice(&base[BASE_HEADER..]);
    write_seed(record_dir, "base", &seed)?;

    // repl: a full sync as the active sends it: the answer, the snapshot (the base's
    // records), its end, the log's records in their epoch, a heartbeat, standby.
    let mut stream = vec![3u8];
    stream.extend_from_slice(b"FULLSYNC 1 1 1\n");
    let base_frames = frames(&base[BASE_HEADER..])?;
    wire::put(&mut stream, wire::SNAPSHOT, &base_frames.concat());
    wire::put(&mut stream, wire::SNAPSHOT_END, &[]);
    let mut records = 1u64.to_le_bytes().to_vec();
    records.extend_from_slice(log_body);
    wire::put(&mut stream, wire::RECORDS, &records);
    wire::put_u64s(&mut stream, wire::HEARTBEAT, &[log_frames.len() as u64, 1]);
    wire::put(&mut stream, wire::STANDBY, &[]);
    write_seed(repl_dir, "fullsync", &stream)?;
    let mut stream = vec![9u8];
    stream.extend_from_slice(b"CONTINUE 2\n");
    for f in log_frames.iter().take(8) {
        let mut body = 2u64.to_le_bytes().to_vec();
        body.extend_from_slice(f);
        wire::put(&mut stream, wire::RECORDS, &body);
    }
    wire::put_u64s(&mut stream, wire::TAKEOVER, &[8, 3]);
    write_seed(repl_dir, "continue-takeover", &stream)?;
    // A server's answer to HELLO (the repl target reads its first line as one too).
    let mut peer = vec![1u8];
    peer.extend_from_slice(shared.repl.view().line().as_bytes());
    write_seed(repl_dir, "peer", &peer)?;

    println!(
        "seeds written to {}: {} log records ({} effect kinds), base of {} bytes",
        root.display(),
        log_frames.len(),
        tags.len(),
        base.len()
    );
    Ok(())
}
