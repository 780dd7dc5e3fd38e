//! The etcd store: the [`Store`] trait over a real etcd v3 cluster through
//! `etcd-client`, for control planes that outgrow one machine. Several
//! `keelson-server` processes on one etcd share one state and one revision
//! sequence; etcd provides that.
//!
//! Every compare-and-swap is one etcd transaction (create: `create_revision
//! == 0`; update and guarded delete: the key exists and `mod_revision ==
//! expected`, else read the key to report `NotFound` or `Conflict`). etcd's
//! "required revision has been compacted" / "is a future revision" errors
//! become [`StoreError::Compacted`] / [`StoreError::FutureRevision`].
//!
//! etcd does not report its compaction revision directly, so
//! [`Store::compacted_revision`] finds it by probing (a binary search of
//! cheap count-only reads at past revisions, starting from the last value
//! this process saw). It is exact unless another client compacts while
//! the probe runs. This module owns only its etcd client.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType, GetOptions, PutOptions,
    Txn, TxnOp, TxnOpResponse, TxnResponse, WatchOptions,
};
use futures::stream;

use super::{Event, EventKind, KeyValue, RangeResult, Revision, Store, StoreError, WatchStream};

/// Bound on one etcd request (a dead endpoint must not hang callers).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on establishing a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A key used for revision probes; it never needs to exist.
const PROBE_KEY: &[u8] = b"/";

/// The etcd-backed [`Store`].
pub struct EtcdStore {
    client: Client,
    endpoints: Vec<String>,
    /// The newest compaction revision this process has seen (a lower bound
    /// of the cluster's).
    compacted: AtomicI64,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
}

/// How an etcd failure relates to revisions.
enum Failure {
    Compacted,
    Future,
    Other(String),
}

fn classify(e: &etcd_client::Error) -> Failure {
    if let etcd_client::Error::GRpcStatus(status) = e {
        let message = status.message();
        if message.contains("required revision has been compacted") {
            return Failure::Compacted;
        }
        if message.contains("required revision is a future revision") {
            return Failure::Future;
        }
    }
    Failure::Other(e.to_string())
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("etcd: {e}"))
}

