//! `terrace voter -f FILE -n NAME`: a control-plane member that holds no cache data. It
//! votes in elections and holds a copy of the cluster map, so a stripe of two servers plus
//! a voter keeps a majority when either server fails.
//!
//! ```text
//!  group port ─accept─▶ handshake line
//!     RAFT  ─▶ control-plane frames (cluster::control::net)
//!     HELLO ─▶ PEER NAME VOTER ... (what `terrace status` shows)
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::cluster::control::ControlPlane;
use crate::config::Config;

/// Runs voter `name` of `config` until SIGTERM or SIGINT.
pub async fn run(config: Config, name: &str) -> Result<(), String> {
    let v = config
        .cluster
        .voters
        .iter()
        .find(|v| v.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = config
                .cluster
                .voters
                .iter()
                .map(|v| v.name.as_str())
                .collect();
            format!("no voter named '{name}' in the config (voters: {names:?})")
        })?;
    let addr = format!("{}:{}", v.host, v.group_port);
    crate::tls::install(&config.tls)?;
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("could not listen on {addr}: {e}"))?;
    let cp = ControlPlane::start(&config.cluster, name, v.data.clone().map(PathBuf::from)).await?;
    tracing::info!("Terrace voter {name} ready on {addr} (control plane only, no data)");
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return Err("cannot install signal handlers".into());
    };
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let cp = cp.clone();
                    let name = name.to_string();
                    tokio::spawn(async move {
                        let stream = match crate::tls::accept(stream, crate::tls::Port::Group).await {
                            Ok(s) => s,
                            Err(e) => {
                                tracing::info!("voter connection from {peer}: TLS: {e}");
                                return;
                            }
                        };
                        if let Err(e) = handle(cp, &name, stream).await {
                            tracing::debug!("voter connection: {e}");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("voter {name} stops");
    let _ = cp.raft.shutdown().await;
    Ok(())
}

async fn handle(
    cp: Arc<ControlPlane>,
    name: &str,
    mut stream: crate::tls::Stream,
) -> Result<(), String> {
    let line = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        crate::replication::shipper::read_line(&mut stream),
    )
    .await
    .map_err(|_| "no handshake".to_string())??;
    match line.trim() {
        "RAFT" => crate::cluster::control::net::serve(cp, stream).await,
        "HELLO" => {
            let view = crate::replication::wire::PeerView {
                name: name.to_string(),
                state: "VOTER".into(),
                epoch: cp.term(),
                lsn: 0,
                was_active: false,
                index: 0,
            };
            stream
                .write_all(view.line().as_bytes())
                .await
                .map_err(|e| e.to_string())
        }
        other => {
            let _ = stream.write_all(b"-ERR unknown handshake\n").await;
            Err(format!("unknown handshake {other:?}"))
        }
    }
}
