//! Unit tests of `desired_state`: one per rule, on objects in the JSON shape
//! a real kube-apiserver returns (fixtures in `testdata/`, small ones built
//! with `json!`), deserialized into k8s-openapi types.

use std::{net::IpAddr, time::Duration};

use k8s_openapi::{
    List,
    api::{core::v1::Service, discovery::v1::EndpointSlice},
};
use serde_json::{Value, json};

use super::*;

const WEB_SERVICE: &str = include_str!("testdata/service-web.json");
const WEB_SLICES: &str = include_str!("testdata/endpointslices-web.json");

fn web() -> (Service, Vec<EndpointSlice>) {
    let service: Service = serde_json::from_str(WEB_SERVICE).unwrap();
    let slices: List<EndpointSlice> = serde_json::from_str(WEB_SLICES).unwrap();
    (service, slices.items)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn node(name: &str) -> NodeContext {
    NodeContext::new(name, vec![ip("192.168.1.10"), ip("fd00::10")])
}

fn fe(addr: &str, port: u16, protocol: Protocol) -> Frontend {
    Frontend {
        ip: ip(addr),
        port,
        protocol,
    }
}

fn tcp(addr: &str, port: u16) -> Frontend {
    fe(addr, port, Protocol::Tcp)
}

fn active(addr: &str, port: u16, node: &str) -> Backend {
    Backend {
        ip: ip(addr),
        port,
        state: BackendState::Active,
        node_name: Some(node.to_owned()),
    }
}

fn terminating(addr: &str, port: u16, node: &str) -> Backend {
    Backend {
        state: BackendState::Terminating,
        ..active(addr, port, node)
    }
}

/// `(address, port)` of each backend, for terse assertions.
fn addrs(lb: &LbService) -> Vec<String> {
    lb.backends
        .iter()
        .map(|b| format!("{}:{}", b.ip, b.port))
        .collect()
}

fn get(state: &DesiredState, frontend: Frontend) -> &LbService {
    state
        .services
        .get(&frontend)
        .unwrap_or_else(|| panic!("no frontend {frontend:?} in {:#?}", state.services.keys()))
}

fn service(value: Value) -> Service {
    serde_json::from_value(value).unwrap()
}

fn slice(value: Value) -> EndpointSlice {
    serde_json::from_value(value).unwrap()
}

/// A ClusterIP Service `ns/name` as the API server stores it, with `spec`
/// fields merged over the defaults.
fn svc(ns: &str, name: &str, cluster_ip: &str, spec: Value) -> Service {
    let mut value = json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": name, "namespace": ns, "uid": "u", "resourceVersion": "1"},
        "spec": {
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}],
            "selector": {"app": name},
            "clusterIP": cluster_ip, "clusterIPs": [cluster_ip],
            "type": "ClusterIP", "sessionAffinity": "None",
            "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster"
        },
        "status": {"loadBalancer": {}}
    });
    if let (Some(base), Some(extra)) = (value["spec"].as_object_mut(), spec.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    service(value)
}

/// An IPv4 EndpointSlice for `ns/service` with one `http`/TCP port.
fn eps(ns: &str, name: &str, service: &str, port: i32, endpoints: Value) -> EndpointSlice {
    slice(json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": name, "namespace": ns, "generateName": format!("{service}-"),
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"
            }
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "protocol": "TCP", "port": port}]
    }))
}

