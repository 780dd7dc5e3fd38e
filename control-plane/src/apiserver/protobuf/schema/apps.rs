//! Protobuf schema of apps/v1 (`k8s.io/api/apps/v1/generated.proto`): Deployment, ReplicaSet,
//! DaemonSet, StatefulSet.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::core::{PERSISTENT_VOLUME_CLAIM, POD_TEMPLATE_SPEC};
use super::meta::{LABEL_SELECTOR, OBJECT_META};
use super::{Msg, Ty, f, keep, msg, rep};

pub static DAEMON_SET: Msg = msg(
    "k8s.io.api.apps.v1.DaemonSet",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DAEMON_SET_SPEC)),
        f(3, "status", Ty::Msg(&DAEMON_SET_STATUS)),
    ],
);

pub static DAEMON_SET_CONDITION: Msg = msg(
    "k8s.io.api.apps.v1.DaemonSetCondition",
    &[
        f(1, "type", Ty::Str),
        f(2, "status", Ty::Str),
        f(3, "lastTransitionTime", Ty::Time),
        f(4, "reason", Ty::Str),
        f(5, "message", Ty::Str),
    ],
);

pub static DAEMON_SET_SPEC: Msg = msg(
    "k8s.io.api.apps.v1.DaemonSetSpec",
    &[
        f(1, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(2, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(3, "updateStrategy", Ty::Msg(&DAEMON_SET_UPDATE_STRATEGY)),
        f(4, "minReadySeconds", Ty::I32),
        keep(6, "revisionHistoryLimit", Ty::I32),
    ],
);

pub static DAEMON_SET_STATUS: Msg = msg(
    "k8s.io.api.apps.v1.DaemonSetStatus",
    &[
        keep(1, "currentNumberScheduled", Ty::I32),
        keep(2, "numberMisscheduled", Ty::I32),
        keep(3, "desiredNumberScheduled", Ty::I32),
        keep(4, "numberReady", Ty::I32),
        f(5, "observedGeneration", Ty::I64),
        f(6, "updatedNumberScheduled", Ty::I32),
        f(7, "numberAvailable", Ty::I32),
        f(8, "numberUnavailable", Ty::I32),
        keep(9, "collisionCount", Ty::I32),
        rep(10, "conditions", Ty::Msg(&DAEMON_SET_CONDITION)),
    ],
);

pub static DAEMON_SET_UPDATE_STRATEGY: Msg = msg(
    "k8s.io.api.apps.v1.DaemonSetUpdateStrategy",
    &[
        f(1, "type", Ty::Str),
        f(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE_DAEMON_SET)),
    ],
);

pub static DEPLOYMENT: Msg = msg(
    "k8s.io.api.apps.v1.Deployment",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&DEPLOYMENT_SPEC)),
        f(3, "status", Ty::Msg(&DEPLOYMENT_STATUS)),
    ],
);

pub static DEPLOYMENT_CONDITION: Msg = msg(
    "k8s.io.api.apps.v1.DeploymentCondition",
    &[
        f(1, "type", Ty::Str),
        f(2, "status", Ty::Str),
        f(4, "reason", Ty::Str),
        f(5, "message", Ty::Str),
        f(6, "lastUpdateTime", Ty::Time),
        f(7, "lastTransitionTime", Ty::Time),
    ],
);

pub static DEPLOYMENT_SPEC: Msg = msg(
    "k8s.io.api.apps.v1.DeploymentSpec",
    &[
        keep(1, "replicas", Ty::I32),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "strategy", Ty::Msg(&DEPLOYMENT_STRATEGY)),
        f(5, "minReadySeconds", Ty::I32),
        keep(6, "revisionHistoryLimit", Ty::I32),
        f(7, "paused", Ty::Bool),
        keep(9, "progressDeadlineSeconds", Ty::I32),
    ],
);

pub static DEPLOYMENT_STATUS: Msg = msg(
    "k8s.io.api.apps.v1.DeploymentStatus",
    &[
        f(1, "observedGeneration", Ty::I64),
        f(2, "replicas", Ty::I32),
        f(3, "updatedReplicas", Ty::I32),
        f(4, "availableReplicas", Ty::I32),
        f(5, "unavailableReplicas", Ty::I32),
        rep(6, "conditions", Ty::Msg(&DEPLOYMENT_CONDITION)),
        f(7, "readyReplicas", Ty::I32),
        keep(8, "collisionCount", Ty::I32),
        keep(9, "terminatingReplicas", Ty::I32),
    ],
);

pub static DEPLOYMENT_STRATEGY: Msg = msg(
    "k8s.io.api.apps.v1.DeploymentStrategy",
    &[
        f(1, "type", Ty::Str),
        f(2, "rollingUpdate", Ty::Msg(&ROLLING_UPDATE_DEPLOYMENT)),
    ],
);

pub static REPLICA_SET: Msg = msg(
    "k8s.io.api.apps.v1.ReplicaSet",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&REPLICA_SET_SPEC)),
        f(3, "status", Ty::Msg(&REPLICA_SET_STATUS)),
    ],
);

