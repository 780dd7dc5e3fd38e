//! The kubelet's Node object: registration and status, as the kubelet's
//! `kubelet_node_status.go` and `nodestatus/setters.go` keep them.
//!
//! - **Registration** creates the Node (name, the kubelet's default labels
//!   and `--node-labels`, the attach/detach annotation, `spec.podCIDR`
//!   from `--pod-cidr`, an initial status) or, when it exists, adopts it:
//!   its uid stays, the default labels and `--node-labels` are brought up
//!   to date (others' labels are never removed), and `spec.podCIDR` is
//!   kept when set (set from `--pod-cidr` only while empty: the API makes
//!   it immutable once set).
//! - **Status** (`status.capacity`, `allocatable`, `addresses`,
//!   `nodeInfo`, `conditions`) goes through the `/status` subresource as
//!   a JSON merge patch computed against a fresh read of the Node, every
//!   `--node-status-update-frequency` and as soon as a sampled condition
//!   changes (the pressure signals are sampled every second).
//!
//! What the values are is decided by pure functions here (quantities,
//! capacity and allocatable, pressure against the eviction thresholds,
//! condition transitions, labels, the patches); what the host says comes
//! from [`super::host`]. This module writes only this node's Node.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::IpAddr,
    path::Path,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeStatus, NodeSystemInfo},
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{ObjectMeta, Time},
    },
    jiff::Timestamp,
};
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Map, Value, json};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::{
    KubeletConfig, NodeState,
    host::{self, FsStats, HostError, HugePages, MemInfo, PidStats, SystemInfo},
};

/// `status.nodeInfo.kubeletVersion`: the Kubernetes API level the kubelet
/// implements, with Keelson's own version as a pre-release tag.
pub const KUBELET_VERSION: &str = concat!("v1.33.0-keelson.", env!("CARGO_PKG_VERSION"));

/// The annotation kubelets set so the attach/detach controller (not the
/// kubelet) attaches volumes to this node.
pub const ATTACH_DETACH_ANNOTATION: &str = "volumes.kubernetes.io/controller-managed-attach-detach";

/// How often the pressure signals are sampled (a changed condition is
/// posted at once, not at the next status update).
const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
/// Bound on each API request of the status loop.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the Node's API side.
#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Host(#[from] HostError),
    #[error("{verb} node {node}: {source}")]
    Api {
        verb: &'static str,
        node: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{verb} node {node}: no answer within {REQUEST_TIMEOUT:?}")]
    Timeout { verb: &'static str, node: String },
    #[error("node {0} does not exist (deleted?)")]
    NotFound(String),
    #[error("building the patch of node {node}: {source}")]
    Serialize {
        node: String,
        #[source]
        source: serde_json::Error,
    },
}

// ---------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------

/// `n` in apimachinery's canonical DecimalSI form: `110`, `1k`, `2M`,
/// `1500` (a suffix only when it divides exactly).
pub fn format_decimal_si(n: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "k", "M", "G", "T", "P", "E"];
    let (mut mantissa, mut exponent) = (n, 0);
    while mantissa != 0 && mantissa % 1000 == 0 && exponent < SUFFIXES.len() - 1 {
        mantissa /= 1000;
        exponent += 1;
    }
    format!("{mantissa}{}", SUFFIXES[exponent])
}

/// A byte count in apimachinery's canonical BinarySI form, as the kubelet
/// prints memory and storage: the largest power-of-1024 suffix that
/// divides exactly (`8148236Ki`, `2Mi`, `1Gi`), plain digits when none
/// does (`93478772582`); below 1024 DecimalSI is used, as apimachinery
/// does (`0`, `512`).
pub fn format_binary_si(bytes: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes < 1024 {
        return format_decimal_si(bytes);
    }
    let (mut mantissa, mut exponent) = (bytes, 0);
    while mantissa % 1024 == 0 && exponent < SUFFIXES.len() - 1 {
        mantissa /= 1024;
        exponent += 1;
    }
    format!("{mantissa}{}", SUFFIXES[exponent])
}

/// The resource name of a huge-page size: `hugepages-2Mi`, `hugepages-1Gi`.
pub fn hugepages_resource(page_size: u64) -> String {
    format!("hugepages-{}", format_binary_si(page_size))
}

// ---------------------------------------------------------------------
// Resources and pressure
// ---------------------------------------------------------------------

/// One reading of everything the status is computed from that can change
/// while the agent runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    pub cpus: u32,
    pub memory: MemInfo,
    /// The filesystem of `--root-dir` (the kubelet's `nodefs`).
    pub nodefs: FsStats,
    pub pids: PidStats,
    pub hugepages: Vec<HugePages>,
}

impl Sample {
    pub fn read(root_dir: &Path) -> Result<Self, HostError> {
        Ok(Self {
            cpus: host::online_cpus()?,
            memory: host::meminfo()?,
            nodefs: host::fs_stats(root_dir)?,
            pids: host::pid_stats()?,
            hugepages: host::hugepages()?,
        })
    }
}

/// The kubelet's hard eviction thresholds (`--eviction-hard`): a signal
/// below its threshold is pressure. They are also what allocatable keeps
/// back (there is no kube-reserved or system-reserved).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvictionThresholds {
    /// `memory.available<100Mi`.
    pub memory_available: u64,
    /// `nodefs.available<10%`.
    pub nodefs_available_percent: u64,
    /// `nodefs.inodesFree<5%`.
    pub nodefs_inodes_free_percent: u64,
    /// `pid.available<10%`: the kubelet has no default for this signal;
    /// Keelson uses the value Kubernetes' documentation suggests.
    pub pid_available_percent: u64,
}

impl Default for EvictionThresholds {
    fn default() -> Self {
        Self {
            memory_available: 100 << 20,
            nodefs_available_percent: 10,
            nodefs_inodes_free_percent: 5,
            pid_available_percent: 10,
        }
    }
}

