//! Service ClusterIP and NodePort allocation — the one place that hands out
//! addresses and ports from `--service-cidr` and the NodePort range.
//!
//! Each allocation is a store key created only if absent
//! (`/registry/ranges/serviceips/<ip>`, `/registry/ranges/servicenodeports/<port>`),
//! so several API servers on one etcd never hand out the same value, and the
//! allocation survives restarts. [`Allocator::repair`] runs at start-up and
//! releases keys no Service references (a crash between allocating and
//! storing the Service), so nothing leaks across restarts.

use std::{collections::HashSet, net::Ipv4Addr, ops::RangeInclusive, sync::Arc};

use ipnet::Ipv4Net;
use serde_json::Value;
use tracing::{info, warn};

use crate::{
    apiserver::{
        meta,
        status::{ApiError, FieldError},
    },
    storage::{Store, StoreError, keys},
};

const IP_PREFIX: &str = "/registry/ranges/serviceips/";
const PORT_PREFIX: &str = "/registry/ranges/servicenodeports/";

pub struct Allocator {
    store: Arc<dyn Store>,
    cidr: Ipv4Net,
    node_ports: RangeInclusive<u16>,
}

/// What a Service holds: its cluster IP and node ports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    pub ip: Option<Ipv4Addr>,
    pub node_ports: Vec<u16>,
}

impl Held {
    /// What `service` (JSON) holds.
    pub fn of(service: &Value) -> Held {
        let spec = service.get("spec");
        let ip = spec
            .and_then(|s| s.get("clusterIP"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        let node_ports = spec
            .and_then(|s| s.get("ports"))
            .and_then(Value::as_array)
            .map(|ports| {
                ports
                    .iter()
                    .filter_map(|p| p.get("nodePort")?.as_u64())
                    .filter_map(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0)
                    .collect()
            })
            .unwrap_or_default();
        Held { ip, node_ports }
    }
}

impl Allocator {
    pub fn new(store: Arc<dyn Store>, cidr: Ipv4Net, node_ports: RangeInclusive<u16>) -> Self {
        Self {
            store,
            cidr,
            node_ports,
        }
    }

    pub fn cidr(&self) -> Ipv4Net {
        self.cidr
    }

    /// The first usable address: reserved for the `kubernetes` Service.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + 1)
    }

    /// Fills in `spec.clusterIP(s)` and `spec.ports[*].nodePort` of a new
    /// Service, allocating them (honouring requested values, 422 if taken
    /// or out of range). On error everything allocated here is released.
    pub async fn allocate_service(&self, service: &mut Value, owner: &str) -> Result<(), ApiError> {
        let kind_name = meta::name(service).to_owned();
        let invalid = |e: FieldError| ApiError::invalid("", "Service", &kind_name, &[e]);
        let spec_type = service
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_owned();
        let mut got = Held::default();
        let result = async {
            if spec_type != "ExternalName" {
                let requested = service
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if requested != "None" {
                    let ip = if requested.is_empty() {
                        self.allocate_ip(None, owner).await?
                    } else {
                        let ip: Ipv4Addr = requested.parse().map_err(|_| {
                            invalid(FieldError::invalid(
                                "spec.clusterIPs",
                                Value::from(vec![requested.clone()]),
                                "must be a valid IP address",
                            ))
                        })?;
                        self.allocate_ip(Some(ip), owner).await.map_err(|e| {
                            if e.code == 422 {
                                invalid(FieldError::invalid(
                                    "spec.clusterIPs",
                                    Value::from(vec![requested.clone()]),
                                    e.message.clone(),
                                ))
                            } else {
                                e
                            }
                        })?
                    };
                    got.ip = Some(ip);
                    if let Some(spec) = service.get_mut("spec").and_then(Value::as_object_mut) {
                        spec.insert("clusterIP".into(), Value::from(ip.to_string()));
                        spec.insert("clusterIPs".into(), Value::from(vec![ip.to_string()]));
                    }
                }
            }
            if spec_type == "NodePort" || spec_type == "LoadBalancer" {
                let count = service
                    .pointer("/spec/ports")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                for i in 0..count {
                    let path = format!("/spec/ports/{i}/nodePort");
                    let requested = service
                        .pointer(&path)
                        .and_then(Value::as_u64)
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p != 0);
                    let port = self.allocate_port(requested, owner).await.map_err(|e| {
                        if e.code == 422 {
                            invalid(FieldError::invalid(
                                format!("spec.ports[{i}].nodePort"),
                                requested.map_or(Value::Null, Value::from),
                                e.message.clone(),
                            ))
                        } else {
                            e
                        }
                    })?;
                    got.node_ports.push(port);
                    if let Some(slot) = service.pointer_mut(&format!("/spec/ports/{i}")) {
                        slot["nodePort"] = Value::from(port);
                    }
                }
            }
            Ok(())
        }
        .await;
        if result.is_err() {
            self.release(&got).await;
        }
        result
    }

