//! The cluster state store: one trait shaped after etcd's model, with an
//! embedded SQLite backend (the default, kine-style revision log) and an
//! etcd backend for clusters that outgrow one machine.
//!
//! The store knows nothing of Kubernetes objects: keys are strings laid out
//! as `/registry/<group>/<resource>/<namespace>/<name>` (see [`keys`]),
//! values are opaque bytes. Every write gets a new, cluster-wide, strictly
//! increasing revision; an object's `resourceVersion` is the revision of its
//! last write (its `mod_revision`). Only the API server uses this module.

pub mod etcd;
pub mod keys;
pub mod sqlite;

use std::pin::Pin;

use async_trait::async_trait;
use futures::Stream;
use thiserror::Error;

/// A store revision (etcd's `int64` revision; 0 means "none yet").
pub type Revision = i64;

/// One key at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: Vec<u8>,
    /// Revision of the write that created this key (since its last delete).
    pub create_revision: Revision,
    /// Revision of the last write to this key.
    pub mod_revision: Revision,
}

/// A consistent read of many keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeResult {
    /// Matching keys in ascending key order, at most `limit` of them.
    pub kvs: Vec<KeyValue>,
    /// The revision this read observed (the store's revision when
    /// `revision` was not given, else that revision).
    pub revision: Revision,
    /// Whether more keys matched beyond `limit`.
    pub more: bool,
}

/// What a watch event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// The key was created (`kv.create_revision == kv.mod_revision`).
    Added,
    /// The key existed and was overwritten.
    Modified,
    /// The key was deleted; `kv.value` is empty and `kv.mod_revision` is
    /// the revision of the delete.
    Deleted,
}

/// One change, in revision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The key's value just before this change (`None` for `Added`).
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision at which this change happened.
    pub fn revision(&self) -> Revision {
        self.kv.mod_revision
    }
}

/// An ordered stream of changes. It ends only when the store closes it
/// (then the consumer re-watches); an `Err(Compacted)` item means events
/// were lost and the consumer must relist.
pub type WatchStream = Pin<Box<dyn Stream<Item = Result<Event, StoreError>> + Send>>;

/// Store failures. The API server maps these to Kubernetes statuses.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {0} not found")]
    NotFound(String),
    /// A compare-and-swap failed: the key's mod revision is not the
    /// expected one. `current` is the key's current value.
    #[error("key {key} was modified (expected revision {expected}, found {})", current.mod_revision)]
    Conflict {
        key: String,
        expected: Revision,
        current: Box<KeyValue>,
    },
    /// The requested revision is older than the last compaction.
    #[error("revision {requested} is compacted (oldest available {compacted})")]
    Compacted {
        requested: Revision,
        compacted: Revision,
    },
    /// The requested revision is newer than the store's.
    #[error("revision {requested} is in the future (current {current})")]
    FutureRevision {
        requested: Revision,
        current: Revision,
    },
    #[error("store backend: {0}")]
    Backend(String),
}

/// The state store. Every method is linearizable with respect to the others
/// on the same backend (for etcd: across every server using the cluster).
/// Writes return only once they are durable.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The key's current value, if any.
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError>;

    /// Keys starting with `prefix` and greater than `start_after` (when
    /// given), in key order, at `revision` (when given; else the current
    /// one), at most `limit` of them (when given, > 0).
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<Revision>,
    ) -> Result<RangeResult, StoreError>;

    /// Number of keys starting with `prefix`, now.
    async fn count(&self, prefix: &str) -> Result<i64, StoreError>;

    /// Creates `key` if absent. `Err(AlreadyExists)` otherwise.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError>;

    /// Replaces `key`'s value if its mod revision is `expected`.
    /// `Err(NotFound)` if absent, `Err(Conflict)` if modified since.
    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError>;

    /// Deletes `key`, if its mod revision is `expected` (when given).
    /// Returns the deleted value (with its last `mod_revision`) and the
    /// revision of the delete.
    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision, StoreError>;

    /// The oldest revision still readable (everything before it compacted).
    async fn compacted_revision(&self) -> Result<Revision, StoreError>;

    /// Every change to keys starting with `prefix` with revision > `after`,
    /// in revision order, then live changes as they happen.
    /// `Err(Compacted)` if `after` predates the last compaction.
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError>;

    /// Discards history older than `revision` (current values stay).
    async fn compact(&self, revision: Revision) -> Result<(), StoreError>;
}
