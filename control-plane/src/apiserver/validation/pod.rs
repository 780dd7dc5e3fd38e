//! Pod validation as core's `ValidatePodSpec`, `ValidatePodCreate`,
//! `ValidatePodTemplateSpec` and `ValidatePodUpdate`: containers, ports,
//! env, volumes and mounts, probes, resources, tolerations, DNS and the
//! rest of the spec a user meets in practice. Used for Pods and for the
//! templates of Deployments, ReplicaSets, DaemonSets, StatefulSets and Jobs.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, LifecycleHandler, Pod, PodSecurityContext,
    PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SecurityContext, Toleration, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::meta::{self, json};
use super::names::{self, NameRule};
use super::path::Path;
use super::quantity;
use crate::apiserver::status::{FieldError, FieldErrorKind};

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const TERMINATION_MESSAGE_POLICIES: &[&str] = &["File", "FallbackToLogsOnError"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];
const ENV_RESOURCE_FIELDS: &[&str] = &[
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];
const INIT_PROBE_FORBIDDEN: &str =
    "may not be set for init containers without restartPolicy=Always";

/// Where a pod spec is being validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpecOf {
    Pod,
    Template,
    /// A Job's template: the Job checks `restartPolicy` itself.
    JobTemplate,
}

fn not_supported(path: &Path, value: &str, supported: &[&str]) -> FieldError {
    FieldError::not_supported(path, value, supported)
}

fn nonnegative(value: i64, path: &Path, errs: &mut Vec<FieldError>) {
    if value < 0 {
        errs.push(FieldError::invalid(path, value, names::NEGATIVE_ERROR));
    }
}

fn dns_label(value: &str, path: &Path, errs: &mut Vec<FieldError>) {
    for msg in names::is_dns1123_label(value) {
        errs.push(FieldError::invalid(path, value, msg));
    }
}

fn subdomain(value: &str, path: &Path, errs: &mut Vec<FieldError>) {
    for msg in names::is_dns1123_subdomain(value) {
        errs.push(FieldError::invalid(path, value, msg));
    }
}

/// `ValidatePortNumOrName`.
pub fn port_num_or_name(port: &IntOrString, path: &Path, errs: &mut Vec<FieldError>) {
    match port {
        IntOrString::Int(n) => {
            for msg in names::is_valid_port_num(i64::from(*n)) {
                errs.push(FieldError::invalid(path, *n, msg));
            }
        }
        IntOrString::String(s) => {
            for msg in names::is_valid_port_name(s) {
                errs.push(FieldError::invalid(path, s.as_str(), msg));
            }
        }
    }
}

