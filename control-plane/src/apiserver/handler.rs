//! The REST surface: turns HTTP requests into object-service calls and
//! their results into responses. Owns routing (`/api`, `/apis/<g>/<v>`,
//! namespaced and cluster paths, subresources, legacy `/watch/` paths),
//! query parameters, body limits and decoding (JSON, YAML, patch types),
//! content negotiation (JSON, Table, aggregated discovery) and the
//! streaming watch response. Everything below it is HTTP-free.

use std::{collections::HashMap, sync::Arc, time::Duration};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use tracing::debug;

use crate::{
    apiserver::{
        Body,
        authn::UserInfo,
        discovery, full, meta,
        objects::{
            self, DeleteOptions, Deleted, ListOptions, ObjectService, Scope, WatchOptions,
            WriteOptions,
        },
        openapi,
        patch::PatchType,
        protobuf,
        selectors::{FieldSelector, LabelSelector},
        server::Handler,
        status::ApiError,
        tables::{self, IncludeObject},
        validation::{self, FieldValidation},
    },
    registry::Resource,
};

/// Largest request body accepted (kube-apiserver's limit is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

pub struct ApiHandler {
    objects: Arc<ObjectService>,
    server_address: String,
}

type Query = HashMap<String, String>;

fn parse_query(req: &Request<Incoming>) -> Query {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn flag(q: &Query, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

fn json_response(
    code: StatusCode,
    value: &Value,
    content_type: &str,
    warnings: &[String],
) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    for warning in warnings {
        let text = format!(
            "299 - {}",
            serde_json::to_string(warning).unwrap_or_default()
        );
        if let Ok(v) = HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, v);
        }
    }
    resp
}

fn ok(value: &Value) -> Response<Body> {
    json_response(StatusCode::OK, value, "application/json", &[])
}

fn text(code: StatusCode, body: &'static str) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The error as a Status response.
pub fn error_response(err: &ApiError) -> Response<Body> {
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &err.to_status(), "application/json", &[])
}

/// A parsed resource path.
#[derive(Debug)]
struct Target<'a> {
    resource: &'static Resource,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
    legacy_watch: bool,
}

fn parse_target<'a>(group: &str, version: &str, rest: &[&'a str]) -> Result<Target<'a>, ApiError> {
    let (legacy_watch, rest) = match rest.first() {
        Some(&"watch") => (true, &rest[1..]),
        _ => (false, rest),
    };
    let namespaced_path = rest.first() == Some(&"namespaces")
        && rest.len() >= 3
        && !(group.is_empty() && rest.len() == 3 && matches!(rest[2], "status" | "finalize"));
    let (namespace, rest) = if namespaced_path {
        (Some(rest[1]), &rest[2..])
    } else {
        (None, rest)
    };
    let (plural, name, subresource) = match rest {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(*name), None),
        [plural, name, sub] => (*plural, Some(*name), Some(*sub)),
        _ => return Err(ApiError::no_route(&rest.join("/"))),
    };
    let resource = objects::resource(group, version, plural)?;
    if namespace.is_some() && !resource.namespaced {
        return Err(ApiError::no_route(&format!(
            "namespaces/{}/{plural}",
            namespace.unwrap_or_default()
        )));
    }
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(ApiError::no_route(&format!(
            "{plural}/{}",
            name.unwrap_or_default()
        )));
    }
    if let Some(sub) = subresource
        && !resource.has_subresource(sub)
    {
        return Err(ApiError::no_route(&format!("{plural}/{sub}")));
    }
    for segment in [namespace, name].into_iter().flatten() {
        if segment.is_empty() || segment.contains("..") {
            return Err(ApiError::bad_request(format!(
                "invalid name or namespace {segment:?}"
            )));
        }
    }
    Ok(Target {
        resource,
        namespace,
        name,
        subresource,
        legacy_watch,
    })
}

/// Most bytes read (and discarded) from an oversized body before answering
/// 413, so HTTP/2 clients see the Status instead of a reset stream.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