fn ep(addr: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> Value {
    json!({
        "addresses": [addr],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "nodeName": node, "zone": "zone-1",
        "targetRef": {"kind": "Pod", "namespace": "default", "name": format!("pod-{addr}")}
    })
}

fn ready(addr: &str, node: &str) -> Value {
    ep(addr, node, true, true, false)
}

// ---- the real-shape fixtures ---------------------------------------------------------------

#[test]
fn fixtures_deserialize_as_real_api_objects() {
    let (service, slices) = web();
    let spec = service.spec.as_ref().unwrap();
    assert_eq!(spec.ip_families.as_deref().unwrap(), ["IPv4", "IPv6"]);
    assert_eq!(slices.len(), 4);
    assert_eq!(slices[3].address_type, "IPv6");
    let first = &slices[0].endpoints.as_ref().unwrap()[0];
    assert_eq!(first.node_name.as_deref(), Some("node-a"));
    assert_eq!(first.zone.as_deref(), Some("zone-1"));
    assert!(first.hints.is_some() && first.target_ref.is_some());
}

#[test]
fn dual_stack_load_balancer_gives_every_ipv4_frontend_and_no_ipv6_one() {
    let (service, slices) = web();
    let state = desired_state(&[service], &slices, &node("node-a"));

    let name = ServiceName {
        namespace: "shop".into(),
        name: "web".into(),
    };
    let http = vec![
        active("10.244.1.17", 8080, "node-a"),
        active("10.244.2.9", 8080, "node-b"),
        active("10.244.3.5", 8081, "node-c"),
    ];
    let affinity = Some(Duration::from_secs(10_800));
    let expected_http = |kind, algorithm| LbService {
        service: name.clone(),
        port_name: "http".into(),
        kind,
        backends: http.clone(),
        algorithm,
        affinity,
        external_local: false,
    };
    assert_eq!(
        get(&state, tcp("10.96.12.34", 80)),
        &expected_http(FrontendKind::ClusterIp, Algorithm::Random)
    );
    assert_eq!(
        get(&state, tcp("192.168.1.10", 30080)),
        &expected_http(FrontendKind::NodePort, Algorithm::Maglev)
    );
    assert_eq!(
        get(&state, tcp("198.51.100.7", 80)),
        &expected_http(FrontendKind::ExternalIp, Algorithm::Maglev)
    );
    assert_eq!(
        get(&state, tcp("203.0.113.10", 80)),
        &expected_http(FrontendKind::LoadBalancer, Algorithm::Maglev)
    );

    // Numbered targetPort: every slice says 9090.
    assert_eq!(
        addrs(get(&state, tcp("10.96.12.34", 9090))),
        ["10.244.1.17:9090", "10.244.2.9:9090", "10.244.3.5:9090"]
    );
    // UDP port resolved by name and protocol.
    let dns = get(&state, fe("10.96.12.34", 53, Protocol::Udp));
    assert_eq!(dns.port_name, "dns");
    assert_eq!(
        addrs(dns),
        ["10.244.1.17:5353", "10.244.2.9:5353", "10.244.3.5:5353"]
    );
    assert!(
        !state
            .services
            .contains_key(&fe("10.96.12.34", 53, Protocol::Tcp))
    );

    // 3 ports × (cluster IP, one IPv4 node IP, one IPv4 external IP, one
    // IPv4 VIP): the IPv6 cluster IP, node IP, external IP, VIP and slice,
    // and the hostname-only Proxy-mode ingress give nothing.
    assert_eq!(state.services.len(), 12, "{:#?}", state.services.keys());
    assert!(state.services.keys().all(|f| f.ip.is_ipv4()));
}

#[test]
fn internal_traffic_policy_local_limits_cluster_ip_to_this_nodes_endpoints() {
    let (mut service, slices) = web();
    service.spec.as_mut().unwrap().internal_traffic_policy = Some("Local".into());
    for (node_name, expected) in [
        ("node-a", vec!["10.244.1.17:8080"]),
        ("node-c", vec!["10.244.3.5:8081"]),
        ("node-z", vec![]),
        ("", vec![]),
    ] {
        let state = desired_state(std::slice::from_ref(&service), &slices, &node(node_name));
        assert_eq!(
            addrs(get(&state, tcp("10.96.12.34", 80))),
            expected,
            "{node_name}"
        );
        // External frontends keep the cluster-wide set.
        assert_eq!(addrs(get(&state, tcp("192.168.1.10", 30080))).len(), 3);
    }
}

#[test]
fn external_traffic_policy_local_limits_external_frontends_and_marks_them() {
    let (mut service, slices) = web();
    service.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    let state = desired_state(&[service], &slices, &node("node-b"));
    for frontend in [
        tcp("192.168.1.10", 30080),
        tcp("198.51.100.7", 80),
        tcp("203.0.113.10", 80),
    ] {
        let lb = get(&state, frontend);
        assert_eq!(lb.backends, [active("10.244.2.9", 8080, "node-b")]);
        assert!(lb.external_local, "{frontend:?}");
    }
    let cluster = get(&state, tcp("10.96.12.34", 80));
    assert_eq!(cluster.backends.len(), 3);
    assert!(!cluster.external_local);
}

#[test]
fn terminating_fallback_is_per_set() {
    // node-a's only ready endpoint stops being ready: locally only the
    // serving-terminating 10.244.1.40 is left, cluster-wide two are ready.
    let (mut service, mut slices) = web();
    service.spec.as_mut().unwrap().external_traffic_policy = Some("Local".into());
    let first = &mut slices[0].endpoints.as_mut().unwrap()[0];
    assert_eq!(first.addresses, ["10.244.1.17"]);
    first.conditions = Some(
        serde_json::from_value(json!({"ready": false, "serving": false, "terminating": false}))
            .unwrap(),
    );
    let state = desired_state(&[service], &slices, &node("node-a"));
    assert_eq!(
        get(&state, tcp("192.168.1.10", 30080)).backends,
        [terminating("10.244.1.40", 8080, "node-a")]
    );
    assert_eq!(
        get(&state, tcp("10.96.12.34", 80)).backends,
        [
            active("10.244.2.9", 8080, "node-b"),
            active("10.244.3.5", 8081, "node-c")
        ]
    );
}

#[test]
fn serving_terminating_endpoints_are_used_only_when_none_is_ready() {
    let s = svc("default", "api", "10.96.0.20", json!({}));
    let with = |endpoints: Value| {
        let state = desired_state(
            std::slice::from_ref(&s),
            &[eps("default", "api-1", "api", 8443, endpoints)],
            &node("n1"),
        );
        get(&state, tcp("10.96.0.20", 80)).backends.clone()
    };
    // One ready, one terminating-but-serving: only the ready one.
    assert_eq!(
        with(json!([
            ready("10.0.0.1", "n1"),
            ep("10.0.0.2", "n2", false, true, true)
        ])),
        [active("10.0.0.1", 8443, "n1")]
    );
    // None ready: the serving terminating ones, marked so; not-serving
    // terminating and plain not-ready ones never.
    assert_eq!(
        with(json!([
            ep("10.0.0.1", "n1", false, false, false),
            ep("10.0.0.2", "n2", false, true, true),
            ep("10.0.0.3", "n2", false, false, true),
            ep("10.0.0.4", "n2", false, true, false)
        ])),
        [terminating("10.0.0.2", 8443, "n2")]
    );
    // Nothing usable: a frontend without backends (connections refused).
    assert_eq!(with(json!([ep("10.0.0.1", "n1", false, false, true)])), []);
}

#[test]
fn absent_conditions_mean_ready_serving_not_terminating() {
    let s = svc("default", "api", "10.96.0.20", json!({}));
    let slices = [eps(
        "default",
        "api-1",
        "api",
        8443,
        json!([
            {"addresses": ["10.0.0.1"]},
            {"addresses": ["10.0.0.2"], "conditions": {}},
            {"addresses": ["10.0.0.3"], "conditions": {"ready": false}},
            {"addresses": []}
        ]),
    )];
    let state = desired_state(&[s], &slices, &node("n1"));
    assert_eq!(
        addrs(get(&state, tcp("10.96.0.20", 80))),
        ["10.0.0.1:8443", "10.0.0.2:8443"]
    );
    assert_eq!(
        get(&state, tcp("10.96.0.20", 80)).backends[0].node_name,
        None
    );
}

// ---- which services ------------------------------------------------------------------------

#[test]
fn headless_external_name_and_other_proxies_services_are_skipped() {
    let headless = svc("default", "db", "None", json!({"clusterIPs": ["None"]}));
    let external_name = service(json!({
        "kind": "Service", "apiVersion": "v1",
        "metadata": {"name": "ext", "namespace": "default"},
        "spec": {"type": "ExternalName", "externalName": "example.com", "sessionAffinity": "None"}
    }));
    let mut other_proxy = svc("default", "other", "10.96.0.30", json!({}));
    other_proxy.metadata.labels =
        Some([(LABEL_SERVICE_PROXY_NAME.to_owned(), "mesh".to_owned())].into());
    let no_spec = service(json!({"metadata": {"name": "bare", "namespace": "default"}}));
    let slices = [
        eps(
            "default",
            "db-1",
            "db",
            5432,
            json!([ready("10.0.0.1", "n1")]),
        ),
        eps(
            "default",
            "ext-1",
            "ext",
            443,
            json!([ready("10.0.0.2", "n1")]),
        ),
        eps(
            "default",
            "other-1",
            "other",
            80,
            json!([ready("10.0.0.3", "n1")]),
        ),
    ];
    let state = desired_state(
        &[headless, external_name, other_proxy, no_spec],
        &slices,
        &node("n1"),
    );
    assert_eq!(state, DesiredState::default());
}

#[test]
fn ipv4_cluster_ip_is_picked_by_family() {
    let v6_only = svc(
        "default",
        "six",
        "fd00::1",
        json!({"ipFamilies": ["IPv6"], "clusterIPs": ["fd00::1"]}),
    );
    let v6_primary = svc(
        "default",
        "dual",
        "fd00::2",
        json!({
            "ipFamilies": ["IPv6", "IPv4"], "ipFamilyPolicy": "RequireDualStack",
            "clusterIPs": ["fd00::2", "10.96.0.2"]
        }),
    );
    // An object from a server without ipFamilies: spec.clusterIP decides.
    let mut legacy = svc("default", "old", "10.96.0.3", json!({}));
    let spec = legacy.spec.as_mut().unwrap();
    spec.ip_families = None;
    spec.cluster_ips = None;
    let mut legacy_v6 = svc("default", "old6", "fd00::4", json!({}));
    let spec = legacy_v6.spec.as_mut().unwrap();
    spec.ip_families = None;
    spec.cluster_ips = None;
    // ipFamilies longer than clusterIPs (mid-upgrade object): no panic.
    let short = svc(
        "default",
        "short",
        "fd00::5",
        json!({"ipFamilies": ["IPv6", "IPv4"], "clusterIPs": ["fd00::5"]}),
    );

    let state = desired_state(
        &[v6_only, v6_primary, legacy, legacy_v6, short],
        &[],
        &node("n1"),
    );
    let frontends: Vec<_> = state.services.keys().copied().collect();
    assert_eq!(frontends, [tcp("10.96.0.2", 80), tcp("10.96.0.3", 80)]);
}

// ---- joining slices ------------------------------------------------------------------------

#[test]
fn slices_join_by_service_name_label_and_namespace() {
    let services = [
        svc("default", "api", "10.96.0.20", json!({})),
        svc("other", "api", "10.96.0.21", json!({})),
    ];
    let mut unlabelled = eps(
        "default",
        "api-x",
        "api",
        8080,
        json!([ready("10.0.0.9", "n1")]),
    );
    unlabelled.metadata.labels = None;
    let mut foreign_proxy = eps(
        "default",
        "api-y",
        "api",
        8080,
        json!([ready("10.0.0.8", "n1")]),
    );
    foreign_proxy
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(LABEL_SERVICE_PROXY_NAME.into(), "mesh".into());
    let slices = [
        eps(
            "default",
            "api-1",
            "api",
            8080,
            json!([ready("10.0.0.1", "n1")]),
        ),
        eps(
            "default",
            "api-2",
            "api",
            8080,
            json!([ready("10.0.0.2", "n2")]),
        ),
        eps(
            "other",
            "api-1",
            "api",
            8080,
            json!([ready("10.0.1.1", "n1")]),
        ),
        eps(
            "default",
            "web-1",
            "web",
            8080,
            json!([ready("10.0.2.1", "n1")]),
        ),
        unlabelled,
        foreign_proxy,
    ];
    let state = desired_state(&services, &slices, &node("n1"));
    assert_eq!(
        addrs(get(&state, tcp("10.96.0.20", 80))),
        ["10.0.0.1:8080", "10.0.0.2:8080"]
    );
    assert_eq!(addrs(get(&state, tcp("10.96.0.21", 80))), ["10.0.1.1:8080"]);
}

#[test]
fn service_without_selector_uses_manual_slices() {
    let mut s = svc(
        "default",
        "legacy-db",
        "10.96.0.40",
        json!({
            "ports": [{"protocol": "TCP", "port": 5432, "targetPort": 5432}]
        }),
    );
    s.spec.as_mut().unwrap().selector = None;
    // A user-made slice, as `kubectl apply` stores it: the unnamed port
    // named "" (the API server's default) or without name at all.
    let manual = slice(json!({
        "kind": "EndpointSlice", "apiVersion": "discovery.k8s.io/v1",
        "metadata": {
            "name": "legacy-db-1", "namespace": "default",
            "labels": {"kubernetes.io/service-name": "legacy-db",
                       "endpointslice.kubernetes.io/managed-by": "staff"}
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.50"]}],
        "ports": [{"name": "", "protocol": "TCP", "port": 5432}]
    }));
    let nameless = slice(json!({
        "metadata": {"name": "legacy-db-2", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "legacy-db"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["192.0.2.51"]}],
        "ports": [{"port": 5432}]
    }));
    let state = desired_state(&[s], &[manual, nameless], &node("n1"));
    let lb = get(&state, tcp("10.96.0.40", 5432));
    assert_eq!(lb.port_name, "");
    assert_eq!(addrs(lb), ["192.0.2.50:5432", "192.0.2.51:5432"]);
}

#[test]
fn ports_resolve_by_name_and_protocol() {
    let s = svc(
        "default",
        "app",
        "10.96.0.50",
        json!({
            "ports": [
                {"name": "web", "protocol": "TCP", "port": 80, "targetPort": "web"},
                {"name": "dns", "protocol": "UDP", "port": 53, "targetPort": "dns"},
                {"name": "dns-tcp", "protocol": "TCP", "port": 53, "targetPort": "dns"}
            ]
        }),
    );
    let slice = slice(json!({
        "metadata": {"name": "app-1", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "app"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
        "ports": [
            {"name": "web", "protocol": "TCP", "port": 8080},
            {"name": "dns", "protocol": "UDP", "port": 5353},
            {"name": "dns-tcp", "protocol": "TCP", "port": 5354},
            {"name": "web", "protocol": "UDP", "port": 9999},
            {"name": "", "protocol": "TCP", "port": 7777},
            {"name": "web", "protocol": "TCP", "port": 0},
            {"name": "web", "protocol": "TCP"}
        ]
    }));
    let state = desired_state(&[s], &[slice], &node("n1"));
    assert_eq!(addrs(get(&state, tcp("10.96.0.50", 80))), ["10.0.0.1:8080"]);
    assert_eq!(
        addrs(get(&state, fe("10.96.0.50", 53, Protocol::Udp))),
        ["10.0.0.1:5353"]
    );
    assert_eq!(addrs(get(&state, tcp("10.96.0.50", 53))), ["10.0.0.1:5354"]);
    assert_eq!(state.services.len(), 3);
}

#[test]
fn only_ipv4_slices_and_addresses_count() {
    let s = svc("default", "api", "10.96.0.20", json!({}));
    let mut v6 = eps(
        "default",
        "api-v6",
        "api",
        8080,
        json!([ready("fd00::1", "n1")]),
    );
    v6.address_type = "IPv6".into();
    let mut fqdn = eps(
        "default",
        "api-fqdn",
        "api",
        8080,
        json!([ready("db.example.com", "n1")]),
    );
    fqdn.address_type = "FQDN".into();
    let odd = eps(
        "default",
        "api-odd",
        "api",
        8080,
        json!([ready("fd00::2", "n1"), ready("not-an-ip", "n1"), ready("10.0.0.1", "n1"),
               {"addresses": ["10.0.0.2", "10.0.0.3"]}]),
    );
    let state = desired_state(&[s], &[v6, fqdn, odd], &node("n1"));
    // Only an endpoint's first address is used.
    assert_eq!(
        addrs(get(&state, tcp("10.96.0.20", 80))),
        ["10.0.0.1:8080", "10.0.0.2:8080"]
    );
}

#[test]
fn endpoints_in_several_slices_count_once_preferring_local_then_ready() {
    let s = svc(
        "default",
        "api",
        "10.96.0.20",
        json!({"internalTrafficPolicy": "Local"}),
    );
    let slices = [
        // Moving between slices: a stale not-ready copy and a ready one.
        eps(
            "default",
            "api-a",
            "api",
            8080,
            json!([ep("10.0.0.1", "n1", false, false, false)]),
        ),
        eps(
            "default",
            "api-b",
            "api",
            8080,
            json!([ready("10.0.0.1", "n1"), ready("10.0.0.2", "n2")]),
        ),
        // Same address:port claimed by another node: the local copy wins.
        eps(
            "default",
            "api-c",
            "api",
            8080,
            json!([ready("10.0.0.2", "n1")]),
        ),
    ];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0]] {
        let shuffled: Vec<_> = order.iter().map(|&i| slices[i].clone()).collect();
        let state = desired_state(std::slice::from_ref(&s), &shuffled, &node("n1"));
        assert_eq!(
            get(&state, tcp("10.96.0.20", 80)).backends,
            [
                active("10.0.0.1", 8080, "n1"),
                active("10.0.0.2", 8080, "n1")
            ],
            "{order:?}"
        );
    }
}

