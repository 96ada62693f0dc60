//! Terrace: the Terracotta Server Array rebuilt as a Redis-protocol cache cluster.
//!
//! # Module map
//!
//! - [`config`]: the cluster YAML (stripes, servers, voters, storage, caches, limits),
//!   its units and validation.
//! - [`protocol`]: RESP2/RESP3 framing on redis-protocol, argument parsing, replies.
//! - [`command`]: the command table and one file per command family; commands return
//!   replies and never touch sockets.
//! - [`cache`]: named caches: which cache a key belongs to, live policies, counters.
//! - [`store`]: the sharded keyspace (one table per cache per shard), expiry, eviction,
//!   WATCH notifications, the effect record.
//! - [`persist`]: fast restart: the record format, the append-only log and its fsync
//!   policy, compaction into base snapshots, recovery.
//! - [`replication`]: mirror groups: the active's record stream to its mirrors, acks,
//!   full sync, the mirror states, switchover.
//! - [`net`]: blocking TCP connect with a deadline (CLI, role thread).
//! - [`tls`]: TLS (rustls) on the client and group ports; plain-or-TLS stream types.
//! - [`stripe`]: per-thread striped counters.
//! - [`acl`]: users, passwords, command/key/channel permissions, protected mode.
//! - [`server`]: listener, connections, dispatch, client registry, settings, stats.
//! - [`cluster`]: stripes, slots, routing, and the Raft control plane (who is active).
//! - [`voter`]: `terrace voter`, a control-plane member without data.
//! - [`admin`]: INFO text, `terrace status`, failover and stop.
//!
//! # How a request flows
//!
//! ```text
//!  bytes ─▶ protocol::Decoder ─▶ args ─▶ server::dispatch ─▶ CommandId::lookup (arity, auth, ACL)
//!        ─▶ Command::parse (or queue it, inside MULTI) ─▶ lock the key's shards
//!        ─▶ Command::exec(ExecCtx) ─▶ store::Db (cache of the key: policy, limits, eviction;
//!           lazy expiry, access tracking, watches, effects) ─▶ Db::commit ─▶ persist log
//!           (and its replication backlog ─▶ the mirrors)
//!        ─▶ Reply (under `always`, after the fsync; for a strong cache, after the mirrors'
//!           acks) ─▶ encode ─▶ one write
//! ```

#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod acl;
pub mod admin;
pub mod cache;
pub mod cluster;
pub mod command;
pub mod config;
pub mod error;
pub mod latency;
pub mod net;
pub mod persist;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod store;
pub mod stripe;
pub mod tls;
pub mod voter;

pub use error::{Error, Result};
