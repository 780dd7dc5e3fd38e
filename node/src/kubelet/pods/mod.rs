//! The kubelet's pod workers: [`PodManager`] watches the pods bound to
//! this node (`spec.nodeName=<node>`, a kube-rs watcher feeding a
//! reflector) and runs one [`worker::Worker`] per pod uid, which drives
//! the pod toward its spec through CRI and writes its `/status`.
//!
//! At start the manager writes the `keelson-cni` network config for the
//! node's pod CIDR into the runtime's CNI conf dir (and installs the plugin
//! binary into its bin dir, when given one), and makes the QoS cgroup tree.
//! Every resync it also lists the runtime's sandboxes labelled as
//! Keelson's: those whose pod is not (or no longer) in the API get a worker
//! that removes them — orphans of an agent crash included — while those
//! whose pod exists are adopted by that pod's worker, not restarted.
//!
//! Owns: the sandboxes, containers, pod cgroups and pod log directories of
//! the pods bound to this node, and their `/status`. Must not touch: other
//! nodes' pods, the Node object (registration and lease are the node
//! module's), images (never pulled).
//!
//! Probes (`probe.rs`) run per running container instance; readiness
//! feeds `Ready`, a liveness failure makes the worker stop the container.
//!
//! Not here yet: CrashLoopBackOff
//! proper (a simple doubling back-off stands in), DNS config, volumes,
//! `envFrom`, `$(VAR)` expansion, container-level resources, events.

pub mod container;
pub mod probe;
pub mod sandbox;
pub mod status;
pub mod worker;

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use futures::StreamExt;
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::{
    Api, Client,
    runtime::{WatchStreamExt, reflector, watcher},
};
use thiserror::Error;
use tokio::{sync::watch, task::JoinHandle};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::{
    cgroups::{CgroupError, CgroupManager, resources::ResourceError},
    cri::{Cri, CriError, SandboxFilter},
};
use sandbox::{MANAGED_LABEL, MANAGED_VALUE, POD_UID_LABEL};

/// The CNI network's name (and the IPAM directory's).
pub const NETWORK_NAME: &str = "keelson";
/// The network config file the manager writes.
pub const CNI_CONF_FILE: &str = "10-keelson.conflist";
/// The kubelet's default pod log root.
pub const DEFAULT_LOG_ROOT: &str = "/var/log/pods";

