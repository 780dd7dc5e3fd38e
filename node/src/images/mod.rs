//! Local images into containerd, through containerd's own API (not `ctr`):
//! `keelson-node images import FILE.tar` puts an OCI (or `docker save`)
//! archive's images into the CRI plugin's namespace (`k8s.io`) so pods can
//! run them without any pull.
//!
//! An import, all under one containerd lease (so the garbage collector
//! spares half-imported content):
//! 1. every blob into the content store (`Content.Write`), with the
//!    `containerd.io/gc.ref.*` labels that tie manifests to their config
//!    and layers;
//! 2. the layers unpacked into the overlayfs snapshotter: for each layer,
//!    `Snapshots.Prepare` on the parent's chain ID, `Diff.Apply` of the
//!    blob onto the returned mounts (checked against the config's diff ID),
//!    `Snapshots.Commit` as the layer's chain ID; then the config is
//!    labelled `containerd.io/gc.ref.snapshot.overlayfs` = the top chain ID;
//! 3. the image records (`Images.Create`, or `Update` when present) under
//!    the name, the repo digest and the image ID, labelled
//!    `io.cri-containerd.image=managed` — the three references the CRI
//!    plugin itself makes when it pulls.
//!
//! The archive format is `keelson_runtime::oci`'s; running containers is
//! the kubelet's, through `crate::cri`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    io::Read,
    path::Path,
    time::{Duration, Instant},
};

use containerd_client::{
    services::v1::{
        AddResourceRequest, ApplyRequest, CreateImageRequest, CreateRequest as CreateLeaseRequest,
        DeleteRequest as DeleteLeaseRequest, Image as ContainerdImage, InfoRequest,
        ListImagesRequest, Resource, UpdateImageRequest, UpdateRequest as UpdateContentRequest,
        WriteAction, WriteContentRequest,
        content_client::ContentClient,
        diff_client::DiffClient,
        images_client::ImagesClient,
        leases_client::LeasesClient,
        snapshots::{
            CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
            StatSnapshotRequest, snapshots_client::SnapshotsClient,
        },
    },
    types::Descriptor as ContainerdDescriptor,
};
use keelson_runtime::oci::{self, Archive, Blob, BlobSource, Descriptor, ImportImage, OciError};
use thiserror::Error;
use tonic::{metadata::MetadataValue, transport::Channel};
use tracing::{debug, info, instrument};

use crate::cri;

/// The containerd namespace the CRI plugin uses.
pub const CRI_NAMESPACE: &str = keelson_runtime::containerd::CRI_NAMESPACE;
/// The snapshotter Keelson's containerd configuration selects.
pub const SNAPSHOTTER: &str = "overlayfs";
/// The label the CRI plugin puts on images it manages.
pub const CRI_IMAGE_LABEL: &str = "io.cri-containerd.image";
/// How much of a blob one `Write` message carries.
const CHUNK: usize = 1 << 20;
/// How long an abandoned import's lease keeps its content alive.
const LEASE_EXPIRY: Duration = Duration::from_secs(3600);

#[derive(Debug, Error)]
pub enum ImportError {
    #[error(transparent)]
    Archive(#[from] OciError),
    #[error("connecting to containerd at {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("containerd {method} ({what}) failed: {}: {}", .status.code(), .status.message())]
    Rpc {
        method: &'static str,
        what: String,
        #[source]
        status: tonic::Status,
    },
    #[error("reading {entry} from the archive: {source}")]
    Read {
        entry: String,
        #[source]
        source: std::io::Error,
    },
    #[error("containerd reports {what} as {got}, but {want} was expected")]
    Mismatch {
        what: String,
        want: String,
        got: String,
    },
    #[error("the archive {0} holds no named image")]
    Empty(String),
    #[error(transparent)]
    Endpoint(cri::CriError),
    #[error("invalid containerd namespace or lease {0:?}")]
    Namespace(String),
    #[error(
        "{image} was imported but the CRI plugin does not report it after {seconds}s: {source}"
    )]
    NotVisible {
        image: String,
        seconds: u64,
        #[source]
        source: cri::CriError,
    },
}

type Result<T, E = ImportError> = std::result::Result<T, E>;

fn rpc(method: &'static str, what: impl Into<String>) -> impl FnOnce(tonic::Status) -> ImportError {
    let what = what.into();
    move |status| ImportError::Rpc {
        method,
        what,
        status,
    }
}

