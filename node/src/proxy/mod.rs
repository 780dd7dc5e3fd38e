//! The kube-proxy replacement: Services and EndpointSlices (watched through
//! the Kubernetes API with kube-rs) become BPF map entries that the socket
//! and TC load-balancing programs read.
//!
//! - [`model`] — the desired load-balancer state as plain Rust values;
//!   computing it from API objects is a pure function (unit-tested).
//! - `maglev` — consistent-hashing lookup tables.
//! - `maps` — the thin edge that writes the desired state into pinned BPF
//!   maps, incrementally, never exposing a half-written service.
//! - `watch` — kube-rs watchers/reflectors feeding the model.

pub mod maps;
pub mod model;
