//! Container probes (startup, liveness, readiness), as the kubelet's
//! prober runs them: one task per probe of a running container instance,
//! started when the worker first sees the instance running and stopped
//! (aborted) when it stops or is replaced.
//!
//! The pure parts — the Kubernetes defaults, named ports resolved from
//! the container's ports, result accumulation against the success and
//! failure thresholds, startup gating and the HTTP request and status
//! line — are unit-tested here. The edges: `httpGet` (HTTP/1.1 GET to
//! `<host or pod IP>:<port><path>` with the probe's headers, success
//! 200–399; redirects are not followed, a 3xx counts as success; `HTTPS`
//! is reported as unsupported), `tcpSocket` (a connect within the
//! timeout), `exec` (CRI `ExecSync` with the timeout, success on exit 0)
//! and `grpc` (`grpc.health.v1.Health/Check`, success on `SERVING`).
//! Network probes connect from the agent's network namespace — the node's,
//! where the pods' `/32` routes are — or from the configured one.
//!
//! Owns: probe results of the pod's running containers. Must not touch:
//! the containers themselves (a liveness failure is acted on by the worker,
//! which stops the container), the API.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::{Container, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use thiserror::Error;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::{Notify, watch},
    task::JoinHandle,
};
use tracing::{Instrument, debug, info, info_span};

use crate::cri::RuntimeClient;

/// The kubelet's `User-Agent` for HTTP probes.
pub const USER_AGENT: &str = "kube-probe/1.33";
/// How much of an HTTP response body is read (the kubelet's limit).
const MAX_BODY: usize = 10 * 1024;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Startup => "startup",
            Kind::Liveness => "liveness",
            Kind::Readiness => "readiness",
        }
    }
}

/// Why a probe spec cannot be run (the probe then fails with the message).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("probe has no handler (exec, httpGet, tcpSocket or grpc)")]
    NoHandler,
    #[error("port {0:?} is not a named port of the container")]
    UnknownPort(String),
    #[error("port {0} is out of range")]
    BadPort(i64),
}

/// What a probe does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Exec {
        command: Vec<String>,
    },
    Http {
        scheme: String,
        /// `None`: the pod IP.
        host: Option<String>,
        port: u16,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp {
        host: Option<String>,
        port: u16,
    },
    Grpc {
        port: u16,
        service: String,
    },
}

/// A probe with the Kubernetes defaults filled in and its port resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// The probe's own `terminationGracePeriodSeconds` (liveness/startup).
    pub termination_grace: Option<Duration>,
}

fn seconds(v: Option<i32>, default: i32, min: i32) -> Duration {
    let s = v.filter(|s| *s >= min).unwrap_or(default);
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

fn threshold(v: Option<i32>, default: u32) -> u32 {
    v.and_then(|t| u32::try_from(t).ok())
        .filter(|t| *t >= 1)
        .unwrap_or(default)
}

/// Resolves an `IntOrString` port: a number, or a named port of the
/// container (a numeric string counts as a number, as in the kubelet).
pub fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, ProbeError> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => match name.parse::<i64>() {
            Ok(n) => n,
            Err(_) => container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| i64::from(p.container_port))
                .ok_or_else(|| ProbeError::UnknownPort(name.clone()))?,
        },
    };
    u16::try_from(number)
        .ok()
        .filter(|p| *p != 0)
        .ok_or(ProbeError::BadPort(number))
}