/// One image as imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedImage {
    /// The normalised reference (`keelson.local/busybox:1`).
    pub name: String,
    /// The image ID (its config's digest), as CRI reports it.
    pub id: String,
    /// The repo digest (`keelson.local/busybox@sha256:…`).
    pub repo_digest: String,
    /// The chain ID of the unpacked root filesystem (its snapshot's name).
    pub chain_id: String,
    /// Compressed size: manifest, config and layers.
    pub size: u64,
    /// Blobs written now (the others were present already).
    pub blobs_written: usize,
    /// Layers unpacked now (the others were unpacked already).
    pub layers_unpacked: usize,
}

/// A containerd connection scoped to a namespace (and, during an import,
/// to a lease).
struct Session {
    channel: Channel,
    namespace: MetadataValue<tonic::metadata::Ascii>,
    lease: Option<MetadataValue<tonic::metadata::Ascii>>,
    timeout: Duration,
}

impl Session {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert("containerd-namespace", self.namespace.clone());
        if let Some(lease) = &self.lease {
            request
                .metadata_mut()
                .insert("containerd-lease", lease.clone());
        }
        request.set_timeout(self.timeout);
        request
    }

    fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.channel.clone())
    }
}

/// Connects to containerd's socket (a path, or a `unix://` endpoint).
async fn channel(address: &str) -> Result<Channel> {
    let path = cri::socket_path(address).map_err(ImportError::Endpoint)?;
    containerd_client::connect(&path)
        .await
        .map_err(|source| ImportError::Connect {
            address: address.to_owned(),
            source,
        })
}

fn session(channel: Channel, namespace: &str) -> Result<Session> {
    let namespace = MetadataValue::try_from(namespace)
        .map_err(|_| ImportError::Namespace(namespace.to_owned()))?;
    Ok(Session {
        channel,
        namespace,
        lease: None,
        timeout: Duration::from_secs(120),
    })
}

/// Imports every image of the archive at `path` into containerd at
/// `address` (`unix:///…/containerd.sock`), in `namespace`, and unpacks
/// them for the overlayfs snapshotter. Idempotent: content and snapshots
/// already present are reused.
#[instrument(skip_all, fields(archive = %path.display(), namespace = %namespace))]
pub async fn import_archive(
    address: &str,
    namespace: &str,
    path: &Path,
) -> Result<Vec<ImportedImage>> {
    let archive = Archive::open(path)?;
    let images = archive.images()?;
    if images.is_empty() {
        return Err(ImportError::Empty(path.display().to_string()));
    }
    let mut session = session(channel(address).await?, namespace)?;
    let lease = create_lease(&session).await?;
    session.lease = Some(
        MetadataValue::try_from(lease.as_str())
            .map_err(|_| ImportError::Namespace(lease.clone()))?,
    );
    let result = import_images(&session, &archive, &images).await;
    // The image records and labels now hold everything; the lease goes
    // (even after a failure, so nothing half-imported is pinned).
    session.lease = None;
    let deleted = LeasesClient::new(session.channel.clone())
        .delete(session.request(DeleteLeaseRequest {
            id: lease.clone(),
            sync: false,
        }))
        .await;
    let imported = result?;
    deleted.map_err(rpc("Leases.Delete", lease))?;
    Ok(imported)
}

async fn create_lease(session: &Session) -> Result<String> {
    let id = format!(
        "keelson-import-{}-{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond()
    );
    let expiry = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::try_from(LEASE_EXPIRY).unwrap_or_default())
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let mut labels = HashMap::new();
    labels.insert(
        "containerd.io/gc.expire".to_owned(),
        expiry.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let response = LeasesClient::new(session.channel.clone())
        .create(session.request(CreateLeaseRequest {
            id: id.clone(),
            labels,
        }))
        .await
        .map_err(rpc("Leases.Create", id.clone()))?;
    Ok(response
        .into_inner()
        .lease
        .map(|lease| lease.id)
        .unwrap_or(id))
}

async fn import_images(
    session: &Session,
    archive: &Archive,
    images: &[ImportImage],
) -> Result<Vec<ImportedImage>> {
    // Blobs shared by several images of the archive are written once.
    let mut written = HashSet::new();
    let mut imported = Vec::new();
    for image in images {
        imported.push(import_image(session, archive, image, &mut written).await?);
    }
    Ok(imported)
}

