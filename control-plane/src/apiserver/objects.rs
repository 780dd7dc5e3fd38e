//! The object service: Kubernetes object semantics over the store, without
//! HTTP. Get, list (selectors, paging over a consistent snapshot), create
//! (generateName, uid, creationTimestamp, admission), update and patch
//! (resourceVersion preconditions → 409, generation on spec changes only,
//! status only through `/status`), delete (finalizers, deletionTimestamp,
//! graceful pod deletion), namespaces that must exist and refuse creates
//! while terminating, service IP/port allocation, and watch through the
//! watch cache.
//!
//! Stored values are the object's JSON without `metadata.resourceVersion`;
//! the resourceVersion a client sees is the store's mod revision.

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use futures::{Stream, StreamExt};
use serde_json::{Map, Value, json};
use tracing::{debug, instrument};

use crate::{
    apiserver::{
        allocator::{Allocator, Held},
        meta,
        namespace_lifecycle::NamespaceIndex,
        patch::{self, PatchType},
        selectors::{FieldSelector, LabelSelector},
        status::ApiError,
        validation::{self, FieldValidation},
        watch_cache::{Notification, WatchCache, WatchCacheError},
    },
    registry::{self, Resource},
    storage::{EventKind, KeyValue, Revision, Store, StoreError, keys},
};

/// Attempts of a read-modify-write before giving up with 409.
const MAX_RETRIES: usize = 16;
/// Longest a watch stays open when the client sets no timeout.
pub const MAX_WATCH: Duration = Duration::from_secs(30 * 60);

/// Where a request points: a resource, and a namespace for namespaced
/// resources (`None` = all namespaces, for list/watch/deletecollection).
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub resource: &'static Resource,
    pub namespace: Option<&'a str>,
}

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    pub field_manager: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            labels: LabelSelector::everything(),
            fields: FieldSelector::everything(),
            limit: None,
            continue_token: None,
            resource_version: None,
            resource_version_match: None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct WatchOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Duration,
}

/// The result of a write: the object as stored and admission warnings.
#[derive(Debug)]
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
}

/// A deleted object, or one only marked for deletion (finalizers, grace).
#[derive(Debug)]
pub enum Deleted {
    Gone(Value),
    Marked(Value),
}

/// One watch event as sent on the wire (`type` + object).
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub kind: &'static str,
    pub object: Value,
}

pub struct ObjectService {
    namespaces: Arc<NamespaceIndex>,
    store: Arc<dyn Store>,
    cache: Arc<WatchCache>,
    allocator: Allocator,
}

fn parse_rv(rv: &str) -> Result<Revision, ApiError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

/// Decodes a stored value and stamps its resourceVersion.
fn decode(kv: &KeyValue) -> Result<Value, ApiError> {
    let mut object: Value = serde_json::from_slice(&kv.value)
        .map_err(|e| ApiError::internal(format!("corrupt object at {}: {e}", kv.key)))?;
    meta::set_meta(
        &mut object,
        "resourceVersion",
        Value::from(kv.mod_revision.to_string()),
    );
    Ok(object)
}

fn encode(object: &Value) -> Vec<u8> {
    let mut object = object.clone();
    meta::remove_meta(&mut object, "resourceVersion");
    serde_json::to_vec(&object).unwrap_or_default()
}

/// Kinds whose `metadata.generation` tracks spec changes.
fn tracks_generation(resource: &Resource) -> bool {
    matches!(
        resource.plural,
        "pods" | "deployments" | "replicasets" | "daemonsets" | "statefulsets" | "jobs"
    )
}

/// Everything but metadata and status: what a "spec change" compares.
fn spec_part(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("metadata");
        o.remove("status");
        o.remove("apiVersion");
        o.remove("kind");
    }
    out
}

/// Continue tokens, as kube-apiserver encodes them.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: Revision,
    start: String,
}

fn encode_continue(rv: Revision, start_after_key: &str, prefix: &str) -> String {
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: start_after_key
            .strip_prefix(prefix)
            .unwrap_or(start_after_key)
            .to_owned()
            + "\u{0}",
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<(Revision, String), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if token.v != "meta.k8s.io/v1" || token.rv <= 0 || token.start.contains("..") {
        return Err(bad());
    }
    Ok((token.rv, token.start.trim_end_matches('\u{0}').to_owned()))
}

