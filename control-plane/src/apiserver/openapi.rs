//! OpenAPI v3 documents, built from the registry table: `/openapi/v3` (the
//! index of group-versions) and `/openapi/v3/<api|apis/g>/<v>` with every
//! served path and operation, its `x-kubernetes-group-version-kind` and
//! query parameters. kubectl reads these to learn that the server validates
//! fields itself (`fieldValidation`), so `kubectl create -f` and friends
//! rely on the server's strict validation. Schemas of the kinds are not
//! published yet (`kubectl explain` and client-side apply need them).

use serde_json::{Map, Value, json};

use crate::registry::{self, RESOURCES, Resource};

/// Bumped whenever the documents change shape, so clients refetch.
const HASH: &str = "keelson-1";

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `/openapi/v3`.
pub fn index() -> Value {
    let mut paths = Map::new();
    paths.insert(
        "api/v1".into(),
        json!({ "serverRelativeURL": format!("/openapi/v3/api/v1?hash={HASH}") }),
    );
    for (group, versions) in registry::groups() {
        for version in versions {
            let p = gv_path(group, version);
            paths.insert(
                p.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={HASH}") }),
            );
        }
    }
    json!({ "paths": paths })
}

fn query(name: &str) -> Value {
    json!({ "name": name, "in": "query", "schema": { "type": "string" }, "uniqueItems": true })
}

fn operation(r: &Resource, action: &str, params: &[&str]) -> Value {
    json!({
        "operationId": format!("{action}{}", r.kind),
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": r.group, "version": r.version, "kind": r.kind },
        "parameters": params.iter().map(|p| query(p)).collect::<Vec<_>>(),
        "responses": { "200": { "description": "OK" } },
    })
}

/// `/openapi/v3/<gv>` for a served group-version.
pub fn group_version(group: &str, version: &str) -> Option<Value> {
    let resources: Vec<&Resource> = RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
        .collect();
    if resources.is_empty() {
        return None;
    }
    let base = format!("/{}", gv_path(group, version));
    let write = ["dryRun", "fieldManager", "fieldValidation", "pretty"];
    let mut paths = Map::new();
    for r in resources {
        let collection = if r.namespaced {
            format!("{base}/namespaces/{{namespace}}/{}", r.plural)
        } else {
            format!("{base}/{}", r.plural)
        };
        paths.insert(
            collection.clone(),
            json!({
                "get": operation(r, "list", &["labelSelector", "fieldSelector", "limit", "continue", "resourceVersion", "watch"]),
                "post": operation(r, "post", &write),
                "delete": operation(r, "deletecollection", &["labelSelector", "fieldSelector", "dryRun"]),
            }),
        );
        paths.insert(
            format!("{collection}/{{name}}"),
            json!({
                "get": operation(r, "get", &["pretty"]),
                "put": operation(r, "put", &write),
                "patch": operation(r, "patch", &["dryRun", "fieldManager", "fieldValidation", "force", "pretty"]),
                "delete": operation(r, "delete", &["dryRun", "gracePeriodSeconds", "propagationPolicy"]),
            }),
        );
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": { "title": "Kubernetes", "version": "v1.33.0" },
        "paths": paths,
        "components": { "schemas": {} },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_declare_field_validation() {
        let doc = group_version("", "v1").unwrap();
        let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"]["kind"],
            "ConfigMap"
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(index()["paths"]["apis/apps/v1"]["serverRelativeURL"].is_string());
        assert!(group_version("apps", "v9").is_none());
    }
}
