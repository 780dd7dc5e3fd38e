//! The API server: the single front door to cluster state, speaking the
//! Kubernetes REST API over HTTPS (HTTP/1.1 and HTTP/2).
//!
//! - transport: [`pki`] (CA and certificates, admin kubeconfig), [`authn`]
//!   (client certificates, bearer tokens), [`server`] (TLS accept loop,
//!   hyper, 401 for anonymous requests);
//! - request handling: [`status`] (errors as `metav1.Status`),
//!   [`validation`] (decoding, defaulting and validation per kind),
//!   [`selectors`] (label and field selectors), [`watch_cache`] (one store
//!   watch fanned out to many watchers).

pub mod authn;
pub mod pki;
pub mod selectors;
pub mod server;
pub mod status;
pub mod validation;
pub mod watch_cache;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// Response bodies: whole buffers or streams (watch).
pub type Body = BoxBody<Bytes, std::convert::Infallible>;

/// A complete response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}
