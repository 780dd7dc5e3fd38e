//! Services and EndpointSlices → [`DesiredState`], with kube-proxy's
//! semantics (`pkg/proxy`: `serviceport.go`, `endpointslicecache.go`,
//! `topology.go`), for the IPv4 family.
//!
//! A pure function of its inputs: no I/O, no clock, no randomness; the same
//! objects give the same state on every node with the same [`NodeContext`].
//! Owns only this translation; watching the API is `proxy::watch`, writing
//! BPF maps is `proxy::maps`.
//!
//! The rules, in kube-proxy's words where it has them:
//! - A Service is proxied unless its `spec.clusterIP` is unset or `None`
//!   (headless), its type is `ExternalName`, or it carries the
//!   `service.kubernetes.io/service-proxy-name` label (another proxy owns
//!   it). Its IPv4 cluster IP is the `spec.clusterIPs` entry whose
//!   `spec.ipFamilies` entry is `IPv4` (`spec.clusterIP` when `ipFamilies` is
//!   empty, as for objects from old servers); a Service without one (IPv6
//!   single-stack) is skipped entirely, like kube-proxy's IPv4 proxier does.
//! - Each `spec.ports` entry gives frontends: the cluster IP; for types
//!   `NodePort` and `LoadBalancer` with a `nodePort` (none is allocated when
//!   `allocateLoadBalancerNodePorts: false`, unless the user set one), every
//!   IPv4 node address; every IPv4 `spec.externalIPs`; every IPv4
//!   `status.loadBalancer.ingress[].ip` whose `ipMode` is unset or `VIP`
//!   (`Proxy`-mode load balancers deliver to the node, not to the VIP).
//! - EndpointSlices join their Service by namespace and the
//!   `kubernetes.io/service-name` label — whether the endpointslice
//!   controller or a user (Service without a selector) made them. Only
//!   `addressType: IPv4` slices count, and only an endpoint's first address.
//!   A slice port serves the service port with the same name (`""` for an
//!   unnamed port; an absent name counts as `""` and an absent protocol as
//!   TCP, as the API server defaults them) and protocol: that is how named
//!   `targetPort`s resolve, per slice (pods of one Service may resolve the
//!   name to different numbers; they sit in different slices).
//! - Endpoint conditions: `ready` (absent = true), `serving` (absent =
//!   true), `terminating` (absent = false). The usable backends of a set are
//!   its ready endpoints or, when none is ready, its serving-and-terminating
//!   ones ([`BackendState::Terminating`]). The fallback is per set: with a
//!   `Local` policy, local terminating endpoints are used only when no *local*
//!   endpoint is ready.
//! - `internalTrafficPolicy: Local` → the cluster-IP frontends use endpoints
//!   whose `nodeName` is this node only. `externalTrafficPolicy: Local` on an
//!   externally accessible Service (type `NodePort` or `LoadBalancer`, or
//!   `ClusterIP` with `externalIPs`) → node-port, external-IP and
//!   load-balancer frontends use local endpoints only, and `external_local`.
//! - `sessionAffinity: ClientIP` → affinity for
//!   `sessionAffinityConfig.clientIP.timeoutSeconds` (10800 by default).
//! - An endpoint (address, port) in several slices counts once; a local copy
//!   wins, then the one in the better state (ready, then serving and
//!   terminating), then the first slice by name. (kube-proxy keeps whichever
//!   its map iteration meets first, except that local wins.)
//! - Backends are sorted; frontends are keyed in a [`BTreeMap`]. Two Services
//!   claiming one frontend (an external IP, say) cannot both have it: the
//!   first in namespace/name order keeps it, and a warning is logged.
//!
//! Not modelled (yet): topology-aware routing (`hints`,
//! `trafficDistribution`; needs the node's zone), `loadBalancerSourceRanges`,
//! `healthCheckNodePort`, IPv6.

