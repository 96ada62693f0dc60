//! Test harness: spawns the real `terrace` binary on a free loopback port and talks to it
//! with real clients. No mocks.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `terrace server`.
pub struct TestServer {
    pub port: u16,
    child: Option<Child>,
    _dir: tempfile::TempDir,
    pub log: PathBuf,
}

/// Async connection settings for tests: a 30 s response timeout (see [`TestServer::conn`]).
pub fn patient() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(30)))
}

/// A free loopback port: bind port 0, read it, release it.
pub fn free_port() -> u16 {
    // The kernel may hand the same just-released port out twice in a row: never give a
    // port to two callers of this process (a config listing it twice is refused).
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let p = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        if !given.contains(&p) {
            given.push(p);
            return p;
        }
    }
    panic!("no fresh free port in 1000 tries");
}

impl TestServer {
    /// Dev mode (embedded config) on a free port.
    pub fn start() -> TestServer {
        TestServer::start_with(None, &[])
    }

    /// With a config file body (written to a temp dir) and extra arguments.
    ///
    /// With `TERRACE_TEST_OFFHEAP=1` every server runs with `--heap 0 --offheap 64m`:
    /// every entry lives off-heap, and the same tests must pass (tools/test runs them so).
    pub fn start_with(yaml: Option<&str>, extra: &[&str]) -> TestServer {
        match TestServer::try_start_with(yaml, extra) {
            Ok(s) => s,
            Err(log) => panic!("terrace did not start:\n{log}"),
        }
    }

    /// Like [`start_with`](Self::start_with), but a server that exits before it is ready
    /// is an `Err` carrying its exit status and log, not a panic.
    pub fn try_start_with(yaml: Option<&str>, extra: &[&str]) -> Result<TestServer, String> {
        let all_off = std::env::var("TERRACE_TEST_OFFHEAP").is_ok_and(|v| v == "1")
            && !extra.iter().any(|a| *a == "--heap" || *a == "--offheap");
        let tiers: &[&str] = if all_off {
            &["--heap", "0", "--offheap", "64m"]
        } else {
            &[]
        };
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let mut args: Vec<std::ffi::OsString> = vec!["--port".into(), port.to_string().into()];
            args.extend(tiers.iter().chain(extra).map(Into::into));
            if let Some(y) = yaml {
                let f = dir.path().join("conf.yaml");
                std::fs::write(&f, y).expect("write config");
                args.extend(["-f".into(), f.into_os_string()]);
            }
            match TestServer::launch(dir, port, &args) {
                Ok(s) => return Ok(s),
                Err(Some(log)) => return Err(log),
                // Port taken between probe and bind: try another.
                Err(None) => {}
            }
        }
        Err("terrace did not start".into())
    }

    /// Server `name` of the config file `config`, on the port the config gives it (a
    /// stripe's servers must find each other there).
    pub fn start_named(config: &std::path::Path, name: &str, port: u16) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let args: Vec<std::ffi::OsString> =
            vec!["-f".into(), config.into(), "-n".into(), name.into()];
        match TestServer::launch(dir, port, &args) {
            Ok(s) => s,
            Err(log) => panic!("terrace {name} did not start:\n{}", log.unwrap_or_default()),
        }
    }

    /// Starts `terrace server ARGS` logging into `dir`, and waits until it answers on
    /// `port`. Err(None): it could not listen (the port was taken).
    fn launch(
        dir: tempfile::TempDir,
        port: u16,
        args: &[std::ffi::OsString],
    ) -> Result<TestServer, Option<String>> {
        let log = dir.path().join("terrace.log");
        let logf = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .arg("server")
            .args(args)
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("spawn terrace");
        let mut s = TestServer {
            port,
            child: Some(child),
            _dir: dir,
            log,
        };
        if s.wait_ready(Duration::from_secs(60)) {
            return Ok(s);
        }
        if let Some(st) = s.wait_exit(Duration::ZERO)
            && !s.log_text().contains("could not listen")
        {
            return Err(Some(format!("{st}\n{}", s.log_text())));
        }
        s.kill();
        Err(None)
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return false;
            }
            // A TLS client port cannot answer a plain PING: its readiness line counts.
            if self.log_text().contains("ready to accept TLS connections") {
                return true;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
                // Ready once it answers PING: PONG, or NOAUTH when a password is set.
                if s.write_all(b"PING\r\n").is_ok() {
                    let mut buf = [0u8; 7];
                    if s.read_exact(&mut buf).is_ok()
                        && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
                    {
                        return true;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A multiplexed connection. Its response timeout is 30 s, not the crate's 500 ms: a
    /// big pipeline on a loaded 2-core machine can take longer, and each test bounds its
    /// own waits.
    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection_with_config(&patient())
            .await
            .expect("connect")
    }

    pub async fn conn3(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .expect("client")
            .get_multiplexed_async_connection_with_config(&patient())
            .await
            .expect("connect resp3")
    }

    /// A raw socket for byte-level tests.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("raw connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        s
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        self.wait_exit(Duration::from_secs(15))
    }

    /// Waits (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGKILL and reaps the process.
    /// Sends `sig` (SIGSTOP, SIGCONT, ...) to the server process.
    pub fn signal(&self, sig: rustix::process::Signal) {
        if let Some(c) = &self.child
            && let Some(pid) = rustix::process::Pid::from_raw(c.id() as i32)
        {
            let _ = rustix::process::kill_process(pid, sig);
        }
    }

    pub fn sigkill(&mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- terrace log ---\n{}", self.log_text());
        }
    }
}

