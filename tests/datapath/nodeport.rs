//! NodePort load balancing at TC with conntrack, end to end: an external
//! client namespace reaches `nodeIP:nodePort` on a "node" namespace that
//! runs `nodeport_ingress` on all its interfaces and forwards to named
//! backends in their own namespaces.
//!
//! Topology per test: `client` (10.216.0.2) — veth — `node` (10.216.0.1,
//! the NodePort address; `ip_forward` and `accept_local` on) — one veth per
//! backend (`10.217.N.1` ↔ `10.217.N.2`) — `bN` serving TCP and UDP on
//! `10.217.N.2:8080`. Backends route `10.216.0.0/24` via the node; the
//! client has no route to the backends at all, so only translated traffic
//! can reach them. Nothing routes out of the test namespaces.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    netns::{NetNs, VethPair},
};
use keelson_ebpf_common::nat::{
    CT_DIR_FORWARD, CT_DIR_REPLY, CT_FLAG_SNAT, MAGLEV_TABLE_SIZE, flow_hash,
};
use keelson_node::{
    bpf::{
        nodeport::{Conntrack, MaglevMap, NodePort},
        sock_lb::{LbMaps, SockLb},
    },
    proxy::{
        maps::LbMapWriter,
        model::{
            Algorithm, Backend, BackendState, DesiredState, Frontend, FrontendKind, LbService,
            Protocol, ServiceName,
        },
        nodeport::{MaglevWriter, maglev_tables},
    },
};

const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 216, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 216, 0, 2);
const NODE_PORT: u16 = 30_080;
const BACKEND_PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(3);

fn node_port() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(NODE_IP, NODE_PORT))
}

/// Namespaces, links, backends, the loaded programs and a pin directory;
/// everything is removed on drop (fields drop in this order).
struct Lab {
    nodeport: NodePort,
    writer: LbMapWriter<LbMaps>,
    maglev: MaglevWriter,
    _sock_lb: SockLb,
    pins: PinDir,
    backends: Vec<NamedBackend>,
    _veths: Vec<VethPair>,
    _backend_ns: Vec<NetNs>,
    _node_ns: NetNs,
    client_ns: NetNs,
}

impl Lab {
    fn new(backends: u8) -> Result<Self> {
        let client_ns = NetNs::new()?;
        let node_ns = NetNs::new()?;
        let pins = PinDir::new()?;
        let mut veths = vec![VethPair::new(&node_ns, &client_ns, NODE_IP, CLIENT_IP)?];
        let mut backend_ns = Vec::new();
        let mut named = Vec::new();
        for n in 0..backends {
            let ns = NetNs::new()?;
            let veth = VethPair::new(
                &node_ns,
                &ns,
                Ipv4Addr::new(10, 217, n, 1),
                Ipv4Addr::new(10, 217, n, 2),
            )?;
            ns.ip(&[
                "route",
                "add",
                "10.216.0.0/24",
                "via",
                &veth.a_addr.to_string(),
            ])?;
            let addr = SocketAddrV4::new(veth.b_addr, BACKEND_PORT);
            named.push(NamedBackend::start(&ns, addr, &format!("b{n}"))?);
            veths.push(veth);
            backend_ns.push(ns);
        }
        // Forward, and accept the node's own address as a source on every
        // interface (SNATed requests and reverse-translated replies).
        let interfaces: Vec<String> = veths.iter().map(|v| v.a.clone()).collect();
        let sysctl_ifaces = interfaces.clone();
        node_ns.enter(move || {
            let mut knobs = vec![
                "ipv4/ip_forward".to_owned(),
                "ipv4/conf/all/accept_local".to_owned(),
                "ipv4/conf/all/rp_filter".to_owned(),
            ];
            for iface in &sysctl_ifaces {
                knobs.push(format!("ipv4/conf/{iface}/accept_local"));
                knobs.push(format!("ipv4/conf/{iface}/rp_filter"));
            }
            for knob in knobs {
                let value = if knob.ends_with("rp_filter") {
                    "0"
                } else {
                    "1"
                };
                std::fs::write(format!("/proc/sys/net/{knob}"), value)
                    .with_context(|| format!("sysctl {knob}"))?;
            }
            Ok(())
        })?;
        // What the agent does: load the socket LB (which owns the service
        // maps' pins), then the NodePort program on the same pins.
        let sock_lb = SockLb::load(pins.path())?;
        let writer = LbMapWriter::new(sock_lb.maps()?)?;
        let pin_dir = pins.path().to_path_buf();
        let nodeport = node_ns.enter(move || {
            let mut nodeport = NodePort::load(&pin_dir)?;
            for iface in &interfaces {
                nodeport.attach(iface)?;
            }
            Ok(nodeport)
        })?;
        let maglev = MaglevWriter::new(MaglevMap::open(pins.path())?)?;
        Ok(Self {
            nodeport,
            writer,
            maglev,
            _sock_lb: sock_lb,
            pins,
            backends: named,
            _veths: veths,
            _backend_ns: backend_ns,
            _node_ns: node_ns,
            client_ns,
        })
    }

