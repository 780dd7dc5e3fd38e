//! Incremental desired state (kube-proxy's service and endpoints change
//! trackers): holds the Services and EndpointSlices seen so far and, for
//! each event, recomputes only the Service it concerns, yielding the
//! frontends whose desired value changed. The state it keeps always equals
//! [`super::desired::desired_state_from`] over the objects it holds (a
//! property its tests check against random event sequences), so a change
//! to one endpoint among 100 000 services costs one service's work.
//!
//! Pure bookkeeping: no I/O. Watching the API is `proxy::watch`; writing
//! the maps is `proxy::maps`.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::Arc,
};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

use super::{
    desired::{NodeContext, service_frontends, service_name, slice_service},
    model::{DesiredState, Frontend, LbService, ServiceName},
};

/// Frontends whose desired value changed: the new value, `None` = removed.
pub type Changes = Vec<(Frontend, Option<LbService>)>;

/// See the module documentation.
#[derive(Debug)]
pub struct ChangeTracker {
    node: NodeContext,
    services: HashMap<ServiceName, Arc<Service>>,
    /// Each Service's slices by slice name.
    slices: HashMap<ServiceName, BTreeMap<String, Arc<EndpointSlice>>>,
    /// (namespace, slice name) → the Service it was filed under.
    slice_owner: HashMap<(String, String), ServiceName>,
    /// What each Service alone would put in the state.
    fragments: HashMap<ServiceName, BTreeMap<Frontend, LbService>>,
    /// Services claiming each frontend; the first by name holds it.
    claims: HashMap<Frontend, BTreeSet<ServiceName>>,
    state: DesiredState,
}

impl ChangeTracker {
    pub fn new(node: NodeContext) -> Self {
        Self {
            node,
            services: HashMap::new(),
            slices: HashMap::new(),
            slice_owner: HashMap::new(),
            fragments: HashMap::new(),
            claims: HashMap::new(),
            state: DesiredState::default(),
        }
    }

    /// The complete desired state.
    pub fn state(&self) -> &DesiredState {
        &self.state
    }

    /// Replaces every Service (a re-list); returns nothing because callers
    /// treat a re-list as a full update.
    pub fn reset_services(&mut self, services: impl IntoIterator<Item = Arc<Service>>) {
        self.services = services
            .into_iter()
            .filter_map(|s| Some((service_name(&s)?, s)))
            .collect();
        self.rebuild();
    }

    /// Replaces every EndpointSlice (a re-list).
    pub fn reset_slices(&mut self, slices: impl IntoIterator<Item = Arc<EndpointSlice>>) {
        self.slices.clear();
        self.slice_owner.clear();
        for slice in slices {
            self.file_slice(slice);
        }
        self.rebuild();
    }

    pub fn apply_service(&mut self, service: Arc<Service>) -> Changes {
        let Some(name) = service_name(&service) else {
            return Changes::new();
        };
        self.services.insert(name.clone(), service);
        self.recompute(&name)
    }

    pub fn delete_service(&mut self, service: &Service) -> Changes {
        let Some(name) = service_name(service) else {
            return Changes::new();
        };
        self.services.remove(&name);
        self.recompute(&name)
    }

    pub fn apply_slice(&mut self, slice: Arc<EndpointSlice>) -> Changes {
        let before = self.unfile_slice(&slice);
        let after = self.file_slice(slice);
        self.recompute_owners(before, after)
    }

    pub fn delete_slice(&mut self, slice: &EndpointSlice) -> Changes {
        let before = self.unfile_slice(slice);
        self.recompute_owners(before, None)
    }

    fn recompute_owners(
        &mut self,
        before: Option<ServiceName>,
        after: Option<ServiceName>,
    ) -> Changes {
        let mut changes = Changes::new();
        if let Some(name) = &before {
            changes.extend(self.recompute(name));
        }
        if let Some(name) = after.filter(|a| Some(a) != before.as_ref()) {
            changes.extend(self.recompute(&name));
        }
        changes
    }

