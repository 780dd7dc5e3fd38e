//! NodePort through the running agent: `keelson-node proxy --devices …`
//! attaches the TC program in the node's namespace, a NodePort Service and
//! its EndpointSlice are created through keelson-server, and an "external"
//! client reaches `nodeIP:nodePort` with replies coming back.
//!
//! Topology: `client` (10.218.0.2) — veth — `node` (10.218.0.1; runs
//! keelson-server and the agent) — veth per backend (`10.219.N.1` ↔
//! `10.219.N.2`) — `bN` serving on :8080 and routing 10.218.0.0/24 via the
//! node. The client has no route to the backends: only translated traffic
//! reaches them. Nothing routes out of the test namespaces.

use std::{
    collections::BTreeSet,
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream},
    time::{Duration, Instant},
};

use anyhow::{Result, ensure};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    cgroup::TestCgroup,
    netns::{NetNs, VethPair},
    server::ServerProcess,
};
use serde_json::json;

use super::AgentProcess;

const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 218, 0, 1);
const NODE_PORT: u16 = 30_080;

/// One TCP connection from the client namespace; the backend's name.
fn connect(client: &NetNs) -> Result<String> {
    let target = SocketAddr::V4(SocketAddrV4::new(NODE_IP, NODE_PORT));
    let stream =
        client.enter(move || Ok(TcpStream::connect_timeout(&target, Duration::from_secs(2))?))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut name = String::new();
    BufReader::new(stream).read_line(&mut name)?;
    Ok(name.trim().to_owned())
}

#[test]
fn nodeport_service_through_the_agent_reaches_every_backend() -> Result<()> {
    let node = NetNs::new()?;
    let client = NetNs::new()?;
    let uplink = VethPair::new(&node, &client, NODE_IP, Ipv4Addr::new(10, 218, 0, 2))?;
    let mut devices = vec![uplink.a.clone()];
    let (mut backend_ns, mut veths, mut backends) = (Vec::new(), Vec::new(), Vec::new());
    for n in 0..2u8 {
        let ns = NetNs::new()?;
        let veth = VethPair::new(
            &node,
            &ns,
            Ipv4Addr::new(10, 219, n, 1),
            Ipv4Addr::new(10, 219, n, 2),
        )?;
        ns.ip(&[
            "route",
            "add",
            "10.218.0.0/24",
            "via",
            &veth.a_addr.to_string(),
        ])?;
        backends.push(NamedBackend::start(
            &ns,
            SocketAddrV4::new(veth.b_addr, 8080),
            &format!("b{n}"),
        )?);
        devices.push(veth.a.clone());
        veths.push(veth);
        backend_ns.push(ns);
    }
    let cgroup = TestCgroup::new()?;
    let pins = PinDir::new()?;

    let server = ServerProcess::start_in_netns(node.name(), &[])?;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": NODE_PORT}]}});
    let created = server.curl(
        "POST",
        "/api/v1/namespaces/default/services",
        Some("application/json"),
        Some(svc.to_string().as_bytes()),
        true,
    )?;
    ensure!(created.status == 201, "{created:?}");
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.219.0.2"], "conditions": {"ready": true}}, {"addresses": ["10.219.1.2"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]});
    let resp = server.curl(
        "POST",
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
        Some("application/json"),
        Some(slice.to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 201, "{resp:?}");

    let log = server.data_dir().join("agent.log");
    let node_ip = NODE_IP.to_string();
    let devices = devices.join(",");
    let extra = [
        "--node-name",
        "n1",
        "--node-ip",
        &node_ip,
        "--devices",
        &devices,
        "--metrics-bind-address",
        "off",
        "--flows-socket",
        "off",
    ];
    let agent = AgentProcess::start(
        &node,
        &server,
        &cgroup,
        &pins,
        &extra.map(std::ffi::OsStr::new),
        log,
    )?;

    let deadline = Instant::now() + Duration::from_secs(20);
    while connect(&client).is_err() {
        ensure!(
            Instant::now() < deadline,
            "the NodePort never answered; agent log:\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut seen = BTreeSet::new();
    for _ in 0..20 {
        seen.insert(connect(&client)?);
    }
    ensure!(
        seen == BTreeSet::from(["b0".to_owned(), "b1".to_owned()]),
        "20 connections reached {seen:?}"
    );
    // externalTrafficPolicy: Cluster → the backends see the node's address.
    for backend in &backends {
        ensure!(
            backend
                .peers()
                .iter()
                .all(|p| p.ip() == std::net::IpAddr::V4(NODE_IP)),
            "{} saw peers {:?}",
            backend.name,
            backend.peers()
        );
    }
    let forwarding =
        node.enter(|| Ok(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?))?;
    ensure!(
        forwarding.trim() == "1",
        "the agent did not enable forwarding in its namespace"
    );
    Ok(())
}