    fn backend(&self, name: &str) -> &NamedBackend {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no backend {name}"))
    }

    fn apply(&mut self, backends: &[&str], external_local: bool) -> Result<()> {
        self.apply_with(backends, external_local, Algorithm::Random)?;
        Ok(())
    }

    /// Programs the NodePort (TCP and UDP) as the agent does: service maps
    /// first, then the Maglev tables from what the maps now serve.
    fn apply_with(
        &mut self,
        backends: &[&str],
        external_local: bool,
        algorithm: Algorithm,
    ) -> Result<DesiredState> {
        let chosen: Vec<Backend> = backends
            .iter()
            .map(|name| {
                let b = self.backend(name);
                Backend {
                    ip: IpAddr::V4(*b.addr.ip()),
                    port: b.addr.port(),
                    state: BackendState::Active,
                    node_name: None,
                }
            })
            .collect();
        let mut desired = DesiredState::default();
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            desired.services.insert(
                Frontend {
                    ip: IpAddr::V4(NODE_IP),
                    port: NODE_PORT,
                    protocol,
                },
                LbService {
                    service: ServiceName {
                        namespace: "default".into(),
                        name: "web".into(),
                    },
                    port_name: "http".into(),
                    kind: FrontendKind::NodePort,
                    backends: chosen.clone(),
                    algorithm,
                    affinity: None,
                    external_local,
                },
            );
        }
        self.writer.apply(&desired)?;
        self.maglev.apply(&desired, &self.writer.live())?;
        Ok(desired)
    }

    fn all(&self) -> Vec<String> {
        self.backends.iter().map(|b| b.name.clone()).collect()
    }

    /// A TCP connection from the client namespace to the NodePort, and the
    /// backend name it was greeted with.
    fn connect(&self) -> Result<(BufReader<TcpStream>, String)> {
        let stream = self.client_ns.enter(|| {
            let stream = TcpStream::connect_timeout(&node_port(), TIMEOUT)?;
            stream.set_read_timeout(Some(TIMEOUT))?;
            Ok(stream)
        })?;
        let mut reader = BufReader::new(stream);
        let mut name = String::new();
        reader
            .read_line(&mut name)
            .context("reading the greeting")?;
        Ok((reader, name.trim().to_owned()))
    }

    /// One datagram from a fresh client socket; the backend's name.
    fn udp(&self) -> Result<String> {
        self.udp_from(0)
    }

    /// One datagram from a fresh client socket on `port` (0: any).
    fn udp_from(&self, port: u16) -> Result<String> {
        let socket = self.client_ns.enter(move || {
            let socket = UdpSocket::bind(SocketAddrV4::new(CLIENT_IP, port))?;
            socket.set_read_timeout(Some(TIMEOUT))?;
            Ok(socket)
        })?;
        socket.send_to(b"hello", node_port())?;
        let mut buf = [0u8; 64];
        let (n, from) = socket.recv_from(&mut buf).context("no UDP reply")?;
        ensure!(
            from == node_port(),
            "the reply came from {from}, not the NodePort"
        );
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    fn conntrack(&self) -> Result<Conntrack> {
        Ok(self.nodeport.conntrack()?)
    }
}

fn tally(names: &[String]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.clone()).or_default() += 1;
    }
    counts
}

/// Every address the backends saw as a peer.
fn peer_ips(lab: &Lab) -> Vec<IpAddr> {
    lab.backends
        .iter()
        .flat_map(|b| b.peers())
        .map(|p| p.ip())
        .collect()
}

