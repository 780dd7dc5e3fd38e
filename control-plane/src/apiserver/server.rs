//! The API server's front door: TLS accept loop, HTTP/1.1 and HTTP/2 on one
//! port (ALPN), per-request authentication and request logging, graceful
//! shutdown.
//!
//! It owns connections and nothing behind them: every authenticated request
//! is passed to a [`Handler`] with its [`UserInfo`]. Requests without valid
//! credentials get a 401 `Status` here and never reach the handler, except
//! `GET` of the health endpoints (`/healthz`, `/livez`, `/readyz` and their
//! subpaths) and `/version`, which reach it as `system:anonymous`. A request
//! carrying a bearer token that matches no one is a 401 everywhere, as in
//! kube-apiserver.

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::FutureExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::{body::Incoming, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use rustls::{
    RootCertStore,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::WebPkiClientVerifier,
};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};
use tracing::{Instrument, debug, error, field, info_span, warn};

use super::{
    Body,
    authn::{Authenticator, UserInfo},
    full,
    pki::{self, Pki, PkiError},
    status::ApiError,
};

/// What serves authenticated requests.
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, req: Request<Incoming>, user: UserInfo) -> Response<Body>;
}

/// The TCP peer of a request, in its extensions for handlers that want it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Tunables of [`serve_with_options`]; [`Default`] is what [`serve`] uses.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// A client must finish the TLS handshake within this.
    pub handshake_timeout: Duration,
    /// After shutdown is requested, in-flight requests get this long before
    /// their connections are dropped (watch streams never finish on their
    /// own).
    pub shutdown_grace: Duration,
    /// HTTP/1.1: the request head must arrive within this.
    pub header_read_timeout: Duration,
    /// HTTP/2: streams per connection (each watch holds one).
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: ping an idle connection this often ...
    pub http2_keep_alive_interval: Duration,
    /// ... and drop it when a ping is not answered within this.
    pub http2_keep_alive_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
            header_read_timeout: Duration::from_secs(30),
            http2_max_concurrent_streams: 1000,
            http2_keep_alive_interval: Duration::from_secs(30),
            http2_keep_alive_timeout: Duration::from_secs(20),
        }
    }
}

/// The server's TLS configuration: the serving certificate from `pki`, ALPN
/// `h2` and `http/1.1`, and client certificates verified against the
/// cluster CA when presented (optional: tokens and anonymous health checks
/// need none). Uses the ring provider explicitly.
pub fn tls_config(pki: &Pki) -> Result<Arc<rustls::ServerConfig>, PkiError> {
    let provider = pki::provider();
    let ca_path = pki.dir.join(pki::CA_CERT_FILE);
    let cert_path = pki.dir.join(pki::SERVING_CERT_FILE);
    let key_path = pki.dir.join(pki::SERVING_KEY_FILE);
    let invalid = |path: &std::path::Path, reason: String| PkiError::Invalid {
        path: path.to_owned(),
        reason,
    };

    let ca = CertificateDer::from_pem_slice(pki.ca_cert_pem.as_bytes())
        .map_err(|e| invalid(&ca_path, format!("not a PEM certificate: {e}")))?;
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;

    let chain = CertificateDer::pem_slice_iter(pki.serving_cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&cert_path, format!("not a PEM certificate: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(&cert_path, "no certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key_pem.as_bytes())
        .map_err(|e| invalid(&key_path, format!("not a PEM private key: {e}")))?;

    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves HTTPS on `listener` until `shutdown` resolves, with
/// [`ServeOptions::default`]. See [`serve_with_options`].
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    authn: Arc<Authenticator>,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_options(
        listener,
        tls,
        authn,
        handler,
        shutdown,
        ServeOptions::default(),
    )
    .await
}

/// Serves HTTPS on `listener` until `shutdown` resolves: one task per
/// connection, HTTP/1.1 or HTTP/2 as ALPN chose. On shutdown it stops
/// accepting, asks every connection to finish (HTTP/2 GOAWAY, HTTP/1.1
/// close after the current response), waits up to
/// [`ServeOptions::shutdown_grace`], then drops whatever is left.
///
/// Errors on individual connections (handshakes, resets) are logged, never
/// returned; accept errors (e.g. out of file descriptors) are logged and
/// retried after a pause.
pub async fn serve_with_options(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    authn: Arc<Authenticator>,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    let shared = Arc::new(Shared {
        acceptor: tokio_rustls::TlsAcceptor::from(tls),
        builders: Builders::new(&options),
        authn,
        handler,
        handshake_timeout: options.handshake_timeout,
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    tracing::info!(address = %local, "API server listening");

    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    if let Err(e) = tcp.set_nodelay(true) {
                        debug!(%peer, error = %e, "setting TCP_NODELAY");
                    }
                    let span = info_span!("connection", %peer);
                    connections.spawn(
                        connection(shared.clone(), tcp, peer, stop_rx.clone()).instrument(span),
                    );
                }
                Err(e) => {
                    warn!(error = %e, "accepting a connection failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done
                    && e.is_panic()
                {
                    error!(error = %e, "a connection task panicked");
                }
            }
        }
    }

    drop(listener);
    let open = connections.len();
    tracing::info!(address = %local, connections = open, "API server shutting down");
    // Connections hold receivers; a send error only means none is left.
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(options.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            connections = connections.len(),
            grace = ?options.shutdown_grace,
            "connections still open after the shutdown grace period; dropping them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    tracing::info!(address = %local, "API server stopped");
    Ok(())
}

/// What every connection task shares.
struct Shared {
    acceptor: tokio_rustls::TlsAcceptor,
    builders: Builders,
    authn: Arc<Authenticator>,
    handler: Arc<dyn Handler>,
    handshake_timeout: Duration,
}

/// Connection builders per negotiated protocol: ALPN decides, and a client
/// that negotiated nothing gets protocol detection.
struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
    detect: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(options: &ServeOptions) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_read_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(options.http2_max_concurrent_streams)
            .keep_alive_interval(options.http2_keep_alive_interval)
            .keep_alive_timeout(options.http2_keep_alive_timeout);
        Self {
            http1: builder.clone().http1_only(),
            http2: builder.clone().http2_only(),
            detect: builder,
        }
    }

    fn for_alpn(&self, alpn: Option<&[u8]>) -> &auto::Builder<TokioExecutor> {
        match alpn {
            Some(b"h2") => &self.http2,
            Some(b"http/1.1") => &self.http1,
            _ => &self.detect,
        }
    }
}

