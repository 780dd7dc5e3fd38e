//! The kube-proxy replacement's control path against a real `keelson-server`:
//! Services and EndpointSlices written through the API in the shape the
//! endpointslice controller and kubectl give them, watched with kube-rs by
//! `keelson_node::proxy::watch`, and the desired load-balancer state that
//! comes out (`watch.rs`), or that `keelson-node lb desired` prints
//! (`cli.rs`).

mod agent;
mod cli;
mod flows;
mod nodeport;
mod watch;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
};

use anyhow::{Context, Result};
use k8s_openapi::api::{
    core::v1::{Namespace, Service},
    discovery::v1::EndpointSlice,
};
use keelson_e2e::server::ServerProcess;
use kube::{Api, Client, api::PostParams};
use serde_json::{Value, json};

/// A kube-rs client from the server's admin kubeconfig.
async fn client(server: &ServerProcess) -> Result<Client> {
    Ok(keelson_node::proxy::watch::client_from_kubeconfig(&server.kubeconfig()).await?)
}

/// The API server's own port (the `kubernetes` Service's endpoint).
fn server_port(server: &ServerProcess) -> Result<u16> {
    server
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .with_context(|| format!("no port in {}", server.url))
}

/// What `web` got from the API server's allocators.
struct Web {
    cluster_ip: Ipv4Addr,
    http_node_port: u16,
    dns_node_port: u16,
    uid: String,
}

/// Creates namespace `shop` and the NodePort Service `shop/web` (named
/// target ports, a UDP port, ClientIP affinity) as `kubectl apply` would.
async fn create_web(client: &Client) -> Result<Web> {
    let namespace: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
        "spec": {
            "type": "NodePort",
            "selector": {"app.kubernetes.io/name": "web"},
            "ports": [
                {"name": "http", "port": 80, "targetPort": "http"},
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"}
            ],
            "sessionAffinity": "ClientIP",
            "ipFamilyPolicy": "PreferDualStack"
        }
    }))?;
    let created = Api::<Service>::namespaced(client.clone(), "shop")
        .create(&PostParams::default(), &service)
        .await?;
    let spec = created.spec.context("created Service has no spec")?;
    let node_port = |name: &str| -> Result<u16> {
        let port = spec
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name))
            .and_then(|p| p.node_port)
            .with_context(|| format!("no nodePort allocated for {name}"))?;
        Ok(u16::try_from(port)?)
    };
    Ok(Web {
        cluster_ip: spec
            .cluster_ip
            .as_deref()
            .context("no clusterIP allocated")?
            .parse()?,
        http_node_port: node_port("http")?,
        dns_node_port: node_port("dns")?,
        uid: created.metadata.uid.context("no uid")?,
    })
}

/// An endpoint as the endpointslice controller writes it.
fn endpoint(ip: &str, node: &str, ready: bool, serving: bool, terminating: bool) -> Value {
    let zone = format!("zone-{}", &node[node.len() - 1..]);
    json!({
        "addresses": [ip],
        "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
        "targetRef": {"kind": "Pod", "namespace": "shop", "name": format!("web-{}", ip.replace(['.', ':'], "-"))},
        "nodeName": node,
        "zone": zone,
        "hints": {"forZones": [{"name": zone}]}
    })
}

fn ready(ip: &str, node: &str) -> Value {
    endpoint(ip, node, true, true, false)
}

/// An EndpointSlice of `shop/web` as the endpointslice controller makes it.
fn web_slice(web: &Web, name: &str, address_type: &str, endpoints: Value) -> Result<EndpointSlice> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {
            "name": name, "namespace": "shop", "generateName": "web-",
            "labels": {
                "app.kubernetes.io/name": "web",
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                "kubernetes.io/service-name": "web"
            },
            "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2025-05-02T10:20:31Z"},
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Service", "name": "web", "uid": web.uid,
                "controller": true, "blockOwnerDeletion": true
            }]
        },
        "addressType": address_type,
        "endpoints": endpoints,
        "ports": [
            {"name": "http", "protocol": "TCP", "port": 8080},
            {"name": "dns", "protocol": "UDP", "port": 5353}
        ]
    }))?)
}

/// Two IPv4 slices and an IPv6 one for `shop/web`: three ready endpoints
/// on nodes a, b, c and a terminating one on node a.
async fn create_web_slices(client: &Client, web: &Web) -> Result<()> {
    let api = Api::<EndpointSlice>::namespaced(client.clone(), "shop");
    for slice in [
        web_slice(
            web,
            "web-abc12",
            "IPv4",
            json!([
                ready("10.244.1.17", "node-a"),
                ready("10.244.2.9", "node-b")
            ]),
        )?,
        web_slice(
            web,
            "web-def34",
            "IPv4",
            json!([
                endpoint("10.244.1.40", "node-a", false, true, true),
                ready("10.244.3.5", "node-c")
            ]),
        )?,
        web_slice(
            web,
            "web-v6x9z",
            "IPv6",
            json!([ready("fd00:10:244:1::11", "node-a")]),
        )?,
    ] {
        api.create(&PostParams::default(), &slice).await?;
    }
    Ok(())
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test IP")
}

/// The `keelson-node` binary (or `$KEELSON_NODE_BIN`).
/// `keelson-node flows ARGS --socket SOCKET -o json`, parsed.
fn flows(socket: &std::path::Path, args: &[&str]) -> Result<Vec<Value>> {
    let out = std::process::Command::new(node_binary()?)
        .arg("flows")
        .args(args)
        .args(["-o", "json", "--socket"])
        .arg(socket)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "flows {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)?
        .lines()
        .map(|l| serde_json::from_str(l).with_context(|| format!("line {l:?}")))
        .collect()
}

fn node_binary() -> Result<PathBuf> {
    keelson_e2e::server::workspace_binary("keelson-node", "KEELSON_NODE_BIN", "keelson-node")
}

/// A `keelson-node proxy` process inside `node_ns`, entered with `nsenter
/// --net` (not `ip netns exec`, which remounts /sys and would hide the
/// host's cgroup2 and bpffs), following `server`, attached to `cgroup` and
/// pinning under `pins`; `extra` adds flags. Its stderr goes to `log`.
/// SIGKILLed on drop.
struct AgentProcess {
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl AgentProcess {
    fn start(
        node_ns: &keelson_e2e::netns::NetNs,
        server: &ServerProcess,
        cgroup: &keelson_e2e::cgroup::TestCgroup,
        pins: &keelson_e2e::bpffs::PinDir,
        extra: &[&std::ffi::OsStr],
        log: PathBuf,
    ) -> Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let child = std::process::Command::new("nsenter")
            .arg(format!("--net={}", node_ns.path().display()))
            .arg("--")
            .arg(node_binary()?)
            .arg("proxy")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .arg("--cgroup")
            .arg(cgroup.path())
            .arg("--bpf-dir")
            .arg(pins.path())
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .context("starting keelson-node proxy")?;
        Ok(Self {
            child: Some(child),
            log,
        })
    }

    fn child(&mut self) -> Option<&mut std::process::Child> {
        self.child.as_mut()
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
