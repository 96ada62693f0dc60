//! Operator-facing views of a server: INFO text and `terrace status` (later Prometheus).
//! Read-only: it formats state that other modules own.

pub mod info;
pub mod status;
