//! Keelson's node agent (`keelson-node`): one per Linux host.
//!
//! Today it owns the BPF datapath loader ([`bpf`]): the embedded BPF object
//! and the user-space halves of its programs; the kube-proxy replacement
//! ([`proxy`]) and its flow observability ([`flows`]); the CNI plugin
//! `keelson-cni` and its IPAM store ([`cni`]); the kubelet's pod cgroup
//! manager ([`cgroups`]). The kubelet joins here as `kubelet/` and `cri/`.

pub mod bpf;
pub mod cgroups;
pub mod cni;
pub mod flows;
pub mod metrics;
pub mod proxy;
