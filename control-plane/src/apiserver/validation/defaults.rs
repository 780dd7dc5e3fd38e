//! Defaulting as kube-apiserver's v1 `SetDefaults_*` functions (plus the
//! few values the registry strategies and default admission plugins set on
//! create: a Pod's priority, preemptionPolicy and initial status, a
//! Namespace's `kubernetes` finalizer and phase). Pure functions on the
//! k8s-openapi types; no validation here.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    DaemonSet, DaemonSetUpdateStrategy, Deployment, DeploymentStrategy, ReplicaSet,
    RollingUpdateDaemonSet, RollingUpdateDeployment, RollingUpdateStatefulSetStrategy, StatefulSet,
    StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ClientIPConfig, Container, ContainerPort, EmptyDirVolumeSource, Endpoints, HTTPGetAction,
    Lifecycle, LifecycleHandler, Namespace, NamespaceSpec, NamespaceStatus, Node, Pod, PodSpec,
    PodStatus, PodTemplateSpec, Probe, ResourceRequirements, Secret, Service,
    SessionAffinityConfig, Volume,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::quantity;

/// Where a PodSpec lives; defaults differ slightly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodSpecOwner {
    /// A Pod itself: also gets `SetDefaults_Pod` and admission defaults.
    Pod,
    /// The template of a Deployment, ReplicaSet, DaemonSet or StatefulSet.
    Template,
    /// The template of a Job: `restartPolicy` is left for the user to choose
    /// (`OnFailure` or `Never`), so a missing one is reported, not defaulted.
    JobTemplate,
}

fn set_if_none<T>(slot: &mut Option<T>, value: T) {
    if slot.is_none() {
        *slot = Some(value);
    }
}

