//! Protobuf schema of batch/v1 (`k8s.io/api/batch/v1/generated.proto`): Job.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::core::POD_TEMPLATE_SPEC;
use super::meta::{LABEL_SELECTOR, OBJECT_META};
use super::{Msg, Ty, f, keep, msg, rep};

pub static JOB: Msg = msg(
    "k8s.io.api.batch.v1.Job",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&JOB_SPEC)),
        f(3, "status", Ty::Msg(&JOB_STATUS)),
    ],
);

pub static JOB_CONDITION: Msg = msg(
    "k8s.io.api.batch.v1.JobCondition",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "status", Ty::Str),
        f(3, "lastProbeTime", Ty::Time),
        f(4, "lastTransitionTime", Ty::Time),
        f(5, "reason", Ty::Str),
        f(6, "message", Ty::Str),
    ],
);

pub static JOB_SPEC: Msg = msg(
    "k8s.io.api.batch.v1.JobSpec",
    &[
        keep(1, "parallelism", Ty::I32),
        keep(2, "completions", Ty::I32),
        keep(3, "activeDeadlineSeconds", Ty::I64),
        f(4, "selector", Ty::Msg(&LABEL_SELECTOR)),
        keep(5, "manualSelector", Ty::Bool),
        f(6, "template", Ty::Msg(&POD_TEMPLATE_SPEC)),
        keep(7, "backoffLimit", Ty::I32),
        keep(8, "ttlSecondsAfterFinished", Ty::I32),
        keep(9, "completionMode", Ty::Str),
        keep(10, "suspend", Ty::Bool),
        f(11, "podFailurePolicy", Ty::Msg(&POD_FAILURE_POLICY)),
        keep(12, "backoffLimitPerIndex", Ty::I32),
        keep(13, "maxFailedIndexes", Ty::I32),
        keep(14, "podReplacementPolicy", Ty::Str),
        keep(15, "managedBy", Ty::Str),
        f(16, "successPolicy", Ty::Msg(&SUCCESS_POLICY)),
    ],
);

pub static JOB_STATUS: Msg = msg(
    "k8s.io.api.batch.v1.JobStatus",
    &[
        rep(1, "conditions", Ty::Msg(&JOB_CONDITION)),
        f(2, "startTime", Ty::Time),
        f(3, "completionTime", Ty::Time),
        f(4, "active", Ty::I32),
        f(5, "succeeded", Ty::I32),
        f(6, "failed", Ty::I32),
        f(7, "completedIndexes", Ty::Str),
        f(
            8,
            "uncountedTerminatedPods",
            Ty::Msg(&UNCOUNTED_TERMINATED_PODS),
        ),
        keep(9, "ready", Ty::I32),
        keep(10, "failedIndexes", Ty::Str),
        keep(11, "terminating", Ty::I32),
    ],
);

pub static POD_FAILURE_POLICY: Msg = msg(
    "k8s.io.api.batch.v1.PodFailurePolicy",
    &[rep(1, "rules", Ty::Msg(&POD_FAILURE_POLICY_RULE))],
);

pub static POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT: Msg = msg(
    "k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
    &[
        keep(1, "containerName", Ty::Str),
        keep(2, "operator", Ty::Str),
        rep(3, "values", Ty::I32),
    ],
);

pub static POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN: Msg = msg(
    "k8s.io.api.batch.v1.PodFailurePolicyOnPodConditionsPattern",
    &[keep(1, "type", Ty::Str), f(2, "status", Ty::Str)],
);

pub static POD_FAILURE_POLICY_RULE: Msg = msg(
    "k8s.io.api.batch.v1.PodFailurePolicyRule",
    &[
        keep(1, "action", Ty::Str),
        f(
            2,
            "onExitCodes",
            Ty::Msg(&POD_FAILURE_POLICY_ON_EXIT_CODES_REQUIREMENT),
        ),
        rep(
            3,
            "onPodConditions",
            Ty::Msg(&POD_FAILURE_POLICY_ON_POD_CONDITIONS_PATTERN),
        ),
    ],
);

pub static SUCCESS_POLICY: Msg = msg(
    "k8s.io.api.batch.v1.SuccessPolicy",
    &[rep(1, "rules", Ty::Msg(&SUCCESS_POLICY_RULE))],
);

pub static SUCCESS_POLICY_RULE: Msg = msg(
    "k8s.io.api.batch.v1.SuccessPolicyRule",
    &[
        keep(1, "succeededIndexes", Ty::Str),
        keep(2, "succeededCount", Ty::I32),
    ],
);

pub static UNCOUNTED_TERMINATED_PODS: Msg = msg(
    "k8s.io.api.batch.v1.UncountedTerminatedPods",
    &[rep(1, "succeeded", Ty::Str), rep(2, "failed", Ty::Str)],
);