/// Reads from a raw socket until `want` bytes arrived or the timeout hit.
pub fn read_n(s: &mut TcpStream, want: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while out.len() < want {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// Reads until the peer closes (or the read timeout).
pub fn read_to_close(s: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}

/// Sends one command (a tuple or slice of arguments, name first) and unwraps the reply.
pub async fn run<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: impl redis::ToRedisArgs,
) -> T {
    try_run(c, args).await.unwrap()
}

/// Sends one command and returns the reply or the error reply.
pub async fn try_run<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: impl redis::ToRedisArgs,
) -> redis::RedisResult<T> {
    redis::Cmd::new().arg(args).query_async(c).await
}

/// True when `redis-cli` is installed (the README's test command installs it).
pub fn redis_cli() -> Command {
    Command::new("redis-cli")
}

/// A RESP3 frame as readable text: strings as text, aggregates in brackets.
pub fn show(f: &redis_protocol::resp3::types::OwnedFrame) -> String {
    use redis_protocol::resp3::types::OwnedFrame as F;
    let list = |v: &mut dyn Iterator<Item = String>| v.collect::<Vec<_>>().join(" ");
    match f {
        F::BlobString { data, .. } | F::BlobError { data, .. } => {
            String::from_utf8_lossy(data).into_owned()
        }
        F::SimpleString { data, .. } | F::VerbatimString { data, .. } => {
            String::from_utf8_lossy(data).into_owned()
        }
        F::SimpleError { data, .. } => data.clone(),
        F::Number { data, .. } => data.to_string(),
        F::Null => "nil".to_string(),
        F::Array { data, .. } | F::Push { data, .. } => {
            format!("[{}]", list(&mut data.iter().map(show)))
        }
        F::Set { data, .. } => {
            let mut v: Vec<String> = data.iter().map(show).collect();
            v.sort();
            format!("{{{}}}", v.join(" "))
        }
        F::Map { data, .. } => {
            let mut v: Vec<String> = data
                .iter()
                .map(|(k, v)| format!("{}={}", show(k), show(v)))
                .collect();
            v.sort();
            format!("{{{}}}", v.join(" "))
        }
        other => format!("{other:?}"),
    }
}

/// A raw RESP3 connection that separates push messages from replies, for tests that
/// check exactly what a tracking client receives.
pub struct Resp3 {
    sock: TcpStream,
    buf: Vec<u8>,
    /// Push messages received and not yet taken, in arrival order.
    pub pushes: std::collections::VecDeque<redis_protocol::resp3::types::OwnedFrame>,
}

impl Resp3 {
    /// Connects and switches to RESP3 (HELLO 3).
    pub fn connect(port: u16) -> Resp3 {
        let sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut c = Resp3 {
            sock,
            buf: Vec::new(),
            pushes: Default::default(),
        };
        c.call(&["HELLO", "3"]);
        c
    }

    /// The socket, for reading raw bytes.
    pub fn into_socket(self) -> TcpStream {
        self.sock
    }

    /// Sends one command without waiting for its reply.
    pub fn send(&mut self, args: &[&str]) {
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.sock.write_all(req.as_bytes()).expect("send");
    }

    /// The next frame within `timeout`, push or reply.
    pub fn frame(&mut self, timeout: Duration) -> Option<redis_protocol::resp3::types::OwnedFrame> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some((f, n))) = redis_protocol::resp3::decode::complete::decode(&self.buf) {
                self.buf.drain(..n);
                return Some(f);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .ok()?;
            let mut b = [0u8; 65536];
            match self.sock.read(&mut b) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&b[..n]),
                Err(_) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                }
            }
        }
    }

    /// The next reply (pushes that arrive first are kept in `pushes`).
    pub fn reply(&mut self) -> redis_protocol::resp3::types::OwnedFrame {
        loop {
            let f = self
                .frame(Duration::from_secs(5))
                .expect("a reply within 5s");
            if matches!(f, redis_protocol::resp3::types::OwnedFrame::Push { .. }) {
                self.pushes.push_back(f);
            } else {
                return f;
            }
        }
    }

    /// Sends a command and returns its reply.
    pub fn call(&mut self, args: &[&str]) -> redis_protocol::resp3::types::OwnedFrame {
        self.send(args);
        self.reply()
    }

    /// Sends a command and returns its reply as text: a string's value, an error's
    /// message, an integer, or `nil`.
    pub fn text(&mut self, args: &[&str]) -> String {
        show(&self.call(args))
    }

    /// The next `invalidate` push within `timeout`: `Some(keys)`, or `Some(None)` for a
    /// flush of everything; `None` if none came.
    pub fn invalidation(&mut self, timeout: Duration) -> Option<Option<Vec<String>>> {
        use redis_protocol::resp3::types::OwnedFrame as F;
        let f = match self.pushes.pop_front() {
            Some(f) => f,
            None => self.frame(timeout)?,
        };
        let F::Push { data, .. } = f else {
            panic!("expected a push, got {f:?}");
        };
        assert!(
            matches!(&data[0], F::BlobString { data, .. } if data == b"invalidate"),
            "not an invalidate push: {data:?}"
        );
        Some(match &data[1] {
            F::Null => None,
            F::Array { data, .. } => Some(
                data.iter()
                    .map(|k| match k {
                        F::BlobString { data, .. } => String::from_utf8_lossy(data).into_owned(),
                        other => panic!("key {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("invalidate payload {other:?}"),
        })
    }
}

/// Sends one handshake line to a group port and returns the answer line.
pub fn ask_group(port: u16, line: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut out = Vec::new();
    let mut b = [0u8; 256];
    while !out.contains(&b'\n') {
        let n = s.read(&mut b).ok()?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[..n]);
    }
    Some(String::from_utf8_lossy(&out).trim_end().to_string())
}

/// The value of `name` in INFO text.
pub fn field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}