fn set_if_empty(slot: &mut Option<String>, value: &str) {
    if slot.as_deref().is_none_or(str::is_empty) {
        *slot = Some(value.to_owned());
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything a PodSpec holds.
pub fn pod_spec(spec: &mut PodSpec, owner: PodSpecOwner) {
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    if owner != PodSpecOwner::JobTemplate {
        set_if_empty(&mut spec.restart_policy, "Always");
    }
    set_if_none(&mut spec.security_context, Default::default());
    set_if_none(&mut spec.termination_grace_period_seconds, 30);
    set_if_empty(&mut spec.scheduler_name, "default-scheduler");
    // v1's deprecated `serviceAccount` mirrors `serviceAccountName`.
    if spec
        .service_account_name
        .as_deref()
        .is_none_or(str::is_empty)
        && let Some(sa) = spec.service_account.clone().filter(|s| !s.is_empty())
    {
        spec.service_account_name = Some(sa);
    }
    if let Some(name) = spec.service_account_name.clone().filter(|s| !s.is_empty()) {
        spec.service_account = Some(name);
    }
    for c in spec.containers.iter_mut() {
        container(c);
    }
    for c in spec.init_containers.iter_mut().flatten() {
        container(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        volume(v);
    }
    if owner == PodSpecOwner::Pod {
        // SetDefaults_Pod: requests default to limits.
        for c in spec
            .containers
            .iter_mut()
            .chain(spec.init_containers.iter_mut().flatten())
        {
            requests_from_limits(c);
        }
        set_if_none(&mut spec.enable_service_links, true);
        if spec.host_network == Some(true) {
            for c in spec
                .containers
                .iter_mut()
                .chain(spec.init_containers.iter_mut().flatten())
            {
                for p in c.ports.iter_mut().flatten() {
                    if p.host_port.unwrap_or(0) == 0 {
                        p.host_port = Some(p.container_port);
                    }
                }
            }
        }
        // The Priority admission plugin.
        if spec.priority.is_none() {
            spec.priority = Some(match spec.priority_class_name.as_deref() {
                Some("system-node-critical") => 2_000_001_000,
                Some("system-cluster-critical") => 2_000_000_000,
                _ => 0,
            });
        }
        set_if_empty(&mut spec.preemption_policy, "PreemptLowerPriority");
    }
}

fn requests_from_limits(c: &mut Container) {
    let Some(resources) = c.resources.as_mut() else {
        return;
    };
    let Some(limits) = resources.limits.clone() else {
        return;
    };
    let requests = resources.requests.get_or_insert_with(BTreeMap::new);
    for (k, v) in limits {
        requests.entry(k).or_insert(v);
    }
}

/// `SetDefaults_Container` and what a container holds.
pub fn container(c: &mut Container) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy = if image_tag_is_latest(c.image.as_deref().unwrap_or("")) {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.image_pull_policy = Some(policy.to_owned());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    set_if_none(&mut c.resources, ResourceRequirements::default());
    for p in c.ports.iter_mut().flatten() {
        container_port(p);
    }
    for probe in [
        &mut c.liveness_probe,
        &mut c.readiness_probe,
        &mut c.startup_probe,
    ]
    .into_iter()
    .flatten()
    {
        self::probe(probe);
    }
    if let Some(Lifecycle {
        post_start,
        pre_stop,
        ..
    }) = c.lifecycle.as_mut()
    {
        for h in [post_start, pre_stop].into_iter().flatten() {
            lifecycle_handler(h);
        }
    }
    for env in c.env.iter_mut().flatten() {
        if let Some(field_ref) = env.value_from.as_mut().and_then(|f| f.field_ref.as_mut()) {
            set_if_empty(&mut field_ref.api_version, "v1");
        }
    }
}

fn container_port(p: &mut ContainerPort) {
    set_if_empty(&mut p.protocol, "TCP");
}

/// What `ParseImageName` decides: no tag and no digest means `latest`.
/// Unparseable references get `IfNotPresent`, as in kube.
fn image_tag_is_latest(image: &str) -> bool {
    if image.is_empty() || image.chars().any(char::is_whitespace) {
        return false;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let tail_start = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[tail_start..].rfind(':') {
        Some(i) => (&name[..tail_start + i], Some(&name[tail_start + i + 1..])),
        None => (name, None),
    };
    // Docker references have lowercase repository paths (the registry
    // host may have a port and uppercase letters, the path may not).
    let path = match repo.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => repo,
    };
    if path.is_empty() || path.chars().any(|c| c.is_ascii_uppercase()) {
        return false;
    }
    match (tag, digest) {
        (None, None) => true,
        (Some(t), _) => t == "latest",
        (None, Some(_)) => false,
    }
}

pub fn probe(p: &mut Probe) {
    set_if_none(&mut p.timeout_seconds, 1);
    set_if_none(&mut p.period_seconds, 10);
    set_if_none(&mut p.success_threshold, 1);
    set_if_none(&mut p.failure_threshold, 3);
    if let Some(h) = p.http_get.as_mut() {
        http_get(h);
    }
}

fn lifecycle_handler(h: &mut LifecycleHandler) {
    if let Some(g) = h.http_get.as_mut() {
        http_get(g);
    }
}

fn http_get(h: &mut HTTPGetAction) {
    set_if_empty(&mut h.path, "/");
    set_if_empty(&mut h.scheme, "HTTP");
}

/// Whether a volume names no source at all.
fn has_no_source(v: &Volume) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::to_value(v) else {
        return false;
    };
    map.keys().all(|k| k == "name")
}

fn volume(v: &mut Volume) {
    if has_no_source(v) {
        v.empty_dir = Some(EmptyDirVolumeSource::default());
    }
    const MODE: i32 = 0o644;
    if let Some(s) = v.secret.as_mut() {
        set_if_none(&mut s.default_mode, MODE);
    }
    if let Some(s) = v.config_map.as_mut() {
        set_if_none(&mut s.default_mode, MODE);
    }
    if let Some(s) = v.downward_api.as_mut() {
        set_if_none(&mut s.default_mode, MODE);
    }
    if let Some(s) = v.projected.as_mut() {
        set_if_none(&mut s.default_mode, MODE);
    }
    if let Some(s) = v.host_path.as_mut() {
        set_if_none(&mut s.type_, String::new());
    }
}

/// A template's spec, created when absent (it is a struct, not a pointer,
/// in Go) and defaulted.
pub fn template(t: &mut PodTemplateSpec, owner: PodSpecOwner) {
    pod_spec(t.spec.get_or_insert_with(PodSpec::default), owner);
}

pub fn pod(p: &mut Pod) {
    pod_spec(
        p.spec.get_or_insert_with(PodSpec::default),
        PodSpecOwner::Pod,
    );
}

/// The status a new Pod starts with: `Pending` and its QoS class.
pub fn pod_initial_status(p: &mut Pod) {
    let qos = p.spec.as_ref().map_or("BestEffort", qos_class);
    let status = p.status.get_or_insert_with(PodStatus::default);
    set_if_empty(&mut status.phase, "Pending");
    status.qos_class = Some(qos.to_owned());
}

/// `qos.GetPodQOS`: only cpu and memory count.
pub fn qos_class(spec: &PodSpec) -> &'static str {
    const COMPUTE: [&str; 2] = ["cpu", "memory"];
    let value = |q: &Quantity| quantity::parse(&q.0).map(|q| q.nanos).unwrap_or(0);
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        let res = c.resources.as_ref();
        for (name, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if let Some(n) = COMPUTE.iter().find(|n| **n == name.as_str()) {
                let v = value(q);
                if v != 0 {
                    let e = requests.entry(n).or_insert(0);
                    *e = e.saturating_add(v);
                }
            }
        }
        let mut found = 0;
        for (name, q) in res.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if let Some(n) = COMPUTE.iter().find(|n| **n == name.as_str()) {
                let v = value(q);
                if v != 0 {
                    found += 1;
                    let e = limits.entry(n).or_insert(0);
                    *e = e.saturating_add(v);
                }
            }
        }
        if found != COMPUTE.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

/// `SetDefaults_Service`, except IP families ([`service_ip_families`]),
/// which come after carrying allocated values over on update.
pub fn service(s: &mut Service) {
    let spec = s.spec.get_or_insert_with(Default::default);
    set_if_empty(&mut spec.session_affinity, "None");
    match spec.session_affinity.as_deref() {
        Some("None") => spec.session_affinity_config = None,
        Some("ClientIP") => {
            let has_timeout = spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .is_some();
            if !has_timeout {
                spec.session_affinity_config = Some(SessionAffinityConfig {
                    client_ip: Some(ClientIPConfig {
                        timeout_seconds: Some(10800),
                    }),
                });
            }
        }
        _ => {}
    }
    set_if_empty(&mut spec.type_, "ClusterIP");
    for p in spec.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
        let unset = match &p.target_port {
            None => true,
            Some(IntOrString::Int(0)) => true,
            Some(IntOrString::String(s)) => s.is_empty(),
            Some(IntOrString::Int(_)) => false,
        };
        if unset {
            p.target_port = Some(IntOrString::Int(p.port));
        }
    }
    let ty = spec.type_.as_deref().unwrap_or("");
    let externally_accessible = ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()));
    if externally_accessible {
        set_if_empty(&mut spec.external_traffic_policy, "Cluster");
    }
    if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_if_none(&mut spec.internal_traffic_policy, "Cluster".to_owned());
    }
    if ty == "LoadBalancer" {
        set_if_none(&mut spec.allocate_load_balancer_node_ports, true);
    }
}

