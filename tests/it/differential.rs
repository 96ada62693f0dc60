//! Differential property test: random command sequences over a small key space go to a
//! real `redis-server` and to a dev-mode `terrace`, and every reply must be the same.
//!
//! - Keys are few (`a` .. `e`), so commands collide on keys and on types: a hash command on
//!   a string key must get the same WRONGTYPE as Redis gives. Dev mode serves every slot,
//!   so multi-key commands take keys of different slots.
//! - Arguments come from lists of edge cases (i64 limits, overflow, `inf`, hex, spaces,
//!   negative and out-of-range indexes) plus small random values; a few commands lose or
//!   gain an argument, so arity and syntax errors are compared too.
//! - Error replies are compared word for word. Only what is legitimately server-specific is
//!   normalised: replies whose order Redis leaves unspecified are sorted (SMEMBERS, HKEYS,
//!   HGETALL pairs, KEYS, RESP3 sets and maps), and a remaining TTL or an absolute expiry
//!   time is compared as "non-negative" (the two servers' clocks run a few µs apart).
//!   Random replies (SPOP, SRANDMEMBER, HRANDFIELD, RANDOMKEY) are not generated.
//! - One known difference is tolerated: INCRBYFLOAT/HINCRBYFLOAT results that differ only
//!   by long double rounding end the case early (see `long_double_rounding`).
//! - The reference is the installed `redis-server` (Debian 12's is 7.0.15; Terrace matches
//!   7.4): commands whose behaviour changed between the two are not generated (ZRANK
//!   WITHSCORE, for one).
//! - One strategy per family (`strings_cmd`, `keys_cmd`, `hash_cmd`, `list_cmd`, `set_cmd`,
//!   `zset_cmd`). A command is generated only when terrace knows it (`COMMAND INFO` at the
//!   start), so families that are not merged yet are left out today and covered as soon as
//!   they are; the test prints what it did not cover.
//! - Bounded: [`CASES`] cases of up to [`MAX_COMMANDS`] commands each, in RESP2 or RESP3,
//!   within [`TIME_BUDGET`]. `TERRACE_DIFF_CASES=N` runs N cases instead.
//!
//! Without `redis-server` on the PATH the test prints `SKIPPED: redis-server not installed`
//! and passes; tools/test installs it, so CI always runs it.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::Union;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use redis::Value;

use crate::util::{TestServer, free_port};

/// Cases per run (each starts from an empty keyspace on both servers).
const CASES: u32 = 64;
/// Commands per case, at most.
const MAX_COMMANDS: usize = 40;
/// Cases that would start after this are skipped (reported), so a slow machine cannot make
/// the test run for ever; shrinking a failure has its own bound.
const TIME_BUDGET: Duration = Duration::from_secs(150);
/// Every reply must come within this (a hung server fails the test instead of hanging it).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// The key space: small, so that commands meet on the same keys. Each family prefers its
/// own key (strings `a`, hashes `b`, lists `c`, sets `d`, sorted sets `e`), so values grow
/// deep enough to be interesting, but every family also uses the others' keys (WRONGTYPE).
const KEYS: &[&str] = &["a", "b", "c", "d", "e"];

/// A `redis-server` on a free loopback port, killed (by PID) on drop.
struct RedisServer {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one; `None` when `redis-server` is not installed.
    fn start() -> Option<RedisServer> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            return None;
        }
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let log = std::fs::File::create(dir.path().join("redis.log")).expect("log file");
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("spawn redis-server");
            let mut s = RedisServer { port, child, dir };
            if s.wait_ready(Duration::from_secs(20)) {
                return Some(s);
            }
            // Port taken between probe and bind (or a slow start): kill it, try another.
            eprintln!("redis-server did not start on {port}:\n{}", s.log_text());
        }
        panic!("redis-server is installed but did not start (5 tries)");
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                let mut buf = [0u8; 7];
                if s.write_all(b"PING\r\n").is_ok()
                    && s.read_exact(&mut buf).is_ok()
                    && &buf == b"+PONG\r\n"
                {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One command: name first, then its arguments.
#[derive(Clone, PartialEq)]
struct Cmd(Vec<String>);

impl Cmd {
    fn new(args: &[&str]) -> Cmd {
        Cmd(args.iter().map(|s| s.to_string()).collect())
    }

    fn name(&self) -> String {
        self.0
            .first()
            .map(|n| n.to_ascii_uppercase())
            .unwrap_or_default()
    }
}

impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '"') {
                write!(f, "{a:?}")?;
            } else {
                f.write_str(a)?;
            }
        }
        Ok(())
    }
}

/// What a server answered, normalised for comparison.
#[derive(Debug, PartialEq)]
enum Reply {
    /// A value (aggregates possibly sorted, see [`normalise`]).
    Value(Value),
    /// An error reply's full text (`WRONGTYPE Operation against ...`).
    Error(String),
}

/// Builds a command from fixed words and generated parts.
macro_rules! cmd {
    ($($part:expr),* $(,)?) => {{
        let mut v: Vec<String> = Vec::new();
        $( Extend::extend(&mut v, IntoArgs::into_args($part)); )*
        Cmd(v)
    }};
}

/// Anything that becomes zero or more arguments.
trait IntoArgs {
    fn into_args(self) -> Vec<String>;
}
impl IntoArgs for &str {
    fn into_args(self) -> Vec<String> {
        vec![self.to_string()]
    }
}
impl IntoArgs for String {
    fn into_args(self) -> Vec<String> {
        vec![self]
    }
}
impl IntoArgs for Vec<String> {
    fn into_args(self) -> Vec<String> {
        self
    }
}
impl IntoArgs for Option<String> {
    fn into_args(self) -> Vec<String> {
        self.into_iter().collect()
    }
}
impl IntoArgs for Vec<&'static str> {
    fn into_args(self) -> Vec<String> {
        self.into_iter().map(String::from).collect()
    }
}

// ---- argument strategies -------------------------------------------------------------

fn key() -> BoxedStrategy<String> {
    prop::sample::select(KEYS).prop_map(String::from).boxed()
}

