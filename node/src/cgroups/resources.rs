//! A pod's QoS class and the values of its pod-level cgroup, computed from
//! the Pod object exactly as the kubelet does. Pure functions, no I/O.
//!
//! - [`pod_qos`] / [`compute_pod_qos`] — `pkg/apis/core/v1/helper/qos`
//!   (`GetPodQOS`, `ComputePodQOS`): each container (init containers
//!   included) is Guaranteed when its cpu and memory requests equal its
//!   limits and are nonzero, BestEffort when it has neither, else
//!   Burstable; the pod is Guaranteed or BestEffort when all its containers
//!   are, else Burstable. Pod-level `spec.resources`, when set, decide
//!   alone. Requests default to limits as the API server defaults them.
//! - [`pod_requests`] / [`pod_limits`] — `component-helpers/resource`
//!   (`PodRequests`, `PodLimits`): the sum over containers, at least each
//!   init container (plus the restartable "sidecar" init containers
//!   started before it, which also add to the sum), pod-level values
//!   replacing the aggregate, plus `spec.overhead` (on limits only where a
//!   limit is set).
//! - [`pod_resources`] — `pkg/kubelet/cm/helpers_linux.go`
//!   (`ResourceConfigForPod`) with the conversions `MilliCPUToShares`,
//!   `MilliCPUToQuota` and runc's shares → `cpu.weight`.
//!
//! Not modelled: hugepages, in-place resize (status resources), the
//! kubelet's `--cpu-cfs-quota-period`, memory QoS (`memory.min/high`).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{Container, Pod, ResourceRequirements},
    apimachinery::pkg::api::resource::Quantity as ApiQuantity,
};
use thiserror::Error;

use super::quantity::{Quantity, QuantityError};

/// `cpu`, in cores.
pub const RESOURCE_CPU: &str = "cpu";
/// `memory`, in bytes.
pub const RESOURCE_MEMORY: &str = "memory";

/// Minimum `cpu.shares` (the kernel's; the kubelet's `MinShares`).
pub const MIN_SHARES: u64 = 2;
/// Maximum `cpu.shares` (`MaxShares`).
pub const MAX_SHARES: u64 = 262_144;
/// `cpu.shares` of one CPU (`SharesPerCPU`).
pub const SHARES_PER_CPU: u64 = 1024;
/// The CFS period the kubelet uses (`QuotaPeriod`, 100 ms in µs).
pub const CFS_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kubelet sets (`MinQuotaPeriod`, 1 ms in µs).
pub const MIN_CFS_QUOTA_US: u64 = 1_000;

/// A pod's quality-of-service class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QosClass {
    Guaranteed,
    Burstable,
    BestEffort,
}

impl QosClass {
    /// The API's spelling (`status.qosClass`).
    pub fn as_str(self) -> &'static str {
        match self {
            QosClass::Guaranteed => "Guaranteed",
            QosClass::Burstable => "Burstable",
            QosClass::BestEffort => "BestEffort",
        }
    }

    /// Parses the API's spelling.
    pub fn from_api(s: &str) -> Option<Self> {
        match s {
            "Guaranteed" => Some(QosClass::Guaranteed),
            "Burstable" => Some(QosClass::Burstable),
            "BestEffort" => Some(QosClass::BestEffort),
            _ => None,
        }
    }
}

impl std::fmt::Display for QosClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A quantity in a pod that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResourceError {
    #[error("{location}: {resource}: {source}")]
    Quantity {
        /// `container web requests`, `pod overhead`, …
        location: String,
        resource: String,
        source: QuantityError,
    },
    #[error("{location}: {resource}: negative quantity {value}")]
    Negative {
        location: String,
        resource: String,
        value: Quantity,
    },
    #[error("pod {resource} total is out of range")]
    OutOfRange { resource: String },
}