/// Runs one etcd request with [`REQUEST_TIMEOUT`].
async fn timed<T>(
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, etcd_client::Error> {
    match tokio::time::timeout(REQUEST_TIMEOUT, request).await {
        Ok(result) => result,
        Err(_) => Err(etcd_client::Error::Internal(format!(
            "no answer within {}s",
            REQUEST_TIMEOUT.as_secs()
        ))),
    }
}

/// The key range `[start, end)` of keys starting with `prefix`, in etcd's
/// terms (the empty prefix is every key: `["\0", "\0")`). Keys are UTF-8,
/// which never contains 0xFF, so incrementing the last byte never carries.
fn bounds(prefix: &str) -> (Vec<u8>, Vec<u8>) {
    if prefix.is_empty() {
        return (vec![0], vec![0]);
    }
    let start = prefix.as_bytes().to_vec();
    let mut end = start.clone();
    if let Some(last) = end.last_mut() {
        *last = last.saturating_add(1);
    }
    (start, end)
}

fn convert(kv: &etcd_client::KeyValue) -> Result<KeyValue, StoreError> {
    Ok(KeyValue {
        key: kv
            .key_str()
            .map_err(|e| backend(format!("a key is not UTF-8: {e}")))?
            .to_owned(),
        value: kv.value().to_vec(),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    })
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> Result<Revision, StoreError> {
    header
        .map(|h| h.revision())
        .ok_or_else(|| backend("response without a header"))
}

/// The first response of a transaction's branch.
fn first_response(resp: &TxnResponse) -> Result<TxnOpResponse, StoreError> {
    resp.op_responses()
        .into_iter()
        .next()
        .ok_or_else(|| backend("transaction without a response"))
}

/// The key read by a failed CAS's `else` branch: `NotFound` or `Conflict`.
fn cas_failure(key: &str, expected: Revision, resp: &TxnResponse) -> StoreError {
    let current = match first_response(resp) {
        Ok(TxnOpResponse::Get(get)) => get.kvs().first().map(convert),
        Ok(_) => return backend("unexpected transaction response"),
        Err(e) => return e,
    };
    match current {
        None => StoreError::NotFound(key.to_owned()),
        Some(Ok(current)) => StoreError::Conflict {
            key: key.to_owned(),
            expected,
            current: Box::new(current),
        },
        Some(Err(e)) => e,
    }
}

/// Whether a revision can be read.
enum Probe {
    Readable,
    Compacted,
    Future,
}

impl EtcdStore {
    /// Connects to etcd at `endpoints` (`http://host:port`, or `host:port`
    /// for plain HTTP) and checks it answers. Requests are load-balanced
    /// over the endpoints; each is bounded by a 30 s timeout.
    pub async fn connect(endpoints: &[String]) -> Result<EtcdStore, StoreError> {
        if endpoints.is_empty() {
            return Err(backend("no endpoints given"));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = timed(Client::connect(endpoints, Some(options)))
            .await
            .map_err(backend)?;
        let store = EtcdStore {
            client,
            endpoints: endpoints.to_vec(),
            compacted: AtomicI64::new(0),
        };
        let revision = store.current_revision().await?;
        tracing::info!(endpoints = ?endpoints, revision, "connected to etcd");
        Ok(store)
    }

    async fn probe(&self, revision: Revision) -> Result<Probe, StoreError> {
        let options = GetOptions::new().with_count_only().with_revision(revision);
        match timed(self.client.kv_client().get(PROBE_KEY, Some(options))).await {
            Ok(_) => Ok(Probe::Readable),
            Err(e) => match classify(&e) {
                Failure::Compacted => Ok(Probe::Compacted),
                Failure::Future => Ok(Probe::Future),
                Failure::Other(e) => Err(backend(e)),
            },
        }
    }

    /// Maps a failed read at `requested` to the store's error.
    async fn revision_error(&self, requested: Revision, e: etcd_client::Error) -> StoreError {
        match classify(&e) {
            Failure::Compacted => match self.compacted_revision().await {
                Ok(compacted) => StoreError::Compacted {
                    requested,
                    compacted,
                },
                Err(e) => e,
            },
            Failure::Future => match self.current_revision().await {
                Ok(current) => StoreError::FutureRevision { requested, current },
                Err(e) => e,
            },
            Failure::Other(message) => backend(message),
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let resp = timed(self.client.kv_client().get(key, None))
            .await
            .map_err(backend)?;
        resp.kvs().first().map(convert).transpose()
    }

    /// `limit` of `Some(0)` means no limit, as in etcd.
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<Revision>,
    ) -> Result<RangeResult, StoreError> {
        let (mut start, end) = bounds(prefix);
        if let Some(after) = start_after
            && after.as_bytes() >= prefix.as_bytes()
        {
            start = after.as_bytes().to_vec();
            start.push(0);
        }
        let mut options = GetOptions::new().with_range(end);
        if let Some(limit) = limit.filter(|&l| l > 0) {
            options = options.with_limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        let revision = revision.filter(|&r| r > 0);
        if let Some(revision) = revision {
            options = options.with_revision(revision);
        }
        let resp = match timed(self.client.kv_client().get(start, Some(options))).await {
            Ok(resp) => resp,
            Err(e) => return Err(self.revision_error(revision.unwrap_or(0), e).await),
        };
        let at = match revision {
            Some(revision) => revision,
            None => header_revision(resp.header())?,
        };
        Ok(RangeResult {
            kvs: resp.kvs().iter().map(convert).collect::<Result<_, _>>()?,
            revision: at,
            more: resp.more(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let (start, end) = bounds(prefix);
        let options = GetOptions::new().with_range(end).with_count_only();
        let resp = timed(self.client.kv_client().get(start, Some(options)))
            .await
            .map_err(backend)?;
        Ok(resp.count())
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<KeyValue, StoreError> {
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.clone(), None)]);
        let resp = timed(self.client.kv_client().txn(txn))
            .await
            .map_err(backend)?;
        if !resp.succeeded() {
            return Err(StoreError::AlreadyExists(key.to_owned()));
        }
        let revision = header_revision(resp.header())?;
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision: revision,
            mod_revision: revision,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<KeyValue, StoreError> {
        // `version > 0`: the key exists (a missing key's mod_revision is 0).
        let txn = Txn::new()
            .when([
                Compare::version(key, CompareOp::Greater, 0),
                Compare::mod_revision(key, CompareOp::Equal, expected),
            ])
            .and_then([TxnOp::put(
                key,
                value.clone(),
                Some(PutOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed(self.client.kv_client().txn(txn))
            .await
            .map_err(backend)?;
        if !resp.succeeded() {
            return Err(cas_failure(key, expected, &resp));
        }
        let revision = header_revision(resp.header())?;
        let create_revision = match first_response(&resp)? {
            TxnOpResponse::Put(put) => put
                .prev_key()
                .map(|prev| prev.create_revision())
                .ok_or_else(|| backend("update without the previous value"))?,
            _ => return Err(backend("unexpected transaction response")),
        };
        Ok(KeyValue {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: revision,
        })
    }

    async fn delete(
        &self,
        key: &str,
        expected: Option<Revision>,
    ) -> Result<(KeyValue, Revision), StoreError> {
        let mut compares = vec![Compare::version(key, CompareOp::Greater, 0)];
        if let Some(expected) = expected {
            compares.push(Compare::mod_revision(key, CompareOp::Equal, expected));
        }
        let txn = Txn::new()
            .when(compares)
            .and_then([TxnOp::delete(
                key,
                Some(DeleteOptions::new().with_prev_key()),
            )])
            .or_else([TxnOp::get(key, None)]);
        let resp = timed(self.client.kv_client().txn(txn))
            .await
            .map_err(backend)?;
        if !resp.succeeded() {
            return Err(cas_failure(key, expected.unwrap_or(0), &resp));
        }
        let revision = header_revision(resp.header())?;
        match first_response(&resp)? {
            TxnOpResponse::Delete(deleted) => match deleted.prev_kvs().first() {
                Some(prev) => Ok((convert(prev)?, revision)),
                None => Err(backend("delete without the previous value")),
            },
            _ => Err(backend("unexpected transaction response")),
        }
    }

    async fn current_revision(&self) -> Result<Revision, StoreError> {
        let options = GetOptions::new().with_count_only();
        let resp = timed(self.client.kv_client().get(PROBE_KEY, Some(options)))
            .await
            .map_err(backend)?;
        header_revision(resp.header())
    }

    /// The revision of the last compaction, 0 if none, found by probing
    /// (see the module docs).
    async fn compacted_revision(&self) -> Result<Revision, StoreError> {
        let current = self.current_revision().await?;
        let mut low = self
            .compacted
            .load(Ordering::Relaxed)
            .clamp(1, current.max(1));
        if matches!(self.probe(low).await?, Probe::Readable) {
            return Ok(if low <= 1 { 0 } else { low });
        }
        // `low` is compacted and `current` is readable: find the oldest
        // readable revision between them.
        let mut high = current;
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            match self.probe(middle).await? {
                Probe::Readable => high = middle,
                Probe::Compacted => low = middle,
                Probe::Future => high = middle,
            }
        }
        self.compacted.fetch_max(high, Ordering::Relaxed);
        Ok(high)
    }

    /// `Err(Compacted)` when `after + 1` is already compacted (checked
    /// before the watch starts; a compaction racing the start shows up as
    /// one `Err(Compacted)` item). `Deleted` events carry the deleted
    /// key's `create_revision` (from etcd's previous value).
    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream, StoreError> {
        let start = after.max(0) + 1;
        if let Probe::Compacted = self.probe(start).await? {
            return Err(StoreError::Compacted {
                requested: start,
                compacted: self.compacted_revision().await?,
            });
        }
        let (key, end) = bounds(prefix);
        let options = WatchOptions::new()
            .with_range(end)
            .with_start_revision(start)
            .with_prev_key()
            .with_progress_notify();
        let mut watch = timed(self.client.watch_client().watch(key, Some(options)))
            .await
            .map_err(backend)?;
        // Wait for etcd to register the watch, so errors surface here.
        let created = timed(watch.message()).await.map_err(backend)?;
        match created {
            Some(resp) if resp.created() && !resp.canceled() => {}
            Some(resp) if resp.compact_revision() > 0 => {
                return Err(StoreError::Compacted {
                    requested: start,
                    compacted: resp.compact_revision(),
                });
            }
            Some(resp) => {
                return Err(backend(format!(
                    "watch not created: {}",
                    resp.cancel_reason()
                )));
            }
            None => return Err(backend("watch stream closed before it was created")),
        }
        tracing::debug!(prefix, start, "etcd watch created");
        let state = EtcdWatch {
            watch,
            pending: VecDeque::new(),
            next: start,
            done: false,
        };
        Ok(Box::pin(stream::unfold(state, EtcdWatch::next)))
    }

    /// Idempotent: compacting at or below the last compaction (or at
    /// revision 1 or below) does nothing. `Err(FutureRevision)` above the
    /// current revision.
    async fn compact(&self, revision: Revision) -> Result<(), StoreError> {
        if revision <= 1 {
            return Ok(());
        }
        match timed(self.client.kv_client().compact(revision, None)).await {
            Ok(_) => {
                self.compacted.fetch_max(revision, Ordering::Relaxed);
                tracing::info!(revision, "etcd compacted");
                Ok(())
            }
            Err(e) => match classify(&e) {
                Failure::Compacted => Ok(()),
                _ => Err(self.revision_error(revision, e).await),
            },
        }
    }
}

/// The state of one etcd watch stream.
struct EtcdWatch {
    /// Kept whole: dropping its request half would end the watch.
    watch: etcd_client::WatchStream,
    pending: VecDeque<Event>,
    /// The next revision this stream expects.
    next: Revision,
    done: bool,
}

impl EtcdWatch {
    async fn next(mut self) -> Option<(Result<Event, StoreError>, EtcdWatch)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            let resp = match self.watch.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    tracing::debug!(next = self.next, "etcd closed a watch stream");
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(backend(e)), self));
                }
            };
            if resp.canceled() || resp.compact_revision() > 0 {
                self.done = true;
                let error = if resp.compact_revision() > 0 {
                    StoreError::Compacted {
                        requested: self.next,
                        compacted: resp.compact_revision(),
                    }
                } else {
                    backend(format!("watch canceled: {}", resp.cancel_reason()))
                };
                return Some((Err(error), self));
            }
            // Progress notifications carry no events; they only keep the
            // stream alive.
            for event in resp.events() {
                match convert_event(event) {
                    Ok(event) => {
                        self.next = event.revision() + 1;
                        self.pending.push_back(event);
                    }
                    Err(e) => {
                        self.done = true;
                        self.pending.clear();
                        return Some((Err(e), self));
                    }
                }
            }
        }
    }
}

fn convert_event(event: &etcd_client::Event) -> Result<Event, StoreError> {
    let kv = convert(
        event
            .kv()
            .ok_or_else(|| backend("watch event without a key"))?,
    )?;
    let prev = event.prev_kv().map(convert).transpose()?;
    Ok(match event.event_type() {
        EventType::Put if kv.create_revision == kv.mod_revision => Event {
            kind: EventKind::Added,
            kv,
            prev: None,
        },
        EventType::Put => Event {
            kind: EventKind::Modified,
            kv,
            prev,
        },
        EventType::Delete => Event {
            kind: EventKind::Deleted,
            kv: KeyValue {
                create_revision: prev.as_ref().map_or(0, |p| p.create_revision),
                value: Vec::new(),
                ..kv
            },
            prev,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_cover_exactly_the_prefix() {
        assert_eq!(
            bounds("/registry/core/pods/"),
            (
                b"/registry/core/pods/".to_vec(),
                b"/registry/core/pods0".to_vec()
            )
        );
        assert_eq!(bounds(""), (vec![0], vec![0]));
    }

    #[tokio::test]
    async fn connect_without_endpoints_fails() {
        assert!(matches!(
            EtcdStore::connect(&[]).await,
            Err(StoreError::Backend(_))
        ));
    }
}