impl ProbeSpec {
    /// `probe` of `container` with the defaults: initialDelaySeconds 0,
    /// periodSeconds 10, timeoutSeconds 1, successThreshold 1 (always 1
    /// for liveness and startup), failureThreshold 3.
    pub fn new(kind: Kind, probe: &Probe, container: &Container) -> Result<Self, ProbeError> {
        let action = if let Some(exec) = &probe.exec {
            Action::Exec {
                command: exec.command.clone().unwrap_or_default(),
            }
        } else if let Some(http) = &probe.http_get {
            Action::Http {
                scheme: http.scheme.clone().unwrap_or_else(|| "HTTP".to_owned()),
                host: http.host.clone().filter(|h| !h.is_empty()),
                port: resolve_port(&http.port, container)?,
                path: http
                    .path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "/".to_owned()),
                headers: http
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
            }
        } else if let Some(tcp) = &probe.tcp_socket {
            Action::Tcp {
                host: tcp.host.clone().filter(|h| !h.is_empty()),
                port: resolve_port(&tcp.port, container)?,
            }
        } else if let Some(grpc) = &probe.grpc {
            Action::Grpc {
                port: resolve_port(&IntOrString::Int(grpc.port), container)?,
                service: grpc.service.clone().unwrap_or_default(),
            }
        } else {
            return Err(ProbeError::NoHandler);
        };
        let success_threshold = match kind {
            Kind::Readiness => threshold(probe.success_threshold, 1),
            Kind::Liveness | Kind::Startup => 1,
        };
        Ok(Self {
            action,
            initial_delay: seconds(probe.initial_delay_seconds, 0, 0),
            period: seconds(probe.period_seconds, 10, 1),
            timeout: seconds(probe.timeout_seconds, 1, 1),
            success_threshold,
            failure_threshold: threshold(probe.failure_threshold, 3),
            termination_grace: probe
                .termination_grace_period_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs),
        })
    }
}

/// Counts consecutive equal results and settles on one once its
/// threshold is reached (the kubelet's `resultRun`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accumulator {
    success_threshold: u32,
    failure_threshold: u32,
    last: Option<bool>,
    run: u32,
}

impl Accumulator {
    pub fn new(success_threshold: u32, failure_threshold: u32) -> Self {
        Self {
            success_threshold: success_threshold.max(1),
            failure_threshold: failure_threshold.max(1),
            last: None,
            run: 0,
        }
    }

    /// Records one probe result; `Some(result)` once it is settled (every
    /// further equal result past the threshold settles it again).
    pub fn observe(&mut self, success: bool) -> Option<bool> {
        if self.last == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.last = Some(success);
            self.run = 1;
        }
        let needed = if success {
            self.success_threshold
        } else {
            self.failure_threshold
        };
        (self.run >= needed).then_some(success)
    }
}

/// What the probes of one container instance say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStatus {
    /// The startup probe succeeded (true without one).
    pub started: bool,
    /// The readiness probe's settled result (true without one).
    pub ready: bool,
    /// A liveness or startup probe failed past its threshold: why. The
    /// container must be killed (and is restarted per restart policy).
    pub failed: Option<String>,
}

impl ProbeStatus {
    /// Before any probe ran: not started while a startup probe is
    /// pending, not ready while a readiness probe is.
    pub fn initial(has_startup: bool, has_readiness: bool) -> Self {
        Self {
            started: !has_startup,
            ready: !has_readiness,
            failed: None,
        }
    }

    /// `containerStatuses[].started` / `.ready` of a running container:
    /// readiness counts only once started.
    pub fn started_ready(&self) -> (bool, bool) {
        (self.started, self.started && self.ready)
    }
}

/// Applies a settled result of a `kind` probe to the status; returns
/// whether that probe keeps running (a startup probe stops once
/// succeeded; liveness and startup stop once failed — the container is
/// then killed).
pub fn apply(status: &mut ProbeStatus, kind: Kind, success: bool, message: &str) -> bool {
    match kind {
        Kind::Readiness => {
            status.ready = success;
            true
        }
        Kind::Startup if success => {
            status.started = true;
            false
        }
        Kind::Startup | Kind::Liveness if !success => {
            status.failed = Some(format!("{} probe failed: {message}", kind.as_str()));
            false
        }
        Kind::Startup | Kind::Liveness => true,
    }
}

/// One probe's outcome: success, and why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: bool,
    pub message: String,
}

impl Outcome {
    fn ok() -> Self {
        Self {
            success: true,
            message: String::new(),
        }
    }

    fn fail(message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
        }
    }
}

/// The request an HTTP probe sends.
pub fn http_request(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> String {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    if !has("host") {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_owned()
        };
        req.push_str(&format!("Host: {host}:{port}\r\n"));
    }
    if !has("user-agent") {
        req.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    if !has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    req
}

/// The status code of an HTTP response's status line.
pub fn http_status(response: &[u8]) -> Option<u16> {
    let line = response.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// Where network probes connect from.
#[derive(Debug, Clone, Default)]
pub struct Network {
    /// A network namespace to create sockets in (`None`: the agent's).
    pub netns: Option<PathBuf>,
}

impl Network {
    /// A TCP connection to `addr` from the probing namespace.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = match &self.netns {
            None if addr.is_ipv4() => TcpSocket::new_v4()?,
            None => TcpSocket::new_v6()?,
            Some(path) => socket_in(path, addr.is_ipv4()).await?,
        };
        socket.connect(addr).await
    }
}