/// After values are carried over on update: `clusterIPs` mirrors a lone
/// `clusterIP` (as the registry keeps them in sync), `ipFamilyPolicy`
/// SingleStack and `ipFamilies` from the cluster IP (this cluster is
/// single-stack IPv4 unless a v6 cluster IP is asked for).
pub fn service_ip_families(s: &mut Service) {
    let Some(spec) = s.spec.as_mut() else {
        return;
    };
    let cluster_ip = spec.cluster_ip.clone().unwrap_or_default();
    if !cluster_ip.is_empty() && spec.cluster_ips.as_ref().is_none_or(Vec::is_empty) {
        spec.cluster_ips = Some(vec![cluster_ip]);
    }
    if spec.type_.as_deref() == Some("ExternalName") {
        return;
    }
    set_if_empty(&mut spec.ip_family_policy, "SingleStack");
    if spec.ip_families.as_ref().is_none_or(Vec::is_empty) {
        let v6 = spec
            .cluster_ips
            .iter()
            .flatten()
            .next()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
            .is_some_and(|ip| ip.is_ipv6());
        spec.ip_families = Some(vec![if v6 { "IPv6" } else { "IPv4" }.to_owned()]);
    }
}

pub fn endpoints(e: &mut Endpoints) {
    for subset in e.subsets.iter_mut().flatten() {
        for p in subset.ports.iter_mut().flatten() {
            set_if_empty(&mut p.protocol, "TCP");
        }
    }
}

