//! Unit tests of the watch cache core, fed events directly (no store):
//! ordering, prefixes, replay, expiry, slow subscribers, progress, restarts
//! and subscribe/apply races.

use std::time::Duration;

use futures::stream;
use tokio::time::timeout;

use super::*;
use crate::storage::{EventKind, KeyValue};

const PODS: &str = "/registry/core/pods/";
const CONFIGMAPS: &str = "/registry/core/configmaps/";

fn event(revision: Revision, key: &str) -> Event {
    Event {
        kind: EventKind::Added,
        kv: KeyValue {
            key: key.to_owned(),
            value: format!("v{revision}").into_bytes(),
            create_revision: revision,
            mod_revision: revision,
        },
        prev: None,
    }
}

fn pod(revision: Revision) -> Event {
    event(revision, &format!("{PODS}default/p{revision}"))
}

fn config(capacity: usize, queue: usize, progress_every: Duration) -> Config {
    Config {
        capacity,
        queue,
        progress_every,
        wait_timeout: Duration::from_millis(300),
    }
}

/// A cache at `start` whose progress ticks are too rare to show up.
fn cache(start: Revision, capacity: usize, queue: usize) -> Arc<WatchCache> {
    WatchCache::with_config(start, config(capacity, queue, Duration::from_secs(3600)))
}

fn subscribe(cache: &WatchCache, prefix: &str, after: Revision) -> Subscription {
    match cache.subscribe(prefix, after) {
        Ok(s) => s,
        Err(e) => panic!("subscribe({prefix}, {after}): {e}"),
    }
}

async fn next(sub: &mut Subscription) -> Option<Notification> {
    match timeout(Duration::from_secs(10), sub.next()).await {
        Ok(n) => n,
        Err(_) => panic!("no notification within 10 s"),
    }
}

/// The revision of the next notification, which must be an event.
async fn next_event(sub: &mut Subscription) -> Revision {
    match next(sub).await {
        Some(Notification::Event(e)) => e.revision(),
        other => panic!("expected an event, got {other:?}"),
    }
}

async fn events(sub: &mut Subscription, n: usize) -> Vec<Revision> {
    let mut revs = Vec::with_capacity(n);
    for _ in 0..n {
        revs.push(next_event(sub).await);
    }
    revs
}

/// Asserts nothing is queued right now.
async fn assert_idle(sub: &mut Subscription) {
    if let Ok(n) = timeout(Duration::from_millis(50), sub.next()).await {
        panic!("expected nothing, got {n:?}");
    }
}

#[tokio::test]
async fn delivers_in_order() {
    let cache = cache(0, 100, 1000);
    let mut sub = subscribe(&cache, "/registry/", 0);
    for r in 1..=200 {
        cache.apply(pod(r));
    }
    assert_eq!(events(&mut sub, 200).await, (1..=200).collect::<Vec<_>>());
    assert_eq!(cache.revision(), 200);
    assert_idle(&mut sub).await;
    assert_eq!(sub.end_reason(), None);
}

