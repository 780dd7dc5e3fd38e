//! The kubelet: the node agent's half that runs the pods bound to this
//! node. [`pods`] holds the pod workers (watch → sandbox → containers →
//! status → teardown); [`server`] the kubelet's HTTP server (container
//! logs, read by [`logs`] from the CRI log files).

pub mod logs;
pub mod pods;
pub mod server;
