//! `coordination.k8s.io/v1` Lease: lenient, as kube is — positive
//! duration, non-negative transitions, a known strategy, and a preferred
//! holder only with a strategy.

use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

use super::Kind;
use super::names;
use super::path::Path;
use crate::apiserver::status::FieldError;

impl Kind for Lease {
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let Some(spec) = &self.spec else {
            return errs;
        };
        let sp = Path::root("spec");
        if let Some(d) = spec.lease_duration_seconds.filter(|d| *d <= 0) {
            errs.push(FieldError::invalid(
                sp.child("leaseDurationSeconds"),
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = spec.lease_transitions.filter(|t| *t < 0) {
            errs.push(FieldError::invalid(
                sp.child("leaseTransitions"),
                t,
                names::NEGATIVE_ERROR,
            ));
        }
        let strategy = spec.strategy.as_deref().unwrap_or("");
        if spec.strategy.is_some() && strategy != "OldestEmulationVersion" {
            errs.push(FieldError::not_supported(
                sp.child("strategy"),
                strategy,
                &["OldestEmulationVersion"],
            ));
        }
        if spec
            .preferred_holder
            .as_deref()
            .is_some_and(|p| !p.is_empty())
            && strategy.is_empty()
        {
            errs.push(FieldError::forbidden(
                sp.child("preferredHolder"),
                "may only be specified if `strategy` is defined",
            ));
        }
        errs
    }
}