#[test]
fn nodeport_cluster_balances_tcp_and_udp_with_snat_to_the_node() -> Result<()> {
    let mut lab = Lab::new(3)?;
    let all = lab.all();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    lab.apply(&all, false)?;

    let mut names = Vec::new();
    for i in 0..40 {
        let (_, name) = lab.connect().with_context(|| format!("connection {i}"))?;
        names.push(name);
    }
    let counts = tally(&names);
    eprintln!("TCP: {counts:?}");
    ensure!(counts.len() == 3, "40 connections reached only {counts:?}");

    let mut names = Vec::new();
    for i in 0..40 {
        names.push(lab.udp().with_context(|| format!("datagram {i}"))?);
    }
    let counts = tally(&names);
    eprintln!("UDP: {counts:?}");
    ensure!(counts.len() == 3, "40 datagrams reached only {counts:?}");

    // Cluster policy: the backends saw the node, never the client.
    let peers = peer_ips(&lab);
    ensure!(peers.len() == 80, "backends saw {} peers", peers.len());
    ensure!(
        peers.iter().all(|ip| *ip == IpAddr::V4(NODE_IP)),
        "a backend saw a non-SNATed peer: {peers:?}"
    );
    let entries = lab.conntrack()?.entries()?;
    let forward = entries
        .iter()
        .filter(|(k, v)| k.direction == CT_DIR_FORWARD && v.flags & CT_FLAG_SNAT != 0)
        .count();
    let reply = entries
        .iter()
        .filter(|(k, _)| k.direction == CT_DIR_REPLY)
        .count();
    ensure!(
        forward == 80 && reply == 80,
        "conntrack holds {forward} forward and {reply} reply entries"
    );
    Ok(())
}

#[test]
fn nodeport_local_policy_keeps_the_client_address() -> Result<()> {
    let mut lab = Lab::new(2)?;
    lab.apply(&["b0", "b1"], true)?;
    for i in 0..10 {
        lab.connect().with_context(|| format!("connection {i}"))?;
        lab.udp().with_context(|| format!("datagram {i}"))?;
    }
    let peers = peer_ips(&lab);
    ensure!(peers.len() == 20, "backends saw {} peers", peers.len());
    ensure!(
        peers.iter().all(|ip| *ip == IpAddr::V4(CLIENT_IP)),
        "a backend did not see the client's address: {peers:?}"
    );
    let entries = lab.conntrack()?.entries()?;
    ensure!(
        entries.iter().all(|(_, v)| v.flags & CT_FLAG_SNAT == 0),
        "a Local flow was SNATed"
    );
    Ok(())
}

#[test]
fn nodeport_conntrack_keeps_an_established_flow_on_a_removed_backend() -> Result<()> {
    let mut lab = Lab::new(3)?;
    lab.apply(&["b0", "b1", "b2"], false)?;
    let mut open = None;
    for _ in 0..60 {
        let (conn, name) = lab.connect()?;
        if name == "b0" {
            open = Some(conn);
            break;
        }
    }
    let mut open = open.context("no connection reached b0 in 60 tries")?;

    lab.apply(&["b1", "b2"], false)?;
    let before = lab.backend("b0").accepted();
    let mut names = Vec::new();
    for _ in 0..30 {
        names.push(lab.connect()?.1);
    }
    let counts = tally(&names);
    eprintln!("after removing b0: {counts:?}");
    ensure!(!counts.contains_key("b0"), "b0 got new connections");
    ensure!(counts.len() == 2, "30 connections reached only {counts:?}");
    ensure!(lab.backend("b0").accepted() == before);

    // The established connection still reaches b0 through conntrack.
    open.get_mut().write_all(b"ping\n")?;
    let mut answer = String::new();
    open.read_line(&mut answer)
        .context("the open connection broke")?;
    ensure!(
        answer.trim() == "b0",
        "the open connection now reaches {answer}"
    );
    Ok(())
}

