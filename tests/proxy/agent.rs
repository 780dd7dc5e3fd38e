//! `keelson-node proxy` as users run it: the agent process follows a real
//! `keelson-server`, programs the socket load balancer, and a client in a
//! test cgroup + netns reaches the Service's ClusterIP. Killing the agent
//! with SIGKILL and restarting it does not break an open connection.
//!
//! Topology: netns `node` runs keelson-server and the agent (the agent's
//! `unreachable` route lands there); the client netns has a veth to each
//! backend netns (`10.215.N.1` ↔ `10.215.N.2`, backend `bN` on :8080) and
//! routes 10.96.0.0/12 to `unreachable`; the socket programs attach to a
//! test cgroup and pin under a test bpffs dir.

use std::{
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    cgroup::TestCgroup,
    netns::{NetNs, VethPair},
    server::ServerProcess,
    sockclient::SockClient,
};
use serde_json::json;

use super::{AgentProcess, node_binary};

const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_keelson-sock-client");
const ECONNREFUSED: i32 = 111;

fn start_agent(
    node_ns: &NetNs,
    server: &ServerProcess,
    cgroup: &TestCgroup,
    pins: &PinDir,
) -> Result<AgentProcess> {
    let log = server.data_dir().join("agent.log");
    let extra = [
        "--node-name",
        "n1",
        "--node-ip",
        "10.215.9.1",
        "--metrics-bind-address",
        "off",
        "--flows-socket",
        "off",
    ];
    AgentProcess::start(
        node_ns,
        server,
        cgroup,
        pins,
        &extra.map(std::ffi::OsStr::new),
        log,
    )
}

/// Connects to `vip` until a backend answers (the agent programmed it).
fn wait_reachable(
    client: &mut SockClient,
    vip: SocketAddr,
    agent: &AgentProcess,
) -> Result<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(reply) = client.tcp(vip)? {
            return Ok(reply.name);
        }
        if Instant::now() > deadline {
            bail!("the VIP {vip} never answered; agent log:\n{}", agent.log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn proxy_agent_balances_a_service_and_survives_sigkill() -> Result<()> {
    let node_ns = NetNs::new()?;
    let client_ns = NetNs::new()?;
    client_ns.ip(&["route", "add", "unreachable", "10.96.0.0/12"])?;
    let cgroup = TestCgroup::new()?;
    let pins = PinDir::new()?;
    let mut backend_ns = Vec::new();
    let mut veths = Vec::new();
    let mut backends = Vec::new();
    for n in 0..2u8 {
        let ns = NetNs::new()?;
        let veth = VethPair::new(
            &client_ns,
            &ns,
            Ipv4Addr::new(10, 215, n, 1),
            Ipv4Addr::new(10, 215, n, 2),
        )?;
        backends.push(NamedBackend::start(
            &ns,
            SocketAddrV4::new(veth.b_addr, 8080),
            &format!("b{n}"),
        )?);
        veths.push(veth);
        backend_ns.push(ns);
    }

    let server = ServerProcess::start_in_netns(node_ns.name(), &[])?;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"}]}});
    let created = server.curl(
        "POST",
        "/api/v1/namespaces/default/services",
        Some("application/json"),
        Some(svc.to_string().as_bytes()),
        true,
    )?;
    ensure!(created.status == 201, "{created:?}");
    let cluster_ip: Ipv4Addr = created.json()["spec"]["clusterIP"]
        .as_str()
        .context("clusterIP")?
        .parse()?;
    let vip = SocketAddr::V4(SocketAddrV4::new(cluster_ip, 80));
    let slice = |addresses: &[&str]| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "endpoints": addresses.iter().map(|a| json!({"addresses": [a], "conditions": {"ready": true, "serving": true, "terminating": false}})).collect::<Vec<_>>(),
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    };
    let slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    let resp = server.curl(
        "POST",
        slices,
        Some("application/json"),
        Some(slice(&["10.215.0.2", "10.215.1.2"]).to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 201, "{resp:?}");

    let mut agent = start_agent(&node_ns, &server, &cgroup, &pins)?;
    let mut client = SockClient::spawn(CLIENT_BIN, &client_ns, &cgroup)?;
    wait_reachable(&mut client, vip, &agent)?;
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let reply = client.tcp(vip)?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        ensure!(
            reply.peer == vip,
            "getpeername shows {} instead of the VIP",
            reply.peer
        );
        seen.insert(reply.name);
    }
    ensure!(seen.len() == 2, "30 connections reached only {seen:?}");
    // `lb list` shows what the datapath holds.
    let out = std::process::Command::new(node_binary()?)
        .args(["lb", "list", "--bpf-dir"])
        .arg(pins.path())
        .output()?;
    let listing = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "lb list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        format!("{cluster_ip}:80/TCP"),
        "10.215.0.2:8080/TCP".into(),
        "10.215.1.2:8080/TCP".into(),
    ] {
        ensure!(
            listing.contains(&needle),
            "lb list lacks {needle}:\n{listing}"
        );
    }
    let unreachable = node_ns.ip(&["route", "show", "type", "unreachable"])?;
    ensure!(
        unreachable.contains("10.96.0.0/12"),
        "the agent did not install the unreachable route: {unreachable:?}"
    );

    // An open connection survives the agent's SIGKILL and restart.
    let open = client
        .tcp_open(vip)?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    agent.kill9();
    ensure!(
        client.tcp_ping(open.id)?.is_ok(),
        "the open connection broke when the agent was killed"
    );
    ensure!(
        client.tcp(vip)?.is_ok(),
        "new connections failed while the agent was down"
    );
    let mut agent = start_agent(&node_ns, &server, &cgroup, &pins)?;
    std::thread::sleep(Duration::from_millis(500));
    ensure!(
        client.tcp_ping(open.id)?.is_ok(),
        "the open connection broke when the agent restarted"
    );

    // Endpoint changes made through the API reach the datapath.
    let mut current = server
        .curl("GET", &format!("{slices}/web-1"), None, None, true)?
        .json();
    current["endpoints"] = json!([{"addresses": ["10.215.1.2"], "conditions": {"ready": true}}]);
    let resp = server.curl(
        "PUT",
        &format!("{slices}/web-1"),
        Some("application/json"),
        Some(current.to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 200, "{resp:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let names: Vec<String> = (0..10)
            .filter_map(|_| client.tcp(vip).ok().and_then(|r| r.ok()).map(|r| r.name))
            .collect();
        if names.len() == 10 && names.iter().all(|n| n == "b1") {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "b0 still receives new connections: {names:?}\n{}",
            agent.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    ensure!(
        client.tcp_ping(open.id)?.is_ok(),
        "the open connection broke on an endpoint change"
    );

    // No endpoints left → connect() is refused at once.
    let resp = server.curl("DELETE", &format!("{slices}/web-1"), None, None, true)?;
    ensure!(resp.status == 200, "{resp:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.tcp(vip)? {
            Err(e) if e.errno == ECONNREFUSED => break,
            other => ensure!(
                Instant::now() < deadline,
                "still {other:?} after the slice was deleted\n{}",
                agent.log()
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.kill9();
    drop(backends);
    Ok(())
}
