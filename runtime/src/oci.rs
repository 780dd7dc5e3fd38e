//! OCI image archives: writing them (the local images are built here, no
//! docker) and reading them back as an import plan (what
//! `keelson-node images import` sends to containerd).
//!
//! An archive is an OCI image layout in a plain tar: `oci-layout`,
//! `index.json` naming each image with the
//! `org.opencontainers.image.ref.name` annotation (and containerd's
//! `io.containerd.image.name`), and `blobs/sha256/<hex>` holding the
//! layers, image configs and manifests. Reading also accepts `docker save`
//! archives (`manifest.json`, `<id>/layer.tar`): their manifest is
//! synthesised in Docker's schema 2 format, as containerd's own importer
//! does.
//!
//! Everything here is pure file work: talking to containerd lives in the
//! node agent (`keelson_node::images`).

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    io::{self, Read, Seek, SeekFrom, Write},
    path::{Component, Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use thiserror::Error;

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_TYPE_DOCKER_MANIFEST_LIST: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_TYPE_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_TYPE_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_TYPE_DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const MEDIA_TYPE_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The OCI annotation naming an image in an index.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation carrying the full image name.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";

/// The largest JSON document (index, manifest, config) read into memory.
const MAX_JSON: u64 = 16 << 20;

#[derive(Debug, Error)]
pub enum OciError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("{what}: invalid JSON: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} is not in the archive")]
    Missing(String),
    #[error("invalid image archive: {0}")]
    Invalid(String),
    #[error("invalid image reference {reference:?}: {why}")]
    Reference { reference: String, why: String },
}

type Result<T, E = OciError> = std::result::Result<T, E>;

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> OciError {
    let context = context.into();
    move |source| OciError::Io { context, source }
}

fn json_err(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> OciError {
    let what = what.into();
    move |source| OciError::Json { what, source }
}

/// A content descriptor (media type, digest, size).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: String, size: u64) -> Self {
        Self {
            media_type: media_type.to_owned(),
            digest,
            size,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// linux on this machine's architecture, in OCI's (Go's) names.
    pub fn host() -> Self {
        Self {
            architecture: host_architecture().to_owned(),
            os: "linux".to_owned(),
            variant: None,
        }
    }
}

/// This machine's architecture as OCI names it.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The image configuration (only the fields Keelson writes or reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
}

/// What a container of the image runs by default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

/// `sha256:<hex>` and the length of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((format!("sha256:{}", hex(&hasher.finalize())), total))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The hex part of a `sha256:` digest, checked (it becomes a path).
pub fn digest_hex(digest: &str) -> Result<&str> {
    match digest.strip_prefix("sha256:") {
        Some(hex)
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => Err(OciError::Invalid(format!(
            "{digest:?} is not a sha256 digest"
        ))),
    }
}

/// containerd's chain ID of a layer stack (OCI image-spec `ChainID`):
/// the first diff ID, then `sha256(previous + " " + next)`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chain: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match chain.last() {
            None => diff_id.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff_id}").as_bytes()),
        };
        chain.push(next);
    }
    chain
}

// ---------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------

#[derive(Debug, Clone)]
enum LayerEntry {
    Dir { mode: u32 },
    File { data: Vec<u8>, mode: u32 },
    Symlink { target: String },
}

/// One filesystem layer, built in memory and written as a deterministic
/// tar (root-owned, mtime 0, sorted), so the same inputs give the same
/// digests.
#[derive(Debug, Clone, Default)]
pub struct Layer {
    entries: BTreeMap<String, LayerEntry>,
}