use std::{
    collections::{BTreeMap, btree_map::Entry},
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use k8s_openapi::api::{
    core::v1::{Service, ServicePort, ServiceSpec},
    discovery::v1::EndpointSlice,
};
use tracing::{debug, warn};

use super::model::{
    Algorithm, Backend, BackendState, DesiredState, Frontend, FrontendKind, LbService, Protocol,
    ServiceName,
};

/// Label joining an EndpointSlice to its Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Label handing a Service (and its slices) to another proxy.
pub const LABEL_SERVICE_PROXY_NAME: &str = "service.kubernetes.io/service-proxy-name";
/// `sessionAffinityConfig.clientIP.timeoutSeconds` when unset (3 hours).
pub const DEFAULT_AFFINITY_TIMEOUT: Duration = Duration::from_secs(10_800);

/// What the desired state depends on besides the API objects: this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeContext {
    /// This node's name, compared with endpoints' `nodeName` for the
    /// `Local` traffic policies. Empty → no endpoint is local.
    pub node_name: String,
    /// Addresses node ports are served on (IPv6 ones are ignored for now).
    pub node_ips: Vec<IpAddr>,
    /// For node-port, external-IP and load-balancer frontends (north-south).
    pub nodeport_algorithm: Algorithm,
    /// For cluster-IP frontends (east-west).
    pub clusterip_algorithm: Algorithm,
}

impl NodeContext {
    /// A node with the default algorithms: Maglev for node-port, external and
    /// load-balancer frontends, random for cluster IPs (Cilium's choice).
    pub fn new(node_name: impl Into<String>, node_ips: Vec<IpAddr>) -> Self {
        Self {
            node_name: node_name.into(),
            node_ips,
            nodeport_algorithm: Algorithm::Maglev,
            clusterip_algorithm: Algorithm::Random,
        }
    }
}

/// The desired load-balancer state of this node for these objects. See the
/// module documentation for the rules.
pub fn desired_state(
    services: &[Service],
    slices: &[EndpointSlice],
    node: &NodeContext,
) -> DesiredState {
    desired_state_from(services, slices, node)
}

/// [`desired_state`] over any collections of references (for callers that
/// hold `Arc`s, such as reflector stores), without copying objects.
pub fn desired_state_from<'a>(
    services: impl IntoIterator<Item = &'a Service>,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node: &NodeContext,
) -> DesiredState {
    let slices_by_service = index_slices(slices);
    let mut services: Vec<&Service> = services.into_iter().collect();
    services.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let node_ips = node_ipv4s(node);
    let mut state = DesiredState::default();
    for service in services {
        let Some(name) = service_name(service) else {
            continue;
        };
        let slices = slices_by_service
            .get(&(name.namespace.as_str(), name.name.as_str()))
            .map(Vec::as_slice)
            .unwrap_or_default();
        add_proxied_service(&mut state, service, &name, slices, &node_ips, node);
    }
    state
}

/// The frontends of one Service, given (at least) its EndpointSlices, as
/// [`desired_state`] computes them for that Service alone: the building
/// block of incremental updates (`proxy::tracker`). Slices of other
/// services or that the proxy ignores are skipped.
pub fn service_frontends<'a>(
    service: &Service,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node: &NodeContext,
) -> BTreeMap<Frontend, LbService> {
    let mut state = DesiredState::default();
    let Some(name) = service_name(service) else {
        return state.services;
    };
    let mut mine: Vec<&EndpointSlice> = slices
        .into_iter()
        .filter(|s| slice_owner(s) == Some((name.namespace.as_str(), name.name.as_str())))
        .collect();
    mine.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    add_proxied_service(&mut state, service, &name, &mine, &node_ipv4s(node), node);
    state.services
}

/// The Service an EndpointSlice serves, as [`desired_state`] joins them;
/// `None` for slices the proxy ignores.
pub fn slice_service(slice: &EndpointSlice) -> Option<ServiceName> {
    slice_owner(slice).map(|(namespace, name)| ServiceName {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
    })
}

/// The IPv4 node addresses, sorted and deduplicated.
fn node_ipv4s(node: &NodeContext) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = node.node_ips.iter().filter_map(ipv4).collect();
    ips.sort_unstable();
    ips.dedup();
    ips
}

