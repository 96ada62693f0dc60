//! `terrace failover` and `terrace stop`: the seeds' planned operations, over the servers'
//! client ports (with AUTH from the config).
//!
//! - `failover --stripe S`: finds the stripe's active and sends it `FAILOVER` (to a named
//!   mirror with `--to`); the reply comes once the roles have swapped.
//! - `stop NAME`: refuses to stop an active that has no PASSIVE-STANDBY mirror (the stripe
//!   would go down and take its data with it) unless `--force`, like Terracotta's
//!   `stop-tc-server`. An active with one first hands over to it (a switchover), since
//!   mirrors do not take over by themselves yet. Then it sends `SHUTDOWN`.

use std::time::Duration;

use super::status::{ask, info_field};
use crate::config::Config;

/// How long the switchover before a `stop` of an active may take.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to answer INFO.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// What an operation did, for the CLI to print.
pub type Outcome = Result<String, String>;

fn client_addr(s: &crate::config::ServerConfig) -> String {
    format!("{}:{}", s.host, s.port)
}

/// The server of `st` that says it is active.
fn find_active<'a>(
    st: &'a crate::config::StripeConfig,
    pass: Option<&crate::config::Credentials>,
) -> Option<&'a crate::config::ServerConfig> {
    st.servers.iter().find(|s| {
        ask(&client_addr(s), pass, ASK_TIMEOUT, &["INFO", "terrace"])
            .ok()
            .and_then(|i| info_field(&i, "terrace_role"))
            .as_deref()
            == Some("active")
    })
}

/// Promotes a PASSIVE-STANDBY mirror of stripe `stripe` (the one named `to`, if given).
pub fn failover(config: &Config, stripe: &str, to: Option<&str>, timeout: Duration) -> Outcome {
    let creds = config.security.peer_credentials();
    let pass = creds.as_ref();
    let st = config
        .cluster
        .stripes
        .iter()
        .find(|s| s.name == stripe)
        .ok_or_else(|| format!("no stripe named '{stripe}' in the config"))?;
    let active = find_active(st, pass)
        .ok_or_else(|| format!("stripe '{stripe}' has no active server that answers"))?;
    let mut cmd = vec!["FAILOVER".to_string()];
    if let Some(name) = to {
        let target = st
            .servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| format!("no server named '{name}' in stripe '{stripe}'"))?;
        cmd.extend(["TO".into(), target.host.clone(), target.port.to_string()]);
    }
    cmd.extend(["TIMEOUT".into(), timeout.as_millis().max(1).to_string()]);
    // The server answers within its timeout; give the reply a little longer.
    let wait = timeout + Duration::from_secs(5);
    let args: Vec<&str> = cmd.iter().map(String::as_str).collect();
    ask(&client_addr(active), pass, wait, &args)
        .map_err(|e| format!("{} refused the failover: {e}", active.name))?;
    // Report who is active now.
    let now = find_active(st, pass).map_or_else(|| "(none answers yet)".into(), |s| s.name.clone());
    Ok(format!(
        "stripe {stripe}: {} handed over; active is now {now}",
        active.name
    ))
}

/// Stops server `name` with SHUTDOWN. An active hands over to a PASSIVE-STANDBY mirror
/// first; one without such a mirror is refused unless `force`.
pub fn stop(config: &Config, name: &str, force: bool, timeout: Duration) -> Outcome {
    let creds = config.security.peer_credentials();
    let pass = creds.as_ref();
    let (stripe, server) = config
        .cluster
        .stripes
        .iter()
        .find_map(|st| st.servers.iter().find(|s| s.name == name).map(|s| (st, s)))
        .ok_or_else(|| format!("no server named '{name}' in the config"))?;
    let addr = client_addr(server);
    let info = ask(&addr, pass, timeout, &["INFO", "terrace"])
        .map_err(|e| format!("{name} ({addr}) does not answer: {e}"))?;
    let role = info_field(&info, "terrace_role").unwrap_or_default();
    let standby: u64 = info_field(&info, "terrace_standby_mirrors")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut handed = String::new();
    if role == "active" && !force {
        if standby == 0 {
            return Err(format!(
                "{name} is the active of stripe {} and has no PASSIVE-STANDBY mirror: stopping \
                 it takes the stripe down. Start a mirror and wait for PASSIVE-STANDBY \
                 (terrace status), or stop it anyway with --force",
                stripe.name
            ));
        }
        // A mirror does not take over by itself (yet): hand the stripe over first, so
        // stopping the active never leaves the stripe without one.
        handed = failover(config, &stripe.name, None, FAILOVER_TIMEOUT)
            .map_err(|e| format!("not stopping {name}: the switchover failed: {e}"))?;
        handed.push_str("; ");
    }
    // SHUTDOWN closes the connection instead of replying.
    match ask(&addr, pass, timeout, &["SHUTDOWN"]) {
        Err(e) if e.starts_with("ERR") || e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") => {
            return Err(format!("{name} refused SHUTDOWN: {e}"));
        }
        _ => {}
    }
    Ok(format!("{handed}{name} is stopping"))
}