impl Layer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A directory (and its parents).
    pub fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, LayerEntry::Dir { mode });
        self
    }

    /// A regular file with these contents (parents created 0755).
    pub fn file(&mut self, path: &str, data: Vec<u8>, mode: u32) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(path, LayerEntry::File { data, mode });
        self
    }

    /// A copy of the host file `source`.
    pub fn copy(&mut self, path: &str, source: &Path, mode: u32) -> Result<&mut Self> {
        let data =
            std::fs::read(source).map_err(io_err(format!("reading {}", source.display())))?;
        Ok(self.file(path, data, mode))
    }

    /// A symbolic link `path -> target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        let path = clean(path);
        self.parents(&path);
        self.entries.insert(
            path,
            LayerEntry::Symlink {
                target: target.to_owned(),
            },
        );
        self
    }

    fn parents(&mut self, path: &str) {
        let mut parent = Path::new(path).parent();
        while let Some(dir) = parent.filter(|p| !p.as_os_str().is_empty()) {
            self.entries
                .entry(dir.to_string_lossy().into_owned())
                .or_insert(LayerEntry::Dir { mode: 0o755 });
            parent = dir.parent();
        }
    }

    /// The uncompressed tar.
    pub fn tar(&self) -> Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.mode(tar::HeaderMode::Deterministic);
        // BTreeMap order puts every directory before what it holds.
        for (path, entry) in &self.entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            let written = match entry {
                LayerEntry::Dir { mode } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_mode(*mode);
                    header.set_size(0);
                    builder.append_data(&mut header, format!("{path}/"), io::empty())
                }
                LayerEntry::File { data, mode } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_mode(*mode);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, path, data.as_slice())
                }
                LayerEntry::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_mode(0o777);
                    header.set_size(0);
                    builder.append_link(&mut header, path, target)
                }
            };
            written.map_err(io_err(format!("adding {path} to a layer")))?;
        }
        builder
            .into_inner()
            .map_err(io_err("finishing a layer tar"))
    }
}

/// A relative tar path: no leading `/` or `./`.
fn clean(path: &str) -> String {
    path.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_owned()
}

/// An image to write: its name (domain-qualified, e.g.
/// `keelson.local/pause:1`), layers (bottom first) and run defaults.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    pub name: String,
    pub layers: Vec<Layer>,
    pub config: ContainerConfig,
    /// One history line per layer (what made it).
    pub history: Vec<String>,
}

/// What [`write_archive`] wrote.
#[derive(Debug, Clone)]
pub struct WrittenImage {
    pub name: String,
    pub path: PathBuf,
    pub manifest_digest: String,
    /// The image ID, as CRI reports it.
    pub config_digest: String,
    pub size: u64,
}

