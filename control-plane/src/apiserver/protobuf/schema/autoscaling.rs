//! Protobuf schema of autoscaling/v1 (`k8s.io/api/autoscaling/v1/generated.proto`): Scale.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::meta::OBJECT_META;
use super::{Msg, Ty, f, keep, msg};

pub static SCALE: Msg = msg(
    "k8s.io.api.autoscaling.v1.Scale",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SCALE_SPEC)),
        f(3, "status", Ty::Msg(&SCALE_STATUS)),
    ],
);

pub static SCALE_SPEC: Msg = msg(
    "k8s.io.api.autoscaling.v1.ScaleSpec",
    &[keep(1, "replicas", Ty::I32)],
);

pub static SCALE_STATUS: Msg = msg(
    "k8s.io.api.autoscaling.v1.ScaleStatus",
    &[keep(1, "replicas", Ty::I32), f(2, "selector", Ty::Str)],
);