#[instrument(skip_all, fields(image = %image.name))]
async fn import_image(
    session: &Session,
    archive: &Archive,
    image: &ImportImage,
    written: &mut HashSet<String>,
) -> Result<ImportedImage> {
    let mut blobs_written = 0;
    for blob in &image.blobs {
        if written.insert(blob.descriptor.digest.clone()) {
            blobs_written += usize::from(put_blob(session, archive, blob).await?);
        }
    }
    let (chain_id, layers_unpacked) = unpack(session, image).await?;
    let repo_digest = oci::repo_digest(&image.name, &image.manifest.digest);
    let mut labels = HashMap::new();
    labels.insert(CRI_IMAGE_LABEL.to_owned(), "managed".to_owned());
    for name in [&image.name, &repo_digest, &image.config.digest] {
        put_image(session, name, &image.target, &labels).await?;
    }
    info!(
        id = %image.config.digest,
        chain_id = %chain_id,
        blobs_written,
        layers_unpacked,
        "image imported"
    );
    Ok(ImportedImage {
        name: image.name.clone(),
        id: image.config.digest.clone(),
        repo_digest,
        chain_id,
        size: unique_size(image),
        blobs_written,
        layers_unpacked,
    })
}

/// Manifest + config + distinct layers, in bytes.
fn unique_size(image: &ImportImage) -> u64 {
    let mut seen = HashSet::new();
    std::iter::once(&image.manifest)
        .chain(std::iter::once(&image.config))
        .chain(image.layers.iter())
        .filter(|d| seen.insert(d.digest.clone()))
        .map(|d| d.size)
        .sum()
}

fn to_containerd(descriptor: &Descriptor) -> ContainerdDescriptor {
    ContainerdDescriptor {
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.clone(),
        size: i64::try_from(descriptor.size).unwrap_or(i64::MAX),
        annotations: HashMap::new(),
    }
}

/// Puts one blob in the content store; `true` when it was written now,
/// `false` when it was there (its labels are then brought up to date).
#[instrument(skip_all, fields(digest = %blob.descriptor.digest))]
async fn put_blob(session: &Session, archive: &Archive, blob: &Blob) -> Result<bool> {
    let digest = blob.descriptor.digest.clone();
    let mut content = session.content();
    match content
        .info(session.request(InfoRequest {
            digest: digest.clone(),
        }))
        .await
    {
        Ok(_) => {
            // Present: keep it leased until the image references it, and
            // make sure it names its children.
            add_lease_resource(session, &digest, "content").await?;
            update_content_labels(session, &digest, &blob.labels).await?;
            debug!("blob present");
            return Ok(false);
        }
        Err(status) if status.code() == tonic::Code::NotFound => {}
        Err(status) => return Err(rpc("Content.Info", digest)(status)),
    }
    write_blob(session, archive, blob).await?;
    debug!(size = blob.descriptor.size, "blob written");
    Ok(true)
}

async fn add_lease_resource(session: &Session, id: &str, kind: &str) -> Result<()> {
    let Some(lease) = &session.lease else {
        return Ok(());
    };
    let lease = lease.to_str().unwrap_or_default().to_owned();
    LeasesClient::new(session.channel.clone())
        .add_resource(session.request(AddResourceRequest {
            id: lease,
            resource: Some(Resource {
                id: id.to_owned(),
                r#type: kind.to_owned(),
            }),
        }))
        .await
        .map_err(rpc("Leases.AddResource", id.to_owned()))?;
    Ok(())
}

async fn update_content_labels(
    session: &Session,
    digest: &str,
    labels: &BTreeMap<String, String>,
) -> Result<()> {
    if labels.is_empty() {
        return Ok(());
    }
    session
        .content()
        .update(session.request(UpdateContentRequest {
            info: Some(containerd_client::services::v1::Info {
                digest: digest.to_owned(),
                labels: labels.clone().into_iter().collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: labels.keys().map(|k| format!("labels.{k}")).collect(),
            }),
        }))
        .await
        .map_err(rpc("Content.Update", digest.to_owned()))?;
    Ok(())
}

