//! `batch/v1` Job: defaulting hook, spec validation (counts, completion
//! mode, selector against template labels, restartPolicy OnFailure or
//! Never) and update rules (selector, template, completions, completion
//! mode and failure policies are immutable).
//!
//! A Job without a selector is accepted: generating the
//! `batch.kubernetes.io/controller-uid` selector needs the object's uid,
//! which is assigned after admission; the job controller adds it.

use k8s_openapi::api::batch::v1::Job;
use serde_json::Value;

use super::Kind;
use super::defaults;
use super::meta::{self, json};
use super::names;
use super::path::Path;
use super::pod;
use crate::apiserver::status::FieldError;

const MAX_PARALLELISM_FOR_INDEXED: i32 = 100_000;

fn nonnegative(value: Option<i64>, path: Path, errs: &mut Vec<FieldError>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(path, v, names::NEGATIVE_ERROR));
    }
}

impl Kind for Job {
    fn default(&mut self) {
        defaults::job(self);
    }

    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let sp = Path::root("spec");
        let default_spec = Default::default();
        let spec = self.spec.as_ref().unwrap_or(&default_spec);
        for (field, v) in [
            ("parallelism", spec.parallelism.map(i64::from)),
            ("completions", spec.completions.map(i64::from)),
            ("activeDeadlineSeconds", spec.active_deadline_seconds),
            ("backoffLimit", spec.backoff_limit.map(i64::from)),
            (
                "ttlSecondsAfterFinished",
                spec.ttl_seconds_after_finished.map(i64::from),
            ),
            (
                "backoffLimitPerIndex",
                spec.backoff_limit_per_index.map(i64::from),
            ),
            ("maxFailedIndexes", spec.max_failed_indexes.map(i64::from)),
        ] {
            nonnegative(v, sp.child(field), &mut errs);
        }
        match spec.completion_mode.as_deref().unwrap_or("NonIndexed") {
            "NonIndexed" => {}
            "Indexed" => {
                if spec.completions.is_none() {
                    errs.push(FieldError::required(
                        sp.child("completions"),
                        "when completion mode is Indexed",
                    ));
                }
                if let Some(p) = spec
                    .parallelism
                    .filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED)
                {
                    errs.push(FieldError::invalid(
                        sp.child("parallelism"),
                        p,
                        format!(
                            "must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED} when completion mode is Indexed"
                        ),
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                sp.child("completionMode"),
                other,
                &["NonIndexed", "Indexed"],
            )),
        }
        if let Some(p) = spec.pod_replacement_policy.as_deref()
            && p != "TerminatingOrFailed"
            && p != "Failed"
        {
            errs.push(FieldError::not_supported(
                sp.child("podReplacementPolicy"),
                p,
                &["TerminatingOrFailed", "Failed"],
            ));
        }
        let template_path = sp.child("template");
        if let Some(sel) = &spec.selector {
            errs.extend(meta::validate_label_selector(sel, &sp.child("selector")));
            let labels = spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.as_ref());
            if meta::selector_is_convertible(sel) && !meta::selector_matches(sel, labels) {
                errs.push(FieldError::invalid(
                    template_path.children(&["metadata", "labels"]),
                    json(&labels),
                    "`selector` does not match template `labels`",
                ));
            }
        }
        errs.extend(pod::validate_template(
            &spec.template,
            &template_path,
            pod::SpecOf::JobTemplate,
        ));
        let restart_path = template_path.children(&["spec", "restartPolicy"]);
        match spec
            .template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .unwrap_or("")
        {
            "OnFailure" | "Never" => {}
            "" | "Always" => errs.push(FieldError::required(
                restart_path,
                "valid values: \"OnFailure\", \"Never\"",
            )),
            other => errs.push(FieldError::not_supported(
                restart_path,
                other,
                &["OnFailure", "Never"],
            )),
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let (Some(n), Some(o)) = (&self.spec, &old.spec) else {
            return errs;
        };
        let sp = Path::root("spec");
        // Until the job controller has set the selector (and the labels
        // that go with it), selector and template may still change.
        if o.selector.is_some() {
            errs.extend(meta::immutable(
                &n.selector,
                &o.selector,
                &sp.child("selector"),
            ));
            errs.extend(meta::immutable(
                &n.template,
                &o.template,
                &sp.child("template"),
            ));
        }
        let elastic = n.completion_mode.as_deref() == Some("Indexed")
            && o.completion_mode.as_deref() == Some("Indexed")
            && n.completions.is_some()
            && n.completions == n.parallelism;
        if !elastic {
            errs.extend(meta::immutable(
                &n.completions,
                &o.completions,
                &sp.child("completions"),
            ));
        }
        errs.extend(meta::immutable(
            &n.completion_mode,
            &o.completion_mode,
            &sp.child("completionMode"),
        ));
        errs.extend(meta::immutable(
            &n.pod_failure_policy,
            &o.pod_failure_policy,
            &sp.child("podFailurePolicy"),
        ));
        errs.extend(meta::immutable(
            &n.backoff_limit_per_index,
            &o.backoff_limit_per_index,
            &sp.child("backoffLimitPerIndex"),
        ));
        errs.extend(meta::immutable(
            &n.managed_by,
            &o.managed_by,
            &sp.child("managedBy"),
        ));
        errs
    }
}