/// Reads the body (≤ [`MAX_BODY`], else 413).
async fn read_body(req: Request<Incoming>) -> Result<(http::request::Parts, Bytes), ApiError> {
    let (parts, mut body) = req.into_parts();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if seen > MAX_DRAIN {
                break;
            }
        }
    }
    let size = declared.unwrap_or(0).max(seen);
    if size > MAX_BODY {
        return Err(ApiError::too_large(format!(
            "the request body is {size} bytes; the limit is {MAX_BODY}"
        )));
    }
    Ok((parts, buf.freeze()))
}

fn content_type(parts: &http::request::Parts) -> String {
    parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned()
}

/// Decodes a JSON or YAML body into a value (400 when malformed).
fn decode_body(content_type: &str, bytes: &[u8]) -> Result<Value, ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "*/*" => serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let value: serde_yaml::Value = serde_yaml::from_slice(bytes).map_err(|e| {
                ApiError::bad_request(format!("the request body is not valid YAML: {e}"))
            })?;
            serde_json::to_value(value).map_err(|e| {
                ApiError::bad_request(format!("the YAML body cannot be represented as JSON: {e}"))
            })
        }
        protobuf::CONTENT_TYPE => protobuf::decode_object(bytes),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Decodes an object body; JSON bodies are first checked for duplicate
/// fields, which a parsed value can no longer show (Strict → 400).
fn decode_object_body(
    resource: &'static Resource,
    content_type: &str,
    bytes: &[u8],
    opts: &WriteOptions,
) -> Result<(Value, Vec<String>), ApiError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let warnings = if media.is_empty() || media == "application/json" {
        validation::check_duplicate_fields(resource, bytes, opts.field_validation)?
    } else {
        Vec::new()
    };
    Ok((decode_body(content_type, bytes)?, warnings))
}

fn write_options(q: &Query) -> Result<WriteOptions, ApiError> {
    Ok(WriteOptions {
        dry_run: dry_run(q)?,
        field_validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
        field_manager: q.get("fieldManager").cloned(),
    })
}

fn dry_run(q: &Query) -> Result<bool, ApiError> {
    match q.get("dryRun").map(String::as_str) {
        None | Some("") => Ok(false),
        Some("All") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "unsupported dryRun value {other:?}; only \"All\" is supported"
        ))),
    }
}

fn list_options(q: &Query, resource: &Resource) -> Result<ListOptions, ApiError> {
    let labels = match q.get("labelSelector").filter(|s| !s.is_empty()) {
        Some(s) => LabelSelector::parse(s)?,
        None => LabelSelector::everything(),
    };
    let fields = match q.get("fieldSelector").filter(|s| !s.is_empty()) {
        Some(s) => FieldSelector::parse(s, resource)?,
        None => FieldSelector::everything(),
    };
    let limit = match q.get("limit").filter(|s| !s.is_empty()) {
        Some(l) => Some(
            l.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?
                .max(0) as usize,
        ),
        None => None,
    };
    Ok(ListOptions {
        labels,
        fields,
        limit,
        continue_token: q.get("continue").filter(|s| !s.is_empty()).cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q
            .get("resourceVersionMatch")
            .filter(|s| !s.is_empty())
            .cloned(),
    })
}

