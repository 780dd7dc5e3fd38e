//! The core (`v1`) kinds: Pod (rules in [`super::pod`]), Service,
//! Endpoints, Node, Namespace, ConfigMap, Secret, ServiceAccount and Event
//! — their defaulting hooks, create validation and update rules as core's
//! `validation.go` has them.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{
    ConfigMap, EndpointAddress, Endpoints, Event, Namespace, Node, Pod, Secret, Service,
    ServiceAccount, ServicePort, ServiceSpec,
};
use serde_json::{Value, json};

use super::Kind;
use super::defaults;
use super::meta::{self, json};
use super::names::{self, NameRule};
use super::path::Path;
use super::pod;
use crate::apiserver::status::FieldError;

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const SERVICE_TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
/// ConfigMap and Secret payload limit.
pub const MAX_DATA_SIZE: usize = 1024 * 1024;
const NODE_PORT_RANGE: std::ops::RangeInclusive<i32> = 30000..=32767;
const KUBELET_PORT: i32 = 10250;

impl Kind for Pod {
    fn default(&mut self) {
        defaults::pod(self);
    }
    fn on_create(&mut self) {
        defaults::pod_initial_status(self);
    }
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        pod::validate_pod(self)
    }
    fn validate_create(&self) -> Vec<FieldError> {
        pod::validate_pod_create(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        pod::validate_pod_update(self, old)
    }
}

impl Kind for Service {
    const NAME_RULE: NameRule = NameRule::Dns1035Label;
    fn default(&mut self) {
        defaults::service(self);
    }
    fn on_update(&mut self, old: &Self) {
        carry_over_service(self, old);
    }
    fn post_default(&mut self) {
        defaults::service_ip_families(self);
    }
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        validate_service(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        validate_service_update(self, old)
    }
}

impl Kind for Endpoints {
    fn default(&mut self) {
        defaults::endpoints(self);
    }
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        validate_endpoints(self)
    }
}

impl Kind for Node {
    fn default(&mut self) {
        defaults::node(self);
    }
}

impl Kind for Namespace {
    const NAME_RULE: NameRule = NameRule::Dns1123Label;
    fn default(&mut self) {
        defaults::namespace(self);
    }
    fn on_create(&mut self) {
        defaults::namespace_on_create(self);
    }
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let path = Path::root("spec").child("finalizers");
        for f in self.spec.iter().flat_map(|s| s.finalizers.iter().flatten()) {
            errs.extend(meta::validate_finalizer_name(f, &path));
        }
        errs
    }
}

impl Kind for ConfigMap {
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        validate_config_map(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errs.push(immutable_when_set("immutable"));
            }
            if !meta::semantic_eq(&self.data, &old.data) {
                errs.push(immutable_when_set("data"));
            }
            if !meta::semantic_eq(&self.binary_data, &old.binary_data) {
                errs.push(immutable_when_set("binaryData"));
            }
        }
        errs
    }
}

impl Kind for Secret {
    fn default(&mut self) {
        defaults::secret(self);
    }
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        validate_secret(self)
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        errs.extend(meta::immutable(
            &self.type_,
            &old.type_,
            &Path::root("type"),
        ));
        if old.immutable == Some(true) {
            if self.immutable != Some(true) {
                errs.push(immutable_when_set("immutable"));
            }
            if !meta::semantic_eq(&self.data, &old.data) {
                errs.push(immutable_when_set("data"));
            }
        }
        errs
    }
}

impl Kind for ServiceAccount {}

impl Kind for Event {
    /// core/v1 events skip the strict metadata rules (kept for old
    /// clients); only the generic path-segment rule applies.
    const NAME_RULE: NameRule = NameRule::PathSegment;
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        validate_event(self)
    }
}

fn immutable_when_set(field: &str) -> FieldError {
    FieldError::forbidden(
        Path::root(field),
        "field is immutable when `immutable` is set",
    )
}

fn validate_config_map(cm: &ConfigMap) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    let binary = cm.binary_data.as_ref();
    for (key, value) in cm.data.iter().flatten() {
        let p = Path::root("data").key(key);
        for msg in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(&p, key.as_str(), msg));
        }
        if binary.is_some_and(|b| b.contains_key(key)) {
            errs.push(FieldError::invalid(
                &p,
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total = total.saturating_add(value.len());
    }
    for (key, value) in binary.into_iter().flatten() {
        for msg in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(
                Path::root("binaryData").key(key),
                key.as_str(),
                msg,
            ));
        }
        total = total.saturating_add(value.0.len());
    }
    if total > MAX_DATA_SIZE {
        errs.push(meta::too_long(&Path::root(""), MAX_DATA_SIZE));
    }
    errs
}

