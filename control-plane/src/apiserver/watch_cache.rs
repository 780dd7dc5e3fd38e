//! The watch cache: one store watch on `/registry/` fanned out to every API
//! watcher, so a thousand `?watch=true` requests cost one store stream.
//!
//! It owns a ring buffer of recent events (shared as `Arc<Event>`, so late
//! subscribers can resume from a recent `resourceVersion`) and the registry
//! of subscribers, each with its own bounded queue. A subscriber that does
//! not keep up is cut off — its stream ends and the client re-watches —
//! rather than stalling everyone else. It knows nothing of Kubernetes
//! objects (no decoding, no selectors: the API layer filters), never writes
//! to the store, and never blocks the feeding task on a subscriber.
//!
//! Consistency: every event of revision `r` reaches every subscriber whose
//! prefix matches exactly once, in revision order, with no gap, for as long
//! as the subscription lives. When the cache itself loses events (store
//! compaction, a store outage), it ends every subscription and restarts from
//! the store's current revision; resuming from before that is `TooOld`
//! (HTTP 410), so clients relist.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use futures::StreamExt;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::storage::{Event, Revision, Store, StoreError, WatchStream, keys};

/// Notifications a subscriber may have queued before it counts as too slow.
const QUEUE: usize = 1000;
/// How long [`WatchCache::wait_for`] waits for the cache to catch up.
const WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// Consecutive failed re-watches before the cache gives up on continuity.
const REWATCH_ATTEMPTS: u32 = 3;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Why a subscription ended (see [`Subscription::end_reason`]).
const TOO_SLOW: &str = "too slow";
const RESTARTED: &str = "cache restarted";
const STOPPED: &str = "cache stopped";

/// What a subscriber receives.
#[derive(Clone, Debug)]
pub enum Notification {
    /// A change, shared among all subscribers.
    Event(Arc<Event>),
    /// Every event up to and including this revision has been delivered to
    /// this subscriber (use for BOOKMARK events). Sent periodically when the
    /// subscriber's queue has room.
    Progress(Revision),
}

#[derive(Debug, Error)]
pub enum WatchCacheError {
    /// The requested revision predates what the cache holds (HTTP 410).
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld {
        requested: Revision,
        oldest: Revision,
    },
    /// The cache is restarting after losing events, has stopped, or did not
    /// catch up in time.
    #[error("watch cache is not running")]
    Closed,
}

/// Tunables; [`WatchCache::start`] uses the defaults above, tests shrink them.
#[derive(Clone, Copy, Debug)]
struct Config {
    /// Events kept for late subscribers.
    capacity: usize,
    /// Per-subscriber queue bound.
    queue: usize,
    progress_every: Duration,
    wait_timeout: Duration,
}

/// One store watch fanned out to many subscribers.
pub struct WatchCache {
    core: Arc<Core>,
    /// The feeding and progress tasks, aborted on drop.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The pure part: buffer, subscriber registry and fan-out. No store, no
/// tasks; fed through [`Core::apply`].
struct Core {
    state: Mutex<State>,
    /// The newest applied revision, for [`WatchCache::wait_for`].
    revision: watch::Sender<Revision>,
    config: Config,
}

struct State {
    /// Recent events in revision order, at most `config.capacity`.
    buffer: VecDeque<Arc<Event>>,
    /// Every event with a revision above this is in `buffer`: the oldest
    /// revision a subscriber may resume after.
    horizon: Revision,
    /// The newest applied revision.
    revision: Revision,
    subscribers: HashMap<u64, Subscriber>,
    next_id: u64,
    /// False while restarting after lost events, and once stopped.
    running: bool,
}

struct Subscriber {
    prefix: String,
    /// Events at or below this revision are not for this subscriber (it
    /// subscribed from a revision the cache had not reached yet).
    after: Revision,
    tx: mpsc::Sender<Notification>,
    end: Arc<OnceLock<&'static str>>,
}

/// One subscriber's view: buffered events first, then live ones.
pub struct Subscription {
    id: u64,
    /// Events replayed from the buffer, delivered before `rx`.
    replay: VecDeque<Arc<Event>>,
    rx: mpsc::Receiver<Notification>,
    end: Arc<OnceLock<&'static str>>,
    ended: bool,
    core: Weak<Core>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // The state stays consistent across a panic in another holder (every
    // mutation is a single step), so a poisoned lock is still usable.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Core {
    fn new(start: Revision, config: Config) -> Self {
        Self {
            state: Mutex::new(State {
                buffer: VecDeque::new(),
                horizon: start,
                revision: start,
                subscribers: HashMap::new(),
                next_id: 0,
                running: true,
            }),
            revision: watch::Sender::new(start),
            config,
        }
    }