/// Per-connection state the request service needs.
struct ConnectionContext {
    shared: Arc<Shared>,
    peer: SocketAddr,
    /// The identity in the verified client certificate, if any: it cannot
    /// change during a connection, so it is extracted once.
    cert_user: Option<UserInfo>,
}

async fn connection(
    shared: Arc<Shared>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(shared.handshake_timeout, shared.acceptor.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                debug!(error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                debug!(timeout = ?shared.handshake_timeout, "TLS handshake timed out");
                return;
            }
        },
        () = stopping(&mut stop) => return,
    };

    let (_, session) = tls.get_ref();
    let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
    let cert_user = session
        .peer_certificates()
        .and_then(|certs| shared.authn.authenticate(Some(certs), None));
    debug!(
        alpn = alpn.as_deref().map(String::from_utf8_lossy).as_deref(),
        cert_user = cert_user.as_ref().map(|u| u.name.as_str()),
        "TLS established"
    );

    let context = Arc::new(ConnectionContext {
        shared: shared.clone(),
        peer,
        cert_user,
    });
    let service = service_fn(move |req| {
        let context = context.clone();
        async move { Ok::<_, Infallible>(respond(&context, req).await) }
    });
    let builder = shared.builders.for_alpn(alpn.as_deref());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    let mut conn = std::pin::pin!(conn);

    tokio::select! {
        result = conn.as_mut() => {
            if let Err(e) = result {
                debug!(error = %e, "connection ended with an error");
            }
        }
        () = stopping(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                debug!(error = %e, "connection ended with an error while shutting down");
            }
        }
    }
}

/// Resolves once shutdown is requested (or the server is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; drop it at once.
    let _ = stop.wait_for(|stopping| *stopping).await.is_ok();
}

/// Authenticates one request, passes it to the handler, logs it.
async fn respond(context: &ConnectionContext, mut req: Request<Incoming>) -> Response<Body> {
    let started = Instant::now();
    let span = info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        version = ?req.version(),
        user = field::Empty,
        status = field::Empty,
        latency_ms = field::Empty,
    );
    async move {
        let authorization = req.headers().get(header::AUTHORIZATION);
        let user = context
            .cert_user
            .clone()
            .or_else(|| context.shared.authn.authenticate(None, authorization));
        let user = match user {
            Some(user) => Some(user),
            // No credentials at all: anonymous, for the public endpoints.
            None if authorization.is_none() && is_public(req.method(), req.uri().path()) => {
                Some(UserInfo::anonymous())
            }
            None => None,
        };

        let response = match user {
            None => unauthorized(),
            Some(user) => {
                tracing::Span::current().record("user", user.name.as_str());
                req.extensions_mut().insert(PeerAddr(context.peer));
                let handled = AssertUnwindSafe(context.shared.handler.handle(req, user))
                    .catch_unwind()
                    .await;
                handled.unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    error!(panic = %what, "handler panicked");
                    status_response(&ApiError::internal(
                        "the server panicked handling the request",
                    ))
                })
            }
        };

        let status = response.status().as_u16();
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let span = tracing::Span::current();
        span.record("status", status);
        span.record("latency_ms", latency_ms);
        if status >= 500 {
            warn!(status, latency_ms, "request failed");
        } else {
            debug!(status, latency_ms, "request");
        }
        response
    }
    .instrument(span)
    .await
}

/// Endpoints anonymous callers may `GET`: health checks and `/version`.
fn is_public(method: &Method, path: &str) -> bool {
    if method != Method::GET {
        return false;
    }
    let under = |root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    under("/healthz")
        || under("/livez")
        || under("/readyz")
        || path == "/version"
        || path == "/version/"
}

fn unauthorized() -> Response<Body> {
    status_response(&ApiError::unauthorized())
}

/// An [`ApiError`] as a JSON `Status` response.
fn status_response(err: &ApiError) -> Response<Body> {
    let body = serde_json::to_vec(&err.to_status()).unwrap_or_default();
    let mut response = Response::new(full(body));
    *response.status_mut() =
        StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_paths() {
        for path in [
            "/healthz",
            "/healthz/ping",
            "/livez",
            "/livez/etcd",
            "/readyz",
            "/readyz/informer-sync",
            "/version",
            "/version/",
        ] {
            assert!(is_public(&Method::GET, path), "{path}");
        }
        for path in [
            "/healthzx",
            "/api",
            "/",
            "/versions",
            "/version/x",
            "/apis/readyz",
        ] {
            assert!(!is_public(&Method::GET, path), "{path}");
        }
        assert!(!is_public(&Method::POST, "/healthz"));
    }
}
