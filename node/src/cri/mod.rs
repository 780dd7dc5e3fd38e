//! The CRI client, and nothing else: typed wrappers over the container
//! runtime's `runtime.v1` RuntimeService ([`RuntimeClient`]) and
//! ImageService ([`ImageClient`]), spoken over the unix socket that
//! `--container-runtime-endpoint` names (`unix:///run/…/containerd.sock`).
//!
//! The kubelet drives pods through these; nothing here knows about pods
//! beyond what CRI says. Images are never pulled: there is no `PullImage`
//! here at all, and an image the runtime does not have is
//! [`CriError::ImageNotPresent`], which the kubelet reports as
//! `ErrImageNeverPull`. Importing images is `keelson_node::images`'s.
//!
//! Every call has a deadline (the kubelet's `--runtime-request-timeout`,
//! two minutes by default) and runs in a tracing span naming its object.

mod image;
mod runtime;

use std::{path::PathBuf, time::Duration};

use hyper_util::rt::TokioIo;
use thiserror::Error;
use tonic::transport::{Channel, Endpoint, Uri};

pub use image::ImageClient;
/// The CRI `runtime.v1` messages, as generated from the protobuf.
pub use k8s_cri::v1 as api;
pub use runtime::{ContainerFilter, ExecOutput, RuntimeClient, SandboxFilter};

/// The kubelet's default `--runtime-request-timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Error)]
pub enum CriError {
    #[error("invalid container runtime endpoint {endpoint:?}: {why}")]
    InvalidEndpoint { endpoint: String, why: String },
    #[error("connecting to the container runtime at {endpoint}: {source}")]
    Connect {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("CRI {method} failed: {}: {}", .status.code(), .status.message())]
    Rpc {
        method: &'static str,
        #[source]
        status: tonic::Status,
    },
    #[error(
        "image {image:?} is not present on this node, and images are never pulled \
         (ErrImageNeverPull): import it with `keelson-node images import`"
    )]
    ImageNotPresent { image: String },
    #[error("CRI {method}: the runtime's answer has no {field}")]
    MissingField {
        method: &'static str,
        field: &'static str,
    },
}

impl CriError {
    /// The gRPC status the runtime answered with, if that is what failed.
    pub fn status(&self) -> Option<&tonic::Status> {
        match self {
            Self::Rpc { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The gRPC code, if the runtime answered with an error.
    pub fn code(&self) -> Option<tonic::Code> {
        self.status().map(tonic::Status::code)
    }

    /// Whether the runtime said the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(tonic::Code::NotFound)
    }

    pub fn is_image_not_present(&self) -> bool {
        matches!(self, Self::ImageNotPresent { .. })
    }

    fn rpc(method: &'static str) -> impl FnOnce(tonic::Status) -> Self {
        move |status| Self::Rpc { method, status }
    }
}

pub type Result<T, E = CriError> = std::result::Result<T, E>;

/// The socket path of a `unix://` endpoint (a bare absolute path is taken
/// as one too, as the kubelet does).
pub fn socket_path(endpoint: &str) -> Result<PathBuf> {
    let invalid = |why: &str| CriError::InvalidEndpoint {
        endpoint: endpoint.to_owned(),
        why: why.to_owned(),
    };
    let path = match endpoint.split_once("://") {
        Some(("unix", path)) => path,
        Some((scheme, _)) => {
            return Err(invalid(&format!(
                "scheme {scheme:?} is not supported; use unix:///path/to/socket"
            )));
        }
        None => endpoint,
    };
    if !path.starts_with('/') {
        return Err(invalid("the socket path must be absolute"));
    }
    Ok(PathBuf::from(path))
}

/// A gRPC channel to the runtime's unix socket; fails now if nothing
/// listens there.
pub async fn connect(endpoint: &str) -> Result<Channel> {
    let path = socket_path(endpoint)?;
    // The URI is a placeholder: the connector below ignores it.
    let channel = Endpoint::from_static("http://[::]:0")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?))
            }
        }))
        .await
        .map_err(|source| CriError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    Ok(channel)
}

/// Both CRI services of one runtime.
#[derive(Debug, Clone)]
pub struct Cri {
    pub runtime: RuntimeClient,
    pub images: ImageClient,
}

impl Cri {
    /// Connects to `endpoint` (`unix:///path`), with the default deadline.
    pub async fn connect(endpoint: &str) -> Result<Self> {
        let channel = connect(endpoint).await?;
        Ok(Self {
            runtime: RuntimeClient::new(channel.clone(), DEFAULT_TIMEOUT),
            images: ImageClient::new(channel, DEFAULT_TIMEOUT),
        })
    }
}

/// A request with a deadline.
fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_unix_sockets() {
        assert_eq!(
            socket_path("unix:///run/k/containerd.sock").unwrap(),
            PathBuf::from("/run/k/containerd.sock")
        );
        assert_eq!(
            socket_path("/run/k/containerd.sock").unwrap(),
            PathBuf::from("/run/k/containerd.sock")
        );
        for bad in ["tcp://127.0.0.1:1", "unix://relative", "relative.sock"] {
            assert!(
                matches!(socket_path(bad), Err(CriError::InvalidEndpoint { .. })),
                "{bad}"
            );
        }
    }
}