/// A TCP socket made in the network namespace at `path` (a socket keeps
/// the namespace it was made in); the thread that enters it ends with it.
async fn socket_in(path: &Path, v4: bool) -> std::io::Result<TcpSocket> {
    use nix::{
        sched::{CloneFlags, setns},
        sys::socket::{AddressFamily, SockFlag, SockType, socket},
    };
    let file = std::fs::File::open(path)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let made = setns(&file, CloneFlags::CLONE_NEWNET).and_then(|()| {
            let family = if v4 {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            socket(
                family,
                SockType::Stream,
                SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                None,
            )
        });
        let _ = tx.send(made);
    });
    let fd = rx
        .await
        .map_err(|_| std::io::Error::other("the netns thread ended"))?
        .map_err(std::io::Error::from)?;
    Ok(TcpSocket::from_std_stream(std::net::TcpStream::from(fd)))
}

/// What a probe needs besides its spec.
#[derive(Debug, Clone)]
pub struct Target {
    pub container_id: String,
    pub pod_ip: Option<String>,
    pub runtime: RuntimeClient,
    pub network: Network,
}

fn address(host: Option<&str>, pod_ip: Option<&str>, port: u16) -> Result<SocketAddr, String> {
    let host = host.or(pod_ip).ok_or("the pod has no IP")?;
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("host {host:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Runs the probe once.
pub async fn run_once(spec: &ProbeSpec, target: &Target) -> Outcome {
    let timeout = spec.timeout;
    match &spec.action {
        Action::Exec { command } => {
            let mut runtime = target.runtime.clone();
            let cmd: Vec<&str> = command.iter().map(String::as_str).collect();
            match runtime.exec_sync(&target.container_id, &cmd, timeout).await {
                Ok(out) if out.exit_code == 0 => Outcome::ok(),
                Ok(out) => {
                    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&out.stderr));
                    Outcome::fail(format!(
                        "command {command:?} exited with {}: {}",
                        out.exit_code,
                        text.trim()
                    ))
                }
                Err(e) => Outcome::fail(format!("command {command:?}: {e}")),
            }
        }
        Action::Tcp { host, port } => {
            let addr = match address(host.as_deref(), target.pod_ip.as_deref(), *port) {
                Ok(a) => a,
                Err(e) => return Outcome::fail(e),
            };
            match tokio::time::timeout(timeout, target.network.connect(addr)).await {
                Ok(Ok(_)) => Outcome::ok(),
                Ok(Err(e)) => Outcome::fail(format!("dial tcp {addr}: {e}")),
                Err(_) => Outcome::fail(format!("dial tcp {addr}: i/o timeout")),
            }
        }
        Action::Http {
            scheme,
            host,
            port,
            path,
            headers,
        } => {
            if !scheme.eq_ignore_ascii_case("HTTP") {
                return Outcome::fail(format!("scheme {scheme} is not supported (only HTTP)"));
            }
            let addr = match address(host.as_deref(), target.pod_ip.as_deref(), *port) {
                Ok(a) => a,
                Err(e) => return Outcome::fail(e),
            };
            let request = http_request(&addr.ip().to_string(), *port, path, headers);
            let get = async {
                let mut stream = target.network.connect(addr).await?;
                stream.write_all(request.as_bytes()).await?;
                let mut response = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = stream.read(&mut chunk).await?;
                    if n == 0 {
                        break;
                    }
                    response.extend_from_slice(&chunk[..n]);
                    if response.len() > MAX_BODY || response.contains(&b'\n') {
                        break;
                    }
                }
                Ok::<_, std::io::Error>(response)
            };
            let url = format!("http://{addr}{path}");
            match tokio::time::timeout(timeout, get).await {
                Err(_) => Outcome::fail(format!("Get {url:?}: context deadline exceeded")),
                Ok(Err(e)) => Outcome::fail(format!("Get {url:?}: {e}")),
                Ok(Ok(response)) => match http_status(&response) {
                    Some(code) if (200..400).contains(&code) => Outcome::ok(),
                    Some(code) => {
                        Outcome::fail(format!("HTTP probe failed with statuscode: {code}"))
                    }
                    None => Outcome::fail(format!("Get {url:?}: malformed HTTP response")),
                },
            }
        }
        Action::Grpc { port, service } => {
            let addr = match address(None, target.pod_ip.as_deref(), *port) {
                Ok(a) => a,
                Err(e) => return Outcome::fail(e),
            };
            match tokio::time::timeout(timeout, grpc::check(&target.network, addr, service)).await {
                Err(_) => Outcome::fail(format!(
                    "timeout: health rpc did not complete within {}s",
                    timeout.as_secs()
                )),
                Ok(Err(e)) => Outcome::fail(e),
                Ok(Ok(grpc::SERVING)) => Outcome::ok(),
                Ok(Ok(status)) => Outcome::fail(format!(
                    "service unhealthy (responded with {})",
                    grpc::status_name(status)
                )),
            }
        }
    }
}

