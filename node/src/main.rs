//! `keelson-node`: the node agent's command line.
//!
//! Lists only subcommands that work today; the kubelet and the kube-proxy
//! replacement add theirs as they land. `lb desired` reads the API only: it
//! shows what the kube-proxy replacement would program, nothing more.
//! `images import` puts local image archives into the node's containerd;
//! `images list` shows what its CRI plugin serves.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use keelson_node::{
    bpf::{self, ifstats::IfStats},
    proxy::{desired::NodeContext, show, watch},
};
use tracing::{info, warn};

#[derive(Parser)]
#[command(
    name = "keelson-node",
    version,
    about = "Keelson node agent: kubelet, CNI and an eBPF kube-proxy replacement",
    long_about = "Keelson node agent. One runs on every Linux host of a Keelson (or \
                  Kubernetes) cluster; its datapath runs in the kernel as eBPF programs."
)]
struct Cli {
    /// Log filter (tracing's EnvFilter syntax), e.g. `info` or `keelson_node=debug`.
    #[arg(long, env = "KEELSON_LOG", default_value = "info", global = true)]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Count ingress packets and bytes per interface with the `ifstats` TC
    /// classifier, printing totals every interval until Ctrl-C.
    Ifstats(IfstatsArgs),
    /// Run the eBPF kube-proxy replacement: follow Services and
    /// EndpointSlices through the Kubernetes API and balance ClusterIP
    /// connections at the socket level (cgroup connect/sendmsg hooks).
    Proxy(ProxyArgs),
    /// Inspect the kube-proxy replacement's load-balancer state.
    #[command(subcommand)]
    Lb(LbCommand),
    /// Observe the load balancer's flows (like `hubble observe`): the
    /// recent translated or refused service connections, from the running
    /// `keelson-node proxy`'s flow socket.
    Flows(FlowsArgs),
    /// Container images in the node's containerd: import local archives
    /// (`cargo xtask images` builds Keelson's), list what the runtime has.
    /// Images are never pulled.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// Run the kubelet's node lifecycle: register this host as a Node (or
    /// adopt the existing one), keep its status (capacity, addresses,
    /// conditions) current and renew its Lease in `kube-node-lease`,
    /// through the Kubernetes API. Pods are not run yet.
    Kubelet(KubeletArgs),
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Import OCI image archives (or `docker save` ones) through
    /// containerd's API: content, image records labelled for the CRI
    /// plugin, layers unpacked into the overlayfs snapshotter.
    Import(ImagesImportArgs),
    /// List the images the container runtime reports through CRI.
    List(ImagesListArgs),
}

#[derive(Args)]
struct ImagesImportArgs {
    /// Archives to import (plain tar: OCI layout or `docker save`).
    #[arg(required = true, value_name = "FILE.tar")]
    files: Vec<PathBuf>,
    /// containerd's socket (it serves both its own API and CRI).
    #[arg(long, value_name = "ENDPOINT", default_value = keelson_runtime::containerd::DEFAULT_ENDPOINT)]
    container_runtime_endpoint: String,
    /// containerd namespace to import into (the CRI plugin's is `k8s.io`).
    #[arg(long, default_value = keelson_node::images::CRI_NAMESPACE)]
    namespace: String,
}

#[derive(Args)]
struct ImagesListArgs {
    /// The container runtime's CRI socket.
    #[arg(long, value_name = "ENDPOINT", default_value = keelson_runtime::containerd::DEFAULT_ENDPOINT)]
    container_runtime_endpoint: String,
    /// Only this image (a reference such as `keelson.local/busybox:1`).
    #[arg(value_name = "IMAGE")]
    image: Option<String>,
}

