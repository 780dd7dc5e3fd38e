//! What exists from the first start: the `default`, `kube-system`,
//! `kube-public` and `kube-node-lease` namespaces, and the `kubernetes`
//! Service in `default` (the first address of the service CIDR) with its
//! Endpoints and EndpointSlice pointing at this API server.

use std::net::IpAddr;

use serde_json::{Value, json};
use tracing::info;

use crate::{
    apiserver::{
        objects::{ObjectService, Scope, WriteOptions},
        status::ApiError,
    },
    registry,
};

pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

fn scope(
    group: &str,
    plural: &str,
    namespace: Option<&'static str>,
) -> Result<Scope<'static>, ApiError> {
    let resource = registry::find(group, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} not served")))?;
    Ok(Scope {
        resource,
        namespace,
    })
}

/// Creates `body` unless an object of that name exists; with `replace`,
/// an existing object whose content differs is updated to `body`.
async fn ensure(
    objects: &ObjectService,
    scope: Scope<'static>,
    body: Value,
    replace: bool,
) -> Result<(), ApiError> {
    let name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    match objects.get(scope, &name).await {
        Ok(existing) => {
            let differs = ["subsets", "endpoints", "ports", "addressType"]
                .iter()
                .any(|k| body.get(*k).is_some() && existing.get(*k) != body.get(*k));
            if replace && differs {
                let mut updated = body;
                updated["metadata"]["resourceVersion"] =
                    existing["metadata"]["resourceVersion"].clone();
                objects
                    .update(scope, &name, None, updated, &WriteOptions::default())
                    .await?;
                info!(resource = scope.resource.plural, name, "updated");
            }
            Ok(())
        }
        Err(e) if e.code == 404 => {
            match objects.create(scope, body, &WriteOptions::default()).await {
                Ok(_) => {
                    info!(resource = scope.resource.plural, name, "created");
                    Ok(())
                }
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Ensures the built-in namespaces and the `kubernetes` Service exist.
pub async fn run(
    objects: &ObjectService,
    advertise: IpAddr,
    secure_port: u16,
) -> Result<(), ApiError> {
    for ns in SYSTEM_NAMESPACES {
        let body = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        ensure(objects, scope("", "namespaces", None)?, body, false).await?;
    }
    let cluster_ip = objects.allocator().first_ip().to_string();
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "kubernetes", "namespace": "default",
                      "labels": { "component": "apiserver", "provider": "kubernetes" } },
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port }],
            "sessionAffinity": "None",
        }
    });
    ensure(
        objects,
        scope("", "services", Some("default"))?,
        service,
        false,
    )
    .await?;
    let endpoints = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": { "name": "kubernetes", "namespace": "default",
                      "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
        "subsets": [{
            "addresses": [{ "ip": advertise.to_string() }],
            "ports": [{ "name": "https", "port": secure_port, "protocol": "TCP" }],
        }]
    });
    ensure(
        objects,
        scope("", "endpoints", Some("default"))?,
        endpoints,
        true,
    )
    .await?;
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": { "name": "kubernetes", "namespace": "default",
                      "labels": { "kubernetes.io/service-name": "kubernetes",
                                  "endpointslice.kubernetes.io/managed-by": "keelson-server" } },
        "addressType": if advertise.is_ipv4() { "IPv4" } else { "IPv6" },
        "endpoints": [{ "addresses": [advertise.to_string()], "conditions": { "ready": true } }],
        "ports": [{ "name": "https", "port": secure_port, "protocol": "TCP" }],
    });
    ensure(
        objects,
        scope("discovery.k8s.io", "endpointslices", Some("default"))?,
        slice,
        true,
    )
    .await?;
    Ok(())
}
