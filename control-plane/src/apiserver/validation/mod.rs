//! Decoding, defaulting and validation of every served kind, as
//! kube-apiserver does them between reading a request body and storing
//! the object:
//!
//! 1. type meta: `apiVersion`/`kind` must be the resource's (400), and are
//!    filled in when missing;
//! 2. decoding into the k8s-openapi type ([`decode`]): type errors are 400s
//!    naming the field; unknown fields are dropped, and reported according
//!    to `fieldValidation` (Strict: 400, Warn: one warning each, Ignore);
//! 3. defaulting ([`defaults`]) as the v1 `SetDefaults_*` functions;
//! 4. validation ([`meta`], [`pod`], [`core`], [`apps`], [`batch`],
//!    [`discovery`], [`coordination`]): 422 with one cause per problem at
//!    kube's field paths; on update also the immutability rules;
//! 5. the typed object re-serialized is what gets stored.
//!
//! This module owns no I/O and no server-managed metadata (uid,
//! resourceVersion, timestamps, generation, managedFields are the
//! caller's), nor allocation (cluster IPs, node ports). It never panics on
//! user input.

mod apps;
mod batch;
mod coordination;
mod core;
mod decode;
mod defaults;
mod discovery;
mod meta;
mod names;
mod path;
mod pod;
mod quantity;
#[cfg(test)]
mod tests;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use self::names::NameRule;
use self::path::Path;
use crate::apiserver::status::{ApiError, FieldError};
use crate::registry::Resource;

/// The `fieldValidation` query parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    /// None → Warn (the server default). Unknown value → 400 BadRequest.
    pub fn parse(value: Option<&str>) -> Result<FieldValidation, ApiError> {
        match value {
            None | Some("") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => {
                let err = FieldError::not_supported(
                    "fieldValidation",
                    other,
                    &["", "Ignore", "Strict", "Warn"],
                );
                Err(ApiError::bad_request(format!(
                    "{}: {}",
                    err.field,
                    err.message()
                )))
            }
        }
    }
}

/// An admitted object: defaulted, validated, ready to store.
#[derive(Clone, Debug, PartialEq)]
pub struct Admitted {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// Create: `object` is the full JSON object (apiVersion, kind, metadata with
/// name and namespace already filled in by the caller). Server-managed
/// metadata is the caller's. For kinds with a status subresource the
/// caller has already removed `status`; defaulting may set an initial one
/// (Namespace phase `Active`; Pod phase `Pending` and `qosClass`).
pub fn admit_create(
    resource: &'static Resource,
    object: Value,
    mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    dispatch(resource, None, object, mode)
}

/// Update (PUT, PATCH results, and `/status` writes where the caller has
/// already merged: spec/metadata from `old`, status from the request): as
/// create, plus the update rules (immutable fields) against `old`.
pub fn admit_update(
    resource: &'static Resource,
    old: &Value,
    object: Value,
    mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    dispatch(resource, Some(old), object, mode)
}

/// Duplicate keys in a raw JSON request body, which a parsed `Value` no
/// longer shows: under Strict a 400 (`strict decoding error: duplicate
/// field "metadata.name"`), under Warn one warning each, under Ignore
/// nothing. Call it on the body before parsing it; bodies that are not
/// JSON (YAML) have their own duplicate-key checks in their parser.
pub fn check_duplicate_fields(
    resource: &'static Resource,
    body: &[u8],
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if mode == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let found: Vec<String> = decode::duplicate_fields(body)
        .into_iter()
        .map(|p| format!("duplicate field \"{p}\""))
        .collect();
    field_problems(resource, found, mode)
}

/// What each kind adds to the common pipeline. Defaults run in order:
/// [`Kind::default`], then [`Kind::on_create`] or [`Kind::on_update`],
/// then [`Kind::post_default`].
trait Kind: DeserializeOwned + Serialize + k8s_openapi::Metadata<Ty = ObjectMeta> {
    /// The rule `metadata.name` follows.
    const NAME_RULE: NameRule = NameRule::Dns1123Subdomain;
    /// `SetDefaults_*`.
    fn default(&mut self) {}
    /// What the registry sets on create only.
    fn on_create(&mut self) {}
    /// What the registry carries over from the stored object on update.
    fn on_update(&mut self, _old: &Self) {}
    /// Defaults that depend on the above.
    fn post_default(&mut self) {}
    /// Kind-specific validation; `raw` is the request object (to tell an
    /// absent field from an empty one).
    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        Vec::new()
    }
    /// What only a new object must satisfy.
    fn validate_create(&self) -> Vec<FieldError> {
        Vec::new()
    }
    /// Update rules against the stored object.
    fn validate_update(&self, _old: &Self) -> Vec<FieldError> {
        Vec::new()
    }
}

