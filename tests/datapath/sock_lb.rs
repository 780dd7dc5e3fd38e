//! Socket-level ClusterIP load balancing, end to end: the four `cgroup/*4`
//! programs attached to a test cgroup, the map writer applying
//! `DesiredState`s, a client process inside that cgroup and a client
//! network namespace, and named backends in three other namespaces.
//!
//! Topology per test: the client namespace has one veth to each backend
//! namespace (`10.214.N.1` ↔ `10.214.N.2`, backend `bN` on
//! `10.214.N.2:8080`, TCP and UDP). The VIP `10.96.0.10` exists nowhere,
//! and the client namespace routes all of `10.96.0.0/12` to `unreachable`,
//! so a connection the programs do not translate fails instead of leaving.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4},
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result, ensure};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    cgroup::TestCgroup,
    netns::{NetNs, VethPair},
    run,
    sockclient::SockClient,
};
use keelson_ebpf_common::lb::{
    MAX_REVNAT_TCP, MAX_SERVICE_ENTRIES, REVNAT_TCP_MAP, SERVICES_MAP, ServiceKey, ipv4_words,
};
use keelson_node::{
    bpf::sock_lb::{LbMaps, SockLb, detach_pinned},
    proxy::{
        maps::LbMapWriter,
        model::{
            Algorithm, Backend, BackendState, DesiredState, Frontend, FrontendKind, LbService,
            Protocol, ServiceName,
        },
    },
};

const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_keelson-sock-client");
const VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
const PORT: u16 = 80;
const BACKEND_PORT: u16 = 8080;
const ECONNREFUSED: i32 = 111;
const ENETUNREACH: i32 = 101;
const EHOSTUNREACH: i32 = 113;

fn vip() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(VIP, PORT))
}

/// Namespaces, links, backends, a cgroup and a pin directory; everything
/// is removed on drop (fields drop in this order).
struct Lab {
    cgroup: TestCgroup,
    pins: PinDir,
    backends: Vec<NamedBackend>,
    _veths: Vec<VethPair>,
    _backend_ns: Vec<NetNs>,
    client_ns: NetNs,
}

impl Lab {
    fn new(backends: u8) -> Result<Self> {
        let client_ns = NetNs::new()?;
        client_ns.ip(&["route", "add", "unreachable", "10.96.0.0/12"])?;
        let mut lab = Self {
            cgroup: TestCgroup::new()?,
            pins: PinDir::new()?,
            backends: Vec::new(),
            _veths: Vec::new(),
            _backend_ns: Vec::new(),
            client_ns,
        };
        for n in 0..backends {
            let ns = NetNs::new()?;
            let veth = VethPair::new(
                &lab.client_ns,
                &ns,
                Ipv4Addr::new(10, 214, n, 1),
                Ipv4Addr::new(10, 214, n, 2),
            )?;
            let addr = SocketAddrV4::new(veth.b_addr, BACKEND_PORT);
            lab.backends
                .push(NamedBackend::start(&ns, addr, &format!("b{n}"))?);
            lab._veths.push(veth);
            lab._backend_ns.push(ns);
        }
        Ok(lab)
    }

    /// Loads the programs (reusing this lab's pins) and attaches them to
    /// this lab's cgroup: what the agent does at start.
    fn start_agent(&self) -> Result<(SockLb, LbMapWriter<LbMaps>)> {
        let mut lb = SockLb::load(self.pins.path())?;
        lb.attach(self.cgroup.path())?;
        let writer = LbMapWriter::new(lb.maps()?)?;
        Ok((lb, writer))
    }

    fn client(&self) -> Result<SockClient> {
        SockClient::spawn(CLIENT_BIN, &self.client_ns, &self.cgroup)
    }

    fn backend(&self, name: &str) -> &NamedBackend {
        self.backends
            .iter()
            .find(|b| b.name == name)
            .unwrap_or_else(|| panic!("no backend {name}"))
    }
}

fn service(backends: &[&NamedBackend], affinity: Option<Duration>) -> LbService {
    LbService {
        service: ServiceName {
            namespace: "default".into(),
            name: "web".into(),
        },
        port_name: "http".into(),
        kind: FrontendKind::ClusterIp,
        backends: backends
            .iter()
            .map(|b| Backend {
                ip: IpAddr::V4(*b.addr.ip()),
                port: b.addr.port(),
                state: BackendState::Active,
                node_name: None,
            })
            .collect(),
        algorithm: Algorithm::Random,
        affinity,
        external_local: false,
    }
}

