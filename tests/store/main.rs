//! Store conformance suite: one set of behaviours ([`conformance`]) run
//! against both backends — the embedded SQLite store on a temporary file
//! and the etcd store on a private `/usr/bin/etcd` — plus backend-specific
//! tests ([`sqlite`], [`etcd`]) and a SIGKILL crash test of the SQLite
//! store ([`crash`]). Every test builds its own store and removes it.

mod conformance;
mod crash;
mod etcd;
mod harness;
mod sqlite;

/// Generates one `#[tokio::test]` per behaviour and backend:
/// `sqlite_conformance::<name>` and `etcd_conformance::<name>`.
macro_rules! conformance_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite_conformance {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = crate::harness::sqlite();
                    crate::conformance::$name(backend.store()).await;
                }
            )*
        }
        mod etcd_conformance {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let backend = crate::harness::etcd().await;
                    crate::conformance::$name(backend.store()).await;
                }
            )*
        }
    };
}

conformance_tests!(
    create_get_already_exists,
    update_compare_and_swap,
    delete_with_and_without_expected,
    revisions_strictly_increase,
    range_pages_at_a_fixed_revision,
    range_after_compaction,
    count_keys,
    watch_replays_history_then_live,
    watch_from_compacted_revision_fails,
    watch_prefix_isolation,
    concurrent_cas_updaters,
    watches_started_during_writes_see_each_change_once,
);
