//! The kubelet (`keelson-node kubelet`): the node's member of the cluster.
//! It talks to the cluster only through the Kubernetes API (kube-rs, from
//! a kubeconfig), so it runs against keelson-server or any kube-apiserver.
//!
//! - [`node`] registers the Node (or adopts an existing one) and keeps its
//!   status — capacity, allocatable, addresses, node info, the
//!   MemoryPressure / DiskPressure / PIDPressure / Ready conditions —
//!   current through `/status`;
//! - [`lease`] renews the node's heartbeat Lease in `kube-node-lease`;
//! - [`host`] reads the host facts both are made of;
//! - [`pods`] holds the pod workers (watch → sandbox → containers →
//!   status → teardown), built on `crate::cri`, `crate::cgroups` and
//!   `crate::cni`;
//! - [`server`] is the kubelet's HTTP server (container logs, read by
//!   [`logs`] from the CRI log files), which the API server's `pods/log`
//!   proxies to.
//!
//! [`run`] starts the node-lifecycle loops (node status, lease) on one
//! task; dropping its future stops them (the Node and the Lease stay, as a
//! stopped kubelet leaves them: the node lifecycle controller notices the
//! Lease expiring).
//!
//! **Where the pod workers plug in.** `keelson-node kubelet` runs the node
//! lifecycle only so far. [`pods::PodManager`] joins [`run`] as a third
//! loop beside the two here, taking the Node's uid and pod CIDRs from the
//! same [`NodeState`] channel (republished when they change) instead of
//! reading the Node itself; the runtime's and network's health then feed
//! [`node::Observed::not_ready`] (the Ready condition), and the runtime's
//! CRI `Version` [`KubeletConfig::container_runtime_version`]. The node
//! lifecycle itself must not reach into `cri/`, `cgroups/` or `cni/`.

pub mod host;
pub mod lease;
pub mod logs;
pub mod node;
pub mod pods;
pub mod server;

use std::{collections::BTreeMap, net::IpAddr, path::PathBuf, time::Duration};

use ipnet::IpNet;
use k8s_openapi::api::core::v1::Node;
use kube::ResourceExt;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{Instrument, info, info_span};

use crate::proxy::watch::{ProxyError, client_from_kubeconfig};

/// The kubelet's `--root-dir` default in Keelson's layout.
pub const DEFAULT_ROOT_DIR: &str = "/var/lib/keelson/kubelet";
/// The kubelet's `--max-pods` default.
pub const DEFAULT_MAX_PODS: u32 = 110;
/// The kubelet's `--node-status-update-frequency` default.
pub const DEFAULT_NODE_STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
/// A quarter of the default lease duration, as the kubelet renews.
pub const DEFAULT_LEASE_RENEW_INTERVAL: Duration = Duration::from_secs(10);

/// Everything `keelson-node kubelet` needs.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub kubeconfig: PathBuf,
    /// The Node's name; also its `kubernetes.io/hostname` label and its
    /// `Hostname` address.
    pub node_name: String,
    /// The InternalIP (`None`: the host's first global IPv4 address).
    pub node_ip: Option<IpAddr>,
    /// Written into `spec.podCIDR` when the Node has none.
    pub pod_cidr: Option<IpNet>,
    pub max_pods: u32,
    /// The kubelet's state directory; its filesystem is the node's
    /// `ephemeral-storage` (nodefs).
    pub root_dir: PathBuf,
    /// `--node-labels`, validated ([`node::parse_node_labels`]).
    pub node_labels: BTreeMap<String, String>,
    /// `status.nodeInfo.containerRuntimeVersion` (`<runtime>://<version>`;
    /// supplied by the CRI client once it runs here).
    pub container_runtime_version: String,
    pub node_status_update_frequency: Duration,
    pub lease_duration_seconds: i32,
    pub lease_renew_interval: Duration,
}