fn validate_secret(s: &Secret) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let data_path = Path::root("data");
    let no_data = BTreeMap::new();
    let data = s.data.as_ref().unwrap_or(&no_data);
    let mut total = 0usize;
    for (key, value) in data {
        for msg in names::is_config_map_key(key) {
            errs.push(FieldError::invalid(data_path.key(key), key.as_str(), msg));
        }
        total = total.saturating_add(value.0.len());
    }
    if total > MAX_DATA_SIZE {
        errs.push(meta::too_long(&data_path, MAX_DATA_SIZE));
    }
    let ty = s.type_.as_deref().unwrap_or("");
    if ty == "kubernetes.io/service-account-token" {
        let has_name = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("kubernetes.io/service-account.name"))
            .is_some_and(|v| !v.is_empty());
        if !has_name {
            errs.push(FieldError::required(
                Path::root("metadata")
                    .child("annotations")
                    .key("kubernetes.io/service-account.name"),
                "",
            ));
        }
    }
    // Docker configs must be present and well-formed JSON.
    let docker_key = match ty {
        "kubernetes.io/dockercfg" => Some(".dockercfg"),
        "kubernetes.io/dockerconfigjson" => Some(".dockerconfigjson"),
        _ => None,
    };
    if let Some(key) = docker_key {
        match data.get(key) {
            None => errs.push(FieldError::required(data_path.key(key), "")),
            Some(bytes) => {
                if let Err(e) = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes.0) {
                    errs.push(FieldError::invalid(
                        data_path.key(key),
                        "<secret contents redacted>",
                        e.to_string(),
                    ));
                }
            }
        }
    }
    let required: &[&str] = match ty {
        // Either may be empty, but one must be there.
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            &["username", "password"]
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|v| v.0.is_empty()) => {
            &["ssh-privatekey"]
        }
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        _ => &[],
    };
    for key in required {
        if ty != "kubernetes.io/tls" || !data.contains_key(*key) {
            errs.push(FieldError::required(data_path.key(key), ""));
        }
    }
    errs
}

fn is_headless(spec: &ServiceSpec) -> bool {
    matches!(spec.cluster_ips.as_deref(), Some([ip]) if ip == "None")
}

fn externally_accessible(spec: &ServiceSpec) -> bool {
    let ty = spec.type_.as_deref().unwrap_or("");
    ty == "LoadBalancer"
        || ty == "NodePort"
        || (ty == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|e| !e.is_empty()))
}

fn needs_cluster_ip(spec: &ServiceSpec) -> bool {
    spec.type_.as_deref() != Some("ExternalName")
}

fn needs_node_port(spec: &ServiceSpec) -> bool {
    match spec.type_.as_deref() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec.allocate_load_balancer_node_ports != Some(false),
        _ => false,
    }
}