impl ObjectService {
    /// The service; spawns the namespace index task it relies on (so it
    /// must be called inside a Tokio runtime).
    pub fn new(store: Arc<dyn Store>, cache: Arc<WatchCache>, allocator: Allocator) -> Self {
        let namespaces = Arc::new(NamespaceIndex::default());
        tokio::spawn(namespaces.clone().run(store.clone(), cache.clone()));
        Self {
            namespaces,
            store,
            cache,
            allocator,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn allocator(&self) -> &Allocator {
        &self.allocator
    }

    fn key(scope: Scope<'_>, name: &str) -> String {
        let r = scope.resource;
        keys::object(
            r.group,
            r.plural,
            if r.namespaced { scope.namespace } else { None },
            name,
        )
    }

    fn prefix(scope: Scope<'_>) -> String {
        let r = scope.resource;
        keys::prefix(
            r.group,
            r.plural,
            if r.namespaced { scope.namespace } else { None },
        )
    }

    async fn load(&self, scope: Scope<'_>, name: &str) -> Result<(KeyValue, Value), ApiError> {
        let r = scope.resource;
        let kv = self
            .store
            .get(&Self::key(scope, name))
            .await
            .map_err(|e| ApiError::from_store(e, r.group, r.plural, name))?
            .ok_or_else(|| ApiError::not_found(r.group, r.plural, name))?;
        let object = decode(&kv)?;
        Ok((kv, object))
    }

    #[instrument(skip(self), fields(resource = scope.resource.plural, ns = scope.namespace))]
    pub async fn get(&self, scope: Scope<'_>, name: &str) -> Result<Value, ApiError> {
        Ok(self.load(scope, name).await?.1)
    }

    /// A list object (`<Kind>List`) honouring selectors and paging.
    #[instrument(skip(self, opts), fields(resource = scope.resource.plural, ns = scope.namespace))]
    pub async fn list(&self, scope: Scope<'_>, opts: &ListOptions) -> Result<Value, ApiError> {
        let (items, revision, next) = self.list_items(scope, opts).await?;
        let r = scope.resource;
        let mut metadata = json!({ "resourceVersion": revision.to_string() });
        if let Some(next) = next {
            metadata["continue"] = Value::from(next);
        }
        let items: Vec<Value> = items
            .into_iter()
            .map(|mut item| {
                if let Some(o) = item.as_object_mut() {
                    o.remove("kind");
                    o.remove("apiVersion");
                }
                item
            })
            .collect();
        Ok(json!({
            "kind": r.list_kind(),
            "apiVersion": r.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Matching objects, the revision they were read at, and a continue
    /// token when `limit` cut the list short.
    pub async fn list_items(
        &self,
        scope: Scope<'_>,
        opts: &ListOptions,
    ) -> Result<(Vec<Value>, Revision, Option<String>), ApiError> {
        let r = scope.resource;
        let prefix = Self::prefix(scope);
        let (mut revision, mut start_after) = match &opts.continue_token {
            Some(token) => {
                let (rv, start) = decode_continue(token)?;
                (Some(rv), Some(format!("{prefix}{start}")))
            }
            None => (None, None),
        };
        if revision.is_none()
            && let Some(rv) = opts
                .resource_version
                .as_deref()
                .filter(|rv| !rv.is_empty() && *rv != "0")
        {
            let rv = parse_rv(rv)?;
            if opts.resource_version_match.as_deref() == Some("Exact") {
                revision = Some(rv);
            } else {
                let current = self
                    .store
                    .current_revision()
                    .await
                    .map_err(|e| ApiError::from_store(e, r.group, r.plural, ""))?;
                if rv > current {
                    return Err(ApiError::new(
                        504,
                        "Timeout",
                        format!("Too large resource version: {rv}, current: {current}"),
                    ));
                }
            }
        }
        // A single-object read when the field selector pins the name.
        if let Some(name) = opts.fields.exact_name()
            && opts.continue_token.is_none()
            && revision.is_none()
            && (!r.namespaced || scope.namespace.is_some())
        {
            let key = Self::key(scope, name);
            let result = self
                .store
                .range(&key, None, Some(1), None)
                .await
                .map_err(|e| ApiError::from_store(e, r.group, r.plural, name))?;
            let mut out = Vec::new();
            for kv in result.kvs.iter().filter(|kv| kv.key == key) {
                let object = decode(kv)?;
                if opts.labels.matches_object(&object) && opts.fields.matches(&object) {
                    out.push(object);
                }
            }
            return Ok((out, result.revision, None));
        }
        let limit = opts.limit.filter(|l| *l > 0);
        let mut out = Vec::new();
        loop {
            let want = limit.map(|l| (l - out.len()).max(1));
            let page = self
                .store
                .range(&prefix, start_after.as_deref(), want.map(|w| w.max(64)), revision)
                .await
                .map_err(|e| match e {
                    StoreError::Compacted { .. } if opts.continue_token.is_some() => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ),
                    e => ApiError::from_store(e, r.group, r.plural, ""),
                })?;
            revision = Some(page.revision);
            let mut last_key = None;
            for kv in &page.kvs {
                last_key = Some(kv.key.clone());
                let object = decode(kv)?;
                if opts.labels.matches_object(&object) && opts.fields.matches(&object) {
                    out.push(object);
                    if limit.is_some_and(|l| out.len() >= l) {
                        break;
                    }
                }
            }
            let exhausted_page = last_key.as_deref() == page.kvs.last().map(|kv| kv.key.as_str());
            let more = page.more || !exhausted_page;
            let full = limit.is_some_and(|l| out.len() >= l);
            match (full, more, last_key) {
                (true, true, Some(key)) => {
                    let rv = page.revision;
                    return Ok((out, rv, Some(encode_continue(rv, &key, &prefix))));
                }
                (false, true, Some(key)) => start_after = Some(key),
                _ => return Ok((out, page.revision, None)),
            }
        }
    }

    /// Checks a namespace exists and accepts new content.
    async fn check_namespace(
        &self,
        resource: &Resource,
        namespace: &str,
        name: &str,
    ) -> Result<(), ApiError> {
        if self.namespaces.is_active(namespace) {
            return Ok(());
        }
        let key = keys::object("", "namespaces", None, namespace);
        let kv = self
            .store
            .get(&key)
            .await
            .map_err(|e| ApiError::from_store(e, "", "namespaces", namespace))?
            .ok_or_else(|| ApiError::not_found("", "namespaces", namespace))?;
        let ns = decode(&kv)?;
        if meta::is_terminating(&ns) {
            let mut err = ApiError::forbidden(format!(
                "{} \"{name}\" is forbidden: unable to create new content in namespace {namespace} because it is being terminated",
                resource.plural
            ));
            err.details = Some(json!({
                "name": name, "group": resource.group, "kind": resource.plural,
                "causes": [{
                    "reason": "NamespaceTerminating",
                    "message": format!("namespace {namespace} is being terminated"),
                    "field": "metadata.namespace"
                }]
            }));
            return Err(err);
        }
        Ok(())
    }

    /// Creates an object from a request body.
    #[instrument(skip(self, body, opts), fields(resource = scope.resource.plural, ns = scope.namespace))]
    pub async fn create(
        &self,
        scope: Scope<'_>,
        mut body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let r = scope.resource;
        if !body.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of a {} must be a JSON object",
                r.kind
            )));
        }
        // Namespace from the URL; the body may repeat it but not contradict it.
        if r.namespaced {
            let ns = scope.namespace.ok_or_else(|| {
                ApiError::bad_request(format!("{} must be created in a namespace", r.plural))
            })?;
            match meta::namespace(&body) {
                Some(body_ns) if body_ns != ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                _ => meta::set_meta(&mut body, "namespace", Value::from(ns)),
            }
        } else {
            meta::remove_meta(&mut body, "namespace");
        }
        if meta::meta_str(&body, "resourceVersion").is_some_and(|rv| !rv.is_empty()) {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "selfLink",
            "resourceVersion",
        ] {
            meta::remove_meta(&mut body, field);
        }
        if r.has_status()
            && let Some(o) = body.as_object_mut()
        {
            o.remove("status");
        }
        let generate = meta::meta_str(&body, "name").is_none_or(str::is_empty)
            && meta::meta_str(&body, "generateName").is_some_and(|g| !g.is_empty());
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut object = body.clone();
            if generate {
                let base = meta::meta_str(&object, "generateName")
                    .unwrap_or_default()
                    .to_owned();
                meta::set_meta(
                    &mut object,
                    "name",
                    Value::from(format!("{base}{}", meta::name_suffix())),
                );
            }
            match self.create_once(scope, object, opts).await {
                Err(e) if generate && e.reason == "AlreadyExists" && attempts < 8 => continue,
                other => return other,
            }
        }
    }

