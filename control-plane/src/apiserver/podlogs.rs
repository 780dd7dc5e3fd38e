//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: finds the pod's node
//! (`spec.nodeName`), the node's kubelet (`InternalIP` and
//! `status.daemonEndpoints.kubeletEndpoint.Port`) and proxies the request
//! to its `/containerLogs/{ns}/{pod}/{container}`, streaming the answer
//! (`follow`) until either side ends.
//!
//! Plain HTTP to the kubelet for now (the kubelet server has no TLS yet).
//! Errors are [`ApiError`]s: 404 for the pod, 400 for a container the pod
//! lacks or a pod not scheduled, 503 when the kubelet is unreachable, 502
//! when it fails; a kubelet's own 4xx passes through with its message.

use std::{collections::HashMap, convert::Infallible, time::Duration};

use futures::StreamExt;
use http::{HeaderValue, Request, Response, header};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tracing::{debug, instrument};

use crate::{
    apiserver::{
        Body,
        objects::{self, ObjectService, Scope},
        status::ApiError,
    },
    registry,
};

/// The kubelet's port when the Node does not say (as kube-apiserver).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// How long connecting to a kubelet may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Most bytes of a kubelet's error body kept.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The `PodLogOptions` forwarded to the kubelet.
const FORWARDED: &[&str] = &[
    "follow",
    "previous",
    "timestamps",
    "tailLines",
    "limitBytes",
    "sinceSeconds",
    "sinceTime",
];

/// The container a request reads: the named one, which the pod must
/// have, or the pod's only container.
pub fn container<'a>(pod: &'a Value, requested: Option<&'a str>) -> Result<&'a str, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names_in = |field: &str| -> Vec<&'a str> {
        pod.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("name")?.as_str())
            .collect()
    };
    let containers = names_in("containers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            let known = containers.contains(&c)
                || names_in("initContainers").contains(&c)
                || names_in("ephemeralContainers").contains(&c);
            if known {
                Ok(c)
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match containers.as_slice() {
            [only] => Ok(only),
            _ => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            ))),
        },
    }
}

/// The node's kubelet address: its `InternalIP` (else `ExternalIP`) and
/// `status.daemonEndpoints.kubeletEndpoint.Port`.
pub fn kubelet_endpoint(node: &Value) -> Result<(String, u16), ApiError> {
    let name = node
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let address_of = |kind: &str| {
        addresses
            .iter()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(kind))
            .and_then(|a| a.get("address")?.as_str().map(str::to_owned))
    };
    let host = address_of("InternalIP")
        .or_else(|| address_of("ExternalIP"))
        .ok_or_else(|| {
            ApiError::unavailable(format!(
                "node {name} has no InternalIP or ExternalIP address"
            ))
        })?;
    let port = match node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
    {
        None | Some(0) => DEFAULT_KUBELET_PORT,
        Some(p) => u16::try_from(p).map_err(|_| {
            ApiError::unavailable(format!("node {name} has an invalid kubelet port {p}"))
        })?,
    };
    Ok((host, port))
}

/// `/containerLogs/{ns}/{pod}/{container}?<forwarded options>`.
pub fn kubelet_path(
    namespace: &str,
    pod: &str,
    container: &str,
    query: &HashMap<String, String>,
) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for key in FORWARDED {
        if let Some(value) = query.get(*key) {
            params.append_pair(key, value);
        }
    }
    let params = params.finish();
    let path = format!("/containerLogs/{namespace}/{pod}/{container}");
    if params.is_empty() {
        path
    } else {
        format!("{path}?{params}")
    }
}