/// The values of one pod-level (or QoS-level) cgroup: its complete desired
/// state, written as a whole by the managers (`None` means unlimited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodResources {
    /// `cpu.shares` (v1); `cpu.weight` on v2 is [`cpu_weight_from_shares`].
    pub cpu_shares: u64,
    /// CFS quota per period in µs (`cpu.cfs_quota_us`, first field of
    /// `cpu.max`); `None` for no limit.
    pub cpu_quota_us: Option<u64>,
    /// CFS period in µs.
    pub cpu_period_us: u64,
    /// `memory.limit_in_bytes` / `memory.max`.
    pub memory_limit_bytes: Option<u64>,
    /// `pids.max` (the kubelet's `--pod-max-pids`).
    pub pids_limit: Option<u64>,
}

impl Default for PodResources {
    /// The kernel's defaults: 1024 shares, nothing limited.
    fn default() -> Self {
        PodResources {
            cpu_shares: SHARES_PER_CPU,
            cpu_quota_us: None,
            cpu_period_us: CFS_PERIOD_US,
            memory_limit_bytes: None,
            pids_limit: None,
        }
    }
}

impl PodResources {
    /// `cpu.weight` for v2.
    pub fn cpu_weight(&self) -> u64 {
        cpu_weight_from_shares(self.cpu_shares)
    }
}

/// Kubelet settings that shape the pod cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceOptions {
    /// `--cpu-cfs-quota` (default true): enforce CPU limits with CFS quota.
    pub enforce_cpu_limits: bool,
    /// `--pod-max-pids` (default unlimited).
    pub pod_pids_limit: Option<u64>,
}

impl Default for ResourceOptions {
    fn default() -> Self {
        ResourceOptions {
            enforce_cpu_limits: true,
            pod_pids_limit: None,
        }
    }
}

/// The kubelet's `MilliCPUToShares`: 2 for zero, else
/// `milli × 1024 / 1000` within [2, 262144].
pub fn milli_cpu_to_shares(milli_cpu: u64) -> u64 {
    if milli_cpu == 0 {
        return MIN_SHARES;
    }
    let shares = milli_cpu.saturating_mul(SHARES_PER_CPU) / 1000;
    shares.clamp(MIN_SHARES, MAX_SHARES)
}

/// The kubelet's `MilliCPUToQuota`: `None` (no quota) for zero, else
/// `milli × period / 1000`, at least 1 ms.
pub fn milli_cpu_to_quota(milli_cpu: u64, period_us: u64) -> Option<u64> {
    if milli_cpu == 0 {
        return None;
    }
    let quota = milli_cpu.saturating_mul(period_us) / 1000;
    Some(quota.max(MIN_CFS_QUOTA_US))
}

/// runc's `ConvertCPUSharesToCgroupV2Value`, which the kubelet uses:
/// `1 + ((shares − 2) × 9999) / 262142` (shares below 2 count as 2), so
/// 2 → 1, 1024 → 39, 262144 → 10000.
pub fn cpu_weight_from_shares(shares: u64) -> u64 {
    let shares = shares.clamp(MIN_SHARES, MAX_SHARES);
    1 + ((shares - MIN_SHARES) * 9999) / (MAX_SHARES - MIN_SHARES)
}

/// The QoS class the API already recorded (`status.qosClass`), else
/// [`compute_pod_qos`] (`GetPodQOS`).
pub fn pod_qos(pod: &Pod) -> Result<QosClass, ResourceError> {
    if let Some(class) = pod
        .status
        .as_ref()
        .and_then(|s| s.qos_class.as_deref())
        .and_then(QosClass::from_api)
    {
        return Ok(class);
    }
    compute_pod_qos(pod)
}

/// `ComputePodQOS`: the class from the spec alone.
pub fn compute_pod_qos(pod: &Pod) -> Result<QosClass, ResourceError> {
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(QosClass::BestEffort);
    };
    if let Some(pod_level) = &spec.resources {
        return resource_qos(&Effective::of(pod_level, "pod-level resources")?);
    }
    let mut class = None;
    for container in init_containers(pod).chain(&spec.containers) {
        let qos = resource_qos(&Effective::of_container(container)?)?;
        match class {
            _ if qos == QosClass::Burstable => return Ok(qos),
            None => class = Some(qos),
            Some(c) if c != qos => return Ok(QosClass::Burstable),
            Some(_) => {}
        }
    }
    Ok(class.unwrap_or(QosClass::BestEffort))
}