    async fn create_once(
        &self,
        scope: Scope<'_>,
        object: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let r = scope.resource;
        let admitted = validation::admit_create(r, object, opts.field_validation)?;
        let mut object = admitted.object;
        let name = meta::name(&object).to_owned();
        if let Some(ns) = scope.namespace.filter(|_| r.namespaced) {
            self.check_namespace(r, ns, &name).await?;
        }
        meta::set_meta(
            &mut object,
            "uid",
            Value::from(uuid::Uuid::new_v4().to_string()),
        );
        meta::set_meta(&mut object, "creationTimestamp", Value::from(meta::now()));
        if tracks_generation(r) {
            meta::set_meta(&mut object, "generation", Value::from(1));
        }
        let key = Self::key(scope, &name);
        let is_service = r.group.is_empty() && r.plural == "services";
        if is_service && !opts.dry_run {
            if self
                .store
                .get(&key)
                .await
                .map_err(|e| ApiError::from_store(e, r.group, r.plural, &name))?
                .is_some()
            {
                return Err(ApiError::already_exists(r.group, r.plural, &name));
            }
            let owner = format!("{}/{name}", scope.namespace.unwrap_or_default());
            self.allocator.allocate_service(&mut object, &owner).await?;
        }
        if opts.dry_run {
            return Ok(Written {
                object,
                warnings: admitted.warnings,
            });
        }
        match self.store.create(&key, encode(&object)).await {
            Ok(kv) => {
                meta::set_meta(
                    &mut object,
                    "resourceVersion",
                    Value::from(kv.mod_revision.to_string()),
                );
                debug!(key, revision = kv.mod_revision, "created");
                Ok(Written {
                    object,
                    warnings: admitted.warnings,
                })
            }
            Err(e) => {
                if is_service {
                    self.allocator.release(&Held::of(&object)).await;
                }
                Err(ApiError::from_store(e, r.group, r.plural, &name))
            }
        }
    }