/// `part < percent% of whole`, exactly.
fn below_percent(part: u64, whole: u64, percent: u64) -> bool {
    u128::from(part) * 100 < u128::from(whole) * u128::from(percent)
}

/// `capacity − percent%` (truncating, as the kubelet does).
fn minus_percent(capacity: u64, percent: u64) -> u64 {
    let reserved = u128::from(capacity) * u128::from(percent) / 100;
    capacity.saturating_sub(u64::try_from(reserved).unwrap_or(u64::MAX))
}

/// `status.capacity`: `cpu` (online CPUs), `memory` (`MemTotal`), `pods`
/// (`--max-pods`), `ephemeral-storage` (the root directory's filesystem)
/// and one `hugepages-<size>` per supported page size.
pub fn capacity(sample: &Sample, max_pods: u32) -> BTreeMap<String, Quantity> {
    let mut out = BTreeMap::new();
    out.insert(
        "cpu".to_owned(),
        Quantity(format_decimal_si(sample.cpus.into())),
    );
    out.insert(
        "memory".to_owned(),
        Quantity(format_binary_si(sample.memory.total)),
    );
    out.insert(
        "pods".to_owned(),
        Quantity(format_decimal_si(max_pods.into())),
    );
    out.insert(
        "ephemeral-storage".to_owned(),
        Quantity(format_binary_si(sample.nodefs.capacity)),
    );
    for h in &sample.hugepages {
        out.insert(
            hugepages_resource(h.page_size),
            Quantity(format_binary_si(h.page_size.saturating_mul(h.pages))),
        );
    }
    out
}

/// `status.allocatable`: capacity minus what the kubelet keeps back —
/// the hard eviction thresholds (`memory` − 100Mi, `ephemeral-storage` −
/// 10%) and the memory already reserved as huge pages; `cpu`, `pods` and
/// huge pages are allocatable whole. Never negative.
pub fn allocatable(
    sample: &Sample,
    max_pods: u32,
    thresholds: &EvictionThresholds,
) -> BTreeMap<String, Quantity> {
    let mut out = capacity(sample, max_pods);
    let hugepages: u64 = sample
        .hugepages
        .iter()
        .map(|h| h.page_size.saturating_mul(h.pages))
        .fold(0, u64::saturating_add);
    let memory = sample
        .memory
        .total
        .saturating_sub(thresholds.memory_available)
        .saturating_sub(hugepages);
    out.insert("memory".to_owned(), Quantity(format_binary_si(memory)));
    out.insert(
        "ephemeral-storage".to_owned(),
        Quantity(format_binary_si(minus_percent(
            sample.nodefs.capacity,
            thresholds.nodefs_available_percent,
        ))),
    );
    out
}

/// What the node's conditions should say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub memory_pressure: bool,
    pub disk_pressure: bool,
    pub pid_pressure: bool,
    /// Why the node is not ready (empty: ready). The container runtime's
    /// and the network's status checks join here with the CRI client.
    pub not_ready: Vec<String>,
}

/// The pressure signals of `sample` against `thresholds`: memory is
/// `MemAvailable` (the kubelet's `memory.available` is capacity minus the
/// root cgroup's working set, which `MemAvailable` approximates), disk is
/// the root directory's free space and free inodes (a filesystem without
/// inode accounting has no inode signal), pids are the pid limit minus the
/// threads running.
pub fn observe(sample: &Sample, thresholds: &EvictionThresholds) -> Observed {
    let fs = &sample.nodefs;
    Observed {
        memory_pressure: sample.memory.available < thresholds.memory_available,
        disk_pressure: below_percent(
            fs.available,
            fs.capacity,
            thresholds.nodefs_available_percent,
        ) || (fs.inodes > 0
            && below_percent(
                fs.inodes_free,
                fs.inodes,
                thresholds.nodefs_inodes_free_percent,
            )),
        pid_pressure: below_percent(
            sample.pids.available(),
            sample.pids.max,
            thresholds.pid_available_percent,
        ),
        not_ready: Vec::new(),
    }
}

// ---------------------------------------------------------------------
// Conditions
// ---------------------------------------------------------------------

/// One condition as the kubelet words it: (type, status, reason, message).
fn condition_words(observed: &Observed) -> [(&'static str, bool, &'static str, String); 4] {
    let pressure = |kind, on: bool, reasons: [&'static str; 2], messages: [&str; 2]| {
        let i = usize::from(on);
        (kind, on, reasons[i], messages[i].to_owned())
    };
    let ready = observed.not_ready.is_empty();
    [
        pressure(
            "MemoryPressure",
            observed.memory_pressure,
            ["KubeletHasSufficientMemory", "KubeletHasInsufficientMemory"],
            [
                "kubelet has sufficient memory available",
                "kubelet has insufficient memory available",
            ],
        ),
        pressure(
            "DiskPressure",
            observed.disk_pressure,
            ["KubeletHasNoDiskPressure", "KubeletHasDiskPressure"],
            ["kubelet has no disk pressure", "kubelet has disk pressure"],
        ),
        pressure(
            "PIDPressure",
            observed.pid_pressure,
            ["KubeletHasSufficientPID", "KubeletHasInsufficientPID"],
            [
                "kubelet has sufficient PID available",
                "kubelet has insufficient PID available",
            ],
        ),
        (
            "Ready",
            ready,
            if ready {
                "KubeletReady"
            } else {
                "KubeletNotReady"
            },
            if ready {
                "kubelet is posting ready status".to_owned()
            } else {
                observed.not_ready.join(",")
            },
        ),
    ]
}

