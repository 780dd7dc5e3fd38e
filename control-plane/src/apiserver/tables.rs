//! Server-side printing: `meta.k8s.io/v1` Table responses, which kubectl
//! asks for (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) to
//! print `kubectl get` columns. One column set per kind, as kube-apiserver's
//! printers define them.

use serde_json::{Value, json};

use crate::{apiserver::meta, registry::Resource};

/// What each row carries besides its cells (`includeObject`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(value: Option<&str>) -> IncludeObject {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// Whether an Accept header asks for a Table.
pub fn wants_table(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| {
        let first = first.replace(' ', "");
        first.contains("as=Table") && first.contains("g=meta.k8s.io")
    })
}

struct Column {
    name: &'static str,
    kind: &'static str,
    format: &'static str,
    priority: u8,
    description: &'static str,
}

const fn col(name: &'static str, kind: &'static str, priority: u8) -> Column {
    Column {
        name,
        kind,
        format: "",
        priority,
        description: "",
    }
}

fn columns(r: &Resource) -> Vec<Column> {
    let name = Column {
        name: "Name",
        kind: "string",
        format: "name",
        priority: 0,
        description: "Name must be unique within a namespace.",
    };
    let age = Column {
        name: "Age",
        kind: "string",
        format: "",
        priority: 0,
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.",
    };
    let mut cols = vec![name];
    match (r.group, r.plural) {
        ("", "namespaces") => cols.push(col("Status", "string", 0)),
        ("", "pods") => {
            cols.extend([
                col("Ready", "string", 0),
                col("Status", "string", 0),
                col("Restarts", "string", 0),
            ]);
            cols.push(age);
            cols.extend([col("IP", "string", 1), col("Node", "string", 1)]);
            return cols;
        }
        ("", "services") => cols.extend([
            col("Type", "string", 0),
            col("Cluster-IP", "string", 0),
            col("External-IP", "string", 0),
            col("Port(s)", "string", 0),
        ]),
        ("", "endpoints") => cols.push(col("Endpoints", "string", 0)),
        ("", "nodes") => cols.extend([col("Status", "string", 0), col("Roles", "string", 0)]),
        ("", "configmaps") => cols.push(col("Data", "integer", 0)),
        ("", "secrets") => cols.extend([col("Type", "string", 0), col("Data", "integer", 0)]),
        ("", "serviceaccounts") => cols.push(col("Secrets", "integer", 0)),
        ("apps", "deployments") => cols.extend([
            col("Ready", "string", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
        ]),
        ("apps", "replicasets") => cols.extend([
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
        ]),
        ("apps", "daemonsets") => cols.extend([
            col("Desired", "integer", 0),
            col("Current", "integer", 0),
            col("Ready", "integer", 0),
            col("Up-to-date", "integer", 0),
            col("Available", "integer", 0),
        ]),
        ("apps", "statefulsets") => cols.push(col("Ready", "string", 0)),
        ("batch", "jobs") => {
            cols.extend([col("Status", "string", 0), col("Completions", "string", 0)])
        }
        ("discovery.k8s.io", "endpointslices") => cols.extend([
            col("AddressType", "string", 0),
            col("Ports", "string", 0),
            col("Endpoints", "string", 0),
        ]),
        ("coordination.k8s.io", "leases") => cols.push(col("Holder", "string", 0)),
        _ => {}
    }
    cols.push(age);
    cols
}

fn int(v: Option<&Value>) -> i64 {
    v.and_then(Value::as_i64).unwrap_or(0)
}

fn cells(r: &Resource, o: &Value) -> Vec<Value> {
    let age = meta::meta_str(o, "creationTimestamp")
        .and_then(meta::seconds_since)
        .map(meta::human_age)
        .unwrap_or_else(|| "<unknown>".into());
    let name = Value::from(meta::name(o));
    let p = |path: &str| o.pointer(path);
    let s = |path: &str| p(path).and_then(Value::as_str).unwrap_or("").to_owned();
    let mut out = vec![name];
    match (r.group, r.plural) {
        ("", "namespaces") => out.push(Value::from(s("/status/phase"))),
        ("", "pods") => {
            let statuses = p("/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let total = p("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|c| c["ready"].as_bool() == Some(true))
                .count();
            let restarts: i64 = statuses.iter().map(|c| int(c.get("restartCount"))).sum();
            let mut status = s("/status/reason");
            if status.is_empty() {
                status = s("/status/phase");
            }
            for c in &statuses {
                if let Some(reason) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
                    status = reason.to_owned();
                }
            }
            if meta::is_terminating(o) {
                status = "Terminating".into();
            }
            out.extend([
                Value::from(format!("{ready}/{total}")),
                Value::from(status),
                Value::from(restarts.to_string()),
                Value::from(age),
                Value::from(if s("/status/podIP").is_empty() {
                    "<none>".into()
                } else {
                    s("/status/podIP")
                }),
                Value::from(if s("/spec/nodeName").is_empty() {
                    "<none>".into()
                } else {
                    s("/spec/nodeName")
                }),
            ]);
            return out;
        }
        ("", "services") => {
            let ports: Vec<String> = p("/spec/ports")
                .and_then(Value::as_array)
                .map(|ports| {
                    ports
                        .iter()
                        .map(|port| {
                            let proto = port["protocol"].as_str().unwrap_or("TCP");
                            match port.get("nodePort").and_then(Value::as_i64) {
                                Some(np) => format!("{}:{np}/{proto}", int(port.get("port"))),
                                None => format!("{}/{proto}", int(port.get("port"))),
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            let external = p("/spec/externalIPs")
                .and_then(Value::as_array)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "<none>".into());
            let cluster_ip = s("/spec/clusterIP");
            out.extend([
                Value::from(s("/spec/type")),
                Value::from(if cluster_ip.is_empty() {
                    "<none>".into()
                } else {
                    cluster_ip
                }),
                Value::from(external),
                Value::from(if ports.is_empty() {
                    "<none>".into()
                } else {
                    ports.join(",")
                }),
            ]);
        }
        ("", "endpoints") => {
            let mut eps = Vec::new();
            for subset in p("/subsets")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                for addr in subset["addresses"].as_array().cloned().unwrap_or_default() {
                    for port in subset["ports"].as_array().cloned().unwrap_or_default() {
                        eps.push(format!(
                            "{}:{}",
                            addr["ip"].as_str().unwrap_or(""),
                            int(port.get("port"))
                        ));
                    }
                }
            }
            out.push(Value::from(if eps.is_empty() {
                "<none>".into()
            } else {
                eps.join(",")
            }));
        }
        ("", "nodes") => {
            let ready = p("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .map(|c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                })
                .unwrap_or("Unknown");
            let mut status = ready.to_owned();
            if p("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = o
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys()
                        .filter_map(|k| {
                            k.strip_prefix("node-role.kubernetes.io/")
                                .map(str::to_owned)
                        })
                        .collect()
                })
                .unwrap_or_default();
            out.extend([
                Value::from(status),
                Value::from(if roles.is_empty() {
                    "<none>".into()
                } else {
                    roles.join(",")
                }),
            ]);
        }
        ("", "configmaps") => {
            let n = p("/data").and_then(Value::as_object).map_or(0, |m| m.len())
                + p("/binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            out.push(Value::from(n));
        }
        ("", "secrets") => {
            let n = p("/data").and_then(Value::as_object).map_or(0, |m| m.len());
            out.extend([Value::from(s("/type")), Value::from(n)]);
        }
        ("", "serviceaccounts") => out.push(Value::from(
            p("/secrets").and_then(Value::as_array).map_or(0, Vec::len),
        )),
        ("apps", "deployments") => out.extend([
            Value::from(format!(
                "{}/{}",
                int(p("/status/readyReplicas")),
                int(p("/spec/replicas"))
            )),
            Value::from(int(p("/status/updatedReplicas"))),
            Value::from(int(p("/status/availableReplicas"))),
        ]),
        ("apps", "replicasets") => out.extend([
            Value::from(int(p("/spec/replicas"))),
            Value::from(int(p("/status/replicas"))),
            Value::from(int(p("/status/readyReplicas"))),
        ]),
        ("apps", "daemonsets") => out.extend([
            Value::from(int(p("/status/desiredNumberScheduled"))),
            Value::from(int(p("/status/currentNumberScheduled"))),
            Value::from(int(p("/status/numberReady"))),
            Value::from(int(p("/status/updatedNumberScheduled"))),
            Value::from(int(p("/status/numberAvailable"))),
        ]),
        ("apps", "statefulsets") => out.push(Value::from(format!(
            "{}/{}",
            int(p("/status/readyReplicas")),
            int(p("/spec/replicas"))
        ))),
        ("batch", "jobs") => {
            let succeeded = int(p("/status/succeeded"));
            let completions = p("/spec/completions").and_then(Value::as_i64);
            let status = if p("/status/completionTime").is_some() {
                "Complete"
            } else if int(p("/status/failed")) > 0 && int(p("/status/active")) == 0 {
                "Failed"
            } else {
                "Running"
            };
            out.extend([
                Value::from(status),
                Value::from(match completions {
                    Some(c) => format!("{succeeded}/{c}"),
                    None => format!("{succeeded}/1 of {}", int(p("/spec/parallelism"))),
                }),
            ]);
        }
        ("discovery.k8s.io", "endpointslices") => {
            let ports: Vec<String> = p("/ports")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|port| int(port.get("port")).to_string())
                        .collect()
                })
                .unwrap_or_default();
            let eps: Vec<String> = p("/endpoints")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                        .filter_map(|a| a.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            out.extend([
                Value::from(s("/addressType")),
                Value::from(if ports.is_empty() {
                    "<unset>".into()
                } else {
                    ports.join(",")
                }),
                Value::from(if eps.is_empty() {
                    "<unset>".into()
                } else {
                    eps.join(",")
                }),
            ]);
        }
        ("coordination.k8s.io", "leases") => out.push(Value::from(s("/spec/holderIdentity"))),
        _ => {}
    }
    out.push(Value::from(age));
    out
}

/// A Table of `objects` (already carrying kind/apiVersion or not).
pub fn table(r: &Resource, objects: &[Value], include: IncludeObject, list_meta: Value) -> Value {
    let column_definitions: Vec<Value> = columns(r)
        .iter()
        .map(|c| {
            json!({
                "name": c.name, "type": c.kind, "format": c.format,
                "description": c.description, "priority": c.priority
            })
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = json!({ "cells": cells(r, o) });
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    row["object"] = json!({
                        "kind": "PartialObjectMetadata",
                        "apiVersion": "meta.k8s.io/v1",
                        "metadata": o.get("metadata").cloned().unwrap_or(Value::Null),
                    });
                }
                IncludeObject::Object => {
                    let mut full = o.clone();
                    full["kind"] = Value::from(r.kind);
                    full["apiVersion"] = Value::from(r.api_version());
                    row["object"] = full;
                }
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry;

    #[test]
    fn configmap_rows_count_data() {
        let r = registry::find("", "v1", "configmaps").unwrap();
        let cm = json!({"metadata": {"name": "c", "creationTimestamp": meta::now()}, "data": {"a": "1", "b": "2"}});
        let t = table(
            r,
            &[cm],
            IncludeObject::Metadata,
            json!({"resourceVersion": "5"}),
        );
        assert_eq!(t["rows"][0]["cells"][0], "c");
        assert_eq!(t["rows"][0]["cells"][1], 2);
        assert_eq!(t["columnDefinitions"][1]["name"], "Data");
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }

    #[test]
    fn accept_header_detection() {
        assert!(wants_table(
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
        ));
        assert!(!wants_table("application/json"));
    }
}