/// `grpc.health.v1.Health/Check` through tonic, with the two messages
/// of `health.proto` written out.
mod grpc {
    use std::net::SocketAddr;

    use tonic::transport::{Endpoint, Uri};

    use super::Network;

    pub const SERVING: i32 = 1;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HealthCheckRequest {
        #[prost(string, tag = "1")]
        pub service: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HealthCheckResponse {
        #[prost(int32, tag = "1")]
        pub status: i32,
    }

    pub fn status_name(status: i32) -> &'static str {
        match status {
            0 => "UNKNOWN",
            1 => "SERVING",
            2 => "NOT_SERVING",
            3 => "SERVICE_UNKNOWN",
            _ => "an unknown status",
        }
    }

    /// The serving status `addr` reports for `service`.
    pub async fn check(network: &Network, addr: SocketAddr, service: &str) -> Result<i32, String> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| format!("gRPC endpoint {addr}: {e}"))?;
        let network = network.clone();
        let channel = endpoint
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let network = network.clone();
                async move {
                    let stream = network.connect(addr).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .map_err(|e| format!("failed to connect service {addr:?} within the timeout: {e}"))?;
        let mut client = tonic::client::Grpc::new(channel);
        client
            .ready()
            .await
            .map_err(|e| format!("gRPC channel to {addr}: {e}"))?;
        let path =
            tonic::codegen::http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let response = client
            .unary(
                tonic::Request::new(HealthCheckRequest {
                    service: service.to_owned(),
                }),
                path,
                codec,
            )
            .await
            .map_err(|s| format!("health rpc failed: {} {}", s.code(), s.message()))?;
        Ok(response.into_inner().status)
    }
}