/// Serves `pods/{name}/log`.
#[instrument(skip(objects, query), fields(pod = %format!("{namespace}/{name}")))]
pub async fn pod_log(
    objects: &ObjectService,
    namespace: &str,
    name: &str,
    query: &HashMap<String, String>,
) -> Result<Response<Body>, ApiError> {
    let pods = objects::resource("", "v1", "pods")?;
    let pod = objects
        .get(
            Scope {
                resource: pods,
                namespace: Some(namespace),
            },
            name,
        )
        .await?;
    let container = container(&pod, query.get("container").map(String::as_str))?;
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let nodes = registry::find("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = objects
        .get(
            Scope {
                resource: nodes,
                namespace: None,
            },
            node_name,
        )
        .await?;
    let (host, port) = kubelet_endpoint(&node)?;
    let path = kubelet_path(namespace, name, container, query);
    debug!(
        node = node_name,
        host, port, path, "proxying to the kubelet"
    );
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::unavailable(format!(
            "the kubelet of node {node_name} at {host}:{port} is unreachable: {e}"
        ))
    };
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await
    .map_err(|e| unreachable(&e))?
    .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            debug!("kubelet connection: {e}");
        }
    });
    let request = Request::get(&path)
        .header(header::HOST, format!("{host}:{port}"))
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| ApiError::internal(format!("building the kubelet request: {e}")))?;
    let resp = sender
        .send_request(request)
        .await
        .map_err(|e| ApiError::bad_gateway(format!("the kubelet of node {node_name}: {e}")))?;
    let code = resp.status();
    if !code.is_success() {
        let body = http_body_util::Limited::new(resp.into_body(), MAX_ERROR_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = String::from_utf8_lossy(&body).trim().to_owned();
        return Err(ApiError::from_kubelet(code.as_u16(), message));
    }
    // The kubelet's stream ends the response; an error mid-stream ends it
    // early (the client sees a short log, as with kube-apiserver).
    let frames = resp
        .into_body()
        .into_data_stream()
        .take_while(|chunk| std::future::ready(chunk.is_ok()))
        .filter_map(|chunk| {
            std::future::ready(chunk.ok().map(|b| Ok::<_, Infallible>(Frame::data(b))))
        });
    let mut out = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    out.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn containers_are_chosen_or_refused() {
        let pod = json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [{ "name": "app" }], "initContainers": [{ "name": "init" }] },
        });
        assert_eq!(container(&pod, None), Ok("app"));
        assert_eq!(container(&pod, Some("init")), Ok("init"));
        let err = container(&pod, Some("nope")).unwrap_err();
        assert_eq!(
            (err.code, err.message.as_str()),
            (400, "container nope is not valid for pod p")
        );
        let two = json!({
            "metadata": { "name": "p" },
            "spec": { "containers": [{ "name": "a" }, { "name": "b" }] },
        });
        let err = container(&two, None).unwrap_err();
        assert_eq!(
            err.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
    }

    #[test]
    fn kubelet_endpoint_is_the_internal_ip_and_port() {
        let node = json!({
            "metadata": { "name": "n1" },
            "status": {
                "addresses": [
                    { "type": "Hostname", "address": "n1" },
                    { "type": "InternalIP", "address": "127.0.0.1" },
                ],
                "daemonEndpoints": { "kubeletEndpoint": { "Port": 41000 } },
            },
        });
        assert_eq!(kubelet_endpoint(&node), Ok(("127.0.0.1".to_owned(), 41000)));
        let bare = json!({ "metadata": { "name": "n1" }, "status": { "addresses": [{ "type": "InternalIP", "address": "10.0.0.1" }] } });
        assert_eq!(
            kubelet_endpoint(&bare),
            Ok(("10.0.0.1".to_owned(), DEFAULT_KUBELET_PORT))
        );
        let none = json!({ "metadata": { "name": "n1" } });
        assert_eq!(kubelet_endpoint(&none).unwrap_err().code, 503);
    }

    #[test]
    fn kubelet_path_forwards_log_options_only() {
        let query: HashMap<String, String> = [
            ("follow", "true"),
            ("tailLines", "1"),
            ("container", "app"),
            ("sinceTime", "2026-12-04T03:00:00Z"),
            ("pretty", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(
            kubelet_path("ns", "p", "app", &query),
            "/containerLogs/ns/p/app?follow=true&tailLines=1&sinceTime=2026-12-04T03%3A00%3A00Z"
        );
        assert_eq!(
            kubelet_path("ns", "p", "app", &HashMap::new()),
            "/containerLogs/ns/p/app"
        );
    }
}