/// How long a stopping server may take to close its ports.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// The seeds' safe cluster shutdown: every mirror first, then the actives, each waited for
/// until its ports close. Before an active stops, the control plane (when there is one)
/// is given until `2 × replica_timeout` to take the stopped mirrors out of its in-sync
/// set, so only the active can be promoted at the restart. The actives then hold every
/// acknowledged write and their data directories say they were last active, so a restart
/// brings them back first (the restart order). Voters hold no data and keep running. A
/// server that does not answer is reported as an error (it may still be running).
pub fn shutdown(config: &Config, timeout: Duration) -> Outcome {
    let creds = config.security.peer_credentials();
    let pass = creds.as_ref();
    let mut list = super::status::status(config, timeout);
    // Give the ones that did not answer a second, longer chance before calling them down.
    if list.iter().any(|s| !s.is_up()) {
        let again = super::status::status(config, timeout * 3);
        for (s, a) in list.iter_mut().zip(again) {
            if !s.is_up() && a.is_up() {
                *s = a;
            }
        }
    }
    let group_addr = |name: &str| {
        config
            .cluster
            .stripes
            .iter()
            .flat_map(|st| &st.servers)
            .find(|s| s.name == name)
            .map(|s| format!("{}:{}", s.host, s.group_port()))
    };
    let servers = || list.iter().filter(|s| s.role.as_deref() != Some("voter"));
    let (actives, others): (Vec<_>, Vec<_>) = servers()
        .filter(|s| s.is_up())
        .partition(|s| s.role.as_deref() == Some("active"));
    let mut done = Vec::new();
    let mut notes = Vec::new();
    for (phase, group) in [("mirror", &others), ("active", &actives)] {
        if phase == "active" {
            let within = config.cluster.replica_timeout.0 * 2 + Duration::from_secs(1);
            for a in group.iter() {
                if !in_sync_alone(a, pass, timeout, within) {
                    notes.push(format!(
                        "{}'s in-sync set still named a stopped mirror after {}s (no control-plane majority?): start the actives first at the restart",
                        a.server,
                        within.as_secs()
                    ));
                }
            }
        }
        for s in group.iter() {
            match ask(&s.addr, pass, timeout, &["SHUTDOWN"]) {
                Err(e)
                    if e.starts_with("ERR")
                        || e.starts_with("NOAUTH")
                        || e.starts_with("WRONGPASS") =>
                {
                    return Err(format!(
                        "{} refused SHUTDOWN: {e}; stopped so far: {}",
                        s.server,
                        done.join(", ")
                    ));
                }
                _ => {}
            }
        }
        for s in group.iter() {
            let mut ports = vec![s.addr.clone()];
            ports.extend(group_addr(&s.server));
            let deadline = std::time::Instant::now() + STOP_WAIT;
            while ports
                .iter()
                .any(|p| crate::net::connect(p, Duration::from_millis(200)).is_ok())
            {
                if std::time::Instant::now() > deadline {
                    return Err(format!(
                        "{} ({}) still answers {}s after SHUTDOWN; stopped so far: {}",
                        s.server,
                        s.addr,
                        STOP_WAIT.as_secs(),
                        done.join(", ")
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            done.push(format!("{} ({phase} of {})", s.server, s.stripe));
        }
    }
    let silent: Vec<&str> = servers()
        .filter(|s| !s.is_up())
        .map(|s| s.server.as_str())
        .collect();
    let mut msg = format!("stopped, mirrors first: {}", done.join(", "));
    if !config.cluster.voters.is_empty() {
        msg.push_str("; voters keep running (they hold no data)");
    }
    for n in &notes {
        msg.push_str("; ");
        msg.push_str(n);
    }
    if silent.is_empty() {
        Ok(msg)
    } else {
        Err(format!(
            "{msg}; did not answer (down, or unreachable and still running: check): {}",
            silent.join(", ")
        ))
    }
}

/// Waits until `active`'s committed in-sync set is the active alone (true at once
/// without a control plane), at most `within`.
fn in_sync_alone(
    active: &super::status::ServerStatus,
    pass: Option<&crate::config::Credentials>,
    timeout: Duration,
    within: Duration,
) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        let set = ask(&active.addr, pass, timeout, &["INFO", "terrace"])
            .ok()
            .map(|i| info_field(&i, "control_plane_in_sync"));
        match set {
            Some(None) => return true,
            Some(Some(s)) if s == active.server => return true,
            _ if std::time::Instant::now() > deadline => return false,
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