    /// PUT of the main resource (`subresource = None`), of `status`, or of
    /// a namespace's `finalize`.
    #[instrument(skip(self, body, opts), fields(resource = scope.resource.plural, ns = scope.namespace))]
    pub async fn update(
        &self,
        scope: Scope<'_>,
        name: &str,
        subresource: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let r = scope.resource;
        if !body.is_object() {
            return Err(ApiError::bad_request(format!(
                "the body of a {} must be a JSON object",
                r.kind
            )));
        }
        let body_name = meta::name(&body);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        if r.namespaced
            && let (Some(body_ns), Some(ns)) = (meta::namespace(&body), scope.namespace)
            && body_ns != ns
        {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        let precondition = meta::meta_str(&body, "resourceVersion")
            .filter(|rv| !rv.is_empty())
            .map(parse_rv)
            .transpose()?;
        for _ in 0..MAX_RETRIES {
            let (kv, old) = self.load(scope, name).await?;
            if let Some(rv) = precondition
                && rv != kv.mod_revision
            {
                return Err(ApiError::stale(r.group, r.plural, name));
            }
            match self
                .write_update(scope, name, subresource, &kv, &old, body.clone(), opts)
                .await
            {
                Err(e) if precondition.is_none() && e.reason == "Conflict" => continue,
                other => return other,
            }
        }
        Err(ApiError::stale(r.group, r.plural, name))
    }

    /// PATCH: applies the patch to the current object and writes the result
    /// with a compare-and-swap, retrying when someone else wrote meanwhile.
    #[instrument(skip(self, patch_body, opts), fields(resource = scope.resource.plural, ns = scope.namespace))]
    pub async fn patch(
        &self,
        scope: Scope<'_>,
        name: &str,
        subresource: Option<&str>,
        kind: PatchType,
        patch_body: &Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let r = scope.resource;
        for _ in 0..MAX_RETRIES {
            let (kv, old) = self.load(scope, name).await?;
            let patched = patch::apply(kind, &old, patch_body)?;
            if meta::name(&patched) != name {
                return Err(ApiError::bad_request(
                    "metadata.name cannot be changed by a patch",
                ));
            }
            // A resourceVersion inside the patch is a precondition.
            if let Some(rv) =
                meta::meta_str(&patched, "resourceVersion").filter(|rv| !rv.is_empty())
                && parse_rv(rv)? != kv.mod_revision
            {
                return Err(ApiError::stale(r.group, r.plural, name));
            }
            match self
                .write_update(scope, name, subresource, &kv, &old, patched, opts)
                .await
            {
                Err(e) if e.reason == "Conflict" && e.code == 409 => continue,
                other => return other,
            }
        }
        Err(ApiError::stale(r.group, r.plural, name))
    }

    /// One compare-and-swap update of `name` from `old` (at `kv`) to `new`.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        scope: Scope<'_>,
        name: &str,
        subresource: Option<&str>,
        kv: &KeyValue,
        old: &Value,
        new: Value,
        opts: &WriteOptions,
    ) -> Result<Written, ApiError> {
        let r = scope.resource;
        let mut object = match subresource {
            None => {
                let mut object = new;
                // A namespace's finalizers change only through `/finalize`.
                if r.plural == "namespaces"
                    && r.group.is_empty()
                    && let Some(o) = object.as_object_mut()
                {
                    match old.get("spec") {
                        Some(spec) => o.insert("spec".into(), spec.clone()),
                        None => o.remove("spec"),
                    };
                }
                if r.has_status()
                    && let Some(o) = object.as_object_mut()
                {
                    match old.get("status") {
                        Some(status) => o.insert("status".into(), status.clone()),
                        None => o.remove("status"),
                    };
                }
                object
            }
            Some("status") => {
                let mut object = old.clone();
                if let Some(o) = object.as_object_mut() {
                    match new.get("status") {
                        Some(status) => o.insert("status".into(), status.clone()),
                        None => o.remove("status"),
                    };
                }
                object
            }
            Some("finalize") if r.plural == "namespaces" => {
                let mut object = old.clone();
                let finalizers = new
                    .pointer("/spec/finalizers")
                    .cloned()
                    .unwrap_or(Value::Array(vec![]));
                object["spec"] = json!({ "finalizers": finalizers });
                object
            }
            Some(other) => return Err(ApiError::no_route(other)),
        };
        // Server-managed metadata always comes from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ] {
            match old.get("metadata").and_then(|m| m.get(field)) {
                Some(v) => meta::set_meta(&mut object, field, v.clone()),
                None => {
                    meta::remove_meta(&mut object, field);
                }
            }
        }
        meta::remove_meta(&mut object, "resourceVersion");
        let admitted = validation::admit_update(r, old, object, opts.field_validation)?;
        let mut object = admitted.object;
        if tracks_generation(r) && spec_part(&object) != spec_part(old) {
            let generation = old
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta::set_meta(&mut object, "generation", Value::from(generation + 1));
        }
        let is_service = r.group.is_empty() && r.plural == "services";
        if is_service && subresource.is_none() && !opts.dry_run {
            let owner = format!("{}/{name}", scope.namespace.unwrap_or_default());
            self.allocator
                .update_service(old, &mut object, &owner)
                .await?;
        }
        meta::set_meta(
            &mut object,
            "resourceVersion",
            Value::from(kv.mod_revision.to_string()),
        );
        if object == *old {
            return Ok(Written {
                object,
                warnings: admitted.warnings,
            });
        }
        meta::remove_meta(&mut object, "resourceVersion");
        if opts.dry_run {
            return Ok(Written {
                object,
                warnings: admitted.warnings,
            });
        }
        if self.ready_to_delete(r, &object) {
            self.store
                .delete(&kv.key, Some(kv.mod_revision))
                .await
                .map_err(|e| ApiError::from_store(e, r.group, r.plural, name))?;
            self.after_delete(r, &object).await;
            return Ok(Written {
                object,
                warnings: admitted.warnings,
            });
        }
        let stored = self
            .store
            .update(&kv.key, encode(&object), kv.mod_revision)
            .await
            .map_err(|e| ApiError::from_store(e, r.group, r.plural, name))?;
        meta::set_meta(
            &mut object,
            "resourceVersion",
            Value::from(stored.mod_revision.to_string()),
        );
        Ok(Written {
            object,
            warnings: admitted.warnings,
        })
    }

    /// Marked for deletion with nothing left to wait for.
    fn ready_to_delete(&self, r: &Resource, object: &Value) -> bool {
        if !meta::is_terminating(object) || !meta::finalizers(object).is_empty() {
            return false;
        }
        if r.plural == "namespaces" {
            return object
                .pointer("/spec/finalizers")
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty);
        }
        if r.plural == "pods" {
            // Graceful pod deletion ends when the kubelet deletes with grace 0.
            return false;
        }
        true
    }

    async fn after_delete(&self, r: &Resource, object: &Value) {
        if r.group.is_empty() && r.plural == "services" {
            self.allocator.release(&Held::of(object)).await;
        }
    }

    #[instrument(skip(self, opts), fields(resource = scope.resource.plural, ns = scope.namespace))]
    pub async fn delete(
        &self,
        scope: Scope<'_>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let r = scope.resource;
        for _ in 0..MAX_RETRIES {
            let (kv, old) = self.load(scope, name).await?;
            if let Some(uid) = &opts.precondition_uid
                && meta::meta_str(&old, "uid") != Some(uid.as_str())
            {
                return Err(ApiError::conflict(
                    r.group,
                    r.plural,
                    name,
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta::meta_str(&old, "uid").unwrap_or_default()
                    ),
                ));
            }
            if let Some(rv) = &opts.precondition_resource_version
                && parse_rv(rv)? != kv.mod_revision
            {
                return Err(ApiError::conflict(
                    r.group,
                    r.plural,
                    name,
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        kv.mod_revision
                    ),
                ));
            }
            let mut marked = old.clone();
            let mut finalizers = meta::finalizers(&old);
            match opts.propagation_policy.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                    finalizers.push("foregroundDeletion".into());
                }
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                    finalizers.push("orphan".into())
                }
                Some("Foreground" | "Orphan" | "Background") | None => {}
                Some(other) => {
                    return Err(ApiError::invalid(
                        r.group,
                        r.kind,
                        name,
                        &[crate::apiserver::status::FieldError::not_supported(
                            "propagationPolicy",
                            other,
                            &["Foreground", "Background", "Orphan"],
                        )],
                    ));
                }
            }
            let grace = self.grace_period(r, &old, opts);
            let namespace_pending = r.plural == "namespaces"
                && old
                    .pointer("/spec/finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty());
            if finalizers.is_empty() && grace == 0 && !namespace_pending {
                if opts.dry_run {
                    return Ok(Deleted::Gone(old));
                }
                match self.store.delete(&kv.key, Some(kv.mod_revision)).await {
                    Ok(_) => {
                        self.after_delete(r, &old).await;
                        return Ok(Deleted::Gone(old));
                    }
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(ApiError::from_store(e, r.group, r.plural, name)),
                }
            }
            if meta::is_terminating(&old) {
                let current_grace = old
                    .pointer("/metadata/deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                if current_grace.is_none_or(|g| grace >= g) {
                    return Ok(Deleted::Marked(old));
                }
            }
            meta::set_meta(
                &mut marked,
                "deletionTimestamp",
                Value::from(meta::timestamp_after(grace)),
            );
            meta::set_meta(
                &mut marked,
                "deletionGracePeriodSeconds",
                Value::from(grace),
            );
            meta::set_meta(&mut marked, "finalizers", Value::from(finalizers.clone()));
            if finalizers.is_empty() {
                meta::remove_meta(&mut marked, "finalizers");
            }
            if r.plural == "namespaces" {
                marked["status"] = json!({ "phase": "Terminating" });
            }
            if opts.dry_run {
                return Ok(Deleted::Marked(marked));
            }
            match self
                .store
                .update(&kv.key, encode(&marked), kv.mod_revision)
                .await
            {
                Ok(stored) => {
                    meta::set_meta(
                        &mut marked,
                        "resourceVersion",
                        Value::from(stored.mod_revision.to_string()),
                    );
                    return Ok(Deleted::Marked(marked));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_store(e, r.group, r.plural, name)),
            }
        }
        Err(ApiError::stale(r.group, r.plural, name))
    }

    fn grace_period(&self, r: &Resource, object: &Value, opts: &DeleteOptions) -> i64 {
        if r.plural != "pods" || !r.group.is_empty() {
            return 0;
        }
        // Unscheduled or finished pods have nothing to stop.
        let scheduled = object
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        let phase = object
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !scheduled || phase == "Succeeded" || phase == "Failed" {
            return 0;
        }
        opts.grace_period_seconds
            .or_else(|| {
                object
                    .pointer("/spec/terminationGracePeriodSeconds")
                    .and_then(Value::as_i64)
            })
            .unwrap_or(30)
            .max(0)
    }

    /// DELETE on a collection: deletes every matching object.
    pub async fn delete_collection(
        &self,
        scope: Scope<'_>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        let (items, _, _) = self.list_items(scope, list).await?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let ns = meta::namespace(&item).map(str::to_owned);
            let item_scope = Scope {
                resource: scope.resource,
                namespace: ns.as_deref(),
            };
            match self.delete(item_scope, meta::name(&item), opts).await {
                Ok(Deleted::Gone(o) | Deleted::Marked(o)) => out.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// `pods/<name>/binding`: assigns an unscheduled pod to a node.
    pub async fn bind(
        &self,
        scope: Scope<'_>,
        name: &str,
        binding: &Value,
    ) -> Result<(), ApiError> {
        let r = scope.resource;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    "",
                    "Binding",
                    name,
                    &[crate::apiserver::status::FieldError::required(
                        "target.name",
                        "",
                    )],
                )
            })?
            .to_owned();
        for _ in 0..MAX_RETRIES {
            let (kv, old) = self.load(scope, name).await?;
            if meta::is_terminating(&old) {
                return Err(ApiError::conflict(
                    r.group,
                    r.plural,
                    name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            if let Some(current) = old
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(ApiError::conflict(
                    r.group,
                    r.plural,
                    name,
                    &format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
            let mut new = old.clone();
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("nodeName".into(), Value::from(node.clone()));
            }
            meta::remove_meta(&mut new, "resourceVersion");
            match self
                .store
                .update(&kv.key, encode(&new), kv.mod_revision)
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(ApiError::from_store(e, r.group, r.plural, name)),
            }
        }
        Err(ApiError::stale(r.group, r.plural, name))
    }

    /// Watches `scope` as the watch API does: optional initial state, then
    /// changes filtered by selectors (objects entering/leaving a selector
    /// appear as ADDED/DELETED), bookmarks when asked, until `timeout`.
    pub async fn watch(
        &self,
        scope: Scope<'_>,
        opts: WatchOptions,
    ) -> Result<impl Stream<Item = WatchEvent> + Send + 'static, ApiError> {
        let r = scope.resource;
        let prefix = Self::prefix(scope);
        let rv = opts.resource_version.as_deref().unwrap_or("");
        let initial = opts.send_initial_events || rv.is_empty() || rv == "0";
        let mut initial_events = Vec::new();
        let after = if initial {
            let list = ListOptions {
                labels: opts.labels.clone(),
                fields: opts.fields.clone(),
                ..ListOptions::default()
            };
            let (items, revision, _) = self.list_items(scope, &list).await?;
            initial_events = items
                .into_iter()
                .map(|object| WatchEvent {
                    kind: "ADDED",
                    object,
                })
                .collect();
            revision
        } else {
            parse_rv(rv)?
        };
        let expired = |e: WatchCacheError| match e {
            WatchCacheError::TooOld { requested, oldest } => {
                ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
            }
            WatchCacheError::Closed => {
                ApiError::unavailable("the watch cache is restarting; retry")
            }
        };
        self.cache.wait_for(after).await.map_err(expired)?;
        let subscription = match self.cache.subscribe(&prefix, after) {
            Ok(s) => Some(s),
            // An explicit too-old revision is reported in-stream, as
            // kube-apiserver does, so clients relist.
            Err(e @ WatchCacheError::TooOld { .. }) if !initial => {
                let status = expired(e).to_status();
                return Ok(futures::stream::iter(vec![WatchEvent {
                    kind: "ERROR",
                    object: status,
                }])
                .boxed());
            }
            Err(e) => return Err(expired(e)),
        };
        if opts.send_initial_events && opts.allow_bookmarks {
            initial_events.push(WatchEvent {
                kind: "BOOKMARK",
                object: bookmark(r, after, true),
            });
        }
        let labels = opts.labels;
        let fields = opts.fields;
        let allow_bookmarks = opts.allow_bookmarks;
        let deadline = tokio::time::Instant::now() + opts.timeout.min(MAX_WATCH);
        let live = futures::stream::unfold(subscription, move |subscription| {
            let labels = labels.clone();
            let fields = fields.clone();
            async move {
                let mut subscription = subscription?;
                loop {
                    let next = tokio::time::timeout_at(deadline, subscription.next()).await;
                    let notification = match next {
                        Ok(Some(n)) => n,
                        Ok(None) => {
                            debug!(
                                reason = subscription.end_reason().unwrap_or(""),
                                "watch ended by the cache"
                            );
                            return None;
                        }
                        Err(_) => return None,
                    };
                    match notification {
                        Notification::Progress(revision) if allow_bookmarks => {
                            return Some((
                                WatchEvent {
                                    kind: "BOOKMARK",
                                    object: bookmark(r, revision, false),
                                },
                                Some(subscription),
                            ));
                        }
                        Notification::Progress(_) => continue,
                        Notification::Event(event) => {
                            if let Some(out) = translate(&event, &labels, &fields) {
                                return Some((out, Some(subscription)));
                            }
                        }
                    }
                }
            }
        });
        Ok(futures::stream::iter(initial_events).chain(live).boxed())
    }
}

