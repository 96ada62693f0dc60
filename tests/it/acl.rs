//! ACL users and protected mode with real clients: the redis crate, redis-cli and
//! redis-py as users from the config (hashed passwords) and made by ACL SETUSER.

use std::process::Command;
use std::time::{Duration, Instant};

use redis::Value;

use crate::util::{TestServer, try_run};

fn hash(pw: &str) -> String {
    terrace::acl::user::hex(&terrace::acl::user::sha256(pw.as_bytes()))
}

/// alice: everything on the `events` cache only; reader: reads anywhere, no dangerous.
fn config() -> String {
    format!(
        "caches:\n  - {{ name: events, consistency: eventual }}\n  - {{ name: sessions, consistency: eventual }}\nsecurity:\n  users:\n    - {{ name: alice, rules: \"on #{} ~events:* &events.* +@all -@dangerous\" }}\n    - {{ name: reader, rules: \"on #{} ~* +@read -strlen +acl|whoami\" }}\n",
        hash("alice-pw"),
        hash("reader-pw"),
    )
}

async fn as_user(s: &TestServer, user: &str, pass: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(format!("redis://{user}:{pass}@127.0.0.1:{}/", s.port))
        .expect("client")
        .get_multiplexed_async_connection_with_config(&crate::util::patient())
        .await
        .expect("connect as user")
}

fn err_text<T: std::fmt::Debug>(r: redis::RedisResult<T>) -> String {
    let e = r.expect_err("an error reply");
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
        .trim()
        .to_string()
}

#[tokio::test]
async fn config_users_permissions_by_category_name_and_key_pattern() {
    let s = TestServer::start_with(Some(&config()), &[]);
    let mut alice = as_user(&s, "alice", "alice-pw").await;
    let mut admin = s.conn().await;
    try_run::<()>(&mut admin, &["SET", "sessions:1", "secret"])
        .await
        .unwrap();

    // Per-cache access: events:* read and write, sessions:* refused.
    try_run::<()>(&mut alice, &["SET", "events:1", "e"])
        .await
        .unwrap();
    assert_eq!(
        try_run::<String>(&mut alice, &["GET", "events:1"])
            .await
            .unwrap(),
        "e"
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut alice, &["GET", "sessions:1"]).await),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut alice, &["MSET", "events:2", "x", "sessions:2", "y"]).await),
        "NOPERM No permissions to access a key"
    );
    // MSET was refused as a whole.
    assert_eq!(
        try_run::<Value>(&mut admin, &["GET", "events:2"])
            .await
            .unwrap(),
        Value::Nil
    );
    // -@dangerous: FLUSHALL and KEYS refused by category.
    assert_eq!(
        err_text(try_run::<Value>(&mut alice, &["FLUSHALL"]).await),
        "NOPERM User alice has no permissions to run the 'flushall' command"
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut alice, &["CLIENT", "KILL", "ID", "1"]).await),
        "NOPERM User alice has no permissions to run the 'client|kill' command"
    );
    // A whole cache: CACHE.SIZE of her own, not of another.
    assert_eq!(
        try_run::<i64>(&mut alice, &["CACHE.SIZE", "events"])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut alice, &["CACHE.SIZE", "sessions"]).await),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(
        try_run::<String>(&mut alice, &["ACL", "WHOAMI"])
            .await
            .unwrap(),
        "alice"
    );
    // Channels: events.* only.
    assert_eq!(
        try_run::<i64>(&mut alice, &["PUBLISH", "events.new", "m"])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut alice, &["PUBLISH", "sessions.new", "m"]).await),
        "NOPERM No permissions to access a channel"
    );

    // reader: +@read but not STRLEN (by name), no writes.
    let mut reader = as_user(&s, "reader", "reader-pw").await;
    assert_eq!(
        try_run::<String>(&mut reader, &["GET", "sessions:1"])
            .await
            .unwrap(),
        "secret"
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut reader, &["STRLEN", "sessions:1"]).await),
        "NOPERM User reader has no permissions to run the 'strlen' command"
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut reader, &["SET", "k", "v"]).await),
        "NOPERM User reader has no permissions to run the 'set' command"
    );
    // The default user still has every permission.
    assert_eq!(
        try_run::<String>(&mut admin, &["ACL", "WHOAMI"])
            .await
            .unwrap(),
        "default"
    );
    try_run::<()>(&mut admin, &["SET", "anything", "v"])
        .await
        .unwrap();

    let list: Vec<String> = try_run(&mut admin, &["ACL", "LIST"]).await.unwrap();
    assert_eq!(
        list,
        vec![
            format!(
                "user alice on sanitize-payload #{} ~events:* &events.* +@all -@dangerous",
                hash("alice-pw")
            ),
            "user default on nopass sanitize-payload ~* &* +@all".to_string(),
            format!(
                "user reader on sanitize-payload #{} ~* resetchannels -@all +@read -strlen +acl|whoami",
                hash("reader-pw")
            ),
        ]
    );
    let users: Vec<String> = try_run(&mut admin, &["ACL", "USERS"]).await.unwrap();
    assert_eq!(users, ["alice", "default", "reader"]);
    // CLIENT LIST shows each connection's user.
    let clients: String = try_run(&mut admin, &["CLIENT", "LIST"]).await.unwrap();
    assert!(clients.contains(" user=alice "), "{clients}");
    assert!(clients.contains(" user=reader "), "{clients}");
}

