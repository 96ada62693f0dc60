//! Client-side caching commands (CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO): the
//! CLIENT container parses them here. The tracking table and delivery live in
//! `store::tracking` and `server::tracking`.

use bytes::Bytes;

use super::CmdError;
use super::ctx::ExecCtx;
use crate::protocol::{Args, Reply};
use crate::server::tracking::{Mode, overlaps};

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`:
/// `None` for OFF.
pub fn parse_tracking(args: &mut Args<'_>) -> Result<Option<Mode>, CmdError> {
    let on = super::client::on_off(args)?;
    let mut m = Mode::default();
    while !args.is_empty() {
        match args.keyword()?.as_str() {
            "REDIRECT" => {
                let id = args.i64()?;
                m.redirect = u64::try_from(id).map_err(|_| {
                    CmdError::err("The client ID you want redirect to does not exist")
                })?;
            }
            "PREFIX" => {
                let p = args.bytes()?;
                if let Some(o) = m.prefixes.iter().find(|o| overlaps(o, p)) {
                    return Err(CmdError::err(format!(
                        "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                        String::from_utf8_lossy(p),
                        String::from_utf8_lossy(o)
                    )));
                }
                m.prefixes.push(Bytes::copy_from_slice(p));
            }
            "BCAST" => m.bcast = true,
            "OPTIN" => m.optin = true,
            "OPTOUT" => m.optout = true,
            "NOLOOP" => m.noloop = true,
            _ => return Err(CmdError::Syntax),
        }
    }
    if !on {
        return Ok(None);
    }
    if !m.bcast && !m.prefixes.is_empty() {
        return Err(CmdError::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if m.bcast && (m.optin || m.optout) {
        return Err(CmdError::err(
            "OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if m.optin && m.optout {
        return Err(CmdError::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    Ok(Some(m))
}

/// `CLIENT CACHING YES|NO`.
pub fn parse_caching(args: &mut Args<'_>) -> Result<bool, CmdError> {
    match args.keyword()?.as_str() {
        "YES" => Ok(true),
        "NO" => Ok(false),
        _ => Err(CmdError::Syntax),
    }
}

/// CLIENT TRACKING: turns tracking on (or changes its options) or off.
pub fn tracking(ctx: &mut ExecCtx<'_>, mode: Option<Mode>) -> Result<Reply, CmdError> {
    let Some(mode) = mode else {
        crate::server::tracking::stop(ctx.server, ctx.client);
        return Ok(Reply::Ok);
    };
    let me = ctx.client.handle.clone();
    let clients = &ctx.server.clients;
    let mode = ctx
        .server
        .tracking
        .enable(&me, mode, |id| clients.get(id))
        .map_err(|e| CmdError::err(e.to_string()))?;
    ctx.client.tracking = Some(mode);
    Ok(Reply::Ok)
}

/// CLIENT CACHING: whether the next command's reads are tracked (OPTIN / OPTOUT).
pub fn caching(ctx: &mut ExecCtx<'_>, yes: bool) -> Result<Reply, CmdError> {
    let Some(m) = &ctx.client.tracking else {
        return Err(not_opt());
    };
    if !m.optin && !m.optout {
        return Err(not_opt());
    }
    if yes && !m.optin {
        return Err(CmdError::err(
            "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
        ));
    }
    if !yes && !m.optout {
        return Err(CmdError::err(
            "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
        ));
    }
    ctx.client.caching = Some(yes);
    Ok(Reply::Ok)
}

fn not_opt() -> CmdError {
    CmdError::err(
        "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
    )
}

/// CLIENT GETREDIR: -1 when not tracking, 0 without REDIRECT, else the target's id.
pub fn getredir(ctx: &ExecCtx<'_>) -> Reply {
    Reply::Int(
        ctx.client
            .tracking
            .as_ref()
            .map_or(-1, |m| m.redirect as i64),
    )
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis 7 answers.
pub fn trackinginfo(ctx: &ExecCtx<'_>) -> Reply {
    let c = &ctx.client;
    let mut flags = Vec::new();
    let (redirect, mut prefixes) = match &c.tracking {
        None => {
            flags.push("off");
            (-1, Vec::new())
        }
        Some(m) => {
            flags.push("on");
            for (set, name) in [
                (m.bcast, "bcast"),
                (m.optin, "optin"),
                (m.optout, "optout"),
                (m.optin && c.caching == Some(true), "caching-yes"),
                (m.optout && c.caching == Some(false), "caching-no"),
                (m.noloop, "noloop"),
            ] {
                if set {
                    flags.push(name);
                }
            }
            let broken = c
                .handle
                .tracking
                .lock()
                .as_ref()
                .is_some_and(|t| t.is_broken());
            if broken {
                flags.push("broken_redirect");
            }
            (m.redirect as i64, m.prefixes.clone())
        }
    };
    prefixes.sort();
    Reply::Map(vec![
        (
            Reply::bulk("flags"),
            Reply::Set(flags.into_iter().map(Reply::bulk).collect()),
        ),
        (Reply::bulk("redirect"), Reply::Int(redirect)),
        (
            Reply::bulk("prefixes"),
            Reply::Array(prefixes.into_iter().map(Reply::Bulk).collect()),
        ),
    ])
}