/// `now` at the API's `Time` precision (whole seconds), so a value kept
/// in memory equals what a read returns.
pub fn api_time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// The node's conditions after an update at `now`: MemoryPressure,
/// DiskPressure, PIDPressure and Ready get status, reason and message
/// from `observed` and `lastHeartbeatTime = now`; `lastTransitionTime`
/// is `now` when a condition is new or its status changed (whoever had
/// written it: the node lifecycle controller's `Unknown` too) and is kept
/// otherwise. Other conditions (e.g. `NetworkUnavailable`) stay as they
/// are; the order is the existing one, new conditions appended in the
/// kubelet's order.
pub fn update_conditions(
    existing: &[NodeCondition],
    observed: &Observed,
    now: &Time,
) -> Vec<NodeCondition> {
    let mut out = existing.to_vec();
    for (kind, on, reason, message) in condition_words(observed) {
        let status = if on { "True" } else { "False" };
        let mut condition = NodeCondition {
            type_: kind.to_owned(),
            status: status.to_owned(),
            reason: Some(reason.to_owned()),
            message: Some(message),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(now.clone()),
        };
        match out.iter_mut().find(|c| c.type_ == kind) {
            Some(old) => {
                if old.status == status && old.last_transition_time.is_some() {
                    condition.last_transition_time = old.last_transition_time.clone();
                }
                *old = condition;
            }
            None => out.push(condition),
        }
    }
    out
}

/// `(type, status)` of every condition whose status differs between two
/// condition lists (new or changed in `after`).
pub fn changed_conditions<'a>(
    before: &[NodeCondition],
    after: &'a [NodeCondition],
) -> Vec<(&'a str, &'a str)> {
    after
        .iter()
        .filter(|a| {
            !before
                .iter()
                .any(|b| b.type_ == a.type_ && b.status == a.status)
        })
        .map(|a| (a.type_.as_str(), a.status.as_str()))
        .collect()
}

// ---------------------------------------------------------------------
// Labels, addresses, node info
// ---------------------------------------------------------------------

/// Labels outside the kubelet-settable `kubernetes.io` / `k8s.io` set,
/// as the kubelet's `IsKubeletLabel` decides.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

fn in_namespace(namespace: &str, parent: &str) -> bool {
    namespace == parent
        || namespace
            .strip_suffix(parent)
            .is_some_and(|p| p.ends_with('.'))
}

/// The labels the kubelet sets on its Node: `kubernetes.io/hostname` (the
/// node name, as a kubelet run with `--hostname-override` sets it),
/// `kubernetes.io/os`, `kubernetes.io/arch` and their deprecated `beta.`
/// twins, which kubelets still set.
pub fn default_labels(node_name: &str, info: &SystemInfo) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("kubernetes.io/hostname".to_owned(), node_name.to_owned()),
        ("kubernetes.io/os".to_owned(), info.operating_system.clone()),
        ("kubernetes.io/arch".to_owned(), info.architecture.clone()),
        (
            "beta.kubernetes.io/os".to_owned(),
            info.operating_system.clone(),
        ),
        (
            "beta.kubernetes.io/arch".to_owned(),
            info.architecture.clone(),
        ),
    ])
}

fn valid_label_segment(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn valid_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

/// Parses `--node-labels` (`key=value,key2=value2`) with the kubelet's
/// rules: keys and values must be valid label keys and values, and keys
/// in the `kubernetes.io` or `k8s.io` namespaces must be ones a kubelet
/// may set (`node.kubernetes.io/…`, `kubelet.kubernetes.io/…`, or the
/// well-known topology, OS, arch and instance-type labels; never
/// `node-role.kubernetes.io/…`).
pub fn parse_node_labels(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut refused = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("{item:?} is not key=value"))?;
        let (namespace, name) = match key.split_once('/') {
            Some((ns, name)) => (Some(ns), name),
            None => (None, key),
        };
        if !valid_label_segment(name) || namespace.is_some_and(|ns| !valid_dns_subdomain(ns)) {
            return Err(format!("{key:?} is not a valid label key"));
        }
        if !value.is_empty() && !valid_label_segment(value) {
            return Err(format!("{value:?} (of {key}) is not a valid label value"));
        }
        if let Some(ns) = namespace
            && (in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io"))
            && !KUBELET_LABELS.contains(&key)
            && !KUBELET_LABEL_NAMESPACES
                .iter()
                .any(|allowed| in_namespace(ns, allowed))
        {
            refused.push(key.to_owned());
        }
        out.insert(key.to_owned(), value.to_owned());
    }
    if !refused.is_empty() {
        return Err(format!(
            "unknown 'kubernetes.io' or 'k8s.io' labels {refused:?}: labels in these \
             namespaces must begin with kubelet.kubernetes.io/ or node.kubernetes.io/, \
             or be one of {KUBELET_LABELS:?}"
        ));
    }
    Ok(out)
}

/// `status.addresses`: the InternalIP (when known) and the Hostname.
pub fn addresses(node_ip: Option<IpAddr>, node_name: &str) -> Vec<NodeAddress> {
    node_ip
        .map(|ip| NodeAddress {
            type_: "InternalIP".to_owned(),
            address: ip.to_string(),
        })
        .into_iter()
        .chain([NodeAddress {
            type_: "Hostname".to_owned(),
            address: node_name.to_owned(),
        }])
        .collect()
}

/// `status.nodeInfo`.
pub fn node_info(info: &SystemInfo, container_runtime_version: &str) -> NodeSystemInfo {
    NodeSystemInfo {
        architecture: info.architecture.clone(),
        boot_id: info.boot_id.clone(),
        container_runtime_version: container_runtime_version.to_owned(),
        kernel_version: info.kernel_version.clone(),
        // keelson-node is its own kube-proxy.
        kube_proxy_version: KUBELET_VERSION.to_owned(),
        kubelet_version: KUBELET_VERSION.to_owned(),
        machine_id: info.machine_id.clone(),
        operating_system: info.operating_system.clone(),
        os_image: info.os_image.clone(),
        system_uuid: info.system_uuid.clone(),
        ..NodeSystemInfo::default()
    }
}

// ---------------------------------------------------------------------
// The objects and patches
// ---------------------------------------------------------------------

/// Everything a status is made of, besides the conditions.
pub struct StatusInputs<'a> {
    pub config: &'a KubeletConfig,
    pub info: &'a SystemInfo,
    pub sample: &'a Sample,
    pub node_ip: Option<IpAddr>,
    pub thresholds: &'a EvictionThresholds,
}

