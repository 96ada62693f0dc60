//! TLS (rustls, TLS 1.2 and 1.3 only) for the client port and the group port, and the
//! stream types every connection uses whether it speaks TLS or not.
//!
//! Owns the certificates and the rustls configs built from `tls:`; it does not know what
//! travels over a connection.
//!
//! ```text
//!  client port  ─accept─▶ worker: handshake (HANDSHAKE_TIMEOUT) ─▶ Stream::Tls ─▶ connection
//!  group port   ─accept─▶ handshake, certificate required ─▶ Stream::Tls ─▶ shipper / raft
//!  to a peer    connect_group / connect_client (async) or net::connect_* (blocking):
//!               this server's certificate as the client certificate, the peer's checked
//!               against ca_file for the address's host (or tls.server_name)
//! ```
//! rustls implements no protocol older than TLS 1.2, so SSLv3, TLS 1.0 and 1.1 clients
//! fail in the handshake.
//!
//! The context is process-wide ([`install`] once at start, [`get`] anywhere): every
//! connection of a process uses the same identity, and it never changes while it runs.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::tls::{AuthClients, TlsConfig};

/// How long a new connection may take to finish its handshake: a client that connects
/// and says nothing must not hold a connection slot.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The rustls configs built from `tls:`.
pub struct Tls {
    /// For the client port, when `tls.clients`.
    clients: Option<TlsAcceptor>,
    /// For the group port (client certificate required), when `tls.cluster`.
    group: Option<TlsAcceptor>,
    /// For connections to peers: presents this server's certificate.
    connector: Arc<ClientConfig>,
    /// `tls.server_name`, checked in place of the address's host.
    server_name: Option<ServerName<'static>>,
}

static CONTEXT: OnceLock<Option<Arc<Tls>>> = OnceLock::new();

/// Builds the process's TLS context from `tls:` (nothing when TLS is off). Later calls
/// keep the first context.
pub fn install(cfg: &TlsConfig) -> Result<(), String> {
    if CONTEXT.get().is_some() {
        return Ok(());
    }
    let tls = if cfg.enabled() {
        Some(Arc::new(
            Tls::new(cfg).map_err(|(field, why)| format!("tls.{field}: {why}"))?,
        ))
    } else {
        None
    };
    let _ = CONTEXT.set(tls);
    Ok(())
}

/// The process's TLS context; `None` when TLS is off (or [`install`] was not called).
pub fn get() -> Option<&'static Arc<Tls>> {
    CONTEXT.get().and_then(Option::as_ref)
}

/// rustls's *ring* provider: it builds in seconds, where aws-lc-rs compiles a C library.
/// rustls 0.23.48 deprecates it only for lacking post-quantum key exchange; TLS 1.2/1.3
/// with its classical groups is what Redis clients speak today.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    std::fs::metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{path} holds no PEM certificate"));
    }
    Ok(certs)
}

impl Tls {
    /// Loads and checks the files of `cfg` (which has TLS on); an error names the field.
    pub fn new(cfg: &TlsConfig) -> Result<Tls, (&'static str, String)> {
        let field = |name: &'static str, v: &Option<String>| {
            v.clone().ok_or((name, "is required".to_string()))
        };
        let (cert, key, ca) = (
            field("cert_file", &cfg.cert_file)?,
            field("key_file", &cfg.key_file)?,
            field("ca_file", &cfg.ca_file)?,
        );
        let chain = read_certs(&cert).map_err(|e| ("cert_file", e))?;
        std::fs::metadata(&key).map_err(|e| ("key_file", format!("cannot read {key}: {e}")))?;
        let key_der = PrivateKeyDer::from_pem_file(&key).map_err(|e| {
            (
                "key_file",
                format!("cannot read a private key from {key}: {e}"),
            )
        })?;
        let provider = provider();
        rustls::sign::CertifiedKey::from_der(chain.clone(), key_der.clone_key(), &provider)
            .map_err(|e| ("key_file", format!("{key} does not fit {cert}: {e}")))?;
        let mut roots = RootCertStore::empty();
        for c in read_certs(&ca).map_err(|e| ("ca_file", e))? {
            roots
                .add(c)
                .map_err(|e| ("ca_file", format!("{ca}: bad CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);

        let server = |auth: AuthClients| -> Result<TlsAcceptor, (&'static str, String)> {
            let b = ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| ("cert_file", e.to_string()))?;
            let b = match auth {
                AuthClients::No => b.with_no_client_auth(),
                _ => {
                    let v = WebPkiClientVerifier::builder_with_provider(
                        roots.clone(),
                        provider.clone(),
                    );
                    let v = if auth == AuthClients::Optional {
                        v.allow_unauthenticated()
                    } else {
                        v
                    };
                    b.with_client_cert_verifier(v.build().map_err(|e| ("ca_file", e.to_string()))?)
                }
            };
            let c = b
                .with_single_cert(chain.clone(), key_der.clone_key())
                .map_err(|e| ("key_file", e.to_string()))?;
            Ok(TlsAcceptor::from(Arc::new(c)))
        };
        let clients = cfg.clients.then(|| server(cfg.auth_clients)).transpose()?;
        let group = cfg.cluster.then(|| server(AuthClients::Yes)).transpose()?;
        let connector = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ("cert_file", e.to_string()))?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key_der)
            .map_err(|e| ("key_file", e.to_string()))?;
        let server_name = match &cfg.server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .map_err(|e| ("server_name", format!("'{n}': {e}")))?,
            ),
            None => None,
        };
        Ok(Tls {
            clients,
            group,
            connector: Arc::new(connector),
            server_name,
        })
    }

    /// Whether the client port speaks TLS.
    pub fn on_client_port(&self) -> bool {
        self.clients.is_some()
    }

    /// Whether the group port speaks TLS.
    pub fn on_group_port(&self) -> bool {
        self.group.is_some()
    }

    /// The name a peer at `addr` (`host:port`) must have a certificate for.
    fn name_for(&self, addr: &str) -> io::Result<ServerName<'static>> {
        if let Some(n) = &self.server_name {
            return Ok(n.clone());
        }
        let host = match addr.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => addr,
        };
        ServerName::try_from(host.to_string())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host}: {e}")))
    }

    /// The rustls config for connections to peers (blocking side).
    fn client_config(&self) -> Arc<ClientConfig> {
        self.connector.clone()
    }
}