fn frontend(protocol: Protocol) -> Frontend {
    Frontend {
        ip: IpAddr::V4(VIP),
        port: PORT,
        protocol,
    }
}

fn desired(entries: Vec<(Protocol, LbService)>) -> DesiredState {
    DesiredState {
        services: entries.into_iter().map(|(p, s)| (frontend(p), s)).collect(),
    }
}

fn all(lab: &Lab) -> Vec<&NamedBackend> {
    lab.backends.iter().collect()
}

/// Tallies names.
fn tally<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for name in names {
        *counts.entry(name.to_owned()).or_default() += 1;
    }
    counts
}

/// Opens `n` TCP connections to the VIP and returns the backend names,
/// checking each socket reports the VIP as its peer.
fn tcp_names(client: &mut SockClient, n: usize) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for i in 0..n {
        let reply = client
            .tcp(vip())?
            .map_err(|e| anyhow::anyhow!("connection {i}: {e:?}"))?;
        ensure!(
            reply.peer == vip(),
            "getpeername() says {} instead of the VIP",
            reply.peer
        );
        names.push(reply.name);
    }
    Ok(names)
}

#[test]
fn cluster_ip_balances_tcp_and_udp_over_every_backend() -> Result<()> {
    let lab = Lab::new(3)?;
    let (_lb, mut writer) = lab.start_agent()?;
    writer.apply(&desired(vec![
        (Protocol::Tcp, service(&all(&lab), None)),
        (Protocol::Udp, service(&all(&lab), None)),
    ]))?;
    let mut client = lab.client()?;

    let names = tcp_names(&mut client, 60)?;
    let counts = tally(names.iter().map(String::as_str));
    eprintln!("TCP: {counts:?}");
    ensure!(
        counts.len() == 3,
        "60 TCP connections reached only {counts:?}"
    );
    // The connections went straight to the backends (no VIP on the wire).
    let accepted: usize = lab.backends.iter().map(NamedBackend::accepted).sum();
    ensure!(accepted == 60, "backends accepted {accepted} connections");

    let mut names = Vec::new();
    for i in 0..60 {
        let reply = client
            .udp(vip())?
            .map_err(|e| anyhow::anyhow!("datagram {i}: {e:?}"))?;
        ensure!(
            reply.from == vip(),
            "recvfrom() says the reply came from {} instead of the VIP",
            reply.from
        );
        names.push(reply.name);
    }
    let counts = tally(names.iter().map(String::as_str));
    eprintln!("UDP sendto: {counts:?}");
    ensure!(counts.len() == 3, "60 UDP sockets reached only {counts:?}");

    let mut names = Vec::new();
    for i in 0..30 {
        let reply = client
            .udp_connected(vip())?
            .map_err(|e| anyhow::anyhow!("connected datagram {i}: {e:?}"))?;
        ensure!(
            reply.peer == Some(vip()),
            "getpeername() says {:?}",
            reply.peer
        );
        ensure!(reply.from == vip(), "recvfrom() says {}", reply.from);
        names.push(reply.name);
    }
    let counts = tally(names.iter().map(String::as_str));
    eprintln!("UDP connected: {counts:?}");
    ensure!(
        counts.len() == 3,
        "30 connected UDP sockets reached only {counts:?}"
    );

    // What is not a frontend is not translated, and cannot leave.
    for miss in ["10.96.0.11:80", "10.96.0.10:81"] {
        let err = client
            .tcp(miss.parse()?)?
            .err()
            .with_context(|| format!("{miss} answered"))?;
        ensure!(
            err.errno == ENETUNREACH || err.errno == EHOSTUNREACH,
            "{miss}: {err:?}"
        );
    }
    Ok(())
}