/// Streams the blob through `Content.Write`: STAT, WRITE chunks, COMMIT
/// with the expected digest and size (containerd verifies both), each
/// message answered before the next is sent.
async fn write_blob(session: &Session, archive: &Archive, blob: &Blob) -> Result<()> {
    let descriptor = &blob.descriptor;
    let digest = descriptor.digest.clone();
    let total = i64::try_from(descriptor.size).unwrap_or(i64::MAX);
    let reference = format!("keelson-import-{digest}");
    let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(2);
    let send = |message: WriteContentRequest| {
        let tx = tx.clone();
        async move { tx.send(message).await.is_ok() }
    };
    // The first message goes before the call: the server answers headers
    // only once it has read one.
    send(WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: reference.clone(),
        total,
        expected: digest.clone(),
        ..Default::default()
    })
    .await;
    let mut responses = match session
        .content()
        .write(session.request(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .await
    {
        Ok(response) => response.into_inner(),
        // Written meanwhile by someone else: as good as ours.
        Err(status) if status.code() == tonic::Code::AlreadyExists => return Ok(()),
        Err(status) => return Err(rpc("Content.Write", digest)(status)),
    };
    let mut next = async |what: &str| -> Result<Option<i64>> {
        match responses.message().await {
            Ok(Some(response)) => Ok(Some(response.offset)),
            Ok(None) => Ok(None),
            Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(None),
            Err(status) => Err(rpc("Content.Write", format!("{digest} ({what})"))(status)),
        }
    };
    if next("stat").await?.is_none() {
        return Ok(());
    }
    let mut reader: Box<dyn Read + Send> = match &blob.source {
        BlobSource::Entry(entry) => Box::new(archive.reader(entry)?),
        BlobSource::Bytes(bytes) => Box::new(std::io::Cursor::new(bytes.clone())),
    };
    let entry_name = match &blob.source {
        BlobSource::Entry(entry) => entry.clone(),
        BlobSource::Bytes(_) => format!("{digest} (generated)"),
    };
    let mut offset: i64 = 0;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = read_full(&mut reader, &mut buf).map_err(|source| ImportError::Read {
            entry: entry_name.clone(),
            source,
        })?;
        if n == 0 {
            break;
        }
        send(WriteContentRequest {
            action: WriteAction::Write as i32,
            r#ref: reference.clone(),
            offset,
            data: buf[..n].to_vec(),
            ..Default::default()
        })
        .await;
        offset += n as i64;
        match next("write").await? {
            Some(at) if at == offset => {}
            Some(at) => {
                return Err(ImportError::Mismatch {
                    what: format!("{digest}'s write offset"),
                    want: offset.to_string(),
                    got: at.to_string(),
                });
            }
            None => return Ok(()),
        }
    }
    send(WriteContentRequest {
        action: WriteAction::Commit as i32,
        r#ref: reference.clone(),
        total,
        expected: digest.clone(),
        offset,
        labels: blob.labels.clone().into_iter().collect(),
        ..Default::default()
    })
    .await;
    drop(tx);
    next("commit").await?;
    Ok(())
}

