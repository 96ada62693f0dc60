//! Operator-facing views of a server: INFO text (and, later, Prometheus and `terrace status`).
//! Read-only: it formats state that other modules own.

pub mod info;
