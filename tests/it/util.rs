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

/// A free loopback port: bind port 0, read it, release it.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl TestServer {
    /// Dev mode (embedded config) on a free port.
    pub fn start() -> TestServer {
        TestServer::start_with(None, &[])
    }

    /// With a config file body (written to a temp dir) and extra arguments.
    pub fn start_with(yaml: Option<&str>, extra: &[&str]) -> TestServer {
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("tempdir");
            let port = free_port();
            let log = dir.path().join("terrace.log");
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_terrace"));
            cmd.arg("server")
                .arg("--port")
                .arg(port.to_string())
                .args(extra);
            if let Some(y) = yaml {
                let f = dir.path().join("conf.yaml");
                std::fs::write(&f, y).expect("write config");
                cmd.arg("-f").arg(&f);
            }
            let logf = std::fs::File::create(&log).expect("log file");
            let child = cmd
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
            if s.wait_ready(Duration::from_secs(10)) {
                return s;
            }
            // Port taken between probe and bind: try another.
            s.kill();
        }
        panic!("terrace did not start");
    }

    fn wait_ready(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return false;
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

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }

    pub async fn conn3(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("{}?protocol=resp3", self.url()))
            .expect("client")
            .get_multiplexed_async_connection()
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
        while Instant::now() < deadline {
            if let Ok(Some(st)) = child.try_wait() {
                self.child = None;
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
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