// ---- frontends -----------------------------------------------------------------------------

#[test]
fn node_ports_on_every_ipv4_node_address_for_node_port_and_load_balancer_types() {
    let node_port = svc(
        "default",
        "np",
        "10.96.0.60",
        json!({
            "type": "NodePort", "externalTrafficPolicy": "Cluster",
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 31000}]
        }),
    );
    // Type ClusterIP with a stray nodePort (the API server refuses that,
    // an old object might have it): no node port.
    let cluster = svc(
        "default",
        "cip",
        "10.96.0.61",
        json!({
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 31001}]
        }),
    );
    // allocateLoadBalancerNodePorts: false → no nodePort, only the VIP.
    let mut lb = svc(
        "default",
        "lb",
        "10.96.0.62",
        json!({
            "type": "LoadBalancer", "externalTrafficPolicy": "Cluster",
            "allocateLoadBalancerNodePorts": false,
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}]
        }),
    );
    lb.status = serde_json::from_value(json!({"loadBalancer": {"ingress": [
        {"ip": "203.0.113.1"}, {"ip": "203.0.113.2", "ipMode": "Proxy"}, {"ip": "203.0.113.1", "ipMode": "VIP"}
    ]}}))
    .unwrap();
    let ctx = NodeContext::new(
        "n1",
        vec![
            ip("192.168.1.11"),
            ip("10.0.0.5"),
            ip("fd00::5"),
            ip("192.168.1.11"),
        ],
    );
    let state = desired_state(&[node_port, cluster, lb], &[], &ctx);
    let mut frontends: Vec<_> = state
        .services
        .iter()
        .map(|(f, lb)| (f.ip.to_string(), f.port, lb.kind))
        .collect();
    frontends.sort();
    assert_eq!(
        frontends,
        [
            ("10.0.0.5".to_owned(), 31000, FrontendKind::NodePort),
            ("10.96.0.60".to_owned(), 80, FrontendKind::ClusterIp),
            ("10.96.0.61".to_owned(), 80, FrontendKind::ClusterIp),
            ("10.96.0.62".to_owned(), 80, FrontendKind::ClusterIp),
            ("192.168.1.11".to_owned(), 31000, FrontendKind::NodePort),
            ("203.0.113.1".to_owned(), 80, FrontendKind::LoadBalancer),
        ]
    );
}

