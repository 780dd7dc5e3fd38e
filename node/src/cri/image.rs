//! The CRI ImageService, read-only: which images the runtime has. There
//! is deliberately no `PullImage`: Keelson's nodes reach no registry, and
//! a missing image is [`CriError::ImageNotPresent`].

use std::time::Duration;

use k8s_cri::v1::{self as api, image_service_client::ImageServiceClient};
use tonic::transport::Channel;
use tracing::instrument;

use super::{CriError, Result, request};

/// The runtime's ImageService (status and list only).
#[derive(Debug, Clone)]
pub struct ImageClient {
    inner: ImageServiceClient<Channel>,
    timeout: Duration,
}

impl ImageClient {
    pub fn new(channel: Channel, timeout: Duration) -> Self {
        Self {
            inner: ImageServiceClient::new(channel),
            timeout,
        }
    }

    /// The image `image` (a reference such as `keelson.local/busybox:1`, or
    /// an image ID); [`CriError::ImageNotPresent`] when the runtime does not
    /// have it. Never pulls.
    #[instrument(skip(self))]
    pub async fn image_status(&mut self, image: &str) -> Result<api::Image> {
        let response = self
            .inner
            .image_status(request(
                api::ImageStatusRequest {
                    image: Some(api::ImageSpec {
                        image: image.to_owned(),
                        ..Default::default()
                    }),
                    verbose: false,
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("ImageStatus"))?;
        response
            .into_inner()
            .image
            .ok_or_else(|| CriError::ImageNotPresent {
                image: image.to_owned(),
            })
    }

    /// Every image the runtime has, or those `image` names (a reference,
    /// normalised as the runtime does, a repo digest or an image ID). The
    /// filter is applied here too: containerd 1.6 ignores it.
    #[instrument(skip(self))]
    pub async fn list_images(&mut self, image: Option<&str>) -> Result<Vec<api::Image>> {
        let filter = image.map(|image| api::ImageFilter {
            image: Some(api::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
        });
        let response = self
            .inner
            .list_images(request(api::ListImagesRequest { filter }, self.timeout))
            .await
            .map_err(CriError::rpc("ListImages"))?;
        let mut images = response.into_inner().images;
        if let Some(wanted) = image {
            let normalised = keelson_runtime::oci::normalize_reference(wanted).ok();
            images.retain(|i| {
                i.id == wanted
                    || i.repo_digests.iter().any(|d| d == wanted)
                    || i.repo_tags
                        .iter()
                        .any(|t| t == wanted || Some(t) == normalised.as_ref())
            });
        }
        Ok(images)
    }
}
