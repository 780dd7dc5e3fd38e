//! The API server's transport against real clients: `curl` over HTTP/1.1
//! and HTTP/2, `kubectl` with the written admin kubeconfig, and the official
//! Python client. The server runs `serve` on 127.0.0.1 with an echo handler
//! that reports who the server decided the caller is.

use std::{
    convert::Infallible,
    io::Read,
    net::{SocketAddr, TcpStream},
    path::PathBuf,
    process::{Command, Output},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Request, Response, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use keelson_control_plane::apiserver::{
    Body,
    authn::{Authenticator, UserInfo},
    full,
    pki::{self, Pki},
    server::{self, Handler, PeerAddr, ServeOptions},
};
use serde_json::{Value, json};
use tempfile::TempDir;

const TOKEN: &str = "tok-alice-0123456789";
const TOKEN_FILE: &str = "# test tokens\n\
                          tok-alice-0123456789,alice,uid-alice,\"dev,ops\"\n\
                          \n\
                          tok-bob-9876543210,bob,uid-bob\n";

/// Echoes the caller and the request as JSON; `/slow` answers after 700 ms,
/// `/stream` never ends (like a watch), `/panic` panics.
struct Echo {
    entered: Arc<AtomicUsize>,
}

#[async_trait::async_trait]
impl Handler for Echo {
    async fn handle(&self, req: Request<Incoming>, user: UserInfo) -> Response<Body> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let path = req.uri().path().to_owned();
        match path.as_str() {
            "/slow" => tokio::time::sleep(Duration::from_millis(700)).await,
            "/panic" => panic!("handler bug"),
            "/stream" => {
                let lines = futures::stream::unfold(0u64, |n| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let line = Bytes::from(format!("{{\"n\":{n}}}\n"));
                    Some((Ok::<_, Infallible>(Frame::data(line)), n + 1))
                });
                return Response::new(StreamBody::new(lines).boxed());
            }
            _ => {}
        }
        let body = json!({
            "user": user.name,
            "uid": user.uid,
            "groups": user.groups,
            "method": req.method().as_str(),
            "path": path,
            "version": format!("{:?}", req.version()),
            "peer": req.extensions().get::<PeerAddr>().map(|p| p.0.to_string()),
        });
        let mut response = Response::new(full(body.to_string()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A running server; dropping it shuts the server down and joins it.
struct TestServer {
    dir: TempDir,
    addr: SocketAddr,
    pki: Pki,
    entered: Arc<AtomicUsize>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    fn start() -> Self {
        Self::start_with(ServeOptions::default())
    }

    fn start_with(options: ServeOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = pki::ensure(dir.path(), &[]).expect("pki");
        let tls = server::tls_config(&pki).expect("tls config");
        let token_file = dir.path().join("tokens.csv");
        std::fs::write(&token_file, TOKEN_FILE).expect("token file");
        let authn = Arc::new(Authenticator::new(Some(&token_file)).expect("authenticator"));
        assert_eq!(authn.token_count(), 2);
        let entered = Arc::new(AtomicUsize::new(0));
        let handler: Arc<dyn Handler> = Arc::new(Echo {
            entered: entered.clone(),
        });

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let shutdown = async move {
                    let _ = shutdown_rx.await;
                };
                server::serve_with_options(listener, tls, authn, handler, shutdown, options).await
            })
        });
        let server = Self {
            dir,
            addr,
            pki,
            entered,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };
        server.write_kubeconfig();
        server
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    fn pki_file(&self, name: &str) -> PathBuf {
        self.pki.dir.join(name)
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    fn write_kubeconfig(&self) {
        pki::write_kubeconfig(&self.kubeconfig(), &self.url(""), &self.pki).expect("kubeconfig");
    }

    /// Requests shutdown and waits for `serve` to return; how long it took.
    fn stop(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            thread.join().expect("server thread").expect("serve");
        }
        started.elapsed()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A client command with proxies out of the way (everything is 127.0.0.1).
fn command(program: &str) -> Command {
    let mut cmd = Command::new(program);
    for var in [
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "KUBECONFIG",
        "DISABLE_HTTP2",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

struct CurlResult {
    status: u16,
    http_version: String,
    content_type: String,
    body: String,
}

impl CurlResult {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

/// Runs curl against the server, trusting the cluster CA; `extra` adds
/// protocol and credential flags.
fn curl(server: &TestServer, extra: &[&str], path: &str) -> CurlResult {
    let out = curl_output(server, extra, path);
    assert!(
        out.status.success(),
        "curl {extra:?} {path} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let (body, meta) = stdout.rsplit_once('\n').expect("write-out line");
    let mut meta = meta.split(' ');
    CurlResult {
        status: meta.next().and_then(|s| s.parse().ok()).expect("status"),
        http_version: meta.next().expect("version").to_owned(),
        content_type: meta.next().unwrap_or_default().to_owned(),
        body: body.to_owned(),
    }
}

fn curl_output(server: &TestServer, extra: &[&str], path: &str) -> Output {
    let ca = server.pki_file(pki::CA_CERT_FILE);
    command("curl")
        .args(["-sS", "--noproxy", "*", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .args(extra)
        .args(["-w", "\n%{http_code} %{http_version} %{content_type}"])
        .arg(server.url(path))
        .output()
        .expect("curl runs")
}

fn admin_cert_args(server: &TestServer) -> Vec<String> {
    vec![
        "--cert".into(),
        server.pki_file(pki::ADMIN_CERT_FILE).display().to_string(),
        "--key".into(),
        server.pki_file(pki::ADMIN_KEY_FILE).display().to_string(),
    ]
}

fn args<'a>(owned: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    owned
        .iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

fn assert_unauthorized(result: &CurlResult) {
    assert_eq!(result.status, 401, "{}", result.body);
    assert_eq!(result.content_type, "application/json");
    let status = result.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["apiVersion"], "v1");
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "Unauthorized");
    assert_eq!(status["code"], 401);
}

#[test]
fn admin_client_certificate_over_http1_and_http2() {
    let server = TestServer::start();
    let cert = admin_cert_args(&server);
    for (flags, curl_version, seen_version) in [
        (&["--http1.1"][..], "1.1", "HTTP/1.1"),
        (&["--http2"][..], "2", "HTTP/2.0"),
        // No ALPN at all: the server detects the protocol.
        (&["--no-alpn", "--http1.1"][..], "1.1", "HTTP/1.1"),
        (
            &["--no-alpn", "--http2-prior-knowledge"][..],
            "2",
            "HTTP/2.0",
        ),
    ] {
        let result = curl(&server, &args(&cert, flags), "/api/v1/namespaces");
        assert_eq!(result.status, 200, "{}", result.body);
        assert_eq!(result.http_version, curl_version, "{flags:?}");
        let echo = result.json();
        assert_eq!(echo["user"], "kubernetes-admin");
        assert_eq!(
            echo["groups"],
            json!(["system:masters", "system:authenticated"])
        );
        assert_eq!(echo["path"], "/api/v1/namespaces");
        assert_eq!(echo["version"], seen_version);
        let peer: SocketAddr = echo["peer"].as_str().expect("peer").parse().expect("addr");
        assert!(peer.ip().is_loopback());
    }
}

#[test]
fn bearer_tokens_authenticate_and_wrong_ones_get_a_401_status() {
    let server = TestServer::start();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    for flag in ["--http1.1", "--http2"] {
        let result = curl(&server, &[flag, "-H", &bearer], "/api");
        assert_eq!(result.status, 200, "{}", result.body);
        let echo = result.json();
        assert_eq!(echo["user"], "alice");
        assert_eq!(echo["uid"], "uid-alice");
        assert_eq!(
            echo["groups"],
            json!(["dev", "ops", "system:authenticated"])
        );

        let wrong = curl(
            &server,
            &[flag, "-H", "Authorization: Bearer tok-alice-0123456788"],
            "/api",
        );
        assert_unauthorized(&wrong);
        // A wrong token is refused even where anonymous callers are let in.
        let wrong = curl(
            &server,
            &[flag, "-H", "Authorization: Bearer nope"],
            "/healthz",
        );
        assert_unauthorized(&wrong);
    }
    let bob = curl(
        &server,
        &["-H", "Authorization: bearer tok-bob-9876543210"],
        "/api",
    );
    assert_eq!(bob.json()["user"], "bob");
    assert_eq!(bob.json()["groups"], json!(["system:authenticated"]));
    // The handler saw only the authenticated requests.
    assert_eq!(server.entered.load(Ordering::SeqCst), 3);
}

#[test]
fn anonymous_callers_reach_only_health_and_version() {
    let server = TestServer::start();
    for path in ["/api", "/apis/apps/v1", "/", "/healthzz", "/metrics"] {
        assert_unauthorized(&curl(&server, &[], path));
    }
    assert_unauthorized(&curl(&server, &["-X", "POST"], "/healthz"));
    assert_eq!(server.entered.load(Ordering::SeqCst), 0);
    for path in ["/healthz", "/livez", "/readyz", "/readyz/etcd", "/version"] {
        for flag in ["--http1.1", "--http2"] {
            let result = curl(&server, &[flag], path);
            assert_eq!(result.status, 200, "{path}: {}", result.body);
            let echo = result.json();
            assert_eq!(echo["user"], "system:anonymous", "{path}");
            assert_eq!(echo["groups"], json!(["system:unauthenticated"]));
        }
    }
}

#[test]
fn client_certificates_from_another_ca_are_refused_in_the_handshake() {
    let server = TestServer::start();
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = pki::ensure(other.path(), &[]).expect("foreign pki");
    let out = curl_output(
        &server,
        &[
            "--cert",
            &foreign.dir.join(pki::ADMIN_CERT_FILE).display().to_string(),
            "--key",
            &foreign.dir.join(pki::ADMIN_KEY_FILE).display().to_string(),
        ],
        "/api",
    );
    assert!(
        !out.status.success(),
        "a foreign client certificate was accepted"
    );
    assert_eq!(server.entered.load(Ordering::SeqCst), 0);
    // The server still serves afterwards.
    let cert = admin_cert_args(&server);
    assert_eq!(curl(&server, &args(&cert, &[]), "/api").status, 200);
}

#[test]
fn kubectl_accepts_the_ca_and_the_admin_kubeconfig() {
    let server = TestServer::start();
    let cache = tempfile::tempdir().expect("tempdir");
    let out = command("kubectl")
        .env("HOME", cache.path())
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(cache.path())
        .args(["get", "--raw", "/whatever/it/is"])
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echo: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(echo["user"], "kubernetes-admin");
    assert_eq!(
        echo["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert_eq!(echo["path"], "/whatever/it/is");
    // kubectl speaks HTTP/2 when offered.
    assert_eq!(echo["version"], "HTTP/2.0");
}

#[test]
fn python_client_accepts_the_admin_kubeconfig() {
    let server = TestServer::start();
    let script = r#"
import sys
from kubernetes import client, config
config.load_kube_config(config_file=sys.argv[1])
api = client.ApiClient()
method, url, headers, body, _ = api.param_serialize('GET', '/from/python',
                                                    auth_settings=['BearerToken'])
resp = api.call_api(method, url, header_params=headers, body=body)
resp.read()
assert resp.status == 200, resp.status
sys.stdout.write(resp.data.decode())
"#;
    let out = command("python3")
        .args(["-c", script])
        .arg(server.kubeconfig())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echo: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(echo["user"], "kubernetes-admin");
    assert_eq!(echo["path"], "/from/python");
}

#[test]
fn a_panicking_handler_is_a_500_status_and_the_server_carries_on() {
    let server = TestServer::start();
    let cert = admin_cert_args(&server);
    for flag in ["--http1.1", "--http2"] {
        let result = curl(&server, &args(&cert, &[flag]), "/panic");
        assert_eq!(result.status, 500);
        assert_eq!(result.content_type, "application/json");
        assert_eq!(result.json()["reason"], "InternalError");
        assert_eq!(curl(&server, &args(&cert, &[flag]), "/ok").status, 200);
    }
}

#[test]
fn stalled_tls_handshakes_are_dropped() {
    let server = TestServer::start_with(ServeOptions {
        handshake_timeout: Duration::from_millis(300),
        ..ServeOptions::default()
    });
    let mut stalled = TcpStream::connect(server.addr).expect("connect");
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let started = Instant::now();
    let mut buf = [0u8; 16];
    // The server closes the connection: end of stream (or a reset).
    let read = stalled.read(&mut buf);
    let waited = started.elapsed();
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let cert = admin_cert_args(&server);
    assert_eq!(curl(&server, &args(&cert, &[]), "/api").status, 200);
}

/// Waits until the handler has been entered `n` times.
fn wait_entered(server: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.entered.load(Ordering::SeqCst) < n {
        assert!(
            Instant::now() < deadline,
            "requests never reached the handler"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn spawn_curl(server: &TestServer, extra: &[&str], path: &str) -> JoinHandle<Output> {
    let ca = server.pki_file(pki::CA_CERT_FILE);
    let mut cmd = command("curl");
    cmd.args(["-sS", "--noproxy", "*", "--max-time", "30", "--cacert"])
        .arg(&ca)
        .args(admin_cert_args(server))
        .args(extra)
        .args(["-w", "\n%{http_code}"])
        .arg(server.url(path));
    std::thread::spawn(move || cmd.output().expect("curl runs"))
}

#[test]
fn shutdown_finishes_in_flight_requests_and_cuts_streams_after_the_grace_period() {
    let grace = Duration::from_secs(3);
    let mut server = TestServer::start_with(ServeOptions {
        shutdown_grace: grace,
        ..ServeOptions::default()
    });
    let slow_h1 = spawn_curl(&server, &["--http1.1"], "/slow");
    let slow_h2 = spawn_curl(&server, &["--http2"], "/slow");
    let stream = spawn_curl(&server, &["--http2"], "/stream");
    wait_entered(&server, 3);

    let took = server.stop();
    // The watch-like stream kept serve waiting for the whole grace period,
    // and no longer.
    assert!(took >= grace - Duration::from_millis(100), "{took:?}");
    assert!(took < grace + Duration::from_secs(3), "{took:?}");

    for slow in [slow_h1, slow_h2] {
        let out = slow.join().expect("curl thread");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (body, status) = stdout.rsplit_once('\n').expect("status line");
        assert_eq!(status, "200");
        let echo: Value = serde_json::from_str(body).expect("json");
        assert_eq!(echo["path"], "/slow");
    }
    let out = stream.join().expect("curl thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("{\"n\":0}\n{\"n\":1}\n"), "{stdout}");
    assert!(
        !out.status.success(),
        "an endless stream ended cleanly: {stdout}"
    );

    // Nothing listens any more.
    assert!(TcpStream::connect(server.addr).is_err());
}

#[test]
fn shutdown_with_idle_connections_is_immediate() {
    let mut server = TestServer::start();
    let cert = admin_cert_args(&server);
    assert_eq!(curl(&server, &args(&cert, &[]), "/api").status, 200);
    let took = server.stop();
    assert!(took < Duration::from_secs(2), "{took:?}");
}

#[test]
fn tls_config_offers_h2_and_http11() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = pki::ensure(dir.path(), &[]).expect("pki");
    let config = server::tls_config(&pki).expect("tls");
    assert_eq!(
        config.alpn_protocols,
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    );
}
