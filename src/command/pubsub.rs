//! Pub/sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH, PUBSUB, the
//! sharded SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH (Redis 7.0), and the server-to-server
//! PUBSUB.RELAY.
//!
//! In a cluster of several servers PUBLISH is delivered on every server (here, then
//! relayed to every other server), as in Redis Cluster; SPUBLISH on every server of the
//! stripe that owns the channel's slot (routing sends it there like a key). Both reply
//! with the number of clients that received the message on the server that ran them, as
//! Redis Cluster does: receivers on other servers are not counted.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::ctx::ExecCtx;
use super::spec::{CommandSpec, Flags};
use super::{CmdError, Exec};
use crate::protocol::{Args, Reply};
use crate::server::pubsub::Delivery;
use crate::server::{Client, Shared};

/// Channels (0), patterns (1) or shard channels (2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Channel = 0,
    Pattern = 1,
    Shard = 2,
}

/// A (un)subscribe confirmation. Its count is Redis 7's: channels plus patterns for
/// (P)(UN)SUBSCRIBE, shard channels alone for S(UN)SUBSCRIBE.
fn confirm(what: &'static str, kind: Kind, name: Option<&[u8]>, c: &Client) -> Reply {
    let total = match kind {
        Kind::Shard => c.subscribed[Kind::Shard as usize].len(),
        _ => c.subscribed[0].len() + c.subscribed[1].len(),
    };
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
        Kind::Shard => "ssubscribe",
    };
    let mut replies = Vec::with_capacity(names.len());
    for n in names {
        if c.subscribed[kind as usize].insert(Bytes::copy_from_slice(n)) {
            match kind {
                Kind::Channel => ctx.server.pubsub.subscribe(n, &c.handle),
                Kind::Pattern => ctx.server.pubsub.psubscribe(n, &c.handle),
                Kind::Shard => ctx.server.pubsub.ssubscribe(n, &c.handle),
            }
        }
        replies.push(confirm(what, kind, Some(n), c));
    }
    publish_counts(c);
    Reply::Many(replies)
}

fn unsubscribe(shared: &Shared, c: &mut Client, kind: Kind, names: Vec<Bytes>) -> Reply {
    let what = match kind {
        Kind::Channel => "unsubscribe",
        Kind::Pattern => "punsubscribe",
        Kind::Shard => "sunsubscribe",
    };
    let names = if names.is_empty() {
        c.subscribed[kind as usize].iter().cloned().collect()
    } else {
        names
    };
    if names.is_empty() {
        return confirm(what, kind, None, c);
    }
    let mut replies = Vec::with_capacity(names.len());
    for n in names {
        if c.subscribed[kind as usize].remove(&n) {
            match kind {
                Kind::Channel => shared.pubsub.unsubscribe(&n, c.id()),
                Kind::Pattern => shared.pubsub.punsubscribe(&n, c.id()),
                Kind::Shard => shared.pubsub.sunsubscribe(&n, c.id()),
            }
        }
        replies.push(confirm(what, kind, Some(&n), c));
    }
    publish_counts(c);
    Reply::Many(replies)
}

/// Drops every subscription of `client` (RESET, disconnect).
pub fn unsubscribe_all(shared: &Shared, client: &mut Client) {
    if client.in_pubsub() {
        unsubscribe(shared, client, Kind::Channel, Vec::new());
        unsubscribe(shared, client, Kind::Pattern, Vec::new());
        unsubscribe(shared, client, Kind::Shard, Vec::new());
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

/// `SSUBSCRIBE shardchannel [shardchannel ...]`: the channels are keys for routing, so
/// they must share a slot (CROSSSLOT otherwise) owned by this server's stripe.
#[derive(Debug)]
pub struct SSubscribe<'a>(Vec<&'a [u8]>);

impl<'a> Exec<'a> for SSubscribe<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SSubscribe(args.rest()))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        Ok(subscribe(ctx, Kind::Shard, self.0))
    }
}

/// `SUNSUBSCRIBE [shardchannel ...]`
#[derive(Debug)]
pub struct SUnsubscribe<'a>(Vec<&'a [u8]>);