/// `resourceQOS` over one set of (defaulted) requirements.
fn resource_qos(res: &Effective) -> Result<QosClass, ResourceError> {
    if res.requests.is_empty() && res.limits.is_empty() {
        return Ok(QosClass::BestEffort);
    }
    let mut class = None;
    for resource in [RESOURCE_CPU, RESOURCE_MEMORY] {
        let request = res.requests.get(resource).copied().unwrap_or_default();
        let limit = res.limits.get(resource).copied().unwrap_or_default();
        if request != limit {
            return Ok(QosClass::Burstable);
        }
        let best_effort = request.is_zero();
        match class {
            None => {
                class = Some(if best_effort {
                    QosClass::BestEffort
                } else {
                    QosClass::Guaranteed
                })
            }
            Some(c) if best_effort != (c == QosClass::BestEffort) => {
                return Ok(QosClass::Burstable);
            }
            Some(_) => {}
        }
    }
    Ok(class.unwrap_or(QosClass::BestEffort))
}

/// Parsed requests (defaulted from limits) and limits of one container or
/// of the pod level.
#[derive(Debug, Default)]
struct Effective {
    requests: BTreeMap<String, Quantity>,
    limits: BTreeMap<String, Quantity>,
}

impl Effective {
    fn of_container(c: &Container) -> Result<Self, ResourceError> {
        match &c.resources {
            Some(r) => Self::of(r, &format!("container {}", c.name)),
            None => Ok(Self::default()),
        }
    }

    /// Parses, and defaults each missing request to its limit as the API
    /// server does (`SetDefaults_Pod` / `defaultPodRequests`).
    fn of(r: &ResourceRequirements, location: &str) -> Result<Self, ResourceError> {
        let limits = parse_list(r.limits.as_ref(), &format!("{location} limits"))?;
        let mut requests = parse_list(r.requests.as_ref(), &format!("{location} requests"))?;
        for (name, limit) in &limits {
            requests.entry(name.clone()).or_insert(*limit);
        }
        Ok(Effective { requests, limits })
    }
}

fn parse_list(
    list: Option<&BTreeMap<String, ApiQuantity>>,
    location: &str,
) -> Result<BTreeMap<String, Quantity>, ResourceError> {
    let mut out = BTreeMap::new();
    for (name, q) in list.into_iter().flatten() {
        let value = Quantity::parse(&q.0).map_err(|source| ResourceError::Quantity {
            location: location.to_owned(),
            resource: name.clone(),
            source,
        })?;
        if value.is_negative() {
            return Err(ResourceError::Negative {
                location: location.to_owned(),
                resource: name.clone(),
                value,
            });
        }
        out.insert(name.clone(), value);
    }
    Ok(out)
}

fn init_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    pod.spec
        .as_ref()
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// Which side of the requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Requests,
    Limits,
}

/// Totals of one side over the pod, per resource, with a hook that sees
/// each container's effective contribution (the kubelet's `ContainerFn`).
fn aggregate(
    pod: &Pod,
    side: Side,
    mut each: impl FnMut(&BTreeMap<String, Quantity>),
) -> Result<BTreeMap<String, Quantity>, ResourceError> {
    let pick = |c: &Container| -> Result<BTreeMap<String, Quantity>, ResourceError> {
        let e = Effective::of_container(c)?;
        Ok(match side {
            Side::Requests => e.requests,
            Side::Limits => e.limits,
        })
    };
    let mut total = BTreeMap::new();
    if let Some(spec) = &pod.spec {
        for c in &spec.containers {
            let list = pick(c)?;
            each(&list);
            add_into(&mut total, &list)?;
        }
    }
    let mut sidecars = BTreeMap::new();
    let mut init_max = BTreeMap::new();
    for c in init_containers(pod) {
        let own = pick(c)?;
        let effective = if is_sidecar(c) {
            add_into(&mut total, &own)?;
            add_into(&mut sidecars, &own)?;
            sidecars.clone()
        } else {
            let mut tmp = own;
            add_into(&mut tmp, &sidecars)?;
            tmp
        };
        each(&effective);
        max_into(&mut init_max, &effective);
    }
    max_into(&mut total, &init_max);
    Ok(total)
}

