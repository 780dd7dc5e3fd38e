//! Maglev tables for the NodePort datapath: turns the desired state and
//! the frontends the load-balancer maps serve into per-service Maglev
//! tables of backend *slots*, and keeps the pinned `NP_MAGLEV` map equal
//! to them (writing only entries that differ).
//!
//! A table entry names a slot (`1..=count`) of the service entry, not a
//! backend id, so the table follows `LbMapWriter`'s revision switch: call
//! [`MaglevWriter::apply`] right after `LbMapWriter::apply` with its
//! `live()` view. In between, entries may name slots of the new revision
//! that hold other backends: new flows then land on a valid but not
//! Maglev-chosen backend, and a slot beyond the count makes the program
//! fall back to random; established flows are held by conntrack.
//!
//! This module owns the content of `NP_MAGLEV`; it never writes the
//! service maps.

use std::collections::BTreeMap;

use keelson_ebpf_common::nat::{MAGLEV_TABLE_SIZE, MAX_MAGLEV_SERVICES, MaglevKey};
use thiserror::Error;
use tracing::{debug, warn};

use super::{
    maglev::{self, BackendKey},
    maps::LiveService,
    model::{Algorithm, DesiredState, Frontend, FrontendKind},
};
use crate::bpf::{BpfError, nodeport::MaglevMap};

/// Failures of the Maglev table writer.
#[derive(Debug, Error)]
pub enum MaglevWriteError {
    #[error("NodePort Maglev map: {0}")]
    Map(#[from] BpfError),
}

/// The Maglev tables the datapath should hold: service id → slot per
/// entry (`MAGLEV_TABLE_SIZE` entries). Only non-ClusterIP frontends with
/// [`Algorithm::Maglev`] that the maps serve with at least one backend
/// get a table; at most `MAX_MAGLEV_SERVICES` (further ones are balanced
/// randomly and logged).
pub fn maglev_tables(
    desired: &DesiredState,
    live: &BTreeMap<Frontend, LiveService>,
) -> BTreeMap<u32, Vec<u32>> {
    let mut tables = BTreeMap::new();
    for (frontend, svc) in &desired.services {
        if svc.algorithm != Algorithm::Maglev || svc.kind == FrontendKind::ClusterIp {
            continue;
        }
        let Some(served) = live.get(frontend) else {
            continue;
        };
        if served.backends.is_empty() || tables.contains_key(&served.service_id) {
            continue;
        }
        if tables.len() >= MAX_MAGLEV_SERVICES as usize {
            warn!(service = %svc.service, "too many Maglev services; balancing randomly");
            continue;
        }
        let keys: Vec<BackendKey> = served
            .backends
            .iter()
            .map(|&(ip, port)| BackendKey { ip, port })
            .collect();
        // Backend index i sits in slot i + 1 (LiveService lists slot order).
        let table = maglev::table(&keys, MAGLEV_TABLE_SIZE as usize)
            .into_iter()
            .map(|i| i + 1)
            .collect();
        tables.insert(served.service_id, table);
    }
    tables
}

/// Keeps `NP_MAGLEV` equal to [`maglev_tables`].
pub struct MaglevWriter {
    map: MaglevMap,
    mirror: BTreeMap<MaglevKey, u32>,
}

impl MaglevWriter {
    /// Starts from what the map holds now (a previous agent's tables).
    pub fn new(map: MaglevMap) -> Result<Self, MaglevWriteError> {
        let mirror = map.entries()?.into_iter().collect();
        Ok(Self { map, mirror })
    }

    /// Writes the tables for `desired` as `live` serves it; returns the
    /// number of entries written or deleted.
    pub fn apply(
        &mut self,
        desired: &DesiredState,
        live: &BTreeMap<Frontend, LiveService>,
    ) -> Result<usize, MaglevWriteError> {
        let mut want = BTreeMap::new();
        for (service_id, table) in maglev_tables(desired, live) {
            for (index, slot) in table.into_iter().enumerate() {
                let key = MaglevKey {
                    service_id,
                    index: index as u32,
                };
                want.insert(key, slot);
            }
        }
        let mut changed = 0;
        for (key, slot) in &want {
            if self.mirror.get(key) != Some(slot) {
                self.map.put(key, *slot)?;
                self.mirror.insert(*key, *slot);
                changed += 1;
            }
        }
        let stale: Vec<MaglevKey> = self
            .mirror
            .keys()
            .filter(|key| !want.contains_key(key))
            .copied()
            .collect();
        for key in stale {
            self.map.delete(&key)?;
            self.mirror.remove(&key);
            changed += 1;
        }
        debug!(changed, "synced the NodePort Maglev tables");
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::proxy::model::{Backend, BackendState, LbService, Protocol, ServiceName};

    fn svc(kind: FrontendKind, algorithm: Algorithm) -> LbService {
        LbService {
            service: ServiceName {
                namespace: "default".into(),
                name: "web".into(),
            },
            port_name: String::new(),
            kind,
            backends: vec![Backend {
                ip: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
                port: 80,
                state: BackendState::Active,
                node_name: None,
            }],
            algorithm,
            affinity: None,
            external_local: false,
        }
    }

    #[test]
    fn only_external_maglev_frontends_get_tables_of_slots() {
        let fe = |port| Frontend {
            ip: IpAddr::V4(Ipv4Addr::new(10, 216, 0, 1)),
            port,
            protocol: Protocol::Tcp,
        };
        let mut desired = DesiredState::default();
        desired
            .services
            .insert(fe(1), svc(FrontendKind::NodePort, Algorithm::Maglev));
        desired
            .services
            .insert(fe(2), svc(FrontendKind::NodePort, Algorithm::Random));
        desired
            .services
            .insert(fe(3), svc(FrontendKind::ClusterIp, Algorithm::Maglev));
        let live_svc = |id| LiveService {
            service_id: id,
            backends: vec![
                (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 80),
                (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 80),
            ],
            affinity: None,
            revision: 0,
        };
        let live = [
            (fe(1), live_svc(7)),
            (fe(2), live_svc(8)),
            (fe(3), live_svc(9)),
        ]
        .into_iter()
        .collect();
        let tables = maglev_tables(&desired, &live);
        assert_eq!(tables.keys().copied().collect::<Vec<_>>(), vec![7]);
        let table = &tables[&7];
        assert_eq!(table.len(), MAGLEV_TABLE_SIZE as usize);
        assert!(table.iter().all(|slot| (1..=2).contains(slot)));
        assert!(table.contains(&1) && table.contains(&2));
    }
}