#[derive(Args)]
struct KubeletArgs {
    /// Kubeconfig of the API server to register with (keelson-server or
    /// any Kubernetes API server).
    #[arg(long, value_name = "PATH")]
    kubeconfig: PathBuf,
    /// This node's name, also its `kubernetes.io/hostname` label and
    /// Hostname address (as the kubelet's --hostname-override). Defaults to
    /// the host name, lowercased.
    #[arg(long)]
    node_name: Option<String>,
    /// Pod CIDR written into the Node's `spec.podCIDR` when it has none (a
    /// CIDR already on the Node, e.g. from an IPAM controller, wins).
    #[arg(long, value_name = "CIDR", value_parser = parse_pod_cidr)]
    pod_cidr: Option<ipnet::IpNet>,
    /// The node's InternalIP address. Defaults to the first global IPv4
    /// address of an interface that is up.
    #[arg(long, value_name = "IP")]
    node_ip: Option<IpAddr>,
    /// Pods this node accepts (`status.capacity.pods`).
    #[arg(long, value_name = "N", default_value_t = keelson_node::kubelet::DEFAULT_MAX_PODS,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_pods: u32,
    /// The kubelet's state directory (created if missing); its filesystem
    /// is the node's `ephemeral-storage` and DiskPressure signal.
    #[arg(long, value_name = "DIR", default_value = keelson_node::kubelet::DEFAULT_ROOT_DIR)]
    root_dir: PathBuf,
    /// Labels to add at registration (`key=value,…`); in the kubernetes.io
    /// and k8s.io namespaces only node.kubernetes.io/…, kubelet.kubernetes.io/…
    /// and the well-known topology labels are allowed, as for kubelets.
    #[arg(long, value_name = "KEY=VALUE,...", default_value = "")]
    node_labels: String,
    /// How often the Node's status is written (immediately, too, when a
    /// condition changes).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    node_status_update_frequency: Duration,
    /// The Lease's `leaseDurationSeconds`.
    #[arg(long, value_name = "SECONDS", default_value_t = keelson_node::kubelet::lease::DEFAULT_LEASE_DURATION_SECONDS,
          value_parser = clap::value_parser!(i32).range(1..))]
    node_lease_duration_seconds: i32,
    /// How often the Lease is renewed (the kubelet renews at a quarter of
    /// the lease duration).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    lease_renew_interval: Duration,
    /// `status.nodeInfo.containerRuntimeVersion` until the CRI client
    /// reports the runtime's own.
    #[arg(long, hide = true, default_value = "")]
    container_runtime_version: String,
}

/// A pod CIDR: a network address with its prefix (no host bits).
fn parse_pod_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let net: ipnet::IpNet = text.parse().map_err(|e| format!("{e}"))?;
    if net.trunc() != net {
        return Err(format!(
            "{text} has host bits set (did you mean {}?)",
            net.trunc()
        ));
    }
    Ok(net)
}

#[derive(Args)]
struct FlowsArgs {
    /// Keep printing new flows as they happen.
    #[arg(long, short = 'f')]
    follow: bool,
    /// Only flows of this Service (NAMESPACE/NAME).
    #[arg(long, value_name = "NS/NAME")]
    service: Option<String>,
    /// Only flows with this verdict.
    #[arg(long, value_parser = ["forwarded", "no-backend", "dropped"])]
    verdict: Option<String>,
    /// Only flows to this backend IP (or from this source IP, when known).
    #[arg(long, value_name = "IP", conflicts_with = "pod")]
    ip: Option<IpAddr>,
    /// Only flows to or from this Pod (NAMESPACE/NAME): its IPv4 address,
    /// read from the API server, as `--ip` (a pod as a backend; as a
    /// client when its address is known: TC flows, bound sockets).
    #[arg(long, value_name = "NS/NAME", requires = "kubeconfig")]
    pod: Option<String>,
    /// Kubeconfig of the API server, to resolve `--pod`.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
    /// How many recent flows to print first (default: all the agent keeps).
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    /// Output format.
    #[arg(long, short = 'o', default_value = "table", value_parser = ["table", "json"])]
    output: String,
    /// The agent's flow socket.
    #[arg(long, value_name = "PATH", default_value = keelson_node::flows::DEFAULT_SOCKET)]
    socket: PathBuf,
}

