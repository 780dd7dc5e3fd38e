//! `apps/v1`: Deployment, ReplicaSet, DaemonSet and StatefulSet — their
//! defaulting hooks, spec validation (selector, template, strategies) and
//! update rules (immutable selectors; StatefulSet's short list of mutable
//! spec fields), as apps' `validation.go` has them.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::Kind;
use super::defaults;
use super::meta::{self, json};
use super::names;
use super::path::Path;
use super::pod;
use crate::apiserver::status::FieldError;

fn spec_path() -> Path {
    Path::root("spec")
}

fn nonnegative(value: Option<i32>, path: Path, errs: &mut Vec<FieldError>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(path, v, names::NEGATIVE_ERROR));
    }
}

/// Whether the request carried `spec.selector` at all.
fn has_selector(raw: &Value) -> bool {
    raw.get("spec")
        .and_then(|s| s.get("selector"))
        .is_some_and(|s| !s.is_null())
}

/// A required, non-empty, valid selector (`empty selector is invalid for
/// <kind>`).
fn selector(sel: &LabelSelector, present: bool, kind: &str, errs: &mut Vec<FieldError>) {
    let path = spec_path().child("selector");
    if !present {
        errs.push(FieldError::required(path, ""));
        return;
    }
    errs.extend(meta::validate_label_selector(sel, &path));
    if meta::selector_is_empty(sel) {
        errs.push(FieldError::invalid(
            path,
            json(sel),
            format!("empty selector is invalid for {kind}"),
        ));
    }
}

