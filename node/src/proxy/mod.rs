//! The kube-proxy replacement: Services and EndpointSlices (watched through
//! the Kubernetes API with kube-rs) become BPF map entries that the socket
//! and TC load-balancing programs read.
//!
//! - [`model`] — the desired load-balancer state as plain Rust values.
//! - [`desired`] — computing it from Services and EndpointSlices with
//!   kube-proxy's semantics: a pure function (unit-tested).
//! - [`tracker`] — the same state kept incrementally: one event, one
//!   service recomputed, the changed frontends reported.
//! - [`maglev`] — consistent-hashing lookup tables.
//! - `maps` — the thin edge that writes the desired state into pinned BPF
//!   maps, incrementally, never exposing a half-written service.
//! - [`watch`] — kube-rs watchers/reflectors feeding the model.
//! - [`agent`] — the running proxy (`keelson-node proxy`).
//! - [`datapath`] — the agent's NodePort TC start-up (pinned links),
//!   conntrack ageing and clean-up.
//! - [`route`] — the `unreachable` route for the service CIDR.
//! - [`show`] — the state as a table for people (`keelson-node lb desired`).

pub mod agent;
pub mod datapath;
pub mod desired;
pub mod maglev;
pub mod maps;
pub mod model;
pub mod nodeport;
pub mod route;
pub mod show;
pub mod tracker;
pub mod watch;