fn add_into(
    total: &mut BTreeMap<String, Quantity>,
    list: &BTreeMap<String, Quantity>,
) -> Result<(), ResourceError> {
    for (name, q) in list {
        let sum = total
            .get(name)
            .copied()
            .unwrap_or_default()
            .checked_add(*q)
            .ok_or_else(|| ResourceError::OutOfRange {
                resource: name.clone(),
            })?;
        total.insert(name.clone(), sum);
    }
    Ok(())
}

fn max_into(total: &mut BTreeMap<String, Quantity>, list: &BTreeMap<String, Quantity>) {
    for (name, q) in list {
        let entry = total.entry(name.clone()).or_insert(*q);
        if *q > *entry {
            *entry = *q;
        }
    }
}

fn pod_level(pod: &Pod) -> Result<Option<Effective>, ResourceError> {
    pod.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .map(|r| Effective::of(r, "pod-level resources"))
        .transpose()
}

fn overhead(pod: &Pod) -> Result<BTreeMap<String, Quantity>, ResourceError> {
    parse_list(
        pod.spec.as_ref().and_then(|s| s.overhead.as_ref()),
        "pod overhead",
    )
}

/// Pod-level resources (cpu, memory, hugepages) replace the aggregate.
fn is_pod_level_resource(name: &str) -> bool {
    name == RESOURCE_CPU || name == RESOURCE_MEMORY || name.starts_with("hugepages-")
}

/// `PodRequests`: what the pod asks for, per resource.
pub fn pod_requests(pod: &Pod) -> Result<BTreeMap<String, Quantity>, ResourceError> {
    let mut requests = aggregate(pod, Side::Requests, |_| {})?;
    if let Some(level) = pod_level(pod)? {
        for (name, q) in level.requests {
            if is_pod_level_resource(&name) {
                requests.insert(name, q);
            }
        }
    }
    add_into(&mut requests, &overhead(pod)?)?;
    Ok(requests)
}

/// `PodLimits`: the pod's limits, per resource (absent = unlimited).
pub fn pod_limits(pod: &Pod) -> Result<BTreeMap<String, Quantity>, ResourceError> {
    limits_and_declared(pod).map(|(limits, _)| limits)
}

/// Whether every container (and init container, counted with the sidecars
/// before it) limits a resource, or the pod level does: only then does
/// the kubelet put a Burstable pod's limit on its cgroup.
#[derive(Debug, Clone, Copy)]
struct Declared {
    cpu: bool,
    memory: bool,
}

fn limits_and_declared(pod: &Pod) -> Result<(BTreeMap<String, Quantity>, Declared), ResourceError> {
    let mut declared = Declared {
        cpu: true,
        memory: true,
    };
    let mut limits = aggregate(pod, Side::Limits, |list| {
        let zero = |r: &str| list.get(r).is_none_or(|q| q.is_zero());
        declared.cpu &= !zero(RESOURCE_CPU);
        declared.memory &= !zero(RESOURCE_MEMORY);
    })?;
    if let Some(level) = pod_level(pod)? {
        for (name, q) in level.limits {
            if is_pod_level_resource(&name) {
                if name == RESOURCE_CPU && !q.is_zero() {
                    declared.cpu = true;
                }
                if name == RESOURCE_MEMORY && !q.is_zero() {
                    declared.memory = true;
                }
                limits.insert(name, q);
            }
        }
    }
    for (name, extra) in overhead(pod)? {
        if let Some(limit) = limits.get_mut(&name)
            && !limit.is_zero()
        {
            *limit = limit
                .checked_add(extra)
                .ok_or_else(|| ResourceError::OutOfRange {
                    resource: name.clone(),
                })?;
        }
    }
    Ok((limits, declared))
}