/// Which port of a peer a connection goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// The client port (TLS when `tls.clients`).
    Client,
    /// The group port (TLS when `tls.cluster`).
    Group,
}

/// The process's context when `port` speaks TLS.
fn context_for(port: Port) -> Option<&'static Arc<Tls>> {
    get().filter(|t| match port {
        Port::Client => t.on_client_port(),
        Port::Group => t.on_group_port(),
    })
}

/// Accepts a connection on `port`: the TLS handshake (within [`HANDSHAKE_TIMEOUT`]) when
/// that port speaks TLS, nothing otherwise.
pub async fn accept(tcp: TcpStream, port: Port) -> io::Result<Stream> {
    let acceptor = match (get(), port) {
        (Some(t), Port::Client) => t.clients.as_ref(),
        (Some(t), Port::Group) => t.group.as_ref(),
        (None, _) => None,
    };
    let Some(acceptor) = acceptor else {
        return Ok(Stream::Plain(tcp));
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => Ok(Stream::Tls(Box::new(s.into()))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "no TLS handshake in time",
        )),
    }
}

/// Connects to a peer's `port` at `addr` within `timeout` (handshake included), speaking
/// TLS when that port does.
pub async fn connect(addr: &str, port: Port, timeout: Duration) -> io::Result<Stream> {
    let fut = async {
        let tcp = TcpStream::connect(addr).await?;
        let _ = tcp.set_nodelay(true);
        let Some(t) = context_for(port) else {
            return Ok(Stream::Plain(tcp));
        };
        let s = TlsConnector::from(t.connector.clone())
            .connect(t.name_for(addr)?, tcp)
            .await?;
        Ok(Stream::Tls(Box::new(s.into())))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "timed out"))?
}

/// A blocking connection (the CLI, the mirror's role thread): TLS when `port` speaks it,
/// the handshake done here under the socket's timeouts.
pub fn wrap_blocking(
    mut tcp: std::net::TcpStream,
    addr: &str,
    port: Port,
) -> io::Result<SyncStream> {
    let Some(t) = context_for(port) else {
        return Ok(SyncStream::Plain(tcp));
    };
    let mut conn = rustls::ClientConnection::new(t.client_config(), t.name_for(addr)?)
        .map_err(io::Error::other)?;
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp)? == (0, 0) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(SyncStream::Tls(Box::new(rustls::StreamOwned::new(
        conn, tcp,
    ))))
}

/// A connection, plain or TLS (enum dispatch: the plain path costs one branch).
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, either side.
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Stream::Plain(_) => "plain",
            Stream::Tls(_) => "tls",
        };
        write!(f, "Stream({kind}, {:?})", self.tcp().peer_addr().ok())
    }
}

impl Stream {
    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }

    /// Writes all of `buf` onto the socket. Shadows `AsyncWriteExt::write_all`, which
    /// for TLS may leave the last record in rustls's buffer until the next write: a reply
    /// must not wait for the next request.
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }

    /// Splits into halves that a reader task and a writer task can own. Plain TCP keeps
    /// tokio's lock-free halves.
    pub fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