#[test]
fn a_removed_endpoint_keeps_open_connections_but_gets_no_new_ones() -> Result<()> {
    let lab = Lab::new(3)?;
    let (_lb, mut writer) = lab.start_agent()?;
    writer.apply(&desired(vec![(Protocol::Tcp, service(&all(&lab), None))]))?;
    let mut client = lab.client()?;

    let mut open = None;
    for _ in 0..60 {
        let reply = client
            .tcp_open(vip())?
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        if reply.name == "b0" {
            open = Some(reply.id);
            break;
        }
    }
    let open = open.context("no connection reached b0 in 60 tries")?;

    let b0 = lab.backend("b0");
    let rest = [lab.backend("b1"), lab.backend("b2")];
    let stats = writer.apply(&desired(vec![(Protocol::Tcp, service(&rest, None))]))?;
    ensure!(stats.backends_deleted == 1, "{stats:?}");
    let before = b0.accepted();

    let counts = tally(tcp_names(&mut client, 30)?.iter().map(String::as_str));
    eprintln!("after removing b0: {counts:?}");
    ensure!(
        !counts.contains_key("b0"),
        "b0 still got new connections: {counts:?}"
    );
    ensure!(counts.len() == 2, "30 connections reached only {counts:?}");
    ensure!(b0.accepted() == before, "b0 accepted new connections");

    let answer = client
        .tcp_ping(open)?
        .map_err(|e| anyhow::anyhow!("the open connection broke: {e:?}"))?;
    ensure!(answer == "b0", "the open connection now reaches {answer}");
    Ok(())
}

#[test]
fn a_service_without_endpoints_refuses_with_econnrefused() -> Result<()> {
    let lab = Lab::new(1)?;
    let (_lb, mut writer) = lab.start_agent()?;
    writer.apply(&desired(vec![
        (Protocol::Tcp, service(&[], None)),
        (Protocol::Udp, service(&[], None)),
    ]))?;
    let mut client = lab.client()?;

    let (reply, took) = client.timed(|c| c.tcp(vip()))?;
    let err = reply
        .err()
        .context("TCP connect to an empty service succeeded")?;
    ensure!(err.errno == ECONNREFUSED, "TCP connect: {err:?}");
    ensure!(took < Duration::from_millis(500), "refusal took {took:?}");

    let err = client
        .udp_connected(vip())?
        .err()
        .context("UDP connect to an empty service succeeded")?;
    ensure!(err.errno == ECONNREFUSED, "UDP connect: {err:?}");
    let err = client
        .udp(vip())?
        .err()
        .context("UDP sendto an empty service succeeded")?;
    ensure!(err.errno == ECONNREFUSED, "UDP sendto: {err:?}");

    // The same frontend with an endpoint answers: the refusal came from
    // the empty service entry.
    writer.apply(&desired(vec![(Protocol::Tcp, service(&all(&lab), None))]))?;
    let reply = client
        .tcp(vip())?
        .map_err(|e| anyhow::anyhow!("after adding an endpoint: {e:?}"))?;
    ensure!(reply.name == "b0");
    // And UDP, now without a service entry, is not translated at all.
    let err = client.udp_connected(vip())?.err().context("UDP answered")?;
    ensure!(err.errno != ECONNREFUSED, "UDP without a service: {err:?}");
    Ok(())
}