pub fn endpoint_slice(e: &mut EndpointSlice) {
    for p in e.ports.iter_mut().flatten() {
        set_if_none(&mut p.name, String::new());
        set_if_empty(&mut p.protocol, "TCP");
    }
}

pub fn deployment(d: &mut Deployment) {
    let spec = &mut d.spec;
    set_if_none(&mut spec.replicas, 1);
    let strategy = spec
        .strategy
        .get_or_insert_with(DeploymentStrategy::default);
    set_if_empty(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDeployment::default);
        set_if_none(&mut ru.max_unavailable, IntOrString::String("25%".into()));
        set_if_none(&mut ru.max_surge, IntOrString::String("25%".into()));
    }
    set_if_none(&mut spec.revision_history_limit, 10);
    set_if_none(&mut spec.progress_deadline_seconds, 600);
    template(&mut spec.template, PodSpecOwner::Template);
}

pub fn replica_set(r: &mut ReplicaSet) {
    let spec = &mut r.spec;
    set_if_none(&mut spec.replicas, 1);
    template(
        spec.template.get_or_insert_with(Default::default),
        PodSpecOwner::Template,
    );
}

pub fn daemon_set(d: &mut DaemonSet) {
    let spec = &mut d.spec;
    let strategy = spec
        .update_strategy
        .get_or_insert_with(DaemonSetUpdateStrategy::default);
    set_if_empty(&mut strategy.type_, "RollingUpdate");
    if strategy.type_.as_deref() == Some("RollingUpdate") {
        let ru = strategy
            .rolling_update
            .get_or_insert_with(RollingUpdateDaemonSet::default);
        set_if_none(&mut ru.max_unavailable, IntOrString::Int(1));
        set_if_none(&mut ru.max_surge, IntOrString::Int(0));
    }
    set_if_none(&mut spec.revision_history_limit, 10);
    template(&mut spec.template, PodSpecOwner::Template);
}

pub fn stateful_set(s: &mut StatefulSet) {
    let spec = &mut s.spec;
    set_if_empty(&mut spec.pod_management_policy, "OrderedReady");
    let strategy = spec
        .update_strategy
        .get_or_insert_with(StatefulSetUpdateStrategy::default);
    if strategy.type_.as_deref().is_none_or(str::is_empty) {
        strategy.type_ = Some("RollingUpdate".into());
        set_if_none(
            &mut strategy.rolling_update,
            RollingUpdateStatefulSetStrategy::default(),
        );
    }
    if strategy.type_.as_deref() == Some("RollingUpdate")
        && let Some(ru) = strategy.rolling_update.as_mut()
    {
        set_if_none(&mut ru.partition, 0);
    }
    let retention = spec
        .persistent_volume_claim_retention_policy
        .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
    set_if_empty(&mut retention.when_deleted, "Retain");
    set_if_empty(&mut retention.when_scaled, "Retain");
    set_if_none(&mut spec.replicas, 1);
    set_if_none(&mut spec.revision_history_limit, 10);
    for pvc in spec.volume_claim_templates.iter_mut().flatten() {
        if let Some(pvc_spec) = pvc.spec.as_mut() {
            set_if_empty(&mut pvc_spec.volume_mode, "Filesystem");
        }
        let status = pvc.status.get_or_insert_with(Default::default);
        set_if_empty(&mut status.phase, "Pending");
    }
    template(&mut spec.template, PodSpecOwner::Template);
}