    /// Adjusts allocations for an updated Service: allocates node ports a
    /// type change to NodePort/LoadBalancer needs, releases ones dropped.
    pub async fn update_service(
        &self,
        old: &Value,
        new: &mut Value,
        owner: &str,
    ) -> Result<(), ApiError> {
        let before = Held::of(old);
        let spec_type = new
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_owned();
        let mut allocated = Vec::new();
        if spec_type == "NodePort" || spec_type == "LoadBalancer" {
            let count = new
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            for i in 0..count {
                let path = format!("/spec/ports/{i}/nodePort");
                let requested = new
                    .pointer(&path)
                    .and_then(Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .filter(|p| *p != 0);
                match requested {
                    Some(p) if before.node_ports.contains(&p) => {}
                    _ => match self.allocate_port(requested, owner).await {
                        Ok(port) => {
                            allocated.push(port);
                            if let Some(slot) = new.pointer_mut(&format!("/spec/ports/{i}")) {
                                slot["nodePort"] = Value::from(port);
                            }
                        }
                        Err(e) => {
                            self.release(&Held {
                                ip: None,
                                node_ports: allocated,
                            })
                            .await;
                            let name = meta::name(new).to_owned();
                            return Err(if e.code == 422 {
                                ApiError::invalid(
                                    "",
                                    "Service",
                                    &name,
                                    &[FieldError::invalid(
                                        format!("spec.ports[{i}].nodePort"),
                                        requested.map_or(Value::Null, Value::from),
                                        e.message,
                                    )],
                                )
                            } else {
                                e
                            });
                        }
                    },
                }
            }
        } else if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for port in ports {
                if let Some(p) = port.as_object_mut() {
                    p.remove("nodePort");
                }
            }
        }
        let after = Held::of(new);
        let dropped: Vec<u16> = before
            .node_ports
            .into_iter()
            .filter(|p| !after.node_ports.contains(p))
            .collect();
        self.release(&Held {
            ip: None,
            node_ports: dropped,
        })
        .await;
        Ok(())
    }