fn milli(q: Option<&Quantity>, resource: &str) -> Result<u64, ResourceError> {
    let v = q.copied().unwrap_or_default().milli_value();
    v.and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| ResourceError::OutOfRange {
            resource: resource.to_owned(),
        })
}

fn units(q: Option<&Quantity>, resource: &str) -> Result<u64, ResourceError> {
    let v = q.copied().unwrap_or_default().value();
    v.and_then(|v| u64::try_from(v).ok())
        .ok_or_else(|| ResourceError::OutOfRange {
            resource: resource.to_owned(),
        })
}

/// `ResourceConfigForPod`: the pod cgroup's values and the QoS class
/// (which decides where the cgroup lives).
///
/// - Guaranteed: shares from the cpu requests, quota from the cpu limits,
///   memory limit = the memory limits.
/// - Burstable: shares from the cpu requests; quota only if every
///   container limits cpu, memory limit only if every container limits
///   memory (or the pod level does).
/// - BestEffort: 2 shares, nothing else.
///
/// The pids limit is the kubelet's, for every class.
pub fn pod_resources(
    pod: &Pod,
    options: &ResourceOptions,
) -> Result<(QosClass, PodResources), ResourceError> {
    let qos = pod_qos(pod)?;
    let requests = pod_requests(pod)?;
    let (limits, declared) = limits_and_declared(pod)?;
    let cpu_request = milli(requests.get(RESOURCE_CPU), RESOURCE_CPU)?;
    let cpu_limit = milli(limits.get(RESOURCE_CPU), RESOURCE_CPU)?;
    let memory_limit = units(limits.get(RESOURCE_MEMORY), RESOURCE_MEMORY)?;
    let quota = if options.enforce_cpu_limits {
        milli_cpu_to_quota(cpu_limit, CFS_PERIOD_US)
    } else {
        None
    };
    let nonzero = |v: u64| (v > 0).then_some(v);
    let mut res = PodResources {
        pids_limit: options.pod_pids_limit,
        ..PodResources::default()
    };
    match qos {
        QosClass::Guaranteed => {
            res.cpu_shares = milli_cpu_to_shares(cpu_request);
            res.cpu_quota_us = quota;
            res.memory_limit_bytes = nonzero(memory_limit);
        }
        QosClass::Burstable => {
            res.cpu_shares = milli_cpu_to_shares(cpu_request);
            if declared.cpu {
                res.cpu_quota_us = quota;
            }
            if declared.memory {
                res.memory_limit_bytes = nonzero(memory_limit);
            }
        }
        QosClass::BestEffort => res.cpu_shares = MIN_SHARES,
    }
    Ok((qos, res))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn pod(spec: Value) -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": spec,
        }))
        .unwrap()
    }

    fn c(name: &str, resources: Value) -> Value {
        json!({"name": name, "image": "keelson.local/busybox:1", "resources": resources})
    }

    fn qos(spec: Value) -> QosClass {
        compute_pod_qos(&pod(spec)).unwrap()
    }

    fn guaranteed_resources(cpu: &str, memory: &str) -> Value {
        json!({"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}})
    }

    #[test]
    fn cpu_conversions_match_the_kubelet() {
        assert_eq!(milli_cpu_to_shares(0), 2);
        assert_eq!(milli_cpu_to_shares(1), 2);
        assert_eq!(milli_cpu_to_shares(2), 2);
        assert_eq!(milli_cpu_to_shares(100), 102);
        assert_eq!(milli_cpu_to_shares(250), 256);
        assert_eq!(milli_cpu_to_shares(1000), 1024);
        assert_eq!(milli_cpu_to_shares(1500), 1536);
        assert_eq!(milli_cpu_to_shares(500_000), 262_144);
        assert_eq!(milli_cpu_to_quota(0, CFS_PERIOD_US), None);
        assert_eq!(milli_cpu_to_quota(1, CFS_PERIOD_US), Some(1000));
        assert_eq!(milli_cpu_to_quota(10, CFS_PERIOD_US), Some(1000));
        assert_eq!(milli_cpu_to_quota(200, CFS_PERIOD_US), Some(20_000));
        assert_eq!(milli_cpu_to_quota(1000, CFS_PERIOD_US), Some(100_000));
        assert_eq!(milli_cpu_to_quota(2500, CFS_PERIOD_US), Some(250_000));
        assert_eq!(cpu_weight_from_shares(2), 1);
        assert_eq!(cpu_weight_from_shares(0), 1);
        assert_eq!(cpu_weight_from_shares(102), 4);
        assert_eq!(cpu_weight_from_shares(1024), 39);
        assert_eq!(cpu_weight_from_shares(262_144), 10_000);
        assert_eq!(cpu_weight_from_shares(1 << 30), 10_000);
    }

    #[test]
    fn qos_classes() {
        // No resources anywhere.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({}))]})),
            QosClass::BestEffort
        );
        assert_eq!(
            qos(json!({"containers": [{"name": "a", "image": "x"}]})),
            QosClass::BestEffort
        );
        // Only non-QoS resources.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({"requests": {"ephemeral-storage": "1Gi"}}))]})),
            QosClass::BestEffort
        );
        // Requests equal limits for cpu and memory in every container.
        assert_eq!(
            qos(json!({"containers": [
                c("a", guaranteed_resources("500m", "64Mi")),
                c("b", guaranteed_resources("1", "1Gi")),
            ]})),
            QosClass::Guaranteed
        );
        // Requests default to limits.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({"limits": {"cpu": "1", "memory": "1Gi"}}))]})),
            QosClass::Guaranteed
        );
        // Equal values in other notations.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({
                "requests": {"cpu": "1000m", "memory": "1024Mi"},
                "limits": {"cpu": "1", "memory": "1Gi"}}))]})),
            QosClass::Guaranteed
        );
        // Requests below limits.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({
                "requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "64Mi"}}))]})),
            QosClass::Burstable
        );
        // Only cpu limited.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({"limits": {"cpu": "1"}}))]})),
            QosClass::Burstable
        );
        // Only a memory request.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({"requests": {"memory": "1Mi"}}))]})),
            QosClass::Burstable
        );
        // One Guaranteed container, one BestEffort.
        assert_eq!(
            qos(json!({"containers": [
                c("a", guaranteed_resources("1", "1Gi")),
                c("b", json!({})),
            ]})),
            QosClass::Burstable
        );
        // Init containers count too.
        assert_eq!(
            qos(json!({
                "initContainers": [c("init", json!({}))],
                "containers": [c("a", guaranteed_resources("1", "1Gi"))],
            })),
            QosClass::Burstable
        );
        assert_eq!(
            qos(json!({
                "initContainers": [c("init", guaranteed_resources("100m", "10Mi"))],
                "containers": [c("a", guaranteed_resources("1", "1Gi"))],
            })),
            QosClass::Guaranteed
        );
        // Zero limits count as none.
        assert_eq!(
            qos(json!({"containers": [c("a", json!({"limits": {"cpu": "0", "memory": "0"}}))]})),
            QosClass::BestEffort
        );
        // No containers (only in tests): BestEffort.
        assert_eq!(qos(json!({"containers": []})), QosClass::BestEffort);
    }

    #[test]
    fn pod_level_resources_decide_alone() {
        assert_eq!(
            qos(json!({
                "resources": {"limits": {"cpu": "1", "memory": "1Gi"}},
                "containers": [c("a", json!({})), c("b", json!({"requests": {"cpu": "100m"}}))],
            })),
            QosClass::Guaranteed
        );
        assert_eq!(
            qos(json!({
                "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "1Gi"}},
                "containers": [c("a", guaranteed_resources("1", "1Gi"))],
            })),
            QosClass::Burstable
        );
    }

    #[test]
    fn recorded_status_wins() {
        let mut p = pod(json!({"containers": [c("a", json!({}))]}));
        p.status = Some(serde_json::from_value(json!({"qosClass": "Burstable"})).unwrap());
        assert_eq!(pod_qos(&p).unwrap(), QosClass::Burstable);
        assert_eq!(compute_pod_qos(&p).unwrap(), QosClass::BestEffort);
    }

    #[test]
    fn bad_quantities_are_errors() {
        let err = compute_pod_qos(&pod(json!({"containers": [
            c("web", json!({"limits": {"cpu": "lots"}}))
        ]})))
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("container web limits: cpu: invalid quantity \"lots\""),
            "{err}"
        );
        let err = pod_resources(
            &pod(json!({"containers": [c("web", json!({"requests": {"memory": "-1Mi"}}))]})),
            &ResourceOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ResourceError::Negative { .. }), "{err}");
        let err = pod_resources(
            &pod(json!({"containers": [c("web", json!({"limits": {"memory": "100E"}}))]})),
            &ResourceOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ResourceError::OutOfRange { .. }), "{err}");
    }

    #[test]
    fn requests_sum_containers_and_max_init_containers() {
        let p = pod(json!({
            "initContainers": [
                c("big-init", json!({"requests": {"cpu": "2", "memory": "10Mi"}})),
                c("small-init", json!({"requests": {"cpu": "100m", "memory": "1Gi"}})),
            ],
            "containers": [
                c("a", json!({"requests": {"cpu": "250m", "memory": "64Mi"}})),
                c("b", json!({"requests": {"cpu": "250m"}, "limits": {"memory": "128Mi"}})),
            ],
            "overhead": {"cpu": "10m", "memory": "1Mi"},
        }));
        let r = pod_requests(&p).unwrap();
        // cpu: max(0.5, 2, 0.1) + 10m overhead; memory: max(192Mi, 10Mi, 1Gi) + 1Mi.
        assert_eq!(r[RESOURCE_CPU], Quantity::parse("2010m").unwrap());
        assert_eq!(r[RESOURCE_MEMORY], Quantity::parse("1025Mi").unwrap());
    }

    #[test]
    fn sidecars_add_to_the_sum_and_to_later_init_containers() {
        let sidecar = json!({"name": "proxy", "image": "x", "restartPolicy": "Always",
            "resources": {"requests": {"cpu": "300m"}}});
        let p = pod(json!({
            "initContainers": [
                sidecar,
                c("migrate", json!({"requests": {"cpu": "1"}})),
            ],
            "containers": [c("a", json!({"requests": {"cpu": "500m"}}))],
        }));
        // Containers + sidecar = 800m; migrate runs beside the sidecar: 1300m.
        assert_eq!(
            pod_requests(&p).unwrap()[RESOURCE_CPU],
            Quantity::parse("1300m").unwrap()
        );
        let p = pod(json!({
            "initContainers": [
                {"name": "proxy", "image": "x", "restartPolicy": "Always",
                 "resources": {"requests": {"cpu": "300m"}}},
                c("tiny", json!({"requests": {"cpu": "100m"}})),
            ],
            "containers": [c("a", json!({"requests": {"cpu": "500m"}}))],
        }));
        assert_eq!(
            pod_requests(&p).unwrap()[RESOURCE_CPU],
            Quantity::parse("800m").unwrap()
        );
    }

    #[test]
    fn guaranteed_pod_resources() {
        let p = pod(json!({"containers": [
            c("a", guaranteed_resources("500m", "64Mi")),
            c("b", guaranteed_resources("1500m", "64Mi")),
        ]}));
        let (qos, res) = pod_resources(
            &p,
            &ResourceOptions {
                pod_pids_limit: Some(1024),
                ..ResourceOptions::default()
            },
        )
        .unwrap();
        assert_eq!(qos, QosClass::Guaranteed);
        assert_eq!(
            res,
            PodResources {
                cpu_shares: 2048,
                cpu_quota_us: Some(200_000),
                cpu_period_us: 100_000,
                memory_limit_bytes: Some(128 << 20),
                pids_limit: Some(1024),
            }
        );
        assert_eq!(res.cpu_weight(), 79);
    }

    #[test]
    fn burstable_pod_resources() {
        // Every container limits cpu and memory: both applied.
        let p = pod(json!({"containers": [
            c("a", json!({"requests": {"cpu": "100m", "memory": "32Mi"},
                          "limits": {"cpu": "200m", "memory": "64Mi"}})),
        ]}));
        let (qos, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(qos, QosClass::Burstable);
        assert_eq!(res.cpu_shares, 102);
        assert_eq!(res.cpu_quota_us, Some(20_000));
        assert_eq!(res.memory_limit_bytes, Some(64 << 20));
        assert_eq!(res.pids_limit, None);
        // One container without limits: no pod-level limits at all.
        let p = pod(json!({"containers": [
            c("a", json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "200m", "memory": "64Mi"}})),
            c("b", json!({"requests": {"cpu": "250m"}})),
        ]}));
        let (_, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(res.cpu_shares, 358);
        assert_eq!(res.cpu_quota_us, None);
        assert_eq!(res.memory_limit_bytes, None);
        // An init container without a cpu limit drops the cpu quota only.
        let p = pod(json!({
            "initContainers": [c("init", json!({"limits": {"memory": "16Mi"}}))],
            "containers": [c("a", json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "1", "memory": "64Mi"}}))],
        }));
        let (_, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(res.cpu_quota_us, None);
        assert_eq!(res.memory_limit_bytes, Some(64 << 20));
        // --cpu-cfs-quota=false.
        let p = pod(
            json!({"containers": [c("a", json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}}))]}),
        );
        let (_, res) = pod_resources(
            &p,
            &ResourceOptions {
                enforce_cpu_limits: false,
                ..ResourceOptions::default()
            },
        )
        .unwrap();
        assert_eq!(res.cpu_quota_us, None);
    }

    #[test]
    fn overhead_adds_to_requests_and_to_set_limits() {
        let p = pod(json!({
            "containers": [c("a", guaranteed_resources("1", "100Mi"))],
            "overhead": {"cpu": "250m", "memory": "20Mi"},
        }));
        let (qos, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(qos, QosClass::Guaranteed);
        assert_eq!(res.cpu_shares, 1280);
        assert_eq!(res.cpu_quota_us, Some(125_000));
        assert_eq!(res.memory_limit_bytes, Some(120 << 20));
        // No limit: overhead adds to requests only.
        let p = pod(json!({
            "containers": [c("a", json!({"requests": {"cpu": "100m"}}))],
            "overhead": {"cpu": "100m", "memory": "20Mi"},
        }));
        assert!(!pod_limits(&p).unwrap().contains_key(RESOURCE_MEMORY));
        let (_, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(res.cpu_shares, 204);
        assert_eq!(res.memory_limit_bytes, None);
    }

    #[test]
    fn best_effort_pod_resources() {
        let p = pod(json!({"containers": [c("a", json!({}))]}));
        let (qos, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(qos, QosClass::BestEffort);
        assert_eq!(res.cpu_shares, 2);
        assert_eq!(res.cpu_weight(), 1);
        assert_eq!(res.cpu_quota_us, None);
        assert_eq!(res.memory_limit_bytes, None);
    }

    #[test]
    fn pod_level_limits_replace_the_aggregate() {
        let p = pod(json!({
            "resources": {"requests": {"cpu": "500m", "memory": "64Mi"},
                          "limits": {"cpu": "2", "memory": "256Mi"}},
            "containers": [c("a", json!({})), c("b", json!({"requests": {"cpu": "100m"}}))],
        }));
        let (qos, res) = pod_resources(&p, &ResourceOptions::default()).unwrap();
        assert_eq!(qos, QosClass::Burstable);
        assert_eq!(res.cpu_shares, 512);
        assert_eq!(res.cpu_quota_us, Some(200_000));
        assert_eq!(res.memory_limit_bytes, Some(256 << 20));
    }
}