#[test]
fn external_ips_on_a_cluster_ip_service_honour_external_traffic_policy() {
    let s = svc(
        "default",
        "ext",
        "10.96.0.70",
        json!({
            "externalIPs": ["198.51.100.1", "bogus", "2001:db8::1"],
            "externalTrafficPolicy": "Local"
        }),
    );
    let slices = [eps(
        "default",
        "ext-1",
        "ext",
        8080,
        json!([ready("10.0.0.1", "n1"), ready("10.0.0.2", "n2")]),
    )];
    let state = desired_state(&[s], &slices, &node("n1"));
    let external = get(&state, tcp("198.51.100.1", 80));
    assert_eq!(external.kind, FrontendKind::ExternalIp);
    assert!(external.external_local);
    assert_eq!(addrs(external), ["10.0.0.1:8080"]);
    assert_eq!(addrs(get(&state, tcp("10.96.0.70", 80))).len(), 2);
    assert_eq!(state.services.len(), 2);
}

#[test]
fn external_traffic_policy_is_ignored_where_nothing_is_external() {
    // A ClusterIP service without externalIPs is not externally accessible.
    let s = svc(
        "default",
        "int",
        "10.96.0.71",
        json!({"externalTrafficPolicy": "Local"}),
    );
    let slices = [eps(
        "default",
        "int-1",
        "int",
        8080,
        json!([ready("10.0.0.2", "n2")]),
    )];
    let state = desired_state(&[s], &slices, &node("n1"));
    let lb = get(&state, tcp("10.96.0.71", 80));
    assert!(!lb.external_local);
    assert_eq!(addrs(lb), ["10.0.0.2:8080"]);
}