#[tokio::test]
async fn redis_cli_as_a_config_user() {
    let s = TestServer::start_with(Some(&config()), &[]);
    let port = s.port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args([
                "-p",
                &port,
                "--user",
                "alice",
                "--pass",
                "alice-pw",
                "--no-auth-warning",
            ])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "events:a", "1"]), "OK");
    assert_eq!(cli(&["GET", "events:a"]), "1");
    assert_eq!(
        cli(&["GET", "sessions:a"]),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(cli(&["ACL", "WHOAMI"]), "alice");
    let out = Command::new("redis-cli")
        .args([
            "-p",
            &port,
            "--user",
            "alice",
            "--pass",
            "wrong",
            "--no-auth-warning",
            "PING",
        ])
        .output()
        .expect("redis-cli");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("WRONGPASS invalid username-password pair or user is disabled."),
        "{text}"
    );
}

#[tokio::test]
async fn setuser_getuser_and_redis_py_with_hello_3_auth() {
    let s = TestServer::start();
    let mut admin = s.conn().await;
    try_run::<()>(
        &mut admin,
        &[
            "ACL",
            "SETUSER",
            "bob",
            "on",
            ">bob-pw",
            "~cache:*",
            "&news.*",
            "+@read",
            "+@write",
            "+@connection",
            "+publish",
            "-flushdb",
            "+acl|whoami",
        ],
    )
    .await
    .unwrap();
    let user: Value = try_run(&mut admin, &["ACL", "GETUSER", "bob"])
        .await
        .unwrap();
    let text = format!("{user:?}");
    for want in [
        "on",
        &hash("bob-pw"),
        "~cache:*",
        "&news.*",
        "-@all +@read +@write +@connection +publish -flushdb +acl|whoami",
    ] {
        assert!(text.contains(want), "{want} in {text}");
    }
    assert_eq!(
        try_run::<Value>(&mut admin, &["ACL", "GETUSER", "nobody"])
            .await
            .unwrap(),
        Value::Nil
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut admin, &["ACL", "SETUSER", "bob", "+nosuch"]).await),
        "ERR Error in ACL SETUSER modifier '+nosuch': Unknown command or category name in ACL"
    );
    // DRYRUN says what bob may do without running it.
    assert_eq!(
        try_run::<String>(&mut admin, &["ACL", "DRYRUN", "bob", "SET", "cache:1", "v"])
            .await
            .unwrap(),
        "OK"
    );
    assert_eq!(
        try_run::<String>(&mut admin, &["ACL", "DRYRUN", "bob", "SET", "other", "v"])
            .await
            .unwrap(),
        "No permissions to access the 'other' key"
    );
    assert_eq!(
        try_run::<String>(&mut admin, &["ACL", "DRYRUN", "bob", "FLUSHDB"])
            .await
            .unwrap(),
        "User bob has no permissions to run the 'flushdb' command"
    );

    // redis-py with protocol=3 authenticates with HELLO 3 AUTH bob bob-pw.
    let script = format!(
        r#"
import redis
r = redis.Redis(port={port}, username="bob", password="bob-pw", protocol=3, socket_timeout=10)
h = r.execute_command("HELLO")
print({{(k.decode() if isinstance(k, bytes) else k): v for k, v in h.items()}}["proto"])
print(r.acl_whoami().decode())
r.set("cache:x", "1")
print(r.get("cache:x").decode())
for cmd in (("GET", "other"), ("FLUSHDB",), ("PUBLISH", "sports", "m")):
    try:
        r.execute_command(*cmd)
        print("allowed")
    except redis.exceptions.NoPermissionError as e:
        print("NOPERM", e)
print(r.publish("news.today", "m"))
try:
    redis.Redis(port={port}, username="bob", password="nope", protocol=3).ping()
except redis.exceptions.AuthenticationError as e:
    print("AUTHERR", e)
"#,
        port = s.port
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "3",
            "bob",
            "1",
            "NOPERM No permissions to access a key",
            "NOPERM User bob has no permissions to run the 'flushdb' command",
            "NOPERM No permissions to access a channel",
            "0",
            "AUTHERR invalid username-password pair or user is disabled.",
        ]
    );
}