fn dispatch(
    resource: &'static Resource,
    old: Option<&Value>,
    object: Value,
    mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    match (resource.group, resource.kind) {
        ("", "Pod") => admit::<Pod>(resource, old, object, mode),
        ("", "Service") => admit::<Service>(resource, old, object, mode),
        ("", "Endpoints") => admit::<Endpoints>(resource, old, object, mode),
        ("", "Node") => admit::<Node>(resource, old, object, mode),
        ("", "Namespace") => admit::<Namespace>(resource, old, object, mode),
        ("", "ConfigMap") => admit::<ConfigMap>(resource, old, object, mode),
        ("", "Secret") => admit::<Secret>(resource, old, object, mode),
        ("", "ServiceAccount") => admit::<ServiceAccount>(resource, old, object, mode),
        ("", "Event") => admit::<Event>(resource, old, object, mode),
        ("apps", "Deployment") => admit::<Deployment>(resource, old, object, mode),
        ("apps", "ReplicaSet") => admit::<ReplicaSet>(resource, old, object, mode),
        ("apps", "DaemonSet") => admit::<DaemonSet>(resource, old, object, mode),
        ("apps", "StatefulSet") => admit::<StatefulSet>(resource, old, object, mode),
        ("batch", "Job") => admit::<Job>(resource, old, object, mode),
        ("discovery.k8s.io", "EndpointSlice") => {
            admit::<EndpointSlice>(resource, old, object, mode)
        }
        ("coordination.k8s.io", "Lease") => admit::<Lease>(resource, old, object, mode),
        (group, kind) => Err(ApiError::internal(format!(
            "no decoding or validation is defined for kind {kind} in group {group:?}"
        ))),
    }
}

/// `Pod in version "v1" cannot be handled as a Pod: <why>`.
fn cannot_handle(resource: &Resource, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}",
        kind = resource.kind,
        version = resource.version,
    ))
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `apiVersion` and `kind` against the resource and fills them in
/// when absent.
fn check_type_meta(resource: &Resource, mut object: Value) -> Result<Value, ApiError> {
    let Value::Object(map) = &mut object else {
        return Err(cannot_handle(
            resource,
            format!(
                "json: cannot unmarshal {} into Go value of type struct",
                json_type(&object)
            ),
        ));
    };
    let api_version = resource.api_version();
    match map.get("apiVersion") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() || *s == api_version => {}
        Some(Value::String(s)) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({s}) does not match the expected API version ({api_version})"
            )));
        }
        Some(other) => {
            return Err(cannot_handle(
                resource,
                format!(
                    "json: cannot unmarshal {} into Go struct field apiVersion of type string",
                    json_type(other)
                ),
            ));
        }
    }
    match map.get("kind") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() || s == resource.kind => {}
        Some(Value::String(s)) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({s}) does not match the expected kind ({})",
                resource.kind
            )));
        }
        Some(other) => {
            return Err(cannot_handle(
                resource,
                format!(
                    "json: cannot unmarshal {} into Go struct field kind of type string",
                    json_type(other)
                ),
            ));
        }
    }
    map.insert("apiVersion".into(), Value::String(api_version));
    map.insert("kind".into(), Value::String(resource.kind.to_owned()));
    Ok(object)
}

/// Applies `fieldValidation` to unknown/duplicate field messages.
fn field_problems(
    resource: &Resource,
    messages: Vec<String>,
    mode: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    match mode {
        FieldValidation::Ignore => Ok(Vec::new()),
        FieldValidation::Warn => Ok(messages),
        FieldValidation::Strict if messages.is_empty() => Ok(Vec::new()),
        FieldValidation::Strict => Err(cannot_handle(
            resource,
            format!("strict decoding error: {}", messages.join(", ")),
        )),
    }
}

/// The stored object, decoded leniently (its type meta and any field
/// this version does not know are ignored).
fn decode_stored<T: Kind>(resource: &Resource, old: &Value) -> Result<T, ApiError> {
    let mut old = old.clone();
    if let Value::Object(map) = &mut old {
        map.remove("apiVersion");
        map.remove("kind");
    }
    decode::decode::<T>(&old).map(|(t, _)| t).map_err(|e| {
        tracing::error!(kind = resource.kind, error = %e, "stored object does not decode");
        ApiError::internal(format!(
            "the stored {} cannot be decoded: {e}",
            resource.kind
        ))
    })
}

fn admit<T: Kind>(
    resource: &'static Resource,
    old: Option<&Value>,
    object: Value,
    mode: FieldValidation,
) -> Result<Admitted, ApiError> {
    let object = check_type_meta(resource, object)?;
    let (mut typed, unknown) =
        decode::decode::<T>(&object).map_err(|e| cannot_handle(resource, e))?;
    let unknown = unknown
        .into_iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    let warnings = field_problems(resource, unknown, mode)?;
    let old = old.map(|o| decode_stored::<T>(resource, o)).transpose()?;

    if !resource.namespaced {
        typed.metadata_mut().namespace = None;
    }
    typed.default();
    match &old {
        None => typed.on_create(),
        Some(o) => typed.on_update(o),
    }
    typed.post_default();

    let mut errs = meta::validate_object_meta(
        typed.metadata(),
        resource.namespaced,
        T::NAME_RULE,
        &Path::root("metadata"),
    );
    errs.extend(typed.validate(&object));
    match &old {
        None => errs.extend(typed.validate_create()),
        Some(o) => errs.extend(typed.validate_update(o)),
    }
    if !errs.is_empty() {
        let name = typed.metadata().name.clone().unwrap_or_default();
        tracing::debug!(kind = resource.kind, %name, errors = errs.len(), "object is invalid");
        return Err(ApiError::invalid(
            resource.group,
            resource.kind,
            &name,
            &errs,
        ));
    }
    let object = serde_json::to_value(&typed)
        .map_err(|e| ApiError::internal(format!("encoding the admitted {}: {e}", resource.kind)))?;
    Ok(Admitted { object, warnings })
}
