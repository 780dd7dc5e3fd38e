//! Flow observability end to end: the real agent (`keelson-node proxy`,
//! started with nsenter in a node netns) follows a real `keelson-server`;
//! a client in a test cgroup + netns connects to `default/web`'s
//! ClusterIP, and `keelson-node flows` — as users run it — reads the
//! agent's flow socket: the recent FORWARDED records name the VIP, the
//! backend each connection really reached, and the service; a `--follow`
//! client sees new connections live; a service without endpoints yields
//! NO_BACKEND; and `/metrics` (scraped inside the node netns) counts them.
//!
//! Topology as in `agent.rs`; the flow socket lives in a temp dir.

use std::{
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};
use keelson_e2e::{
    backend::NamedBackend,
    bpffs::PinDir,
    cgroup::TestCgroup,
    metrics::{sample, scrape},
    netns::{NetNs, VethPair},
    server::ServerProcess,
    sockclient::SockClient,
};
use serde_json::{Value, json};

use super::{AgentProcess, flows, node_binary};

const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_keelson-sock-client");
const ECONNREFUSED: i32 = 111;
const METRICS: &str = "127.0.0.1:10249";

/// A child process killed on drop (the agent, a `flows --follow` client).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(
    node_ns: &NetNs,
    server: &ServerProcess,
    cgroup: &TestCgroup,
    pins: &PinDir,
    socket: &std::path::Path,
    log: &std::path::Path,
) -> Result<AgentProcess> {
    let extra = [
        std::ffi::OsStr::new("--node-name"),
        "n1".as_ref(),
        "--node-ip".as_ref(),
        "10.215.9.1".as_ref(),
        "--metrics-bind-address".as_ref(),
        METRICS.as_ref(),
        "--flows-socket".as_ref(),
        socket.as_os_str(),
    ];
    AgentProcess::start(node_ns, server, cgroup, pins, &extra, log.to_path_buf())
}

