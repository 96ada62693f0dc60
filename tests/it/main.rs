//! Integration tests: real `terrace` processes on free loopback ports, real clients
//! (the `redis` crate, redis-cli, raw sockets).

mod acl;
mod bad_input;
mod caches;
mod cli;
mod commands;
mod differential;
mod expiry;
mod failover;
mod hash;
mod lifecycle;
mod limits;
mod list;
mod metrics;
mod operate;
mod persist;
mod protocol;
mod pubsub;
mod replication;
mod set;
mod stripes;
mod tiers;
mod tls;
mod tracking;
mod transactions;
mod types;
mod util;
mod zset;