fn delete_options(q: &Query, body: &Value) -> Result<DeleteOptions, ApiError> {
    let grace = match q.get("gracePeriodSeconds") {
        Some(g) => Some(
            g.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds {g:?}")))?,
        ),
        None => body.get("gracePeriodSeconds").and_then(Value::as_i64),
    };
    let mut propagation = q.get("propagationPolicy").cloned().or_else(|| {
        body.get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if propagation.is_none() {
        let orphan = q
            .get("orphanDependents")
            .map(|v| v == "true")
            .or_else(|| body.get("orphanDependents").and_then(Value::as_bool));
        propagation = match orphan {
            Some(true) => Some("Orphan".into()),
            Some(false) => Some("Background".into()),
            None => None,
        };
    }
    let body_dry_run = body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    Ok(DeleteOptions {
        dry_run: dry_run(q)? || body_dry_run,
        grace_period_seconds: grace,
        propagation_policy: propagation,
        precondition_uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_owned),
        precondition_resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

fn accept(parts_headers: &http::HeaderMap) -> String {
    parts_headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned()
}

/// Adds kind/apiVersion (list items are stored without them).
fn with_kind(r: &Resource, mut object: Value) -> Value {
    if let Some(o) = object.as_object_mut() {
        o.insert("kind".into(), Value::from(r.kind));
        o.insert("apiVersion".into(), Value::from(r.api_version()));
    }
    object
}

fn scale_of(object: &Value) -> Value {
    let selector = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta::name(object),
            "namespace": meta::namespace(object),
            "uid": object.pointer("/metadata/uid"),
            "resourceVersion": object.pointer("/metadata/resourceVersion"),
            "creationTimestamp": object.pointer("/metadata/creationTimestamp"),
        },
        "spec": { "replicas": object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(0) },
        "status": {
            "replicas": object.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0),
            "selector": selector,
        },
    })
}

impl ApiHandler {
    pub fn new(objects: Arc<ObjectService>, server_address: String) -> Self {
        Self {
            objects,
            server_address,
        }
    }