    async fn allocate_ip(
        &self,
        requested: Option<Ipv4Addr>,
        owner: &str,
    ) -> Result<Ipv4Addr, ApiError> {
        let network = u32::from(self.cidr.network());
        let broadcast = u32::from(self.cidr.broadcast());
        if let Some(ip) = requested {
            let n = u32::from(ip);
            if !self.cidr.contains(&ip) || n == network || n == broadcast {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "failed to allocate IP {ip}: provided IP is not in the valid range. The range of valid IPs is {}",
                        self.cidr
                    ),
                ));
            }
            return match self.claim(&format!("{IP_PREFIX}{ip}"), owner).await? {
                true => Ok(ip),
                false => Err(ApiError::new(
                    422,
                    "Invalid",
                    format!("failed to allocate IP {ip}: provided IP is already allocated"),
                )),
            };
        }
        let size = broadcast.saturating_sub(network).saturating_sub(1);
        if size == 0 {
            return Err(ApiError::internal(
                "the service CIDR has no usable addresses",
            ));
        }
        for _ in 0..8 {
            let taken = self.taken(IP_PREFIX).await?;
            if taken.len() as u64 >= u64::from(size) {
                break;
            }
            // Random start, then the first free address after it; the first
            // address stays for the `kubernetes` Service.
            let start = (meta::random_u64() % u64::from(size)) as u32;
            for step in 0..size {
                let n = network + 1 + (start + step) % size;
                let ip = Ipv4Addr::from(n);
                if n == network + 1 || taken.contains(&ip.to_string()) {
                    continue;
                }
                if self.claim(&format!("{IP_PREFIX}{ip}"), owner).await? {
                    return Ok(ip);
                }
                break; // raced with another server: re-read and retry
            }
        }
        Err(ApiError::new(
            422,
            "Invalid",
            format!(
                "failed to allocate a serviceIP: range is full ({})",
                self.cidr
            ),
        ))
    }

    async fn allocate_port(&self, requested: Option<u16>, owner: &str) -> Result<u16, ApiError> {
        let (lo, hi) = (*self.node_ports.start(), *self.node_ports.end());
        if let Some(port) = requested {
            if !self.node_ports.contains(&port) {
                return Err(ApiError::new(
                    422,
                    "Invalid",
                    format!(
                        "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                    ),
                ));
            }
            return match self.claim(&format!("{PORT_PREFIX}{port}"), owner).await? {
                true => Ok(port),
                false => Err(ApiError::new(
                    422,
                    "Invalid",
                    "provided port is already allocated",
                )),
            };
        }
        let size = u32::from(hi - lo) + 1;
        for _ in 0..8 {
            let taken = self.taken(PORT_PREFIX).await?;
            let start = (meta::random_u64() % u64::from(size)) as u32;
            let mut raced = false;
            for step in 0..size {
                let port = lo + ((start + step) % size) as u16;
                if taken.contains(&port.to_string()) {
                    continue;
                }
                if self.claim(&format!("{PORT_PREFIX}{port}"), owner).await? {
                    return Ok(port);
                }
                raced = true;
                break;
            }
            if !raced {
                break;
            }
        }
        Err(ApiError::new(
            422,
            "Invalid",
            format!("range is full: no node ports left in {lo}-{hi}"),
        ))
    }

    /// Creates an allocation key; false if someone holds it.
    async fn claim(&self, key: &str, owner: &str) -> Result<bool, ApiError> {
        match self.store.create(key, owner.as_bytes().to_vec()).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(ApiError::internal(format!("allocating {key}: {e}"))),
        }
    }

    async fn taken(&self, prefix: &str) -> Result<HashSet<String>, ApiError> {
        let range = self
            .store
            .range(prefix, None, None, None)
            .await
            .map_err(|e| ApiError::internal(format!("reading allocations: {e}")))?;
        Ok(range
            .kvs
            .into_iter()
            .filter_map(|kv| kv.key.strip_prefix(prefix).map(str::to_owned))
            .collect())
    }

    /// Releases what a deleted (or never stored) Service held.
    pub async fn release(&self, held: &Held) {
        let keys = held
            .ip
            .iter()
            .map(|ip| format!("{IP_PREFIX}{ip}"))
            .chain(held.node_ports.iter().map(|p| format!("{PORT_PREFIX}{p}")));
        for key in keys {
            match self.store.delete(&key, None).await {
                Ok(_) | Err(StoreError::NotFound(_)) => {}
                Err(e) => warn!(key, error = %e, "releasing a service allocation"),
            }
        }
    }

    /// Reconciles allocation keys with the stored Services: releases keys
    /// no Service holds and claims values Services hold without a key.
    pub async fn repair(&self) -> Result<(), StoreError> {
        let services = self
            .store
            .range(&keys::prefix("", "services", None), None, None, None)
            .await?;
        let mut wanted: HashSet<String> = HashSet::new();
        for kv in &services.kvs {
            let Ok(service) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            let owner = format!(
                "{}/{}",
                meta::namespace(&service).unwrap_or_default(),
                meta::name(&service)
            );
            let held = Held::of(&service);
            for key in held
                .ip
                .iter()
                .map(|ip| format!("{IP_PREFIX}{ip}"))
                .chain(held.node_ports.iter().map(|p| format!("{PORT_PREFIX}{p}")))
            {
                if let Err(e) = self.store.create(&key, owner.clone().into_bytes()).await
                    && !matches!(e, StoreError::AlreadyExists(_))
                {
                    return Err(e);
                }
                wanted.insert(key);
            }
        }
        for prefix in [IP_PREFIX, PORT_PREFIX] {
            for kv in self.store.range(prefix, None, None, None).await?.kvs {
                // Keys claimed after the Services snapshot may belong to a
                // Service another server is creating right now.
                if !wanted.contains(&kv.key) && kv.mod_revision <= services.revision {
                    info!(key = kv.key, "releasing a leaked service allocation");
                    match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
                        Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Conflict { .. }) => {
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Ok(())
    }
}
