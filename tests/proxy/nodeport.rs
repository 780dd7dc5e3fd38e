//! NodePort, ExternalIP and LoadBalancer through the running agent:
//! `keelson-node proxy --devices …` attaches the TC program in the node's
//! namespace, Services and EndpointSlices are created through
//! keelson-server, and an "external" client reaches the frontends with
//! replies coming back; `keelson-node flows` shows the TC flows; the
//! pinned TC links keep NodePort working while the agent is SIGKILLed and
//! are replaced in place (never duplicated) when it restarts;
//! `keelson-node proxy --cleanup` detaches them.
//!
//! Topology: `client` (10.218.0.2) — veth — `node` (10.218.0.1; runs
//! keelson-server and the agent) — veth per backend (`10.219.N.1` ↔
//! `10.219.N.2`) — `bN` serving on :8080 and routing 10.218.0.0/24 via the
//! node. The client has no route to the backends: only translated traffic
//! reaches them; it routes the external IP (10.218.5.10) and the
//! load-balancer IP (10.218.6.10) via the node. Nothing routes out of the
//! test namespaces.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream},
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, ensure};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    cgroup::TestCgroup,
    metrics::{sample, scrape},
    netns::{NetNs, VethPair},
    server::ServerProcess,
};
use serde_json::{Value, json};

use super::{AgentProcess, flows, node_binary};

const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 218, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 218, 0, 2);
const EXTERNAL_IP: Ipv4Addr = Ipv4Addr::new(10, 218, 5, 10);
const LB_IP: Ipv4Addr = Ipv4Addr::new(10, 218, 6, 10);
const NODE_PORT: u16 = 30_080;
const TIMEOUT: Duration = Duration::from_secs(2);
/// The agent's metrics address inside the node namespace.
const METRICS: &str = "127.0.0.1:10249";

fn node_port() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(NODE_IP, NODE_PORT))
}

/// Namespaces, links, backends, keelson-server, a cgroup and pins; all
/// removed on drop (fields drop in this order, the agent first).
struct Lab {
    agent: Option<AgentProcess>,
    server: ServerProcess,
    tmp: tempfile::TempDir,
    pins: PinDir,
    cgroup: TestCgroup,
    backends: Vec<NamedBackend>,
    devices: Vec<String>,
    _veths: Vec<VethPair>,
    _backend_ns: Vec<NetNs>,
    client: NetNs,
    node: NetNs,
}

impl Lab {
    fn new() -> Result<Self> {
        let node = NetNs::new()?;
        let client = NetNs::new()?;
        let uplink = VethPair::new(&node, &client, NODE_IP, CLIENT_IP)?;
        for prefix in ["10.218.5.0/24", "10.218.6.0/24"] {
            client.ip(&["route", "add", prefix, "via", &NODE_IP.to_string()])?;
        }
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
        veths.insert(0, uplink);
        let cgroup = TestCgroup::new()?;
        let pins = PinDir::new()?;
        let tmp = tempfile::tempdir()?;
        let server = ServerProcess::start_in_netns(node.name(), &[])?;
        Ok(Self {
            agent: None,
            server,
            tmp,
            pins,
            cgroup,
            backends,
            devices,
            _veths: veths,
            _backend_ns: backend_ns,
            client,
            node,
        })
    }

    fn flows_socket(&self) -> PathBuf {
        self.tmp.path().join("flows.sock")
    }

    /// Starts (or restarts) the agent on every device, serving flows.
    fn start_agent(&mut self) -> Result<()> {
        let log = self.tmp.path().join("agent.log");
        let devices = self.devices.join(",");
        let socket = self.flows_socket();
        let extra = [
            std::ffi::OsStr::new("--node-name"),
            "n1".as_ref(),
            "--node-ip".as_ref(),
            "10.218.0.1".as_ref(),
            "--devices".as_ref(),
            devices.as_ref(),
            "--metrics-bind-address".as_ref(),
            METRICS.as_ref(),
            "--flows-socket".as_ref(),
            socket.as_os_str(),
        ];
        self.agent = Some(AgentProcess::start(
            &self.node,
            &self.server,
            &self.cgroup,
            &self.pins,
            &extra,
            log,
        )?);
        Ok(())
    }

    fn agent_log(&self) -> String {
        self.agent
            .as_ref()
            .map(AgentProcess::log)
            .unwrap_or_default()
    }

