//! TLS with real clients: redis-cli --tls and redis-py (ssl=True) with and without client
//! certificates, a plain client and an old TLS 1.1 client refused, a bad key refused at
//! start, and a stripe (two servers and a voter) whose group port speaks mutual TLS:
//! replication to the mirror, `terrace status`, and a SIGKILL failover.
//! Certificates are made in the test with rcgen: a CA, and leaf certificates for
//! 127.0.0.1 usable as server and client certificates.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};

use crate::util::{TestServer, free_port};

/// A CA and two leaf certificates signed by it, as PEM files in a temp dir.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "Terrace test CA");
        let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
        let issuer = Issuer::new(ca, ca_key);
        let write = |name: &str, text: String| {
            std::fs::write(dir.path().join(name), text).expect("write PEM");
        };
        write("ca.pem", ca_cert.pem());
        for leaf in ["server", "client"] {
            let key = KeyPair::generate().expect("key");
            let mut p = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
                .expect("params");
            p.distinguished_name
                .push(DnType::CommonName, format!("terrace {leaf}"));
            p.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let cert = p.signed_by(&key, &issuer).expect("sign");
            write(&format!("{leaf}.pem"), cert.pem());
            write(&format!("{leaf}.key"), key.serialize_pem());
        }
        Pki { dir }
    }

    pub(crate) fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The `tls:` section.
    pub(crate) fn yaml(&self, clients: bool, auth_clients: &str, cluster: bool) -> String {
        format!(
            "tls:\n  cert_file: {}\n  key_file: {}\n  ca_file: {}\n  clients: {clients}\n  auth_clients: {auth_clients}\n  cluster: {cluster}\n",
            self.path("server.pem"),
            self.path("server.key"),
            self.path("ca.pem"),
        )
    }

    /// redis-cli over TLS to `port`, with the client certificate when `cert`; `stdin`
    /// holds one command per line when `args` is empty.
    pub(crate) fn cli(&self, port: u16, cert: bool, args: &[&str], stdin: &str) -> Output {
        let mut c = crate::util::redis_cli();
        c.args(["--tls", "--cacert", &self.path("ca.pem")]);
        if cert {
            c.args(["--cert", &self.path("client.pem")]);
            c.args(["--key", &self.path("client.key")]);
        }
        c.args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .expect("redis-cli (tools/test installs redis-tools)");
        if let Some(mut i) = child.stdin.take() {
            let _ = i.write_all(stdin.as_bytes());
        }
        wait_output(child, Duration::from_secs(20))
    }

    /// One command through redis-cli with the client certificate; its stdout, trimmed.
    pub(crate) fn ask(&self, port: u16, args: &[&str]) -> String {
        let o = self.cli(port, true, args, "");
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }
}

/// Waits (bounded) for a child's output; kills it when it takes longer.
fn wait_output(mut child: Child, within: Duration) -> Output {
    let deadline = Instant::now() + within;
    while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = child.kill();
    child.wait_with_output().expect("child output")
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn redis_cli_and_redis_py_set_and_get_over_tls_with_client_certificates() {
    let pki = Pki::new();
    let s = TestServer::start_with(Some(&pki.yaml(true, "yes", false)), &[]);
    assert_eq!(pki.ask(s.port, &["SET", "tls:k", "v1"]), "OK");
    assert_eq!(pki.ask(s.port, &["GET", "tls:k"]), "v1");

    // auth_clients: yes (the default, as Redis's tls-auth-clients): no certificate, no
    // service.
    let o = pki.cli(s.port, false, &["GET", "tls:k"], "");
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("v1"),
        "{}",
        text(&o)
    );

    let script = format!(
        "import redis\n\
         r = redis.Redis(host='127.0.0.1', port={}, ssl=True, ssl_ca_certs='{}', ssl_certfile='{}', ssl_keyfile='{}', socket_timeout=10)\n\
         assert r.set('tls:py', 'from-py')\n\
         print(r.get('tls:py').decode(), r.get('tls:k').decode())\n",
        s.port,
        pki.path("ca.pem"),
        pki.path("client.pem"),
        pki.path("client.key"),
    );
    let o = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 (tools/test installs redis-py)");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "from-py v1",
        "{}",
        text(&o)
    );
    assert_eq!(pki.ask(s.port, &["GET", "tls:py"]), "from-py");
}