#[derive(Args)]
struct ProxyArgs {
    /// Kubeconfig of the API server to follow (keelson-server or any
    /// Kubernetes API server).
    #[arg(long, value_name = "PATH", required_unless_present = "cleanup")]
    kubeconfig: Option<PathBuf>,
    /// Detach every program a previous run left attached (the socket
    /// programs' cgroup links and the NodePort TC links pinned under
    /// --bpf-dir) and exit, like kube-proxy's --cleanup. Maps stay pinned;
    /// remove --bpf-dir to drop them too.
    #[arg(long)]
    cleanup: bool,
    /// This node's name (defaults to the host name).
    #[arg(long)]
    node_name: Option<String>,
    /// An address node ports are served on (repeatable). Defaults to the
    /// InternalIP and ExternalIP addresses of this node's Node object.
    #[arg(long = "node-ip", value_name = "IP")]
    node_ips: Vec<IpAddr>,
    /// The cluster's service CIDR: gets an `unreachable` route so a VIP
    /// packet that misses the load balancer never leaves the host.
    #[arg(long, default_value = "10.96.0.0/12")]
    service_cidr: ipnet::Ipv4Net,
    /// cgroup v2 directory to attach the socket programs to (default: the
    /// cgroup v2 root, `/sys/fs/cgroup/unified` on hybrid hosts).
    #[arg(long, value_name = "DIR")]
    cgroup: Option<PathBuf>,
    /// bpffs directory for the pinned maps and links.
    #[arg(long, value_name = "DIR", default_value = keelson_node::bpf::sock_lb::DEFAULT_PIN_DIR)]
    bpf_dir: PathBuf,
    /// Interfaces to serve NodePort/ExternalIP/LoadBalancer frontends on
    /// with the TC program (comma-separated: the external interface and
    /// those facing backends). Sets ip_forward, accept_local and rp_filter
    /// for them. Empty: only ClusterIP (socket level) is served.
    #[arg(long, value_delimiter = ',', value_name = "IFACE")]
    devices: Vec<String>,
    /// Capacity of the service map: frontends × (1 + backends) entries
    /// (Cilium's `--bpf-lb-map-max`). Changing it recreates the map.
    #[arg(long, value_name = "ENTRIES", default_value_t = keelson_ebpf_common::lb::MAX_SERVICE_ENTRIES)]
    lb_map_max: u32,
    /// Capacity of the backend map (distinct endpoint address/port pairs).
    #[arg(long, value_name = "ENTRIES", default_value_t = keelson_ebpf_common::lb::MAX_BACKENDS)]
    lb_backend_map_max: u32,
    /// Where to serve Prometheus metrics (`GET /metrics`); `off` disables.
    #[arg(long, default_value = keelson_node::metrics::DEFAULT_BIND)]
    metrics_bind_address: String,
    /// Unix socket serving flows to `keelson-node flows`; `off` disables.
    #[arg(long, value_name = "PATH", default_value = keelson_node::flows::DEFAULT_SOCKET)]
    flows_socket: PathBuf,
}

#[derive(Subcommand)]
enum LbCommand {
    /// List the cluster's Services and EndpointSlices once and print the
    /// load-balancer state this node should have: one row per frontend
    /// (cluster IP, node port, external IP, load-balancer VIP), one line per
    /// backend. Reads the API only; programs nothing.
    Desired(LbDesiredArgs),
    /// Print the services and backends as the datapath holds them (read
    /// from the pinned BPF maps), like `cilium service list`.
    List(LbListArgs),
}

#[derive(Args)]
struct LbDesiredArgs {
    /// Kubeconfig to reach the API server with (its current context).
    #[arg(long, value_name = "PATH")]
    kubeconfig: PathBuf,
    /// This node's name, for `internalTrafficPolicy`/`externalTrafficPolicy:
    /// Local`. Defaults to the host name, lowercased (as kube-proxy does).
    #[arg(long)]
    node_name: Option<String>,
    /// An address node ports are served on (repeatable). Defaults to the
    /// InternalIP and ExternalIP addresses of this node's Node object.
    #[arg(long = "node-ip", value_name = "IP")]
    node_ips: Vec<IpAddr>,
}

#[derive(Args)]
struct LbListArgs {
    /// bpffs directory of the pinned maps.
    #[arg(long, value_name = "DIR", default_value = keelson_node::bpf::sock_lb::DEFAULT_PIN_DIR)]
    bpf_dir: PathBuf,
}

#[derive(Args)]
struct IfstatsArgs {
    /// Interfaces to attach to (in this process's network namespace).
    #[arg(required = true, value_name = "INTERFACE")]
    interfaces: Vec<String>,
    /// Time between two reports, e.g. `500ms`, `2s`.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Stop after this many reports.
    #[arg(long)]
    count: Option<u64>,
    /// Also pin the counter map at this path on bpffs (removed on exit), so
    /// `bpftool map dump pinned PATH` can read it meanwhile.
    #[arg(long, value_name = "PATH")]
    pin: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Ifstats(args) => ifstats(args).await,
        Command::Lb(LbCommand::Desired(args)) => lb_desired(args).await,
        Command::Lb(LbCommand::List(args)) => lb_list(args),
        Command::Proxy(args) => proxy(args).await,
        Command::Flows(args) => flows(args).await,
        Command::Images(ImagesCommand::Import(args)) => images_import(args).await,
        Command::Images(ImagesCommand::List(args)) => images_list(args).await,
        Command::Kubelet(args) => kubelet(args).await,
    }
}