impl StatusInputs<'_> {
    fn status(&self, conditions: Vec<NodeCondition>) -> NodeStatus {
        NodeStatus {
            capacity: Some(capacity(self.sample, self.config.max_pods)),
            allocatable: Some(allocatable(
                self.sample,
                self.config.max_pods,
                self.thresholds,
            )),
            addresses: Some(addresses(self.node_ip, &self.config.node_name)),
            node_info: Some(node_info(self.info, &self.config.container_runtime_version)),
            conditions: Some(conditions),
            ..NodeStatus::default()
        }
    }
}

/// The labels this kubelet owns on its Node: the defaults, overridden by
/// `--node-labels`.
fn owned_labels(config: &KubeletConfig, info: &SystemInfo) -> BTreeMap<String, String> {
    let mut labels = default_labels(&config.node_name, info);
    labels.extend(config.node_labels.clone());
    labels
}

/// The Node to create.
pub fn initial_node(inputs: &StatusInputs<'_>, now: &Time) -> Node {
    let config = inputs.config;
    let cidr = config.pod_cidr.map(|c| c.to_string());
    Node {
        metadata: ObjectMeta {
            name: Some(config.node_name.clone()),
            labels: Some(owned_labels(config, inputs.info)),
            annotations: Some(BTreeMap::from([(
                ATTACH_DETACH_ANNOTATION.to_owned(),
                "true".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cidr.clone(),
            pod_cidrs: cidr.map(|c| vec![c]),
            ..NodeSpec::default()
        }),
        status: Some(inputs.status(update_conditions(
            &[],
            &observe(inputs.sample, inputs.thresholds),
            now,
        ))),
    }
}

/// The merge patch adopting an existing Node (`None`: nothing to change):
/// owned labels added or corrected (no label removed), the attach/detach
/// annotation added, `spec.podCIDR`/`podCIDRs` set from `--pod-cidr` only
/// when the Node has none; `existing`'s resourceVersion as precondition.
pub fn adopt_patch(existing: &Node, config: &KubeletConfig, info: &SystemInfo) -> Option<Value> {
    let mut patch = Map::new();
    let labels = existing.labels();
    let changed: Map<String, Value> = owned_labels(config, info)
        .into_iter()
        .filter(|(k, v)| labels.get(k) != Some(v))
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    let mut metadata = Map::new();
    if !changed.is_empty() {
        metadata.insert("labels".into(), Value::Object(changed));
    }
    if existing.annotations().get(ATTACH_DETACH_ANNOTATION) != Some(&"true".to_owned()) {
        metadata.insert(
            "annotations".into(),
            json!({ ATTACH_DETACH_ANNOTATION: "true" }),
        );
    }
    if !metadata.is_empty() {
        patch.insert("metadata".into(), Value::Object(metadata));
    }
    if let Some(cidr) = config.pod_cidr
        && pod_cidrs(existing).is_empty()
    {
        patch.insert(
            "spec".into(),
            json!({ "podCIDR": cidr.to_string(), "podCIDRs": [cidr.to_string()] }),
        );
    }
    if patch.is_empty() {
        return None;
    }
    patch
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()?
        .insert("resourceVersion".into(), json!(existing.resource_version()));
    Some(Value::Object(patch))
}

/// The Node's pod CIDRs (`spec.podCIDRs`, else `spec.podCIDR`).
pub fn pod_cidrs(node: &Node) -> Vec<String> {
    let spec = node.spec.as_ref();
    let list: Vec<String> = spec
        .and_then(|s| s.pod_cidrs.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|c| !c.is_empty())
        .collect();
    if !list.is_empty() {
        return list;
    }
    spec.and_then(|s| s.pod_cidr.clone())
        .filter(|c| !c.is_empty())
        .into_iter()
        .collect()
}

/// The merge patch of `/status` for `existing`: the whole status this
/// kubelet owns (conditions as computed by [`update_conditions`], so the
/// list is complete), plus `null` for `hugepages-*` resources the host no
/// longer has (merge patches keep map keys otherwise). It carries
/// `existing`'s resourceVersion as a precondition: a merge patch replaces
/// the whole conditions list, so a condition another writer added since
/// the read must make it fail (409) rather than vanish.
pub fn status_patch(
    existing: &Node,
    inputs: &StatusInputs<'_>,
    conditions: Vec<NodeCondition>,
) -> Result<Value, serde_json::Error> {
    let status = inputs.status(conditions);
    let mut value = serde_json::to_value(&status)?;
    if let Some(old) = existing.status.as_ref() {
        for (field, new) in [
            ("capacity", &status.capacity),
            ("allocatable", &status.allocatable),
        ] {
            let stale: Vec<&String> = old
                .capacity
                .iter()
                .chain(old.allocatable.iter())
                .flat_map(BTreeMap::keys)
                .filter(|k| k.starts_with("hugepages-"))
                .filter(|k| new.as_ref().is_none_or(|n| !n.contains_key(*k)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            for key in stale {
                value[field][key] = Value::Null;
            }
        }
    }
    Ok(json!({
        "metadata": { "resourceVersion": existing.resource_version() },
        "status": value,
    }))
}

// ---------------------------------------------------------------------
// The API side
// ---------------------------------------------------------------------

/// This node's Node in the API: registration and status updates.
pub struct NodeAgent {
    api: Api<Node>,
    config: KubeletConfig,
    info: SystemInfo,
    thresholds: EvictionThresholds,
}

impl NodeAgent {
    pub fn new(client: kube::Client, config: KubeletConfig, info: SystemInfo) -> Self {
        Self {
            api: Api::all(client),
            config,
            info,
            thresholds: EvictionThresholds::default(),
        }
    }

    fn name(&self) -> &str {
        &self.config.node_name
    }

    fn api_error(&self, verb: &'static str) -> impl FnOnce(kube::Error) -> NodeError + '_ {
        move |source| NodeError::Api {
            verb,
            node: self.name().to_owned(),
            source: Box::new(source),
        }
    }

    async fn call<T>(
        &self,
        verb: &'static str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, NodeError> {
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| NodeError::Timeout {
                verb,
                node: self.name().to_owned(),
            })?
            .map_err(self.api_error(verb))
    }

    /// The node IP: `--node-ip`, else the host's first global IPv4.
    fn node_ip(&self) -> Result<Option<IpAddr>, HostError> {
        match self.config.node_ip {
            Some(ip) => Ok(Some(ip)),
            None => Ok(host::pick_node_ip(&host::interface_addresses()?)),
        }
    }

    fn inputs<'a>(&'a self, sample: &'a Sample, node_ip: Option<IpAddr>) -> StatusInputs<'a> {
        StatusInputs {
            config: &self.config,
            info: &self.info,
            sample,
            node_ip,
            thresholds: &self.thresholds,
        }
    }

    /// Creates the Node, or adopts the existing one; returns it as the API
    /// holds it.
    pub async fn register(&self) -> Result<Node, NodeError> {
        let sample = Sample::read(&self.config.root_dir)?;
        let now = api_time(Timestamp::now());
        let node = initial_node(&self.inputs(&sample, self.node_ip()?), &now);
        let created = tokio::time::timeout(
            REQUEST_TIMEOUT,
            self.api.create(&PostParams::default(), &node),
        )
        .await
        .map_err(|_| NodeError::Timeout {
            verb: "creating",
            node: self.name().to_owned(),
        })?;
        match created {
            Ok(node) => {
                info!(uid = %node.uid().unwrap_or_default(), pod_cidrs = ?pod_cidrs(&node), resource_version = %node.resource_version().unwrap_or_default(), "registered the node");
                Ok(node)
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => self.adopt().await,
            Err(e) => Err(self.api_error("creating")(e)),
        }
    }

    async fn adopt(&self) -> Result<Node, NodeError> {
        let existing = self
            .call("reading", self.api.get_opt(self.name()))
            .await?
            .ok_or_else(|| NodeError::NotFound(self.name().to_owned()))?;
        let cidrs = pod_cidrs(&existing);
        if let Some(flag) = self.config.pod_cidr
            && !cidrs.is_empty()
            && !cidrs.contains(&flag.to_string())
        {
            warn!(node_pod_cidrs = ?cidrs, pod_cidr = %flag, "the Node has pod CIDRs already; --pod-cidr is ignored");
        }
        let node = match adopt_patch(&existing, &self.config, &self.info) {
            Some(patch) => {
                debug!(%patch, "updating the existing node");
                self.call(
                    "updating",
                    self.api
                        .patch(self.name(), &PatchParams::default(), &Patch::Merge(&patch)),
                )
                .await?
            }
            None => existing,
        };
        info!(uid = %node.uid().unwrap_or_default(), pod_cidrs = ?pod_cidrs(&node), resource_version = %node.resource_version().unwrap_or_default(), "adopted the existing node");
        Ok(node)
    }

    /// Registers, retrying with the kubelet's backoff (100 ms doubling up
    /// to 7 s) until it succeeds.
    pub async fn register_until_done(&self) -> Node {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.register().await {
                Ok(node) => return node,
                Err(e) => {
                    warn!(error = %e, retry_in = ?delay, "registering the node");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(7));
                }
            }
        }
    }

    /// One status update: reads the Node, computes its conditions and
    /// patches `/status` on that read; a conflict (someone wrote the Node
    /// meanwhile) reads again, up to the kubelet's 5 attempts. Returns the
    /// Node as written.
    pub async fn update_status(
        &self,
        sample: &Sample,
        observed: &Observed,
    ) -> Result<Node, NodeError> {
        const ATTEMPTS: usize = 5;
        let mut attempt = 1;
        loop {
            match self.try_update_status(sample, observed).await {
                Err(NodeError::Api { source, .. })
                    if attempt < ATTEMPTS
                        && matches!(&*source, kube::Error::Api(s) if s.is_conflict()) =>
                {
                    debug!(
                        attempt,
                        "the node changed since it was read; reading it again"
                    );
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_update_status(
        &self,
        sample: &Sample,
        observed: &Observed,
    ) -> Result<Node, NodeError> {
        let existing = self
            .call("reading", self.api.get_opt(self.name()))
            .await?
            .ok_or_else(|| NodeError::NotFound(self.name().to_owned()))?;
        let now = api_time(Timestamp::now());
        let old_conditions = existing
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let conditions = update_conditions(&old_conditions, observed, &now);
        for (kind, status) in changed_conditions(&old_conditions, &conditions) {
            info!(condition = kind, status, "node condition changed");
        }
        let inputs = self.inputs(sample, self.node_ip()?);
        let patch = status_patch(&existing, &inputs, conditions).map_err(|source| {
            NodeError::Serialize {
                node: self.name().to_owned(),
                source,
            }
        })?;
        let node = self
            .call(
                "updating the status of",
                self.api
                    .patch_status(self.name(), &PatchParams::default(), &Patch::Merge(&patch)),
            )
            .await?;
        debug!(resource_version = %node.resource_version().unwrap_or_default(), "node status updated");
        Ok(node)
    }

    /// Registers the Node, then keeps its status current until the future
    /// is dropped; publishes the Node's uid and pod CIDRs in `state`
    /// (again after a re-registration, when the Node was deleted).
    pub async fn run(self, state: watch::Sender<Option<NodeState>>) {
        let span = info_span!("node", node = %self.config.node_name);
        async move {
            let node = self.register_until_done().await;
            state.send_replace(Some(NodeState::of(&node)));
            let mut ticker = tokio::time::interval(
                SAMPLE_INTERVAL.min(self.config.node_status_update_frequency),
            );
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // What was last posted, and at which tick (ticks are evenly
            // spaced, so a post every N samples stays on the period).
            let mut posted: Option<(Observed, Instant)> = None;
            loop {
                let tick = ticker.tick().await.into_std();
                let sample = match Sample::read(&self.config.root_dir) {
                    Ok(sample) => sample,
                    Err(e) => {
                        warn!(error = %e, "sampling the node's resources");
                        continue;
                    }
                };
                let observed = observe(&sample, &self.thresholds);
                let due = posted.as_ref().is_none_or(|(last, at)| {
                    *last != observed
                        || tick.duration_since(*at) >= self.config.node_status_update_frequency
                });
                if !due {
                    continue;
                }
                match self.update_status(&sample, &observed).await {
                    Ok(node) => {
                        posted = Some((observed, tick));
                        state.send_if_modified(|current| {
                            let new = Some(NodeState::of(&node));
                            let changed = *current != new;
                            *current = new;
                            changed
                        });
                    }
                    Err(NodeError::NotFound(_)) => {
                        warn!("the Node was deleted; registering it again");
                        let node = self.register_until_done().await;
                        state.send_replace(Some(NodeState::of(&node)));
                        posted = None;
                    }
                    // Retried at the next sample.
                    Err(e) => warn!(error = %e, "updating the node status"),
                }
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample() -> Sample {
        Sample {
            cpus: 2,
            memory: MemInfo {
                total: 24683664 * 1024,
                available: 23769944 * 1024,
            },
            nodefs: FsStats {
                capacity: 100 << 30,
                available: 50 << 30,
                inodes: 1000,
                inodes_free: 500,
            },
            pids: PidStats {
                max: 32768,
                running: 103,
            },
            hugepages: vec![
                HugePages {
                    page_size: 2 << 20,
                    pages: 0,
                },
                HugePages {
                    page_size: 1 << 30,
                    pages: 0,
                },
            ],
        }
    }

    fn q(s: &str) -> Quantity {
        Quantity(s.to_owned())
    }

    #[test]
    fn quantities_are_canonical() {
        assert_eq!(format_decimal_si(0), "0");
        assert_eq!(format_decimal_si(2), "2");
        assert_eq!(format_decimal_si(110), "110");
        assert_eq!(format_decimal_si(1000), "1k");
        assert_eq!(format_decimal_si(1500), "1500");
        assert_eq!(format_decimal_si(2_000_000), "2M");
        assert_eq!(format_binary_si(0), "0");
        assert_eq!(format_binary_si(512), "512");
        assert_eq!(format_binary_si(1000), "1k");
        assert_eq!(format_binary_si(1024), "1Ki");
        assert_eq!(format_binary_si(1500), "1500");
        assert_eq!(format_binary_si(24683664 * 1024), "24683664Ki");
        assert_eq!(format_binary_si(2 << 20), "2Mi");
        assert_eq!(format_binary_si(1 << 30), "1Gi");
        assert_eq!(format_binary_si(93_478_772_582), "93478772582");
        assert_eq!(format_binary_si(u64::MAX), u64::MAX.to_string());
        assert_eq!(format_binary_si(1 << 63), "8Ei");
        assert_eq!(hugepages_resource(2 << 20), "hugepages-2Mi");
        assert_eq!(hugepages_resource(1 << 30), "hugepages-1Gi");
    }

    #[test]
    fn capacity_and_allocatable_as_the_kubelet_reports_them() {
        let s = sample();
        let t = EvictionThresholds::default();
        let cap = capacity(&s, 110);
        assert_eq!(cap["cpu"], q("2"));
        assert_eq!(cap["memory"], q("24683664Ki"));
        assert_eq!(cap["pods"], q("110"));
        assert_eq!(cap["ephemeral-storage"], q("100Gi"));
        assert_eq!(cap["hugepages-2Mi"], q("0"));
        assert_eq!(cap["hugepages-1Gi"], q("0"));
        let alloc = allocatable(&s, 110, &t);
        assert_eq!(alloc["cpu"], q("2"));
        // 24683664Ki − 100Mi (102400Ki).
        assert_eq!(alloc["memory"], q("24581264Ki"));
        assert_eq!(alloc["pods"], q("110"));
        // 100Gi − 10%.
        assert_eq!(alloc["ephemeral-storage"], q("90Gi"));
        assert_eq!(alloc.len(), cap.len());
    }

    #[test]
    fn allocatable_memory_excludes_huge_pages_and_never_goes_negative() {
        let mut s = sample();
        s.hugepages[0].pages = 512; // 1Gi of 2Mi pages
        let alloc = allocatable(&s, 110, &EvictionThresholds::default());
        assert_eq!(capacity(&s, 110)["hugepages-2Mi"], q("1Gi"));
        assert_eq!(alloc["hugepages-2Mi"], q("1Gi"));
        assert_eq!(
            alloc["memory"],
            q(&format_binary_si(24683664 * 1024 - (100 << 20) - (1 << 30)))
        );
        s.memory.total = 50 << 20;
        s.nodefs.capacity = 0;
        let alloc = allocatable(&s, 110, &EvictionThresholds::default());
        assert_eq!(alloc["memory"], q("0"));
        assert_eq!(alloc["ephemeral-storage"], q("0"));
    }

    #[test]
    fn pressure_follows_the_default_eviction_thresholds() {
        let t = EvictionThresholds::default();
        let mut s = sample();
        assert_eq!(observe(&s, &t), Observed::default());

        s.memory.available = (100 << 20) - 1;
        assert!(observe(&s, &t).memory_pressure);
        s.memory.available = 100 << 20;
        assert!(!observe(&s, &t).memory_pressure);

        // nodefs.available<10%: exactly 10% is no pressure.
        s.nodefs.available = (100 << 30) / 10;
        assert!(!observe(&s, &t).disk_pressure);
        s.nodefs.available -= 1;
        assert!(observe(&s, &t).disk_pressure);
        s.nodefs.available = 50 << 30;
        // nodefs.inodesFree<5%.
        s.nodefs.inodes_free = 49;
        assert!(observe(&s, &t).disk_pressure);
        s.nodefs.inodes_free = 50;
        assert!(!observe(&s, &t).disk_pressure);
        // No inode accounting: no inode signal.
        s.nodefs.inodes = 0;
        s.nodefs.inodes_free = 0;
        assert!(!observe(&s, &t).disk_pressure);

        s.pids.running = 32768 - 3276;
        assert!(observe(&s, &t).pid_pressure);
        s.pids.running = 32768 - 3277;
        assert!(!observe(&s, &t).pid_pressure);
        s.pids.running = 40000;
        assert!(observe(&s, &t).pid_pressure);
    }

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn find<'a>(conditions: &'a [NodeCondition], kind: &str) -> &'a NodeCondition {
        conditions.iter().find(|c| c.type_ == kind).unwrap()
    }

    #[test]
    fn first_conditions_are_the_kubelets_four() {
        let c = update_conditions(&[], &Observed::default(), &at(100));
        let kinds: Vec<&str> = c.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(
            kinds,
            ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        );
        let ready = find(&c, "Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("kubelet is posting ready status")
        );
        let memory = find(&c, "MemoryPressure");
        assert_eq!(memory.status, "False");
        assert_eq!(memory.reason.as_deref(), Some("KubeletHasSufficientMemory"));
        assert_eq!(
            find(&c, "DiskPressure").reason.as_deref(),
            Some("KubeletHasNoDiskPressure")
        );
        assert_eq!(
            find(&c, "PIDPressure").reason.as_deref(),
            Some("KubeletHasSufficientPID")
        );
        for c in &c {
            assert_eq!(c.last_heartbeat_time, Some(at(100)));
            assert_eq!(c.last_transition_time, Some(at(100)));
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let first = update_conditions(&[], &Observed::default(), &at(100));
        let same = update_conditions(&first, &Observed::default(), &at(110));
        for c in &same {
            assert_eq!(c.last_heartbeat_time, Some(at(110)), "{}", c.type_);
            assert_eq!(c.last_transition_time, Some(at(100)), "{}", c.type_);
        }
        assert!(changed_conditions(&first, &same).is_empty());

        let disk = Observed {
            disk_pressure: true,
            ..Observed::default()
        };
        let pressed = update_conditions(&same, &disk, &at(115));
        let d = find(&pressed, "DiskPressure");
        assert_eq!(d.status, "True");
        assert_eq!(d.reason.as_deref(), Some("KubeletHasDiskPressure"));
        assert_eq!(d.message.as_deref(), Some("kubelet has disk pressure"));
        assert_eq!(d.last_transition_time, Some(at(115)));
        assert_eq!(find(&pressed, "Ready").last_transition_time, Some(at(100)));
        assert_eq!(
            changed_conditions(&same, &pressed),
            [("DiskPressure", "True")]
        );

        let relieved = update_conditions(&pressed, &Observed::default(), &at(120));
        assert_eq!(
            find(&relieved, "DiskPressure").last_transition_time,
            Some(at(120))
        );
    }

    #[test]
    fn an_unknown_ready_written_by_the_controller_is_a_transition() {
        let mut conditions = update_conditions(&[], &Observed::default(), &at(100));
        let ready = conditions.iter_mut().find(|c| c.type_ == "Ready").unwrap();
        ready.status = "Unknown".into();
        ready.reason = Some("NodeStatusUnknown".into());
        ready.last_transition_time = Some(at(150));
        let next = update_conditions(&conditions, &Observed::default(), &at(160));
        let ready = find(&next, "Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason.as_deref(), Some("KubeletReady"));
        assert_eq!(ready.last_transition_time, Some(at(160)));
    }

    #[test]
    fn not_ready_reasons_and_foreign_conditions() {
        let foreign = NodeCondition {
            type_: "NetworkUnavailable".into(),
            status: "False".into(),
            reason: Some("RouteCreated".into()),
            message: None,
            last_heartbeat_time: Some(at(1)),
            last_transition_time: Some(at(1)),
        };
        let observed = Observed {
            not_ready: vec![
                "container runtime is down".into(),
                "PLEG is not healthy".into(),
            ],
            ..Observed::default()
        };
        let c = update_conditions(std::slice::from_ref(&foreign), &observed, &at(100));
        assert_eq!(c[0], foreign);
        assert_eq!(c.len(), 5);
        let ready = find(&c, "Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("container runtime is down,PLEG is not healthy")
        );
    }

    #[test]
    fn api_time_drops_sub_seconds() {
        let t = Timestamp::from_millisecond(1_700_000_000_999).unwrap();
        assert_eq!(api_time(t), at(1_700_000_000));
    }

    #[test]
    fn node_labels_follow_the_kubelets_rules() {
        let ok = parse_node_labels(
            "node.kubernetes.io/instance-type=metal, topology.kubernetes.io/zone=z1,team=web,example.com/x=",
        )
        .unwrap();
        assert_eq!(ok.len(), 4);
        assert_eq!(ok["team"], "web");
        assert_eq!(ok["example.com/x"], "");
        assert!(parse_node_labels("kubelet.kubernetes.io/a=b").is_ok());
        assert!(parse_node_labels("x.node.kubernetes.io/a=b").is_ok());
        assert!(parse_node_labels("").unwrap().is_empty());
        for bad in [
            "node-role.kubernetes.io/master=",
            "foo.k8s.io/a=b",
            "kubernetes.io/role=x",
            "a",
            "=b",
            "a=b c",
            "a=-b",
            "Bad_Domain/a=b",
        ] {
            assert!(parse_node_labels(bad).is_err(), "{bad}");
        }
        // Not a subdomain of node.kubernetes.io.
        assert!(parse_node_labels("xnode.kubernetes.io/a=b").is_err());
    }

    fn config() -> KubeletConfig {
        KubeletConfig {
            node_name: "n1".into(),
            pod_cidr: Some("10.244.1.0/24".parse().unwrap()),
            max_pods: 110,
            container_runtime_version: "containerd://1.6.20".into(),
            node_labels: BTreeMap::from([("team".into(), "web".into())]),
            ..KubeletConfig::for_node("n1", "/tmp/kubeconfig".into())
        }
    }

    fn info() -> SystemInfo {
        SystemInfo {
            kernel_version: "6.18.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            operating_system: "linux".into(),
            architecture: "amd64".into(),
            machine_id: "m".into(),
            boot_id: "b".into(),
            system_uuid: String::new(),
        }
    }

    #[test]
    fn the_initial_node_has_labels_cidr_and_status() {
        let (config, info, s) = (config(), info(), sample());
        let t = EvictionThresholds::default();
        let inputs = StatusInputs {
            config: &config,
            info: &info,
            sample: &s,
            node_ip: Some("10.0.0.5".parse().unwrap()),
            thresholds: &t,
        };
        let node = initial_node(&inputs, &at(5));
        let v = serde_json::to_value(&node).unwrap();
        assert_eq!(v["metadata"]["name"], "n1");
        assert_eq!(v["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
        assert_eq!(v["metadata"]["labels"]["kubernetes.io/arch"], "amd64");
        assert_eq!(v["metadata"]["labels"]["beta.kubernetes.io/os"], "linux");
        assert_eq!(v["metadata"]["labels"]["team"], "web");
        assert_eq!(
            v["metadata"]["annotations"][ATTACH_DETACH_ANNOTATION],
            "true"
        );
        assert_eq!(v["spec"]["podCIDR"], "10.244.1.0/24");
        assert_eq!(v["spec"]["podCIDRs"], json!(["10.244.1.0/24"]));
        assert_eq!(
            v["status"]["addresses"],
            json!([{"type": "InternalIP", "address": "10.0.0.5"}, {"type": "Hostname", "address": "n1"}])
        );
        let ni = &v["status"]["nodeInfo"];
        assert_eq!(ni["kubeletVersion"], KUBELET_VERSION);
        assert_eq!(ni["containerRuntimeVersion"], "containerd://1.6.20");
        assert_eq!(ni["osImage"], "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(v["status"]["conditions"][3]["type"], "Ready");
        assert_eq!(
            v["status"]["conditions"][3]["lastHeartbeatTime"],
            "1970-01-01T00:00:05Z"
        );
        assert!(KUBELET_VERSION.starts_with("v1.33.0-keelson."));
    }

    fn existing(labels: &[(&str, &str)], cidr: Option<&str>) -> Node {
        serde_json::from_value(json!({
            "metadata": {
                "name": "n1", "uid": "u1", "resourceVersion": "7",
                "labels": labels.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<Map<_, _>>(),
            },
            "spec": cidr.map(|c| json!({"podCIDR": c, "podCIDRs": [c]})).unwrap_or(json!({})),
        }))
        .unwrap()
    }

    #[test]
    fn adopting_corrects_owned_labels_and_keeps_a_set_pod_cidr() {
        let (config, info) = (config(), info());
        let mut labels = default_labels("n1", &info).into_iter().collect::<Vec<_>>();
        labels.push(("team".into(), "web".into()));
        let borrowed: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut node = existing(&borrowed, Some("10.244.9.0/24"));
        node.metadata.annotations = Some(BTreeMap::from([(
            ATTACH_DETACH_ANNOTATION.to_owned(),
            "true".to_owned(),
        )]));
        // Up to date, CIDR set by someone else: nothing to do.
        assert_eq!(adopt_patch(&node, &config, &info), None);
        assert_eq!(pod_cidrs(&node), ["10.244.9.0/24"]);

        let node = existing(&[("kubernetes.io/arch", "arm64"), ("owner", "ops")], None);
        let patch = adopt_patch(&node, &config, &info).unwrap();
        assert_eq!(patch["metadata"]["labels"]["kubernetes.io/arch"], "amd64");
        assert_eq!(patch["metadata"]["labels"]["team"], "web");
        assert!(patch["metadata"]["labels"].get("owner").is_none());
        assert_eq!(
            patch["metadata"]["annotations"][ATTACH_DETACH_ANNOTATION],
            "true"
        );
        assert_eq!(patch["spec"]["podCIDR"], "10.244.1.0/24");
        assert_eq!(patch["spec"]["podCIDRs"], json!(["10.244.1.0/24"]));
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
    }

    #[test]
    fn pod_cidrs_fall_back_to_the_singular_field() {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n"}, "spec": {"podCIDR": "10.0.0.0/24"}
        }))
        .unwrap();
        assert_eq!(pod_cidrs(&node), ["10.0.0.0/24"]);
        let node: Node = serde_json::from_value(json!({"metadata": {"name": "n"}})).unwrap();
        assert!(pod_cidrs(&node).is_empty());
    }

    #[test]
    fn the_status_patch_nulls_huge_page_sizes_that_are_gone() {
        let (config, info) = (config(), info());
        let mut s = sample();
        let t = EvictionThresholds::default();
        let mut node = existing(&[], None);
        node.status = Some(NodeStatus {
            capacity: Some(capacity(&s, 110)),
            allocatable: Some(allocatable(&s, 110, &t)),
            ..NodeStatus::default()
        });
        s.hugepages.truncate(1);
        let inputs = StatusInputs {
            config: &config,
            info: &info,
            sample: &s,
            node_ip: None,
            thresholds: &t,
        };
        let conditions = update_conditions(&[], &Observed::default(), &at(1));
        let patch = status_patch(&node, &inputs, conditions).unwrap();
        assert_eq!(patch["status"]["capacity"]["hugepages-1Gi"], Value::Null);
        assert!(patch["status"]["capacity"].get("hugepages-1Gi").is_some());
        assert_eq!(patch["status"]["allocatable"]["hugepages-1Gi"], Value::Null);
        assert_eq!(patch["status"]["capacity"]["hugepages-2Mi"], "0");
        assert_eq!(
            patch["status"]["addresses"],
            json!([{"type": "Hostname", "address": "n1"}])
        );
        assert_eq!(patch["status"]["conditions"].as_array().unwrap().len(), 4);
        assert_eq!(patch["metadata"]["resourceVersion"], "7");
    }
}
