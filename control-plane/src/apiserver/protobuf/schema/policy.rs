//! Protobuf schema of policy/v1 (`k8s.io/api/policy/v1/generated.proto`): Eviction.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::meta::{DELETE_OPTIONS, OBJECT_META};
use super::{Msg, Ty, f, msg};

pub static EVICTION: Msg = msg(
    "k8s.io.api.policy.v1.Eviction",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "deleteOptions", Ty::Msg(&DELETE_OPTIONS)),
    ],
);