fn keys(n: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(key(), n).boxed()
}

/// A key, more often `home` than any other.
fn key_near(home: &'static str) -> BoxedStrategy<String> {
    prop_oneof![3 => Just(home.to_string()), 2 => key()].boxed()
}

fn keys_near(home: &'static str, n: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(key_near(home), n).boxed()
}

/// `numkeys key ...`: mostly the right count, sometimes a wrong or invalid one.
fn numkeys(home: &'static str) -> BoxedStrategy<Vec<String>> {
    (
        keys_near(home, 1..=3),
        prop_oneof![
            3 => Just(None),
            1 => prop::sample::select(&["0", "1", "3", "-1", "abc"][..]).prop_map(Some),
        ],
    )
        .prop_map(|(k, n)| {
            let n = n.map_or_else(|| k.len().to_string(), String::from);
            std::iter::once(n).chain(k).collect()
        })
        .boxed()
}

/// One of `edge` or a generated value, as a string.
fn pick(edge: &'static [&'static str], other: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        2 => prop::sample::select(edge).prop_map(String::from),
        1 => other,
    ]
    .boxed()
}

/// A string value: numbers (for INCR), text, the empty string.
fn value() -> BoxedStrategy<String> {
    pick(
        &[
            "",
            "0",
            "1",
            "-1",
            "10",
            "abc",
            "hello world",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "1.5",
            "-0",
            "01",
            " 1",
            "+1",
            "1e3",
            "inf",
            "0x10",
        ],
        "[a-z0-9]{0,6}".boxed(),
    )
}

/// An integer argument, valid or not.
fn int() -> BoxedStrategy<String> {
    pick(
        &[
            "0",
            "1",
            "-1",
            "2",
            "5",
            "-5",
            "100",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "abc",
            "",
            "1.5",
            " 1",
            "1 ",
            "+1",
            "01",
            "-0",
            "0x1f",
            "1e2",
        ],
        (-20i64..60).prop_map(|i| i.to_string()).boxed(),
    )
}

/// A float argument, valid or not, hex included (C `strtold` reads it), and numbers beyond
/// f64's range: `1e310`, which Redis's `long double` takes and Terrace's f64 does not (a
/// known difference, see `long_double_rounding`), and `1e5000`, beyond both.
fn float() -> BoxedStrategy<String> {
    pick(
        &[
            "0",
            "1",
            "-1",
            "1.5",
            "-0.25",
            "0.1",
            "0.2",
            "3.0e-2",
            "1e3",
            "5.0e3",
            "-0",
            "inf",
            "-inf",
            "+inf",
            "nan",
            "abc",
            "",
            "1.7976931348623157e308",
            " 1",
            "1.5 ",
            "10",
            "17",
            "1.1",
            "0x10",
            "-0x1.8p1",
            "0x",
            "1e-18",
            "-1e-18",
            "1.234567890123e-10",
            "3.3e-5",
            "1e310",
            "1e5000",
        ],
        (-1000i32..1000)
            .prop_map(|i| format!("{}", f64::from(i) / 8.0))
            .boxed(),
    )
}

/// A string index (GETRANGE, LRANGE, ...): negative, out of range, not a number.
fn index() -> BoxedStrategy<String> {
    pick(
        &[
            "0",
            "1",
            "2",
            "-1",
            "-2",
            "-3",
            "-100",
            "100",
            "9223372036854775807",
            "-9223372036854775808",
            "abc",
            "1.5",
        ],
        (-8i64..8).prop_map(|i| i.to_string()).boxed(),
    )
}

/// A count argument (LPOP count, LPOS COUNT, ...).
fn count() -> BoxedStrategy<String> {
    prop::sample::select(&["0", "1", "2", "3", "10", "-1", "abc", "9223372036854775807"][..])
        .prop_map(String::from)
        .boxed()
}

/// An expire time in seconds for SET EX / EXPIRE: long enough never to expire in a test,
/// or zero/negative/overflowing (errors, or an immediate delete for EXPIRE).
fn seconds() -> BoxedStrategy<String> {
    prop::sample::select(
        &[
            "100",
            "1000",
            "5000",
            "0",
            "-1",
            "abc",
            "9223372036854775807",
            "1.5",
        ][..],
    )
    .prop_map(String::from)
    .boxed()
}

/// An expire time in milliseconds.
fn millis() -> BoxedStrategy<String> {
    prop::sample::select(&["100000", "2000000", "0", "-5", "abc", "9223372036854775807"][..])
        .prop_map(String::from)
        .boxed()
}

/// An absolute Unix time in seconds: far future, past (the key expires at once), invalid.
fn unix_seconds() -> BoxedStrategy<String> {
    prop::sample::select(&["4102444800", "1", "0", "-1", "abc"][..])
        .prop_map(String::from)
        .boxed()
}

fn field() -> BoxedStrategy<String> {
    prop::sample::select(&["f1", "f2", "f3", "1", ""][..])
        .prop_map(String::from)
        .boxed()
}

fn member() -> BoxedStrategy<String> {
    prop::sample::select(&["a", "b", "c", "m1", "1", "2", "10", "-3", ""][..])
        .prop_map(String::from)
        .boxed()
}

fn members(n: std::ops::RangeInclusive<usize>) -> BoxedStrategy<Vec<String>> {
    prop::collection::vec(member(), n).boxed()
}

/// A score range bound (ZCOUNT, ZRANGE BYSCORE, ...).
fn score_bound() -> BoxedStrategy<String> {
    prop::sample::select(
        &[
            "-inf", "+inf", "inf", "0", "1", "(1", "(0", "2.5", "-1", "10", "abc", "(abc", "(",
            "nan",
        ][..],
    )
    .prop_map(String::from)
    .boxed()
}

/// A lex range bound (ZLEXCOUNT, ZRANGE BYLEX, ...).
fn lex_bound() -> BoxedStrategy<String> {
    prop::sample::select(&["-", "+", "[a", "(a", "[b", "(c", "[m1", "[", "a", ""][..])
        .prop_map(String::from)
        .boxed()
}

