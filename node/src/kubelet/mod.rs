//! The kubelet: the node agent's half that runs the pods bound to this
//! node. [`pods`] holds the pod workers (watch → sandbox → containers →
//! status → teardown).

pub mod pods;