    async fn route(&self, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let accept = accept(req.headers());
        let get_only = |req: &Request<Incoming>| {
            if req.method() == Method::GET || req.method() == Method::HEAD {
                Ok(())
            } else {
                Err(ApiError::method_not_allowed(req.method().as_str()))
            }
        };
        match segments.as_slice() {
            [] => {
                get_only(&req)?;
                Ok(ok(
                    &json!({ "paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/readyz", "/version"] }),
                ))
            }
            ["healthz" | "livez" | "readyz", ..] => Ok(text(StatusCode::OK, "ok")),
            ["version"] => Ok(ok(&discovery::version())),
            ["api"] => {
                get_only(&req)?;
                Ok(match discovery::wants_aggregated(&accept) {
                    Some(v) => json_response(
                        StatusCode::OK,
                        &discovery::aggregated(true, v),
                        aggregated_type(v),
                        &[],
                    ),
                    None => ok(&discovery::api_versions(&self.server_address)),
                })
            }
            ["apis"] => {
                get_only(&req)?;
                Ok(match discovery::wants_aggregated(&accept) {
                    Some(v) => json_response(
                        StatusCode::OK,
                        &discovery::aggregated(false, v),
                        aggregated_type(v),
                        &[],
                    ),
                    None => ok(&discovery::api_group_list()),
                })
            }
            ["api", "v1"] => {
                get_only(&req)?;
                discovery::api_resource_list("", "v1")
                    .map(|d| ok(&d))
                    .ok_or_else(|| ApiError::no_route(&path))
            }
            ["apis", group] => {
                get_only(&req)?;
                discovery::api_group(group)
                    .map(|d| ok(&d))
                    .ok_or_else(|| ApiError::no_route(&path))
            }
            ["apis", group, version] => {
                get_only(&req)?;
                discovery::api_resource_list(group, version)
                    .map(|d| ok(&d))
                    .ok_or_else(|| ApiError::no_route(&path))
            }
            ["openapi", "v3"] => {
                get_only(&req)?;
                Ok(ok(&openapi::index()))
            }
            ["openapi", "v3", "api", version] => {
                get_only(&req)?;
                openapi::group_version("", version)
                    .map(|d| ok(&d))
                    .ok_or_else(|| ApiError::no_route(&path))
            }
            ["openapi", "v3", "apis", group, version] => {
                get_only(&req)?;
                openapi::group_version(group, version)
                    .map(|d| ok(&d))
                    .ok_or_else(|| ApiError::no_route(&path))
            }
            ["api", "v1", rest @ ..] => {
                let target = parse_target("", "v1", rest)?;
                self.resource_request(req, target, &accept).await
            }
            ["apis", group, version, rest @ ..] => {
                let target = parse_target(group, version, rest)?;
                self.resource_request(req, target, &accept).await
            }
            _ => Err(ApiError::no_route(&path)),
        }
    }

    async fn resource_request(
        &self,
        req: Request<Incoming>,
        target: Target<'_>,
        accept: &str,
    ) -> Result<Response<Body>, ApiError> {
        let q = parse_query(&req);
        let r = target.resource;
        let scope = Scope {
            resource: r,
            namespace: target.namespace,
        };
        let as_table = tables::wants_table(accept);
        let include = IncludeObject::parse(q.get("includeObject").map(String::as_str));
        let method = req.method().clone();
        match (target.name, target.subresource, method.clone()) {
            // Collections.
            (None, None, Method::GET) if target.legacy_watch || flag(&q, "watch") => {
                self.watch(scope, &q, as_table, include).await
            }
            (None, None, Method::GET) => {
                let opts = list_options(&q, r)?;
                if as_table {
                    let (items, revision, next) = self.objects.list_items(scope, &opts).await?;
                    let mut list_meta = json!({ "resourceVersion": revision.to_string() });
                    if let Some(next) = next {
                        list_meta["continue"] = Value::from(next);
                    }
                    return Ok(ok(&tables::table(r, &items, include, list_meta)));
                }
                Ok(ok(&self.objects.list(scope, &opts).await?))
            }
            (None, None, Method::POST) => {
                let (parts, bytes) = read_body(req).await?;
                let opts = write_options(&q)?;
                let (body, mut warnings) =
                    decode_object_body(r, &content_type(&parts), &bytes, &opts)?;
                let written = self.objects.create(scope, body, &opts).await?;
                warnings.extend(written.warnings);
                Ok(json_response(
                    StatusCode::CREATED,
                    &with_kind(r, written.object),
                    "application/json",
                    &warnings,
                ))
            }
            (None, None, Method::DELETE) => {
                let (_, bytes) = read_body(req).await?;
                let body = if bytes.is_empty() {
                    Value::Null
                } else {
                    decode_body("application/json", &bytes)?
                };
                let list = list_options(&q, r)?;
                self.objects
                    .delete_collection(scope, &list, &delete_options(&q, &body)?)
                    .await?;
                Ok(ok(
                    &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success" }),
                ))
            }
            // Objects.
            (Some(name), None, Method::GET) if target.legacy_watch || flag(&q, "watch") => {
                let mut q = q.clone();
                q.insert("fieldSelector".into(), format!("metadata.name={name}"));
                self.watch(scope, &q, as_table, include).await
            }
            (Some(name), None | Some("status"), Method::GET) => {
                let object = with_kind(r, self.objects.get(scope, name).await?);
                if as_table {
                    let rv = object
                        .pointer("/metadata/resourceVersion")
                        .cloned()
                        .unwrap_or(Value::Null);
                    return Ok(ok(&tables::table(
                        r,
                        &[object],
                        include,
                        json!({ "resourceVersion": rv }),
                    )));
                }
                Ok(ok(&object))
            }
            (Some(name), sub @ (None | Some("status") | Some("finalize")), Method::PUT) => {
                let (parts, bytes) = read_body(req).await?;
                let opts = write_options(&q)?;
                let (body, mut warnings) =
                    decode_object_body(r, &content_type(&parts), &bytes, &opts)?;
                let written = self.objects.update(scope, name, sub, body, &opts).await?;
                warnings.extend(written.warnings);
                Ok(json_response(
                    StatusCode::OK,
                    &with_kind(r, written.object),
                    "application/json",
                    &warnings,
                ))
            }
            (Some(name), sub @ (None | Some("status")), Method::PATCH) => {
                let (parts, bytes) = read_body(req).await?;
                let ct = content_type(&parts);
                let kind = PatchType::from_content_type(&ct)
                    .ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
                let patch: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::bad_request(format!("the patch is not valid JSON: {e}"))
                })?;
                let written = self
                    .objects
                    .patch(scope, name, sub, kind, &patch, &write_options(&q)?)
                    .await?;
                Ok(json_response(
                    StatusCode::OK,
                    &with_kind(r, written.object),
                    "application/json",
                    &written.warnings,
                ))
            }
            (Some(name), None, Method::DELETE) => {
                let (_, bytes) = read_body(req).await?;
                let body = if bytes.is_empty() {
                    Value::Null
                } else {
                    decode_body("application/json", &bytes)?
                };
                match self
                    .objects
                    .delete(scope, name, &delete_options(&q, &body)?)
                    .await?
                {
                    Deleted::Gone(object)
                        if matches!(r.plural, "pods" | "services") && r.group.is_empty() =>
                    {
                        Ok(ok(&with_kind(r, object)))
                    }
                    Deleted::Gone(object) => Ok(ok(&json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": { "name": name, "group": r.group, "kind": r.plural, "uid": object.pointer("/metadata/uid") },
                    }))),
                    Deleted::Marked(object) => Ok(ok(&with_kind(r, object))),
                }
            }
            // Subresources.
            (Some(name), Some("scale"), Method::GET) => {
                let object = self.objects.get(scope, name).await?;
                Ok(ok(&scale_of(&object)))
            }
            (Some(name), Some("scale"), Method::PUT | Method::PATCH) => {
                let (parts, bytes) = read_body(req).await?;
                let ct = content_type(&parts);
                let request: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    ApiError::bad_request(format!("the body is not valid JSON: {e}"))
                })?;
                let opts = write_options(&q)?;
                let current = self.objects.get(scope, name).await?;
                let scale = if method == Method::PATCH {
                    let kind = PatchType::from_content_type(&ct)
                        .ok_or_else(|| ApiError::unsupported_media_type(&ct))?;
                    crate::apiserver::patch::apply(kind, &scale_of(&current), &request)?
                } else {
                    request
                };
                let replicas = scale
                    .pointer("/spec/replicas")
                    .and_then(Value::as_i64)
                    .ok_or_else(|| ApiError::bad_request("spec.replicas is required in a Scale"))?;
                let mut object = current;
                object["spec"]["replicas"] = Value::from(replicas);
                if let Some(rv) = scale
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    meta::set_meta(&mut object, "resourceVersion", Value::from(rv));
                }
                let written = self
                    .objects
                    .update(scope, name, None, object, &opts)
                    .await?;
                Ok(ok(&scale_of(&written.object)))
            }
            (Some(name), Some("log"), Method::GET) => {
                let namespace = target.namespace.unwrap_or_default();
                crate::apiserver::podlogs::pod_log(&self.objects, namespace, name, &q).await
            }
            (Some(name), Some("binding"), Method::POST) => {
                let (parts, bytes) = read_body(req).await?;
                let binding = decode_body(&content_type(&parts), &bytes)?;
                self.objects.bind(scope, name, &binding).await?;
                Ok(json_response(
                    StatusCode::CREATED,
                    &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
                    "application/json",
                    &[],
                ))
            }
            (_, _, m) => Err(ApiError::method_not_allowed(m.as_str())),
        }
    }

    async fn watch(
        &self,
        scope: Scope<'_>,
        q: &Query,
        as_table: bool,
        include: IncludeObject,
    ) -> Result<Response<Body>, ApiError> {
        let r = scope.resource;
        let list = list_options(q, r)?;
        let timeout = match q.get("timeoutSeconds") {
            Some(t) => Duration::from_secs(
                t.parse::<u64>()
                    .map_err(|_| ApiError::bad_request(format!("invalid timeoutSeconds {t:?}")))?,
            ),
            None => objects::MAX_WATCH,
        };
        let send_initial_events = flag(q, "sendInitialEvents");
        if send_initial_events && !flag(q, "allowWatchBookmarks") {
            return Err(ApiError::invalid(
                r.group,
                r.kind,
                "",
                &[crate::apiserver::status::FieldError::forbidden(
                    "allowWatchBookmarks",
                    "allowWatchBookmarks required when sendInitialEvents is true",
                )],
            ));
        }
        let opts = WatchOptions {
            labels: list.labels,
            fields: list.fields,
            resource_version: q.get("resourceVersion").cloned(),
            allow_bookmarks: flag(q, "allowWatchBookmarks"),
            send_initial_events,
            timeout,
        };
        let events = self.objects.watch(scope, opts).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
        tokio::spawn(async move {
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                let object = match (as_table, event.kind) {
                    (true, "ADDED" | "MODIFIED" | "DELETED") => {
                        let rv = event
                            .object
                            .pointer("/metadata/resourceVersion")
                            .cloned()
                            .unwrap_or(Value::Null);
                        tables::table(
                            r,
                            &[event.object],
                            include,
                            json!({ "resourceVersion": rv }),
                        )
                    }
                    (false, "ADDED" | "MODIFIED" | "DELETED") => with_kind(r, event.object),
                    _ => event.object,
                };
                let mut line = serde_json::to_vec(&json!({ "type": event.kind, "object": object }))
                    .unwrap_or_default();
                line.push(b'\n');
                if tx.send(Bytes::from(line)).await.is_err() {
                    debug!("watcher went away");
                    return;
                }
            }
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
        let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
        Ok(resp)
    }
}