    /// POSTs `object` to `path`, expecting 201.
    fn create(&self, path: &str, object: &Value) -> Result<Value> {
        let resp = self.server.curl(
            "POST",
            path,
            Some("application/json"),
            Some(object.to_string().as_bytes()),
            true,
        )?;
        ensure!(resp.status == 201, "POST {path}: {resp:?}");
        Ok(resp.json())
    }

    /// A Service and its EndpointSlice (both backends, on node `n1`).
    fn create_service(&self, name: &str, spec: Value) -> Result<Value> {
        let svc = self.create(
            "/api/v1/namespaces/default/services",
            &json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": name, "namespace": "default"}, "spec": spec}),
        )?;
        let endpoints: Vec<Value> = self
            .backends
            .iter()
            .map(|b| {
                json!({"addresses": [b.addr.ip().to_string()], "conditions": {"ready": true},
                       "nodeName": "n1"})
            })
            .collect();
        self.create(
            "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
            &json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": format!("{name}-1"), "namespace": "default",
                             "labels": {"kubernetes.io/service-name": name}},
                "addressType": "IPv4",
                "endpoints": endpoints,
                "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}),
        )?;
        Ok(svc)
    }

    /// One TCP connection from the client namespace: the open stream, the
    /// client's port and the backend's greeting.
    fn connect(&self, target: SocketAddr) -> Result<(BufReader<TcpStream>, u16, String)> {
        let stream = self
            .client
            .enter(move || Ok(TcpStream::connect_timeout(&target, TIMEOUT)?))?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        let port = stream.local_addr()?.port();
        let mut reader = BufReader::new(stream);
        let mut name = String::new();
        reader.read_line(&mut name)?;
        ensure!(!name.is_empty(), "{target} closed without a greeting");
        Ok((reader, port, name.trim().to_owned()))
    }

    /// Connects to `target` until a backend answers (the agent programmed
    /// it).
    fn wait_reachable(&self, target: SocketAddr) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.connect(target).is_err() {
            ensure!(
                Instant::now() < deadline,
                "{target} never answered; agent log:\n{}",
                self.agent_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    fn backend(&self, name: &str) -> Result<&NamedBackend> {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .with_context(|| format!("no backend {name}"))
    }

    /// Per device, the id of the one program on its TCX ingress (fails
    /// unless every device holds exactly one, and it is NodePort's).
    fn tc_programs(&self) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for device in &self.devices {
            let name = device.clone();
            let programs = self
                .node
                .enter(move || Ok(keelson_node::bpf::tc_ingress_programs(&name)?))?;
            ensure!(
                programs.len() == 1 && programs[0].1 == "nodeport_ingres",
                "{device}: TCX ingress holds {programs:?}"
            );
            ids.push(programs[0].0);
        }
        Ok(ids)
    }
}

/// Sends `ping` on an open connection and expects `name` back.
fn ping(conn: &mut BufReader<TcpStream>, name: &str) -> Result<()> {
    conn.get_mut().write_all(b"ping\n")?;
    let mut answer = String::new();
    conn.read_line(&mut answer)?;
    ensure!(
        answer.trim() == name,
        "{name}'s flow now reaches {answer:?}"
    );
    Ok(())
}

/// A NodePort Service `default/web` on `NODE_PORT`.
fn web_spec() -> Value {
    json!({"type": "NodePort",
           "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": NODE_PORT}]})
}