/// Adds `service` (with its `slices`, in name order) unless the proxy
/// skips it.
fn add_proxied_service(
    state: &mut DesiredState,
    service: &Service,
    name: &ServiceName,
    slices: &[&EndpointSlice],
    node_ips: &[Ipv4Addr],
    node: &NodeContext,
) {
    let Some(spec) = proxied_spec(service, name) else {
        return;
    };
    let Some(cluster_ip) = cluster_ipv4(spec) else {
        debug!(service = %name, "no IPv4 cluster IP; skipped");
        return;
    };
    add_service(
        state, service, spec, name, cluster_ip, slices, node_ips, node,
    );
}

/// (namespace, service name) of a slice the proxy reads.
fn slice_owner(slice: &EndpointSlice) -> Option<(&str, &str)> {
    if slice.address_type != "IPv4" {
        return None;
    }
    let labels = slice.metadata.labels.as_ref()?;
    if labels.contains_key(LABEL_SERVICE_PROXY_NAME) {
        return None;
    }
    let namespace = slice.metadata.namespace.as_deref()?;
    let service = labels.get(LABEL_SERVICE_NAME)?;
    (!namespace.is_empty() && !service.is_empty()).then_some((namespace, service.as_str()))
}

/// IPv4 slices of proxied services by (namespace, service name), each list
/// in slice-name order.
fn index_slices<'a>(
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
) -> BTreeMap<(&'a str, &'a str), Vec<&'a EndpointSlice>> {
    let mut index: BTreeMap<(&str, &str), Vec<&EndpointSlice>> = BTreeMap::new();
    for slice in slices {
        if let Some(owner) = slice_owner(slice) {
            index.entry(owner).or_default().push(slice);
        }
    }
    for list in index.values_mut() {
        list.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    }
    index
}

/// `namespace/name` of a Service with both set.
pub fn service_name(service: &Service) -> Option<ServiceName> {
    match (&service.metadata.namespace, &service.metadata.name) {
        (Some(namespace), Some(name)) if !namespace.is_empty() && !name.is_empty() => {
            Some(ServiceName {
                namespace: namespace.clone(),
                name: name.clone(),
            })
        }
        _ => None,
    }
}

/// The spec of a Service kube-proxy would proxy (`ShouldSkipService`).
fn proxied_spec<'a>(service: &'a Service, name: &ServiceName) -> Option<&'a ServiceSpec> {
    if service
        .metadata
        .labels
        .as_ref()
        .is_some_and(|l| l.contains_key(LABEL_SERVICE_PROXY_NAME))
    {
        debug!(service = %name, "has {LABEL_SERVICE_PROXY_NAME}; skipped");
        return None;
    }
    let spec = service.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    match spec.cluster_ip.as_deref() {
        None | Some("") | Some("None") => None,
        Some(_) => Some(spec),
    }
}

/// `GetClusterIPByFamily(IPv4)`.
fn cluster_ipv4(spec: &ServiceSpec) -> Option<Ipv4Addr> {
    let families = spec.ip_families.as_deref().unwrap_or_default();
    if families.is_empty() {
        return spec.cluster_ip.as_deref()?.parse().ok();
    }
    let index = families.iter().position(|f| f == "IPv4")?;
    spec.cluster_ips.as_ref()?.get(index)?.parse().ok()
}

fn ipv4(ip: &IpAddr) -> Option<Ipv4Addr> {
    match ip {
        IpAddr::V4(v4) => Some(*v4),
        IpAddr::V6(_) => None,
    }
}

fn parse_ipv4s<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Ipv4Addr> {
    let mut ips: Vec<Ipv4Addr> = values
        .into_iter()
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    ips.sort_unstable();
    ips.dedup();
    ips
}

fn protocol(value: Option<&str>) -> Option<Protocol> {
    match value.unwrap_or("TCP") {
        "TCP" => Some(Protocol::Tcp),
        "UDP" => Some(Protocol::Udp),
        "SCTP" => Some(Protocol::Sctp),
        _ => None,
    }
}