/// The template: labels matched by the selector, a valid pod template,
/// restartPolicy Always, no activeDeadlineSeconds.
fn template(
    t: &PodTemplateSpec,
    sel: &LabelSelector,
    kind: &str,
    forbid_deadline: bool,
    errs: &mut Vec<FieldError>,
) {
    let path = spec_path().child("template");
    let labels = t.metadata.as_ref().and_then(|m| m.labels.as_ref());
    if meta::selector_is_convertible(sel)
        && !meta::selector_is_empty(sel)
        && !meta::selector_matches(sel, labels)
    {
        errs.push(FieldError::invalid(
            path.children(&["metadata", "labels"]),
            json(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(pod::validate_template(t, &path, pod::SpecOf::Template));
    let spec = t.spec.as_ref();
    let restart = spec.and_then(|s| s.restart_policy.as_deref()).unwrap_or("");
    if restart != "Always" {
        errs.push(FieldError::not_supported(
            path.children(&["spec", "restartPolicy"]),
            restart,
            &["Always"],
        ));
    }
    if let Some(ads) = spec.and_then(|s| s.active_deadline_seconds) {
        let p = path.children(&["spec", "activeDeadlineSeconds"]);
        let msg = format!("activeDeadlineSeconds in {kind} is not Supported");
        errs.push(if forbid_deadline {
            FieldError::forbidden(p, msg)
        } else {
            FieldError::invalid(p, ads, msg)
        });
    }
}

fn int_or_percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::Int(n) => Some(i64::from(*n)),
        IntOrString::String(s) => s.strip_suffix('%').and_then(|d| d.parse().ok()),
    }
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: Option<&IntOrString>, path: Path, errs: &mut Vec<FieldError>) {
    match v {
        Some(IntOrString::String(s)) => {
            for msg in names::is_valid_percent(s) {
                errs.push(FieldError::invalid(&path, s.as_str(), msg));
            }
        }
        Some(IntOrString::Int(n)) if *n < 0 => {
            errs.push(FieldError::invalid(&path, *n, names::NEGATIVE_ERROR));
        }
        _ => {}
    }
}

fn not_more_than_100_percent(v: Option<&IntOrString>, path: Path, errs: &mut Vec<FieldError>) {
    if let Some(IntOrString::String(s)) = v
        && int_or_percent_value(&IntOrString::String(s.clone())).is_some_and(|p| p > 100)
    {
        errs.push(FieldError::invalid(
            path,
            s.as_str(),
            "must not be greater than 100%",
        ));
    }
}

fn selector_immutable(new: &LabelSelector, old: &LabelSelector) -> Vec<FieldError> {
    meta::immutable(new, old, &spec_path().child("selector"))
        .into_iter()
        .collect()
}

impl Kind for Deployment {
    fn default(&mut self) {
        defaults::deployment(self);
    }
    fn validate(&self, raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = &self.spec;
        let sp = spec_path();
        nonnegative(spec.replicas, sp.child("replicas"), &mut errs);
        selector(&spec.selector, has_selector(raw), "deployment", &mut errs);
        if !meta::selector_is_convertible(&spec.selector) {
            errs.push(FieldError::invalid(
                sp.child("selector"),
                json(&spec.selector),
                "invalid label selector",
            ));
        }
        template(
            &spec.template,
            &spec.selector,
            "ReplicaSet",
            true,
            &mut errs,
        );
        if let Some(strategy) = &spec.strategy {
            let path = sp.child("strategy");
            match strategy.type_.as_deref().unwrap_or("") {
                "Recreate" => {
                    if strategy.rolling_update.is_some() {
                        errs.push(FieldError::forbidden(
                            path.child("rollingUpdate"),
                            "may not be specified when strategy `type` is 'Recreate'",
                        ));
                    }
                }
                "RollingUpdate" => match &strategy.rolling_update {
                    None => errs.push(FieldError::required(
                        path.child("rollingUpdate"),
                        "this should be defaulted and never be nil",
                    )),
                    Some(ru) => {
                        let rp = path.child("rollingUpdate");
                        let mu = ru.max_unavailable.as_ref();
                        let ms = ru.max_surge.as_ref();
                        positive_int_or_percent(mu, rp.child("maxUnavailable"), &mut errs);
                        positive_int_or_percent(ms, rp.child("maxSurge"), &mut errs);
                        let zero = |v: Option<&IntOrString>| {
                            v.and_then(int_or_percent_value).unwrap_or(0) == 0
                        };
                        if zero(mu) && zero(ms) {
                            errs.push(FieldError::invalid(
                                rp.child("maxUnavailable"),
                                json(&mu),
                                "may not be 0 when `maxSurge` is 0",
                            ));
                        }
                        not_more_than_100_percent(mu, rp.child("maxUnavailable"), &mut errs);
                    }
                },
                other => errs.push(FieldError::not_supported(
                    &path,
                    other,
                    &["Recreate", "RollingUpdate"],
                )),
            }
        }
        nonnegative(
            spec.min_ready_seconds,
            sp.child("minReadySeconds"),
            &mut errs,
        );
        nonnegative(
            spec.revision_history_limit,
            sp.child("revisionHistoryLimit"),
            &mut errs,
        );
        if let Some(pds) = spec.progress_deadline_seconds {
            nonnegative(Some(pds), sp.child("progressDeadlineSeconds"), &mut errs);
            if pds <= spec.min_ready_seconds.unwrap_or(0) {
                errs.push(FieldError::invalid(
                    sp.child("progressDeadlineSeconds"),
                    pds,
                    "must be greater than minReadySeconds",
                ));
            }
        }
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        selector_immutable(&self.spec.selector, &old.spec.selector)
    }
}

impl Kind for ReplicaSet {
    fn default(&mut self) {
        defaults::replica_set(self);
    }
    fn validate(&self, raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = &self.spec;
        let sp = spec_path();
        nonnegative(spec.replicas, sp.child("replicas"), &mut errs);
        nonnegative(
            spec.min_ready_seconds,
            sp.child("minReadySeconds"),
            &mut errs,
        );
        // kube words this one "for deployment" too.
        selector(&spec.selector, has_selector(raw), "deployment", &mut errs);
        let default_template = PodTemplateSpec::default();
        let t = spec.template.as_ref().unwrap_or(&default_template);
        template(t, &spec.selector, "ReplicaSet", true, &mut errs);
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        selector_immutable(&self.spec.selector, &old.spec.selector)
    }
}

impl Kind for DaemonSet {
    fn default(&mut self) {
        defaults::daemon_set(self);
    }
    fn validate(&self, raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = &self.spec;
        let sp = spec_path();
        selector(&spec.selector, has_selector(raw), "daemonset", &mut errs);
        template(
            &spec.template,
            &spec.selector,
            "DaemonSet",
            false,
            &mut errs,
        );
        nonnegative(
            spec.min_ready_seconds,
            sp.child("minReadySeconds"),
            &mut errs,
        );
        nonnegative(
            spec.revision_history_limit,
            sp.child("revisionHistoryLimit"),
            &mut errs,
        );
        if let Some(strategy) = &spec.update_strategy {
            let path = sp.child("updateStrategy");
            match strategy.type_.as_deref().unwrap_or("") {
                "OnDelete" => {}
                "RollingUpdate" => match &strategy.rolling_update {
                    None => errs.push(FieldError::required(path.child("rollingUpdate"), "")),
                    Some(ru) => {
                        let rp = path.child("rollingUpdate");
                        let mu = ru.max_unavailable.as_ref();
                        let ms = ru.max_surge.as_ref();
                        positive_int_or_percent(mu, rp.child("maxUnavailable"), &mut errs);
                        positive_int_or_percent(ms, rp.child("maxSurge"), &mut errs);
                        not_more_than_100_percent(mu, rp.child("maxUnavailable"), &mut errs);
                        not_more_than_100_percent(ms, rp.child("maxSurge"), &mut errs);
                        let nonzero = |v: Option<&IntOrString>| {
                            v.and_then(int_or_percent_value).unwrap_or(0) != 0
                        };
                        match (nonzero(mu), nonzero(ms)) {
                            (true, true) => errs.push(FieldError::invalid(
                                rp.child("maxSurge"),
                                json(&ms),
                                "may not be set when maxUnavailable is non-zero",
                            )),
                            (false, false) => errs.push(FieldError::required(
                                rp.child("maxUnavailable"),
                                "cannot be 0 when maxSurge is 0",
                            )),
                            _ => {}
                        }
                    }
                },
                other => errs.push(FieldError::not_supported(
                    &path,
                    other,
                    &["RollingUpdate", "OnDelete"],
                )),
            }
        }
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        selector_immutable(&self.spec.selector, &old.spec.selector)
    }
}

impl Kind for StatefulSet {
    fn default(&mut self) {
        defaults::stateful_set(self);
    }
    fn validate(&self, raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = &self.spec;
        let sp = spec_path();
        match spec.pod_management_policy.as_deref().unwrap_or("") {
            "" => errs.push(FieldError::required(sp.child("podManagementPolicy"), "")),
            "OrderedReady" | "Parallel" => {}
            other => errs.push(FieldError::invalid(
                sp.child("podManagementPolicy"),
                other,
                "must be 'OrderedReady' or 'Parallel'",
            )),
        }
        let strategy = spec.update_strategy.as_ref();
        match strategy.and_then(|s| s.type_.as_deref()).unwrap_or("") {
            "" => errs.push(FieldError::required(sp.child("updateStrategy"), "")),
            "OnDelete" => {
                if let Some(ru) = strategy.and_then(|s| s.rolling_update.as_ref()) {
                    errs.push(FieldError::invalid(
                        sp.children(&["updateStrategy", "rollingUpdate"]),
                        json(ru),
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = strategy.and_then(|s| s.rolling_update.as_ref()) {
                    let rp = sp.children(&["updateStrategy", "rollingUpdate"]);
                    nonnegative(ru.partition, rp.child("partition"), &mut errs);
                    if let Some(mu) = &ru.max_unavailable {
                        positive_int_or_percent(Some(mu), rp.child("maxUnavailable"), &mut errs);
                        if int_or_percent_value(mu) == Some(0) {
                            errs.push(FieldError::invalid(
                                rp.child("maxUnavailable"),
                                json(mu),
                                "cannot be 0",
                            ));
                        }
                        not_more_than_100_percent(Some(mu), rp.child("maxUnavailable"), &mut errs);
                    }
                }
            }
            _ => errs.push(FieldError::invalid(
                sp.child("updateStrategy"),
                json(&strategy),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
        if let Some(policy) = &spec.persistent_volume_claim_retention_policy {
            let pp = sp.child("persistentVolumeClaimRetentionPolicy");
            for (field, v) in [
                ("whenDeleted", policy.when_deleted.as_deref()),
                ("whenScaled", policy.when_scaled.as_deref()),
            ] {
                let v = v.unwrap_or("");
                if v != "Retain" && v != "Delete" {
                    errs.push(FieldError::not_supported(
                        pp.child(field),
                        v,
                        &["Retain", "Delete"],
                    ));
                }
            }
        }
        nonnegative(spec.replicas, sp.child("replicas"), &mut errs);
        nonnegative(
            spec.min_ready_seconds,
            sp.child("minReadySeconds"),
            &mut errs,
        );
        nonnegative(
            spec.ordinals.as_ref().and_then(|o| o.start),
            sp.children(&["ordinals", "start"]),
            &mut errs,
        );
        selector(&spec.selector, has_selector(raw), "statefulset", &mut errs);
        template(
            &spec.template,
            &spec.selector,
            "StatefulSet",
            true,
            &mut errs,
        );
        nonnegative(
            spec.revision_history_limit,
            sp.child("revisionHistoryLimit"),
            &mut errs,
        );
        errs
    }
    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let (n, o) = (&self.spec, &old.spec);
        let mut clone = n.clone();
        clone.replicas = o.replicas;
        clone.template.clone_from(&o.template);
        clone.update_strategy.clone_from(&o.update_strategy);
        clone.min_ready_seconds = o.min_ready_seconds;
        clone.ordinals.clone_from(&o.ordinals);
        clone.revision_history_limit = o.revision_history_limit;
        clone
            .persistent_volume_claim_retention_policy
            .clone_from(&o.persistent_volume_claim_retention_policy);
        if meta::semantic_eq(&clone, o) {
            Vec::new()
        } else {
            vec![FieldError::forbidden(
                spec_path(),
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )]
        }
    }
}
