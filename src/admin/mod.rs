//! Operator-facing views and operations: INFO text, the Prometheus endpoint, `terrace
//! status`, `health`, `failover`, `stop` and `shutdown`. It formats state other modules own, and acts
//! only through commands a client could send.

pub mod health;
pub mod info;
pub mod metrics;
pub mod ops;
pub mod status;