fn port_number(value: i32) -> Option<u16> {
    u16::try_from(value).ok().filter(|p| *p != 0)
}

/// The per-service settings shared by its ports.
struct Policies {
    internal_local: bool,
    external_local: bool,
    affinity: Option<Duration>,
}

impl Policies {
    fn of(spec: &ServiceSpec) -> Self {
        let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
        // `apiservice.ExternallyAccessible`.
        let externally_accessible = matches!(type_, "NodePort" | "LoadBalancer")
            || (type_ == "ClusterIP" && spec.external_ips.as_ref().is_some_and(|v| !v.is_empty()));
        let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
            spec.session_affinity_config
                .as_ref()
                .and_then(|c| c.client_ip.as_ref())
                .and_then(|c| c.timeout_seconds)
                .and_then(|s| u64::try_from(s).ok())
                .filter(|s| *s > 0)
                .map_or(DEFAULT_AFFINITY_TIMEOUT, Duration::from_secs)
        });
        Self {
            internal_local: spec.internal_traffic_policy.as_deref() == Some("Local"),
            external_local: externally_accessible
                && spec.external_traffic_policy.as_deref() == Some("Local"),
            affinity,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn add_service(
    state: &mut DesiredState,
    service: &Service,
    spec: &ServiceSpec,
    name: &ServiceName,
    cluster_ip: Ipv4Addr,
    slices: &[&EndpointSlice],
    node_ips: &[Ipv4Addr],
    node: &NodeContext,
) {
    let policies = Policies::of(spec);
    let type_ = spec.type_.as_deref().unwrap_or("ClusterIP");
    let has_node_ports = matches!(type_, "NodePort" | "LoadBalancer");
    let external_ips = parse_ipv4s(spec.external_ips.iter().flatten().map(String::as_str));
    let lb_ips = parse_ipv4s(
        service
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|lb| lb.ingress.as_ref())
            .into_iter()
            .flatten()
            .filter(|ing| matches!(ing.ip_mode.as_deref(), None | Some("VIP")))
            .filter_map(|ing| ing.ip.as_deref()),
    );

    for port in spec.ports.iter().flatten() {
        let port_name = port.name.clone().unwrap_or_default();
        let (Some(protocol), Some(number)) =
            (protocol(port.protocol.as_deref()), port_number(port.port))
        else {
            warn!(service = %name, port = %port_name, protocol = ?port.protocol, number = port.port,
                "unsupported service port; skipped");
            continue;
        };
        let endpoints = endpoints_for(slices, &port_name, protocol, &node.node_name);
        let cluster = usable(endpoints.iter());
        let local = usable(endpoints.iter().filter(|e| e.local));
        let internal = if policies.internal_local {
            &local
        } else {
            &cluster
        };
        let external = if policies.external_local {
            &local
        } else {
            &cluster
        };

        let entry = |kind: FrontendKind, backends: &Vec<Backend>| {
            let north_south = kind != FrontendKind::ClusterIp;
            LbService {
                service: name.clone(),
                port_name: port_name.clone(),
                kind,
                backends: backends.clone(),
                algorithm: if north_south {
                    node.nodeport_algorithm
                } else {
                    node.clusterip_algorithm
                },
                affinity: policies.affinity,
                external_local: north_south && policies.external_local,
            }
        };
        let frontend = |ip: Ipv4Addr, port: u16| Frontend {
            ip: IpAddr::V4(ip),
            port,
            protocol,
        };

        insert(
            state,
            frontend(cluster_ip, number),
            entry(FrontendKind::ClusterIp, internal),
        );
        if let Some(node_port) = node_port(port).filter(|_| has_node_ports) {
            for &ip in node_ips {
                insert(
                    state,
                    frontend(ip, node_port),
                    entry(FrontendKind::NodePort, external),
                );
            }
        }
        for &ip in &external_ips {
            insert(
                state,
                frontend(ip, number),
                entry(FrontendKind::ExternalIp, external),
            );
        }
        for &ip in &lb_ips {
            insert(
                state,
                frontend(ip, number),
                entry(FrontendKind::LoadBalancer, external),
            );
        }
    }
}