/// Options in any order; each present or not.
fn options(opts: &'static [&'static [&'static str]]) -> BoxedStrategy<Vec<String>> {
    let each: Vec<BoxedStrategy<Vec<String>>> = opts
        .iter()
        .map(|alts| {
            prop::sample::select(*alts)
                .prop_map(|s| {
                    s.split(' ')
                        .filter(|w| !w.is_empty())
                        .map(String::from)
                        .collect()
                })
                .boxed()
        })
        .collect();
    each.prop_map(|groups: Vec<Vec<String>>| groups)
        .prop_shuffle()
        .prop_map(|groups| groups.into_iter().flatten().collect())
        .boxed()
}

// ---- families --------------------------------------------------------------------------

/// A family: each command's name (for the `COMMAND INFO` check) with its strategy.
type Family = Vec<(&'static str, BoxedStrategy<Cmd>)>;

/// String commands.
fn strings_cmd() -> Family {
    let key = || key_near("a");
    let keys = |n| keys_near("a", n);
    let set_opts = (
        prop::sample::select(&["", "NX", "XX", "NX XX"][..]),
        prop::sample::select(&["", "", "GET"][..]),
        prop_oneof![
            Just(String::new()),
            seconds().prop_map(|s| format!("EX {s}")),
            millis().prop_map(|s| format!("PX {s}")),
            unix_seconds().prop_map(|s| format!("EXAT {s}")),
            Just("PXAT 4102444800000".to_string()),
            Just("KEEPTTL".to_string()),
            Just("EX 100 PX 100000".to_string()),
            Just("KEEPTTL EX 100".to_string()),
            Just("EX".to_string()),
            Just("BOGUS".to_string()),
        ],
    )
        .prop_map(|(a, b, c)| {
            let mut v: Vec<String> = Vec::new();
            for part in [a.to_string(), b.to_string(), c] {
                if !part.is_empty() {
                    v.push(part);
                }
            }
            v
        })
        .prop_shuffle()
        .prop_map(|parts| {
            parts
                .iter()
                .flat_map(|p| p.split(' ').map(String::from).collect::<Vec<_>>())
                .collect::<Vec<String>>()
        });
    let getex_opt = prop_oneof![
        Just(Vec::<String>::new()),
        seconds().prop_map(|s| vec!["EX".into(), s]),
        millis().prop_map(|s| vec!["PX".into(), s]),
        unix_seconds().prop_map(|s| vec!["EXAT".into(), s]),
        Just(vec!["PERSIST".into()]),
        Just(vec!["PERSIST".into(), "EX".into(), "100".into()]),
        Just(vec!["KEEPTTL".into()]),
    ];
    let pairs = |n| prop::collection::vec((key(), value()), n);
    let flat = |p: Vec<(String, String)>| -> Vec<String> {
        p.into_iter().flat_map(|(k, v)| [k, v]).collect()
    };
    vec![
        ("get", key().prop_map(|k| cmd!("GET", k)).boxed()),
        (
            "set",
            (key(), value(), set_opts)
                .prop_map(|(k, v, o)| cmd!("SET", k, v, o))
                .boxed(),
        ),
        (
            "setnx",
            (key(), value())
                .prop_map(|(k, v)| cmd!("SETNX", k, v))
                .boxed(),
        ),
        (
            "setex",
            (key(), seconds(), value())
                .prop_map(|(k, s, v)| cmd!("SETEX", k, s, v))
                .boxed(),
        ),
        (
            "psetex",
            (key(), millis(), value())
                .prop_map(|(k, s, v)| cmd!("PSETEX", k, s, v))
                .boxed(),
        ),
        (
            "getset",
            (key(), value())
                .prop_map(|(k, v)| cmd!("GETSET", k, v))
                .boxed(),
        ),
        ("getdel", key().prop_map(|k| cmd!("GETDEL", k)).boxed()),
        (
            "getex",
            (key(), getex_opt)
                .prop_map(|(k, o)| cmd!("GETEX", k, o))
                .boxed(),
        ),
        (
            "append",
            (key(), value())
                .prop_map(|(k, v)| cmd!("APPEND", k, v))
                .boxed(),
        ),
        ("strlen", key().prop_map(|k| cmd!("STRLEN", k)).boxed()),
        ("incr", key().prop_map(|k| cmd!("INCR", k)).boxed()),
        ("decr", key().prop_map(|k| cmd!("DECR", k)).boxed()),
        (
            "incrby",
            (key(), int())
                .prop_map(|(k, i)| cmd!("INCRBY", k, i))
                .boxed(),
        ),
        (
            "decrby",
            (key(), int())
                .prop_map(|(k, i)| cmd!("DECRBY", k, i))
                .boxed(),
        ),
        (
            "incrbyfloat",
            (key(), float())
                .prop_map(|(k, f)| cmd!("INCRBYFLOAT", k, f))
                .boxed(),
        ),
        (
            "getrange",
            (key(), index(), index())
                .prop_map(|(k, a, b)| cmd!("GETRANGE", k, a, b))
                .boxed(),
        ),
        (
            "substr",
            (key(), index(), index())
                .prop_map(|(k, a, b)| cmd!("SUBSTR", k, a, b))
                .boxed(),
        ),
        (
            "setrange",
            (
                key(),
                prop::sample::select(
                    &[
                        "0",
                        "1",
                        "3",
                        "10",
                        "-1",
                        "abc",
                        // Past the 512 MB limit: an error. (Not 536870911: that would make
                        // both servers allocate 512 MB, and a GET read it all back.)
                        "536870912",
                        "9223372036854775807",
                    ][..],
                ),
                value(),
            )
                .prop_map(|(k, o, v)| cmd!("SETRANGE", k, o, v))
                .boxed(),
        ),
        ("mget", keys(1..=4).prop_map(|k| cmd!("MGET", k)).boxed()),
        (
            "mset",
            pairs(1..=3)
                .prop_map(move |p| cmd!("MSET", flat(p)))
                .boxed(),
        ),
        (
            "msetnx",
            pairs(1..=3)
                .prop_map(move |p| cmd!("MSETNX", flat(p)))
                .boxed(),
        ),
    ]
}

/// Generic key commands (and the expiry ones).
fn keys_cmd() -> Family {
    let words = |s: &str| -> Vec<String> {
        s.split(' ')
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    };
    // GT and LT only with absolute times: a relative time set twice ("EXPIRE k 100" then
    // "EXPIRE k 100 GT") is later the second time if a millisecond passed in between, which
    // depends on each server's speed, not on its semantics. (GT LT together is an error.)
    let expire_opt = prop::sample::select(&["", "", "NX", "XX", "NX XX", "GT LT", "BOGUS"][..])
        .prop_map(words)
        .boxed();
    let expireat_opt =
        prop::sample::select(&["", "", "NX", "XX", "GT", "LT", "NX XX", "XX GT", "BOGUS"][..])
            .prop_map(words)
            .boxed();
    vec![
        ("del", keys(1..=3).prop_map(|k| cmd!("DEL", k)).boxed()),
        (
            "unlink",
            keys(1..=3).prop_map(|k| cmd!("UNLINK", k)).boxed(),
        ),
        (
            "exists",
            keys(1..=3).prop_map(|k| cmd!("EXISTS", k)).boxed(),
        ),
        ("touch", keys(1..=3).prop_map(|k| cmd!("TOUCH", k)).boxed()),
        ("type", key().prop_map(|k| cmd!("TYPE", k)).boxed()),
        (
            "rename",
            (key(), key())
                .prop_map(|(a, b)| cmd!("RENAME", a, b))
                .boxed(),
        ),
        (
            "renamenx",
            (key(), key())
                .prop_map(|(a, b)| cmd!("RENAMENX", a, b))
                .boxed(),
        ),
        (
            "copy",
            (
                key(),
                key(),
                prop::sample::select(&["", "REPLACE", "BOGUS"][..]),
            )
                .prop_map(|(a, b, o)| {
                    let mut c = cmd!("COPY", a, b);
                    if !o.is_empty() {
                        c.0.push(o.to_string());
                    }
                    c
                })
                .boxed(),
        ),
        ("persist", key().prop_map(|k| cmd!("PERSIST", k)).boxed()),
        ("ttl", key().prop_map(|k| cmd!("TTL", k)).boxed()),
        ("pttl", key().prop_map(|k| cmd!("PTTL", k)).boxed()),
        (
            "expiretime",
            key().prop_map(|k| cmd!("EXPIRETIME", k)).boxed(),
        ),
        (
            "pexpiretime",
            key().prop_map(|k| cmd!("PEXPIRETIME", k)).boxed(),
        ),
        (
            "expire",
            (key(), seconds(), expire_opt.clone())
                .prop_map(|(k, s, o)| cmd!("EXPIRE", k, s, o))
                .boxed(),
        ),
        (
            "pexpire",
            (key(), millis(), expire_opt)
                .prop_map(|(k, s, o)| cmd!("PEXPIRE", k, s, o))
                .boxed(),
        ),
        (
            "expireat",
            (key(), unix_seconds(), expireat_opt)
                .prop_map(|(k, s, o)| cmd!("EXPIREAT", k, s, o))
                .boxed(),
        ),
        ("dbsize", Just(cmd!("DBSIZE")).boxed()),
        (
            "keys",
            prop::sample::select(&["*", "a*", "[ab]", "?", "x*"][..])
                .prop_map(|p| cmd!("KEYS", p))
                .boxed(),
        ),
    ]
}

/// Hash commands.
fn hash_cmd() -> Family {
    let key = || key_near("b");
    let kf = || (key(), field());
    vec![
        (
            "hset",
            (key(), prop::collection::vec((field(), value()), 1..=3))
                .prop_map(|(k, p)| {
                    cmd!(
                        "HSET",
                        k,
                        p.into_iter().flat_map(|(f, v)| [f, v]).collect::<Vec<_>>()
                    )
                })
                .boxed(),
        ),
        ("hget", kf().prop_map(|(k, f)| cmd!("HGET", k, f)).boxed()),
        (
            "hmget",
            (key(), prop::collection::vec(field(), 1..=3))
                .prop_map(|(k, f)| cmd!("HMGET", k, f))
                .boxed(),
        ),
        (
            "hdel",
            (key(), prop::collection::vec(field(), 1..=3))
                .prop_map(|(k, f)| cmd!("HDEL", k, f))
                .boxed(),
        ),
        (
            "hexists",
            kf().prop_map(|(k, f)| cmd!("HEXISTS", k, f)).boxed(),
        ),
        ("hlen", key().prop_map(|k| cmd!("HLEN", k)).boxed()),
        ("hkeys", key().prop_map(|k| cmd!("HKEYS", k)).boxed()),
        ("hvals", key().prop_map(|k| cmd!("HVALS", k)).boxed()),
        ("hgetall", key().prop_map(|k| cmd!("HGETALL", k)).boxed()),
        (
            "hincrby",
            (key(), field(), int())
                .prop_map(|(k, f, i)| cmd!("HINCRBY", k, f, i))
                .boxed(),
        ),
        (
            "hincrbyfloat",
            (key(), field(), float())
                .prop_map(|(k, f, x)| cmd!("HINCRBYFLOAT", k, f, x))
                .boxed(),
        ),
        (
            "hsetnx",
            (key(), field(), value())
                .prop_map(|(k, f, v)| cmd!("HSETNX", k, f, v))
                .boxed(),
        ),
        (
            "hstrlen",
            kf().prop_map(|(k, f)| cmd!("HSTRLEN", k, f)).boxed(),
        ),
    ]
}

/// List commands.
fn list_cmd() -> Family {
    let key = || key_near("c");
    let side = || prop::sample::select(&["LEFT", "RIGHT", "left", "UP"][..]);
    let push = |name: &'static str| {
        (key(), members(1..=3))
            .prop_map(move |(k, m)| cmd!(name, k, m))
            .boxed()
    };
    let pop = |name: &'static str| {
        (key(), prop::option::of(count()))
            .prop_map(move |(k, c)| cmd!(name, k, c))
            .boxed()
    };
    vec![
        ("lpush", push("LPUSH")),
        ("rpush", push("RPUSH")),
        ("lpushx", push("LPUSHX")),
        ("rpushx", push("RPUSHX")),
        ("lpop", pop("LPOP")),
        ("rpop", pop("RPOP")),
        ("llen", key().prop_map(|k| cmd!("LLEN", k)).boxed()),
        (
            "lrange",
            (key(), index(), index())
                .prop_map(|(k, a, b)| cmd!("LRANGE", k, a, b))
                .boxed(),
        ),
        (
            "lindex",
            (key(), index())
                .prop_map(|(k, i)| cmd!("LINDEX", k, i))
                .boxed(),
        ),
        (
            "lset",
            (key(), index(), member())
                .prop_map(|(k, i, v)| cmd!("LSET", k, i, v))
                .boxed(),
        ),
        (
            "linsert",
            (
                key(),
                prop::sample::select(&["BEFORE", "AFTER", "after", "MIDDLE"][..]),
                member(),
                member(),
            )
                .prop_map(|(k, w, p, v)| cmd!("LINSERT", k, w, p, v))
                .boxed(),
        ),
        (
            "lrem",
            (key(), int(), member())
                .prop_map(|(k, c, v)| cmd!("LREM", k, c, v))
                .boxed(),
        ),
        (
            "ltrim",
            (key(), index(), index())
                .prop_map(|(k, a, b)| cmd!("LTRIM", k, a, b))
                .boxed(),
        ),
        (
            "lpos",
            (
                key(),
                member(),
                options(&[
                    &["", "RANK 1", "RANK -1", "RANK 2", "RANK 0", "RANK abc"],
                    &["", "COUNT 0", "COUNT 2", "COUNT -1"],
                    &["", "MAXLEN 0", "MAXLEN 2", "MAXLEN -1"],
                ]),
            )
                .prop_map(|(k, m, o)| cmd!("LPOS", k, m, o))
                .boxed(),
        ),
        (
            "lmove",
            (key(), key(), side(), side())
                .prop_map(|(a, b, x, y)| cmd!("LMOVE", a, b, x, y))
                .boxed(),
        ),
        (
            "rpoplpush",
            (key(), key())
                .prop_map(|(a, b)| cmd!("RPOPLPUSH", a, b))
                .boxed(),
        ),
        (
            "lmpop",
            (numkeys("c"), side(), prop::option::of(count()))
                .prop_map(|(k, s, c)| {
                    cmd!(
                        "LMPOP",
                        k,
                        s,
                        c.map(|c| vec!["COUNT".to_string(), c]).unwrap_or_default()
                    )
                })
                .boxed(),
        ),
    ]
}