#[test]
fn session_affinity_timeout_defaults_to_three_hours() {
    let cases = [
        (json!({"sessionAffinity": "None"}), None),
        (json!({"sessionAffinity": "ClientIP"}), Some(10_800)),
        (
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}}),
            Some(600),
        ),
        (
            json!({"sessionAffinity": "ClientIP", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}),
            Some(10_800),
        ),
        (
            json!({"sessionAffinity": "None", "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 600}}}),
            None,
        ),
    ];
    for (spec, expected) in cases {
        let s = svc("default", "a", "10.96.0.80", spec.clone());
        let state = desired_state(&[s], &[], &node("n1"));
        assert_eq!(
            get(&state, tcp("10.96.0.80", 80)).affinity,
            expected.map(Duration::from_secs),
            "{spec}"
        );
    }
}

#[test]
fn algorithms_come_from_the_node_context() {
    let s = svc(
        "default",
        "np",
        "10.96.0.60",
        json!({
            "type": "NodePort",
            "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 31000}]
        }),
    );
    let mut ctx = node("n1");
    ctx.nodeport_algorithm = Algorithm::Random;
    ctx.clusterip_algorithm = Algorithm::Maglev;
    let state = desired_state(std::slice::from_ref(&s), &[], &ctx);
    assert_eq!(
        get(&state, tcp("10.96.0.60", 80)).algorithm,
        Algorithm::Maglev
    );
    assert_eq!(
        get(&state, tcp("192.168.1.10", 31000)).algorithm,
        Algorithm::Random
    );
    // Defaults: Maglev north-south, random east-west.
    let state = desired_state(&[s], &[], &node("n1"));
    assert_eq!(
        get(&state, tcp("10.96.0.60", 80)).algorithm,
        Algorithm::Random
    );
    assert_eq!(
        get(&state, tcp("192.168.1.10", 31000)).algorithm,
        Algorithm::Maglev
    );
}

