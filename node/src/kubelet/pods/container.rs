//! A container's CRI config, as a pure translation: the pod's container
//! spec plus what the worker looked up (the pod IP, the ConfigMaps and
//! Secrets its env refers to) → `ContainerConfig` (command and args, env,
//! working dir, ports, log path, labels and annotations).
//!
//! `$(VAR)` expansion in command/args/env, `envFrom`, volumes and
//! container-level resources are not here yet.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use thiserror::Error;

use super::sandbox::{
    CONTAINER_NAME_LABEL, MANAGED_LABEL, MANAGED_VALUE, POD_NAME_LABEL, POD_NAMESPACE_LABEL,
    POD_UID_LABEL, PodKey, RESTART_COUNT_ANNOTATION, container_log_path,
};
use crate::cri::api;

/// Why a container's config cannot be built (its status is then waiting
/// with reason `CreateContainerConfigError`).
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("unsupported fieldRef {0:?}")]
    UnsupportedFieldRef(String),
    #[error("env {0}: resourceFieldRef is not supported yet")]
    UnsupportedResourceFieldRef(String),
}

/// The ConfigMaps and Secrets of the pod's namespace that env refers to,
/// by name (absent: not found).
#[derive(Debug, Clone, Default)]
pub struct EnvSources {
    pub config_maps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
}

/// Names of the ConfigMaps and Secrets a container's env refers to.
pub fn env_references(container: &Container) -> (Vec<String>, Vec<String>) {
    let mut config_maps = Vec::new();
    let mut secrets = Vec::new();
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            continue;
        };
        if let Some(r) = &from.config_map_key_ref {
            config_maps.push(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            secrets.push(r.name.clone());
        }
    }
    (config_maps, secrets)
}

/// What the downward API fields resolve to.
#[derive(Debug, Clone, Default)]
pub struct FieldValues<'a> {
    pub pod_ip: Option<&'a str>,
    pub host_ip: Option<&'a str>,
    pub node_name: &'a str,
}

fn field_value(
    pod: &Pod,
    key: &PodKey,
    path: &str,
    fields: &FieldValues<'_>,
) -> Result<String, ConfigError> {
    let spec = pod.spec.as_ref();
    Ok(match path {
        "metadata.name" => key.name.clone(),
        "metadata.namespace" => key.namespace.clone(),
        "metadata.uid" => key.uid.clone(),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| fields.node_name.to_owned()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => fields.pod_ip.unwrap_or_default().to_owned(),
        "status.hostIP" | "status.hostIPs" => fields.host_ip.unwrap_or_default().to_owned(),
        other => {
            if let Some(label) = other
                .strip_prefix("metadata.labels['")
                .and_then(|s| s.strip_suffix("']"))
            {
                return Ok(pod.labels_value(label));
            }
            if let Some(a) = other
                .strip_prefix("metadata.annotations['")
                .and_then(|s| s.strip_suffix("']"))
            {
                return Ok(pod
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|m| m.get(a).cloned())
                    .unwrap_or_default());
            }
            return Err(ConfigError::UnsupportedFieldRef(other.to_owned()));
        }
    })
}

trait LabelsValue {
    fn labels_value(&self, key: &str) -> String;
}

impl LabelsValue for Pod {
    fn labels_value(&self, key: &str) -> String {
        self.metadata
            .labels
            .as_ref()
            .and_then(|m| m.get(key).cloned())
            .unwrap_or_default()
    }
}

/// The container's environment, in spec order (later duplicates win at
/// exec time, as with the kubelet).
pub fn container_env(
    pod: &Pod,
    key: &PodKey,
    container: &Container,
    fields: &FieldValues<'_>,
    sources: &EnvSources,
) -> Result<Vec<api::KeyValue>, ConfigError> {
    let mut out = Vec::new();
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => var.value.clone().unwrap_or_default(),
            Some(from) => {
                if let Some(f) = &from.field_ref {
                    field_value(pod, key, &f.field_path, fields)?
                } else if let Some(r) = &from.config_map_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match sources.config_maps.get(&r.name) {
                        None if optional => continue,
                        None => return Err(ConfigError::ConfigMapNotFound(r.name.clone())),
                        Some(cm) => {
                            let value = cm
                                .data
                                .as_ref()
                                .and_then(|d| d.get(&r.key).cloned())
                                .or_else(|| {
                                    cm.binary_data.as_ref().and_then(|d| {
                                        d.get(&r.key)
                                            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                                    })
                                });
                            match value {
                                Some(v) => v,
                                None if optional => continue,
                                None => {
                                    return Err(ConfigError::ConfigMapKeyNotFound {
                                        namespace: key.namespace.clone(),
                                        name: r.name.clone(),
                                        key: r.key.clone(),
                                    });
                                }
                            }
                        }
                    }
                } else if let Some(r) = &from.secret_key_ref {
                    let optional = r.optional.unwrap_or(false);
                    match sources.secrets.get(&r.name) {
                        None if optional => continue,
                        None => return Err(ConfigError::SecretNotFound(r.name.clone())),
                        Some(secret) => {
                            let value = secret
                                .data
                                .as_ref()
                                .and_then(|d| d.get(&r.key))
                                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                                .or_else(|| {
                                    secret
                                        .string_data
                                        .as_ref()
                                        .and_then(|d| d.get(&r.key).cloned())
                                });
                            match value {
                                Some(v) => v,
                                None if optional => continue,
                                None => {
                                    return Err(ConfigError::SecretKeyNotFound {
                                        namespace: key.namespace.clone(),
                                        name: r.name.clone(),
                                        key: r.key.clone(),
                                    });
                                }
                            }
                        }
                    }
                } else if from.resource_field_ref.is_some() {
                    return Err(ConfigError::UnsupportedResourceFieldRef(var.name.clone()));
                } else {
                    String::new()
                }
            }
        };
        out.push(api::KeyValue {
            key: var.name.clone(),
            value,
        });
    }
    Ok(out)
}