/// Set commands.
fn set_cmd() -> Family {
    let key = || key_near("d");
    let keys = |n| keys_near("d", n);
    let multi = |name: &'static str| keys(1..=3).prop_map(move |k| cmd!(name, k)).boxed();
    let store = |name: &'static str| {
        (key(), keys(1..=3))
            .prop_map(move |(d, k)| cmd!(name, d, k))
            .boxed()
    };
    vec![
        (
            "sadd",
            (key(), members(1..=3))
                .prop_map(|(k, m)| cmd!("SADD", k, m))
                .boxed(),
        ),
        (
            "srem",
            (key(), members(1..=3))
                .prop_map(|(k, m)| cmd!("SREM", k, m))
                .boxed(),
        ),
        ("smembers", key().prop_map(|k| cmd!("SMEMBERS", k)).boxed()),
        (
            "sismember",
            (key(), member())
                .prop_map(|(k, m)| cmd!("SISMEMBER", k, m))
                .boxed(),
        ),
        (
            "smismember",
            (key(), members(1..=3))
                .prop_map(|(k, m)| cmd!("SMISMEMBER", k, m))
                .boxed(),
        ),
        ("scard", key().prop_map(|k| cmd!("SCARD", k)).boxed()),
        (
            "smove",
            (key(), key(), member())
                .prop_map(|(a, b, m)| cmd!("SMOVE", a, b, m))
                .boxed(),
        ),
        ("sinter", multi("SINTER")),
        ("sunion", multi("SUNION")),
        ("sdiff", multi("SDIFF")),
        (
            "sintercard",
            (
                numkeys("d"),
                prop::sample::select(&["", "LIMIT 0", "LIMIT 1", "LIMIT -1", "LIMIT"][..]),
            )
                .prop_map(|(k, l)| {
                    cmd!(
                        "SINTERCARD",
                        k,
                        l.split(' ')
                            .filter(|w| !w.is_empty())
                            .map(String::from)
                            .collect::<Vec<_>>()
                    )
                })
                .boxed(),
        ),
        ("sinterstore", store("SINTERSTORE")),
        ("sunionstore", store("SUNIONSTORE")),
        ("sdiffstore", store("SDIFFSTORE")),
    ]
}

