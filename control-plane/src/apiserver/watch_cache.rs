//! STUB in main until the watch branch merges.
use std::{sync::Arc, time::Duration};

use crate::storage::{Event, Revision, Store, StoreError};

pub struct WatchCache;
#[derive(Clone, Debug)]
pub enum Notification {
    Event(Arc<Event>),
    Progress(Revision),
}
#[derive(Debug, thiserror::Error)]
pub enum WatchCacheError {
    #[error("too old resource version: {requested} ({oldest})")]
    TooOld { requested: Revision, oldest: Revision },
    #[error("watch cache is not running")]
    Closed,
}
impl WatchCache {
    pub async fn start(_store: Arc<dyn Store>, _capacity: usize, _progress_every: Duration) -> Result<Arc<WatchCache>, StoreError> { Ok(Arc::new(Self)) }
    pub fn revision(&self) -> Revision { 0 }
    pub async fn wait_for(&self, _revision: Revision) -> Result<(), WatchCacheError> { Ok(()) }
    pub fn subscribe(&self, _prefix: &str, _after: Revision) -> Result<Subscription, WatchCacheError> { Err(WatchCacheError::Closed) }
    pub fn subscribers(&self) -> usize { 0 }
}
pub struct Subscription;
impl Subscription {
    pub async fn next(&mut self) -> Option<Notification> { None }
    pub fn end_reason(&self) -> Option<&str> { None }
}