/// Writes `spec` as an OCI archive at `path` (through a temporary file and
/// a rename, so a reader never sees half an archive).
pub fn write_archive(spec: &ImageSpec, path: &Path) -> Result<WrittenImage> {
    let name = normalize_reference(&spec.name)?;
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in &spec.layers {
        let tar = layer.tar()?;
        diff_ids.push(sha256_digest(&tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).map_err(io_err("compressing a layer"))?;
        let gz = gz.finish().map_err(io_err("compressing a layer"))?;
        let digest = sha256_digest(&gz);
        layer_descriptors.push(Descriptor::new(
            MEDIA_TYPE_LAYER_GZIP,
            digest.clone(),
            gz.len() as u64,
        ));
        blobs.push((digest, gz));
    }
    let platform = Platform::host();
    let config = ImageConfig {
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        config: spec.config.clone(),
        rootfs: RootFs {
            kind: "layers".to_owned(),
            diff_ids,
        },
        history: spec
            .history
            .iter()
            .map(|line| History {
                created_by: Some(line.clone()),
                comment: Some("keelson-runtime".to_owned()),
            })
            .collect(),
    };
    let config = serde_json::to_vec(&config).map_err(json_err("image config"))?;
    let config_descriptor = Descriptor::new(
        MEDIA_TYPE_CONFIG,
        sha256_digest(&config),
        config.len() as u64,
    );
    blobs.push((config_descriptor.digest.clone(), config));
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_MANIFEST.to_owned()),
        config: config_descriptor.clone(),
        layers: layer_descriptors,
    };
    let manifest = serde_json::to_vec(&manifest).map_err(json_err("manifest"))?;
    let mut manifest_descriptor = Descriptor::new(
        MEDIA_TYPE_MANIFEST,
        sha256_digest(&manifest),
        manifest.len() as u64,
    );
    blobs.push((manifest_descriptor.digest.clone(), manifest));
    manifest_descriptor
        .annotations
        .insert(ANNOTATION_REF_NAME.to_owned(), name.clone());
    manifest_descriptor
        .annotations
        .insert(ANNOTATION_IMAGE_NAME.to_owned(), name.clone());
    manifest_descriptor.platform = Some(platform);
    let index = Index {
        schema_version: 2,
        media_type: Some(MEDIA_TYPE_INDEX.to_owned()),
        manifests: vec![manifest_descriptor.clone()],
    };
    let index = serde_json::to_vec(&index).map_err(json_err("index"))?;

    let tmp = path.with_extension("tar.partial");
    let file = File::create(&tmp).map_err(io_err(format!("creating {}", tmp.display())))?;
    let mut out = tar::Builder::new(io::BufWriter::new(file));
    out.mode(tar::HeaderMode::Deterministic);
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        out.append_data(&mut header, name, data)
            .map_err(io_err(format!("writing {name} to {}", tmp.display())))
    };
    add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json", &index)?;
    for (digest, data) in &blobs {
        add(&format!("blobs/sha256/{}", digest_hex(digest)?), data)?;
    }
    let writer = out
        .into_inner()
        .map_err(io_err(format!("finishing {}", tmp.display())))?;
    writer
        .into_inner()
        .map_err(|e| OciError::Io {
            context: format!("flushing {}", tmp.display()),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io_err(format!("syncing {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("renaming to {}", path.display())))?;
    let size = std::fs::metadata(path)
        .map_err(io_err(format!("reading {}", path.display())))?
        .len();
    Ok(WrittenImage {
        name,
        path: path.to_path_buf(),
        manifest_digest: manifest_descriptor.digest,
        config_digest: config_descriptor.digest,
        size,
    })
}

// ---------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------

/// Where a regular file's bytes sit inside the archive.
#[derive(Debug, Clone, Copy)]
struct Span {
    offset: u64,
    size: u64,
}

/// An image archive opened for reading: its entries indexed by path, each
/// read in place (the archive is never unpacked to disk).
#[derive(Debug)]
pub struct Archive {
    path: PathBuf,
    files: HashMap<String, Span>,
}

impl Archive {
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(io_err(format!("opening {}", path.display())))?;
        let mut magic = [0u8; 2];
        if (&file).read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b] {
            return Err(OciError::Invalid(format!(
                "{} is gzip-compressed; decompress it first (gunzip) — image archives are plain tars",
                path.display()
            )));
        }
        (&file)
            .seek(SeekFrom::Start(0))
            .map_err(io_err(format!("reading {}", path.display())))?;
        let mut archive = tar::Archive::new(&file);
        let mut files = HashMap::new();
        let mut links: HashMap<String, String> = HashMap::new();
        let entries = archive
            .entries()
            .map_err(io_err(format!("reading {}", path.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_err(format!("reading {}", path.display())))?;
            let name = entry
                .path()
                .map_err(io_err(format!("reading {}", path.display())))?;
            let Some(name) = normalize_entry(&name) else {
                continue;
            };
            let header = entry.header();
            match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    files.insert(
                        name,
                        Span {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                }
                kind @ (tar::EntryType::Symlink | tar::EntryType::Link) => {
                    let Ok(Some(target)) = entry.link_name() else {
                        continue;
                    };
                    // Symlinks are relative to their directory; hard links
                    // to the archive's root.
                    let target = if kind == tar::EntryType::Symlink {
                        Path::new(&name)
                            .parent()
                            .unwrap_or(Path::new(""))
                            .join(target)
                    } else {
                        target.into_owned()
                    };
                    if let Some(target) = normalize_entry(&target) {
                        links.insert(name, target);
                    }
                }
                _ => {}
            }
        }
        // Old `docker save` archives link repeated layers to one copy.
        for (name, target) in &links {
            let mut target = target.clone();
            for _ in 0..8 {
                match links.get(&target) {
                    Some(next) => target = next.clone(),
                    None => break,
                }
            }
            if let Some(span) = files.get(&target).copied() {
                files.insert(name.clone(), span);
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            files,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    /// The size of entry `name`.
    pub fn size(&self, name: &str) -> Result<u64> {
        Ok(self.span(name)?.size)
    }

    fn span(&self, name: &str) -> Result<Span> {
        self.files
            .get(name)
            .copied()
            .ok_or_else(|| OciError::Missing(name.to_owned()))
    }

    /// A reader over entry `name`'s bytes.
    pub fn reader(&self, name: &str) -> Result<io::Take<File>> {
        let span = self.span(name)?;
        let mut file =
            File::open(&self.path).map_err(io_err(format!("opening {}", self.path.display())))?;
        file.seek(SeekFrom::Start(span.offset))
            .map_err(io_err(format!("reading {name}")))?;
        Ok(file.take(span.size))
    }

    /// Entry `name` in memory (JSON documents only: bounded).
    pub fn read(&self, name: &str) -> Result<Vec<u8>> {
        let size = self.size(name)?;
        if size > MAX_JSON {
            return Err(OciError::Invalid(format!(
                "{name} is {size} bytes, more than a JSON document may be"
            )));
        }
        let mut data = Vec::with_capacity(size as usize);
        self.reader(name)?
            .read_to_end(&mut data)
            .map_err(io_err(format!("reading {name}")))?;
        Ok(data)
    }

    fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T> {
        serde_json::from_slice(&self.read(name)?).map_err(json_err(name))
    }

    /// The path of the blob with this digest.
    pub fn blob_entry(digest: &str) -> Result<String> {
        Ok(format!("blobs/sha256/{}", digest_hex(digest)?))
    }

    /// Every named image in the archive, ready to import.
    pub fn images(&self) -> Result<Vec<ImportImage>> {
        if self.contains("index.json") {
            let images = self.oci_images()?;
            if !images.is_empty() || !self.contains("manifest.json") {
                return Ok(images);
            }
        }
        if self.contains("manifest.json") {
            return self.docker_images();
        }
        Err(OciError::Invalid(format!(
            "{} has neither index.json (OCI layout) nor manifest.json (docker save)",
            self.path.display()
        )))
    }

    fn oci_images(&self) -> Result<Vec<ImportImage>> {
        let index: Index = self.json("index.json")?;
        // `docker save` (25+) writes both files; its RepoTags name the
        // images when index.json only carries a tag.
        let repo_tags = self.docker_repo_tags();
        let mut images = Vec::new();
        for (i, descriptor) in index.manifests.iter().enumerate() {
            let names = match image_name(descriptor) {
                Some(name) => vec![name],
                None => repo_tags.get(i).cloned().unwrap_or_default(),
            };
            if names.is_empty() {
                continue;
            }
            let resolved = self.resolve(descriptor)?;
            for name in names {
                images.push(ImportImage {
                    name: normalize_reference(&name)?,
                    target: strip(descriptor),
                    blobs: resolved.blobs.clone(),
                    layers: resolved.layers.clone(),
                    manifest: resolved.manifest.clone(),
                    config: resolved.config.clone(),
                    diff_ids: resolved.diff_ids.clone(),
                });
            }
        }
        if images.is_empty() && !index.manifests.is_empty() && repo_tags.is_empty() {
            return Err(OciError::Invalid(format!(
                "no image in {}'s index.json has a name ({ANNOTATION_REF_NAME} or {ANNOTATION_IMAGE_NAME} holding a full reference)",
                self.path.display()
            )));
        }
        Ok(images)
    }

    fn docker_repo_tags(&self) -> Vec<Vec<String>> {
        self.json::<Vec<DockerManifest>>("manifest.json")
            .map(|entries| entries.into_iter().map(|e| e.repo_tags).collect())
            .unwrap_or_default()
    }

    /// Follows an index entry down to one manifest for this platform.
    fn resolve(&self, top: &Descriptor) -> Result<Resolved> {
        let mut blobs = Vec::new();
        let mut descriptor = strip(top);
        let mut pending_index: Vec<(Descriptor, Index)> = Vec::new();
        for _ in 0..4 {
            match descriptor.media_type.as_str() {
                MEDIA_TYPE_INDEX | MEDIA_TYPE_DOCKER_MANIFEST_LIST => {
                    let index: Index = self.json(&Self::blob_entry(&descriptor.digest)?)?;
                    let host = Platform::host();
                    let present: Vec<&Descriptor> = index
                        .manifests
                        .iter()
                        .filter(|d| {
                            Self::blob_entry(&d.digest).is_ok_and(|entry| self.contains(&entry))
                        })
                        .collect();
                    let chosen = present
                        .iter()
                        .find(|d| {
                            d.platform.as_ref().is_some_and(|p| {
                                p.os == host.os && p.architecture == host.architecture
                            })
                        })
                        .or_else(|| present.first())
                        .copied()
                        .ok_or_else(|| {
                            OciError::Invalid(format!(
                                "index {} lists no manifest present in the archive",
                                descriptor.digest
                            ))
                        })?;
                    let next = strip(chosen);
                    pending_index.push((descriptor, index));
                    descriptor = next;
                }
                MEDIA_TYPE_MANIFEST | MEDIA_TYPE_DOCKER_MANIFEST => {
                    let manifest: Manifest = self.json(&Self::blob_entry(&descriptor.digest)?)?;
                    let config: ImageConfig =
                        self.json(&Self::blob_entry(&manifest.config.digest)?)?;
                    let layers: Vec<&Descriptor> = manifest
                        .layers
                        .iter()
                        .filter(|l| is_layer(&l.media_type))
                        .collect();
                    if layers.len() != config.rootfs.diff_ids.len() {
                        return Err(OciError::Invalid(format!(
                            "manifest {} has {} layers but its config {} diff IDs",
                            descriptor.digest,
                            layers.len(),
                            config.rootfs.diff_ids.len()
                        )));
                    }
                    for layer in &manifest.layers {
                        blobs.push(Blob::entry(strip(layer), BTreeMap::new())?);
                    }
                    blobs.push(Blob::entry(strip(&manifest.config), BTreeMap::new())?);
                    blobs.push(Blob::entry(
                        descriptor.clone(),
                        manifest_gc_labels(&manifest),
                    )?);
                    // Indexes last, each naming only the children written.
                    let mut child = descriptor.digest.clone();
                    for (index_descriptor, index) in pending_index.into_iter().rev() {
                        let labels = index
                            .manifests
                            .iter()
                            .enumerate()
                            .filter(|(_, d)| d.digest == child)
                            .map(|(i, d)| {
                                (
                                    format!("containerd.io/gc.ref.content.m.{i}"),
                                    d.digest.clone(),
                                )
                            })
                            .collect();
                        child = index_descriptor.digest.clone();
                        blobs.push(Blob::entry(index_descriptor, labels)?);
                    }
                    return Ok(Resolved {
                        blobs,
                        layers: layers.into_iter().map(strip).collect(),
                        config: strip(&manifest.config),
                        manifest: descriptor,
                        diff_ids: config.rootfs.diff_ids,
                    });
                }
                other => {
                    return Err(OciError::Invalid(format!(
                        "unsupported media type {other:?} for {}",
                        descriptor.digest
                    )));
                }
            }
        }
        Err(OciError::Invalid("indexes nested too deep".to_owned()))
    }

    fn docker_images(&self) -> Result<Vec<ImportImage>> {
        let entries: Vec<DockerManifest> = self.json("manifest.json")?;
        let mut images = Vec::new();
        for entry in entries {
            if entry.repo_tags.is_empty() {
                continue;
            }
            let config_bytes = self.read(&entry.config)?;
            let config: ImageConfig =
                serde_json::from_slice(&config_bytes).map_err(json_err(entry.config.as_str()))?;
            if entry.layers.len() != config.rootfs.diff_ids.len() {
                return Err(OciError::Invalid(format!(
                    "{} lists {} layers but its config {} diff IDs",
                    entry.config,
                    entry.layers.len(),
                    config.rootfs.diff_ids.len()
                )));
            }
            let config_descriptor = Descriptor::new(
                MEDIA_TYPE_DOCKER_CONFIG,
                sha256_digest(&config_bytes),
                config_bytes.len() as u64,
            );
            let mut blobs = Vec::new();
            let mut layers = Vec::new();
            for layer in &entry.layers {
                let mut magic = [0u8; 2];
                let gzip =
                    self.reader(layer)?.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
                let (digest, size) = sha256_reader(self.reader(layer)?)
                    .map_err(io_err(format!("reading {layer}")))?;
                let media_type = if gzip {
                    MEDIA_TYPE_DOCKER_LAYER_GZIP
                } else {
                    MEDIA_TYPE_DOCKER_LAYER
                };
                let descriptor = Descriptor::new(media_type, digest, size);
                layers.push(descriptor.clone());
                blobs.push(Blob {
                    descriptor,
                    source: BlobSource::Entry(layer.clone()),
                    labels: BTreeMap::new(),
                });
            }
            blobs.push(Blob {
                descriptor: config_descriptor.clone(),
                source: BlobSource::Bytes(config_bytes),
                labels: BTreeMap::new(),
            });
            let manifest = Manifest {
                schema_version: 2,
                media_type: Some(MEDIA_TYPE_DOCKER_MANIFEST.to_owned()),
                config: config_descriptor.clone(),
                layers,
            };
            let manifest_bytes = serde_json::to_vec(&manifest).map_err(json_err("manifest"))?;
            let manifest_descriptor = Descriptor::new(
                MEDIA_TYPE_DOCKER_MANIFEST,
                sha256_digest(&manifest_bytes),
                manifest_bytes.len() as u64,
            );
            blobs.push(Blob {
                descriptor: manifest_descriptor.clone(),
                source: BlobSource::Bytes(manifest_bytes),
                labels: manifest_gc_labels(&manifest),
            });
            for tag in &entry.repo_tags {
                images.push(ImportImage {
                    name: normalize_reference(tag)?,
                    target: manifest_descriptor.clone(),
                    blobs: blobs.clone(),
                    layers: manifest.layers.clone(),
                    manifest: manifest_descriptor.clone(),
                    config: config_descriptor.clone(),
                    diff_ids: config.rootfs.diff_ids.clone(),
                });
            }
        }
        Ok(images)
    }
}

/// One entry of a `docker save` manifest.json.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

struct Resolved {
    blobs: Vec<Blob>,
    layers: Vec<Descriptor>,
    manifest: Descriptor,
    config: Descriptor,
    diff_ids: Vec<String>,
}

/// A descriptor without annotations or platform (as stored by containerd).
fn strip(descriptor: &Descriptor) -> Descriptor {
    Descriptor::new(
        &descriptor.media_type,
        descriptor.digest.clone(),
        descriptor.size,
    )
}

fn is_layer(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.oci.image.layer.")
        || media_type.starts_with("application/vnd.docker.image.rootfs.")
}

/// The labels by which containerd's garbage collector sees a manifest's
/// config and layers as referenced (containerd's `images.ChildGCLabels`).
fn manifest_gc_labels(manifest: &Manifest) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert(
        "containerd.io/gc.ref.content.config".to_owned(),
        manifest.config.digest.clone(),
    );
    for (i, layer) in manifest.layers.iter().enumerate() {
        labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    labels
}

/// The full name an index entry gives its image, if any: containerd's
/// annotation, else the OCI ref name when it is a whole reference
/// (`busybox:1`, `keelson.local/pause:1`), not just a tag (`latest`).
fn image_name(descriptor: &Descriptor) -> Option<String> {
    if let Some(name) = descriptor.annotations.get(ANNOTATION_IMAGE_NAME) {
        return Some(name.clone());
    }
    descriptor
        .annotations
        .get(ANNOTATION_REF_NAME)
        // A bare tag (`latest`, `1.0`) has neither.
        .filter(|name| name.contains('/') || name.contains(':'))
        .cloned()
}

fn normalize_entry(path: &Path) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// A blob to put in containerd's content store.
#[derive(Debug, Clone)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub source: BlobSource,
    /// Garbage-collection labels naming the blobs this one references.
    pub labels: BTreeMap<String, String>,
}

impl Blob {
    fn entry(descriptor: Descriptor, labels: BTreeMap<String, String>) -> Result<Self> {
        Ok(Self {
            source: BlobSource::Entry(Archive::blob_entry(&descriptor.digest)?),
            descriptor,
            labels,
        })
    }
}

#[derive(Debug, Clone)]
pub enum BlobSource {
    /// An entry of the archive.
    Entry(String),
    /// Made during reading (a docker archive's manifest and config).
    Bytes(Vec<u8>),
}

/// One image of an archive, as containerd needs it: the record's name and
/// target, every blob (children before the blobs naming them), and the
/// manifest's layers with their diff IDs for unpacking.
#[derive(Debug, Clone)]
pub struct ImportImage {
    /// The normalised reference (`docker.io/library/busybox:latest`).
    pub name: String,
    /// What the image record points at (a manifest or an index).
    pub target: Descriptor,
    pub blobs: Vec<Blob>,
    /// The manifest's filesystem layers, bottom first.
    pub layers: Vec<Descriptor>,
    /// The manifest chosen for this platform.
    pub manifest: Descriptor,
    /// Its config: the image ID is this digest.
    pub config: Descriptor,
    /// The uncompressed digests of the layers, bottom first.
    pub diff_ids: Vec<String>,
}

impl ImportImage {
    /// The layer blobs, bottom first, paired with their diff IDs.
    pub fn unpack_layers(&self) -> impl Iterator<Item = (&Descriptor, &String)> {
        self.layers.iter().zip(self.diff_ids.iter())
    }
}

// ---------------------------------------------------------------------
// References
// ---------------------------------------------------------------------

/// Normalises an image reference as Docker and containerd's CRI plugin do:
/// `busybox` → `docker.io/library/busybox:latest`, `me/app` →
/// `docker.io/me/app:latest`; a reference whose first component is a
/// domain (has `.` or `:`, or is `localhost`) keeps it, and
/// `keelson.local/pause:1` stays as it is.
pub fn normalize_reference(reference: &str) -> Result<String> {
    let bad = |why: &str| OciError::Reference {
        reference: reference.to_owned(),
        why: why.to_owned(),
    };
    if reference.is_empty() {
        return Err(bad("empty"));
    }
    let (name, digest) = match reference.split_once('@') {
        Some((name, digest)) => {
            digest_hex(digest).map_err(|_| bad("the digest is not sha256:<64 hex digits>"))?;
            (name, Some(digest))
        }
        None => (reference, None),
    };
    // A tag follows the last ':' after the last '/'.
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(tag) = tag
        && (tag.is_empty()
            || tag.len() > 128
            || !tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(bad("invalid tag"));
    }
    let (domain, path) = match repository.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_owned(), rest.to_owned())
        }
        Some(_) => ("docker.io".to_owned(), repository.to_owned()),
        None => ("docker.io".to_owned(), format!("library/{repository}")),
    };
    if path.is_empty()
        || !path.split('/').all(|part| {
            !part.is_empty()
                && part.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                })
        })
    {
        return Err(bad(
            "the repository must be lower-case [a-z0-9._-] path components",
        ));
    }
    let mut out = format!("{domain}/{path}");
    match (tag, digest) {
        (Some(tag), _) => {
            out.push(':');
            out.push_str(tag);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(digest) = digest {
        out.push('@');
        out.push_str(digest);
    }
    Ok(out)
}

/// `repository@digest` of a normalised reference (its repo digest).
pub fn repo_digest(reference: &str, manifest_digest: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let repository = match name[last_slash..].rfind(':') {
        Some(i) => &name[..last_slash + i],
        None => name,
    };
    format!("{repository}@{manifest_digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_normalise_like_docker() {
        let cases = [
            ("busybox", "docker.io/library/busybox:latest"),
            ("busybox:1.36", "docker.io/library/busybox:1.36"),
            ("me/app", "docker.io/me/app:latest"),
            ("keelson.local/pause:1", "keelson.local/pause:1"),
            ("localhost/x", "localhost/x:latest"),
            ("registry:5000/a/b:c", "registry:5000/a/b:c"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_reference(input).unwrap(), want, "{input}");
        }
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normalize_reference(&format!("keelson.local/x@{digest}")).unwrap(),
            format!("keelson.local/x@{digest}")
        );
        for bad in ["", "Upper/case", "a/b:", "x@sha256:12", "a//b"] {
            assert!(normalize_reference(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            repo_digest("registry:5000/a/b:c", &digest),
            format!("registry:5000/a/b@{digest}")
        );
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = sha256_digest(b"a");
        let b = sha256_digest(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], sha256_digest(format!("{a} {b}").as_bytes()));
    }

    fn sample() -> ImageSpec {
        let mut layer = Layer::new();
        layer
            .file("bin/tool", b"#!/bin/true\n".to_vec(), 0o755)
            .symlink("bin/sh", "tool")
            .dir("tmp", 0o1777);
        ImageSpec {
            name: "keelson.local/sample:1".to_owned(),
            layers: vec![layer],
            config: ContainerConfig {
                cmd: Some(vec!["/bin/sh".to_owned()]),
                ..Default::default()
            },
            history: vec!["sample".to_owned()],
        }
    }

    #[test]
    fn written_archives_read_back_with_matching_digests() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sample.tar");
        let written = write_archive(&sample(), &path).unwrap();
        // Deterministic: the same spec gives the same manifest.
        let again = write_archive(&sample(), &dir.path().join("again.tar")).unwrap();
        assert_eq!(written.manifest_digest, again.manifest_digest);

        let archive = Archive::open(&path).unwrap();
        assert!(archive.contains("oci-layout"));
        let images = archive.images().unwrap();
        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!(image.name, "keelson.local/sample:1");
        assert_eq!(image.target.digest, written.manifest_digest);
        assert_eq!(image.config.digest, written.config_digest);
        // Every blob is in the archive and hashes to its digest.
        for blob in &image.blobs {
            let BlobSource::Entry(entry) = &blob.source else {
                panic!("OCI blobs come from the archive");
            };
            let (digest, size) = sha256_reader(archive.reader(entry).unwrap()).unwrap();
            assert_eq!(digest, blob.descriptor.digest);
            assert_eq!(size, blob.descriptor.size);
        }
        // The layer's diff ID is the digest of the decompressed tar, which
        // holds what was put in.
        let (layer, diff_id) = image.unpack_layers().next().unwrap();
        let gz = archive
            .reader(&Archive::blob_entry(&layer.digest).unwrap())
            .unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut tar_bytes)
            .unwrap();
        assert_eq!(&sha256_digest(&tar_bytes), diff_id);
        let mut names = Vec::new();
        for entry in tar::Archive::new(tar_bytes.as_slice()).entries().unwrap() {
            let entry = entry.unwrap();
            names.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(names, ["bin/", "bin/sh", "bin/tool", "tmp/"]);
        // The manifest names its config and layer for containerd's GC.
        let manifest = image
            .blobs
            .iter()
            .find(|b| b.descriptor.digest == image.manifest.digest)
            .unwrap();
        assert_eq!(
            manifest.labels["containerd.io/gc.ref.content.config"],
            image.config.digest
        );
        assert_eq!(
            manifest.labels["containerd.io/gc.ref.content.l.0"],
            layer.digest
        );
    }

    /// A `docker save` style archive: manifest.json, the config, one
    /// layer tar and a second layer entry symlinked to it.
    fn docker_archive(path: &Path, layer: &[u8], diff_ids: &[&str]) -> String {
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string();
        let config_name = format!(
            "{}.json",
            digest_hex(&sha256_digest(config.as_bytes())).unwrap()
        );
        let manifest = serde_json::json!([{
            "Config": config_name,
            "RepoTags": ["busybox:test"],
            "Layers": ["abc/layer.tar", "def/layer.tar"],
        }])
        .to_string();
        let mut out = tar::Builder::new(File::create(path).unwrap());
        let mut add = |name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            out.append_data(&mut header, name, data).unwrap();
        };
        add("manifest.json", manifest.as_bytes());
        add(&config_name, config.as_bytes());
        add("abc/layer.tar", layer);
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        out.append_link(&mut link, "def/layer.tar", "../abc/layer.tar")
            .unwrap();
        out.finish().unwrap();
        config
    }

    #[test]
    fn docker_save_archives_get_a_schema2_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let layer = sample().layers[0].tar().unwrap();
        let diff_id = sha256_digest(&layer);
        // Two layers but one diff ID: refused, with a reason.
        let path = dir.path().join("bad.tar");
        docker_archive(&path, &layer, &[&diff_id]);
        let err = Archive::open(&path).unwrap().images().unwrap_err();
        assert!(err.to_string().contains("2 layers"), "{err}");

        // The same layer twice (old docker save links repeated layers).
        let path = dir.path().join("docker.tar");
        let config = docker_archive(&path, &layer, &[&diff_id, &diff_id]);
        let images = Archive::open(&path).unwrap().images().unwrap();
        assert_eq!(images.len(), 1);
        let image = &images[0];
        assert_eq!(image.name, "docker.io/library/busybox:test");
        assert_eq!(image.target.media_type, MEDIA_TYPE_DOCKER_MANIFEST);
        assert_eq!(image.config.digest, sha256_digest(config.as_bytes()));
        let layers: Vec<_> = image.unpack_layers().collect();
        assert_eq!(layers.len(), 2);
        // Uncompressed docker layers: digest == diff ID.
        assert_eq!(layers[0].0.digest, diff_id);
        assert_eq!(layers[1].0.digest, diff_id);
        let manifest = image.blobs.last().unwrap();
        let BlobSource::Bytes(bytes) = &manifest.source else {
            panic!("the docker manifest is synthesised");
        };
        assert_eq!(sha256_digest(bytes), image.target.digest);
        assert_eq!(manifest.labels["containerd.io/gc.ref.content.l.1"], diff_id);
    }

    #[test]
    fn a_bare_tag_is_not_an_image_name() {
        let mut descriptor = Descriptor::new(MEDIA_TYPE_MANIFEST, sha256_digest(b"m"), 1);
        descriptor
            .annotations
            .insert(ANNOTATION_REF_NAME.to_owned(), "1.0".to_owned());
        assert_eq!(image_name(&descriptor), None);
        descriptor
            .annotations
            .insert(ANNOTATION_REF_NAME.to_owned(), "busybox:1.0".to_owned());
        assert_eq!(image_name(&descriptor).as_deref(), Some("busybox:1.0"));
        descriptor.annotations.insert(
            ANNOTATION_IMAGE_NAME.to_owned(),
            "keelson.local/x:1".to_owned(),
        );
        assert_eq!(
            image_name(&descriptor).as_deref(),
            Some("keelson.local/x:1")
        );
    }
}