/// ZUNION/ZINTER options.
const WITH_WEIGHTS: &[&[&str]] = &[
    &["", "WEIGHTS 1 2", "WEIGHTS 2", "WEIGHTS 1 2 3", "WEIGHTS x"],
    &[
        "",
        "AGGREGATE SUM",
        "AGGREGATE MIN",
        "AGGREGATE max",
        "AGGREGATE BOGUS",
    ],
    &["", "WITHSCORES"],
];
/// ZDIFF options.
const NO_WEIGHTS: &[&[&str]] = &[&["", "WITHSCORES"]];

/// Sorted-set commands.
fn zset_cmd() -> Family {
    let key = || key_near("e");
    let score = || {
        pick(
            &[
                "0", "1", "1.5", "-2", "10", "-inf", "+inf", "inf", "abc", "nan", "1e3", "0.1", "",
            ],
            (-10i32..10).prop_map(|i| i.to_string()).boxed(),
        )
    };
    let range_opts = || {
        options(&[
            &["", "", "BYSCORE", "BYLEX"],
            &["", "REV"],
            &["", "", "LIMIT 0 2", "LIMIT 1 -1", "LIMIT 0 0", "LIMIT x 1"],
            &["", "WITHSCORES"],
        ])
    };
    // ZRANGE's start/stop: indexes, score bounds or lex bounds (the options decide which
    // are valid).
    let bound = || prop_oneof![index(), score_bound(), lex_bound()];
    let numkeys_cmd = |name: &'static str, store: bool, scores: bool| {
        (
            key(),
            numkeys("e"),
            options(if scores { WITH_WEIGHTS } else { NO_WEIGHTS }),
        )
            .prop_map(move |(d, k, mut o)| {
                if store {
                    o.retain(|w| w != "WITHSCORES");
                    cmd!(name, d, k, o)
                } else {
                    cmd!(name, k, o)
                }
            })
            .boxed()
    };
    let popc = |name: &'static str| {
        (key(), prop::option::of(count()))
            .prop_map(move |(k, c)| cmd!(name, k, c))
            .boxed()
    };
    let range_rem = |name: &'static str, b: fn() -> BoxedStrategy<String>| {
        (key(), b(), b())
            .prop_map(move |(k, x, y)| cmd!(name, k, x, y))
            .boxed()
    };
    vec![
        (
            "zadd",
            (
                key(),
                options(&[
                    &["", "", "NX", "XX"],
                    &["", "", "GT", "LT"],
                    &["", "CH"],
                    &["", "", "INCR"],
                ]),
                prop::collection::vec((score(), member()), 1..=3),
            )
                .prop_map(|(k, o, p)| {
                    cmd!(
                        "ZADD",
                        k,
                        o,
                        p.into_iter().flat_map(|(s, m)| [s, m]).collect::<Vec<_>>()
                    )
                })
                .boxed(),
        ),
        (
            "zrem",
            (key(), members(1..=3))
                .prop_map(|(k, m)| cmd!("ZREM", k, m))
                .boxed(),
        ),
        (
            "zscore",
            (key(), member())
                .prop_map(|(k, m)| cmd!("ZSCORE", k, m))
                .boxed(),
        ),
        (
            "zmscore",
            (key(), members(1..=3))
                .prop_map(|(k, m)| cmd!("ZMSCORE", k, m))
                .boxed(),
        ),
        (
            "zincrby",
            (key(), score(), member())
                .prop_map(|(k, s, m)| cmd!("ZINCRBY", k, s, m))
                .boxed(),
        ),
        ("zcard", key().prop_map(|k| cmd!("ZCARD", k)).boxed()),
        ("zcount", range_rem("ZCOUNT", score_bound)),
        ("zlexcount", range_rem("ZLEXCOUNT", lex_bound)),
        (
            "zrange",
            (key(), bound(), bound(), range_opts())
                .prop_map(|(k, a, b, o)| cmd!("ZRANGE", k, a, b, o))
                .boxed(),
        ),
        (
            "zrangestore",
            (key(), key(), bound(), bound(), range_opts())
                .prop_map(|(d, k, a, b, mut o)| {
                    o.retain(|w| w != "WITHSCORES");
                    cmd!("ZRANGESTORE", d, k, a, b, o)
                })
                .boxed(),
        ),
        (
            "zrank",
            (key(), member())
                .prop_map(|(k, m)| cmd!("ZRANK", k, m))
                .boxed(),
        ),
        (
            "zrevrank",
            (key(), member())
                .prop_map(|(k, m)| cmd!("ZREVRANK", k, m))
                .boxed(),
        ),
        ("zpopmin", popc("ZPOPMIN")),
        ("zpopmax", popc("ZPOPMAX")),
        (
            "zremrangebyscore",
            range_rem("ZREMRANGEBYSCORE", score_bound),
        ),
        ("zremrangebyrank", range_rem("ZREMRANGEBYRANK", index)),
        ("zremrangebylex", range_rem("ZREMRANGEBYLEX", lex_bound)),
        ("zunion", numkeys_cmd("ZUNION", false, true)),
        ("zinter", numkeys_cmd("ZINTER", false, true)),
        ("zdiff", numkeys_cmd("ZDIFF", false, false)),
        ("zunionstore", numkeys_cmd("ZUNIONSTORE", true, true)),
        ("zinterstore", numkeys_cmd("ZINTERSTORE", true, true)),
        ("zdiffstore", numkeys_cmd("ZDIFFSTORE", true, false)),
    ]
}

