//! The API server: the single front door to cluster state, speaking the
//! Kubernetes REST API over HTTPS (HTTP/1.1 and HTTP/2).
//!
//! - transport: [`pki`] (CA and certificates, admin kubeconfig), [`authn`]
//!   (client certificates, bearer tokens), [`server`] (TLS accept loop,
//!   hyper, 401 for anonymous requests);
//! - request handling: [`status`] (errors as `metav1.Status`),
//!   [`validation`] (decoding, defaulting and validation per kind),
//!   [`selectors`] (label and field selectors), [`watch_cache`] (one store
//!   watch fanned out to many watchers), [`podlogs`] (`pods/log`, proxied
//!   to the node's kubelet).

pub mod allocator;
pub mod authn;
pub mod bootstrap;
pub mod discovery;
pub mod handler;
pub mod meta;
pub mod namespace_lifecycle;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod pki;
pub mod podlogs;
pub mod protobuf;
pub mod selectors;
pub mod server;
pub mod status;
pub mod tables;
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
