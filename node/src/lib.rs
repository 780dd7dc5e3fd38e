//! Keelson's node agent (`keelson-node`): one per Linux host.
//!
//! Today it owns the BPF datapath loader ([`bpf`]): the embedded BPF object
//! and the user-space halves of its programs; the kube-proxy replacement
//! ([`proxy`]) and its flow observability ([`flows`]); the CNI plugin
//! `keelson-cni` and its IPAM store ([`cni`]); the kubelet's pod cgroup
//! manager ([`cgroups`]); the container runtime's client ([`cri`]) and the
//! local images' import into containerd ([`images`]); the kubelet
//! ([`kubelet`]): its pod workers, its container-log server and the node
//! lifecycle (Node registration and status, the node Lease).

pub mod bpf;
pub mod cgroups;
pub mod cni;
pub mod cri;
pub mod flows;
pub mod images;
pub mod kubelet;
pub mod metrics;
pub mod proxy;