/// `ValidatePodTemplateSpec`: labels and annotations (at `<path>.labels`,
/// as kube reports them), the spec, and no ephemeral containers.
pub fn validate_template(t: &PodTemplateSpec, path: &Path, of: SpecOf) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(m) = &t.metadata {
        errs.extend(meta::validate_labels(
            m.labels.as_ref(),
            &path.child("labels"),
        ));
        errs.extend(meta::validate_annotations(
            m.annotations.as_ref(),
            &path.child("annotations"),
        ));
    }
    let default_spec = PodSpec::default();
    let spec = t.spec.as_ref().unwrap_or(&default_spec);
    errs.extend(validate_pod_spec(spec, &path.child("spec"), of));
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            path.children(&["spec", "ephemeralContainers"]),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// A Pod, on create and update: its spec, and (for Pods only, not
/// templates, as in kube) no whitespace around images.
pub fn validate_pod(pod: &Pod) -> Vec<FieldError> {
    let default_spec = PodSpec::default();
    let spec = pod.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::root("spec");
    let mut errs = validate_pod_spec(spec, &path, SpecOf::Pod);
    let groups = [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (field, containers) in groups {
        for (i, c) in containers.iter().enumerate() {
            let image = c.image.as_deref().unwrap_or("");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    path.child(field).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// What only a new Pod must satisfy: no ephemeral containers (they come
/// through their own subresource), no node while scheduling gates remain.
pub fn validate_pod_create(pod: &Pod) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(spec) = pod.spec.as_ref() else {
        return errs;
    };
    let path = Path::root("spec");
    if spec
        .ephemeral_containers
        .as_ref()
        .is_some_and(|e| !e.is_empty())
    {
        errs.push(FieldError::forbidden(
            path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if spec.node_name.as_deref().is_some_and(|n| !n.is_empty())
        && spec
            .scheduling_gates
            .as_ref()
            .is_some_and(|g| !g.is_empty())
    {
        errs.push(FieldError::forbidden(
            path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

/// `ValidatePodSpec`.
pub fn validate_pod_spec(spec: &PodSpec, path: &Path, of: SpecOf) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let volumes = validate_volumes(
        spec.volumes.as_deref().unwrap_or_default(),
        &path.child("volumes"),
        &mut errs,
    );
    let mut all_names = HashSet::new();
    if spec.containers.is_empty() {
        errs.push(FieldError::required(path.child("containers"), ""));
    }
    for (i, c) in spec.containers.iter().enumerate() {
        let p = path.child("containers").index(i);
        validate_container(c, &p, &volumes, &mut all_names, false, &mut errs);
    }
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let p = path.child("initContainers").index(i);
        validate_container(c, &p, &volumes, &mut all_names, true, &mut errs);
    }
    if spec.host_network == Some(true) {
        host_network_ports(spec, path, of, &mut errs);
    }
    match spec.restart_policy.as_deref().unwrap_or("") {
        _ if of == SpecOf::JobTemplate => {}
        "" => errs.push(FieldError::required(path.child("restartPolicy"), "")),
        p if RESTART_POLICIES.contains(&p) => {}
        p => errs.push(not_supported(
            &path.child("restartPolicy"),
            p,
            RESTART_POLICIES,
        )),
    }
    let dns_policy = spec.dns_policy.as_deref().unwrap_or("");
    match dns_policy {
        "" => errs.push(FieldError::required(path.child("dnsPolicy"), "")),
        p if DNS_POLICIES.contains(&p) => {}
        p => errs.push(not_supported(&path.child("dnsPolicy"), p, DNS_POLICIES)),
    }
    errs.extend(meta::validate_labels(
        spec.node_selector.as_ref(),
        &path.child("nodeSelector"),
    ));
    if let Some(sc) = &spec.security_context {
        pod_security_context(sc, &path.child("securityContext"), &mut errs);
    }
    dns_config(spec, dns_policy, &path.child("dnsConfig"), &mut errs);
    if let Some(sa) = spec
        .service_account_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        subdomain(sa, &path.child("serviceAccountName"), &mut errs);
    }
    if let Some(node) = spec.node_name.as_deref().filter(|s| !s.is_empty()) {
        subdomain(node, &path.child("nodeName"), &mut errs);
    }
    if let Some(ads) = spec.active_deadline_seconds
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            ads,
            names::inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    if let Some(tgps) = spec.termination_grace_period_seconds {
        nonnegative(
            tgps,
            &path.child("terminationGracePeriodSeconds"),
            &mut errs,
        );
    }
    if let Some(h) = spec.hostname.as_deref().filter(|s| !s.is_empty()) {
        dns_label(h, &path.child("hostname"), &mut errs);
    }
    if let Some(s) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        dns_label(s, &path.child("subdomain"), &mut errs);
    }
    if let Some(t) = &spec.tolerations {
        errs.extend(validate_tolerations(t, &path.child("tolerations")));
    }
    if let Some(pc) = spec
        .priority_class_name
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        subdomain(pc, &path.child("priorityClassName"), &mut errs);
    }
    if let Some(pp) = spec.preemption_policy.as_deref()
        && !["PreemptLowerPriority", "Never"].contains(&pp)
    {
        errs.push(not_supported(
            &path.child("preemptionPolicy"),
            pp,
            &["PreemptLowerPriority", "Never"],
        ));
    }
    let mut gates = HashSet::new();
    for (i, g) in spec.scheduling_gates.iter().flatten().enumerate() {
        let p = path.child("schedulingGates").index(i);
        for msg in names::is_qualified_name(&g.name) {
            errs.push(FieldError::invalid(p.child("name"), g.name.as_str(), msg));
        }
        if !gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(p, g.name.as_str()));
        }
    }
    for (i, c) in spec
        .topology_spread_constraints
        .iter()
        .flatten()
        .enumerate()
    {
        let p = path.child("topologySpreadConstraints").index(i);
        if c.max_skew <= 0 {
            errs.push(FieldError::invalid(
                p.child("maxSkew"),
                c.max_skew,
                "must be greater than zero",
            ));
        }
        if c.topology_key.is_empty() {
            errs.push(FieldError::required(
                p.child("topologyKey"),
                "can not be empty",
            ));
        }
        if !["DoNotSchedule", "ScheduleAnyway"].contains(&c.when_unsatisfiable.as_str()) {
            errs.push(not_supported(
                &p.child("whenUnsatisfiable"),
                &c.when_unsatisfiable,
                &["DoNotSchedule", "ScheduleAnyway"],
            ));
        }
    }
    errs
}

/// Volume names, one source each, and the sources' required fields.
/// Returns the set of valid-to-reference names.
fn validate_volumes(vols: &[Volume], path: &Path, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut seen = HashSet::new();
    for (i, v) in vols.iter().enumerate() {
        let p = path.index(i);
        if v.name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else {
            dns_label(&v.name, &p.child("name"), errs);
        }
        if !v.name.is_empty() && !seen.insert(v.name.clone()) {
            errs.push(FieldError::duplicate(p.child("name"), v.name.as_str()));
        }
        let sources: Vec<String> = match json(v) {
            Value::Object(m) => m.keys().filter(|k| *k != "name").cloned().collect(),
            _ => Vec::new(),
        };
        match sources.as_slice() {
            [] => errs.push(FieldError::required(&p, "must specify a volume type")),
            [_] => {}
            [_, rest @ ..] => {
                for s in rest {
                    errs.push(FieldError::forbidden(
                        p.child(s),
                        "may not specify more than 1 volume type",
                    ));
                }
            }
        }
        let mode = |m: Option<i32>, path: Path, errs: &mut Vec<FieldError>| {
            if let Some(m) = m
                && !(0..=0o777).contains(&m)
            {
                errs.push(FieldError::invalid(
                    path,
                    m,
                    "must be a number between 0 and 0777 (octal), both inclusive",
                ));
            }
        };
        if let Some(s) = &v.config_map {
            if s.name.is_empty() {
                errs.push(FieldError::required(p.children(&["configMap", "name"]), ""));
            }
            mode(
                s.default_mode,
                p.children(&["configMap", "defaultMode"]),
                errs,
            );
        }
        if let Some(s) = &v.secret {
            if s.secret_name.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(
                    p.children(&["secret", "secretName"]),
                    "",
                ));
            }
            mode(s.default_mode, p.children(&["secret", "defaultMode"]), errs);
        }
        if let Some(s) = &v.host_path
            && s.path.is_empty()
        {
            errs.push(FieldError::required(p.children(&["hostPath", "path"]), ""));
        }
        if let Some(s) = &v.persistent_volume_claim
            && s.claim_name.is_empty()
        {
            errs.push(FieldError::required(
                p.children(&["persistentVolumeClaim", "claimName"]),
                "",
            ));
        }
    }
    seen
}

fn validate_container(
    c: &Container,
    p: &Path,
    volumes: &HashSet<String>,
    all_names: &mut HashSet<String>,
    init: bool,
    errs: &mut Vec<FieldError>,
) {
    if c.name.is_empty() {
        errs.push(FieldError::required(p.child("name"), ""));
    } else {
        dns_label(&c.name, &p.child("name"), errs);
        if !all_names.insert(c.name.clone()) {
            errs.push(FieldError::duplicate(p.child("name"), c.name.as_str()));
        }
    }
    let image = c.image.as_deref().unwrap_or("");
    if image.is_empty() {
        errs.push(FieldError::required(p.child("image"), ""));
    }
    let sidecar = init && c.restart_policy.as_deref() == Some("Always");
    match (&c.restart_policy, init) {
        (Some(rp), true) if rp != "Always" => {
            errs.push(not_supported(&p.child("restartPolicy"), rp, &["Always"]));
        }
        (Some(_), false) => errs.push(FieldError::forbidden(
            p.child("restartPolicy"),
            "may not be set for non-init containers",
        )),
        _ => {}
    }
    if init && !sidecar {
        if c.lifecycle.is_some() {
            errs.push(FieldError::forbidden(
                p.child("lifecycle"),
                INIT_PROBE_FORBIDDEN,
            ));
        }
        if c.liveness_probe.is_some() {
            errs.push(FieldError::forbidden(
                p.child("livenessProbe"),
                INIT_PROBE_FORBIDDEN,
            ));
        }
        if c.readiness_probe.is_some() {
            errs.push(FieldError::forbidden(
                p.child("readinessProbe"),
                "may not be set for init containers",
            ));
        }
        if c.startup_probe.is_some() {
            errs.push(FieldError::forbidden(
                p.child("startupProbe"),
                INIT_PROBE_FORBIDDEN,
            ));
        }
    } else {
        if let Some(l) = &c.lifecycle {
            for (name, h) in [("postStart", &l.post_start), ("preStop", &l.pre_stop)] {
                if let Some(h) = h {
                    lifecycle_handler(h, &p.children(&["lifecycle", name]), errs);
                }
            }
        }
        if let Some(probe) = &c.liveness_probe {
            validate_probe(probe, &p.child("livenessProbe"), true, errs);
        }
        if let Some(probe) = &c.readiness_probe {
            validate_probe(probe, &p.child("readinessProbe"), false, errs);
        }
        if let Some(probe) = &c.startup_probe {
            validate_probe(probe, &p.child("startupProbe"), true, errs);
        }
    }
    validate_ports(
        c.ports.as_deref().unwrap_or_default(),
        &p.child("ports"),
        errs,
    );
    for (i, e) in c.env.iter().flatten().enumerate() {
        validate_env(e, &p.child("env").index(i), errs);
    }
    for (i, e) in c.env_from.iter().flatten().enumerate() {
        validate_env_from(e, &p.child("envFrom").index(i), errs);
    }
    validate_volume_mounts(
        c.volume_mounts.as_deref().unwrap_or_default(),
        volumes,
        &p.child("volumeMounts"),
        errs,
    );
    match c.image_pull_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(p.child("imagePullPolicy"), "")),
        v if PULL_POLICIES.contains(&v) => {}
        v => errs.push(not_supported(&p.child("imagePullPolicy"), v, PULL_POLICIES)),
    }
    match c.termination_message_policy.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(
            p.child("terminationMessagePolicy"),
            "",
        )),
        v if TERMINATION_MESSAGE_POLICIES.contains(&v) => {}
        v => errs.push(not_supported(
            &p.child("terminationMessagePolicy"),
            v,
            TERMINATION_MESSAGE_POLICIES,
        )),
    }
    if let Some(r) = &c.resources {
        validate_resources(r, &p.child("resources"), errs);
    }
    if let Some(sc) = &c.security_context {
        container_security_context(sc, &p.child("securityContext"), errs);
    }
}