/// What the service registry does on update before validating: values
/// the user left out (cluster IPs, node ports, IP families) are carried
/// over from the stored object, and fields that only made sense for the
/// old type are dropped when the type changes to ExternalName.
fn carry_over_service(new: &mut Service, old: &Service) {
    let Some(os) = old.spec.as_ref() else {
        return;
    };
    let ns = new.spec.get_or_insert_with(Default::default);
    if ns.type_.as_deref() == Some("ExternalName") && os.type_.as_deref() != Some("ExternalName") {
        if ns.cluster_ip == os.cluster_ip {
            ns.cluster_ip = None;
        }
        if meta::semantic_eq(&ns.cluster_ips, &os.cluster_ips) {
            ns.cluster_ips = None;
        }
        if meta::semantic_eq(&ns.ip_families, &os.ip_families) {
            ns.ip_families = None;
        }
        if ns.ip_family_policy == os.ip_family_policy {
            ns.ip_family_policy = None;
        }
        if ns.internal_traffic_policy == os.internal_traffic_policy {
            ns.internal_traffic_policy = None;
        }
    }
    if !needs_node_port(ns) && needs_node_port(os) {
        for p in ns.ports.iter_mut().flatten() {
            if os
                .ports
                .iter()
                .flatten()
                .any(|o| o.node_port.is_some() && o.node_port == p.node_port)
            {
                p.node_port = None;
            }
        }
    }
    if !externally_accessible(ns) && ns.external_traffic_policy == os.external_traffic_policy {
        ns.external_traffic_policy = None;
    }
    if needs_cluster_ip(os) && needs_cluster_ip(ns) {
        let old_ip = os.cluster_ip.clone().unwrap_or_default();
        let new_ip = ns.cluster_ip.clone().unwrap_or_default();
        let new_ips_empty = ns.cluster_ips.as_ref().is_none_or(Vec::is_empty);
        if new_ip.is_empty() && new_ips_empty {
            ns.cluster_ip.clone_from(&os.cluster_ip);
            ns.cluster_ips.clone_from(&os.cluster_ips);
        } else if new_ips_empty && new_ip == old_ip {
            ns.cluster_ips.clone_from(&os.cluster_ips);
        }
        if ns.ip_families.as_ref().is_none_or(Vec::is_empty) {
            ns.ip_families.clone_from(&os.ip_families);
        }
        if ns.ip_family_policy.is_none() {
            ns.ip_family_policy.clone_from(&os.ip_family_policy);
        }
    }
    if needs_node_port(os) && needs_node_port(ns) {
        let used_new: HashSet<i32> = ns
            .ports
            .iter()
            .flatten()
            .filter_map(|p| p.node_port)
            .collect();
        let by_name: BTreeMap<&str, i32> = os
            .ports
            .iter()
            .flatten()
            .filter_map(|p| Some((p.name.as_deref().unwrap_or(""), p.node_port?)))
            .collect();
        for p in ns.ports.iter_mut().flatten() {
            if p.node_port.unwrap_or(0) == 0
                && let Some(&np) = by_name.get(p.name.as_deref().unwrap_or(""))
                && !used_new.contains(&np)
            {
                p.node_port = Some(np);
            }
        }
        if ns.health_check_node_port.is_none() {
            ns.health_check_node_port = os.health_check_node_port;
        }
    }
}

fn validate_service_port(
    sp: &ServicePort,
    require_name: bool,
    seen: &mut HashSet<String>,
    path: &Path,
    errs: &mut Vec<FieldError>,
) {
    let name = sp.name.as_deref().unwrap_or("");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        for msg in names::is_dns1123_label(name) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
        if !seen.insert(name.to_owned()) {
            errs.push(FieldError::duplicate(path.child("name"), name));
        }
    }
    for msg in names::is_valid_port_num(i64::from(sp.port)) {
        errs.push(FieldError::invalid(path.child("port"), sp.port, msg));
    }
    match sp.protocol.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(path.child("protocol"), "")),
        p if PROTOCOLS.contains(&p) => {}
        p => errs.push(FieldError::not_supported(
            path.child("protocol"),
            p,
            PROTOCOLS,
        )),
    }
    if let Some(tp) = &sp.target_port {
        pod::port_num_or_name(tp, &path.child("targetPort"), errs);
    }
    if let Some(ap) = sp.app_protocol.as_deref() {
        for msg in names::is_qualified_name(ap) {
            errs.push(FieldError::invalid(path.child("appProtocol"), ap, msg));
        }
    }
}