/// Sometimes drops trailing arguments or adds one, for arity and syntax errors.
fn mangle(s: BoxedStrategy<Cmd>) -> BoxedStrategy<Cmd> {
    (s, 0u8..24, any::<prop::sample::Index>())
        .prop_map(|(mut c, roll, at)| {
            match roll {
                0 if c.0.len() > 1 => c.0.truncate(1 + at.index(c.0.len() - 1)),
                // ZRANK/ZREVRANK took exactly 3 arguments before 7.2 (WITHSCORE): an
                // extra one is an arity error in the 7.0 reference, a syntax error in 7.4.
                1 if !matches!(c.0[0].as_str(), "ZRANK" | "ZREVRANK") => {
                    c.0.push("extra".to_string())
                }
                _ => {}
            }
            c
        })
        .boxed()
}

// ---- running ---------------------------------------------------------------------------

/// Sends one command and reads its reply. `Err` is a transport failure (not an error reply).
fn call(c: &mut redis::Connection, cmd: &Cmd) -> Result<Reply, String> {
    let mut packed = redis::Cmd::new();
    for a in &cmd.0 {
        packed.arg(a.as_bytes());
    }
    c.send_packed_command(&packed.get_packed_command())
        .map_err(|e| format!("send: {e}"))?;
    match c.recv_response() {
        Ok(Value::ServerError(e)) => Ok(Reply::Error(error_text(e.code(), e.details()))),
        Ok(v) => Ok(Reply::Value(normalise(cmd, v))),
        Err(e) => match e.code() {
            Some(code) => Ok(Reply::Error(error_text(code, e.detail()))),
            None => Err(format!("receive: {e}")),
        },
    }
}

