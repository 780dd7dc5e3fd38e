//! STUB in main until the transport branch merges.
use std::sync::Arc;

use crate::apiserver::{Body, authn::{Authenticator, UserInfo}, pki::{Pki, PkiError}};

#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, req: http::Request<hyper::body::Incoming>, user: UserInfo) -> http::Response<Body>;
}
pub fn tls_config(_pki: &Pki) -> Result<Arc<rustls::ServerConfig>, PkiError> { unimplemented!() }
pub async fn serve(
    _listener: tokio::net::TcpListener,
    _tls: Arc<rustls::ServerConfig>,
    _authn: Arc<Authenticator>,
    _handler: Arc<dyn Handler>,
    _shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> { unimplemented!() }