#[test]
fn traffic_to_other_ports_of_the_node_is_untouched() -> Result<()> {
    let mut lab = Lab::new(1)?;
    lab.apply(&["b0"], false)?;
    // Nothing listens on the node itself: a non-NodePort port is refused
    // by the node's kernel, not translated to a backend.
    let other = SocketAddr::V4(SocketAddrV4::new(NODE_IP, NODE_PORT + 1));
    let refused = lab
        .client_ns
        .enter(move || Ok(TcpStream::connect_timeout(&other, TIMEOUT)))?;
    ensure!(
        refused.as_ref().err().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    ensure!(lab.backend("b0").accepted() == 0);
    ensure!(lab.conntrack()?.entries()?.is_empty());
    Ok(())
}

#[test]
fn nodeport_without_backends_is_refused_by_the_node() -> Result<()> {
    let mut lab = Lab::new(1)?;
    lab.apply(&[], false)?;
    let target = node_port();
    let refused = lab
        .client_ns
        .enter(move || Ok(TcpStream::connect_timeout(&target, TIMEOUT)))?;
    ensure!(
        refused.as_ref().err().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    ensure!(lab.conntrack()?.entries()?.is_empty());
    Ok(())
}

#[test]
fn an_agent_restart_keeps_established_flows_from_the_pinned_conntrack() -> Result<()> {
    let mut lab = Lab::new(2)?;
    lab.apply(&["b0", "b1"], false)?;
    let (mut open, name) = lab.connect()?;
    let flows_before = lab.conntrack()?.entries()?.len();
    ensure!(flows_before == 2, "{flows_before} conntrack entries");

    // The agent goes away (links detach) and a new one loads on the same
    // pins and attaches again; the flow's entries survived in NP_CT. The
    // other backend leaves meanwhile, so only conntrack can keep the flow.
    let pin_dir = lab.pins.path().to_path_buf();
    let interfaces = lab.nodeport.attached().to_vec();
    let other = if name == "b0" { "b1" } else { "b0" };
    lab.apply(&[other], false)?;
    let reloaded = lab._node_ns.enter(move || {
        let mut nodeport = NodePort::load(&pin_dir)?;
        for iface in &interfaces {
            nodeport.attach(iface)?;
        }
        Ok(nodeport)
    })?;
    lab.nodeport = reloaded;

    open.get_mut().write_all(b"ping\n")?;
    let mut answer = String::new();
    open.read_line(&mut answer)
        .context("the open connection broke across the restart")?;
    ensure!(
        answer.trim() == name,
        "the flow moved from {name} to {answer}"
    );
    Ok(())
}

#[test]
fn nodeport_maglev_picks_the_backend_its_table_names_for_the_flow() -> Result<()> {
    let mut lab = Lab::new(3)?;
    let desired = lab.apply_with(&["b0", "b1", "b2"], false, Algorithm::Maglev)?;
    let live = lab.writer.live();
    let tables = maglev_tables(&desired, &live);
    let udp = live
        .iter()
        .find(|(fe, _)| fe.protocol == Protocol::Udp)
        .map(|(_, svc)| svc)
        .context("the UDP NodePort is not served")?;
    let table = tables
        .get(&udp.service_id)
        .context("no Maglev table for the UDP NodePort")?;

    let mut seen = BTreeMap::<String, usize>::new();
    for port in 40_000..40_012u16 {
        let hash = flow_hash(
            u32::from_ne_bytes(CLIENT_IP.octets()),
            u32::from_ne_bytes(NODE_IP.octets()),
            port.to_be(),
            NODE_PORT.to_be(),
            17,
        );
        let slot = table[(hash % MAGLEV_TABLE_SIZE) as usize] as usize;
        let (ip, _) = udp.backends[slot - 1];
        let expected = lab
            .backends
            .iter()
            .find(|b| IpAddr::V4(*b.addr.ip()) == ip)
            .map(|b| b.name.clone())
            .context("the table names an unknown backend")?;
        // Twice per flow, forgetting the flow in between: Maglev, not
        // conntrack, must decide the same backend again.
        for round in 0..2 {
            let got = lab.udp_from(port)?;
            ensure!(
                got == expected,
                "port {port} round {round}: reached {got}, Maglev says {expected}"
            );
            let mut ct = lab.conntrack()?;
            for (key, _) in ct.entries()? {
                ct.remove(&key)?;
            }
        }
        *seen.entry(expected).or_default() += 1;
    }
    eprintln!("Maglev: {seen:?}");
    ensure!(seen.len() > 1, "12 flows all hashed to {seen:?}");
    Ok(())
}