impl<'a> Exec<'a> for SUnsubscribe<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SUnsubscribe(args.rest()))
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let names = self.0.iter().map(|n| Bytes::copy_from_slice(n)).collect();
        Ok(unsubscribe(ctx.server, ctx.client, Kind::Shard, names))
    }
}

/// `SPUBLISH shardchannel message`: delivered on every server of the owning stripe; the
/// number of clients of this server that received it.
#[derive(Debug)]
pub struct SPublish<'a> {
    channel: &'a [u8],
    message: &'a [u8],
}

impl<'a> Exec<'a> for SPublish<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(SPublish {
            channel: args.bytes()?,
            message: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        let n = ctx.server.pubsub.spublish(self.channel, self.message);
        ctx.server
            .cluster
            .relay_in_stripe(self.channel, self.message);
        Ok(Reply::Int(n as i64))
    }
}

/// `PUBSUB.RELAY message|smessage channel message`: another Terrace server relays a
/// PUBLISH (or keyspace notification) or an SPUBLISH; it is delivered to this server's
/// subscribers only, never relayed on. Only peer connections (CLUSTER.PEER) may send it.
#[derive(Debug)]
pub struct Relay<'a> {
    kind: &'a [u8],
    channel: &'a [u8],
    message: &'a [u8],
}

impl<'a> Exec<'a> for Relay<'a> {
    fn parse(args: &mut Args<'a>) -> Result<Self, CmdError> {
        Ok(Relay {
            kind: args.bytes()?,
            channel: args.bytes()?,
            message: args.bytes()?,
        })
    }
    fn exec(self, ctx: &mut ExecCtx<'_>) -> Result<Reply, CmdError> {
        if ctx.client.routing != crate::cluster::Mode::Peer {
            return Err(CmdError::err(
                "PUBSUB.RELAY is only accepted from another Terrace server (CLUSTER.PEER)",
            ));
        }
        let kind = Delivery::from_wire(self.kind).ok_or(CmdError::Syntax)?;
        let n = ctx.server.pubsub.deliver(kind, self.channel, self.message);
        Ok(Reply::Int(n as i64))
    }
}

/// `PUBLISH channel message`: delivered on every server of the cluster; the number of
/// clients of this server that received it (Redis Cluster's reply).
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
        ctx.server
            .cluster
            .relay_everywhere(Delivery::Message, self.channel, self.message);
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
    /// Active shard channels.
    ShardChannels(Option<&'a [u8]>),
    /// Shard-channel subscriber counts.
    ShardNumSub(Vec<&'a [u8]>),
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
        "pubsub|shardchannels",
        -2,
        "pubsub",
        "7.0.0",
        "Returns the active shard channels.",
    )
    .flags(Flags::LOADING.with(Flags::STALE)),
    CommandSpec::new(
        "pubsub|shardnumsub",
        -2,
        "pubsub",
        "7.0.0",
        "Returns the count of subscribers of shard channels.",
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
                "CHANNELS" | "SHARDCHANNELS" => {
                    let p = args.next_opt();
                    if args.remaining() > 0 {
                        return Err(CmdError::err(format!(
                            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
                            super::lossy(sub, 128)
                        )));
                    }
                    if sub.eq_ignore_ascii_case(b"CHANNELS") {
                        PubSubCmd::Channels(p)
                    } else {
                        PubSubCmd::ShardChannels(p)
                    }
                }
                "NUMSUB" => PubSubCmd::NumSub(args.rest()),
                "SHARDNUMSUB" => PubSubCmd::ShardNumSub(args.rest()),
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
            PubSubCmd::ShardChannels(p) => Reply::bulks(ps.shard_channels(p)),
            PubSubCmd::ShardNumSub(chs) => Reply::Array(
                chs.into_iter()
                    .flat_map(|c| [Reply::bulk(c), Reply::Int(ps.shard_numsub(c) as i64)])
                    .collect(),
            ),
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
                    "SHARDCHANNELS [<pattern>]",
                    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                    "SHARDNUMSUB [<shardchannel> ...]",
                    "    Return the number of subscribers for the specified shard level channel(s)",
                ],
            ),
        })
    }
}