/// Reads until `buf` is full or the reader ends.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Unpacks the image's layers into the snapshotter; returns the top chain
/// ID and how many layers were unpacked now.
#[instrument(skip_all, fields(image = %image.name))]
async fn unpack(session: &Session, image: &ImportImage) -> Result<(String, usize)> {
    let chain = oci::chain_ids(&image.diff_ids);
    let mut snapshots = SnapshotsClient::new(session.channel.clone());
    let mut diff = DiffClient::new(session.channel.clone());
    let mut unpacked = 0;
    for (i, (layer, diff_id)) in image.unpack_layers().enumerate() {
        let chain_id = &chain[i];
        let parent = if i == 0 {
            String::new()
        } else {
            chain[i - 1].clone()
        };
        match snapshots
            .stat(session.request(StatSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_owned(),
                key: chain_id.clone(),
            }))
            .await
        {
            Ok(_) => {
                add_lease_resource(session, chain_id, &format!("snapshots/{SNAPSHOTTER}")).await?;
                continue;
            }
            Err(status) if status.code() == tonic::Code::NotFound => {}
            Err(status) => return Err(rpc("Snapshots.Stat", chain_id.clone())(status)),
        }
        let key = format!(
            "extract-{}-{} {chain_id}",
            std::process::id(),
            jiff::Timestamp::now().as_nanosecond()
        );
        let mounts = snapshots
            .prepare(session.request(PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_owned(),
                key: key.clone(),
                parent,
                labels: HashMap::new(),
            }))
            .await
            .map_err(rpc("Snapshots.Prepare", key.clone()))?
            .into_inner()
            .mounts;
        let applied = diff
            .apply(session.request(ApplyRequest {
                diff: Some(to_containerd(layer)),
                mounts,
                ..Default::default()
            }))
            .await
            .map_err(rpc("Diff.Apply", layer.digest.clone()))
            .and_then(|response| {
                let got = response
                    .into_inner()
                    .applied
                    .map(|d| d.digest)
                    .unwrap_or_default();
                if &got == diff_id {
                    Ok(())
                } else {
                    Err(ImportError::Mismatch {
                        what: format!("layer {}'s unpacked tar", layer.digest),
                        want: diff_id.clone(),
                        got,
                    })
                }
            });
        if let Err(e) = applied {
            let _ = snapshots
                .remove(session.request(RemoveSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_owned(),
                    key,
                }))
                .await;
            return Err(e);
        }
        match snapshots
            .commit(session.request(CommitSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_owned(),
                name: chain_id.clone(),
                key: key.clone(),
                labels: HashMap::new(),
            }))
            .await
        {
            Ok(_) => {}
            // Unpacked meanwhile by someone else: drop ours.
            Err(status) if status.code() == tonic::Code::AlreadyExists => {
                let _ = snapshots
                    .remove(session.request(RemoveSnapshotRequest {
                        snapshotter: SNAPSHOTTER.to_owned(),
                        key,
                    }))
                    .await;
            }
            Err(status) => return Err(rpc("Snapshots.Commit", chain_id.clone())(status)),
        }
        unpacked += 1;
        debug!(layer = %layer.digest, chain_id = %chain_id, "layer unpacked");
        let mut labels = BTreeMap::new();
        labels.insert("containerd.io/uncompressed".to_owned(), diff_id.clone());
        update_content_labels(session, &layer.digest, &labels).await?;
    }
    let top = chain.last().cloned().unwrap_or_default();
    let mut labels = BTreeMap::new();
    labels.insert(
        format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"),
        top.clone(),
    );
    update_content_labels(session, &image.config.digest, &labels).await?;
    Ok((top, unpacked))
}

/// Creates the image record `name` → `target`, or updates it in place.
async fn put_image(
    session: &Session,
    name: &str,
    target: &Descriptor,
    labels: &HashMap<String, String>,
) -> Result<()> {
    let image = ContainerdImage {
        name: name.to_owned(),
        labels: labels.clone(),
        target: Some(to_containerd(target)),
        created_at: None,
        updated_at: None,
    };
    let mut images = ImagesClient::new(session.channel.clone());
    match images
        .create(session.request(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(status) if status.code() == tonic::Code::AlreadyExists => {
            images
                .update(session.request(UpdateImageRequest {
                    image: Some(image),
                    update_mask: None,
                    source_date_epoch: None,
                }))
                .await
                .map_err(rpc("Images.Update", name.to_owned()))?;
            Ok(())
        }
        Err(status) => Err(rpc("Images.Create", name.to_owned())(status)),
    }
}

/// The image records of `namespace` (name, target digest, labels), as
/// containerd holds them.
pub async fn list_records(address: &str, namespace: &str) -> Result<Vec<ContainerdImage>> {
    let session = session(channel(address).await?, namespace)?;
    let response = ImagesClient::new(session.channel.clone())
        .list(session.request(ListImagesRequest { filters: vec![] }))
        .await
        .map_err(rpc("Images.List", namespace.to_owned()))?;
    Ok(response.into_inner().images)
}

/// Waits until the CRI plugin at `endpoint` reports `image` (it learns of
/// new images from containerd's events, a moment after the import).
pub async fn wait_visible_to_cri(
    endpoint: &str,
    image: &str,
    timeout: Duration,
) -> Result<cri::api::Image> {
    let deadline = Instant::now() + timeout;
    let not_visible = |source| ImportError::NotVisible {
        image: image.to_owned(),
        seconds: timeout.as_secs(),
        source,
    };
    let channel = cri::connect(endpoint).await.map_err(not_visible)?;
    let mut images = cri::ImageClient::new(channel, timeout);
    loop {
        match images.image_status(image).await {
            Ok(found) => return Ok(found),
            Err(e) if e.is_image_not_present() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(not_visible(e)),
        }
    }
}