    /// Applies one store event: buffers it and hands it to every matching
    /// subscriber without waiting; a subscriber whose queue is full is cut
    /// off. Events at or below the applied revision are dropped (they can
    /// only be duplicates after a re-watch).
    fn apply(&self, event: Event) {
        let rev = event.revision();
        let mut state = lock(&self.state);
        if !state.running {
            debug!(revision = rev, "watch cache not running; event dropped");
            return;
        }
        if rev <= state.revision {
            warn!(
                revision = rev,
                applied = state.revision,
                key = %event.kv.key,
                "watch cache: ignoring an event at or below the applied revision"
            );
            return;
        }
        let event = Arc::new(event);
        state.buffer.push_back(Arc::clone(&event));
        while state.buffer.len() > self.config.capacity {
            if let Some(evicted) = state.buffer.pop_front() {
                state.horizon = evicted.revision();
            }
        }
        state.revision = rev;
        state.subscribers.retain(|&id, sub| {
            if rev <= sub.after || !event.kv.key.starts_with(&sub.prefix) {
                return true;
            }
            match sub.tx.try_send(Notification::Event(Arc::clone(&event))) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    warn!(
                        subscriber = id,
                        prefix = %sub.prefix,
                        revision = rev,
                        queue = self.config.queue,
                        "watch cache: subscriber too slow, cutting it off"
                    );
                    let _ = sub.end.set(TOO_SLOW);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        self.revision.send_replace(rev);
    }

    fn subscribe(
        self: &Arc<Self>,
        prefix: &str,
        after: Revision,
    ) -> Result<Subscription, WatchCacheError> {
        // One lock across replay and registration: an event is either in
        // the replayed buffer or fanned out to the new subscriber, never
        // both or neither.
        let mut state = lock(&self.state);
        if !state.running {
            return Err(WatchCacheError::Closed);
        }
        if after < state.horizon {
            return Err(WatchCacheError::TooOld {
                requested: after,
                oldest: state.horizon,
            });
        }
        let first = state.buffer.partition_point(|e| e.revision() <= after);
        let replay: VecDeque<Arc<Event>> = state
            .buffer
            .range(first..)
            .filter(|e| e.kv.key.starts_with(prefix))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(self.config.queue.max(1));
        let end = Arc::new(OnceLock::new());
        let id = state.next_id;
        state.next_id += 1;
        state.subscribers.insert(
            id,
            Subscriber {
                prefix: prefix.to_owned(),
                after,
                tx,
                end: Arc::clone(&end),
            },
        );
        debug!(
            subscriber = id,
            prefix,
            after,
            replayed = replay.len(),
            subscribers = state.subscribers.len(),
            "watch cache: subscribed"
        );
        Ok(Subscription {
            id,
            replay,
            rx,
            end,
            ended: false,
            core: Arc::downgrade(self),
        })
    }

    /// Tells every subscriber with room in its queue how far it is.
    fn send_progress(&self) {
        let state = lock(&self.state);
        if !state.running {
            return;
        }
        for sub in state.subscribers.values() {
            // Send only while more than half the queue is free, so
            // progress can fill at most half of it and never gets a
            // subscriber cut off by itself.
            let free = sub.tx.capacity();
            if state.revision < sub.after || free <= 1 || free * 2 <= self.config.queue {
                continue;
            }
            let _ = sub.tx.try_send(Notification::Progress(state.revision));
        }
    }

    /// Ends every subscription with `reason` and refuses new ones until
    /// [`Core::reset`].
    fn stop_all(&self, reason: &'static str) {
        let mut state = lock(&self.state);
        state.running = false;
        state.buffer.clear();
        let ended = state.subscribers.len();
        for (_, sub) in state.subscribers.drain() {
            let _ = sub.end.set(reason);
        }
        if ended > 0 {
            info!(
                subscribers = ended,
                reason, "watch cache: ended all subscriptions"
            );
        }
    }

    /// Starts over at `revision` with an empty buffer.
    fn reset(&self, revision: Revision) {
        let mut state = lock(&self.state);
        for (_, sub) in state.subscribers.drain() {
            let _ = sub.end.set(RESTARTED);
        }
        state.buffer.clear();
        state.horizon = revision;
        state.revision = revision;
        state.running = true;
        self.revision.send_replace(revision);
    }

    fn applied(&self) -> Revision {
        *self.revision.borrow()
    }

    fn subscribers(&self) -> usize {
        lock(&self.state).subscribers.len()
    }

    /// Applies a store stream until it ends (`None`) or fails; returns how
    /// many events it applied and the failure.
    async fn feed(&self, mut stream: WatchStream) -> (usize, Option<StoreError>) {
        let mut applied = 0;
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    self.apply(event);
                    applied += 1;
                }
                Err(e) => return (applied, Some(e)),
            }
        }
        (applied, None)
    }
}