pub static REPLICA_SET_CONDITION: Msg = msg(
    "k8s.io.api.apps.v1.ReplicaSetCondition",
    &[
        f(1, "type", Ty::Str),
        f(2, "status", Ty::Str),
        f(3, "lastTransitionTime", Ty::Time),
        f(4, "reason", Ty::Str),
        f(5, "message", Ty::Str),
    ],
);

pub static REPLICA_SET_SPEC: Msg = msg(
    "k8s.io.api.apps.v1.ReplicaSetSpec",
    &[
        keep(1, "replicas", Ty::I32),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        f(4, "minReadySeconds", Ty::I32),
    ],
);

pub static REPLICA_SET_STATUS: Msg = msg(
    "k8s.io.api.apps.v1.ReplicaSetStatus",
    &[
        keep(1, "replicas", Ty::I32),
        f(2, "fullyLabeledReplicas", Ty::I32),
        f(3, "observedGeneration", Ty::I64),
        f(4, "readyReplicas", Ty::I32),
        f(5, "availableReplicas", Ty::I32),
        rep(6, "conditions", Ty::Msg(&REPLICA_SET_CONDITION)),
        keep(7, "terminatingReplicas", Ty::I32),
    ],
);

pub static ROLLING_UPDATE_DAEMON_SET: Msg = msg(
    "k8s.io.api.apps.v1.RollingUpdateDaemonSet",
    &[
        keep(1, "maxUnavailable", Ty::IntOrString),
        keep(2, "maxSurge", Ty::IntOrString),
    ],
);

pub static ROLLING_UPDATE_DEPLOYMENT: Msg = msg(
    "k8s.io.api.apps.v1.RollingUpdateDeployment",
    &[
        keep(1, "maxUnavailable", Ty::IntOrString),
        keep(2, "maxSurge", Ty::IntOrString),
    ],
);

pub static ROLLING_UPDATE_STATEFUL_SET_STRATEGY: Msg = msg(
    "k8s.io.api.apps.v1.RollingUpdateStatefulSetStrategy",
    &[
        keep(1, "partition", Ty::I32),
        keep(2, "maxUnavailable", Ty::IntOrString),
    ],
);

pub static STATEFUL_SET: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSet",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&STATEFUL_SET_SPEC)),
        f(3, "status", Ty::Msg(&STATEFUL_SET_STATUS)),
    ],
);

pub static STATEFUL_SET_CONDITION: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSetCondition",
    &[
        f(1, "type", Ty::Str),
        f(2, "status", Ty::Str),
        f(3, "lastTransitionTime", Ty::Time),
        f(4, "reason", Ty::Str),
        f(5, "message", Ty::Str),
    ],
);

pub static STATEFUL_SET_ORDINALS: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSetOrdinals",
    &[f(1, "start", Ty::I32)],
);

pub static STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy",
    &[f(1, "whenDeleted", Ty::Str), f(2, "whenScaled", Ty::Str)],
);

pub static STATEFUL_SET_SPEC: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSetSpec",
    &[
        keep(1, "replicas", Ty::I32),
        f(2, "selector", Ty::Msg(&LABEL_SELECTOR)),
        f(3, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        rep(4, "volumeClaimTemplates", Ty::Msg(&PERSISTENT_VOLUME_CLAIM)),
        f(5, "serviceName", Ty::Str),
        f(6, "podManagementPolicy", Ty::Str),
        f(7, "updateStrategy", Ty::Msg(&STATEFUL_SET_UPDATE_STRATEGY)),
        keep(8, "revisionHistoryLimit", Ty::I32),
        f(9, "minReadySeconds", Ty::I32),
        f(
            10,
            "persistentVolumeClaimRetentionPolicy",
            Ty::Msg(&STATEFUL_SET_PERSISTENT_VOLUME_CLAIM_RETENTION_POLICY),
        ),
        f(11, "ordinals", Ty::Msg(&STATEFUL_SET_ORDINALS)),
    ],
);

pub static STATEFUL_SET_STATUS: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSetStatus",
    &[
        f(1, "observedGeneration", Ty::I64),
        keep(2, "replicas", Ty::I32),
        f(3, "readyReplicas", Ty::I32),
        f(4, "currentReplicas", Ty::I32),
        f(5, "updatedReplicas", Ty::I32),
        f(6, "currentRevision", Ty::Str),
        f(7, "updateRevision", Ty::Str),
        keep(9, "collisionCount", Ty::I32),
        rep(10, "conditions", Ty::Msg(&STATEFUL_SET_CONDITION)),
        f(11, "availableReplicas", Ty::I32),
    ],
);

pub static STATEFUL_SET_UPDATE_STRATEGY: Msg = msg(
    "k8s.io.api.apps.v1.StatefulSetUpdateStrategy",
    &[
        f(1, "type", Ty::Str),
        f(
            2,
            "rollingUpdate",
            Ty::Msg(&ROLLING_UPDATE_STATEFUL_SET_STRATEGY),
        ),
    ],
);