impl KubeletConfig {
    /// The defaults for node `node_name` against `kubeconfig`.
    pub fn for_node(node_name: &str, kubeconfig: PathBuf) -> Self {
        Self {
            kubeconfig,
            node_name: node_name.to_owned(),
            node_ip: None,
            pod_cidr: None,
            max_pods: DEFAULT_MAX_PODS,
            root_dir: DEFAULT_ROOT_DIR.into(),
            node_labels: BTreeMap::new(),
            container_runtime_version: String::new(),
            node_status_update_frequency: DEFAULT_NODE_STATUS_UPDATE_FREQUENCY,
            lease_duration_seconds: lease::DEFAULT_LEASE_DURATION_SECONDS,
            lease_renew_interval: DEFAULT_LEASE_RENEW_INTERVAL,
        }
    }
}

/// What the rest of the kubelet learns from the registered Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeState {
    pub uid: String,
    /// `spec.podCIDRs` (the pod network's ranges for this node).
    pub pod_cidrs: Vec<String>,
}

impl NodeState {
    pub fn of(node: &Node) -> Self {
        Self {
            uid: node.uid().unwrap_or_default(),
            pod_cidrs: node::pod_cidrs(node),
        }
    }
}

/// Why the kubelet could not start.
#[derive(Debug, Error)]
pub enum KubeletError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("creating the root directory {path}: {source}")]
    RootDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Host(#[from] host::HostError),
    #[error(transparent)]
    Client(#[from] ProxyError),
}

fn validate(config: &KubeletConfig) -> Result<(), KubeletError> {
    let fail = |m: &str| Err(KubeletError::Config(m.to_owned()));
    if config.node_name.is_empty() {
        return fail("the node name is empty");
    }
    if config.max_pods == 0 {
        return fail("--max-pods must be at least 1");
    }
    if config.lease_duration_seconds <= 0 {
        return fail("--node-lease-duration-seconds must be positive");
    }
    if config.node_status_update_frequency.is_zero() || config.lease_renew_interval.is_zero() {
        return fail("--node-status-update-frequency and --lease-renew-interval must be positive");
    }
    Ok(())
}

/// Runs the node lifecycle: registration, then the status and lease
/// loops, until the future is dropped. Returns early only when it cannot
/// start (bad configuration, unreadable host facts or kubeconfig); API
/// errors are logged and retried, never fatal.
pub async fn run(config: KubeletConfig) -> Result<(), KubeletError> {
    validate(&config)?;
    let span = info_span!("kubelet", node = %config.node_name);
    async move {
        let client = client_from_kubeconfig(&config.kubeconfig).await?;
        std::fs::create_dir_all(&config.root_dir).map_err(|source| KubeletError::RootDir {
            path: config.root_dir.clone(),
            source,
        })?;
        let info = host::SystemInfo::read()?;
        info!(
            version = node::KUBELET_VERSION,
            kernel = %info.kernel_version,
            os_image = %info.os_image,
            root_dir = %config.root_dir.display(),
            "starting the kubelet"
        );
        let (state_tx, state_rx) = watch::channel(None);
        let lease = lease::LeaseAgent::new(
            client.clone(),
            lease::LeaseTerms {
                node_name: config.node_name.clone(),
                duration_seconds: config.lease_duration_seconds,
            },
            config.lease_renew_interval,
        );
        let node = node::NodeAgent::new(client, config, info);
        // Pod workers join here (see the module docs).
        tokio::join!(node.run(state_tx), lease.run(state_rx));
        Ok(())
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_is_checked() {
        let good = KubeletConfig::for_node("n1", "k".into());
        assert!(validate(&good).is_ok());
        for bad in [
            KubeletConfig {
                node_name: String::new(),
                ..good.clone()
            },
            KubeletConfig {
                max_pods: 0,
                ..good.clone()
            },
            KubeletConfig {
                lease_duration_seconds: 0,
                ..good.clone()
            },
            KubeletConfig {
                lease_renew_interval: Duration::ZERO,
                ..good.clone()
            },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
    }
}