#[test]
fn nodeport_service_through_the_agent_reaches_every_backend_and_shows_its_flows() -> Result<()> {
    let mut lab = Lab::new()?;
    lab.create_service("web", web_spec())?;
    lab.start_agent()?;
    lab.wait_reachable(node_port())?;

    let mut reached = BTreeMap::new();
    for _ in 0..20 {
        let (_, port, name) = lab.connect(node_port())?;
        reached.insert(port, name);
    }
    let seen: BTreeSet<&str> = reached.values().map(String::as_str).collect();
    ensure!(
        seen == BTreeSet::from(["b0", "b1"]),
        "20 connections reached {seen:?}"
    );
    // externalTrafficPolicy: Cluster → the backends see the node's address.
    for backend in &lab.backends {
        ensure!(
            backend
                .peers()
                .iter()
                .all(|p| p.ip() == IpAddr::V4(NODE_IP)),
            "{} saw peers {:?}",
            backend.name,
            backend.peers()
        );
    }
    let forwarding = lab
        .node
        .enter(|| Ok(std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")?))?;
    ensure!(
        forwarding.trim() == "1",
        "the agent did not enable forwarding in its namespace"
    );

    // Every one of these connections is a TC flow of default/web, with the
    // tuple before (client → node port) and after (node → backend).
    let deadline = Instant::now() + Duration::from_secs(5);
    let tc: Vec<Value> = loop {
        let tc: Vec<Value> = flows(&lab.flows_socket(), &["--service", "default/web"])?
            .into_iter()
            .filter(|f| f["hook"] == "tc-ingress")
            .collect();
        let ports: BTreeSet<String> = tc
            .iter()
            .filter_map(|f| f["source"].as_str().map(str::to_owned))
            .collect();
        let all = reached
            .keys()
            .all(|p| ports.contains(&format!("{CLIENT_IP}:{p}")));
        if all || Instant::now() > deadline {
            break tc;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for (port, name) in &reached {
        let source = format!("{CLIENT_IP}:{port}");
        let flow = tc
            .iter()
            .find(|f| f["source"] == source.as_str())
            .with_context(|| format!("no TC flow from {source} in {tc:#?}"))?;
        let backend = lab.backend(name)?.addr.to_string();
        ensure!(flow["verdict"] == "FORWARDED", "{flow}");
        ensure!(flow["vip"] == node_port().to_string(), "{flow}");
        ensure!(flow["backend"] == backend.as_str(), "{name}: {flow}");
        ensure!(
            flow["translated_source"] == format!("{NODE_IP}:{port}").as_str(),
            "{flow}"
        );
        ensure!(
            flow["service"] == "default/web" && flow["protocol"] == "TCP",
            "{flow}"
        );
    }

    // /metrics counts the TC connections and their packets both ways.
    let n = reached.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&lab.node, METRICS.parse()?)?;
        let svc = |name: &str, labels: &str| {
            sample(
                &text,
                &format!("{name}{{service=\"default/web\",{labels}}} "),
            )
        };
        let connections = svc(
            "keelson_proxy_service_connections_total",
            "verdict=\"forwarded\"",
        );
        let forward = svc(
            "keelson_proxy_service_packets_total",
            "direction=\"forward\"",
        );
        let reply = svc("keelson_proxy_service_packets_total", "direction=\"reply\"");
        let bytes = svc("keelson_proxy_service_bytes_total", "direction=\"forward\"");
        let backend = sample(
            &text,
            &format!(
                "keelson_proxy_backend_packets_total{{backend=\"{}\",direction=\"reply\"}} ",
                lab.backends[0].addr
            ),
        );
        let ok = connections.is_some_and(|c| c >= n)
            && forward.is_some_and(|p| p >= 3 * n)
            && reply.is_some_and(|p| p >= 2 * n)
            && bytes.zip(forward).is_some_and(|(b, p)| b >= 54 * p)
            && backend.is_some_and(|p| p > 0);
        if ok {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "metrics never counted {n} TC connections:\n{}",
            text.lines()
                .filter(|l| l.contains("default/web") || l.contains("backend_packets"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

#[test]
fn nodeport_keeps_working_while_the_agent_is_down_and_is_not_duplicated_by_a_restart() -> Result<()>
{
    let mut lab = Lab::new()?;
    lab.create_service("web", web_spec())?;
    lab.start_agent()?;
    lab.wait_reachable(node_port())?;
    let first = lab.tc_programs()?;
    let (mut open, _, name) = lab.connect(node_port())?;

    // SIGKILL: no clean-up ran, yet the pinned links keep translating the
    // open connection and new ones.
    lab.agent.as_mut().context("agent")?.kill9();
    ping(&mut open, &name).context("the open connection broke when the agent was killed")?;
    for i in 0..5 {
        lab.connect(node_port())
            .with_context(|| format!("new connection {i} while the agent was down"))?;
    }
    ensure!(lab.tc_programs()? == first, "programs changed while down");

    // A restarted agent replaces the program in each pinned link in place.
    lab.start_agent()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let second = loop {
        // A device in the middle of being updated still holds one program.
        let now = lab.tc_programs()?;
        if now.iter().zip(&first).all(|(a, b)| a != b) {
            break now;
        }
        ensure!(
            Instant::now() < deadline,
            "the restarted agent never replaced the programs {first:?}; log:\n{}",
            lab.agent_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("programs before {first:?}, after the restart {second:?}");
    ping(&mut open, &name).context("the open connection broke when the agent restarted")?;
    lab.connect(node_port())
        .context("a new connection after the restart")?;
    // Settled: still exactly one NodePort program per device.
    std::thread::sleep(Duration::from_millis(500));
    ensure!(lab.tc_programs()? == second);

    // `proxy --cleanup` (agent stopped) detaches them for good.
    lab.agent.as_mut().context("agent")?.kill9();
    let out = Command::new("nsenter")
        .arg(format!("--net={}", lab.node.path().display()))
        .arg("--")
        .arg(node_binary()?)
        .args(["proxy", "--cleanup", "--bpf-dir"])
        .arg(lab.pins.path())
        .output()?;
    ensure!(
        out.status.success(),
        "proxy --cleanup: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut left = Vec::new();
        for device in &lab.devices {
            let name = device.clone();
            left.extend(
                lab.node
                    .enter(move || Ok(keelson_node::bpf::tc_ingress_programs(&name)?))?,
            );
        }
        if left.is_empty() {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "programs left after --cleanup: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let target = node_port();
    let refused = lab
        .client
        .enter(move || Ok(TcpStream::connect_timeout(&target, TIMEOUT)))?;
    ensure!(
        refused.as_ref().err().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::ConnectionRefused),
        "after --cleanup the NodePort still answers: {refused:?}"
    );
    Ok(())
}

#[test]
fn external_and_load_balancer_ips_reach_the_backends_through_the_agent() -> Result<()> {
    let mut lab = Lab::new()?;
    // An external IP routed to the node (Cluster policy: SNAT) …
    lab.create_service(
        "web-ext",
        json!({"ports": [{"name": "http", "port": 80, "targetPort": "http"}],
               "externalIPs": [EXTERNAL_IP.to_string()]}),
    )?;
    // … and a LoadBalancer whose ingress IP the "cloud" writes through
    // /status (Local policy: the client's address reaches the backend).
    let created = lab.create_service(
        "web-lb",
        json!({"type": "LoadBalancer", "externalTrafficPolicy": "Local",
               "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}),
    )?;
    let mut with_status = created.clone();
    with_status["status"] = json!({"loadBalancer": {"ingress": [{"ip": LB_IP.to_string()}]}});
    let resp = lab.server.curl(
        "PUT",
        "/api/v1/namespaces/default/services/web-lb/status",
        Some("application/json"),
        Some(with_status.to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 200, "PUT status: {resp:?}");
    ensure!(
        resp.json()["status"]["loadBalancer"]["ingress"][0]["ip"] == LB_IP.to_string().as_str(),
        "{resp:?}"
    );
    lab.start_agent()?;

    let external = SocketAddr::V4(SocketAddrV4::new(EXTERNAL_IP, 80));
    let balancer = SocketAddr::V4(SocketAddrV4::new(LB_IP, 80));
    for (target, client_kept) in [(external, false), (balancer, true)] {
        lab.wait_reachable(target)?;
        let before: Vec<usize> = lab.backends.iter().map(|b| b.peers().len()).collect();
        let mut seen = BTreeSet::new();
        for _ in 0..20 {
            seen.insert(lab.connect(target)?.2);
        }
        ensure!(
            seen == BTreeSet::from(["b0".to_owned(), "b1".to_owned()]),
            "20 connections to {target} reached {seen:?}"
        );
        for (backend, skip) in lab.backends.iter().zip(before) {
            let peers: Vec<IpAddr> = backend.peers()[skip..].iter().map(|p| p.ip()).collect();
            // Local keeps the client; Cluster SNATs to the node's address
            // on the backend's own link (the route's source: the external
            // IP is not the node's and the backend has no route to it).
            let want = if client_kept {
                IpAddr::V4(CLIENT_IP)
            } else {
                let o = backend.addr.ip().octets();
                IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], 1))
            };
            ensure!(
                !peers.is_empty() && peers.iter().all(|p| *p == want),
                "{target}: {} saw {peers:?}, expected {want}",
                backend.name
            );
        }
    }

    // Both are TC flows of their services.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let all = flows(&lab.flows_socket(), &[])?;
        let has = |service: &str, vip: SocketAddr| {
            all.iter().any(|f| {
                f["hook"] == "tc-ingress" && f["service"] == service && f["vip"] == vip.to_string()
            })
        };
        if has("default/web-ext", external) && has("default/web-lb", balancer) {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "no TC flows for both services: {all:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