/// Runs one probe of one instance until it settles for good (startup
/// success, liveness/startup failure) or is aborted.
async fn run(
    kind: Kind,
    spec: ProbeSpec,
    target: Target,
    started_at: std::time::SystemTime,
    status: watch::Sender<ProbeStatus>,
    changed: Arc<Notify>,
) {
    // Probing starts `initialDelaySeconds` after the container started.
    let due = started_at + spec.initial_delay;
    if let Ok(wait) = due.duration_since(std::time::SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let mut results = Accumulator::new(spec.success_threshold, spec.failure_threshold);
    let mut tick = tokio::time::interval(spec.period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Liveness and readiness wait for the startup probe.
        if kind != Kind::Startup && !status.borrow().started {
            continue;
        }
        let outcome = run_once(&spec, &target).await;
        debug!(
            probe = kind.as_str(),
            success = outcome.success,
            "{}",
            outcome.message
        );
        let Some(settled) = results.observe(outcome.success) else {
            continue;
        };
        let mut keep = true;
        let modified = status.send_if_modified(|s| {
            let before = s.clone();
            keep = apply(s, kind, settled, &outcome.message);
            *s != before
        });
        if modified {
            info!(
                probe = kind.as_str(),
                success = settled,
                "probe result changed: {}",
                outcome.message
            );
            changed.notify_one();
        }
        if !keep {
            return;
        }
    }
}

/// A task aborted when dropped.
struct Task(JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The probes of one running container instance.
struct Instance {
    container_id: String,
    status: watch::Receiver<ProbeStatus>,
    _tasks: Vec<Task>,
}

/// The probes of one pod's containers, by container name.
pub struct PodProbes {
    network: Network,
    runtime: RuntimeClient,
    /// Woken when a probe result changes (the worker re-syncs).
    changed: Arc<Notify>,
    containers: HashMap<String, Instance>,
}

/// A container's spec'd probes, with defaults; a probe that cannot be
/// built fails every run with its error.
pub fn probes_of(container: &Container) -> Vec<(Kind, Result<ProbeSpec, ProbeError>)> {
    [
        (Kind::Startup, &container.startup_probe),
        (Kind::Liveness, &container.liveness_probe),
        (Kind::Readiness, &container.readiness_probe),
    ]
    .into_iter()
    .filter_map(|(kind, probe)| Some((kind, ProbeSpec::new(kind, probe.as_ref()?, container))))
    .collect()
}

impl PodProbes {
    pub fn new(runtime: RuntimeClient, network: Network) -> Self {
        Self {
            network,
            runtime,
            changed: Arc::new(Notify::new()),
            containers: HashMap::new(),
        }
    }

    /// Notified when a probe result changes.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Keeps `container`'s probes in step with its current instance:
    /// `running` is its container id and start time when it runs. Returns
    /// the probes' status of the running instance (`None`: no probes, or
    /// not running).
    pub fn update(
        &mut self,
        container: &Container,
        running: Option<(&str, std::time::SystemTime)>,
        pod_ip: Option<&str>,
    ) -> Option<ProbeStatus> {
        let Some((id, started_at)) = running else {
            self.containers.remove(&container.name);
            return None;
        };
        if let Some(instance) = self.containers.get(&container.name)
            && instance.container_id == id
        {
            return Some(instance.status.borrow().clone());
        }
        self.containers.remove(&container.name);
        let probes = probes_of(container);
        if probes.is_empty() {
            return None;
        }
        let has = |k: Kind| probes.iter().any(|(kind, _)| *kind == k);
        let initial = ProbeStatus::initial(has(Kind::Startup), has(Kind::Readiness));
        let (tx, rx) = watch::channel(initial.clone());
        let target = Target {
            container_id: id.to_owned(),
            pod_ip: pod_ip.map(str::to_owned),
            runtime: self.runtime.clone(),
            network: self.network.clone(),
        };
        let mut tasks = Vec::new();
        for (kind, spec) in probes {
            let span = info_span!("probe", container = container.name, probe = kind.as_str());
            let spec = match spec {
                Ok(s) => s,
                Err(e) => {
                    // A probe that cannot run fails, as the kubelet's does.
                    let mut failing = tx.borrow().clone();
                    apply(&mut failing, kind, false, &e.to_string());
                    tx.send_replace(failing);
                    continue;
                }
            };
            let task = tokio::spawn(
                run(
                    kind,
                    spec,
                    target.clone(),
                    started_at,
                    tx.clone(),
                    self.changed.clone(),
                )
                .instrument(span),
            );
            tasks.push(Task(task));
        }
        let status = rx.borrow().clone();
        self.containers.insert(
            container.name.clone(),
            Instance {
                container_id: id.to_owned(),
                status: rx,
                _tasks: tasks,
            },
        );
        Some(status)
    }

    /// The probe's own termination grace of the failed probe, if set.
    pub fn termination_grace(container: &Container, failed: &str) -> Option<Duration> {
        let kind = if failed.starts_with("startup") {
            Kind::Startup
        } else {
            Kind::Liveness
        };
        probes_of(container)
            .into_iter()
            .find(|(k, _)| *k == kind)
            .and_then(|(_, s)| s.ok()?.termination_grace)
    }

    /// Stops every probe.
    pub fn clear(&mut self) {
        self.containers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "c",
            "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9000}],
        }))
        .expect("container")
    }

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("probe")
    }

    #[test]
    fn defaults_are_kubernetes_defaults() {
        let p = probe(serde_json::json!({"exec": {"command": ["true"]}}));
        let spec = ProbeSpec::new(Kind::Readiness, &p, &container()).expect("spec");
        assert_eq!(spec.initial_delay, Duration::ZERO);
        assert_eq!(spec.period, Duration::from_secs(10));
        assert_eq!(spec.timeout, Duration::from_secs(1));
        assert_eq!(spec.success_threshold, 1);
        assert_eq!(spec.failure_threshold, 3);
        assert_eq!(
            spec.action,
            Action::Exec {
                command: vec!["true".to_owned()]
            }
        );
        let p = probe(serde_json::json!({
            "tcpSocket": {"port": 9000}, "initialDelaySeconds": 5, "periodSeconds": 2,
            "timeoutSeconds": 3, "successThreshold": 4, "failureThreshold": 6,
        }));
        let readiness = ProbeSpec::new(Kind::Readiness, &p, &container()).expect("spec");
        assert_eq!(readiness.initial_delay, Duration::from_secs(5));
        assert_eq!(readiness.period, Duration::from_secs(2));
        assert_eq!(readiness.timeout, Duration::from_secs(3));
        assert_eq!(
            (readiness.success_threshold, readiness.failure_threshold),
            (4, 6)
        );
        // Liveness and startup always succeed after one success.
        let liveness = ProbeSpec::new(Kind::Liveness, &p, &container()).expect("spec");
        assert_eq!(liveness.success_threshold, 1);
        assert_eq!(
            ProbeSpec::new(Kind::Liveness, &probe(serde_json::json!({})), &container()),
            Err(ProbeError::NoHandler)
        );
    }

    #[test]
    fn named_ports_resolve_from_the_container() {
        let c = container();
        let name = |s: &str| IntOrString::String(s.to_owned());
        assert_eq!(resolve_port(&name("http"), &c), Ok(8080));
        assert_eq!(resolve_port(&name("9000"), &c), Ok(9000));
        assert_eq!(resolve_port(&IntOrString::Int(81), &c), Ok(81));
        assert_eq!(
            resolve_port(&name("grpc"), &c),
            Err(ProbeError::UnknownPort("grpc".to_owned()))
        );
        assert_eq!(
            resolve_port(&IntOrString::Int(70000), &c),
            Err(ProbeError::BadPort(70000))
        );
        let p = probe(
            serde_json::json!({"httpGet": {"port": "http", "path": "healthz",
            "httpHeaders": [{"name": "X-Probe", "value": "1"}]}}),
        );
        let spec = ProbeSpec::new(Kind::Readiness, &p, &c).expect("spec");
        assert_eq!(
            spec.action,
            Action::Http {
                scheme: "HTTP".to_owned(),
                host: None,
                port: 8080,
                path: "healthz".to_owned(),
                headers: vec![("X-Probe".to_owned(), "1".to_owned())],
            }
        );
    }

    #[test]
    fn thresholds_settle_results() {
        let mut acc = Accumulator::new(2, 3);
        assert_eq!(acc.observe(true), None);
        assert_eq!(acc.observe(true), Some(true));
        assert_eq!(acc.observe(true), Some(true));
        assert_eq!(acc.observe(false), None);
        assert_eq!(acc.observe(false), None);
        // A success in between restarts the failure run.
        assert_eq!(acc.observe(true), None);
        assert_eq!(acc.observe(false), None);
        assert_eq!(acc.observe(false), None);
        assert_eq!(acc.observe(false), Some(false));
        let mut once = Accumulator::new(1, 1);
        assert_eq!(once.observe(false), Some(false));
        assert_eq!(once.observe(true), Some(true));
    }

    #[test]
    fn startup_gates_readiness_and_failures_kill() {
        let mut s = ProbeStatus::initial(true, true);
        assert_eq!(s.started_ready(), (false, false));
        // A readiness success before start does not make it ready.
        assert!(apply(&mut s, Kind::Readiness, true, ""));
        assert_eq!(s.started_ready(), (false, false));
        // Startup success: started, and the startup probe stops.
        assert!(!apply(&mut s, Kind::Startup, true, ""));
        assert_eq!(s.started_ready(), (true, true));
        assert!(apply(&mut s, Kind::Readiness, false, "no"));
        assert_eq!(s.started_ready(), (true, false));
        assert_eq!(s.failed, None);
        assert!(apply(&mut s, Kind::Liveness, true, ""));
        assert!(!apply(&mut s, Kind::Liveness, false, "exit 1"));
        assert_eq!(s.failed.as_deref(), Some("liveness probe failed: exit 1"));
        // Without probes: started and ready.
        assert_eq!(
            ProbeStatus::initial(false, false).started_ready(),
            (true, true)
        );
        assert_eq!(
            ProbeStatus::initial(false, true).started_ready(),
            (true, false)
        );
    }

    #[test]
    fn http_request_and_status_line() {
        let req = http_request("10.244.0.5", 8080, "/healthz", &[]);
        assert_eq!(
            req,
            "GET /healthz HTTP/1.1\r\nHost: 10.244.0.5:8080\r\nUser-Agent: kube-probe/1.33\r\n\
             Accept: */*\r\nConnection: close\r\n\r\n"
        );
        let req = http_request("10.0.0.1", 80, "x", &[("Host".into(), "svc".into())]);
        assert!(req.starts_with("GET /x HTTP/1.1\r\n"), "{req}");
        assert!(
            req.contains("Host: svc\r\n") && !req.contains("10.0.0.1"),
            "{req}"
        );
        assert_eq!(http_status(b"HTTP/1.1 200 OK\r\n\r\n"), Some(200));
        assert_eq!(http_status(b"HTTP/1.0 302 Found\r\n"), Some(302));
        assert_eq!(http_status(b"HTTP/1.1 503"), Some(503));
        assert_eq!(http_status(b"SSH-2.0-x\r\n"), None);
    }

    #[tokio::test]
    async fn tcp_and_http_probes_against_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            for code in ["200 OK", "500 Internal Server Error"] {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.1 {code}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await;
            }
        });
        // Never dialled: these probes do not exec.
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let runtime = RuntimeClient::new(channel, Duration::from_secs(1));
        let target = Target {
            container_id: "c".into(),
            pod_ip: Some("127.0.0.1".into()),
            runtime,
            network: Network::default(),
        };
        let spec = |action| ProbeSpec {
            action,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 1,
            termination_grace: None,
        };
        let http = spec(Action::Http {
            scheme: "HTTP".into(),
            host: None,
            port,
            path: "/".into(),
            headers: vec![],
        });
        assert!(run_once(&http, &target).await.success);
        let failed = run_once(&http, &target).await;
        assert!(!failed.success);
        assert!(failed.message.contains("500"), "{failed:?}");
        server.await.expect("server");
        // Nothing listens there any more.
        let tcp = spec(Action::Tcp { host: None, port });
        assert!(!run_once(&tcp, &target).await.success);
        let grpc = spec(Action::Grpc {
            port,
            service: String::new(),
        });
        assert!(!run_once(&grpc, &target).await.success);
    }

    /// A gRPC health server (HTTP/2 by hand): `SERVING`, or
    /// `NOT_SERVING` for a service whose name contains "down".
    async fn health_server() -> u16 {
        use http_body_util::BodyExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        assert_eq!(req.uri().path(), "/grpc.health.v1.Health/Check");
                        let body = req.into_body().collect().await?.to_bytes();
                        let down = body.windows(4).any(|w| w == b"down");
                        let message = [0u8, 0, 0, 0, 2, 0x08, if down { 2 } else { 1 }];
                        let mut trailers = hyper::HeaderMap::new();
                        trailers
                            .insert("grpc-status", hyper::header::HeaderValue::from_static("0"));
                        let frames = vec![
                            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(
                                bytes::Bytes::copy_from_slice(&message),
                            )),
                            Ok(hyper::body::Frame::trailers(trailers)),
                        ];
                        let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
                        let response = hyper::Response::builder()
                            .header("content-type", "application/grpc")
                            .body(body)
                            .expect("response");
                        Ok::<_, hyper::Error>(response)
                    },
                );
                tokio::spawn(
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        port
    }

    #[tokio::test]
    async fn grpc_health_check() {
        let port = health_server().await;
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let target = Target {
            container_id: "c".into(),
            pod_ip: Some("127.0.0.1".into()),
            runtime: RuntimeClient::new(channel, Duration::from_secs(1)),
            network: Network::default(),
        };
        let spec = |service: &str| ProbeSpec {
            action: Action::Grpc {
                port,
                service: service.to_owned(),
            },
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            success_threshold: 1,
            failure_threshold: 1,
            termination_grace: None,
        };
        let ok = run_once(&spec(""), &target).await;
        assert!(ok.success, "{ok:?}");
        let down = run_once(&spec("down"), &target).await;
        assert!(!down.success);
        assert!(down.message.contains("NOT_SERVING"), "{down:?}");
    }
}