#[derive(Debug, Error)]
pub enum PodError {
    #[error(transparent)]
    Cri(#[from] CriError),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error("pod resources: {0}")]
    Resources(#[from] ResourceError),
    #[error("Kubernetes API: {0}")]
    Api(#[source] kube::Error),
    #[error("{0}")]
    Io(String),
    #[error("the pod lacks a name, namespace or uid usable in paths")]
    InvalidPod,
    #[error("sandbox {0} vanished right after it started")]
    SandboxVanished(String),
    #[error("node {0} has no spec.podCIDR (and none was configured)")]
    NoPodCidr(String),
    #[error("node {node}'s spec.podCIDR {cidr:?} is not an IPv4 CIDR")]
    BadPodCidr { node: String, cidr: String },
    #[error("a blocking task failed: {0}")]
    Join(String),
    #[error("the pod watch ended")]
    WatchEnded,
}

/// Where the manager's files go, and how it runs.
#[derive(Debug, Clone)]
pub struct PodManagerConfig {
    /// The CRI endpoint (`unix:///…/containerd.sock`).
    pub runtime_endpoint: String,
    /// The node's pod CIDR; `None`: the Node object's `spec.podCIDR`.
    pub pod_cidr: Option<Ipv4Net>,
    /// The node's IP (`status.hostIP`); `None`: the Node's `InternalIP`.
    pub node_ip: Option<IpAddr>,
    /// The runtime's CNI conf dir, where the network config is written.
    pub cni_conf_dir: PathBuf,
    /// The runtime's CNI bin dir, and the `keelson-cni` binary to install
    /// there (`None`: installed by someone else).
    pub cni_bin_dir: PathBuf,
    pub cni_plugin: Option<PathBuf>,
    /// The plugin's IPAM store root (`dataDir`).
    pub cni_data_dir: PathBuf,
    /// Pod logs: `<log_root>/<ns>_<name>_<uid>/<container>/<n>.log`.
    pub log_root: PathBuf,
    /// How often every worker re-syncs without a change of its pod.
    pub resync: Duration,
    /// The network namespace `httpGet`, `tcpSocket` and `grpc` probes
    /// connect from (`None`: the agent's own, the node's).
    pub probe_netns: Option<PathBuf>,
}

impl PodManagerConfig {
    /// The node's defaults (Keelson's containerd, `/var/log/pods`).
    pub fn node() -> Self {
        let containerd = keelson_runtime::containerd::ContainerdConfig::node();
        Self {
            runtime_endpoint: containerd.endpoint(),
            pod_cidr: None,
            node_ip: None,
            cni_conf_dir: containerd.cni_conf_dir,
            cni_bin_dir: containerd.cni_bin_dir,
            cni_plugin: None,
            cni_data_dir: crate::cni::config::DEFAULT_DATA_DIR.into(),
            log_root: DEFAULT_LOG_ROOT.into(),
            resync: Duration::from_secs(1),
            probe_netns: None,
        }
    }
}

/// What every worker shares.
pub struct Context {
    pub client: Client,
    pub node_name: String,
    pub cri: Cri,
    pub cgroups: Arc<dyn CgroupManager>,
    pub config: PodManagerConfig,
    pub host_ip: Option<String>,
}

/// The network config list for `cidr` (what containerd hands the plugin).
pub fn cni_config(cidr: Ipv4Net, data_dir: &Path) -> serde_json::Value {
    serde_json::json!({
        "cniVersion": crate::cni::version::CURRENT,
        "name": NETWORK_NAME,
        "plugins": [{
            "type": "keelson-cni",
            "podCIDR": cidr.to_string(),
            "dataDir": data_dir,
        }],
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a
/// reader (containerd's conf watcher) never sees half of it.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PodError> {
    use std::os::unix::fs::PermissionsExt as _;
    let io = |e: std::io::Error| PodError::Io(format!("writing {}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// A task aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

struct WorkerHandle {
    pod: watch::Sender<Option<Arc<Pod>>>,
    task: Task,
}

/// The pod workers of one node.
pub struct PodManager {
    ctx: Arc<Context>,
    /// The reflector's cache of this node's pods, and its writer (taken by
    /// [`Self::run`]).
    store: reflector::Store<Pod>,
    writer: Option<reflector::store::Writer<Pod>>,
}

impl PodManager {
    /// Connects to the runtime and resolves the pod CIDR and node IP
    /// (from the Node object unless configured).
    pub async fn new(
        client: Client,
        node_name: &str,
        cgroups: Arc<dyn CgroupManager>,
        mut config: PodManagerConfig,
    ) -> Result<Self, PodError> {
        let cri = Cri::connect(&config.runtime_endpoint).await?;
        let node = Api::<Node>::all(client.clone())
            .get_opt(node_name)
            .await
            .map_err(PodError::Api)?;
        if config.pod_cidr.is_none() {
            let cidr = node
                .as_ref()
                .and_then(|n| n.spec.as_ref()?.pod_cidr.clone())
                .ok_or_else(|| PodError::NoPodCidr(node_name.to_owned()))?;
            config.pod_cidr = Some(cidr.parse().map_err(|_| PodError::BadPodCidr {
                node: node_name.to_owned(),
                cidr,
            })?);
        }
        let host_ip = config.node_ip.map(|ip| ip.to_string()).or_else(|| {
            node.as_ref()?
                .status
                .as_ref()?
                .addresses
                .iter()
                .flatten()
                .find(|a| a.type_ == "InternalIP")
                .map(|a| a.address.clone())
        });
        let (store, writer) = reflector::store();
        Ok(Self {
            store,
            writer: Some(writer),
            ctx: Arc::new(Context {
                client,
                node_name: node_name.to_owned(),
                cri,
                cgroups,
                config,
                host_ip,
            }),
        })
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The cache of this node's pods [`Self::run`] fills (what the kubelet
    /// server looks pods up in).
    pub fn pods(&self) -> reflector::Store<Pod> {
        self.store.clone()
    }

    /// The CNI network config and plugin, and the QoS cgroup tree.
    pub fn prepare(&self) -> Result<(), PodError> {
        let config = &self.ctx.config;
        if let Some(plugin) = &config.cni_plugin {
            let bytes = std::fs::read(plugin)
                .map_err(|e| PodError::Io(format!("reading {}: {e}", plugin.display())))?;
            // containerd's CRI runs `loopback` before every network:
            // keelson-cni serves that type too.
            for name in ["keelson-cni", crate::cni::LOOPBACK] {
                write_atomically(&config.cni_bin_dir.join(name), &bytes, 0o755)?;
            }
        }
        let cidr = config
            .pod_cidr
            .ok_or_else(|| PodError::NoPodCidr(self.ctx.node_name.clone()))?;
        let conf = cni_config(cidr, &config.cni_data_dir);
        let path = config.cni_conf_dir.join(CNI_CONF_FILE);
        write_atomically(&path, conf.to_string().as_bytes(), 0o644)?;
        info!(path = %path.display(), %cidr, "CNI network config written");
        self.ctx.cgroups.ensure_qos_tree()?;
        Ok(())
    }

    /// Runs the workers until the pod watch fails for good (it retries
    /// with kube-rs's back-off) or the future is dropped, which stops
    /// every worker.
    pub async fn run(mut self) -> Result<(), PodError> {
        self.prepare()?;
        let api: Api<Pod> = Api::all(self.ctx.client.clone());
        let store = self.store.clone();
        let writer = self.writer.take().ok_or(PodError::WatchEnded)?;
        let selector = format!("spec.nodeName={}", self.ctx.node_name);
        let changed = Arc::new(tokio::sync::Notify::new());
        let notify = changed.clone();
        let stream = reflector(
            writer,
            watcher(api, watcher::Config::default().fields(&selector)),
        )
        .default_backoff();
        let _watch = Task(tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    warn!("pod watch: {e}");
                }
                notify.notify_one();
            }
        }));
        store
            .wait_until_ready()
            .await
            .map_err(|_| PodError::WatchEnded)?;
        info!(node = self.ctx.node_name, pods = store.len(), "pods listed");
        let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
        loop {
            let pods: HashMap<String, Arc<Pod>> = store
                .state()
                .into_iter()
                .filter_map(|p| Some((p.metadata.uid.clone()?, p)))
                .collect();
            workers.retain(|_, w| !w.task.0.is_finished());
            for (uid, pod) in &pods {
                match workers.get(uid) {
                    Some(w) => {
                        w.pod.send_if_modified(|old| {
                            let changed = old.as_ref() != Some(pod);
                            *old = Some(pod.clone());
                            changed
                        });
                    }
                    None => {
                        let handle = self.spawn_worker(uid, Some(pod.clone()));
                        workers.insert(uid.clone(), handle);
                    }
                }
            }
            for (uid, w) in &workers {
                if !pods.contains_key(uid) {
                    w.pod.send_if_modified(|old| old.take().is_some());
                }
            }
            match self.sandbox_uids().await {
                Ok(uids) => {
                    for uid in uids {
                        if !pods.contains_key(&uid) && !workers.contains_key(&uid) {
                            info!(uid, "sandbox of a pod not in the API: removing it");
                            let handle = self.spawn_worker(&uid, None);
                            workers.insert(uid, handle);
                        }
                    }
                }
                Err(e) => warn!("listing sandboxes: {e}"),
            }
            tokio::select! {
                () = changed.notified() => {}
                () = tokio::time::sleep(self.ctx.config.resync) => {}
            }
        }
    }

    /// The pod uids of the runtime's Keelson sandboxes.
    async fn sandbox_uids(&self) -> Result<HashSet<String>, PodError> {
        let mut runtime = self.ctx.cri.runtime.clone();
        let sandboxes = runtime
            .list_pod_sandboxes(&SandboxFilter::labels([(MANAGED_LABEL, MANAGED_VALUE)]))
            .await?;
        Ok(sandboxes
            .into_iter()
            .filter_map(|s| s.labels.get(POD_UID_LABEL).cloned())
            .collect())
    }

    fn spawn_worker(&self, uid: &str, pod: Option<Arc<Pod>>) -> WorkerHandle {
        let (tx, mut rx) = watch::channel(pod.clone());
        let ctx = self.ctx.clone();
        let resync = ctx.config.resync;
        let key = pod
            .as_ref()
            .and_then(|p| sandbox::PodKey::of(p))
            .map(|k| k.to_string())
            .unwrap_or_default();
        let span = info_span!("pod", pod = key, uid);
        let mut worker = worker::Worker::new(ctx, uid.to_owned());
        let probes_changed = worker.probes_changed();
        let task = tokio::spawn(
            async move {
                loop {
                    let pod = rx.borrow_and_update().clone();
                    match worker.sync(pod.as_deref()).await {
                        Ok(worker::Flow::Finished) => {
                            debug!("pod worker done");
                            return;
                        }
                        Ok(worker::Flow::Continue) => {}
                        Err(e) => warn!("pod sync failed: {e}"),
                    }
                    tokio::select! {
                        changed = rx.changed() => if changed.is_err() { return },
                        () = probes_changed.notified() => {}
                        () = tokio::time::sleep(resync) => {}
                    }
                }
            }
            .instrument(span),
        );
        WorkerHandle {
            pod: tx,
            task: Task(task),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cni_config_names_the_plugin_and_the_cidr() {
        let conf = cni_config(
            "10.244.3.0/24".parse().expect("cidr"),
            Path::new("/var/lib/keelson/cni"),
        );
        assert_eq!(conf["name"], NETWORK_NAME);
        assert_eq!(conf["plugins"][0]["type"], "keelson-cni");
        assert_eq!(conf["plugins"][0]["podCIDR"], "10.244.3.0/24");
        // The plugin accepts what containerd will hand it.
        let mut plugin = conf["plugins"][0].clone();
        plugin["cniVersion"] = conf["cniVersion"].clone();
        plugin["name"] = conf["name"].clone();
        let parsed = crate::cni::config::parse(plugin.to_string().as_bytes()).expect("parses");
        assert_eq!(parsed.pod_cidr.to_string(), "10.244.3.0/24");
    }
}
