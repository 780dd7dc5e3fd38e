//! A pod's CRI sandbox, as a pure translation: `Pod` → `PodSandboxConfig`
//! (metadata, hostname, the kubelet's labels, log directory, cgroup
//! parent, namespace modes) and the log paths the kubelet uses. Nothing
//! here talks to the runtime.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
};

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api;

/// The labels the kubelet puts on sandboxes and containers.
pub const POD_NAME_LABEL: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE_LABEL: &str = "io.kubernetes.pod.namespace";
pub const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";
pub const CONTAINER_NAME_LABEL: &str = "io.kubernetes.container.name";
/// Marks what Keelson's pod workers made (orphans are found by it).
pub const MANAGED_LABEL: &str = "keelson.dev/managed-by";
pub const MANAGED_VALUE: &str = "keelson-node";
/// Container annotation holding its restart count (as the kubelet's).
pub const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";

/// The identity of a pod, checked to be usable in paths and names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodKey {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

impl PodKey {
    /// `None` when the pod lacks a name, namespace or uid, or one of them
    /// would escape a path (`/`, `..`).
    pub fn of(pod: &Pod) -> Option<Self> {
        let safe = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
        let namespace = pod.metadata.namespace.clone().filter(|s| safe(s))?;
        let name = pod.metadata.name.clone().filter(|s| safe(s))?;
        let uid = pod.metadata.uid.clone().filter(|s| safe(s))?;
        Some(Self {
            namespace,
            name,
            uid,
        })
    }
}

impl std::fmt::Display for PodKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// `<root>/<namespace>_<name>_<uid>`, the kubelet's pod log directory.
pub fn pod_log_dir(root: &Path, key: &PodKey) -> PathBuf {
    root.join(format!("{}_{}_{}", key.namespace, key.name, key.uid))
}

/// `<container>/<restart>.log`, relative to the pod log directory.
pub fn container_log_path(container: &str, restart_count: u32) -> String {
    format!("{container}/{restart_count}.log")
}

/// The labels every sandbox of the pod carries.
pub fn sandbox_labels(key: &PodKey) -> HashMap<String, String> {
    HashMap::from([
        (POD_NAME_LABEL.to_owned(), key.name.clone()),
        (POD_NAMESPACE_LABEL.to_owned(), key.namespace.clone()),
        (POD_UID_LABEL.to_owned(), key.uid.clone()),
        (MANAGED_LABEL.to_owned(), MANAGED_VALUE.to_owned()),
    ])
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

/// The sandbox config of `pod`'s `attempt`th sandbox.
pub fn sandbox_config(
    pod: &Pod,
    key: &PodKey,
    log_root: &Path,
    cgroup_parent: &str,
    attempt: u32,
) -> api::PodSandboxConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let mode = |node: bool, otherwise: api::NamespaceMode| {
        if node {
            api::NamespaceMode::Node as i32
        } else {
            otherwise as i32
        }
    };
    let pid_otherwise = if spec.share_process_namespace.unwrap_or(false) {
        api::NamespaceMode::Pod
    } else {
        api::NamespaceMode::Container
    };
    // Host-network pods share the node's UTS namespace: no hostname of
    // their own (runc refuses one), as the kubelet sends.
    let hostname = if host_network {
        String::new()
    } else {
        spec.hostname.clone().unwrap_or_else(|| key.name.clone())
    };
    let port_mappings = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.is_some_and(|h| h > 0))
        .map(|p| api::PortMapping {
            protocol: protocol(p.protocol.as_deref()) as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or_default(),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect();
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: key.name.clone(),
            uid: key.uid.clone(),
            namespace: key.namespace.clone(),
            attempt,
        }),
        hostname,
        log_directory: pod_log_dir(log_root, key).display().to_string(),
        port_mappings,
        labels: sandbox_labels(key),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: cgroup_parent.to_owned(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: mode(host_network, api::NamespaceMode::Pod),
                    pid: mode(spec.host_pid.unwrap_or(false), pid_otherwise),
                    ipc: mode(spec.host_ipc.unwrap_or(false), api::NamespaceMode::Pod),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A Kubernetes port protocol as CRI's.
pub fn protocol(protocol: Option<&str>) -> api::Protocol {
    match protocol {
        Some("UDP") => api::Protocol::Udp,
        Some("SCTP") => api::Protocol::Sctp,
        _ => api::Protocol::Tcp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(host_network: bool) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1",
                          "annotations": {"a": "b"}},
            "spec": {"hostNetwork": host_network, "containers": [
                {"name": "c", "image": "keelson.local/echo:1",
                 "ports": [{"containerPort": 8080}, {"containerPort": 53, "hostPort": 5353, "protocol": "UDP"}]}
            ]}
        }))
        .expect("pod")
    }

    #[test]
    fn sandbox_config_is_the_kubelets() {
        let pod = pod(false);
        let key = PodKey::of(&pod).expect("key");
        let config = sandbox_config(
            &pod,
            &key,
            Path::new("/var/log/pods"),
            "/kubepods/podu-1",
            2,
        );
        let meta = config.metadata.clone().expect("metadata");
        assert_eq!((meta.name.as_str(), meta.attempt), ("web", 2));
        assert_eq!(config.hostname, "web");
        assert_eq!(config.log_directory, "/var/log/pods/default_web_u-1");
        assert_eq!(config.labels[POD_UID_LABEL], "u-1");
        assert_eq!(config.labels[MANAGED_LABEL], MANAGED_VALUE);
        assert_eq!(config.annotations["a"], "b");
        assert_eq!(config.port_mappings.len(), 1);
        assert_eq!(config.port_mappings[0].protocol, api::Protocol::Udp as i32);
        let linux = config.linux.expect("linux");
        assert_eq!(linux.cgroup_parent, "/kubepods/podu-1");
        let ns = linux
            .security_context
            .and_then(|s| s.namespace_options)
            .expect("namespaces");
        assert_eq!(ns.network, api::NamespaceMode::Pod as i32);
        assert_eq!(ns.pid, api::NamespaceMode::Container as i32);
    }

    #[test]
    fn host_network_pods_share_the_node() {
        let pod = pod(true);
        let key = PodKey::of(&pod).expect("key");
        let config = sandbox_config(&pod, &key, Path::new("/l"), "/p", 0);
        assert_eq!(config.hostname, "");
        let ns = config
            .linux
            .and_then(|l| l.security_context)
            .and_then(|s| s.namespace_options)
            .expect("namespaces");
        assert_eq!(ns.network, api::NamespaceMode::Node as i32);
        assert_eq!(container_log_path("c", 3), "c/3.log");
    }

    #[test]
    fn keys_refuse_path_escapes() {
        let mut pod = pod(false);
        pod.metadata.name = Some("../x".to_owned());
        assert!(PodKey::of(&pod).is_none());
    }
}