fn aggregated_type(version: &str) -> &'static str {
    if version == "v2beta1" {
        discovery::AGGREGATED_V2BETA1
    } else {
        discovery::AGGREGATED_V2
    }
}

#[async_trait::async_trait]
impl Handler for ApiHandler {
    async fn handle(&self, req: Request<Incoming>, _user: UserInfo) -> Response<Body> {
        match self.route(req).await {
            Ok(resp) => resp,
            Err(err) => error_response(&err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_to_resources() {
        let t = parse_target("", "v1", &["namespaces", "demo", "configmaps", "c"]).unwrap();
        assert_eq!(
            (t.resource.plural, t.namespace, t.name),
            ("configmaps", Some("demo"), Some("c"))
        );
        let t = parse_target("", "v1", &["namespaces", "demo", "finalize"]).unwrap();
        assert_eq!(
            (t.resource.plural, t.name, t.subresource),
            ("namespaces", Some("demo"), Some("finalize"))
        );
        let t = parse_target("", "v1", &["namespaces", "demo"]).unwrap();
        assert_eq!((t.resource.plural, t.name), ("namespaces", Some("demo")));
        let t = parse_target("apps", "v1", &["watch", "namespaces", "x", "deployments"]).unwrap();
        assert!(t.legacy_watch && t.namespace == Some("x"));
        assert_eq!(
            parse_target("", "v1", &["configmaps", "c"])
                .unwrap_err()
                .code,
            404
        );
        assert_eq!(parse_target("", "v1", &["nosuch"]).unwrap_err().code, 404);
        assert_eq!(
            parse_target("", "v1", &["namespaces", "x", "pods", "p", "scale"])
                .unwrap_err()
                .code,
            404
        );
    }

    #[test]
    fn bodies_decode_or_400() {
        assert_eq!(
            decode_body("application/json", b"{\"a\":1}").unwrap()["a"],
            1
        );
        assert_eq!(decode_body("application/yaml", b"a: 1\n").unwrap()["a"], 1);
        assert_eq!(
            decode_body("application/json", b"{nope").unwrap_err().code,
            400
        );
        assert_eq!(
            decode_body("application/vnd.kubernetes.protobuf", b"")
                .unwrap_err()
                .code,
            400
        );
    }
}