async fn images_import(args: ImagesImportArgs) -> Result<()> {
    use keelson_node::images;
    for file in &args.files {
        let imported =
            images::import_archive(&args.container_runtime_endpoint, &args.namespace, file)
                .await
                .with_context(|| format!("importing {}", file.display()))?;
        for image in imported {
            // The CRI plugin learns of images from containerd's events:
            // wait until it serves this one, so a pod can use it at once.
            if args.namespace == images::CRI_NAMESPACE {
                images::wait_visible_to_cri(
                    &args.container_runtime_endpoint,
                    &image.name,
                    Duration::from_secs(10),
                )
                .await?;
            }
            println!(
                "imported {} (id {}, {}; {} blobs written, {} layers unpacked)",
                image.name,
                image.id,
                human_size(image.size),
                image.blobs_written,
                image.layers_unpacked
            );
        }
    }
    Ok(())
}

async fn images_list(args: ImagesListArgs) -> Result<()> {
    let mut cri = keelson_node::cri::Cri::connect(&args.container_runtime_endpoint).await?;
    let mut images = cri.images.list_images(args.image.as_deref()).await?;
    images.sort_by(|a, b| a.repo_tags.cmp(&b.repo_tags));
    println!("{:<48} {:<13} {:>11}", "IMAGE", "IMAGE ID", "SIZE");
    for image in images {
        let id = image.id.strip_prefix("sha256:").unwrap_or(&image.id);
        let names = if image.repo_tags.is_empty() {
            image.repo_digests.clone()
        } else {
            image.repo_tags.clone()
        };
        for name in names {
            println!(
                "{name:<48} {:<13} {:>11}",
                id.get(..12).unwrap_or(id),
                human_size(image.size)
            );
        }
    }
    Ok(())
}

/// Bytes as people read them (`1.2 MiB`).
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

async fn flows(args: FlowsArgs) -> Result<()> {
    use keelson_node::flows::{client, record::FlowRequest};
    let ip = match (&args.pod, &args.kubeconfig) {
        (Some(pod), Some(kubeconfig)) => Some(resolve_pod(pod, kubeconfig).await?),
        _ => args.ip,
    };
    let request = FlowRequest {
        follow: args.follow,
        service: args.service,
        verdict: args.verdict,
        ip,
        last: args.last,
    };
    request.filter()?;
    let output = if args.output == "json" {
        client::Output::Json
    } else {
        client::Output::Table
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match client::observe(&args.socket, &request, output, &mut out) {
        Err(client::ClientError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}

fn lb_list(args: LbListArgs) -> Result<()> {
    let maps = keelson_node::bpf::sock_lb::LbMaps::open(&args.bpf_dir).with_context(|| {
        format!(
            "opening the pinned maps in {} (is `keelson-node proxy` running?)",
            args.bpf_dir.display()
        )
    })?;
    let live = keelson_node::proxy::maps::live_services(&maps)?;
    print!("{}", show::live_table(&live));
    Ok(())
}

/// The host name, lower-cased, as kubelet and kube-proxy default it.
fn default_node_name() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name (or pass --node-name)")?
        .trim()
        .to_lowercase())
}

async fn proxy(args: ProxyArgs) -> Result<()> {
    if args.cleanup {
        let devices =
            keelson_node::proxy::datapath::detach_all(&args.bpf_dir).with_context(|| {
                format!(
                    "detaching the programs pinned in {}",
                    args.bpf_dir.display()
                )
            })?;
        info!(bpf_dir = %args.bpf_dir.display(), nodeport_devices = ?devices, "detached the proxy's programs");
        return Ok(());
    }
    let kubeconfig = args.kubeconfig.context("--kubeconfig is required")?;
    let cgroup = match args.cgroup {
        Some(dir) => dir,
        None => keelson_node::bpf::sock_lb::cgroup2_mount()
            .context("finding the cgroup v2 mount")?
            .context("no cgroup v2 hierarchy is mounted; pass --cgroup")?,
    };
    let config = keelson_node::proxy::agent::AgentConfig {
        kubeconfig,
        node_name: match args.node_name {
            Some(name) => name,
            None => default_node_name()?,
        },
        node_ips: args.node_ips,
        service_cidr: args.service_cidr,
        cgroup,
        pin_dir: args.bpf_dir,
        metrics_bind: (args.metrics_bind_address != "off").then_some(args.metrics_bind_address),
        unreachable_route: true,
        devices: args.devices,
        capacity: keelson_node::bpf::sock_lb::LbCapacity {
            services: args.lb_map_max,
            backends: args.lb_backend_map_max,
        },
        flows_socket: (args.flows_socket.as_os_str() != "off").then_some(args.flows_socket),
    };
    let shutdown = tokio::signal::ctrl_c();
    tokio::select! {
        result = keelson_node::proxy::agent::run(config) => result.context("proxy"),
        _ = shutdown => {
            info!("interrupted; the pinned programs keep balancing until the next start");
            Ok(())
        }
    }
}

async fn kubelet(args: KubeletArgs) -> Result<()> {
    use keelson_node::kubelet::{self, KubeletConfig, node::parse_node_labels};
    use tokio::signal::unix::{SignalKind, signal};
    // Installed first, so a signal during start-up stops it cleanly too.
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let node_labels =
        parse_node_labels(&args.node_labels).map_err(|e| anyhow::anyhow!("--node-labels: {e}"))?;
    let config = KubeletConfig {
        kubeconfig: args.kubeconfig,
        node_name: match args.node_name {
            Some(name) => name,
            None => default_node_name()?,
        },
        node_ip: args.node_ip,
        pod_cidr: args.pod_cidr,
        max_pods: args.max_pods,
        root_dir: args.root_dir,
        node_labels,
        container_runtime_version: args.container_runtime_version,
        node_status_update_frequency: args.node_status_update_frequency,
        lease_duration_seconds: args.node_lease_duration_seconds,
        lease_renew_interval: args.lease_renew_interval,
    };
    tokio::select! {
        result = kubelet::run(config) => result.context("kubelet"),
        _ = sigterm.recv() => {
            info!(signal = "SIGTERM", "stopping; the Node and its Lease stay");
            Ok(())
        }
        _ = sigint.recv() => {
            info!(signal = "SIGINT", "stopping; the Node and its Lease stay");
            Ok(())
        }
    }
}

/// The IPv4 address of the pod `NS/NAME` (the flows datapath is IPv4).
async fn resolve_pod(pod: &str, kubeconfig: &std::path::Path) -> Result<IpAddr> {
    let Some((namespace, name)) = pod
        .split_once('/')
        .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains('/'))
    else {
        bail!("--pod {pod:?}: expected NAMESPACE/NAME");
    };
    let client = watch::client_from_kubeconfig(kubeconfig).await?;
    let ips = watch::pod_ips(&client, namespace, name).await?;
    ips.iter()
        .copied()
        .find(IpAddr::is_ipv4)
        .with_context(|| format!("pod {pod} has no IPv4 address ({ips:?})"))
}

