//! `keelson-runtime`: what a Keelson node's container runtime runs on,
//! shared by the node agent, `cargo xtask` and the tests — none of which
//! may need the BPF datapath for it.
//!
//! - [`containerd`] — containerd's configuration, rendered from paths, and
//!   starting an instance with it.
//! - [`oci`] — OCI image archives: writing them, and reading them (also
//!   `docker save` ones) into an import plan.
//! - [`images`] — Keelson's local images (`keelson.local/pause:1`,
//!   `busybox:1`, `echo:1`) and the static programs inside them.
//!
//! Talking to containerd's API (importing, CRI) is the node agent's
//! (`keelson_node::images`, `keelson_node::cri`).

pub mod containerd;
pub mod images;
pub mod oci;
