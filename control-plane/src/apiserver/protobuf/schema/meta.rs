//! Protobuf schema of meta/v1 (`k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto`): ObjectMeta and
//! its parts, LabelSelector, Condition, DeleteOptions.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::{Msg, Ty, f, keep, msg, rep};

pub static CONDITION: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.Condition",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "status", Ty::Str),
        f(3, "observedGeneration", Ty::I64),
        f(4, "lastTransitionTime", Ty::Time),
        keep(5, "reason", Ty::Str),
        keep(6, "message", Ty::Str),
    ],
);

pub static DELETE_OPTIONS: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions",
    &[
        keep(1, "gracePeriodSeconds", Ty::I64),
        f(2, "preconditions", Ty::Msg(&PRECONDITIONS)),
        keep(3, "orphanDependents", Ty::Bool),
        keep(4, "propagationPolicy", Ty::Str),
        rep(5, "dryRun", Ty::Str),
        keep(
            6,
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            Ty::Bool,
        ),
    ],
);

pub static LABEL_SELECTOR: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelector",
    &[
        f(1, "matchLabels", Ty::MapStr),
        rep(2, "matchExpressions", Ty::Msg(&LABEL_SELECTOR_REQUIREMENT)),
    ],
);

pub static LABEL_SELECTOR_REQUIREMENT: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
    &[
        keep(1, "key", Ty::Str),
        keep(2, "operator", Ty::Str),
        rep(3, "values", Ty::Str),
    ],
);

pub static MANAGED_FIELDS_ENTRY: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.ManagedFieldsEntry",
    &[
        f(1, "manager", Ty::Str),
        f(2, "operation", Ty::Str),
        f(3, "apiVersion", Ty::Str),
        f(4, "time", Ty::Time),
        f(6, "fieldsType", Ty::Str),
        f(7, "fieldsV1", Ty::FieldsV1),
        f(8, "subresource", Ty::Str),
    ],
);

pub static OBJECT_META: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    &[
        f(1, "name", Ty::Str),
        f(2, "generateName", Ty::Str),
        f(3, "namespace", Ty::Str),
        f(4, "selfLink", Ty::Str),
        f(5, "uid", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "generation", Ty::I64),
        f(8, "creationTimestamp", Ty::Time),
        f(9, "deletionTimestamp", Ty::Time),
        keep(10, "deletionGracePeriodSeconds", Ty::I64),
        f(11, "labels", Ty::MapStr),
        f(12, "annotations", Ty::MapStr),
        rep(13, "ownerReferences", Ty::Msg(&OWNER_REFERENCE)),
        rep(14, "finalizers", Ty::Str),
        rep(17, "managedFields", Ty::Msg(&MANAGED_FIELDS_ENTRY)),
    ],
);

pub static OWNER_REFERENCE: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.OwnerReference",
    &[
        keep(1, "kind", Ty::Str),
        keep(3, "name", Ty::Str),
        keep(4, "uid", Ty::Str),
        keep(5, "apiVersion", Ty::Str),
        keep(6, "controller", Ty::Bool),
        keep(7, "blockOwnerDeletion", Ty::Bool),
    ],
);

pub static PRECONDITIONS: Msg = msg(
    "k8s.io.apimachinery.pkg.apis.meta.v1.Preconditions",
    &[keep(1, "uid", Ty::Str), keep(2, "resourceVersion", Ty::Str)],
);