async fn lb_desired(args: LbDesiredArgs) -> Result<()> {
    let client = watch::client_from_kubeconfig(&args.kubeconfig).await?;
    let node_name = match args.node_name {
        Some(name) => name,
        None => default_node_name()?,
    };
    let node_ips = if args.node_ips.is_empty() {
        let ips = watch::node_ips(&client, &node_name).await?;
        if ips.is_empty() {
            warn!(node = %node_name, "no Node object with addresses; no node ports listed (pass --node-ip)");
        }
        ips
    } else {
        args.node_ips
    };
    let node = NodeContext::new(node_name, node_ips);
    let state = watch::snapshot(&client, &node).await?;
    print!("{}", show::table(&state));
    Ok(())
}

async fn ifstats(args: IfstatsArgs) -> Result<()> {
    if args.interval.is_zero() {
        bail!("--interval must be greater than zero");
    }
    let mut stats = IfStats::load().context("loading the ifstats program")?;
    for interface in &args.interfaces {
        stats
            .attach(interface)
            .with_context(|| format!("attaching ifstats to {interface}"))?;
    }
    let _pin = match &args.pin {
        Some(path) => {
            if path.starts_with(bpf::BPFFS) {
                bpf::ensure_bpffs(std::path::Path::new(bpf::BPFFS))?;
            }
            stats.pin_map(path)?;
            Some(PinGuard(path.clone()))
        }
        None => None,
    };

    let mut ticker = tokio::time::interval(args.interval);
    ticker.tick().await;
    let mut reports = 0u64;
    println!(
        "{:<16} {:>8} {:>14} {:>16}",
        "INTERFACE", "IFINDEX", "PACKETS", "BYTES"
    );
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = tokio::signal::ctrl_c() => {
                info!("interrupted; detaching");
                return Ok(());
            }
        }
        for (ifindex, counters) in stats.totals()? {
            let name = interface_name(ifindex).unwrap_or_else(|| "?".to_owned());
            println!(
                "{name:<16} {ifindex:>8} {:>14} {:>16}",
                counters.packets, counters.bytes
            );
        }
        reports += 1;
        if args.count.is_some_and(|count| reports >= count) {
            return Ok(());
        }
    }
}

/// Removes a pinned map when the command ends.
struct PinGuard(PathBuf);

impl Drop for PinGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn interface_name(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `buf` holds IF_NAMESIZE bytes as if_indextoname requires.
    let ptr = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: on success the kernel wrote a NUL-terminated name into `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}