fn error_text(code: &str, detail: Option<&str>) -> String {
    match detail {
        Some(d) => format!("{code} {d}"),
        None => code.to_string(),
    }
}

fn sort_values(v: &mut [Value]) {
    v.sort_by_cached_key(|x| format!("{x:?}"));
}

/// Makes replies whose order (or exact time) Redis leaves unspecified comparable.
fn normalise(cmd: &Cmd, v: Value) -> Value {
    let name = cmd.name();
    match (name.as_str(), v) {
        ("TTL" | "PTTL" | "EXPIRETIME" | "PEXPIRETIME", Value::Int(n)) if n >= 0 => {
            Value::SimpleString("<non-negative>".into())
        }
        (
            "SMEMBERS" | "SINTER" | "SUNION" | "SDIFF" | "HKEYS" | "HVALS" | "KEYS",
            Value::Array(mut a),
        ) => {
            sort_values(&mut a);
            Value::Array(a)
        }
        ("HGETALL", Value::Array(a)) => {
            let mut pairs: Vec<Vec<Value>> = a.chunks(2).map(<[Value]>::to_vec).collect();
            pairs.sort_by_cached_key(|p| format!("{p:?}"));
            Value::Array(pairs.into_iter().flatten().collect())
        }
        (n, v) if n.starts_with('Z') => unordered(scores_as_numbers(v)),
        (_, v) => unordered(v),
    }
}

/// Sorted-set scores in RESP2 are text, and Redis 7.2 changed its double formatting from
/// `%.17g` (the 7.0 reference: `0.10000000000000001`) to the shortest round-trip form
/// (Terrace, as 7.4: `0.1`): a bulk string that reads as a finite float compares by value.
fn scores_as_numbers(v: Value) -> Value {
    match v {
        Value::BulkString(b) => match std::str::from_utf8(&b)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
        {
            Some(f) if f.is_finite() && !b.is_empty() && b[0] != b'+' => Value::Double(f),
            _ => Value::BulkString(b),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(scores_as_numbers).collect()),
        other => other,
    }
}

/// RESP3 sets and maps are unordered: sorts them, at any depth.
fn unordered(v: Value) -> Value {
    match v {
        Value::Set(a) => {
            let mut a: Vec<Value> = a.into_iter().map(unordered).collect();
            sort_values(&mut a);
            Value::Set(a)
        }
        Value::Map(m) => {
            let mut m: Vec<(Value, Value)> = m
                .into_iter()
                .map(|(k, v)| (unordered(k), unordered(v)))
                .collect();
            m.sort_by_cached_key(|p| format!("{p:?}"));
            Value::Map(m)
        }
        Value::Array(a) => Value::Array(a.into_iter().map(unordered).collect()),
        other => other,
    }
}

/// Connections to one server: RESP2 and RESP3.
struct Conns {
    resp2: redis::Connection,
    resp3: redis::Connection,
}

impl Conns {
    fn open(port: u16) -> Conns {
        let open = |q: &str| {
            let c = redis::Client::open(format!("redis://127.0.0.1:{port}/{q}"))
                .expect("client")
                .get_connection()
                .expect("connect");
            c.set_read_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
            c.set_write_timeout(Some(REPLY_TIMEOUT)).expect("timeout");
            c
        };
        Conns {
            resp2: open(""),
            resp3: open("?protocol=resp3"),
        }
    }

    fn get(&mut self, resp3: bool) -> &mut redis::Connection {
        if resp3 {
            &mut self.resp3
        } else {
            &mut self.resp2
        }
    }
}

/// The command names terrace knows, out of `names`.
fn known_to_terrace(c: &mut redis::Connection, names: &[&str]) -> Vec<bool> {
    let mut info = redis::cmd("COMMAND");
    info.arg("INFO").arg(names);
    let v: Value = info.query(c).expect("COMMAND INFO");
    let Value::Array(entries) = v else {
        panic!("COMMAND INFO answered {v:?}");
    };
    assert_eq!(entries.len(), names.len(), "COMMAND INFO entries");
    entries.iter().map(|e| !matches!(e, Value::Nil)).collect()
}

/// How a case that passed ended.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// Every reply was the same.
    Same,
    /// Stopped at an INCRBYFLOAT whose results differ only by long double rounding.
    StoppedAtFloat,
}

/// True when `cmd` is INCRBYFLOAT or HINCRBYFLOAT and both servers answered numbers within
/// a few f64 ulps of each other. Known difference: Redis computes these in C `long double`
/// (80-bit x87 on x86-64: a 64-bit mantissa) and prints 17 significant digits; Terrace
/// computes in f64. So `INCRBYFLOAT k 1.625` on 9223372036854775807 is
/// 9223372036854775809 in Redis and 9223372036854775808 in Terrace, and `1/3` prints one
/// digit more in Redis. Results that fit in 15 significant digits are the same. And a
/// result beyond f64's range (1e310) is a number in Redis, Terrace's "would produce NaN or
/// Infinity" error.
fn long_double_rounding(cmd: &Cmd, t: &Reply, r: &Reply) -> bool {
    let num = |x: &Reply| match x {
        Reply::Value(Value::BulkString(b)) => std::str::from_utf8(b).ok()?.parse::<f64>().ok(),
        _ => None,
    };
    // HINCRBYFLOAT refuses an increment that is itself infinite (in f64) first.
    let inf_error = |x: &Reply| {
        matches!(x, Reply::Error(e) if e == "ERR increment would produce NaN or Infinity"
            || e == "ERR value is NaN or Infinity" && cmd.name() == "HINCRBYFLOAT")
    };
    // An increment beyond f64's range but within long double's (1e310): Terrace refuses it
    // as infinite, where Redis goes on (and may answer anything, WRONGTYPE included).
    let beyond_f64 = cmd.0.last().is_some_and(|a| {
        a.parse::<f64>().is_ok_and(f64::is_infinite) && !a.to_ascii_lowercase().contains("inf")
    });
    if cmd.name() == "HINCRBYFLOAT"
        && beyond_f64
        && matches!(t, Reply::Error(e) if e == "ERR value is NaN or Infinity")
    {
        return true;
    }
    matches!(cmd.name().as_str(), "INCRBYFLOAT" | "HINCRBYFLOAT")
        && match (num(t), num(r)) {
            (Some(a), Some(b)) => (a - b).abs() <= a.abs().max(b.abs()) * 8.0 * f64::EPSILON,
            (None, Some(b)) => b.is_infinite() && inf_error(t),
            _ => false,
        }
}