    /// Files `slice` under its Service; returns that Service.
    fn file_slice(&mut self, slice: Arc<EndpointSlice>) -> Option<ServiceName> {
        let owner = slice_service(&slice)?;
        let key = slice_key(&slice)?;
        self.slices
            .entry(owner.clone())
            .or_default()
            .insert(key.1.clone(), slice);
        self.slice_owner.insert(key, owner.clone());
        Some(owner)
    }

    /// Forgets `slice` (by namespace and name); returns the Service it
    /// was filed under.
    fn unfile_slice(&mut self, slice: &EndpointSlice) -> Option<ServiceName> {
        let key = slice_key(slice)?;
        let owner = self.slice_owner.remove(&key)?;
        if let Some(list) = self.slices.get_mut(&owner) {
            list.remove(&key.1);
            if list.is_empty() {
                self.slices.remove(&owner);
            }
        }
        Some(owner)
    }

    /// Recomputes every Service from scratch.
    fn rebuild(&mut self) {
        self.fragments.clear();
        self.claims.clear();
        self.state = DesiredState::default();
        let names: Vec<ServiceName> = self.services.keys().cloned().collect();
        for name in names {
            self.recompute(&name);
        }
    }

    /// Recomputes one Service's fragment and folds it into the state.
    fn recompute(&mut self, name: &ServiceName) -> Changes {
        let new = match self.services.get(name) {
            Some(service) => service_frontends(
                service,
                self.slices
                    .get(name)
                    .into_iter()
                    .flat_map(|m| m.values().map(Arc::as_ref)),
                &self.node,
            ),
            None => BTreeMap::new(),
        };
        let old = self.fragments.remove(name).unwrap_or_default();
        let touched: BTreeSet<Frontend> = old.keys().chain(new.keys()).copied().collect();
        for frontend in old.keys().filter(|f| !new.contains_key(f)) {
            if let Some(claimants) = self.claims.get_mut(frontend) {
                claimants.remove(name);
                if claimants.is_empty() {
                    self.claims.remove(frontend);
                }
            }
        }
        for frontend in new.keys() {
            self.claims
                .entry(*frontend)
                .or_default()
                .insert(name.clone());
        }
        if !new.is_empty() {
            self.fragments.insert(name.clone(), new);
        }
        let mut changes = Changes::new();
        for frontend in touched {
            let want = self
                .claims
                .get(&frontend)
                .and_then(|c| c.first())
                .and_then(|holder| self.fragments.get(holder)?.get(&frontend));
            if self.state.services.get(&frontend) == want {
                continue;
            }
            match want {
                Some(lb) => {
                    self.state.services.insert(frontend, lb.clone());
                }
                None => {
                    self.state.services.remove(&frontend);
                }
            }
            changes.push((frontend, want.cloned()));
        }
        changes
    }
}