#[test]
fn a_contested_frontend_stays_with_the_first_service_by_name() {
    let a = svc(
        "default",
        "a",
        "10.96.0.90",
        json!({"externalIPs": ["198.51.100.9"]}),
    );
    let b = svc(
        "default",
        "b",
        "10.96.0.91",
        json!({"externalIPs": ["198.51.100.9"]}),
    );
    for services in [[a.clone(), b.clone()], [b.clone(), a.clone()]] {
        let state = desired_state(&services, &[], &node("n1"));
        assert_eq!(get(&state, tcp("198.51.100.9", 80)).service.name, "a");
        assert_eq!(state.services.len(), 3);
    }
}

#[test]
fn invalid_ports_are_skipped_without_panicking() {
    let s = svc(
        "default",
        "bad",
        "10.96.0.95",
        json!({
            "ports": [
                {"name": "zero", "protocol": "TCP", "port": 0},
                {"name": "big", "protocol": "TCP", "port": 70000},
                {"name": "neg", "protocol": "TCP", "port": -1},
                {"name": "http", "protocol": "HTTP", "port": 80},
                {"name": "np", "protocol": "TCP", "port": 81, "nodePort": 99999},
                {"name": "ok", "port": 82}
            ],
            "type": "NodePort"
        }),
    );
    let state = desired_state(&[s], &[], &node("n1"));
    let frontends: Vec<_> = state.services.keys().copied().collect();
    // "np" keeps its cluster IP frontend but has no valid node port; "ok"
    // has no protocol (TCP by default) and no node port.
    assert_eq!(frontends, [tcp("10.96.0.95", 81), tcp("10.96.0.95", 82)]);
}

#[test]
fn result_does_not_depend_on_input_order() {
    let (service, slices) = web();
    let others = [
        svc("default", "api", "10.96.0.20", json!({})),
        svc("kube-system", "dns", "10.96.0.10", json!({})),
    ];
    let mut services = vec![service];
    services.extend(others);
    let extra = eps(
        "default",
        "api-1",
        "api",
        8080,
        json!([ready("10.0.0.1", "n1")]),
    );
    let mut all_slices = slices;
    all_slices.push(extra);
    let forward = desired_state(&services, &all_slices, &node("node-a"));
    services.reverse();
    all_slices.reverse();
    let backward = desired_state(&services, &all_slices, &node("node-a"));
    assert_eq!(forward, backward);
    assert_eq!(forward.services.len(), 14);
}
