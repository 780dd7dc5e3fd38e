//! Watch streams of the SQLite store: history from the log, then live
//! events from the writer's broadcast, with no gap and no duplicate.
//!
//! A watch subscribes to the broadcast *before* it reads history, so every
//! commit is either in the history it reads or in the broadcast after it.
//! Events are delivered only if their revision is above the last one
//! delivered, which drops the overlap. A subscriber that falls behind the
//! broadcast (`Lagged`) goes back to reading the log from its last
//! revision; if that revision was compacted meanwhile the stream yields one
//! `Err(Compacted)` and ends. The stream ends when the store is dropped.
//! This module only reads the log.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream;
use tokio::sync::broadcast;

use super::Reader;
use super::rows::{self, backend};
use super::writer::EventBatch;
use crate::storage::{Event, Revision, StoreError, WatchStream};

/// Rows read from the log per history query.
const HISTORY_PAGE: i64 = 1_000;

/// One page of history.
pub(super) struct Page {
    pub events: Vec<Event>,
    /// Whether the page was full (more history may follow).
    pub full: bool,
    /// The store's revision in the snapshot the page was read from.
    pub revision: Revision,
}

/// Reads history after `after` for keys in `[start, end)`, in one snapshot
/// that also checks `after` is not compacted.
pub(super) fn read_page(
    conn: &rusqlite::Connection,
    after: Revision,
    start: &[u8],
    end: &[u8],
) -> Result<Page, StoreError> {
    let tx = conn.unchecked_transaction().map_err(backend)?;
    let compacted = rows::compacted_revision(&tx).map_err(backend)?;
    if compacted > 0 && after + 1 < compacted {
        return Err(StoreError::Compacted {
            requested: after + 1,
            compacted,
        });
    }
    let revision = rows::current_revision(&tx).map_err(backend)?;
    let rows = rows::history(&tx, after, start, end, HISTORY_PAGE).map_err(backend)?;
    let full = rows.len() as i64 >= HISTORY_PAGE;
    Ok(Page {
        events: rows.into_iter().map(rows::Row::into_event).collect(),
        full,
        revision,
    })
}

struct State {
    reader: Arc<Reader>,
    live: broadcast::Receiver<EventBatch>,
    prefix: String,
    start: Vec<u8>,
    end: Vec<u8>,
    /// The newest revision delivered (or known to hold nothing for us).
    last: Revision,
    pending: VecDeque<Event>,
    catching_up: bool,
    done: bool,
}

impl State {
    fn take_page(&mut self, page: Page) {
        for event in page.events {
            if event.revision() > self.last {
                self.last = event.revision();
                self.pending.push_back(event);
            }
        }
        self.catching_up = page.full;
        if !page.full {
            // Everything up to the snapshot's revision has been read.
            self.last = self.last.max(page.revision);
        }
    }

    fn take_live(&mut self, batch: &[Event]) {
        for event in batch {
            let revision = event.revision();
            if revision <= self.last {
                continue;
            }
            self.last = revision;
            if event.kv.key.starts_with(&self.prefix) {
                self.pending.push_back(event.clone());
            }
        }
    }

    async fn next(mut self) -> Option<(Result<Event, StoreError>, State)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.done {
                return None;
            }
            if self.catching_up {
                let (after, start, end) = (self.last, self.start.clone(), self.end.clone());
                let page = self
                    .reader
                    .run(move |conn| read_page(conn, after, &start, &end))
                    .await;
                match page {
                    Ok(page) => self.take_page(page),
                    Err(e) => {
                        self.done = true;
                        return Some((Err(e), self));
                    }
                }
                continue;
            }
            match self.live.recv().await {
                Ok(batch) => self.take_live(&batch),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        prefix = %self.prefix,
                        last = self.last,
                        missed,
                        "sqlite watch lagged; rereading the log"
                    );
                    self.catching_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => self.done = true,
            }
        }
    }
}

/// Builds the stream. `live` must have been subscribed before `first` was
/// read; `first` is the first history page after `after`.
pub(super) fn stream(
    reader: Arc<Reader>,
    live: broadcast::Receiver<EventBatch>,
    prefix: String,
    start: Vec<u8>,
    end: Vec<u8>,
    after: Revision,
    first: Page,
) -> WatchStream {
    let mut state = State {
        reader,
        live,
        prefix,
        start,
        end,
        last: after,
        pending: VecDeque::new(),
        catching_up: false,
        done: false,
    };
    state.take_page(first);
    Box::pin(stream::unfold(state, State::next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{EventKind, KeyValue};

    fn event(key: &str, revision: Revision) -> Event {
        Event {
            kind: EventKind::Added,
            kv: KeyValue {
                key: key.into(),
                value: vec![1],
                create_revision: revision,
                mod_revision: revision,
            },
            prev: None,
        }
    }

    fn state(after: Revision) -> (State, broadcast::Sender<EventBatch>) {
        let (live_tx, live) = broadcast::channel(4);
        let state = State {
            reader: Arc::new(Reader {
                path: "/nonexistent".into(),
                idle: std::sync::Mutex::new(Vec::new()),
            }),
            live,
            prefix: "/p/".into(),
            start: b"/p/".to_vec(),
            end: b"/p0".to_vec(),
            last: after,
            pending: VecDeque::new(),
            catching_up: false,
            done: false,
        };
        (state, live_tx)
    }

    fn pending(state: &State) -> Vec<Revision> {
        state.pending.iter().map(Event::revision).collect()
    }

    #[test]
    fn live_events_already_read_from_history_are_dropped() {
        let (mut state, _live) = state(3);
        // History up to the snapshot at 6 (which holds a non-matching 6).
        state.take_page(Page {
            events: vec![event("/p/a", 4), event("/p/b", 5)],
            full: false,
            revision: 6,
        });
        assert_eq!(pending(&state), vec![4, 5]);
        assert_eq!(state.last, 6);
        // The broadcast repeats commits from before the snapshot.
        state.take_live(&[event("/p/b", 5), event("/q/x", 6), event("/p/c", 7)]);
        state.take_live(&[event("/p/c", 7), event("/q/y", 8), event("/p/d", 9)]);
        assert_eq!(pending(&state), vec![4, 5, 7, 9]);
        assert_eq!(state.last, 9);
    }

    #[test]
    fn a_full_page_keeps_catching_up() {
        let (mut state, _live) = state(0);
        state.take_page(Page {
            events: vec![event("/p/a", 1)],
            full: true,
            revision: 50,
        });
        assert!(state.catching_up);
        // Only what was read counts as delivered: rows 2..=50 are still to
        // be read.
        assert_eq!(state.last, 1);
    }
}
