//! The desired load-balancer state: what every service frontend should
//! balance to. Plain values, no I/O; `desired_state` (in `desired.rs`)
//! computes it from Services and EndpointSlices, and the map writer turns
//! it into BPF map entries.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

/// L4 protocol of a frontend or backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

/// How a frontend is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrontendKind {
    ClusterIp,
    /// A NodePort on one of this node's addresses.
    NodePort,
    ExternalIp,
    LoadBalancer,
}

/// An address clients connect to: (ip, port, protocol).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Frontend {
    pub ip: IpAddr,
    pub port: u16,
    pub protocol: Protocol,
}

/// Whether a backend takes new connections normally or only as a last resort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendState {
    /// `ready` (or unknown) endpoint.
    Active,
    /// `serving` but `terminating`: used only when no active one is left.
    Terminating,
}

/// One endpoint address:port a frontend balances to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Backend {
    pub ip: IpAddr,
    pub port: u16,
    pub state: BackendState,
    /// `nodeName` of the endpoint, when the slice says.
    pub node_name: Option<String>,
}

/// How a backend is picked for a new flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Algorithm {
    /// Uniformly random among the backends.
    #[default]
    Random,
    /// Maglev consistent hashing on the flow's 5-tuple: every node picks the
    /// same backend for a flow, and few flows move when backends change.
    Maglev,
}

/// `namespace/name` of a Service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName {
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One frontend of one service port and what it balances to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LbService {
    pub service: ServiceName,
    /// The Service port's name ("" when unnamed).
    pub port_name: String,
    pub kind: FrontendKind,
    /// Backends to use, already filtered by traffic policy and endpoint
    /// state (active ones, or the terminating ones when none is active),
    /// sorted for determinism. Empty → connections are refused.
    pub backends: Vec<Backend>,
    pub algorithm: Algorithm,
    /// `sessionAffinity: ClientIP` and its timeout.
    pub affinity: Option<Duration>,
    /// `externalTrafficPolicy: Local` on a NodePort/ExternalIP/LoadBalancer
    /// frontend: keep the client address (no SNAT), local backends only.
    pub external_local: bool,
}

/// Everything the datapath should balance, keyed by frontend.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub services: BTreeMap<Frontend, LbService>,
}