pub fn job(j: &mut Job) {
    let spec = j.spec.get_or_insert_with(Default::default);
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    set_if_none(&mut spec.parallelism, 1);
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        });
    }
    set_if_empty(&mut spec.completion_mode, "NonIndexed");
    set_if_none(&mut spec.suspend, false);
    if let Some(policy) = spec.pod_failure_policy.as_mut() {
        for rule in policy.rules.iter_mut() {
            for pattern in rule.on_pod_conditions.iter_mut().flatten() {
                set_if_empty(&mut pattern.status, "True");
            }
        }
    }
    if spec.pod_replacement_policy.is_none() {
        spec.pod_replacement_policy = Some(if spec.pod_failure_policy.is_some() {
            "Failed".into()
        } else {
            "TerminatingOrFailed".into()
        });
    }
    template(&mut spec.template, PodSpecOwner::JobTemplate);
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone());
    if let Some(labels) = template_labels
        && j.metadata.labels.as_ref().is_none_or(BTreeMap::is_empty)
    {
        j.metadata.labels = Some(labels);
    }
}

/// `type: Opaque`, and the write-only `stringData` merged into `data`.
pub fn secret(s: &mut Secret) {
    set_if_empty(&mut s.type_, "Opaque");
    if let Some(string_data) = s.string_data.take() {
        let data = s.data.get_or_insert_with(BTreeMap::new);
        for (k, v) in string_data {
            data.insert(k, k8s_openapi::ByteString(v.into_bytes()));
        }
    }
}

/// `SetDefaults_Namespace`: the `kubernetes.io/metadata.name` label, and
/// an `Active` phase.
pub fn namespace(n: &mut Namespace) {
    if let Some(name) = n.metadata.name.clone().filter(|s| !s.is_empty()) {
        n.metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert("kubernetes.io/metadata.name".into(), name);
    }
    if let Some(status) = n.status.as_mut() {
        set_if_empty(&mut status.phase, "Active");
    }
}

/// What the namespace strategy sets on create: phase `Active` and the
/// `kubernetes` finalizer.
pub fn namespace_on_create(n: &mut Namespace) {
    let status = n.status.get_or_insert_with(NamespaceStatus::default);
    set_if_empty(&mut status.phase, "Active");
    let spec = n.spec.get_or_insert_with(NamespaceSpec::default);
    let finalizers = spec.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == "kubernetes") {
        finalizers.push("kubernetes".into());
    }
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
pub fn node(n: &mut Node) {
    if let Some(status) = n.status.as_mut()
        && status.allocatable.is_none()
        && status.capacity.is_some()
    {
        status.allocatable = status.capacity.clone();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag() {
        for (image, latest) in [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            ("registry.local:5000/nginx", true),
            ("registry.local:5000/nginx:1", false),
            ("nginx@sha256:abc", false),
            ("nginx:latest@sha256:abc", true),
            ("", false),
            ("Nginx", false),
            ("a b", false),
            ("docker.io/library/busybox", true),
        ] {
            assert_eq!(image_tag_is_latest(image), latest, "{image:?}");
        }
    }

    #[test]
    fn qos_classes() {
        let container = |requests: &[(&str, &str)], limits: &[(&str, &str)]| {
            let map = |pairs: &[(&str, &str)]| {
                (!pairs.is_empty()).then(|| {
                    pairs
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), Quantity((*v).to_owned())))
                        .collect()
                })
            };
            Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests: map(requests),
                    limits: map(limits),
                    ..Default::default()
                }),
                ..Default::default()
            }
        };
        let spec = |cs: Vec<Container>| PodSpec {
            containers: cs,
            ..Default::default()
        };
        assert_eq!(qos_class(&spec(vec![container(&[], &[])])), "BestEffort");
        assert_eq!(
            qos_class(&spec(vec![container(&[("cpu", "100m")], &[])])),
            "Burstable"
        );
        assert_eq!(
            qos_class(&spec(vec![container(
                &[("cpu", "1"), ("memory", "1Gi")],
                &[("cpu", "1000m"), ("memory", "1Gi")]
            )])),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(vec![container(
                &[("cpu", "500m"), ("memory", "1Gi")],
                &[("cpu", "1"), ("memory", "1Gi")]
            )])),
            "Burstable"
        );
        assert_eq!(
            qos_class(&spec(vec![
                container(
                    &[("cpu", "1"), ("memory", "1Gi")],
                    &[("cpu", "1"), ("memory", "1Gi")]
                ),
                container(&[], &[])
            ])),
            "Burstable"
        );
    }
}
