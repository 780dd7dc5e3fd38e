//! Prometheus metrics of the node agent, served as text on the metrics
//! port (`GET /metrics`, like kube-proxy's `--metrics-bind-address`,
//! default 127.0.0.1:10249). One [`Registry`] per agent; each component
//! registers its metrics here and updates them as it works.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    sync::Arc,
    time::Duration,
};

use prometheus_client::{
    encoding::text::encode,
    metrics::{counter::Counter, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tracing::{debug, warn};

/// Default `--metrics-bind-address`.
pub const DEFAULT_BIND: &str = "127.0.0.1:10249";

/// The load balancer's own metrics.
#[derive(Clone)]
pub struct ProxyMetrics {
    /// Completed syncs of the desired state into the BPF maps.
    pub syncs: Counter,
    /// Failed syncs (retried).
    pub sync_errors: Counter,
    /// Seconds from a desired-state change to the maps holding it.
    pub sync_duration: Histogram,
    /// Service frontends programmed.
    pub frontends: Gauge,
    /// Backends programmed.
    pub backends: Gauge,
}

impl ProxyMetrics {
    /// Creates the metrics and registers them under `keelson_proxy_`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            syncs: Counter::default(),
            sync_errors: Counter::default(),
            sync_duration: Histogram::new([
                0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0,
            ]),
            frontends: Gauge::default(),
            backends: Gauge::default(),
        };
        let sub = registry.sub_registry_with_prefix("keelson_proxy");
        sub.register(
            "syncs",
            "Syncs of the desired state into the BPF maps",
            metrics.syncs.clone(),
        );
        sub.register(
            "sync_errors",
            "Failed syncs of the BPF maps",
            metrics.sync_errors.clone(),
        );
        sub.register(
            "sync_duration_seconds",
            "Time to write one desired-state change into the BPF maps",
            metrics.sync_duration.clone(),
        );
        sub.register(
            "frontends",
            "Service frontends programmed in the datapath",
            metrics.frontends.clone(),
        );
        sub.register(
            "backends",
            "Backends programmed in the datapath",
            metrics.backends.clone(),
        );
        metrics
    }
}

/// The registry rendered in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    if let Err(e) = encode(&mut out, registry) {
        warn!(error = %e, "encoding metrics");
    }
    out
}

/// Serves `GET /metrics` (and `/healthz`) on `listener` until the process
/// ends, one short-lived thread per connection. Blocking and tiny on
/// purpose: the scrape path must not depend on the async runtime's health.
pub fn serve(listener: TcpListener, registry: Arc<Registry>) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let registry = registry.clone();
        std::thread::spawn(move || {
            if let Err(e) = answer(stream, &registry) {
                debug!(error = %e, "metrics connection");
            }
        });
    }
}

fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&request);
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let (status, content_type, body) = match path {
        "/metrics" => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(registry),
        ),
        "/healthz" => ("200 OK", "text/plain", "ok".to_owned()),
        _ => ("404 Not Found", "text/plain", "not found\n".to_owned()),
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_returns_registered_metrics() {
        let mut registry = Registry::default();
        let metrics = ProxyMetrics::register(&mut registry);
        metrics.syncs.inc();
        metrics.frontends.set(3);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Arc::new(registry);
        std::thread::spawn(move || serve(listener, registry));
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains("keelson_proxy_syncs_total 1"),
            "{response}"
        );
        assert!(response.contains("keelson_proxy_frontends 3"), "{response}");
    }
}
