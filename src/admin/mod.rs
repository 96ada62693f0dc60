//! Operator-facing views and operations: INFO text, `terrace status`, `terrace failover`
//! and `terrace stop` (later Prometheus). It formats state other modules own, and acts
//! only through commands a client could send.

pub mod info;
pub mod ops;
pub mod status;