#[tokio::test]
async fn events_carry_the_store_event() {
    let cache = cache(0, 10, 10);
    let mut sub = subscribe(&cache, PODS, 0);
    let mut deleted = event(2, &format!("{PODS}ns/a"));
    deleted.kind = EventKind::Deleted;
    deleted.prev = Some(event(1, &format!("{PODS}ns/a")).kv);
    cache.apply(deleted.clone());
    match next(&mut sub).await {
        Some(Notification::Event(e)) => assert_eq!(*e, deleted),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn prefixes_are_isolated() {
    let cache = cache(0, 100, 1000);
    let mut pods = subscribe(&cache, PODS, 0);
    let mut cms = subscribe(&cache, CONFIGMAPS, 0);
    let mut ns_a = subscribe(&cache, &format!("{PODS}a/"), 0);
    for r in 1..=30 {
        let key = match r % 3 {
            0 => format!("{PODS}a/p{r}"),
            1 => format!("{PODS}ab/p{r}"), // shares a string prefix with `a`
            _ => format!("{CONFIGMAPS}a/c{r}"),
        };
        cache.apply(event(r, &key));
    }
    let want = |rem: i64| (1..=30).filter(|r| r % 3 == rem).collect::<Vec<_>>();
    let want_pods: Vec<_> = (1..=30).filter(|r| r % 3 != 2).collect();
    assert_eq!(events(&mut pods, want_pods.len()).await, want_pods);
    assert_eq!(events(&mut cms, 10).await, want(2));
    assert_eq!(events(&mut ns_a, 10).await, want(0));
    assert_idle(&mut pods).await;
    assert_idle(&mut cms).await;
    assert_idle(&mut ns_a).await;
}

#[tokio::test]
async fn replays_from_the_buffer_then_goes_live() {
    let cache = cache(0, 100, 1000);
    for r in 1..=10 {
        cache.apply(pod(r));
    }
    cache.apply(event(11, &format!("{CONFIGMAPS}x/y")));
    let mut sub = subscribe(&cache, PODS, 5);
    cache.apply(pod(12));
    assert_eq!(events(&mut sub, 6).await, vec![6, 7, 8, 9, 10, 12]);
    assert_idle(&mut sub).await;
    // Resuming at the newest revision replays nothing.
    let mut latest = subscribe(&cache, PODS, 12);
    assert_idle(&mut latest).await;
}

#[tokio::test]
async fn too_old_before_the_buffer() {
    let cache = cache(0, 5, 1000);
    assert!(matches!(
        cache.subscribe(PODS, -1),
        Err(WatchCacheError::TooOld {
            requested: -1,
            oldest: 0
        })
    ));
    for r in 1..=10 {
        cache.apply(pod(r));
    }
    // Buffer holds 6..=10; resuming after 5 is the oldest possible.
    match cache.subscribe(PODS, 4) {
        Err(
            e @ WatchCacheError::TooOld {
                requested: 4,
                oldest: 5,
            },
        ) => {
            assert_eq!(e.to_string(), "too old resource version: 4 (5)");
        }
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("4 is no longer buffered"),
    }
    let mut sub = subscribe(&cache, PODS, 5);
    assert_eq!(events(&mut sub, 5).await, vec![6, 7, 8, 9, 10]);
}

#[tokio::test]
async fn start_revision_is_the_oldest() {
    let cache = cache(100, 10, 1000);
    assert!(matches!(
        cache.subscribe(PODS, 99),
        Err(WatchCacheError::TooOld {
            requested: 99,
            oldest: 100
        })
    ));
    let mut sub = subscribe(&cache, PODS, 100);
    cache.apply(pod(101));
    assert_eq!(next_event(&mut sub).await, 101);
}

#[tokio::test]
async fn subscribing_ahead_skips_until_that_revision() {
    let cache = cache(0, 10, 1000);
    cache.apply(pod(1));
    let mut sub = subscribe(&cache, PODS, 5);
    for r in 2..=7 {
        cache.apply(pod(r));
    }
    assert_eq!(events(&mut sub, 2).await, vec![6, 7]);
}

#[tokio::test]
async fn stale_and_duplicate_events_are_ignored() {
    let cache = cache(0, 10, 1000);
    let mut sub = subscribe(&cache, PODS, 0);
    for r in [1, 2, 2, 1, 3] {
        cache.apply(pod(r));
    }
    assert_eq!(events(&mut sub, 3).await, vec![1, 2, 3]);
    assert_idle(&mut sub).await;
}

#[tokio::test]
async fn slow_subscriber_is_cut_off_fast_one_gets_everything() {
    let queue = 8;
    let cache = cache(0, 1000, queue);
    let mut fast = subscribe(&cache, PODS, 0);
    let mut slow = subscribe(&cache, PODS, 0);
    assert_eq!(cache.subscribers(), 2);
    for r in 1..=100 {
        cache.apply(pod(r)); // never blocks, even with `slow` full
        assert_eq!(next_event(&mut fast).await, r);
    }
    assert_eq!(cache.subscribers(), 1, "the slow one was dropped");
    // The slow one still drains what was queued before the cut, then ends.
    assert_eq!(
        events(&mut slow, queue).await,
        (1..=queue as i64).collect::<Vec<_>>()
    );
    assert_eq!(slow.end_reason(), None, "not ended until next returns None");
    assert!(next(&mut slow).await.is_none());
    assert_eq!(slow.end_reason(), Some("too slow"));
    assert!(next(&mut slow).await.is_none(), "stays ended");
    assert_eq!(fast.end_reason(), None);
}

#[tokio::test]
async fn a_backlog_replay_does_not_count_against_the_queue() {
    let cache = cache(0, 1000, 4);
    for r in 1..=50 {
        cache.apply(pod(r));
    }
    let mut sub = subscribe(&cache, PODS, 0);
    cache.apply(pod(51));
    assert_eq!(events(&mut sub, 51).await, (1..=51).collect::<Vec<_>>());
}

#[tokio::test]
async fn dropping_a_subscription_unregisters_it() {
    let cache = cache(0, 10, 10);
    let a = subscribe(&cache, PODS, 0);
    let b = subscribe(&cache, CONFIGMAPS, 0);
    assert_eq!(cache.subscribers(), 2);
    drop(a);
    assert_eq!(cache.subscribers(), 1);
    drop(b);
    assert_eq!(cache.subscribers(), 0);
    cache.apply(pod(1)); // nobody to deliver to; must not fail
    assert_eq!(cache.revision(), 1);
}

#[tokio::test]
async fn progress_brackets_the_events() {
    let cache = WatchCache::with_config(0, config(10_000, 10_000, Duration::from_millis(5)));
    let mut sub = subscribe(&cache, PODS, 0);
    let applier = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            for burst in 0..20 {
                for i in 1..=5 {
                    cache.apply(pod(burst * 10 + i));
                }
                // Revisions the subscriber does not see still advance progress.
                for i in 6..=10 {
                    let r = burst * 10 + i;
                    cache.apply(event(r, &format!("{CONFIGMAPS}x/c{r}")));
                }
                tokio::time::sleep(Duration::from_millis(12)).await;
            }
        })
    };
    let mut log: Vec<Notification> = Vec::new();
    // Read until the last pod event and a progress covering it.
    loop {
        let n = next(&mut sub).await;
        let done = matches!(n, Some(Notification::Progress(p)) if p >= 200);
        log.push(n.unwrap_or_else(|| panic!("ended: {:?}", sub.end_reason())));
        if done {
            break;
        }
    }
    if let Err(e) = applier.await {
        panic!("applier: {e}");
    }
    let progress: Vec<(usize, Revision)> = log
        .iter()
        .enumerate()
        .filter_map(|(i, n)| match n {
            Notification::Progress(p) => Some((i, *p)),
            Notification::Event(_) => None,
        })
        .collect();
    assert!(
        progress.len() >= 5,
        "progress should tick often: {progress:?}"
    );
    assert!(
        progress.iter().any(|(_, p)| *p < 200),
        "progress should arrive between bursts too: {progress:?}"
    );
    for (i, p) in &progress {
        for (j, n) in log.iter().enumerate() {
            if let Notification::Event(e) = n {
                if j < *i {
                    assert!(
                        e.revision() <= *p,
                        "event {} before progress {p}",
                        e.revision()
                    );
                } else {
                    assert!(
                        e.revision() > *p,
                        "event {} after progress {p}",
                        e.revision()
                    );
                }
            }
        }
    }
    let revs: Vec<Revision> = log
        .iter()
        .filter_map(|n| match n {
            Notification::Event(e) => Some(e.revision()),
            Notification::Progress(_) => None,
        })
        .collect();
    let want: Vec<Revision> = (0..20)
        .flat_map(|b| (1..=5).map(move |i| b * 10 + i))
        .collect();
    assert_eq!(revs, want);
}

