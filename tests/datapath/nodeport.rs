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
use aya::maps::{MapData, RingBuf};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    netns::{NetNs, VethPair},
};
use keelson_ebpf_common::{
    flows::{FlowCounters, FlowRecord, HOOK_TC_INGRESS, VERDICT_FORWARDED, VERDICT_NO_BACKEND},
    lb::{AFFINITY_BY_ADDRESS, ipv4_words},
    nat::{
        CT_DIR_FORWARD, CT_DIR_REPLY, CT_FLAG_FIN_FORWARD, CT_FLAG_FIN_REPLY, CT_FLAG_SNAT,
        CtValue, MAGLEV_TABLE_SIZE, PROG_NODEPORT, flow_hash,
    },
};
use keelson_node::{
    bpf::{
        self, TcAttach,
        flows::{FlowStats, open_ring},
        nodeport::{Conntrack, MaglevMap, NodePort, detach_pinned},
        sock_lb::{LbMaps, SockLb},
    },
    flows::record::parse_record,
    proxy::{
        datapath::{CtTimeouts, age_conntrack},
        maps::LbMapWriter,
        model::{
            Algorithm, Backend, BackendState, DesiredState, Frontend, FrontendKind, LbService,
            Protocol, ServiceName,
        },
        nodeport::{MaglevWriter, maglev_tables},
    },
};
use nix::sys::socket::sockopt;
use std::os::fd::AsRawFd;

const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 216, 0, 1);
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 216, 0, 2);
const NODE_PORT: u16 = 30_080;
const BACKEND_PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_secs(3);

fn node_port() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(NODE_IP, NODE_PORT))
}

/// A NodePort frontend on the node's address.
fn frontend(port: u16, protocol: Protocol) -> Frontend {
    Frontend {
        ip: IpAddr::V4(NODE_IP),
        port,
        protocol,
    }
}

