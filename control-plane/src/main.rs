//! `keelson-server`: the control plane's command line. Opens the store
//! (embedded SQLite by default, etcd with `--store etcd`), creates the PKI
//! and `admin.kubeconfig` on first start, and serves the Kubernetes API on
//! HTTPS with the built-in objects and the namespace controller running.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    ops::RangeInclusive,
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use keelson_control_plane::{
    apiserver::{
        allocator::Allocator, authn::Authenticator, bootstrap, handler::ApiHandler,
        objects::ObjectService, pki, server, watch_cache::WatchCache,
    },
    controllers,
    storage::{Store, etcd::EtcdStore, sqlite::SqliteStore},
};
use tracing::{info, warn};

/// Recent events kept for watchers resuming from a past revision. Each
/// holds the new and the previous value, so this bounds the cache's memory
/// (~16 MiB at 1 KiB objects); older resumes get 410 and relist.
const WATCH_CACHE_EVENTS: usize = 8192;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StoreKind {
    /// One SQLite file in the data dir (the default).
    Sqlite,
    /// An etcd v3 cluster (`--etcd-endpoints`).
    Etcd,
}

#[derive(Parser)]
#[command(
    name = "keelson-server",
    version,
    about = "Keelson control plane: Kubernetes API server, store, scheduler and controllers",
    long_about = "Keelson control plane: serves the Kubernetes API over HTTPS in front of the cluster \
                  store (embedded SQLite by default, etcd with --store etcd). On first start it creates \
                  a CA, a serving certificate and an admin client certificate in the data dir, and writes \
                  <data-dir>/admin.kubeconfig for kubectl."
)]
struct Cli {
    /// Where the store (SQLite), certificates and admin.kubeconfig live.
    #[arg(
        long,
        default_value = "/var/lib/keelson/server",
        env = "KEELSON_DATA_DIR"
    )]
    data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// HTTPS port (0 picks a free one; the kubeconfig gets the real port).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// Address other cluster members reach this server at (the
    /// `kubernetes` Service's endpoint).
    #[arg(long, default_value = "127.0.0.1")]
    advertise_address: IpAddr,
    /// Extra names or IPs for the serving certificate.
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_sans: Vec<String>,
    /// Where cluster state lives.
    #[arg(long, value_enum, default_value = "sqlite")]
    store: StoreKind,
    /// etcd client URLs, comma-separated (with `--store etcd`).
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    etcd_endpoints: Vec<String>,
    /// Static bearer tokens: CSV lines `token,user,uid,"group1,group2"`.
    #[arg(long, value_name = "FILE")]
    token_auth_file: Option<PathBuf>,
    /// Range ClusterIPs come from.
    #[arg(
        long,
        alias = "service-cluster-ip-range",
        default_value = "10.96.0.0/12"
    )]
    service_cidr: ipnet::Ipv4Net,
    /// Range NodePorts come from, `first-last`.
    #[arg(long, default_value = "30000-32767", value_parser = parse_port_range)]
    service_node_port_range: RangeInclusive<u16>,
    /// Log filter (tracing's EnvFilter syntax).
    #[arg(long, env = "KEELSON_LOG", default_value = "info")]
    log: String,
}

fn parse_port_range(s: &str) -> Result<RangeInclusive<u16>, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or("expected first-last, e.g. 30000-32767")?;
    let a: u16 = a.trim().parse().map_err(|_| format!("bad port {a:?}"))?;
    let b: u16 = b.trim().parse().map_err(|_| format!("bad port {b:?}"))?;
    if a == 0 || a > b {
        return Err(format!("{a}-{b} is not a valid port range"));
    }
    Ok(a..=b)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("--log")?)
        .with_writer(std::io::stderr)
        .init();
    if cli.store == StoreKind::Etcd && cli.etcd_endpoints.is_empty() {
        bail!("--store etcd needs --etcd-endpoints");
    }
    std::fs::create_dir_all(&cli.data_dir)
        .with_context(|| format!("creating the data dir {}", cli.data_dir.display()))?;

    let store: Arc<dyn Store> = match cli.store {
        StoreKind::Sqlite => {
            let path = cli.data_dir.join("state.db");
            info!(path = %path.display(), "opening the embedded store");
            Arc::new(
                SqliteStore::open(&path).with_context(|| format!("opening {}", path.display()))?,
            )
        }
        StoreKind::Etcd => {
            info!(endpoints = ?cli.etcd_endpoints, "connecting to etcd");
            Arc::new(
                EtcdStore::connect(&cli.etcd_endpoints)
                    .await
                    .context("connecting to etcd")?,
            )
        }
    };

    let allocator = Allocator::new(
        store.clone(),
        cli.service_cidr,
        cli.service_node_port_range.clone(),
    );
    allocator
        .repair()
        .await
        .context("repairing service allocations")?;
    let cache = WatchCache::start(store.clone(), WATCH_CACHE_EVENTS, Duration::from_secs(10))
        .await
        .context("starting the watch cache")?;
    let objects = Arc::new(ObjectService::new(store.clone(), cache.clone(), allocator));

    let listener =
        tokio::net::TcpListener::bind(SocketAddr::new(cli.bind_address, cli.secure_port))
            .await
            .with_context(|| format!("listening on {}:{}", cli.bind_address, cli.secure_port))?;
    let port = listener.local_addr()?.port();

    bootstrap::run(&objects, cli.advertise_address, port)
        .await
        .context("creating the built-in namespaces and the kubernetes Service")?;
    tokio::spawn(controllers::namespace::run(objects.clone(), cache.clone()));
    tokio::spawn(compaction(store.clone()));

    let mut sans = cli.tls_sans.clone();
    sans.push(cli.advertise_address.to_string());
    sans.push(objects.allocator().first_ip().to_string());
    if !cli.bind_address.is_unspecified() {
        sans.push(cli.bind_address.to_string());
    }
    let pki = pki::ensure(&cli.data_dir, &sans).context("creating certificates")?;
    let host = if cli.bind_address.is_unspecified() || cli.bind_address.is_loopback() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        cli.bind_address
    };
    let url = format!("https://{}", SocketAddr::new(host, port));
    let kubeconfig = cli.data_dir.join("admin.kubeconfig");
    pki::write_kubeconfig(&kubeconfig, &url, &pki).context("writing admin.kubeconfig")?;
    let tls = server::tls_config(&pki).context("TLS configuration")?;
    let authn =
        Arc::new(Authenticator::new(cli.token_auth_file.as_deref()).context("--token-auth-file")?);
    let handler = Arc::new(ApiHandler::new(
        objects,
        format!("{}:{port}", cli.advertise_address),
    ));

    println!("keelson-server: serving the Kubernetes API on {url}");
    println!("keelson-server: kubeconfig at {}", kubeconfig.display());
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
        info!("shutting down");
    };
    server::serve(listener, tls, authn, handler, shutdown).await?;
    Ok(())
}

/// Compacts history every 5 minutes to the revision seen 5 minutes before,
/// as kube-apiserver does for etcd.
async fn compaction(store: Arc<dyn Store>) {
    let every = Duration::from_secs(300);
    let mut previous = None;
    loop {
        tokio::time::sleep(every).await;
        if let Some(revision) = previous
            && let Err(e) = store.compact(revision).await
        {
            warn!(error = %e, revision, "compaction failed");
        }
        previous = store.current_revision().await.ok();
    }
}
