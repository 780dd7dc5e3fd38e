//! Keelson's node agent (`keelson-node`): one per Linux host.
//!
//! Today it owns the BPF datapath loader ([`bpf`]): the embedded BPF object
//! and the user-space halves of its programs. The kubelet, the CNI plugin and
//! the kube-proxy replacement join here as `kubelet/`, `cri/`, `cgroups/`,
//! `cni/`, `proxy/` and `flows/`.

pub mod bpf;
pub mod flows;
pub mod metrics;
pub mod proxy;