fn node_port(port: &ServicePort) -> Option<u16> {
    port.node_port.and_then(port_number)
}

/// Adds a frontend unless another service holds it already.
fn insert(state: &mut DesiredState, frontend: Frontend, lb: LbService) {
    match state.services.entry(frontend) {
        Entry::Vacant(slot) => {
            slot.insert(lb);
        }
        Entry::Occupied(held) => {
            let held = held.get();
            if held.service != lb.service {
                warn!(
                    frontend = %format_args!("{}:{}/{:?}", frontend.ip, frontend.port, frontend.protocol),
                    kept = %held.service, kept_kind = ?held.kind,
                    dropped = %lb.service, dropped_kind = ?lb.kind,
                    "two services claim one frontend; the first keeps it"
                );
            }
        }
    }
}

/// One endpoint (address, port) of one service port, after dedup.
#[derive(Debug, Clone)]
struct Endpoint {
    ip: Ipv4Addr,
    port: u16,
    ready: bool,
    serving: bool,
    terminating: bool,
    local: bool,
    node_name: Option<String>,
}

impl Endpoint {
    /// Dedup preference: local first, then ready, then serving-terminating.
    fn rank(&self) -> (bool, bool, bool) {
        (self.local, self.ready, self.serving && self.terminating)
    }
}

/// The endpoints of the service port (`port_name`, `protocol`) across the
/// service's slices, deduplicated by (address, port).
fn endpoints_for(
    slices: &[&EndpointSlice],
    port_name: &str,
    protocol: Protocol,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut by_address: BTreeMap<(Ipv4Addr, u16), Endpoint> = BTreeMap::new();
    for slice in slices {
        for slice_port in slice.ports.iter().flatten() {
            if slice_port.name.as_deref().unwrap_or("") != port_name
                || self::protocol(slice_port.protocol.as_deref()) != Some(protocol)
            {
                continue;
            }
            let Some(number) = slice_port.port.and_then(port_number) else {
                continue;
            };
            for endpoint in slice.endpoints.iter().flatten() {
                let Some(ip) = endpoint.addresses.first().and_then(|a| a.parse().ok()) else {
                    continue;
                };
                let conditions = endpoint.conditions.as_ref();
                let node = endpoint.node_name.as_deref();
                let candidate = Endpoint {
                    ip,
                    port: number,
                    ready: conditions.and_then(|c| c.ready).unwrap_or(true),
                    serving: conditions.and_then(|c| c.serving).unwrap_or(true),
                    terminating: conditions.and_then(|c| c.terminating).unwrap_or(false),
                    local: !node_name.is_empty() && node == Some(node_name),
                    node_name: node.map(str::to_owned),
                };
                match by_address.entry((ip, number)) {
                    Entry::Vacant(slot) => {
                        slot.insert(candidate);
                    }
                    Entry::Occupied(mut held) => {
                        if candidate.rank() > held.get().rank() {
                            held.insert(candidate);
                        }
                    }
                }
            }
        }
    }
    by_address.into_values().collect()
}

/// The usable backends of a set of endpoints: the ready ones, or when none
/// is ready the serving-and-terminating ones; sorted.
fn usable<'a>(endpoints: impl Iterator<Item = &'a Endpoint> + Clone) -> Vec<Backend> {
    let backend = |e: &Endpoint, state| Backend {
        ip: IpAddr::V4(e.ip),
        port: e.port,
        state,
        node_name: e.node_name.clone(),
    };
    let mut backends: Vec<Backend> = endpoints
        .clone()
        .filter(|e| e.ready)
        .map(|e| backend(e, BackendState::Active))
        .collect();
    if backends.is_empty() {
        backends = endpoints
            .filter(|e| e.serving && e.terminating)
            .map(|e| backend(e, BackendState::Terminating))
            .collect();
    }
    backends.sort();
    backends
}

#[cfg(test)]
mod tests;