#[test]
fn auth_clients_optional_serves_clients_without_a_certificate() {
    let pki = Pki::new();
    let s = TestServer::start_with(Some(&pki.yaml(true, "optional", false)), &[]);
    let o = pki.cli(s.port, false, &["SET", "k", "anon"], "");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "OK",
        "{}",
        text(&o)
    );
    assert_eq!(pki.ask(s.port, &["GET", "k"]), "anon");
    // A certificate the CA did not sign is still refused.
    let other = Pki::new();
    let mut c = crate::util::redis_cli();
    c.args(["--tls", "--cacert", &pki.path("ca.pem")])
        .args(["--cert", &other.path("client.pem")])
        .args(["--key", &other.path("client.key")])
        .args(["-p", &s.port.to_string(), "GET", "k"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let o = wait_output(c.spawn().expect("redis-cli"), Duration::from_secs(20));
    assert!(
        !String::from_utf8_lossy(&o.stdout).contains("anon"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_plain_client_on_a_tls_port_gets_no_service_and_a_silent_one_is_dropped() {
    let pki = Pki::new();
    let s = TestServer::start_with(Some(&pki.yaml(true, "no", false)), &[]);
    let mut raw = s.raw();
    raw.write_all(b"*1\r\n$4\r\nPING\r\n").expect("write");
    let (got, closed) = crate::util::read_to_close(&mut raw);
    assert!(closed, "the server closes a connection that is not TLS");
    assert!(!String::from_utf8_lossy(&got).contains("PONG"), "{got:?}");
    // A client that never starts its handshake is closed after the handshake timeout
    // (10 s), not held for ever.
    let mut silent = s.raw();
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let started = Instant::now();
    let (_, closed) = crate::util::read_to_close(&mut silent);
    assert!(closed, "a silent client is closed");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "closed after {:?}",
        started.elapsed()
    );
    // The server still serves TLS clients.
    let o = pki.cli(s.port, false, &["PING"], "");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "PONG",
        "{}",
        text(&o)
    );
}

#[test]
fn tls_older_than_1_2_is_refused() {
    let pki = Pki::new();
    let s = TestServer::start_with(Some(&pki.yaml(true, "no", false)), &[]);
    let s_client = |version: &str| {
        let mut c = Command::new("openssl");
        c.args(["s_client", "-connect", &format!("127.0.0.1:{}", s.port)])
            .args([version, "-CAfile", &pki.path("ca.pem")])
            // OpenSSL 3 refuses TLS 1.1 itself at its default security level: level 0 makes
            // it really offer TLS 1.1, so what refuses it is the server.
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("openssl");
        drop(child.stdin.take());
        wait_output(child, Duration::from_secs(20))
    };
    let old = s_client("-tls1_1");
    let out = text(&old);
    assert!(!old.status.success(), "{out}");
    // No cipher was agreed: the handshake failed (rustls answers a protocol_version or
    // handshake_failure alert).
    assert!(out.contains("Cipher is (NONE)"), "{out}");
    assert!(out.contains("alert"), "{out}");
    // The same client at TLS 1.2 connects: the refusal above is about the version.
    let ok = s_client("-tls1_2");
    let out = text(&ok);
    assert!(ok.status.success(), "{out}");
    assert!(out.contains("TLSv1.2"), "{out}");
}

#[test]
fn a_key_that_does_not_fit_its_certificate_stops_the_start_with_the_field_named() {
    let pki = Pki::new();
    let yaml = pki
        .yaml(true, "yes", false)
        .replace("server.key", "client.key");
    let err = match TestServer::try_start_with(Some(&yaml), &[]) {
        Ok(_) => panic!("a server started with a key of another certificate"),
        Err(e) => e,
    };
    assert!(err.contains("tls.key_file"), "{err}");
    assert!(err.contains("does not fit"), "{err}");
}

/// Two servers and a voter with TLS on every port.
struct TlsStripe {
    pki: Pki,
    conf: PathBuf,
    ports: [u16; 2],
    groups: [u16; 2],
    voter_group: u16,
}

impl TlsStripe {
    fn new() -> TlsStripe {
        let pki = Pki::new();
        let d = pki.dir.path();
        let ports = [free_port(), free_port()];
        let groups = [free_port(), free_port()];
        let voter_group = free_port();
        let mut yaml = "cluster:\n  election_time: 1s\n  replica_timeout: 2s\n  stripes:\n    - name: s1\n      servers:\n".to_string();
        for i in 0..2 {
            yaml.push_str(&format!(
                "        - {{ name: m{i}, host: 127.0.0.1, port: {}, group_port: {}, data: {} }}\n",
                ports[i],
                groups[i],
                d.join(format!("m{i}")).display()
            ));
        }
        yaml.push_str(&format!(
            "  voters:\n    - {{ name: v, host: 127.0.0.1, group_port: {voter_group}, data: {} }}\n",
            d.join("v").display()
        ));
        yaml.push_str("caches:\n  - { name: e, consistency: eventual }\n  - { name: s, consistency: strong }\n");
        yaml.push_str(&pki.yaml(true, "yes", true));
        let conf = d.join("conf.yaml");
        std::fs::write(&conf, yaml).expect("config");
        TlsStripe {
            pki,
            conf,
            ports,
            groups,
            voter_group,
        }
    }

    fn start(&self, i: usize) -> TestServer {
        TestServer::start_named(&self.conf, &format!("m{i}"), self.ports[i])
    }

    fn voter(&self) -> Voter {
        let log = self.pki.dir.path().join("voter.log");
        let child = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(["voter", "-n", "v", "-f"])
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("spawn voter");
        let v = Voter { child, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !v.log_text().contains("ready on") {
            assert!(Instant::now() < deadline, "voter not up:\n{}", v.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        v
    }

    /// `terrace status --json` (TLS to every client and group port).
    fn status(&self) -> Vec<serde_json::Value> {
        let o = self.cli(&["status", "--json"]);
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
    }

    fn cli(&self, args: &[&str]) -> Output {
        let child = Command::new(env!("CARGO_BIN_EXE_terrace"))
            .args(args)
            .arg("-f")
            .arg(&self.conf)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("terrace cli");
        wait_output(child, Duration::from_secs(30))
    }

    /// Waits (bounded) until server `name` is in `state` according to `terrace status`.
    fn wait_state(&self, name: &str, state: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let list = self.status();
            if list
                .iter()
                .any(|m| m["server"] == name && m["state"] == state)
            {
                return;
            }
            assert!(Instant::now() < deadline, "{name} not {state}: {list:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A running `terrace voter`.
struct Voter {
    child: Child,
    log: PathBuf,
}

impl Voter {
    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Voter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- voter log ---\n{}", self.log_text());
        }
    }
}

fn readonly_get(pki: &Pki, port: u16, key: &str) -> String {
    let o = pki.cli(port, true, &[], &format!("READONLY\nGET {key}\n"));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_stripe_replicates_and_fails_over_over_mutual_tls_and_status_reads_it() {
    let st = TlsStripe::new();
    let _v = st.voter();
    let mut m0 = st.start(0);
    st.wait_state("m0", "ACTIVE-COORDINATOR", Duration::from_secs(30));
    let _m1 = st.start(1);
    st.wait_state("m1", "PASSIVE-STANDBY", Duration::from_secs(60));

    // The group port is mutual TLS: a plain peer gets no answer to its handshake line.
    let plain = crate::util::ask_group(st.groups[0], "HELLO");
    assert!(
        plain.as_deref().is_none_or(|l| !l.contains("PEER")),
        "{plain:?}"
    );
    assert!(
        crate::util::ask_group(st.voter_group, "HELLO")
            .as_deref()
            .is_none_or(|l| !l.contains("VOTER"))
    );

    assert_eq!(st.pki.ask(st.ports[0], &["SET", "e:k", "over-tls"]), "OK");
    assert_eq!(st.pki.ask(st.ports[0], &["SET", "s:k", "strong"]), "OK");
    let deadline = Instant::now() + Duration::from_secs(20);
    while readonly_get(&st.pki, st.ports[1], "e:k") != "OK\nover-tls" {
        assert!(
            Instant::now() < deadline,
            "the mirror did not get the value: {:?}",
            readonly_get(&st.pki, st.ports[1], "e:k")
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // `terrace status` speaks TLS to the client and group ports.
    let o = st.cli(&["status"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.lines()
            .any(|l| l.contains("m0") && l.contains("ACTIVE-COORDINATOR")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("m1") && l.contains("PASSIVE-STANDBY")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.contains("VOTER")), "{out}");

    // SIGKILL the active: the control plane (over TLS) promotes the mirror, which has
    // the strong write.
    m0.sigkill();
    let deadline = Instant::now() + Duration::from_secs(30);
    while st.pki.ask(st.ports[1], &["GET", "s:k"]) != "strong" {
        assert!(
            Instant::now() < deadline,
            "m1 did not take over: {:?}",
            st.pki.ask(st.ports[1], &["GET", "s:k"])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(st.pki.ask(st.ports[1], &["GET", "e:k"]), "over-tls");
}

#[test]
fn terrace_check_names_missing_tls_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("c.yaml");
    std::fs::write(
        &conf,
        "tls:\n  clients: true\n  cert_file: /nonexistent/s.pem\n  key_file: /nonexistent/s.key\n  ca_file: /nonexistent/ca.pem\n",
    )
    .expect("write");
    let o = Command::new(env!("CARGO_BIN_EXE_terrace"))
        .args(["check", "-f"])
        .arg(&conf)
        .output()
        .expect("terrace check");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("tls.cert_file: cannot read /nonexistent/s.pem"),
        "{err}"
    );
}

/// INFO field `name` of the server on `port`, over TLS.
fn info_field(pki: &Pki, port: u16, name: &str) -> Option<String> {
    crate::util::field(&pki.ask(port, &["INFO", "all"]), name)
}

#[test]
fn forwarding_between_stripes_speaks_tls_with_the_servers_certificate() {
    let pki = Pki::new();
    let ports = [free_port(), free_port()];
    let mut yaml = String::from("cluster:\n  stripes:\n");
    for (i, p) in ports.iter().enumerate() {
        yaml.push_str(&format!(
            "    - name: stripe{i}\n      servers:\n        - {{ name: s{i}, host: 127.0.0.1, port: {p}, group_port: {} }}\n",
            free_port()
        ));
    }
    yaml.push_str(&pki.yaml(true, "yes", true));
    let conf = pki.dir.path().join("conf.yaml");
    std::fs::write(&conf, yaml).expect("config");
    let servers: Vec<TestServer> = (0..2)
        .map(|i| TestServer::start_named(&conf, &format!("s{i}"), ports[i]))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for s in &servers {
        while info_field(&pki, s.port, "terrace_state").as_deref() != Some("ACTIVE-COORDINATOR") {
            assert!(Instant::now() < deadline, "{} not active", s.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A plain (not cluster-aware) redis-cli on s0: keys of s1's slots are forwarded there.
    let sets: String = (0..40).map(|i| format!("SET fw:{i} v{i}\n")).collect();
    let o = pki.cli(ports[0], true, &[], &sets);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| *l == "OK").count(),
        40,
        "{}",
        text(&o)
    );
    let sizes: Vec<u64> = ports
        .iter()
        .map(|&p| {
            // DBSIZE on a connection that asked for the slot map is the server's own count.
            let o = pki.cli(p, true, &[], "CLUSTER SLOTS\nDBSIZE\n");
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .last()
                .and_then(|l| l.trim().parse().ok())
                .unwrap_or(0)
        })
        .collect();
    assert!(
        sizes.iter().all(|&n| n > 0) && sizes.iter().sum::<u64>() == 40,
        "keys on each stripe: {sizes:?}"
    );
    // And back: every value read through s1.
    let gets: String = (0..40).map(|i| format!("GET fw:{i}\n")).collect();
    let o = pki.cli(ports[1], true, &[], &gets);
    let want: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    let got: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(got, want, "{}", text(&o));
}