#[tokio::test]
async fn progress_waits_for_a_subscription_from_ahead() {
    let cache = WatchCache::with_config(0, config(100, 100, Duration::from_millis(5)));
    let mut sub = subscribe(&cache, PODS, 3);
    assert_idle(&mut sub).await; // revision 0 < 3: nothing to report yet
    for r in 1..=4 {
        cache.apply(pod(r));
    }
    assert_eq!(next_event(&mut sub).await, 4);
    match next(&mut sub).await {
        Some(Notification::Progress(4)) => {}
        other => panic!("expected progress 4, got {other:?}"),
    }
}

#[tokio::test]
async fn progress_never_fills_a_queue() {
    let queue = 4;
    let cache = WatchCache::with_config(0, config(100, queue, Duration::from_millis(2)));
    let mut idle = subscribe(&cache, PODS, 0);
    // Nobody reads: progress fills half the queue, then stops.
    let filled = timeout(Duration::from_secs(5), async {
        while idle.rx.len() < queue / 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    assert!(filled.await.is_ok(), "progress should have been queued");
    tokio::time::sleep(Duration::from_millis(40)).await; // ~20 more ticks
    assert_eq!(idle.rx.len(), queue / 2);
    assert_eq!(cache.subscribers(), 1);
    // Half the queue was left for events.
    for r in 1..=(queue / 2) as i64 {
        cache.apply(pod(r));
    }
    assert_eq!(cache.subscribers(), 1, "progress must not get it cut off");
    // Exactly what was queued: progress in the first half, then the events.
    let mut seen = Vec::new();
    for _ in 0..queue {
        seen.push(next(&mut idle).await);
    }
    let kinds: Vec<String> = seen
        .iter()
        .map(|n| match n {
            Some(Notification::Progress(p)) => format!("progress {p}"),
            Some(Notification::Event(e)) => format!("event {}", e.revision()),
            None => "end".to_owned(),
        })
        .collect();
    assert_eq!(kinds, ["progress 0", "progress 0", "event 1", "event 2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_racing_with_apply_sees_a_gap_free_suffix() {
    const LAST: Revision = 3000;
    const SUBSCRIBERS: usize = 40;
    // Queues large enough that nobody is cut off: this is about lost or
    // duplicated events, not slowness.
    let cache = cache(0, 10_000, LAST as usize + 10);
    let applier = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            for r in 1..=LAST {
                cache.apply(pod(r));
                if r % 7 == 0 {
                    tokio::task::yield_now().await;
                }
            }
        })
    };
    let mut readers = Vec::new();
    for i in 0..SUBSCRIBERS {
        let cache = Arc::clone(&cache);
        readers.push(tokio::spawn(async move {
            for _ in 0..i * 3 {
                tokio::task::yield_now().await;
            }
            // Some resume a little behind the head, some exactly at it.
            let after = (cache.revision() - (i as i64 % 5)).max(0);
            let mut sub = subscribe(&cache, PODS, after);
            let mut last = after;
            while last < LAST {
                let r = next_event(&mut sub).await;
                assert_eq!(
                    r,
                    last + 1,
                    "subscriber {i} (after {after}) skipped or repeated"
                );
                last = r;
            }
            after
        }));
    }
    if let Err(e) = applier.await {
        panic!("applier: {e}");
    }
    let mut afters = Vec::new();
    for reader in readers {
        match reader.await {
            Ok(after) => afters.push(after),
            Err(e) => panic!("reader: {e}"),
        }
    }
    assert!(
        afters.iter().any(|a| *a > 0),
        "some subscribers should have joined mid-stream: {afters:?}"
    );
}

#[tokio::test]
async fn wait_for_an_applied_revision() {
    let cache = cache(0, 10, 10);
    cache.apply(pod(1));
    assert!(cache.wait_for(1).await.is_ok());
    assert!(cache.wait_for(0).await.is_ok());
    let applier = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            cache.apply(pod(2));
            cache.apply(pod(3));
        })
    };
    assert!(cache.wait_for(3).await.is_ok());
    assert_eq!(cache.revision(), 3);
    if let Err(e) = applier.await {
        panic!("{e}");
    }
    // Never reached: times out (300 ms in tests).
    let started = std::time::Instant::now();
    assert!(matches!(
        cache.wait_for(4).await,
        Err(WatchCacheError::Closed)
    ));
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn restart_ends_subscriptions_and_expires_old_revisions() {
    let cache = cache(0, 100, 100);
    let mut sub = subscribe(&cache, PODS, 0);
    cache.apply(pod(1));
    // What the feeder does when the store reports compaction.
    cache.core.stop_all(RESTARTED);
    assert_eq!(cache.subscribers(), 0);
    assert!(matches!(
        cache.subscribe(PODS, 1),
        Err(WatchCacheError::Closed)
    ));
    cache.apply(pod(2)); // ignored while restarting
    assert_eq!(next_event(&mut sub).await, 1, "queued events still drain");
    assert!(next(&mut sub).await.is_none());
    assert_eq!(sub.end_reason(), Some("cache restarted"));

    cache.core.reset(50);
    assert_eq!(cache.revision(), 50);
    assert!(matches!(
        cache.subscribe(PODS, 1),
        Err(WatchCacheError::TooOld {
            requested: 1,
            oldest: 50
        })
    ));
    let mut fresh = subscribe(&cache, PODS, 50);
    cache.apply(pod(51));
    assert_eq!(next_event(&mut fresh).await, 51);
}