/// Runs one case on both servers; on the first differing reply, fails with the whole
/// transcript so far.
fn run_case(
    terrace: &mut Conns,
    redis: &mut Conns,
    resp3: bool,
    cmds: &[Cmd],
) -> Result<Outcome, TestCaseError> {
    let flush = Cmd::new(&["FLUSHALL"]);
    for side in [&mut *terrace, &mut *redis] {
        let r = call(side.get(false), &flush).map_err(TestCaseError::fail)?;
        if r != Reply::Value(Value::Okay) {
            return Err(TestCaseError::fail(format!("FLUSHALL answered {r:?}")));
        }
    }
    let mut transcript = format!("protocol: {}\n", if resp3 { "RESP3" } else { "RESP2" });
    for (i, cmd) in cmds.iter().enumerate() {
        let t = call(terrace.get(resp3), cmd).map_err(|e| {
            TestCaseError::fail(format!("{transcript}{i:>3}. {cmd:?}\n     terrace: {e}"))
        })?;
        let r = call(redis.get(resp3), cmd).map_err(|e| {
            TestCaseError::fail(format!("{transcript}{i:>3}. {cmd:?}\n     redis: {e}"))
        })?;
        if t != r && long_double_rounding(cmd, &t, &r) {
            // A known difference (see `long_double_rounding`): the keys' values now differ,
            // so the rest of this case cannot be compared.
            return Ok(Outcome::StoppedAtFloat);
        }
        if t != r {
            return Err(TestCaseError::fail(format!(
                "replies differ at command {i}\n{transcript}{i:>3}. {cmd:?}\n     \
                 terrace: {t:?}\n     redis:   {r:?}"
            )));
        }
        transcript.push_str(&format!("{i:>3}. {cmd:?} -> {t:?}\n"));
    }
    Ok(Outcome::Same)
}

#[test]
fn terrace_answers_like_redis() {
    let Some(redis_server) = RedisServer::start() else {
        eprintln!("SKIPPED: redis-server not installed (tools/test installs it)");
        return;
    };
    let terrace_server = TestServer::start();
    let mut terrace = Conns::open(terrace_server.port);
    let redis = RefCell::new(Conns::open(redis_server.port));

    let families: Vec<(&str, Family)> = vec![
        ("strings", strings_cmd()),
        ("keys", keys_cmd()),
        ("hash", hash_cmd()),
        ("list", list_cmd()),
        ("set", set_cmd()),
        ("zset", zset_cmd()),
    ];
    let mut chosen: Vec<BoxedStrategy<Cmd>> = Vec::new();
    let mut missing: Vec<&str> = Vec::new();
    let mut covered: Vec<String> = Vec::new();
    for (family, cmds) in families {
        let names: Vec<&str> = cmds.iter().map(|(n, _)| *n).collect();
        let known = known_to_terrace(&mut terrace.resp2, &names);
        let mut n = 0;
        for ((name, s), k) in cmds.into_iter().zip(known) {
            if k {
                chosen.push(mangle(s));
                n += 1;
            } else {
                missing.push(name);
            }
        }
        covered.push(format!("{family} {n}/{}", names.len()));
    }
    eprintln!(
        "differential: commands covered per family: {}",
        covered.join(", ")
    );
    if !missing.is_empty() {
        eprintln!(
            "differential: not covered (terrace does not know them yet): {}",
            missing.join(" ")
        );
    }
    assert!(!chosen.is_empty(), "terrace knows none of the commands");

    let cases = std::env::var("TERRACE_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let strategy = (
        any::<bool>(),
        prop::collection::vec(Union::new(chosen), 1..=MAX_COMMANDS),
    );
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_time: 60_000,
        max_shrink_iters: 4096,
        failure_persistence: None,
        ..Config::default()
    });
    let terrace = RefCell::new(terrace);
    let start = Instant::now();
    let skipped = Cell::new(0u32);
    let failed = Cell::new(false);
    let stopped = Cell::new(0u32);
    let result = runner.run(&strategy, |(resp3, cmds)| {
        // New cases stop at the budget; once one failed, shrinking runs (bounded by
        // max_shrink_time), since skipping would make a failing case look like a pass.
        if start.elapsed() > TIME_BUDGET && !failed.get() {
            skipped.set(skipped.get() + 1);
            return Ok(());
        }
        match run_case(
            &mut terrace.borrow_mut(),
            &mut redis.borrow_mut(),
            resp3,
            &cmds,
        ) {
            Ok(Outcome::Same) => Ok(()),
            Ok(Outcome::StoppedAtFloat) => {
                stopped.set(stopped.get() + 1);
                Ok(())
            }
            Err(e) => {
                failed.set(true);
                Err(e)
            }
        }
    });
    if stopped.get() > 0 {
        eprintln!(
            "differential: {} cases stopped early at an INCRBYFLOAT that differs only by \
             long double rounding (a known difference)",
            stopped.get()
        );
    }
    let skipped = skipped.get();
    if skipped > 0 {
        eprintln!("differential: {skipped} of {cases} cases skipped: over the time budget");
    }
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, (resp3, cmds))) => panic!(
            "terrace and redis-server answer differently (minimal case: {} commands, {}):\n{why}",
            cmds.len(),
            if resp3 { "RESP3" } else { "RESP2" }
        ),
        Err(e) => panic!("differential test aborted: {e}"),
    }
}