/// Namespaces, links, backends, the loaded programs and a pin directory;
/// everything is removed on drop (fields drop in this order).
struct Lab {
    /// `None` once the "agent" is gone (its links stay pinned).
    nodeport: Option<NodePort>,
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
            nodeport: Some(nodeport),
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
        self.apply_with(backends, external_local, Algorithm::Random, None)?;
        Ok(())
    }

    /// Programs the NodePort (TCP and UDP) as the agent does: service maps
    /// first, then the Maglev tables from what the maps now serve.
    fn apply_with(
        &mut self,
        backends: &[&str],
        external_local: bool,
        algorithm: Algorithm,
        affinity: Option<Duration>,
    ) -> Result<DesiredState> {
        let mut desired = DesiredState::default();
        for protocol in [Protocol::Tcp, Protocol::Udp] {
            let mut svc = self.service(backends, affinity);
            svc.algorithm = algorithm;
            svc.external_local = external_local;
            desired.services.insert(frontend(NODE_PORT, protocol), svc);
        }
        self.write(&desired)?;
        Ok(desired)
    }

    /// `default/web` as a NodePort service of the named backends.
    fn service(&self, backends: &[&str], affinity: Option<Duration>) -> LbService {
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
        LbService {
            service: ServiceName {
                namespace: "default".into(),
                name: "web".into(),
            },
            port_name: "http".into(),
            kind: FrontendKind::NodePort,
            backends: chosen,
            algorithm: Algorithm::Random,
            affinity,
            external_local: false,
        }
    }

    /// Writes `desired` as the agent does.
    fn write(&mut self, desired: &DesiredState) -> Result<()> {
        self.writer.apply(desired)?;
        self.maglev.apply(desired, &self.writer.live())?;
        Ok(())
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

    /// A TCP connection from the client's `port` (`SO_REUSEADDR`, so a
    /// port in TIME_WAIT can be reused with `tcp_tw_reuse`).
    fn connect_from(&self, port: u16) -> Result<(BufReader<TcpStream>, String)> {
        use nix::sys::socket::{
            AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket,
        };
        let stream = self.client_ns.enter(move || {
            let fd = socket(
                AddressFamily::Inet,
                SockType::Stream,
                SockFlag::empty(),
                None,
            )?;
            setsockopt(&fd, sockopt::ReuseAddr, &true)?;
            bind(
                fd.as_raw_fd(),
                &SockaddrIn::from(SocketAddrV4::new(CLIENT_IP, port)),
            )?;
            connect(
                fd.as_raw_fd(),
                &SockaddrIn::from(SocketAddrV4::new(NODE_IP, NODE_PORT)),
            )?;
            let stream = TcpStream::from(fd);
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
        let socket = self
            .client_ns
            .enter(move || {
                // A fixed port closed a moment ago may still be held by a
                // child another test thread is forking (until it execs,
                // it shares every fd): retry briefly.
                let deadline = std::time::Instant::now() + Duration::from_secs(2);
                let socket = loop {
                    match UdpSocket::bind(SocketAddrV4::new(CLIENT_IP, port)) {
                        Err(e)
                            if e.kind() == std::io::ErrorKind::AddrInUse
                                && port != 0
                                && std::time::Instant::now() < deadline =>
                        {
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        other => break other?,
                    }
                };
                socket.set_read_timeout(Some(TIMEOUT))?;
                Ok(socket)
            })
            .with_context(|| format!("binding UDP {CLIENT_IP}:{port}"))?;
        socket.send_to(b"hello", node_port())?;
        let mut buf = [0u8; 64];
        let (n, from) = socket.recv_from(&mut buf).context("no UDP reply")?;
        ensure!(
            from == node_port(),
            "the reply came from {from}, not the NodePort"
        );
        Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// Per interface, the id of the one NodePort program attached to its
    /// TCX ingress; fails unless there is exactly one.
    fn nodeport_programs(&self, interfaces: &[String]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for iface in interfaces {
            let name = iface.clone();
            let programs = self
                ._node_ns
                .enter(move || Ok(bpf::tc_ingress_programs(&name)?))?;
            let ours: Vec<u32> = programs
                .iter()
                .filter(|(_, n)| PROG_NODEPORT.starts_with(n.as_str()) && !n.is_empty())
                .map(|(id, _)| *id)
                .collect();
            ensure!(
                ours.len() == 1 && programs.len() == 1,
                "{iface}: TCX ingress holds {programs:?}"
            );
            ids.push(ours[0]);
        }
        Ok(ids)
    }

    fn conntrack(&self) -> Result<Conntrack> {
        Ok(Conntrack::open(self.pins.path())?)
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
        "conntrack holds {forward} forward and {reply} reply entries: TCP {} (flags {:?}), UDP {}",
        entries.iter().filter(|(_, v)| v.protocol == 6).count(),
        entries
            .iter()
            .filter(|(_, v)| v.protocol == 6)
            .map(|(_, v)| v.flags)
            .collect::<std::collections::BTreeSet<_>>(),
        entries.iter().filter(|(_, v)| v.protocol == 17).count()
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
    let interfaces = lab.nodeport.as_ref().context("loaded")?.attached().to_vec();
    let first = lab.nodeport_programs(&interfaces)?;

    // The agent goes away: its links stay pinned, so the open flow and
    // new flows keep being translated while no agent runs.
    lab.nodeport = None;
    ping(&mut open, &name).context("the open flow broke when the loader went away")?;
    lab.connect()
        .context("a new connection failed while no loader ran")?;
    ensure!(lab.nodeport_programs(&interfaces)? == first);

    // A new agent loads on the same pins and replaces the program in every
    // pinned link in place; the flow's entries survived in NP_CT. The
    // other backend leaves meanwhile, so only conntrack can keep the flow.
    let other = if name == "b0" { "b1" } else { "b0" };
    lab.apply(&[other], false)?;
    let pin_dir = lab.pins.path().to_path_buf();
    let ifaces = interfaces.clone();
    let (reloaded, how) = lab._node_ns.enter(move || {
        let mut nodeport = NodePort::load(&pin_dir)?;
        let mut how = Vec::new();
        for iface in &ifaces {
            how.push(nodeport.attach(iface)?);
        }
        Ok((nodeport, how))
    })?;
    ensure!(
        how.iter().all(|h| *h == TcAttach::Replaced),
        "the restart did not update the pinned links in place: {how:?}"
    );
    lab.nodeport = Some(reloaded);
    let second = lab.nodeport_programs(&interfaces)?;
    ensure!(
        second.len() == interfaces.len() && second.iter().zip(&first).all(|(a, b)| a != b),
        "after the restart: {second:?} (before: {first:?})"
    );

    ping(&mut open, &name).context("the open connection broke across the restart")?;
    Ok(())
}

#[test]
fn detaching_the_pinned_links_stops_nodeport() -> Result<()> {
    let mut lab = Lab::new(1)?;
    lab.apply(&["b0"], false)?;
    lab.connect()?;
    let interfaces = lab.nodeport.as_ref().context("loaded")?.attached().to_vec();
    lab.nodeport = None;
    let mut detached = detach_pinned(lab.pins.path())?;
    detached.sort();
    let mut want = interfaces.clone();
    want.sort();
    ensure!(detached == want, "detached {detached:?}, attached {want:?}");
    // The kernel releases an unpinned link from a work queue: shortly.
    for iface in interfaces {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let name = iface.clone();
            let left = lab
                ._node_ns
                .enter(move || Ok(bpf::tc_ingress_programs(&name)?))?;
            if left.is_empty() {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "programs left attached to {iface}: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // Nothing translates any more: the node itself refuses the port.
    let target = node_port();
    let refused = lab
        .client_ns
        .enter(move || Ok(TcpStream::connect_timeout(&target, TIMEOUT)))?;
    ensure!(
        refused.as_ref().err().map(std::io::Error::kind)
            == Some(std::io::ErrorKind::ConnectionRefused),
        "{refused:?}"
    );
    Ok(())
}

#[test]
fn nodeport_maglev_picks_the_backend_its_table_names_for_the_flow() -> Result<()> {
    let mut lab = Lab::new(3)?;
    let desired = lab.apply_with(&["b0", "b1", "b2"], false, Algorithm::Maglev, None)?;
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

#[test]
fn nodeport_client_ip_affinity_keeps_an_external_client_on_one_backend() -> Result<()> {
    let mut lab = Lab::new(3)?;
    let sticky = Some(Duration::from_secs(300));
    lab.apply_with(&["b0", "b1", "b2"], false, Algorithm::Random, sticky)?;

    let names = (0..20)
        .map(|_| lab.connect().map(|(_, name)| name))
        .collect::<Result<Vec<_>>>()?;
    let counts = tally(&names);
    eprintln!("TCP with affinity: {counts:?}");
    ensure!(counts.len() == 1, "20 connections spread over {counts:?}");
    let chosen = counts.keys().next().cloned().context("no backend")?;
    let udp = (0..12).map(|_| lab.udp()).collect::<Result<Vec<_>>>()?;
    ensure!(tally(&udp).len() == 1, "12 UDP flows spread over {udp:?}");

    // Remembered by the client's address (not a netns cookie), one entry
    // per service (TCP and UDP frontends).
    let affinities = lab._sock_lb.maps()?.affinities()?;
    ensure!(
        affinities.len() == 2
            && affinities
                .iter()
                .all(|(k, _)| k.source == AFFINITY_BY_ADDRESS && k.client == ipv4_words(CLIENT_IP)),
        "affinity entries: {affinities:?}"
    );

    // The remembered backend leaves the service (but stays a backend of
    // another NodePort, so only LB_AFF_MATCH tells): the client moves to
    // one other backend and sticks to it.
    let rest: Vec<&str> = ["b0", "b1", "b2"]
        .into_iter()
        .filter(|n| *n != chosen)
        .collect();
    let mut desired = DesiredState::default();
    desired.services.insert(
        frontend(NODE_PORT, Protocol::Tcp),
        lab.service(&rest, sticky),
    );
    desired.services.insert(
        frontend(NODE_PORT + 1, Protocol::Tcp),
        lab.service(&["b0", "b1", "b2"], None),
    );
    lab.write(&desired)?;
    let names = (0..20)
        .map(|_| lab.connect().map(|(_, name)| name))
        .collect::<Result<Vec<_>>>()?;
    let counts = tally(&names);
    eprintln!("TCP with affinity after {chosen} left: {counts:?}");
    ensure!(counts.len() == 1, "20 connections spread over {counts:?}");
    ensure!(!counts.contains_key(&chosen), "{chosen} still chosen");

    // Without affinity the same client spreads (30 draws on one of three
    // backends would take 3^-29 luck).
    lab.apply_with(&["b0", "b1", "b2"], false, Algorithm::Random, None)?;
    let names = (0..30)
        .map(|_| lab.connect().map(|(_, name)| name))
        .collect::<Result<Vec<_>>>()?;
    let counts = tally(&names);
    eprintln!("TCP without affinity: {counts:?}");
    ensure!(counts.len() > 1, "30 connections all reached {counts:?}");
    Ok(())
}

#[test]
fn nodeport_affinity_follows_its_map_and_times_out() -> Result<()> {
    let mut lab = Lab::new(3)?;
    let timeout = Duration::from_secs(60);
    lab.apply_with(&["b0", "b1", "b2"], false, Algorithm::Random, Some(timeout))?;
    let (_, first) = lab.connect()?;
    let mut maps = lab._sock_lb.maps()?;
    let tcp = lab
        .writer
        .live()
        .get(&frontend(NODE_PORT, Protocol::Tcp))
        .map(|svc| svc.service_id)
        .context("the TCP NodePort is not served")?;
    let (key, value) = maps
        .affinities()?
        .into_iter()
        .find(|(k, _)| k.service_id == tcp)
        .context("no affinity entry for the TCP NodePort")?;
    let ids: BTreeMap<String, u32> = maps
        .backends()?
        .into_iter()
        .filter(|(_, b)| b.protocol == 6)
        .map(|(id, b)| (format!("b{}", b.address[0].to_ne_bytes()[2]), id))
        .collect();
    ensure!(ids[&first] == value.backend_id, "{ids:?} / {value:?}");

    // A fresh entry naming another backend is obeyed.
    let other = ids
        .keys()
        .find(|n| **n != first)
        .cloned()
        .context("one backend")?;
    let mut moved = value;
    moved.backend_id = ids[&other];
    moved.last_used_ns = bpf::monotonic_ns();
    maps.put_affinity(&key, &moved)?;
    for _ in 0..10 {
        let (_, name) = lab.connect()?;
        ensure!(
            name == other,
            "fresh entry for {other} ignored: reached {name}"
        );
    }

    // An entry older than the timeout is not: the client is balanced anew.
    let mut landed = Vec::new();
    for _ in 0..30 {
        let mut stale = moved;
        stale.last_used_ns = bpf::monotonic_ns() - 2 * timeout.as_nanos() as u64;
        maps.put_affinity(&key, &stale)?;
        landed.push(lab.connect()?.1);
    }
    let counts = tally(&landed);
    eprintln!("after expiry: {counts:?}");
    ensure!(
        counts.len() > 1,
        "an expired entry kept deciding: {counts:?}"
    );
    Ok(())
}

/// Every record in the ring so far.
fn drain(ring: &mut RingBuf<MapData>) -> Result<Vec<FlowRecord>> {
    let mut records = Vec::new();
    while let Some(item) = ring.next() {
        records.push(parse_record(&item)?);
    }
    Ok(records)
}

#[test]
fn nodeport_flows_and_counters_land_in_the_shared_ring() -> Result<()> {
    let mut lab = Lab::new(2)?;
    lab.apply(&["b0", "b1"], false)?;
    let mut ring = open_ring(lab.pins.path())?;
    ensure!(drain(&mut ring)?.is_empty(), "records before any traffic");

    const N: usize = 5;
    let mut reached = BTreeMap::new();
    for _ in 0..N {
        let (conn, name) = lab.connect()?;
        reached.insert(conn.get_ref().local_addr()?.port(), name);
    }
    let udp_name = lab.udp_from(41_000)?;
    let records = drain(&mut ring)?;
    ensure!(
        records.len() == N + 1,
        "{} records: {records:#?}",
        records.len()
    );

    let live = lab.writer.live();
    let id_of = |protocol| {
        live.get(&frontend(NODE_PORT, protocol))
            .map(|svc| svc.service_id)
            .context("frontend not served")
    };
    let (tcp_id, udp_id) = (id_of(Protocol::Tcp)?, id_of(Protocol::Udp)?);
    let backend_ids: BTreeMap<u32, [u32; 4]> = lab
        ._sock_lb
        .maps()?
        .backends()?
        .into_iter()
        .map(|(id, b)| (id, b.address))
        .collect();
    let node = ipv4_words(NODE_IP);
    for r in &records {
        ensure!(
            r.hook == HOOK_TC_INGRESS && r.verdict == VERDICT_FORWARDED,
            "{r:?}"
        );
        ensure!(r.socket_cookie == 0 && r.family == 2, "{r:?}");
        // Before translation: client → NodePort.
        ensure!(r.src_address == ipv4_words(CLIENT_IP), "{r:?}");
        ensure!(
            r.orig_address == node && r.orig_port == NODE_PORT.to_be(),
            "{r:?}"
        );
        // After: node (SNAT, client's port kept) → the backend reached.
        ensure!(
            r.xlate_src_address == node && r.xlate_src_port == r.src_port,
            "{r:?}"
        );
        let name = if r.protocol == 6 {
            ensure!(r.service_id == tcp_id, "{r:?}");
            reached
                .get(&u16::from_be(r.src_port))
                .cloned()
                .with_context(|| format!("no connection from {r:?}"))?
        } else {
            ensure!(
                r.service_id == udp_id && u16::from_be(r.src_port) == 41_000,
                "{r:?}"
            );
            udp_name.clone()
        };
        let backend = lab.backend(&name).addr;
        ensure!(
            r.xlate_address == ipv4_words(*backend.ip()) && r.xlate_port == backend.port().to_be(),
            "{name}: {r:?}"
        );
        ensure!(
            backend_ids.get(&r.backend_id) == Some(&r.xlate_address),
            "{r:?}"
        );
    }

    // Per-CPU counters: N connections, and every packet both ways.
    let stats = FlowStats::open(lab.pins.path())?;
    let services: BTreeMap<u32, FlowCounters> =
        stats.services([tcp_id, udp_id])?.into_iter().collect();
    let tcp = services.get(&tcp_id).context("no TCP service counters")?;
    eprintln!("TCP NodePort counters: {tcp:?}");
    ensure!(tcp.connections == N as u64, "{tcp:?}");
    // At least SYN + ACK + ACK of the greeting per connection, and
    // SYN-ACK + greeting back.
    ensure!(
        tcp.packets >= 3 * N as u64 && tcp.reply_packets >= 2 * N as u64,
        "{tcp:?}"
    );
    ensure!(
        tcp.bytes >= tcp.packets * 54 && tcp.reply_bytes >= tcp.reply_packets * 54,
        "{tcp:?}"
    );
    let udp = services.get(&udp_id).context("no UDP service counters")?;
    ensure!(
        udp.connections == 1 && udp.packets == 1 && udp.reply_packets == 1,
        "{udp:?}"
    );
    let per_backend: u64 = stats.backends(1..64)?.iter().map(|(_, c)| c.packets).sum();
    ensure!(
        per_backend == tcp.packets + udp.packets,
        "backends count {per_backend} packets"
    );

    // No backends: the node refuses the SYN, and the attempt is recorded.
    lab.apply(&[], false)?;
    let target = node_port();
    let refused = lab
        .client_ns
        .enter(move || Ok(TcpStream::connect_timeout(&target, TIMEOUT)))?;
    ensure!(refused.is_err(), "{refused:?}");
    let records = drain(&mut ring)?;
    ensure!(records.len() == 1, "{records:#?}");
    let r = records[0];
    ensure!(
        r.verdict == VERDICT_NO_BACKEND
            && r.hook == HOOK_TC_INGRESS
            && r.backend_id == 0
            && r.xlate_address == [0; 4]
            && r.orig_address == node,
        "{r:?}"
    );
    let refusals = stats
        .services([r.service_id])?
        .into_iter()
        .find(|(id, _)| *id == r.service_id)
        .map(|(_, c)| c.refused);
    ensure!(refusals == Some(1), "refusals counted: {refusals:?}");
    Ok(())
}

/// The conntrack entries of the flow from the client's `port`.
fn flow_entries(lab: &Lab, port: u16) -> Result<Vec<CtValue>> {
    Ok(lab
        .conntrack()?
        .entries()?
        .into_iter()
        .filter(|(_, v)| v.client_port == port.to_be())
        .map(|(_, v)| v)
        .collect())
}

/// Waits up to 3 s for `check` on the entries of the flow from `port`.
fn wait_flow(lab: &Lab, port: u16, check: impl Fn(&[CtValue]) -> bool) -> Result<Vec<CtValue>> {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let entries = flow_entries(lab, port)?;
        if check(&entries) || std::time::Instant::now() > deadline {
            return Ok(entries);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn nodeport_conntrack_frees_reset_and_closed_flows() -> Result<()> {
    let mut lab = Lab::new(2)?;
    lab.apply(&["b0", "b1"], false)?;
    lab.client_ns.enter(|| {
        // Lets the client reuse its port of a closed connection 1 s later.
        Ok(std::fs::write("/proc/sys/net/ipv4/tcp_tw_reuse", "1")?)
    })?;
    let (mut open, open_name) = lab.connect()?;
    let open_port = open.get_ref().local_addr()?.port();

    // An RST deletes both entries at once.
    let (reset, _) = lab.connect()?;
    let reset_port = reset.get_ref().local_addr()?.port();
    ensure!(flow_entries(&lab, reset_port)?.len() == 2);
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    nix::sys::socket::setsockopt(reset.get_ref(), sockopt::Linger, &linger)?;
    drop(reset);
    let left = wait_flow(&lab, reset_port, <[CtValue]>::is_empty)?;
    ensure!(left.is_empty(), "a reset flow kept {left:?}");

    // FIN both ways marks both entries closing; ageing removes them after
    // the close timeout, and leaves the open flow alone.
    let (closed, closed_name) = lab.connect_from(42_000)?;
    drop(closed);
    let closing = wait_flow(&lab, 42_000, |e| {
        e.len() == 2 && e.iter().all(CtValue::is_closing)
    })?;
    ensure!(
        closing.len() == 2
            && closing
                .iter()
                .all(|v| v.flags & (CT_FLAG_FIN_FORWARD | CT_FLAG_FIN_REPLY) != 0
                    && v.is_closing()),
        "after FIN both ways: {closing:?}"
    );
    let timeouts = CtTimeouts::default();
    let mut ct = lab.conntrack()?;
    ensure!(age_conntrack(&mut ct, bpf::monotonic_ns(), &timeouts)? == 0);

    // A new SYN on the closed flow's tuple is a new flow, balanced anew:
    // its backend has left the service, so reaching it again would mean
    // the stale entry decided.
    let other = if closed_name == "b0" { "b1" } else { "b0" };
    lab.apply(&[other], false)?;
    std::thread::sleep(Duration::from_millis(1100));
    let (again, name) = lab.connect_from(42_000)?;
    ensure!(
        name == other,
        "a SYN on the closed flow's tuple reached {name}, not {other}"
    );
    drop(again);
    wait_flow(&lab, 42_000, |e| {
        e.len() == 2 && e.iter().all(CtValue::is_closing)
    })?;

    let later = bpf::monotonic_ns() + (timeouts.closing + Duration::from_secs(1)).as_nanos() as u64;
    let deleted = age_conntrack(&mut ct, later, &timeouts)?;
    ensure!(deleted == 2, "ageing deleted {deleted} entries");
    ensure!(flow_entries(&lab, 42_000)?.is_empty());
    ensure!(flow_entries(&lab, open_port)?.len() == 2);
    ping(&mut open, &open_name).context("the open flow broke")?;
    Ok(())
}

/// A backend's ICMP "port unreachable" for a UDP NodePort flow reaches the
/// client translated back (from the frontend, quoting the datagram the
/// client sent), so the client's connected socket fails with ECONNREFUSED
/// at once — with SNAT (`Cluster`) and without (`Local`). Untranslated, the
/// error would name the backend and a tuple the client never used, and
/// the client would wait for its timeout.
#[test]
fn icmp_errors_about_a_nodeport_flow_reach_the_client_translated() -> Result<()> {
    let mut lab = Lab::new(1)?;
    // Nothing listens on UDP 9 in the backend's namespace.
    let closed = *lab.backend("b0").addr.ip();
    for (external_local, port) in [(false, NODE_PORT + 1), (true, NODE_PORT + 2)] {
        let mut svc = lab.service(&[], None);
        svc.external_local = external_local;
        svc.backends = vec![Backend {
            ip: IpAddr::V4(closed),
            port: 9,
            state: BackendState::Active,
            node_name: None,
        }];
        let mut desired = DesiredState::default();
        desired.services.insert(frontend(port, Protocol::Udp), svc);
        lab.write(&desired)?;
        let target = SocketAddr::V4(SocketAddrV4::new(NODE_IP, port));
        let outcome = lab.client_ns.enter(move || {
            let socket = UdpSocket::bind(SocketAddrV4::new(CLIENT_IP, 0))?;
            socket.set_read_timeout(Some(TIMEOUT))?;
            socket.connect(target)?;
            socket.send(b"hello")?;
            let started = std::time::Instant::now();
            let mut buf = [0u8; 16];
            let result = socket.recv(&mut buf).map(|_| ());
            Ok((result, started.elapsed()))
        })?;
        let (result, took) = outcome;
        let err = result
            .err()
            .context("a datagram answered from a closed port")?;
        ensure!(
            err.raw_os_error() == Some(libc::ECONNREFUSED),
            "external_local={external_local}: recv failed with {err} after {took:?}, \
             not ECONNREFUSED (the ICMP error was not translated)"
        );
        ensure!(took < TIMEOUT / 2, "the refusal took {took:?}");
        // The flow it was about is a translated one (the error did not
        // come from the node's own stack).
        let flows: Vec<CtValue> = lab
            .conntrack()?
            .entries()?
            .into_iter()
            .map(|(_, v)| v)
            .filter(|v| v.frontend_port == port.to_be())
            .collect();
        ensure!(
            flows.iter().any(|ct| ct.backend_port == 9u16.to_be()),
            "no translated flow to the closed port: {flows:?}"
        );
    }
    Ok(())
}

/// A UDP datagram larger than the path MTU arrives in fragments; every
/// fragment follows the first one's translation (later fragments carry no
/// ports), so the backend reassembles the whole datagram and answers —
/// with SNAT (`Cluster`) and without (`Local`).
#[test]
fn fragmented_datagrams_reach_the_backend_whole() -> Result<()> {
    let mut lab = Lab::new(1)?;
    for external_local in [false, true] {
        lab.apply(&["b0"], external_local)?;
        let reply = lab.client_ns.enter(|| {
            let socket = UdpSocket::bind(SocketAddrV4::new(CLIENT_IP, 0))?;
            socket.set_read_timeout(Some(TIMEOUT))?;
            // 4000 bytes over a 1500-byte MTU: three fragments.
            socket.send_to(&[b'x'; 4000], node_port())?;
            let mut buf = [0u8; 64];
            let (n, from) = socket.recv_from(&mut buf)?;
            Ok((String::from_utf8_lossy(&buf[..n]).into_owned(), from))
        });
        let (name, from) = reply.with_context(|| {
            format!("external_local={external_local}: no answer to a fragmented datagram")
        })?;
        ensure!(name == "b0" && from == node_port(), "{name} from {from}");
    }
    Ok(())
}
