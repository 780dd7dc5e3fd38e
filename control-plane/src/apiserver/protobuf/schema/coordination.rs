//! Protobuf schema of coordination.k8s.io/v1 (`k8s.io/api/coordination/v1/generated.proto`): Lease.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::meta::OBJECT_META;
use super::{Msg, Ty, f, keep, msg};

pub static LEASE: Msg = msg(
    "k8s.io.api.coordination.v1.Lease",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&LEASE_SPEC)),
    ],
);

pub static LEASE_SPEC: Msg = msg(
    "k8s.io.api.coordination.v1.LeaseSpec",
    &[
        keep(1, "holderIdentity", Ty::Str),
        keep(2, "leaseDurationSeconds", Ty::I32),
        f(3, "acquireTime", Ty::MicroTime),
        f(4, "renewTime", Ty::MicroTime),
        keep(5, "leaseTransitions", Ty::I32),
        keep(6, "strategy", Ty::Str),
        keep(7, "preferredHolder", Ty::Str),
    ],
);