/// Delegates every poll to the variant's stream.
macro_rules! delegate {
    ($t:ident, $($v:ident),+) => {
        impl AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($t::$v(s) => Pin::new(s).poll_read(cx, buf),)+
                }
            }
        }
    };
    (write $t:ident, $($v:ident),+) => {
        impl AsyncWrite for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($t::$v(s) => Pin::new(s).poll_write(cx, buf),)+
                }
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[io::IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                match self.get_mut() {
                    $($t::$v(s) => Pin::new(s).poll_write_vectored(cx, bufs),)+
                }
            }

            fn is_write_vectored(&self) -> bool {
                match self {
                    $($t::$v(s) => s.is_write_vectored(),)+
                }
            }

            fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($t::$v(s) => Pin::new(s).poll_flush(cx),)+
                }
            }

            fn poll_shutdown(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                match self.get_mut() {
                    $($t::$v(s) => Pin::new(s).poll_shutdown(cx),)+
                }
            }
        }
    };
}

delegate!(Stream, Plain, Tls);
delegate!(write Stream, Plain, Tls);

/// The read half of a [`Stream`].
pub enum ReadHalf {
    /// Plain TCP.
    Plain(tokio::net::tcp::OwnedReadHalf),
    /// TLS.
    Tls(tokio::io::ReadHalf<tokio_rustls::TlsStream<TcpStream>>),
}

/// The write half of a [`Stream`].
pub enum WriteHalf {
    /// Plain TCP.
    Plain(tokio::net::tcp::OwnedWriteHalf),
    /// TLS.
    Tls(tokio::io::WriteHalf<tokio_rustls::TlsStream<TcpStream>>),
}

impl WriteHalf {
    /// Writes all of `buf` onto the socket (see [`Stream::write_all`]).
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        match self {
            WriteHalf::Plain(s) => s.write_all(buf).await,
            WriteHalf::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }
}

delegate!(ReadHalf, Plain, Tls);
delegate!(write WriteHalf, Plain, Tls);

/// A blocking connection, plain or TLS.
pub enum SyncStream {
    /// Plain TCP.
    Plain(std::net::TcpStream),
    /// TLS over TCP (client side).
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>),
}

impl SyncStream {
    /// The TCP socket underneath (for timeouts and `TCP_NODELAY`).
    pub fn tcp(&self) -> &std::net::TcpStream {
        match self {
            SyncStream::Plain(s) => s,
            SyncStream::Tls(s) => s.get_ref(),
        }
    }
}

impl io::Read for SyncStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            SyncStream::Plain(s) => s.read(buf),
            SyncStream::Tls(s) => s.read(buf),
        }
    }
}

impl io::Write for SyncStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            SyncStream::Plain(s) => s.write(buf),
            SyncStream::Tls(s) => {
                // Onto the socket now: a caller that writes and then waits for an answer
                // must not leave its request in rustls's buffer.
                let n = s.write(buf)?;
                s.flush()?;
                Ok(n)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            SyncStream::Plain(s) => s.flush(),
            SyncStream::Tls(s) => s.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for 127.0.0.1 and its key, PEM, plus another key.
    fn files(dir: &std::path::Path) -> TlsConfig {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let other = rcgen::KeyPair::generate().expect("key");
        let p = |n: &str| dir.join(n).display().to_string();
        std::fs::write(p("c.pem"), cert.pem()).expect("write");
        std::fs::write(p("k.pem"), key.serialize_pem()).expect("write");
        std::fs::write(p("other.pem"), other.serialize_pem()).expect("write");
        TlsConfig {
            cert_file: Some(p("c.pem")),
            key_file: Some(p("k.pem")),
            ca_file: Some(p("c.pem")),
            clients: true,
            ..TlsConfig::default()
        }
    }

    #[test]
    fn a_key_of_another_certificate_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = files(dir.path());
        assert!(Tls::new(&cfg).is_ok());
        cfg.key_file = Some(dir.path().join("other.pem").display().to_string());
        let Err((field, why)) = Tls::new(&cfg) else {
            panic!("a mismatched key was accepted");
        };
        assert_eq!(field, "key_file");
        assert!(why.contains("does not fit"), "{why}");
        // A certificate file that is not PEM is named too.
        cfg.cert_file = cfg.key_file.clone();
        let Err((field, _)) = Tls::new(&cfg) else {
            panic!("a key file was taken for a certificate");
        };
        assert_eq!(field, "cert_file");
    }

    #[test]
    fn peers_are_checked_by_address_host_or_server_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = files(dir.path());
        let t = Tls::new(&cfg).expect("tls");
        assert_eq!(
            t.name_for("127.0.0.1:7001").expect("name"),
            ServerName::try_from("127.0.0.1").expect("ip")
        );
        assert_eq!(
            t.name_for("[::1]:7001").expect("name"),
            ServerName::try_from("::1").expect("ip")
        );
        cfg.server_name = Some("cache.internal".into());
        let t = Tls::new(&cfg).expect("tls");
        assert_eq!(
            t.name_for("10.0.0.5:7001").expect("name"),
            ServerName::try_from("cache.internal").expect("dns")
        );
    }
}