impl WatchCache {
    /// Starts the cache: reads `store.current_revision()`, then one
    /// `store.watch("/registry/", rev)` feeding the cache in a spawned task.
    /// `capacity` = events kept for late subscribers (e.g. 10_000);
    /// `progress_every` = how often Progress notifications go out.
    pub async fn start(
        store: Arc<dyn Store>,
        capacity: usize,
        progress_every: Duration,
    ) -> Result<Arc<WatchCache>, StoreError> {
        let revision = store.current_revision().await?;
        let stream = store.watch(keys::ROOT, revision).await?;
        let cache = Self::with_config(
            revision,
            Config {
                capacity,
                queue: QUEUE,
                progress_every,
                wait_timeout: WAIT_TIMEOUT,
            },
        );
        let feeder = tokio::spawn(run_feeder(Arc::clone(&cache.core), store, stream));
        cache.tasks_guard().push(feeder);
        info!(revision, capacity, "watch cache started");
        Ok(cache)
    }

    /// A cache at `start` with its progress task but no store: fed by
    /// [`Core::apply`] (the feeder, or tests).
    fn with_config(start: Revision, config: Config) -> Arc<WatchCache> {
        let core = Arc::new(Core::new(start, config));
        let ticker = tokio::spawn(run_progress(Arc::downgrade(&core), config.progress_every));
        Arc::new(WatchCache {
            core,
            tasks: Mutex::new(vec![ticker]),
        })
    }

    fn tasks_guard(&self) -> MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn apply(&self, event: Event) {
        self.core.apply(event);
    }

    /// The newest revision the cache has applied.
    pub fn revision(&self) -> Revision {
        self.core.applied()
    }

    /// Waits until the cache has applied `revision`, so a list at revision R
    /// followed by `subscribe(after = R)` has no gap. `Err(Closed)` when the
    /// cache does not get there within 5 s.
    pub async fn wait_for(&self, revision: Revision) -> Result<(), WatchCacheError> {
        let mut rx = self.core.revision.subscribe();
        match tokio::time::timeout(
            self.core.config.wait_timeout,
            rx.wait_for(|r| *r >= revision),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(WatchCacheError::Closed),
            Err(_) => {
                warn!(
                    revision,
                    applied = self.revision(),
                    "watch cache did not reach the revision in time"
                );
                Err(WatchCacheError::Closed)
            }
        }
    }