#[test]
fn flows_show_forwarded_and_refused_connections_and_count_them() -> Result<()> {
    let node_ns = NetNs::new()?;
    let client_ns = NetNs::new()?;
    client_ns.ip(&["route", "add", "unreachable", "10.96.0.0/12"])?;
    let cgroup = TestCgroup::new()?;
    let pins = PinDir::new()?;
    let tmp = tempfile::tempdir()?;
    let socket = tmp.path().join("flows.sock");
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
    let backend_of = |name: &str| match name {
        "b0" => "10.215.0.2:8080",
        _ => "10.215.1.2:8080",
    };

    let server = ServerProcess::start_in_netns(node_ns.name(), &[])?;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"ports": [{"name": "http", "port": 80, "targetPort": "http"},
                          {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}]}});
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
    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.215.0.2"], "conditions": {"ready": true}},
                      {"addresses": ["10.215.1.2"], "conditions": {"ready": true}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"},
                  {"name": "dns", "port": 8080, "protocol": "UDP"}]});
    let slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
    let resp = server.curl(
        "POST",
        slices,
        Some("application/json"),
        Some(slice.to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 201, "{resp:?}");

    let log = tmp.path().join("agent.log");
    let mut agent = start_agent(&node_ns, &server, &cgroup, &pins, &socket, &log)?;
    let agent_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut client = SockClient::spawn(CLIENT_BIN, &client_ns, &cgroup)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut forwarded = 0u64;
    loop {
        if client.tcp(vip)?.is_ok() {
            forwarded += 1;
            break;
        }
        if Instant::now() > deadline {
            bail!("the VIP {vip} never answered; agent log:\n{}", agent_log());
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    // A follower, started before the connections it must see.
    let mut follower = Command::new(node_binary()?)
        .args([
            "flows",
            "--follow",
            "-o",
            "json",
            "--service",
            "default/web",
            "--socket",
        ])
        .arg(&socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = follower.stdout.take().context("follower stdout")?;
    let _follower = Killed(follower);
    let (tx, rx) = mpsc::channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                break;
            }
        }
    });

    // N connections → the last N flows are exactly these, in order.
    const N: usize = 6;
    let mut reached = Vec::new();
    for _ in 0..N {
        let reply = client.tcp(vip)?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        reached.push(reply.name);
        forwarded += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let recent = loop {
        let recent = flows(&socket, &["--last", &N.to_string()])?;
        let total = flows(&socket, &[])?.len() as u64;
        if total >= forwarded || Instant::now() > deadline {
            break recent;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(recent.len() == N, "{} flows: {recent:#?}", recent.len());
    for (flow, name) in recent.iter().zip(&reached) {
        ensure!(flow["verdict"] == "FORWARDED", "{flow}");
        ensure!(flow["vip"] == vip.to_string(), "{flow}");
        ensure!(flow["backend"] == backend_of(name), "{name}: {flow}");
        ensure!(flow["service"] == "default/web", "{flow}");
        ensure!(
            flow["protocol"] == "TCP" && flow["hook"] == "connect4",
            "{flow}"
        );
        ensure!(flow["socket_cookie"].as_u64().unwrap_or(0) != 0, "{flow}");
        // A fresh TCP socket is not bound yet at connect().
        ensure!(flow["source"].is_null(), "{flow}");
    }
    // --pod: a Pod whose IP is backend b0's selects exactly the flows to
    // it (resolved through the API server); an unknown pod is an error.
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "b0", "namespace": "default"},
        "spec": {"containers": [{"name": "echo", "image": "keelson.local/echo:1"}]}});
    let created = server.curl(
        "POST",
        "/api/v1/namespaces/default/pods",
        Some("application/json"),
        Some(pod.to_string().as_bytes()),
        true,
    )?;
    ensure!(created.status == 201, "{created:?}");
    let mut with_ip = created.json();
    with_ip["status"] = json!({"podIP": "10.215.0.2", "podIPs": [{"ip": "10.215.0.2"}]});
    let resp = server.curl(
        "PUT",
        "/api/v1/namespaces/default/pods/b0/status",
        Some("application/json"),
        Some(with_ip.to_string().as_bytes()),
        true,
    )?;
    ensure!(resp.status == 200, "PUT pod status: {resp:?}");
    let by_pod = |pod: &str| {
        Command::new("nsenter")
            .arg(format!("--net={}", node_ns.path().display()))
            .arg("--")
            .arg(node_binary()?)
            .args(["flows", "--pod", pod, "--kubeconfig"])
            .arg(server.kubeconfig())
            .args(["-o", "json", "--socket"])
            .arg(&socket)
            .output()
            .context("running keelson-node flows --pod")
    };
    let out = by_pod("default/b0")?;
    ensure!(
        out.status.success(),
        "flows --pod: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let to_pod: Vec<Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let expected = flows(&socket, &[])?
        .into_iter()
        .filter(|f| f["backend"] == backend_of("b0"))
        .count();
    ensure!(
        to_pod.len() == expected && to_pod.iter().all(|f| f["backend"] == backend_of("b0")),
        "flows --pod default/b0 gave {} of {expected}: {to_pod:#?}",
        to_pod.len()
    );
    let out = by_pod("default/nope")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        !out.status.success() && stderr.contains("default/nope not found"),
        "an unknown pod: {stderr}"
    );

    let newest = recent
        .iter()
        .filter_map(|f| f["ktime_ns"].as_u64())
        .max()
        .context("ktime")?;

    // The follower sees a new connection live.
    let live_reply = client.tcp(vip)?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    forwarded += 1;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let flow = rx
            .recv_timeout(left)
            .context("the --follow client got no live record")?;
        if flow["ktime_ns"].as_u64().unwrap_or(0) > newest {
            ensure!(flow["verdict"] == "FORWARDED", "{flow}");
            ensure!(flow["backend"] == backend_of(&live_reply.name), "{flow}");
            break;
        }
    }

    // An unconnected UDP datagram is a sendmsg4 flow.
    let dns = SocketAddr::V4(SocketAddrV4::new(cluster_ip, 53));
    let udp = client.udp(dns)?.map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let datagram = loop {
        let udp_flows: Vec<Value> = flows(&socket, &["--service", "default/web"])?
            .into_iter()
            .filter(|f| f["protocol"] == "UDP")
            .collect();
        if let Some(last) = udp_flows.last() {
            break last.clone();
        }
        ensure!(Instant::now() < deadline, "no UDP flow recorded");
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(datagram["hook"] == "sendmsg4", "{datagram}");
    ensure!(datagram["vip"] == dns.to_string(), "{datagram}");
    ensure!(datagram["verdict"] == "FORWARDED", "{datagram}");
    ensure!(datagram["backend"] == backend_of(&udp.name), "{datagram}");

    // The table, as people read it.
    let out = Command::new(node_binary()?)
        .args(["flows", "--last", "1", "--socket"])
        .arg(&socket)
        .output()?;
    let table = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        table.starts_with("TIME") && table.contains("default/web") && table.contains("FORWARDED"),
        "{table}"
    );
    // A bad request is refused with a message.
    let out = Command::new(node_binary()?)
        .args(["flows", "--service", "web", "--socket"])
        .arg(&socket)
        .output()?;
    ensure!(!out.status.success(), "a malformed --service was accepted");

    // No endpoints left → a refused connection is a NO_BACKEND flow.
    let resp = server.curl("DELETE", &format!("{slices}/web-1"), None, None, true)?;
    ensure!(resp.status == 200, "{resp:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.tcp(vip)? {
            Err(e) if e.errno == ECONNREFUSED => break,
            Ok(_) => forwarded += 1,
            Err(_) => {}
        }
        ensure!(
            Instant::now() < deadline,
            "never refused after the slice was deleted\n{}",
            agent_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let refused = loop {
        let refused = flows(&socket, &["--last", "1", "--verdict", "no-backend"])?;
        if !refused.is_empty() || Instant::now() > deadline {
            break refused;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    ensure!(refused.len() == 1, "{refused:?}");
    let flow = &refused[0];
    ensure!(flow["verdict"] == "NO_BACKEND", "{flow}");
    ensure!(flow["vip"] == vip.to_string(), "{flow}");
    ensure!(flow["backend"].is_null(), "{flow}");
    ensure!(flow["service"] == "default/web", "{flow}");

    // /metrics counts the same connections per service.
    let fwd =
        r#"keelson_proxy_service_connections_total{service="default/web",verdict="forwarded"} "#;
    let nb =
        r#"keelson_proxy_service_connections_total{service="default/web",verdict="no_backend"} "#;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(&node_ns, METRICS.parse()?)?;
        let ok = sample(&text, fwd) == Some(forwarded)
            && sample(&text, nb).is_some_and(|n| n >= 1)
            && sample(&text, r#"keelson_proxy_flow_ring_drops_total "#) == Some(0)
            && sample(
                &text,
                r#"keelson_proxy_service_datagrams_total{service="default/web"} "#,
            )
            .is_some_and(|n| n >= 1)
            && sample(&text, r#"keelson_proxy_map_capacity{map="LB_SERVICES"} "#) == Some(65536)
            && sample(&text, r#"keelson_proxy_map_entries{map="LB_BACKENDS"} "#).is_some();
        if ok {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "metrics never showed {forwarded} forwarded connections:\n{}",
            text.lines()
                .filter(|l| l.contains("keelson_proxy_"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Ctrl-C stops the agent and removes its flow socket.
    ensure!(socket.exists(), "the flow socket vanished early");
    // SAFETY: signalling our own child process by pid.
    let pid = agent.child().context("the agent is not running")?.id();
    let rc = unsafe { libc::kill(pid as i32, libc::SIGINT) };
    ensure!(rc == 0, "kill(SIGINT) failed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent
        .child()
        .context("the agent is not running")?
        .try_wait()?
        .is_none()
    {
        ensure!(Instant::now() < deadline, "the agent ignored SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    }
    ensure!(
        !socket.exists(),
        "the agent left its flow socket behind\n{}",
        agent_log()
    );
    drop(backends);
    Ok(())
}
