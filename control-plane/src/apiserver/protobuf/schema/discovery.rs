//! Protobuf schema of discovery.k8s.io/v1 (`k8s.io/api/discovery/v1/generated.proto`): EndpointSlice.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::core::OBJECT_REFERENCE;
use super::meta::OBJECT_META;
use super::{Msg, Ty, f, keep, msg, rep};

pub static ENDPOINT: Msg = msg(
    "k8s.io.api.discovery.v1.Endpoint",
    &[
        rep(1, "addresses", Ty::Str),
        f(2, "conditions", Ty::Msg(&ENDPOINT_CONDITIONS)),
        keep(3, "hostname", Ty::Str),
        f(4, "targetRef", Ty::Msg(&OBJECT_REFERENCE)),
        f(5, "deprecatedTopology", Ty::MapStr),
        keep(6, "nodeName", Ty::Str),
        keep(7, "zone", Ty::Str),
        f(8, "hints", Ty::Msg(&ENDPOINT_HINTS)),
    ],
);

pub static ENDPOINT_CONDITIONS: Msg = msg(
    "k8s.io.api.discovery.v1.EndpointConditions",
    &[
        keep(1, "ready", Ty::Bool),
        keep(2, "serving", Ty::Bool),
        keep(3, "terminating", Ty::Bool),
    ],
);

pub static ENDPOINT_HINTS: Msg = msg(
    "k8s.io.api.discovery.v1.EndpointHints",
    &[
        rep(1, "forZones", Ty::Msg(&FOR_ZONE)),
        rep(2, "forNodes", Ty::Msg(&FOR_NODE)),
    ],
);

pub static ENDPOINT_PORT: Msg = msg(
    "k8s.io.api.discovery.v1.EndpointPort",
    &[
        keep(1, "name", Ty::Str),
        keep(2, "protocol", Ty::Str),
        keep(3, "port", Ty::I32),
        keep(4, "appProtocol", Ty::Str),
    ],
);

pub static ENDPOINT_SLICE: Msg = msg(
    "k8s.io.api.discovery.v1.EndpointSlice",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        rep(2, "endpoints", Ty::Msg(&ENDPOINT)),
        rep(3, "ports", Ty::Msg(&ENDPOINT_PORT)),
        keep(4, "addressType", Ty::Str),
    ],
);

pub static FOR_NODE: Msg = msg(
    "k8s.io.api.discovery.v1.ForNode",
    &[keep(1, "name", Ty::Str)],
);

pub static FOR_ZONE: Msg = msg(
    "k8s.io.api.discovery.v1.ForZone",
    &[keep(1, "name", Ty::Str)],
);