    /// Events under `prefix` with revision > `after`: first those still in
    /// the buffer, then live. `after` older than the oldest buffered revision
    /// (and than the cache's start) is `TooOld`; `after` == the start
    /// revision is fine. `after` beyond the applied revision waits for it.
    pub fn subscribe(
        &self,
        prefix: &str,
        after: Revision,
    ) -> Result<Subscription, WatchCacheError> {
        self.core.subscribe(prefix, after)
    }

    /// Number of live subscribers.
    pub fn subscribers(&self) -> usize {
        self.core.subscribers()
    }
}

impl Drop for WatchCache {
    fn drop(&mut self) {
        for task in self.tasks_guard().drain(..) {
            task.abort();
        }
        self.core.stop_all(STOPPED);
    }
}

impl Subscription {
    /// Next notification in order; `None` when the subscription ended: the
    /// subscriber was too slow (its bounded queue overflowed) or the cache
    /// restarted or stopped. Cancel-safe.
    pub async fn next(&mut self) -> Option<Notification> {
        if let Some(event) = self.replay.pop_front() {
            return Some(Notification::Event(event));
        }
        let next = self.rx.recv().await;
        if next.is_none() {
            self.ended = true;
        }
        next
    }

    /// Why it ended, once `next` returned None: "too slow", "cache
    /// restarted" or "cache stopped".
    pub fn end_reason(&self) -> Option<&str> {
        if !self.ended {
            return None;
        }
        Some(self.end.get().copied().unwrap_or(STOPPED))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(core) = self.core.upgrade() {
            lock(&core.state).subscribers.remove(&self.id);
        }
    }
}

/// Sends progress notifications until the cache is gone.
async fn run_progress(core: Weak<Core>, every: Duration) {
    let mut ticker = tokio::time::interval(every.max(Duration::from_millis(1)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate
    loop {
        ticker.tick().await;
        let Some(core) = core.upgrade() else { return };
        core.send_progress();
    }
}

/// Feeds the cache from the store forever: re-watches from the applied
/// revision when a stream ends; when events are lost (compaction) or the
/// store keeps failing, ends every subscription and restarts from the
/// store's current revision.
async fn run_feeder(core: Arc<Core>, store: Arc<dyn Store>, first: WatchStream) {
    let mut stream = Some(first);
    let mut failures = 0u32;
    let mut backoff = BACKOFF_MIN;
    loop {
        let current = match stream.take() {
            Some(s) => Ok(s),
            None => store.watch(keys::ROOT, core.applied()).await,
        };
        let failure = match current {
            Ok(s) => {
                let (applied, failure) = core.feed(s).await;
                if applied > 0 {
                    failures = 0;
                    backoff = BACKOFF_MIN;
                }
                match failure {
                    None => {
                        debug!(revision = core.applied(), "store watch ended; re-watching");
                        if applied == 0 {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                        }
                        continue;
                    }
                    Some(e) => e,
                }
            }
            Err(e) => e,
        };
        failures += 1;
        let lost = matches!(failure, StoreError::Compacted { .. });
        if lost || failures >= REWATCH_ATTEMPTS {
            warn!(error = %failure, revision = core.applied(), "watch cache lost continuity; restarting");
            core.stop_all(RESTARTED);
            restart(&core, store.as_ref()).await;
            failures = 0;
            backoff = BACKOFF_MIN;
        } else {
            warn!(error = %failure, attempt = failures, "store watch failed; retrying");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }
}

/// Resets the cache at the store's current revision, retrying until the
/// store answers.
async fn restart(core: &Core, store: &dyn Store) {
    let mut backoff = BACKOFF_MIN;
    loop {
        match store.current_revision().await {
            Ok(revision) => {
                core.reset(revision);
                info!(revision, "watch cache restarted");
                return;
            }
            Err(e) => {
                warn!(error = %e, "watch cache restart: store unavailable");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests;