#[tokio::test]
async fn wrongpass_disabled_user_and_changes_apply_to_connected_clients() {
    let s = TestServer::start();
    let mut admin = s.conn().await;
    try_run::<()>(
        &mut admin,
        &["ACL", "SETUSER", "carol", "on", ">pw", "~*", "+@all"],
    )
    .await
    .unwrap();
    let mut carol = as_user(&s, "carol", "pw").await;
    assert_eq!(
        try_run::<Value>(&mut carol, &["GET", "k"]).await.unwrap(),
        Value::Nil
    );
    // A rule changed now applies to carol's open connection.
    try_run::<()>(&mut admin, &["ACL", "SETUSER", "carol", "-get"])
        .await
        .unwrap();
    assert_eq!(
        err_text(try_run::<Value>(&mut carol, &["GET", "k"]).await),
        "NOPERM User carol has no permissions to run the 'get' command"
    );
    // Wrong password, unknown user, disabled user: the same WRONGPASS.
    let mut fresh = s.conn().await;
    let wrongpass = "WRONGPASS invalid username-password pair or user is disabled.";
    assert_eq!(
        err_text(try_run::<Value>(&mut fresh, &["AUTH", "carol", "bad"]).await),
        wrongpass
    );
    assert_eq!(
        err_text(try_run::<Value>(&mut fresh, &["AUTH", "nobody", "pw"]).await),
        wrongpass
    );
    try_run::<()>(&mut admin, &["ACL", "SETUSER", "carol", "off"])
        .await
        .unwrap();
    assert_eq!(
        err_text(try_run::<Value>(&mut fresh, &["AUTH", "carol", "pw"]).await),
        wrongpass
    );
    try_run::<()>(&mut admin, &["ACL", "SETUSER", "carol", "on"])
        .await
        .unwrap();
    try_run::<()>(&mut fresh, &["AUTH", "carol", "pw"])
        .await
        .unwrap();
    assert_eq!(
        try_run::<String>(&mut fresh, &["ACL", "WHOAMI"])
            .await
            .unwrap(),
        "carol"
    );
    // RESET goes back to the default user.
    assert_eq!(
        try_run::<String>(&mut fresh, &["RESET"]).await.unwrap(),
        "RESET"
    );
    assert_eq!(
        try_run::<String>(&mut fresh, &["ACL", "WHOAMI"])
            .await
            .unwrap(),
        "default"
    );
    // AUTH <password> with a nopass default user is Redis's configuration error.
    assert_eq!(
        err_text(try_run::<Value>(&mut fresh, &["AUTH", "x"]).await),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[tokio::test]
async fn denied_command_inside_multi_aborts_exec() {
    let s = TestServer::start_with(Some(&config()), &[]);
    let mut raw = s.raw();
    use std::io::Write;
    raw.write_all(b"AUTH alice alice-pw\r\nMULTI\r\nSET events:1 a\r\nGET sessions:1\r\nEXEC\r\nGET events:1\r\n")
        .unwrap();
    let expected = "+OK\r\n+OK\r\n+QUEUED\r\n-NOPERM No permissions to access a key\r\n-EXECABORT Transaction discarded because of previous errors.\r\n$-1\r\n";
    let got = crate::util::read_n(&mut raw, expected.len());
    assert_eq!(String::from_utf8_lossy(&got), expected);
    // A permission taken away between QUEUED and EXEC: that command fails in EXEC's reply.
    raw.write_all(b"MULTI\r\nSET events:1 b\r\nGET events:1\r\n")
        .unwrap();
    let expected = "+OK\r\n+QUEUED\r\n+QUEUED\r\n";
    assert_eq!(
        String::from_utf8_lossy(&crate::util::read_n(&mut raw, expected.len())),
        expected
    );
    let mut admin = s.conn().await;
    try_run::<()>(&mut admin, &["ACL", "SETUSER", "alice", "-get"])
        .await
        .unwrap();
    raw.write_all(b"EXEC\r\n").unwrap();
    let expected =
        "*2\r\n+OK\r\n-NOPERM User alice has no permissions to run the 'get' command\r\n";
    assert_eq!(
        String::from_utf8_lossy(&crate::util::read_n(&mut raw, expected.len())),
        expected
    );
}

#[tokio::test]
async fn deluser_closes_that_users_connections() {
    let s = TestServer::start();
    let mut admin = s.conn().await;
    try_run::<()>(
        &mut admin,
        &["ACL", "SETUSER", "dave", "on", ">pw", "~*", "+@all"],
    )
    .await
    .unwrap();
    let mut raw = s.raw();
    use std::io::Write;
    raw.write_all(b"AUTH dave pw\r\n").unwrap();
    assert_eq!(crate::util::read_n(&mut raw, 5), b"+OK\r\n");
    assert_eq!(
        err_text(try_run::<Value>(&mut admin, &["ACL", "DELUSER", "default"]).await),
        "ERR The 'default' user cannot be removed"
    );
    assert_eq!(
        try_run::<i64>(&mut admin, &["ACL", "DELUSER", "dave", "nobody"])
            .await
            .unwrap(),
        1
    );
    // dave's connection is closed by the server (EOF within the bound).
    let (rest, closed) = crate::util::read_to_close(&mut raw);
    assert!(closed && rest.is_empty(), "{rest:?} closed={closed}");
    assert_eq!(
        try_run::<Vec<String>>(&mut admin, &["ACL", "USERS"])
            .await
            .unwrap(),
        ["default"]
    );
}

#[tokio::test]
async fn setuser_closes_subscribers_to_channels_the_user_lost() {
    use std::io::Write;
    let s = TestServer::start();
    let mut admin = s.conn().await;
    let rules = [
        "ACL",
        "SETUSER",
        "sub",
        "on",
        ">pw",
        "resetchannels",
        "&news.*",
        "&chat",
        "+@all",
    ];
    try_run::<()>(&mut admin, &rules).await.unwrap();
    let subscribe = |what: &[u8], confirm: &[u8]| {
        let mut raw = s.raw();
        raw.write_all(b"AUTH sub pw\r\n").unwrap();
        assert_eq!(crate::util::read_n(&mut raw, 5), b"+OK\r\n");
        raw.write_all(what).unwrap();
        assert_eq!(crate::util::read_n(&mut raw, confirm.len()), confirm);
        raw
    };
    let mut news = subscribe(
        b"SUBSCRIBE news.1\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$6\r\nnews.1\r\n:1\r\n",
    );
    let mut pattern = subscribe(
        b"PSUBSCRIBE news.*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$6\r\nnews.*\r\n:1\r\n",
    );
    let mut chat = subscribe(
        b"SUBSCRIBE chat\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nchat\r\n:1\r\n",
    );
    // news.* goes: both news subscribers are closed; the chat subscriber keeps its channel.
    let fewer = ["ACL", "SETUSER", "sub", "resetchannels", "&chat"];
    try_run::<()>(&mut admin, &fewer).await.unwrap();
    for raw in [&mut news, &mut pattern] {
        let (_, closed) = crate::util::read_to_close(raw);
        assert!(closed, "a subscriber to a lost channel stays connected");
    }
    assert_eq!(
        try_run::<i64>(&mut admin, &["PUBLISH", "chat", "hi"])
            .await
            .unwrap(),
        1
    );
    let msg = b"*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$2\r\nhi\r\n";
    assert_eq!(crate::util::read_n(&mut chat, msg.len()), msg);
}

#[tokio::test]
async fn config_set_requirepass_sets_the_default_users_password() {
    let s = TestServer::start();
    let mut admin = s.conn().await;
    try_run::<()>(&mut admin, &["CONFIG", "SET", "requirepass", "sesame"])
        .await
        .unwrap();
    let mut raw = s.raw();
    use std::io::Write;
    raw.write_all(b"GET k\r\nAUTH sesame\r\nACL WHOAMI\r\n")
        .unwrap();
    let expected = "-NOAUTH Authentication required.\r\n+OK\r\n$7\r\ndefault\r\n";
    assert_eq!(
        String::from_utf8_lossy(&crate::util::read_n(&mut raw, expected.len())),
        expected
    );
    let list: Vec<String> = try_run(&mut admin, &["ACL", "LIST"]).await.unwrap();
    assert_eq!(
        list,
        [format!(
            "user default on sanitize-payload #{} ~* &* +@all",
            hash("sesame")
        )]
    );
}

#[test]
fn clear_text_passwords_in_the_config_are_refused() {
    let yaml = "security:\n  users:\n    - { name: eve, rules: \"on >plain ~* +@all\" }\n";
    let err = TestServer::try_start_with(Some(yaml), &[])
        .err()
        .expect("refused");
    assert!(err.contains("security.users[0].rules"), "{err}");
    assert!(err.contains("SHA-256"), "{err}");
    let yaml = "security:\n  users:\n    - { name: eve, rules: \"on #abc\" }\n";
    let err = TestServer::try_start_with(Some(yaml), &[])
        .err()
        .expect("refused");
    assert!(
        err.contains("The password hash must be exactly 64 characters"),
        "{err}"
    );
}

/// This machine's docker0 bridge address, when it has one: a non-loopback address a
/// test can both bind and connect to.
fn bridge_address() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "docker0"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let cidr = text
        .split_whitespace()
        .skip_while(|w| *w != "inet")
        .nth(1)?;
    Some(cidr.split('/').next()?.to_string())
}

/// Starts `terrace server` bound to `addr` only (the harness binds loopback); killed on
/// drop.
struct BridgeServer(std::process::Child);

impl Drop for BridgeServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_on(addr: &str, yaml: Option<&str>) -> (BridgeServer, u16, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port free on `addr` itself (the harness's free_port probes loopback only).
    let port = std::net::TcpListener::bind((addr, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_terrace"));
    cmd.args(["server", "--bind", addr, "--port", &port.to_string()]);
    if let Some(y) = yaml {
        let f = dir.path().join("conf.yaml");
        std::fs::write(&f, y).expect("config");
        cmd.arg("-f").arg(&f);
    }
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let server = BridgeServer(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect((addr, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "server on {addr}:{port} did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (server, port, dir)
}

#[test]
fn protected_mode_denies_non_loopback_clients_without_a_password() {
    let Some(addr) = bridge_address() else {
        eprintln!("SKIPPED: no docker0 address to test protected mode from a non-loopback source");
        return;
    };
    use std::io::Write;
    // No password: DENIED, then the connection is closed.
    let (_server, port, _dir) = start_on(&addr, None);
    // Wait out the readiness probes' own DENIED replies: a fresh connection.
    let mut s = std::net::TcpStream::connect((addr.as_str(), port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // (Nothing is written: the server closes at once, and a request it never read
    // would turn the close into a reset.)
    let (got, closed) = crate::util::read_to_close(&mut s);
    assert_eq!(String::from_utf8_lossy(&got), terrace::acl::DENIED);
    assert!(closed);
    assert!(terrace::acl::DENIED.starts_with("-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user."));

    // With a password: served, NOAUTH until AUTH.
    let (_server, port, _dir) = start_on(&addr, Some("security:\n  requirepass: pw\n"));
    let mut s = std::net::TcpStream::connect((addr.as_str(), port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"PING\r\nAUTH pw\r\nPING\r\n").expect("write");
    let expected = "-NOAUTH Authentication required.\r\n+OK\r\n+PONG\r\n";
    assert_eq!(
        String::from_utf8_lossy(&crate::util::read_n(&mut s, expected.len())),
        expected
    );

    // protected_mode: false serves without a password.
    let (_server, port, _dir) = start_on(&addr, Some("security:\n  protected_mode: false\n"));
    let mut s = std::net::TcpStream::connect((addr.as_str(), port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"PING\r\n").expect("write");
    assert_eq!(crate::util::read_n(&mut s, 7), b"+PONG\r\n");
}

#[tokio::test]
async fn categories_in_acl_cat_and_command_info() {
    let s = TestServer::start();
    let mut c = s.conn().await;
    let cats: Vec<String> = try_run(&mut c, &["ACL", "CAT"]).await.unwrap();
    assert_eq!(cats.len(), 21);
    assert!(cats.contains(&"keyspace".into()) && cats.contains(&"dangerous".into()));
    let dangerous: Vec<String> = try_run(&mut c, &["ACL", "CAT", "dangerous"]).await.unwrap();
    for want in [
        "flushall",
        "keys",
        "debug",
        "client|kill",
        "acl|setuser",
        "cache.clear",
    ] {
        assert!(
            dangerous.contains(&want.to_string()),
            "{want}: {dangerous:?}"
        );
    }
    assert!(!dangerous.contains(&"get".to_string()));
    assert_eq!(
        err_text(try_run::<Value>(&mut c, &["ACL", "CAT", "nosuch"]).await),
        "ERR Unknown category 'nosuch'"
    );
    let listed: Vec<String> = try_run(&mut c, &["COMMAND", "LIST", "FILTERBY", "ACLCAT", "hash"])
        .await
        .unwrap();
    assert!(listed.contains(&"hset".into()) && !listed.contains(&"set".into()));
    // COMMAND INFO's seventh field: the ACL categories.
    let info: Vec<Vec<Value>> = try_run(&mut c, &["COMMAND", "INFO", "get"]).await.unwrap();
    let cats = format!("{:?}", info[0][6]);
    for want in ["@read", "@string", "@fast"] {
        assert!(cats.contains(want), "{want} in {cats}");
    }
    assert!(!cats.contains("@write"), "{cats}");
    let pass: String = try_run(&mut c, &["ACL", "GENPASS"]).await.unwrap();
    assert_eq!(pass.len(), 64);
    assert!(pass.bytes().all(|b| b.is_ascii_hexdigit()));
    let short: String = try_run(&mut c, &["ACL", "GENPASS", "10"]).await.unwrap();
    assert_eq!(short.len(), 3);
}

/// Two stripes whose default user is off: forwarding and the CLI authenticate as
/// `security.peer_user` (nothing else would let them in), and a
/// command for another stripe is checked at the entry server for the client's user.
#[test]
fn forwarded_commands_are_checked_at_the_entry_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ports = [crate::util::free_port(), crate::util::free_port()];
    let yaml = format!(
        "cluster:\n  stripes:\n    - name: stripe1\n      servers:\n        - {{ name: s1, host: 127.0.0.1, port: {}, group_port: {} }}\n    - name: stripe2\n      servers:\n        - {{ name: s2, host: 127.0.0.1, port: {}, group_port: {} }}\n{}security:\n  peer_user: peer\n  peer_password: peer-pw\n  users:\n    - {{ name: default, rules: \"off\" }}\n    - {{ name: peer, rules: \"on #{} ~* &* +@all\" }}\n    - {{ name: alice, rules: \"on #{} ~events:* +@all -@dangerous\" }}\n",
        ports[0],
        crate::util::free_port(),
        ports[1],
        crate::util::free_port(),
        "caches:\n  - { name: events, consistency: eventual }\n  - { name: sessions, consistency: eventual }\n",
        hash("peer-pw"),
        hash("alice-pw"),
    );
    let conf = dir.path().join("conf.yaml");
    std::fs::write(&conf, yaml).expect("config");
    let servers: Vec<TestServer> = ["s1", "s2"]
        .iter()
        .zip(ports)
        .map(|(n, p)| TestServer::start_named(&conf, n, p))
        .collect();
    let conn = |port: u16, user: &str, pass: &str| {
        redis::Client::open(format!("redis://{user}:{pass}@127.0.0.1:{port}/"))
            .expect("client")
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect")
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for s in &servers {
        loop {
            let info: Option<String> = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(&mut conn(s.port, "peer", "peer-pw"))
                .ok();
            if info.is_some_and(|i| i.contains("cluster_state:ok")) {
                break;
            }
            assert!(Instant::now() < deadline, "cluster not ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let mut alice = conn(servers[0].port, "alice", "alice-pw");
    let mut admin = conn(servers[0].port, "peer", "peer-pw");
    for i in 0..20 {
        let k = format!("events:{i}");
        let () = redis::cmd("SET")
            .arg(&k)
            .arg(i)
            .query(&mut alice)
            .expect("alice SET events");
        let () = redis::cmd("SET")
            .arg(format!("sessions:{i}"))
            .arg(i)
            .query(&mut admin)
            .expect("admin SET");
        let e = redis::cmd("GET")
            .arg(format!("sessions:{i}"))
            .query::<Value>(&mut alice)
            .expect_err("NOPERM");
        assert_eq!(e.code(), Some("NOPERM"), "{e}");
    }
    // Some keys live on stripe2: they got there through a forwarding connection, which
    // authenticated as the peer user (DBSIZE would fan out: CLIENT LIST is local).
    let mut other = conn(servers[1].port, "peer", "peer-pw");
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut other)
        .expect("client list");
    assert!(clients.contains(" user=peer "), "{clients}");
    // The CLI authenticates as the peer user too: `terrace status` sees both actives.
    let out = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["status", "--timeout-ms", "2000", "-f"])
        .arg(&conf)
        .output()
        .expect("terrace status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("ACTIVE-COORDINATOR").count(), 2, "{text}");
}

#[tokio::test]
async fn acl_log_records_refusals_and_failed_auth() {
    use std::collections::HashMap;
    let s = TestServer::start_with(Some(&config()), &[]);
    let mut alice = as_user(&s, "alice", "alice-pw").await;
    for _ in 0..2 {
        let _ = try_run::<Value>(&mut alice, &["GET", "sessions:1"]).await;
    }
    let _ = try_run::<Value>(&mut alice, &["FLUSHALL"]).await;
    let _ = try_run::<Value>(&mut alice, &["AUTH", "alice", "wrong"]).await;
    let mut admin = s.conn().await;
    let log: Vec<HashMap<String, Value>> = try_run(&mut admin, &["ACL", "LOG"]).await.unwrap();
    let field = |e: &HashMap<String, Value>, k: &str| match e.get(k) {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        Some(Value::Int(n)) => n.to_string(),
        other => format!("{other:?}"),
    };
    let summary: Vec<(String, String, String, String)> = log
        .iter()
        .map(|e| {
            (
                field(e, "reason"),
                field(e, "object"),
                field(e, "username"),
                field(e, "count"),
            )
        })
        .collect();
    let t = |a: &str, b: &str, c: &str, d: &str| {
        (a.to_string(), b.to_string(), c.to_string(), d.to_string())
    };
    assert_eq!(
        summary,
        [
            t("auth", "AUTH", "alice", "1"),
            t("command", "flushall", "alice", "1"),
            t("key", "sessions:1", "alice", "2"),
        ]
    );
    assert!(field(&log[2], "client-info").contains("user=alice"));
    let one: Vec<Value> = try_run(&mut admin, &["ACL", "LOG", "1"]).await.unwrap();
    assert_eq!(one.len(), 1);
    let info: String = try_run(&mut admin, &["INFO", "stats"]).await.unwrap();
    for want in [
        "acl_access_denied_auth:1",
        "acl_access_denied_cmd:1",
        "acl_access_denied_key:2",
        "acl_access_denied_channel:0",
    ] {
        assert!(info.contains(want), "{want} in {info}");
    }
    try_run::<()>(&mut admin, &["ACL", "LOG", "RESET"])
        .await
        .unwrap();
    let empty: Vec<Value> = try_run(&mut admin, &["ACL", "LOG"]).await.unwrap();
    assert!(empty.is_empty());
}

/// ACL users over TLS: redis-cli and redis-py with a client certificate and a user; and
/// protected mode answers a TLS client from a non-loopback address inside TLS.
#[test]
fn acl_users_and_protected_mode_over_tls() {
    let pki = crate::tls::Pki::new();
    let yaml = format!("{}{}", pki.yaml(true, "optional", false), config());
    let s = TestServer::start_with(Some(&yaml), &[]);
    let cli = |args: &[&str]| {
        let mut all = vec!["--user", "alice", "--pass", "alice-pw", "--no-auth-warning"];
        all.extend_from_slice(args);
        let o = pki.cli(s.port, true, &all, "");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(cli(&["SET", "events:tls", "v"]), "OK");
    assert_eq!(
        cli(&["GET", "sessions:tls"]),
        "NOPERM No permissions to access a key"
    );
    assert_eq!(cli(&["ACL", "WHOAMI"]), "alice");
    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={}, ssl=True, ssl_ca_certs='{}', ssl_certfile='{}', ssl_keyfile='{}', username='alice', password='alice-pw', socket_timeout=10)\n\
         print(r.get('events:tls').decode())\n\
         try:\n    r.get('sessions:tls')\nexcept redis.exceptions.NoPermissionError as e:\n    print('NOPERM', e)\n",
        s.port,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "v\nNOPERM No permissions to access a key",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let Some(addr) = bridge_address() else {
        eprintln!("SKIPPED: no docker0 address to test protected mode over TLS");
        return;
    };
    let (_server, port, _dir) = start_on(&addr, Some(&pki.yaml(true, "optional", false)));
    // The certificate names 127.0.0.1: this client checks the chain, not the name.
    let script = format!(
        "import socket, ssl\n\
         ctx = ssl.create_default_context(cafile='{}')\n\
         ctx.check_hostname = False\n\
         s = ctx.wrap_socket(socket.create_connection(('{addr}', {port}), timeout=10))\n\
         data = b''\n\
         while True:\n    b = s.recv(4096)\n    if not b:\n        break\n    data += b\n\
         print(data.decode(), end='')\n",
        pki.path("ca.pem"),
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        terrace::acl::DENIED,
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
