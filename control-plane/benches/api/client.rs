//! The bench's HTTPS client: one TLS connection speaking HTTP/2 (ALPN `h2`),
//! authenticated with the admin client certificate from the server's data
//! dir (`pki/{ca.crt,admin.crt,admin.key}`). Each [`Conn`] is its own TCP
//! connection, as separate client processes would have. Owns connections
//! only; knows nothing of what is measured.

use std::{net::SocketAddr, path::Path, sync::Arc};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, client::conn::http2::SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, pem::PemObject};

/// What every connection to one server shares: its address and TLS setup.
#[derive(Clone)]
pub struct Endpoint {
    pub addr: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl Endpoint {
    /// Trusts `<data_dir>/pki/ca.crt` and presents `admin.crt`/`admin.key`.
    pub fn new(addr: SocketAddr, data_dir: &Path) -> Result<Self> {
        let pki = data_dir.join("pki");
        let read = |name: &str| {
            let path = pki.join(name);
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))
        };
        let ca = CertificateDer::from_pem_slice(&read("ca.crt")?).context("pki/ca.crt")?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca).context("adding the cluster CA")?;
        let chain = CertificateDer::pem_slice_iter(&read("admin.crt")?)
            .collect::<Result<Vec<_>, _>>()
            .context("pki/admin.crt")?;
        let key = PrivateKeyDer::from_pem_slice(&read("admin.key")?).context("pki/admin.key")?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("admin client certificate")?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            addr,
            tls: Arc::new(tls),
        })
    }

    /// Opens a new connection (TCP, TLS, HTTP/2 handshake).
    pub async fn connect(&self) -> Result<Conn> {
        let tcp = tokio::net::TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true).context("TCP_NODELAY")?;
        let name = ServerName::IpAddress(self.addr.ip().into());
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {}", self.addr))?;
        if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("the server at {} did not negotiate h2", self.addr);
        }
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(async move {
            // Ends when every SendRequest is dropped or the server closes.
            let _ = conn.await;
        });
        Ok(Conn {
            send,
            base: format!("https://{}", self.addr),
        })
    }
}

/// One HTTP/2 connection; cheap to clone (clones multiplex on it).
#[derive(Clone)]
pub struct Conn {
    send: SendRequest<Full<Bytes>>,
    base: String,
}

/// A complete response.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("response body is not JSON")
    }

    /// Fails unless 2xx, with the body in the message.
    pub fn ok(self) -> Result<Self> {
        if !self.status.is_success() {
            bail!(
                "HTTP {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            );
        }
        Ok(self)
    }
}

impl Conn {
    fn build(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Request<Full<Bytes>>> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        req.body(Full::new(body.unwrap_or_default()))
            .context("building a request")
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Result<hyper::Response<Incoming>> {
        self.send.ready().await.context("connection closed")?;
        self.send
            .send_request(req)
            .await
            .context("sending a request")
    }

    /// Sends a request and reads the whole response.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply> {
        let req = self.build(method, path, body)?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .context("reading a response body")?
            .to_bytes();
        Ok(Reply { status, body })
    }

    /// Starts a streaming GET (a watch); fails unless 200.
    pub async fn stream(&mut self, path: &str) -> Result<Incoming> {
        let req = self.build(Method::GET, path, None)?;
        let resp = self.send(req).await?;
        if resp.status() != StatusCode::OK {
            let status = resp.status();
            let body = resp.into_body().collect().await.map(|b| b.to_bytes());
            bail!(
                "GET {path}: HTTP {status}: {}",
                body.map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            );
        }
        Ok(resp.into_body())
    }
}