fn slice_key(slice: &EndpointSlice) -> Option<(String, String)> {
    Some((
        slice.metadata.namespace.clone()?,
        slice.metadata.name.clone()?,
    ))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use serde_json::json;

    use super::*;
    use crate::proxy::desired::desired_state;

    fn service(ns: &str, name: &str, ip: &str, external: Option<&str>) -> Service {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name},
            "spec": {
                "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ipFamilies": ["IPv4"],
                "externalIPs": external.into_iter().collect::<Vec<_>>(),
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]
            }
        }))
        .unwrap()
    }

    fn slice(ns: &str, name: &str, svc: &str, ips: &[&str], ready: bool) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "endpoints": ips.iter().map(|ip| json!({"addresses": [ip], "conditions": {"ready": ready, "serving": true, "terminating": !ready}})).collect::<Vec<_>>(),
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]
        }))
        .unwrap()
    }

    /// Deterministic pseudo-random numbers (xorshift).
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn the_tracked_state_always_equals_the_full_computation() {
        let node = NodeContext::new("node-a", vec![IpAddr::from([192, 168, 0, 1])]);
        let mut tracker = ChangeTracker::new(node.clone());
        let mut services: BTreeMap<(String, String), Service> = BTreeMap::new();
        let mut slices: BTreeMap<(String, String), EndpointSlice> = BTreeMap::new();
        let mut rng = Rng(0x1234_5678);
        let names = ["a", "b", "c", "d"];
        let ips = ["10.244.0.1", "10.244.0.2", "10.244.0.3", "10.244.0.4"];
        for step in 0..2000 {
            let ns = ["x", "y"][rng.below(2)];
            let svc = names[rng.below(names.len())];
            let changes = match rng.below(5) {
                0 => {
                    // Cluster IPs collide on purpose sometimes; external IPs
                    // collide across namespaces (first by name wins).
                    let ip = format!("10.96.0.{}", 1 + rng.below(6));
                    let ext = (rng.below(2) == 0).then_some("192.0.2.10");
                    let s = service(ns, svc, &ip, ext);
                    services.insert((ns.into(), svc.into()), s.clone());
                    tracker.apply_service(Arc::new(s))
                }
                1 => match services.remove(&(ns.into(), svc.into())) {
                    Some(s) => tracker.delete_service(&s),
                    None => Changes::new(),
                },
                2 | 3 => {
                    // Slices may move between services (label change).
                    let name = format!("s{}", rng.below(5));
                    let owner = names[rng.below(names.len())];
                    let n = rng.below(3);
                    let eps: Vec<&str> = (0..n).map(|_| ips[rng.below(ips.len())]).collect();
                    let s = slice(ns, &name, owner, &eps, rng.below(4) != 0);
                    slices.insert((ns.into(), name), s.clone());
                    tracker.apply_slice(Arc::new(s))
                }
                _ => {
                    let name = format!("s{}", rng.below(5));
                    match slices.remove(&(ns.into(), name)) {
                        Some(s) => tracker.delete_slice(&s),
                        None => Changes::new(),
                    }
                }
            };
            let all_services: Vec<Service> = services.values().cloned().collect();
            let all_slices: Vec<EndpointSlice> = slices.values().cloned().collect();
            let want = desired_state(&all_services, &all_slices, &node);
            assert_eq!(tracker.state(), &want, "step {step}");
            // Every reported change is real and final.
            for (frontend, value) in &changes {
                assert_eq!(want.services.get(frontend), value.as_ref(), "step {step}");
            }
        }
        // A re-list rebuilds the same state.
        let mut fresh = ChangeTracker::new(node.clone());
        fresh.reset_services(services.values().cloned().map(Arc::new));
        fresh.reset_slices(slices.values().cloned().map(Arc::new));
        assert_eq!(fresh.state(), tracker.state());
    }

    #[test]
    fn an_endpoint_change_reports_only_its_frontend() {
        let node = NodeContext::new("node-a", vec![]);
        let mut tracker = ChangeTracker::new(node);
        for i in 0..100 {
            tracker.apply_service(Arc::new(service(
                "x",
                &format!("svc-{i}"),
                &format!("10.96.1.{i}"),
                None,
            )));
            tracker.apply_slice(Arc::new(slice(
                "x",
                &format!("svc-{i}-1"),
                &format!("svc-{i}"),
                &["10.244.0.1", "10.244.0.2"],
                true,
            )));
        }
        let changes = tracker.apply_slice(Arc::new(slice(
            "x",
            "svc-7-1",
            "svc-7",
            &["10.244.0.1"],
            true,
        )));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].0.ip, IpAddr::from([10, 96, 1, 7]));
        assert_eq!(changes[0].1.as_ref().map(|lb| lb.backends.len()), Some(1));
        // The same object again changes nothing.
        let again = tracker.apply_slice(Arc::new(slice(
            "x",
            "svc-7-1",
            "svc-7",
            &["10.244.0.1"],
            true,
        )));
        assert!(again.is_empty());
    }
}