fn bookmark(r: &Resource, revision: Revision, initial_end: bool) -> Value {
    let mut metadata = Map::new();
    metadata.insert("resourceVersion".into(), Value::from(revision.to_string()));
    if initial_end {
        metadata.insert(
            "annotations".into(),
            json!({ "k8s.io/initial-events-end": "true" }),
        );
    }
    json!({ "kind": r.kind, "apiVersion": r.api_version(), "metadata": metadata })
}

/// One store event as a watch event under selectors, if the watcher sees it.
fn translate(
    event: &crate::storage::Event,
    labels: &LabelSelector,
    fields: &FieldSelector,
) -> Option<WatchEvent> {
    let matches = |o: &Value| labels.matches_object(o) && fields.matches(o);
    let revision = event.revision().to_string();
    let stamp = |mut o: Value| {
        meta::set_meta(&mut o, "resourceVersion", Value::from(revision.clone()));
        o
    };
    let prev: Option<Value> = event
        .prev
        .as_ref()
        .and_then(|kv| serde_json::from_slice(&kv.value).ok());
    match event.kind {
        EventKind::Deleted => {
            let old = prev?;
            matches(&old).then(|| WatchEvent {
                kind: "DELETED",
                object: stamp(old),
            })
        }
        EventKind::Added | EventKind::Modified => {
            let new: Value = serde_json::from_slice(&event.kv.value).ok()?;
            let was = prev.as_ref().is_some_and(&matches);
            let now = matches(&new);
            match (was, now) {
                (false, true) => Some(WatchEvent {
                    kind: "ADDED",
                    object: stamp(new),
                }),
                (true, true) => Some(WatchEvent {
                    kind: "MODIFIED",
                    object: stamp(new),
                }),
                (true, false) => Some(WatchEvent {
                    kind: "DELETED",
                    object: stamp(new),
                }),
                (false, false) => None,
            }
        }
    }
}

/// Resolves `group/version/plural` or errors with 404.
pub fn resource(group: &str, version: &str, plural: &str) -> Result<&'static Resource, ApiError> {
    registry::find(group, version, plural).ok_or_else(|| {
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        ApiError::no_route(&format!("{gv}, Resource={plural}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let token = encode_continue(
            42,
            "/registry/core/configmaps/demo/b",
            "/registry/core/configmaps/",
        );
        assert_eq!(decode_continue(&token).unwrap(), (42, "demo/b".to_owned()));
        assert_eq!(decode_continue("!!!").unwrap_err().code, 400);
        assert_eq!(decode_continue("e30").unwrap_err().code, 400);
    }
}
