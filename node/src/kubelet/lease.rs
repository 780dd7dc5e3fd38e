//! The node's heartbeat Lease, as the kubelet's `nodelease` controller
//! keeps it: `kube-node-lease/<node name>`, held by the node
//! (`holderIdentity` = node name), `leaseDurationSeconds` 40 by default,
//! owned by the Node (an ownerReference with the Node's uid, so garbage
//! collection removes it with the Node), and its `renewTime` (a
//! `MicroTime`, microsecond precision) renewed every 10 s — a quarter of
//! the duration, as the kubelet does.
//!
//! Renewal is an update from the last Lease seen (one request per
//! renewal); a conflict re-reads and retries, a Lease deleted by someone
//! is created again, and a failed renewal is retried with the kubelet's
//! backoff (200 ms doubling up to 7 s) before the next period. The node
//! lifecycle controller reads this Lease, not the Node's status, to tell
//! a live node.
//!
//! The Lease is computed by pure functions ([`new_lease`], [`renewed`]);
//! this module writes only this node's Lease, and waits for the Node to
//! be registered before the first write (the owner needs its uid).

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference},
    jiff::Timestamp,
};
use kube::{Api, Client, ResourceExt, api::PostParams};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{Instrument, debug, info, info_span, warn};

use super::NodeState;

/// The namespace of node Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";
/// The kubelet's `--node-lease-duration-seconds` default.
pub const DEFAULT_LEASE_DURATION_SECONDS: i32 = 40;
/// How many conflicts one renewal retries before giving up for a backoff.
const MAX_CONFLICT_RETRIES: usize = 5;
/// Bound on each API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the Lease's API side.
#[derive(Debug, Error)]
pub enum LeaseError {
    #[error("{verb} lease {NODE_LEASE_NAMESPACE}/{name}: {source}")]
    Api {
        verb: &'static str,
        name: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{verb} lease {NODE_LEASE_NAMESPACE}/{name}: no answer within {REQUEST_TIMEOUT:?}")]
    Timeout { verb: &'static str, name: String },
    #[error(
        "lease {NODE_LEASE_NAMESPACE}/{0}: still conflicting after {MAX_CONFLICT_RETRIES} attempts"
    )]
    Conflicts(String),
}

/// What the Lease of a node holds, besides its renew time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseTerms {
    pub node_name: String,
    pub duration_seconds: i32,
}

/// `now` at `MicroTime` precision.
pub fn micro_time(now: Timestamp) -> MicroTime {
    MicroTime(Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now))
}

/// The ownerReference of the Node `name` with `uid` (as the kubelet sets
/// it: no `controller`, no `blockOwnerDeletion`).
pub fn node_owner(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "v1".to_owned(),
        kind: "Node".to_owned(),
        name: name.to_owned(),
        uid: uid.to_owned(),
        ..OwnerReference::default()
    }
}

/// A Lease held by the node, renewed at `now`.
pub fn new_lease(terms: &LeaseTerms, node_uid: &str, now: MicroTime) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(terms.node_name.clone()),
            namespace: Some(NODE_LEASE_NAMESPACE.to_owned()),
            owner_references: Some(vec![node_owner(&terms.node_name, node_uid)]),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(terms.node_name.clone()),
            lease_duration_seconds: Some(terms.duration_seconds),
            renew_time: Some(now),
            ..LeaseSpec::default()
        }),
    }
}

/// `lease` renewed at `now`: holder and duration set to the node's terms,
/// the Node owner reference pointing at `node_uid` (references to other
/// owners are kept, a stale one to an earlier Node of the same name is
/// replaced), everything else (resourceVersion, labels, acquire time)
/// kept.
pub fn renewed(lease: &Lease, terms: &LeaseTerms, node_uid: &str, now: MicroTime) -> Lease {
    let mut out = lease.clone();
    let owners = out.metadata.owner_references.get_or_insert_with(Vec::new);
    owners.retain(|o| !(o.kind == "Node" && o.name == terms.node_name && o.uid != node_uid));
    if !owners
        .iter()
        .any(|o| o.kind == "Node" && o.name == terms.node_name)
    {
        owners.push(node_owner(&terms.node_name, node_uid));
    }
    let spec = out.spec.get_or_insert_with(LeaseSpec::default);
    spec.holder_identity = Some(terms.node_name.clone());
    spec.lease_duration_seconds = Some(terms.duration_seconds);
    spec.renew_time = Some(now);
    out
}

