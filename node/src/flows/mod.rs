//! Flow observability for the socket load balancer (Hubble's role for
//! Keelson): every translated or refused VIP connection the BPF programs
//! see becomes a [`record::Flow`].
//!
//! - [`record`] — decoding the kernel's `FlowRecord` into a `Flow`
//!   (addresses, wall-clock time, verdict), the client's request line and
//!   its filters. Pure, unit-tested.
//! - [`server`] — inside `keelson-node proxy`: the ring-buffer reader task
//!   (aya `RingBuf` + tokio `AsyncFd`), enrichment with service names, the
//!   in-memory ring of recent flows, the unix-socket server speaking JSON
//!   lines, and the per-service Prometheus counters read from the per-CPU
//!   maps.
//! - [`client`] — the `keelson-node flows` command: one request line, then
//!   flows printed as a table or JSON lines.
//!
//! This module never writes the load-balancer maps (`proxy::maps` does)
//! and never loads programs (`bpf::sock_lb` does).

pub mod client;
pub mod record;
pub mod server;

/// Default path of the agent's flow socket (`--flows-socket`).
pub const DEFAULT_SOCKET: &str = "/run/keelson/flows.sock";