#[tokio::test]
async fn dropping_the_cache_ends_subscriptions() {
    let cache = cache(0, 10, 10);
    let mut sub = subscribe(&cache, PODS, 0);
    drop(cache);
    assert!(next(&mut sub).await.is_none());
    assert_eq!(sub.end_reason(), Some("cache stopped"));
}

#[tokio::test]
async fn feed_applies_a_stream_and_reports_how_it_ended() {
    let cache = cache(0, 10, 10);
    let mut sub = subscribe(&cache, PODS, 0);
    let ended: WatchStream = Box::pin(stream::iter(vec![Ok(pod(1)), Ok(pod(2))]));
    let (applied, failure) = cache.core.feed(ended).await;
    assert_eq!(applied, 2);
    assert!(failure.is_none());
    let compacted: WatchStream = Box::pin(stream::iter(vec![
        Ok(pod(3)),
        Err(StoreError::Compacted {
            requested: 3,
            compacted: 9,
        }),
        Ok(pod(4)),
    ]));
    let (applied, failure) = cache.core.feed(compacted).await;
    assert_eq!(applied, 1, "stops at the first error");
    assert!(matches!(failure, Some(StoreError::Compacted { .. })));
    assert_eq!(events(&mut sub, 3).await, vec![1, 2, 3]);
    assert_eq!(cache.revision(), 3);
}