/// `ValidateService`.
pub fn validate_service(s: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let default_spec = ServiceSpec::default();
    let spec = s.spec.as_ref().unwrap_or(&default_spec);
    let sp = Path::root("spec");
    let ty = spec.type_.as_deref().unwrap_or("");
    let ports = spec.ports.as_deref().unwrap_or_default();
    let headless = is_headless(spec);
    let cluster_ips = spec.cluster_ips.as_deref().unwrap_or_default();

    if ports.is_empty() && !headless && ty != "ExternalName" {
        errs.push(FieldError::required(sp.child("ports"), ""));
    }
    match ty {
        "LoadBalancer" | "NodePort" => {
            if headless {
                errs.push(FieldError::invalid(
                    sp.child("clusterIPs").index(0),
                    "None",
                    format!("may not be set to 'None' for {ty} services"),
                ));
            }
            if ty == "LoadBalancer" {
                for (i, p) in ports.iter().enumerate() {
                    if p.port == KUBELET_PORT {
                        errs.push(FieldError::invalid(
                            sp.child("ports").index(i),
                            p.port,
                            format!("may not expose port {KUBELET_PORT} externally since it is used by kubelet"),
                        ));
                    }
                }
            }
        }
        "ExternalName" => {
            if !cluster_ips.is_empty() || spec.cluster_ip.as_deref().is_some_and(|c| !c.is_empty())
            {
                errs.push(FieldError::forbidden(
                    sp.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_families.as_ref().is_some_and(|f| !f.is_empty()) {
                errs.push(FieldError::forbidden(
                    sp.child("ipFamilies"),
                    "may not be set for ExternalName services",
                ));
            }
            if spec.ip_family_policy.is_some() {
                errs.push(FieldError::forbidden(
                    sp.child("ipFamilyPolicy"),
                    "may not be set for ExternalName services",
                ));
            }
            let name = spec.external_name.as_deref().unwrap_or("");
            let cname = name.strip_suffix('.').unwrap_or(name);
            if cname.is_empty() {
                errs.push(FieldError::required(sp.child("externalName"), ""));
            } else {
                for msg in names::is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(sp.child("externalName"), cname, msg));
                }
            }
        }
        _ => {}
    }
    let mut port_names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        validate_service_port(
            p,
            ports.len() > 1,
            &mut port_names,
            &sp.child("ports").index(i),
            &mut errs,
        );
    }
    errs.extend(meta::validate_labels(
        spec.selector.as_ref(),
        &sp.child("selector"),
    ));
    match spec.session_affinity.as_deref().unwrap_or("") {
        "" => errs.push(FieldError::required(sp.child("sessionAffinity"), "")),
        "ClientIP" => {
            let cfg = sp.child("sessionAffinityConfig");
            match spec
                .session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
            {
                None => errs.push(FieldError::required(
                    cfg.child("clientIP"),
                    "when session affinity type is ClientIP",
                )),
                Some(c) => {
                    let t = c.timeout_seconds.unwrap_or(0);
                    if !(1..=86400).contains(&t) {
                        errs.push(FieldError::invalid(
                            cfg.children(&["clientIP", "timeoutSeconds"]),
                            t,
                            "must be greater than 0 and less than 86400",
                        ));
                    }
                }
            }
        }
        "None" => {
            if spec.session_affinity_config.is_some() {
                errs.push(FieldError::forbidden(
                    sp.child("sessionAffinityConfig"),
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            sp.child("sessionAffinity"),
            other,
            &["ClientIP", "None"],
        )),
    }
    if ty != "ExternalName" {
        cluster_ip_fields(spec, &sp, &mut errs);
    }
    for (i, ip) in spec.external_ips.iter().flatten().enumerate() {
        if names::parse_ip(ip).is_none() {
            errs.push(FieldError::invalid(
                sp.child("externalIPs").index(i),
                ip.as_str(),
                names::INVALID_IP,
            ));
        }
    }
    match ty {
        "" => errs.push(FieldError::required(sp.child("type"), "")),
        t if SERVICE_TYPES.contains(&t) => {}
        t => errs.push(FieldError::not_supported(
            sp.child("type"),
            t,
            SERVICE_TYPES,
        )),
    }
    let mut node_ports = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = sp.child("ports").index(i);
        let protocol = p.protocol.as_deref().unwrap_or("");
        if let Some(np) = p.node_port.filter(|np| *np != 0) {
            if ty == "ClusterIP" || ty == "ExternalName" {
                errs.push(FieldError::forbidden(
                    pp.child("nodePort"),
                    format!("may not be used when `type` is '{ty}'"),
                ));
            } else if !NODE_PORT_RANGE.contains(&np) {
                errs.push(FieldError::invalid(
                    pp.child("nodePort"),
                    np,
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                ));
            }
            if !node_ports.insert((protocol, np)) {
                errs.push(FieldError::duplicate(pp.child("nodePort"), np));
            }
        }
        if !port_keys.insert((protocol, p.port)) {
            errs.push(FieldError::duplicate(
                &pp,
                json!({"port": p.port, "protocol": protocol}),
            ));
        }
    }
    let etp = spec.external_traffic_policy.as_deref().unwrap_or("");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                sp.child("externalTrafficPolicy"),
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required(sp.child("externalTrafficPolicy"), ""));
    } else if !["Cluster", "Local"].contains(&etp) {
        errs.push(FieldError::not_supported(
            sp.child("externalTrafficPolicy"),
            etp,
            &["Cluster", "Local"],
        ));
    }
    match spec.internal_traffic_policy.as_deref() {
        None if matches!(ty, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required(sp.child("internalTrafficPolicy"), ""));
        }
        Some(p) if !["Cluster", "Local"].contains(&p) => errs.push(FieldError::not_supported(
            sp.child("internalTrafficPolicy"),
            p,
            &["Cluster", "Local"],
        )),
        _ => {}
    }
    errs
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn cluster_ip_fields(spec: &ServiceSpec, sp: &Path, errs: &mut Vec<FieldError>) {
    let ips_path = sp.child("clusterIPs");
    let cluster_ip = spec.cluster_ip.as_deref().unwrap_or("");
    let ips = spec.cluster_ips.as_deref().unwrap_or_default();
    if !cluster_ip.is_empty() {
        match ips.first() {
            None => errs.push(FieldError::required(&ips_path, "")),
            Some(first) if first != cluster_ip => errs.push(FieldError::invalid(
                &ips_path,
                json(&ips),
                "first value must match `clusterIP`",
            )),
            Some(_) => {}
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            &ips_path,
            json(&ips),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = HashSet::new();
    for (i, family) in spec.ip_families.iter().flatten().enumerate() {
        let p = sp.child("ipFamilies").index(i);
        if family != "IPv4" && family != "IPv6" {
            errs.push(FieldError::not_supported(
                &p,
                family.as_str(),
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(family.as_str()) {
            errs.push(FieldError::duplicate(&p, family.as_str()));
        }
    }
    if let Some(policy) = spec.ip_family_policy.as_deref() {
        const POLICIES: &[&str] = &["PreferDualStack", "RequireDualStack", "SingleStack"];
        if !POLICIES.contains(&policy) {
            errs.push(FieldError::not_supported(
                sp.child("ipFamilyPolicy"),
                policy,
                POLICIES,
            ));
        }
    }
    let mut invalid = false;
    let mut parsed: Vec<IpAddr> = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && ip == "None" {
            if ips.len() > 1 {
                invalid = true;
                errs.push(FieldError::invalid(
                    &ips_path,
                    json(&ips),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        match names::parse_ip(ip) {
            Some(addr) => parsed.push(addr),
            None => {
                invalid = true;
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip.as_str(),
                    names::INVALID_IP,
                ));
            }
        }
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            &ips_path,
            json(&ips),
            "may only hold up to 2 values",
        ));
    }
    if invalid {
        return;
    }
    if parsed.len() > 1 && parsed.iter().filter(|ip| ip.is_ipv6()).count() != 1 {
        errs.push(FieldError::invalid(
            &ips_path,
            json(&ips),
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(spec) {
        for (i, (ip, family)) in parsed
            .iter()
            .zip(spec.ip_families.iter().flatten())
            .enumerate()
        {
            if family == "IPv4" && ip.is_ipv6() {
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip.to_string(),
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
            if family == "IPv6" && !ip.is_ipv6() {
                errs.push(FieldError::invalid(
                    ips_path.index(i),
                    ip.to_string(),
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
}

/// A service's cluster IP cannot change once set (except to or from
/// ExternalName, which has none).
fn validate_service_update(new: &Service, old: &Service) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (Some(ns), Some(os)) = (new.spec.as_ref(), old.spec.as_ref()) else {
        return errs;
    };
    if !needs_cluster_ip(ns) || !needs_cluster_ip(os) {
        return errs;
    }
    let old_ip = os.cluster_ip.as_deref().unwrap_or("");
    let new_ip = ns.cluster_ip.as_deref().unwrap_or("");
    if !old_ip.is_empty() && new_ip != old_ip {
        errs.push(FieldError::invalid(
            Path::root("spec").child("clusterIP"),
            new_ip,
            names::IMMUTABLE_ERROR,
        ));
    }
    errs
}

fn validate_endpoints(e: &Endpoints) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ss) in e.subsets.iter().flatten().enumerate() {
        let p = Path::root("subsets").index(i);
        let addresses = ss.addresses.as_deref().unwrap_or_default();
        let not_ready = ss.not_ready_addresses.as_deref().unwrap_or_default();
        if addresses.is_empty() && not_ready.is_empty() {
            errs.push(FieldError::required(
                &p,
                "must specify `addresses` or `notReadyAddresses`",
            ));
        }
        for (j, a) in addresses.iter().enumerate() {
            endpoint_address(a, &p.child("addresses").index(j), &mut errs);
        }
        for (j, a) in not_ready.iter().enumerate() {
            endpoint_address(a, &p.child("notReadyAddresses").index(j), &mut errs);
        }
        let ports = ss.ports.as_deref().unwrap_or_default();
        for (j, port) in ports.iter().enumerate() {
            let pp = p.child("ports").index(j);
            let name = port.name.as_deref().unwrap_or("");
            if ports.len() > 1 && name.is_empty() {
                errs.push(FieldError::required(pp.child("name"), ""));
            } else if !name.is_empty() {
                for msg in names::is_dns1123_label(name) {
                    errs.push(FieldError::invalid(pp.child("name"), name, msg));
                }
            }
            for msg in names::is_valid_port_num(i64::from(port.port)) {
                errs.push(FieldError::invalid(pp.child("port"), port.port, msg));
            }
            match port.protocol.as_deref().unwrap_or("") {
                "" => errs.push(FieldError::required(pp.child("protocol"), "")),
                v if PROTOCOLS.contains(&v) => {}
                v => errs.push(FieldError::not_supported(
                    pp.child("protocol"),
                    v,
                    PROTOCOLS,
                )),
            }
            if let Some(ap) = port.app_protocol.as_deref() {
                for msg in names::is_qualified_name(ap) {
                    errs.push(FieldError::invalid(pp.child("appProtocol"), ap, msg));
                }
            }
        }
    }
    errs
}

/// Endpoint IPs must be valid and not unspecified or link-local. Unlike
/// kube, loopback addresses are allowed: Keelson runs its pods on
/// 127.0.0.0/8.
pub fn special_ip_errors(ip: &str, path: &Path, errs: &mut Vec<FieldError>) {
    let Some(addr) = names::parse_ip(ip) else {
        errs.push(FieldError::invalid(path, ip, names::INVALID_IP));
        return;
    };
    if addr.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    let link_local = match addr {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    if link_local {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    let link_local_multicast = match addr {
        IpAddr::V4(v4) => v4.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v6) => (v6.segments()[0] & 0xff0f) == 0xff02,
    };
    if link_local_multicast {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn endpoint_address(a: &EndpointAddress, path: &Path, errs: &mut Vec<FieldError>) {
    special_ip_errors(&a.ip, &path.child("ip"), errs);
    if let Some(h) = a.hostname.as_deref().filter(|h| !h.is_empty()) {
        for msg in names::is_dns1123_label(h) {
            errs.push(FieldError::invalid(path.child("hostname"), h, msg));
        }
    }
    if let Some(n) = a.node_name.as_deref() {
        for msg in names::is_dns1123_subdomain(n) {
            errs.push(FieldError::invalid(path.child("nodeName"), n, msg));
        }
    }
}

const NOTE_LENGTH_LIMIT: usize = 1024;
const SHORT_LIMIT: usize = 128;

/// core/v1 Event rules (`legacyValidateEvent`): old-style events (no
/// `eventTime`) only need their namespace to match the involved object's;
/// new-style ones need the reporting fields.
fn validate_event(e: &Event) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let event_ns = e.metadata.namespace.as_deref().unwrap_or("");
    let involved_ns = e.involved_object.namespace.as_deref().unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            Path::root("involvedObject").child("namespace"),
            involved_ns,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        if involved_ns.is_empty() {
            if !event_ns.is_empty() && event_ns != "default" {
                errs.push(mismatch());
            }
        } else if event_ns != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && event_ns != "default" && event_ns != "kube-system" {
            errs.push(mismatch());
        }
        let component = e.reporting_component.as_deref().unwrap_or("");
        if component.is_empty() {
            errs.push(FieldError::required(Path::root("reportingComponent"), ""));
        }
        for msg in names::is_qualified_name(component) {
            errs.push(FieldError::invalid(
                Path::root("reportingComponent"),
                component,
                msg,
            ));
        }
        let limited = [
            (
                "reportingInstance",
                e.reporting_instance.as_deref(),
                SHORT_LIMIT,
                true,
            ),
            ("action", e.action.as_deref(), SHORT_LIMIT, true),
            ("reason", e.reason.as_deref(), SHORT_LIMIT, true),
            ("message", e.message.as_deref(), NOTE_LENGTH_LIMIT, false),
        ];
        for (field, value, limit, required) in limited {
            let value = value.unwrap_or("");
            if required && value.is_empty() {
                errs.push(FieldError::required(Path::root(field), ""));
            }
            if value.len() > limit {
                errs.push(FieldError::invalid(
                    Path::root(field),
                    "",
                    format!("can have at most {limit} characters"),
                ));
            }
        }
    }
    for msg in names::is_dns1123_subdomain(event_ns) {
        errs.push(FieldError::invalid(Path::root("namespace"), event_ns, msg));
    }
    errs
}