/// Keeps this node's Lease.
pub struct LeaseAgent {
    api: Api<Lease>,
    terms: LeaseTerms,
    renew_interval: Duration,
}

fn is_api(e: &kube::Error, check: fn(&kube::core::Status) -> bool) -> bool {
    matches!(e, kube::Error::Api(status) if check(status))
}

impl LeaseAgent {
    pub fn new(client: Client, terms: LeaseTerms, renew_interval: Duration) -> Self {
        Self {
            api: Api::namespaced(client, NODE_LEASE_NAMESPACE),
            terms,
            renew_interval,
        }
    }

    fn name(&self) -> &str {
        &self.terms.node_name
    }

    async fn call<T>(
        &self,
        verb: &'static str,
        request: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<Result<T, kube::Error>, LeaseError> {
        tokio::time::timeout(REQUEST_TIMEOUT, request)
            .await
            .map_err(|_| LeaseError::Timeout {
                verb,
                name: self.name().to_owned(),
            })
    }

    fn api_error(&self, verb: &'static str, source: kube::Error) -> LeaseError {
        LeaseError::Api {
            verb,
            name: self.name().to_owned(),
            source: Box::new(source),
        }
    }

    async fn get(&self) -> Result<Option<Lease>, LeaseError> {
        self.call("reading", self.api.get_opt(self.name()))
            .await?
            .map_err(|e| self.api_error("reading", e))
    }

    /// One renewal, from `latest` (the Lease last written or read; `None`:
    /// read it first). Creates the Lease when it does not exist.
    pub async fn renew(&self, latest: Option<Lease>, node_uid: &str) -> Result<Lease, LeaseError> {
        let mut current = match latest {
            Some(lease) => Some(lease),
            None => self.get().await?,
        };
        for _ in 0..MAX_CONFLICT_RETRIES {
            let now = micro_time(Timestamp::now());
            match current.take() {
                None => {
                    let lease = new_lease(&self.terms, node_uid, now);
                    match self
                        .call("creating", self.api.create(&PostParams::default(), &lease))
                        .await?
                    {
                        Ok(lease) => {
                            info!(resource_version = %lease.resource_version().unwrap_or_default(), "created the node lease");
                            return Ok(lease);
                        }
                        Err(e) if is_api(&e, kube::core::Status::is_already_exists) => {
                            current = self.get().await?;
                        }
                        Err(e) => return Err(self.api_error("creating", e)),
                    }
                }
                Some(old) => {
                    let lease = renewed(&old, &self.terms, node_uid, now);
                    match self
                        .call(
                            "renewing",
                            self.api
                                .replace(self.name(), &PostParams::default(), &lease),
                        )
                        .await?
                    {
                        Ok(lease) => {
                            debug!(resource_version = %lease.resource_version().unwrap_or_default(), "renewed the node lease");
                            return Ok(lease);
                        }
                        Err(e) if is_api(&e, kube::core::Status::is_conflict) => {
                            debug!("the node lease changed meanwhile; reading it again");
                            current = self.get().await?;
                        }
                        Err(e) if is_api(&e, kube::core::Status::is_not_found) => {
                            warn!("the node lease is gone; creating it again");
                        }
                        Err(e) => return Err(self.api_error("renewing", e)),
                    }
                }
            }
        }
        Err(LeaseError::Conflicts(self.name().to_owned()))
    }

    /// Renews the Lease every interval until the future is dropped, once
    /// `node` names the registered Node.
    pub async fn run(self, mut node: watch::Receiver<Option<NodeState>>) {
        let span =
            info_span!("node_lease", lease = %format!("{NODE_LEASE_NAMESPACE}/{}", self.name()));
        async move {
            if node.wait_for(Option::is_some).await.is_err() {
                return;
            }
            let mut latest = None;
            let mut backoff = Duration::from_millis(200);
            loop {
                let Some(uid) = node.borrow().as_ref().map(|n| n.uid.clone()) else {
                    return;
                };
                match self.renew(latest.take(), &uid).await {
                    Ok(lease) => {
                        latest = Some(lease);
                        backoff = Duration::from_millis(200);
                        tokio::time::sleep(self.renew_interval).await;
                    }
                    Err(e) => {
                        warn!(error = %e, retry_in = ?backoff, "renewing the node lease");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(7));
                    }
                }
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn terms() -> LeaseTerms {
        LeaseTerms {
            node_name: "n1".into(),
            duration_seconds: 40,
        }
    }

    fn t(micros: i64) -> MicroTime {
        MicroTime(Timestamp::from_microsecond(micros).unwrap())
    }

    #[test]
    fn a_new_lease_is_held_and_owned_by_the_node() {
        let lease = new_lease(&terms(), "uid-1", t(1_700_000_000_123_456));
        let v = serde_json::to_value(&lease).unwrap();
        assert_eq!(v["metadata"]["name"], "n1");
        assert_eq!(v["metadata"]["namespace"], "kube-node-lease");
        assert_eq!(
            v["metadata"]["ownerReferences"],
            serde_json::json!([{"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "uid-1"}])
        );
        assert_eq!(v["spec"]["holderIdentity"], "n1");
        assert_eq!(v["spec"]["leaseDurationSeconds"], 40);
        assert_eq!(v["spec"]["renewTime"], "2023-11-14T22:13:20.123456Z");
    }

    #[test]
    fn micro_time_keeps_microseconds_only() {
        let now = Timestamp::from_nanosecond(1_700_000_000_123_456_789).unwrap();
        assert_eq!(micro_time(now), t(1_700_000_000_123_456));
    }

    #[test]
    fn renewal_keeps_the_object_and_fixes_holder_duration_and_owner() {
        let mut old = new_lease(&terms(), "old-uid", t(1));
        old.metadata.resource_version = Some("42".into());
        old.metadata
            .owner_references
            .as_mut()
            .unwrap()
            .push(OwnerReference {
                api_version: "v1".into(),
                kind: "ConfigMap".into(),
                name: "other".into(),
                uid: "cm".into(),
                ..OwnerReference::default()
            });
        let spec = old.spec.as_mut().unwrap();
        spec.holder_identity = Some("someone-else".into());
        spec.lease_duration_seconds = Some(15);
        spec.lease_transitions = Some(3);

        let new = renewed(&old, &terms(), "new-uid", t(2));
        assert_eq!(new.metadata.resource_version.as_deref(), Some("42"));
        let owners = new.metadata.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 2);
        assert!(owners.iter().any(|o| o.kind == "ConfigMap"));
        assert!(
            owners
                .iter()
                .any(|o| o.kind == "Node" && o.uid == "new-uid")
        );
        let spec = new.spec.as_ref().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("n1"));
        assert_eq!(spec.lease_duration_seconds, Some(40));
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(spec.renew_time, Some(t(2)));

        // Same uid: the reference is left as it is.
        let again = renewed(&new, &terms(), "new-uid", t(3));
        assert_eq!(
            again.metadata.owner_references,
            new.metadata.owner_references
        );
    }

    #[test]
    fn a_lease_without_spec_or_owners_gets_both() {
        let bare = Lease {
            metadata: ObjectMeta {
                name: Some("n1".into()),
                ..ObjectMeta::default()
            },
            spec: None,
        };
        let new = renewed(&bare, &terms(), "u", t(5));
        assert_eq!(new.metadata.owner_references.unwrap()[0].uid, "u");
        assert_eq!(new.spec.unwrap().renew_time, Some(t(5)));
    }
}