fn validate_ports(ports: &[ContainerPort], path: &Path, errs: &mut Vec<FieldError>) {
    let mut names_seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        if let Some(name) = port.name.as_deref().filter(|n| !n.is_empty()) {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                for msg in msgs {
                    errs.push(FieldError::invalid(p.child("name"), name, msg));
                }
            } else if !names_seen.insert(name) {
                errs.push(FieldError::duplicate(p.child("name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(p.child("containerPort"), ""));
        } else {
            for msg in names::is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    p.child("containerPort"),
                    port.container_port,
                    msg,
                ));
            }
        }
        if let Some(hp) = port.host_port.filter(|hp| *hp != 0) {
            for msg in names::is_valid_port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(p.child("hostPort"), hp, msg));
            }
        }
        match port.protocol.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required(p.child("protocol"), "")),
            v if PROTOCOLS.contains(&v) => {}
            v => errs.push(not_supported(&p.child("protocol"), v, PROTOCOLS)),
        }
        if let Some(ip) = port.host_ip.as_deref().filter(|s| !s.is_empty())
            && names::parse_ip(ip).is_none()
        {
            errs.push(FieldError::invalid(
                p.child("hostIP"),
                ip,
                names::INVALID_IP,
            ));
        }
    }
}

/// With `hostNetwork`, a host port must equal its container port (a
/// template may leave it 0).
fn host_network_ports(spec: &PodSpec, path: &Path, of: SpecOf, errs: &mut Vec<FieldError>) {
    let groups = [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (field, containers) in groups {
        for (i, c) in containers.iter().enumerate() {
            for (j, port) in c.ports.iter().flatten().enumerate() {
                let hp = port.host_port.unwrap_or(0);
                if hp != port.container_port && (of == SpecOf::Pod || hp != 0) {
                    errs.push(FieldError::invalid(
                        path.child(field)
                            .index(i)
                            .child("ports")
                            .index(j)
                            .child("hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
}

fn validate_env(e: &EnvVar, p: &Path, errs: &mut Vec<FieldError>) {
    if e.name.is_empty() {
        errs.push(FieldError::required(p.child("name"), ""));
    } else {
        for msg in names::is_env_var_name(&e.name) {
            errs.push(FieldError::invalid(p.child("name"), e.name.as_str(), msg));
        }
    }
    let Some(from) = &e.value_from else {
        return;
    };
    let fp = p.child("valueFrom");
    let mut sources = 0;
    if let Some(f) = &from.field_ref {
        sources += 1;
        let fpath = fp.child("fieldRef");
        if f.api_version.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(fpath.child("apiVersion"), ""));
        } else if f.field_path.is_empty() {
            errs.push(FieldError::required(fpath.child("fieldPath"), ""));
        } else {
            field_ref_path(&f.field_path, &fpath, errs);
        }
    }
    if let Some(r) = &from.resource_field_ref {
        sources += 1;
        let rpath = fp.child("resourceFieldRef");
        if r.resource.is_empty() {
            errs.push(FieldError::required(rpath.child("resource"), ""));
        } else if !ENV_RESOURCE_FIELDS.contains(&r.resource.as_str())
            && !r.resource.starts_with("limits.hugepages-")
            && !r.resource.starts_with("requests.hugepages-")
        {
            errs.push(not_supported(
                &rpath.child("resource"),
                &r.resource,
                ENV_RESOURCE_FIELDS,
            ));
        }
    }
    if let Some(k) = &from.config_map_key_ref {
        sources += 1;
        key_selector(&k.name, &k.key, &fp.child("configMapKeyRef"), errs);
    }
    if let Some(k) = &from.secret_key_ref {
        sources += 1;
        key_selector(&k.name, &k.key, &fp.child("secretKeyRef"), errs);
    }
    if from.file_key_ref.is_some() {
        sources += 1;
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            &fp,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
        errs.push(FieldError::invalid(
            &fp,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            &fp,
            "",
            "may not have more than one field specified at a time",
        ));
    }
}

/// Downward API field paths: a known path, or labels/annotations with a
/// qualified-name subscript (`metadata.labels['app']`).
fn field_ref_path(fp: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if let Some((base, rest)) = fp.split_once("['") {
        let Some(sub) = rest.strip_suffix("']") else {
            errs.push(not_supported(&path.child("fieldPath"), fp, ENV_FIELD_PATHS));
            return;
        };
        match base {
            "metadata.annotations" => {
                for msg in names::is_qualified_name(&sub.to_lowercase()) {
                    errs.push(FieldError::invalid(path, sub, msg));
                }
            }
            "metadata.labels" => {
                for msg in names::is_qualified_name(sub) {
                    errs.push(FieldError::invalid(path, sub, msg));
                }
            }
            _ => errs.push(FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )),
        }
    } else if !ENV_FIELD_PATHS.contains(&fp) {
        errs.push(not_supported(&path.child("fieldPath"), fp, ENV_FIELD_PATHS));
    }
}

fn key_selector(name: &str, key: &str, path: &Path, errs: &mut Vec<FieldError>) {
    for msg in NameRule::Dns1123Subdomain.check(name, false) {
        errs.push(FieldError::invalid(path.child("name"), name, msg));
    }
    if key.is_empty() {
        errs.push(FieldError::required(path.child("key"), ""));
    } else {
        for msg in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(path.child("key"), key, msg));
        }
    }
}

fn validate_env_from(e: &EnvFromSource, p: &Path, errs: &mut Vec<FieldError>) {
    if let Some(prefix) = e.prefix.as_deref().filter(|s| !s.is_empty()) {
        for msg in names::is_env_var_name(prefix) {
            errs.push(FieldError::invalid(p.child("prefix"), prefix, msg));
        }
    }
    let mut sources = 0;
    if let Some(r) = &e.config_map_ref {
        sources += 1;
        for msg in NameRule::Dns1123Subdomain.check(&r.name, false) {
            errs.push(FieldError::invalid(
                p.children(&["configMapRef", "name"]),
                r.name.as_str(),
                msg,
            ));
        }
    }
    if let Some(r) = &e.secret_ref {
        sources += 1;
        for msg in NameRule::Dns1123Subdomain.check(&r.name, false) {
            errs.push(FieldError::invalid(
                p.children(&["secretRef", "name"]),
                r.name.as_str(),
                msg,
            ));
        }
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            p,
            "",
            "must specify one of: `configMapRef` or `secretRef`",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            p,
            "",
            "may not have more than one field specified at a time",
        ));
    }
}

fn validate_volume_mounts(
    mounts: &[VolumeMount],
    volumes: &HashSet<String>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let mut mount_points = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        if m.name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        if !volumes.contains(&m.name) {
            errs.push(FieldError::new(
                FieldErrorKind::NotFound,
                p.child("name"),
                Some(Value::from(m.name.as_str())),
                "",
            ));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(p.child("mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                p.child("mountPath"),
                m.mount_path.as_str(),
                "must be unique",
            ));
        }
        if let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            // kube reports these at the list's path, not the item's.
            let sp = path.child("subPath");
            if sub.starts_with('/') {
                errs.push(FieldError::invalid(&sp, sub, "must be a relative path"));
            }
            if sub.split('/').any(|part| part == "..") {
                errs.push(FieldError::invalid(&sp, sub, "must not contain '..'"));
            }
            if m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
                errs.push(FieldError::invalid(
                    p.child("subPathExpr"),
                    m.sub_path_expr.as_deref().unwrap_or(""),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
        }
    }
}

/// Exactly one handler; each handler's own required fields.
fn validate_handler(
    exec: Option<&[String]>,
    http_get: Option<&k8s_openapi::api::core::v1::HTTPGetAction>,
    tcp_port: Option<&IntOrString>,
    grpc_port: Option<i32>,
    sleep_seconds: Option<i64>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let mut count = 0;
    let mut more = |name: &str, errs: &mut Vec<FieldError>| {
        count += 1;
        if count > 1 {
            errs.push(FieldError::forbidden(
                path.child(name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            true
        }
    };
    if let Some(cmd) = exec
        && more("exec", errs)
        && cmd.is_empty()
    {
        errs.push(FieldError::required(
            path.children(&["exec", "command"]),
            "",
        ));
    }
    if let Some(h) = http_get
        && more("httpGet", errs)
    {
        let hp = path.child("httpGet");
        if h.path.as_deref().unwrap_or("").is_empty() {
            errs.push(FieldError::required(hp.child("path"), ""));
        }
        port_num_or_name(&h.port, &hp.child("port"), errs);
        let scheme = h.scheme.as_deref().unwrap_or("");
        if !["HTTP", "HTTPS"].contains(&scheme) {
            errs.push(not_supported(
                &hp.child("scheme"),
                scheme,
                &["HTTP", "HTTPS"],
            ));
        }
    }
    if let Some(port) = tcp_port
        && more("tcpSocket", errs)
    {
        port_num_or_name(port, &path.children(&["tcpSocket", "port"]), errs);
    }
    if let Some(port) = grpc_port
        && more("grpc", errs)
    {
        for msg in names::is_valid_port_num(i64::from(port)) {
            errs.push(FieldError::invalid(
                path.children(&["grpc", "port"]),
                port,
                msg,
            ));
        }
    }
    if let Some(seconds) = sleep_seconds
        && more("sleep", errs)
        && seconds < 0
    {
        errs.push(FieldError::invalid(
            path.children(&["sleep", "seconds"]),
            seconds,
            "must be non-negative",
        ));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn lifecycle_handler(h: &LifecycleHandler, path: &Path, errs: &mut Vec<FieldError>) {
    validate_handler(
        h.exec
            .as_ref()
            .map(|e| e.command.as_deref().unwrap_or_default()),
        h.http_get.as_ref(),
        h.tcp_socket.as_ref().map(|t| &t.port),
        None,
        h.sleep.as_ref().map(|s| s.seconds),
        path,
        errs,
    );
}

fn validate_probe(probe: &Probe, path: &Path, must_succeed_once: bool, errs: &mut Vec<FieldError>) {
    validate_handler(
        probe
            .exec
            .as_ref()
            .map(|e| e.command.as_deref().unwrap_or_default()),
        probe.http_get.as_ref(),
        probe.tcp_socket.as_ref().map(|t| &t.port),
        probe.grpc.as_ref().map(|g| g.port),
        None,
        path,
        errs,
    );
    for (name, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        nonnegative(i64::from(v.unwrap_or(0)), &path.child(name), errs);
    }
    if let Some(t) = probe.termination_grace_period_seconds
        && t <= 0
    {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    if must_succeed_once {
        let st = probe.success_threshold.unwrap_or(0);
        if st != 1 {
            errs.push(FieldError::invalid(
                path.child("successThreshold"),
                st,
                "must be 1",
            ));
        }
    }
}

/// Standard resource names a container may not request (they are
/// standard, just not for containers).
const STANDARD_NON_CONTAINER: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
];

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_container_standard(name: &str) -> bool {
    matches!(name, "cpu" | "memory" | "ephemeral-storage") || name.starts_with("hugepages-")
}

fn container_resource_name(name: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let msgs = names::is_qualified_name(name);
    if !msgs.is_empty() {
        for msg in msgs {
            errs.push(FieldError::invalid(path, name, msg));
        }
        return;
    }
    if !name.contains('/') {
        if !is_container_standard(name) {
            let msg = if STANDARD_NON_CONTAINER.contains(&name)
                || name.starts_with("requests.")
                || name.starts_with("limits.")
            {
                "must be a standard resource for containers"
            } else {
                "must be a standard resource type or fully qualified"
            };
            errs.push(FieldError::invalid(path, name, msg));
        }
    } else if !is_native_resource(name) && name.starts_with("requests.") {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// `ValidateResourceRequirements` for a container.
fn validate_resources(r: &ResourceRequirements, path: &Path, errs: &mut Vec<FieldError>) {
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let value = |q: &str| quantity::parse(q).map(|q| q.nanos).unwrap_or(0);
    let check_value = |name: &str, q: &str, p: &Path, errs: &mut Vec<FieldError>| {
        let v = value(q);
        if v < 0 {
            errs.push(FieldError::invalid(p, q, names::NEGATIVE_ERROR));
        }
        if !is_native_resource(name) && v % 1_000_000_000 != 0 {
            errs.push(FieldError::invalid(p, q, "must be an integer"));
        }
    };
    let limits = r.limits.as_ref();
    for (name, q) in limits.into_iter().flatten() {
        let p = lim_path.key(name);
        container_resource_name(name, &p, errs);
        check_value(name, &q.0, &p, errs);
    }
    let mut compute_or_memory = limits
        .into_iter()
        .flatten()
        .any(|(n, _)| n == "cpu" || n == "memory");
    let mut hugepages = limits
        .into_iter()
        .flatten()
        .any(|(n, _)| n.starts_with("hugepages-"));
    for (name, q) in r.requests.iter().flatten() {
        let p = req_path.key(name);
        container_resource_name(name, &p, errs);
        check_value(name, &q.0, &p, errs);
        compute_or_memory |= name == "cpu" || name == "memory";
        hugepages |= name.starts_with("hugepages-");
        let overcommit = is_native_resource(name) && !name.starts_with("hugepages-");
        match limits.and_then(|l| l.get(name)) {
            Some(limit) => {
                let (req, lim) = (value(&q.0), value(&limit.0));
                if req != lim && !overcommit {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.0.as_str(),
                        format!("must be equal to {name} limit of {}", limit.0),
                    ));
                } else if req > lim {
                    errs.push(FieldError::invalid(
                        &req_path,
                        q.0.as_str(),
                        format!("must be less than or equal to {name} limit of {}", limit.0),
                    ));
                }
            }
            None if !overcommit => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
    if hugepages && !compute_or_memory {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
}

fn id_range(v: Option<i64>, path: Path, errs: &mut Vec<FieldError>) {
    if let Some(v) = v
        && !(0..=i64::from(i32::MAX)).contains(&v)
    {
        errs.push(FieldError::invalid(
            path,
            v,
            names::inclusive_range_error(0, i64::from(i32::MAX)),
        ));
    }
}

fn pod_security_context(sc: &PodSecurityContext, path: &Path, errs: &mut Vec<FieldError>) {
    id_range(sc.run_as_user, path.child("runAsUser"), errs);
    id_range(sc.run_as_group, path.child("runAsGroup"), errs);
    id_range(sc.fs_group, path.child("fsGroup"), errs);
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        id_range(Some(*g), path.child("supplementalGroups").index(i), errs);
    }
}

fn container_security_context(sc: &SecurityContext, path: &Path, errs: &mut Vec<FieldError>) {
    id_range(sc.run_as_user, path.child("runAsUser"), errs);
    id_range(sc.run_as_group, path.child("runAsGroup"), errs);
    if sc.privileged == Some(true) && sc.allow_privilege_escalation == Some(false) {
        errs.push(FieldError::invalid(
            path,
            json(sc),
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
}

fn dns_config(spec: &PodSpec, policy: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(cfg) = &spec.dns_config else {
        if policy == "None" {
            errs.push(FieldError::required(
                path,
                "must provide `dnsConfig` when `dnsPolicy` is None",
            ));
        }
        return;
    };
    let servers = cfg.nameservers.as_deref().unwrap_or_default();
    if policy == "None" && servers.is_empty() {
        errs.push(FieldError::required(
            path.child("nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        ));
    }
    if servers.len() > 3 {
        errs.push(FieldError::invalid(
            path.child("nameservers"),
            json(&servers),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in servers.iter().enumerate() {
        if names::parse_ip(ns).is_none() {
            errs.push(FieldError::invalid(
                path.child("nameservers").index(i),
                ns.as_str(),
                "must be valid IP address",
            ));
        }
    }
}

/// `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Toleration], path: &Path) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = t.key.as_deref().unwrap_or("");
        let operator = t.operator.as_deref().unwrap_or("");
        let value = t.value.as_deref().unwrap_or("");
        let effect = t.effect.as_deref().unwrap_or("");
        if !key.is_empty() {
            for msg in names::is_qualified_name(key) {
                errs.push(FieldError::invalid(p.child("key"), key, msg));
            }
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match operator {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        json(t),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !TAINT_EFFECTS.contains(&effect) {
            errs.push(not_supported(&p.child("effect"), effect, TAINT_EFFECTS));
        }
    }
    errs
}

const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`'s spec rules: only images, activeDeadlineSeconds
/// (added or lowered), tolerations (added), terminationGracePeriodSeconds
/// and removal of scheduling gates may change.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let default_spec = PodSpec::default();
    let ns = new.spec.as_ref().unwrap_or(&default_spec);
    let os = old.spec.as_ref().unwrap_or(&default_spec);
    let path = Path::root("spec");
    if ns.containers.len() != os.containers.len() {
        errs.push(FieldError::forbidden(
            path.child("containers"),
            "pod updates may not add or remove containers",
        ));
        return errs;
    }
    let new_init = ns.init_containers.as_deref().unwrap_or_default();
    let old_init = os.init_containers.as_deref().unwrap_or_default();
    if new_init.len() != old_init.len() {
        errs.push(FieldError::forbidden(
            path.child("initContainers"),
            "pod updates may not add or remove containers",
        ));
        return errs;
    }
    match (ns.active_deadline_seconds, os.active_deadline_seconds) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                n,
                names::inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                path.child("activeDeadlineSeconds"),
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    let mut munged = ns.clone();
    for (c, o) in munged.containers.iter_mut().zip(&os.containers) {
        c.image.clone_from(&o.image);
    }
    for (c, o) in munged.init_containers.iter_mut().flatten().zip(old_init) {
        c.image.clone_from(&o.image);
    }
    munged.active_deadline_seconds = os.active_deadline_seconds;
    munged.tolerations.clone_from(&os.tolerations);
    munged.scheduling_gates.clone_from(&os.scheduling_gates);
    munged.termination_grace_period_seconds = os.termination_grace_period_seconds;
    if !meta::semantic_eq(&munged, os) {
        let mut changed = Vec::new();
        meta::diff_paths(
            &meta::prune_empty(json(os)),
            &meta::prune_empty(json(&munged)),
            &path,
            10,
            &mut changed,
        );
        errs.push(FieldError::forbidden(
            &path,
            format!("{POD_UPDATE_FORBIDDEN}\n  changed: {}", changed.join(", ")),
        ));
    }

    // Existing tolerations stay (only their tolerationSeconds may change).
    let new_tols = ns.tolerations.as_deref().unwrap_or_default();
    for old_tol in os.tolerations.iter().flatten() {
        let kept = new_tols.iter().any(|t| {
            let mut o = old_tol.clone();
            o.toleration_seconds = t.toleration_seconds;
            meta::semantic_eq(&o, t)
        });
        if !kept {
            errs.push(FieldError::forbidden(
                path.child("tolerations"),
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    // Scheduling gates may only be removed.
    let old_gates: HashSet<&str> = os
        .scheduling_gates
        .iter()
        .flatten()
        .map(|g| g.name.as_str())
        .collect();
    for g in ns.scheduling_gates.iter().flatten() {
        if !old_gates.contains(g.name.as_str()) {
            errs.push(FieldError::forbidden(
                path.child("schedulingGates"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    g.name
                ),
            ));
        }
    }
    errs
}
