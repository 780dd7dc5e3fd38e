//! API discovery documents, all built from the registry table: `/api`,
//! `/apis`, `/api/v1`, `/apis/<group>`, `/apis/<group>/<version>`, and the
//! aggregated discovery (`apidiscovery.k8s.io/v2` APIGroupDiscoveryList)
//! that kubectl asks for first, plus `/version`.

use serde_json::{Value, json};

use crate::registry::{self, RESOURCES, Resource};

/// Media type of aggregated discovery responses.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version an `Accept` header asks for first.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let part = part.replace(' ', "");
        if part.contains("as=APIGroupDiscoveryList") && part.contains("g=apidiscovery.k8s.io") {
            if part.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if part.contains("v=v2") {
                return Some("v2");
            }
        }
        if part.starts_with("application/json") && !part.contains("as=") {
            return None;
        }
    }
    None
}

/// Subresource verbs.
fn subresource_verbs(sub: &str) -> &'static [&'static str] {
    match sub {
        "binding" => &["create"],
        "log" => &["get"],
        "finalize" => &["update"],
        _ => &["get", "patch", "update"],
    }
}

fn subresource_kind(r: &Resource, sub: &str) -> Value {
    match sub {
        "scale" => json!({ "group": "autoscaling", "version": "v1", "kind": "Scale" }),
        "binding" => json!({ "group": "", "version": "v1", "kind": "Binding" }),
        _ => json!({ "group": r.group, "version": r.version, "kind": r.kind }),
    }
}

/// `/api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }]
    })
}

fn group_json(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({ "groupVersion": format!("{group}/{v}"), "version": v }))
        .collect();
    json!({
        "name": group,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = registry::groups()
        .iter()
        .map(|(g, versions)| group_json(g, versions))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/<group>`.
pub fn api_group(group: &str) -> Option<Value> {
    registry::groups()
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(g, versions)| {
            let mut doc = group_json(g, versions);
            doc["kind"] = Value::from("APIGroup");
            doc["apiVersion"] = Value::from("v1");
            doc
        })
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut entry = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "storageVersionHash": "",
        });
        if !r.short_names.is_empty() {
            entry["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            entry["categories"] = json!(r.categories);
        }
        resources.push(entry);
        for sub in r.subresources {
            let kind = subresource_kind(r, sub);
            let mut entry = json!({
                "name": format!("{}/{sub}", r.plural),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind["kind"],
                "verbs": subresource_verbs(sub),
            });
            if *sub == "scale" {
                entry["group"] = Value::from("autoscaling");
                entry["version"] = Value::from("v1");
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// Aggregated discovery for `/api` (`legacy = true`) or `/apis`.
pub fn aggregated(legacy: bool, version: &str) -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = if legacy {
        vec![("", vec!["v1"])]
    } else {
        registry::groups()
    };
    groups.retain(|(g, _)| g.is_empty() == legacy);
    let items: Vec<Value> = groups
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = RESOURCES
                        .iter()
                        .filter(|r| r.group == *group && r.version == *v)
                        .map(|r| {
                            let subresources: Vec<Value> = r
                                .subresources
                                .iter()
                                .map(|sub| {
                                    json!({
                                        "subresource": sub,
                                        "responseKind": subresource_kind(r, sub),
                                        "verbs": subresource_verbs(sub),
                                    })
                                })
                                .collect();
                            let mut entry = json!({
                                "resource": r.plural,
                                "responseKind": { "group": r.group, "version": r.version, "kind": r.kind },
                                "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": r.singular,
                                "verbs": r.verbs,
                            });
                            if !r.short_names.is_empty() {
                                entry["shortNames"] = json!(r.short_names);
                            }
                            if !r.categories.is_empty() {
                                entry["categories"] = json!(r.categories);
                            }
                            if !subresources.is_empty() {
                                entry["subresources"] = Value::from(subresources);
                            }
                            entry
                        })
                        .collect();
                    json!({ "version": v, "resources": resources, "freshness": "Current" })
                })
                .collect();
            json!({ "metadata": { "name": group }, "versions": versions })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

/// `/version`: the Kubernetes version this server speaks.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("v1.33.0-keelson.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if cfg!(target_arch = "x86_64") { "amd64" } else { std::env::consts::ARCH }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert_eq!(
            wants_aggregated(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2")
        );
        assert_eq!(wants_aggregated("application/json"), None);
    }

    #[test]
    fn documents_cover_the_registry() {
        let core = api_resource_list("", "v1").unwrap();
        let names: Vec<&str> = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/status") && names.contains(&"namespaces"));
        assert!(api_resource_list("apps", "v2").is_none());
        let agg = aggregated(false, "v2");
        assert_eq!(agg["items"][0]["metadata"]["name"], "apps");
        assert_eq!(
            aggregated(true, "v2")["items"][0]["versions"][0]["version"],
            "v1"
        );
    }
}