/// The labels of the pod's container `name`.
pub fn container_labels(key: &PodKey, name: &str) -> HashMap<String, String> {
    HashMap::from([
        (CONTAINER_NAME_LABEL.to_owned(), name.to_owned()),
        (POD_NAME_LABEL.to_owned(), key.name.clone()),
        (POD_NAMESPACE_LABEL.to_owned(), key.namespace.clone()),
        (POD_UID_LABEL.to_owned(), key.uid.clone()),
        (MANAGED_LABEL.to_owned(), MANAGED_VALUE.to_owned()),
    ])
}

/// The CRI config of `container`'s `restart_count`th run.
pub fn container_config(
    key: &PodKey,
    container: &Container,
    restart_count: u32,
    envs: Vec<api::KeyValue>,
) -> api::ContainerConfig {
    let mut annotations = HashMap::new();
    annotations.insert(
        RESTART_COUNT_ANNOTATION.to_owned(),
        restart_count.to_string(),
    );
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: container.name.clone(),
            attempt: restart_count,
        }),
        image: Some(api::ImageSpec {
            image: container.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: container.command.clone().unwrap_or_default(),
        args: container.args.clone().unwrap_or_default(),
        working_dir: container.working_dir.clone().unwrap_or_default(),
        envs,
        log_path: container_log_path(&container.name, restart_count),
        stdin: container.stdin.unwrap_or(false),
        stdin_once: container.stdin_once.unwrap_or(false),
        tty: container.tty.unwrap_or(false),
        labels: container_labels(key, &container.name),
        annotations,
        linux: Some(api::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "labels": {"app": "x"}},
            "spec": {"nodeName": "n1", "containers": [{
                "name": "c", "image": "keelson.local/busybox:1",
                "command": ["sh", "-c"], "args": ["env"], "workingDir": "/tmp",
                "env": [
                    {"name": "PLAIN", "value": "v"},
                    {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                    {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                    {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}},
                    {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "none", "key": "k", "optional": true}}},
                    {"name": "SEC", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}}
                ]
            }]}
        }))
        .expect("pod")
    }

    fn sources() -> EnvSources {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cfg"}, "data": {"k": "from-cm"}
        }))
        .expect("cm");
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "s"}, "data": {"pw": "aHVudGVyMg=="}
        }))
        .expect("secret");
        EnvSources {
            config_maps: [("cfg".to_owned(), cm)].into(),
            secrets: [("s".to_owned(), secret)].into(),
        }
    }

    #[test]
    fn env_resolves_values_fields_configmaps_and_secrets() {
        let pod = pod();
        let key = PodKey::of(&pod).expect("key");
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        assert_eq!(
            env_references(container),
            (
                vec!["cfg".to_owned(), "none".to_owned()],
                vec!["s".to_owned()]
            )
        );
        let fields = FieldValues {
            pod_ip: Some("10.244.0.2"),
            host_ip: None,
            node_name: "n1",
        };
        let env = container_env(&pod, &key, container, &fields, &sources()).expect("env");
        let got: Vec<(&str, &str)> = env
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("PLAIN", "v"),
                ("NAME", "p"),
                ("IP", "10.244.0.2"),
                ("NODE", "n1"),
                ("APP", "x"),
                ("CM", "from-cm"),
                ("SEC", "hunter2"),
            ]
        );
        let missing = container_env(&pod, &key, container, &fields, &EnvSources::default());
        assert_eq!(
            missing,
            Err(ConfigError::ConfigMapNotFound("cfg".to_owned()))
        );
    }

    #[test]
    fn config_carries_command_args_and_log_path() {
        let pod = pod();
        let key = PodKey::of(&pod).expect("key");
        let container = &pod.spec.as_ref().expect("spec").containers[0];
        let config = container_config(&key, container, 2, Vec::new());
        assert_eq!(config.command, ["sh", "-c"]);
        assert_eq!(config.args, ["env"]);
        assert_eq!(config.working_dir, "/tmp");
        assert_eq!(config.log_path, "c/2.log");
        assert_eq!(config.metadata.expect("metadata").attempt, 2);
        assert_eq!(config.labels[CONTAINER_NAME_LABEL], "c");
        assert_eq!(config.annotations[RESTART_COUNT_ANNOTATION], "2");
    }
}