#[test]
fn client_ip_affinity_keeps_a_client_on_one_backend() -> Result<()> {
    let lab = Lab::new(3)?;
    let (lb, mut writer) = lab.start_agent()?;
    let sticky = Some(Duration::from_secs(300));
    writer.apply(&desired(vec![
        (Protocol::Tcp, service(&all(&lab), sticky)),
        (Protocol::Udp, service(&all(&lab), sticky)),
    ]))?;
    let mut client = lab.client()?;

    let counts = tally(tcp_names(&mut client, 20)?.iter().map(String::as_str));
    eprintln!("TCP with affinity: {counts:?}");
    ensure!(counts.len() == 1, "20 connections spread over {counts:?}");
    let chosen = counts.keys().next().cloned().context("no backend")?;

    let mut names = Vec::new();
    for _ in 0..12 {
        let reply = client.udp(vip())?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        names.push(reply.name);
    }
    let udp = tally(names.iter().map(String::as_str));
    ensure!(udp.len() == 1, "12 UDP sockets spread over {udp:?}");
    let affinities = lb.maps()?.affinities()?;
    ensure!(affinities.len() == 2, "affinity entries: {affinities:?}");

    // The remembered backend leaves the service (but stays a backend of
    // another one): the client moves, and sticks to its new backend.
    let rest: Vec<&NamedBackend> = lab.backends.iter().filter(|b| b.name != chosen).collect();
    let mut state = desired(vec![
        (Protocol::Tcp, service(&rest, sticky)),
        (Protocol::Udp, service(&rest, sticky)),
    ]);
    let other = Frontend {
        port: PORT + 1,
        ..frontend(Protocol::Tcp)
    };
    state.services.insert(other, service(&all(&lab), None));
    let stats = writer.apply(&state)?;
    ensure!(stats.backends_deleted == 1, "{stats:?}");
    let counts = tally(tcp_names(&mut client, 20)?.iter().map(String::as_str));
    eprintln!("TCP with affinity after {chosen} left: {counts:?}");
    ensure!(counts.len() == 1, "20 connections spread over {counts:?}");
    ensure!(!counts.contains_key(&chosen), "{chosen} still chosen");
    Ok(())
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns()`.
fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[test]
fn client_ip_affinity_follows_its_map_and_times_out() -> Result<()> {
    let lab = Lab::new(3)?;
    let (lb, mut writer) = lab.start_agent()?;
    let timeout = Duration::from_secs(60);
    writer.apply(&desired(vec![(
        Protocol::Tcp,
        service(&all(&lab), Some(timeout)),
    )]))?;
    let mut client = lab.client()?;
    let first = tcp_names(&mut client, 1)?.remove(0);

    let mut maps = lb.maps()?;
    let [(key, value)] = maps.affinities()?[..] else {
        anyhow::bail!("affinity entries: {:?}", maps.affinities()?);
    };
    let ids: BTreeMap<String, u32> = maps
        .backends()?
        .into_iter()
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
    moved.last_used_ns = monotonic_ns();
    maps.put_affinity(&key, &moved)?;
    let counts = tally(tcp_names(&mut client, 10)?.iter().map(String::as_str));
    ensure!(
        counts.keys().eq([&other]),
        "fresh entry for {other} ignored: {counts:?}"
    );

    // An entry older than the timeout is not: the client is balanced anew
    // (30 draws all landing on the stale backend would take 3^-30 luck).
    let mut landed = Vec::new();
    for _ in 0..30 {
        let mut stale = moved;
        stale.last_used_ns = monotonic_ns() - 2 * timeout.as_nanos() as u64;
        maps.put_affinity(&key, &stale)?;
        landed.extend(tcp_names(&mut client, 1)?);
    }
    let counts = tally(landed.iter().map(String::as_str));
    eprintln!("after expiry: {counts:?}");
    ensure!(
        counts.len() > 1,
        "an expired entry kept deciding: {counts:?}"
    );
    // Each new choice refreshed the entry.
    let (_, now) = maps.affinities()?[0];
    ensure!(now.last_used_ns > moved.last_used_ns, "{now:?}");
    Ok(())
}

/// Ids of the programs attached to a cgroup, per `bpftool`.
fn attached_programs(cgroup: &Path) -> Result<Vec<u64>> {
    let out = run(
        "bpftool",
        &["-j", "cgroup", "show", &cgroup.display().to_string()],
    )?;
    if out.trim().is_empty() {
        // bpftool prints nothing at all for a cgroup without programs.
        return Ok(Vec::new());
    }
    let json: serde_json::Value =
        serde_json::from_str(out.trim()).with_context(|| format!("bpftool said {out:?}"))?;
    let mut ids: Vec<u64> = json
        .as_array()
        .context("bpftool: not an array")?
        .iter()
        .filter_map(|p| p.get("id").and_then(serde_json::Value::as_u64))
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

#[test]
fn an_agent_restart_reconciles_from_the_pins() -> Result<()> {
    let lab = Lab::new(3)?;
    let state = desired(vec![(Protocol::Tcp, service(&all(&lab), None))]);
    let (lb, mut writer) = lab.start_agent()?;
    writer.apply(&state)?;
    let live = writer.live();
    let first_programs = attached_programs(lab.cgroup.path())?;
    ensure!(first_programs.len() == 4, "attached: {first_programs:?}");

    let mut client = lab.client()?;
    let open = client
        .tcp_open(vip())?
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;

    // The agent goes away: the pinned links and maps keep working.
    drop(writer);
    drop(lb);
    ensure!(attached_programs(lab.cgroup.path())? == first_programs);
    let counts = tally(tcp_names(&mut client, 30)?.iter().map(String::as_str));
    ensure!(counts.len() == 3, "without an agent: {counts:?}");

    // It comes back: the maps are read back, nothing needs writing, and
    // the new programs replace the old ones.
    let (_lb, mut writer) = lab.start_agent()?;
    ensure!(
        writer.live() == live,
        "maps lost content: {:?}",
        writer.live()
    );
    let stats = writer.apply(&state)?;
    ensure!(stats.is_noop(), "reconcile rewrote the maps: {stats:?}");
    // The replaced links are released by a kernel work item: allow it a moment.
    let mut programs = attached_programs(lab.cgroup.path())?;
    for _ in 0..100 {
        if programs.len() == 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        programs = attached_programs(lab.cgroup.path())?;
    }
    ensure!(programs.len() == 4, "attached after restart: {programs:?}");
    ensure!(
        programs.iter().all(|id| !first_programs.contains(id)),
        "old programs still attached: {first_programs:?} / {programs:?}"
    );

    let answer = client
        .tcp_ping(open.id)?
        .map_err(|e| anyhow::anyhow!("the open connection broke: {e:?}"))?;
    ensure!(answer == open.name, "open connection moved to {answer}");
    // Its reverse translation lives in the pinned TCP reverse array the
    // new programs reuse: it still reports the VIP.
    let peer = client
        .tcp_peer(open.id)?
        .map_err(|e| anyhow::anyhow!("getpeername: {e:?}"))?;
    ensure!(peer == vip(), "after restart getpeername() says {peer}");
    ensure!(
        lab.pins.path().join(REVNAT_TCP_MAP).exists(),
        "the TCP reverse array is not pinned"
    );
    let counts = tally(tcp_names(&mut client, 30)?.iter().map(String::as_str));
    ensure!(counts.len() == 3, "after restart: {counts:?}");

    // And the restarted writer keeps managing the same entries.
    let one = [lab.backend("b1")];
    let stats = writer.apply(&desired(vec![(Protocol::Tcp, service(&one, None))]))?;
    ensure!(stats.backends_deleted == 2, "{stats:?}");
    let counts = tally(tcp_names(&mut client, 10)?.iter().map(String::as_str));
    ensure!(counts.keys().eq(["b1"]), "after the change: {counts:?}");
    Ok(())
}

#[test]
fn a_pinned_map_of_another_layout_is_recreated_and_detach_unpins_links() -> Result<()> {
    let lab = Lab::new(0)?;
    let stale = lab.pins.path().join(SERVICES_MAP);
    run(
        "bpftool",
        &[
            "map",
            "create",
            &stale.display().to_string(),
            "type",
            "hash",
            "key",
            "8",
            "value",
            "8",
            "entries",
            "16",
            "name",
            "LB_SERVICES",
        ],
    )?;
    let (lb, _writer) = lab.start_agent()?;
    let out = run(
        "bpftool",
        &["-j", "map", "show", "pinned", &stale.display().to_string()],
    )?;
    let info: serde_json::Value = serde_json::from_str(out.trim())?;
    ensure!(
        info["bytes_key"].as_u64() == Some(std::mem::size_of::<ServiceKey>() as u64)
            && info["max_entries"].as_u64() == Some(u64::from(MAX_SERVICE_ENTRIES)),
        "LB_SERVICES was not recreated: {info}"
    );
    ensure!(attached_programs(lab.cgroup.path())?.len() == 4);
    drop(lb);
    detach_pinned(lab.pins.path())?;
    for _ in 0..100 {
        if attached_programs(lab.cgroup.path())?.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("programs still attached after detach_pinned")
}

/// With nobody reading the flow ring, it fills: records beyond its
/// capacity are dropped and counted, while the per-service counters still
/// count every refusal and the ring holds exactly the rest.
#[test]
fn a_full_flow_ring_drops_and_counts_while_service_counters_count_all() -> Result<()> {
    use keelson_ebpf_common::flows::{FlowRecord, RING_BYTES, VERDICT_NO_BACKEND};
    use keelson_node::{bpf::flows, flows::record::parse_record};

    let lab = Lab::new(1)?;
    let (_lb, mut writer) = lab.start_agent()?;
    writer.apply(&desired(vec![(Protocol::Tcp, service(&[], None))]))?;
    let service_id = writer
        .live()
        .values()
        .next()
        .context("no live service")?
        .service_id;
    let mut client = lab.client()?;
    // Each record takes its size plus an 8-byte header in the ring.
    let fits = RING_BYTES as usize / (std::mem::size_of::<FlowRecord>() + 8);
    let attempts = fits + 300;
    for _ in 0..attempts {
        let err = client
            .tcp(vip())?
            .err()
            .context("an empty service answered")?;
        ensure!(err.errno == ECONNREFUSED, "{err:?}");
    }
    let stats = flows::FlowStats::open(lab.pins.path())?;
    let counters = stats
        .services([service_id])?
        .into_iter()
        .find(|(id, _)| *id == service_id)
        .map(|(_, c)| c)
        .context("no counters for the service")?;
    ensure!(counters.refused == attempts as u64, "{counters:?}");
    ensure!(
        counters.connections == 0 && counters.dropped == 0,
        "{counters:?}"
    );
    let drops = stats.ring_drops()?;
    ensure!(drops >= 300, "only {drops} drops after {attempts} records");

    let mut ring = flows::open_ring(lab.pins.path())?;
    let mut read = 0u64;
    while let Some(item) = ring.next() {
        let record = parse_record(&item)?;
        ensure!(record.verdict == VERDICT_NO_BACKEND, "{record:?}");
        ensure!(record.service_id == service_id, "{record:?}");
        read += 1;
    }
    ensure!(
        read + drops == attempts as u64,
        "{read} read + {drops} dropped != {attempts}"
    );
    Ok(())
}

/// The TCP reverse entry is the socket's own (by cookie) and names the VIP;
/// once a later socket whose cookie maps to the same slot takes it, the
/// first socket's getpeername() shows its real peer — never another
/// socket's VIP.
#[test]
fn a_tcp_reverse_entry_is_the_sockets_own_and_never_misreported() -> Result<()> {
    let lab = Lab::new(1)?;
    let (_lb, mut writer) = lab.start_agent()?;
    writer.apply(&desired(vec![(Protocol::Tcp, service(&all(&lab), None))]))?;
    let mut client = lab.client()?;
    let open = client
        .tcp_open(vip())?
        .map_err(|e| anyhow::anyhow!("connect: {e:?}"))?;
    ensure!(open.peer == vip(), "getpeername() says {}", open.peer);
    let cookie = client
        .tcp_cookie(open.id)?
        .map_err(|e| anyhow::anyhow!("SO_COOKIE: {e:?}"))?;
    let mut maps = LbMaps::open(lab.pins.path())?;
    let entry = maps.revnat_tcp_slot(cookie)?;
    let backend = lab.backends[0].addr;
    ensure!(
        entry.cookie == cookie
            && entry.sock.backend == ipv4_words(*backend.ip())
            && entry.sock.backend_port == backend.port().to_be()
            && entry.sock.frontend.address == ipv4_words(VIP)
            && entry.sock.frontend.port == PORT.to_be(),
        "slot of cookie {cookie}: {entry:?}"
    );
    // A socket MAX_REVNAT_TCP cookies later, to another VIP, takes the slot.
    let mut taken = entry;
    taken.cookie = cookie + u64::from(MAX_REVNAT_TCP);
    taken.sock.frontend.address = ipv4_words(Ipv4Addr::new(10, 96, 0, 99));
    maps.put_revnat_tcp_slot(cookie, &taken)?;
    let peer = client
        .tcp_peer(open.id)?
        .map_err(|e| anyhow::anyhow!("getpeername: {e:?}"))?;
    ensure!(
        peer == SocketAddr::V4(backend),
        "with its slot taken, getpeername() says {peer} (want the backend {backend})"
    );
    let answer = client
        .tcp_ping(open.id)?
        .map_err(|e| anyhow::anyhow!("the connection broke: {e:?}"))?;
    ensure!(answer == open.name, "connection moved to {answer}");
    Ok(())
}
