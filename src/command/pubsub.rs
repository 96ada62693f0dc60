//! Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::server::{Client, Shared};

/// Channels (0) or patterns (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel = 0,
    Pattern = 1,
}

fn confirm(what: &'static str, name: Option<&[u8]>, c: &Client) -> Reply {
    let total = c.subscribed.iter().map(|s| s.len()).sum::<usize>();
    Reply::Push(vec![
        Reply::bulk(what),
        name.map_or(Reply::Nil, Reply::bulk),
        Reply::Int(total as i64),
    ])
}

fn publish_counts(c: &Client) {
    for (i, s) in c.subscribed.iter().enumerate() {
        c.handle.subscriptions[i].store(s.len(), Ordering::Relaxed);
    }
}

fn subscribe(ctx: &mut ExecCtx<'_>, kind: Kind, names: Vec<&[u8]>) -> Reply {
    let c = &mut *ctx.client;
    let what = match kind {
        Kind::Channel => "subscribe",
        Kind::Pattern => "psubscribe",
    };
    let mut replies = Vec::with_capacity(names.len());
    for n in names {
        if c.subscribed[kind as usize].insert(Bytes::copy_from_slice(n)) {
            match kind {
                Kind::Channel => ctx.server.pubsub.subscribe(n, &c.handle),
                Kind::Pattern => ctx.server.pubsub.psubscribe(n, &c.handle),
            }
        }
        replies.push(confirm(what, Some(n), c));
    }
    publish_counts(c);
    Reply::Many(replies)
}

fn unsubscribe(shared: &Shared, c: &mut Client, kind: Kind, names: Vec<Bytes>) -> Reply {
    let what = match kind {
        Kind::Channel => "unsubscribe",
        Kind::Pattern => "punsubscribe",
    };
    let names = if names.is_empty() {
        c.subscribed[kind as usize].iter().cloned().collect()
    } else {
        names
    };
    if names.is_empty() {
        return confirm(what, None, c);
    }
    let mut replies = Vec::with_capacity(names.len());
    for n in names {
        if c.subscribed[kind as usize].remove(&n) {
            match kind {
                Kind::Channel => shared.pubsub.unsubscribe(&n, c.id()),
                Kind::Pattern => shared.pubsub.punsubscribe(&n, c.id()),
            }
        }
        replies.push(confirm(what, Some(&n), c));
    }
    publish_counts(c);
    Reply::Many(replies)
}

/// Drops every subscription of `client` (RESET, disconnect).
pub fn unsubscribe_all(shared: &Shared, client: &mut Client) {
    if client.in_pubsub() {
        unsubscribe(shared, client, Kind::Channel, Vec::new());
        unsubscribe(shared, client, Kind::Pattern, Vec::new());
    }
}

/// `SUBSCRIBE channel [channel ...]`
#[derive(Debug)]
pub struct Subscribe<'a>(Vec<&'a [u8]>);

impl<'a> Exec<'a> for Subscribe<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Subscribe(args.rest()))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(subscribe(ctx, Kind::Channel, self.0))
    }
}

/// `PSUBSCRIBE pattern [pattern ...]`
#[derive(Debug)]
pub struct PSubscribe<'a>(Vec<&'a [u8]>);

impl<'a> Exec<'a> for PSubscribe<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(PSubscribe(args.rest()))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(subscribe(ctx, Kind::Pattern, self.0))
    }
}

/// `UNSUBSCRIBE [channel ...]`
#[derive(Debug)]
pub struct Unsubscribe<'a>(Vec<&'a [u8]>);

impl<'a> Exec<'a> for Unsubscribe<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Unsubscribe(args.rest()))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let names = self.0.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        Ok(unsubscribe(ctx.server, ctx.client, Kind::Channel, names))
    }
}

/// `PUNSUBSCRIBE [pattern ...]`
#[derive(Debug)]
pub struct PUnsubscribe<'a>(Vec<&'a [u8]>);

impl<'a> Exec<'a> for PUnsubscribe<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(PUnsubscribe(args.rest()))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let names = self.0.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        Ok(unsubscribe(ctx.server, ctx.client, Kind::Pattern, names))
    }
}

/// `PUBLISH channel message`: the number of clients that received it.
#[derive(Debug)]
pub struct Publish<'a> {
    channel: &'a [u8],
    message: &'a [u8],
}

impl<'a> Exec<'a> for Publish<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Publish {
            channel: args.bytes()?,
            message: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let n = ctx.server.pubsub.publish(self.channel, self.message);
        Ok(Reply::Int(n as i64))
    }
}

/// `PUBSUB CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT | HELP`
#[derive(Debug)]
pub enum PubSubCmd<'a> {
    /// Active channels.
    Channels(Option<&'a [u8]>),
    /// Subscriber counts.
    NumSub(Vec<&'a [u8]>),
    /// Active patterns.
    NumPat,
    /// HELP.
    Help,
}

/// PUBSUB's subcommands.
pub static SUBS: &[CommandSpec] = &[
    CommandSpec::new(
        "pubsub|channels",
        -2,
        "pubsub",
        "2.8.0",
        "Returns the active channels.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "pubsub|numsub",
        -2,
        "pubsub",
        "2.8.0",
        "Returns a count of subscribers to channels.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "pubsub|numpat",
        2,
        "pubsub",
        "2.8.0",
        "Returns a count of unique pattern subscriptions.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "pubsub|help",
        2,
        "pubsub",
        "6.2.0",
        "Returns helpful text about the different subcommands.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
];

impl<'a> Exec<'a> for PubSubCmd<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        let sub = args.bytes()?;
        Ok(
            match String::from_utf8_lossy(sub).to_ascii_uppercase().as_str() {
                "CHANNELS" => {
                    let p = args.next_opt();
                    args.end()?;
                    PubSubCmd::Channels(p)
                }
                "NUMSUB" => PubSubCmd::NumSub(args.rest()),
                "NUMPAT" => PubSubCmd::NumPat,
                "HELP" => PubSubCmd::Help,
                _ => {
                    return Err(CmdError::UnknownSubcommand {
                        cmd: "PUBSUB",
                        sub: super::lossy(sub, 128),
                    });
                }
            },
        )
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let ps = &ctx.server.pubsub;
        Ok(match self {
            PubSubCmd::Channels(p) => Reply::bulks(ps.channels(p)),
            PubSubCmd::NumSub(chs) => Reply::Array(
                chs.into_iter()
                    .flat_map(|c| [Reply::bulk(c), Reply::Int(ps.numsub(c) as i64)])
                    .collect(),
            ),
            PubSubCmd::NumPat => Reply::Int(ps.numpat() as i64),
            PubSubCmd::Help => super::keys::help(
                "PUBSUB",
                &[
                    "CHANNELS [<pattern>]",
                    "    Return the currently active channels matching a <pattern> (default: '*').",
                    "NUMPAT",
                    "    Return number of subscriptions to patterns.",
                    "NUMSUB [<channel> ...]",
                    "    Return the number of subscribers for the specified channels, excluding",
                    "    pattern subscriptions(default: no channels).",
                ],
            ),
        })
    }
}
