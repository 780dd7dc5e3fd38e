//! The CRI RuntimeService: the runtime itself (version, status), pod
//! sandboxes, containers and `ExecSync`.

use std::{collections::BTreeMap, time::Duration};

use k8s_cri::v1::{self as api, runtime_service_client::RuntimeServiceClient};
use tonic::transport::Channel;
use tracing::{debug, instrument};

use super::{CriError, Result, request};

/// The runtime's RuntimeService.
#[derive(Debug, Clone)]
pub struct RuntimeClient {
    inner: RuntimeServiceClient<Channel>,
    timeout: Duration,
}

/// Which pod sandboxes to list (every field narrows the list).
#[derive(Debug, Clone, Default)]
pub struct SandboxFilter {
    pub id: Option<String>,
    pub state: Option<api::PodSandboxState>,
    /// Sandboxes carrying every one of these labels.
    pub labels: BTreeMap<String, String>,
}

impl SandboxFilter {
    /// Sandboxes carrying every one of these labels.
    pub fn labels<K: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Self::default()
        }
    }
}

/// Which containers to list (every field narrows the list).
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    pub id: Option<String>,
    pub pod_sandbox_id: Option<String>,
    pub state: Option<api::ContainerState>,
    /// Containers carrying every one of these labels.
    pub labels: BTreeMap<String, String>,
}

impl ContainerFilter {
    /// The containers of one pod sandbox.
    pub fn sandbox(pod_sandbox_id: impl Into<String>) -> Self {
        Self {
            pod_sandbox_id: Some(pod_sandbox_id.into()),
            ..Self::default()
        }
    }

    /// Containers carrying every one of these labels.
    pub fn labels<K: Into<String>, V: Into<String>>(
        labels: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            ..Self::default()
        }
    }
}

/// What a command run by [`RuntimeClient::exec_sync`] printed, and its
/// exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl ExecOutput {
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// CRI's timeouts are whole seconds (and 0 means none for ExecSync):
/// round up.
fn whole_seconds(duration: Duration) -> i64 {
    let secs = duration.as_secs() + u64::from(duration.subsec_nanos() > 0);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// `ns/name` of a sandbox config, for spans.
fn pod_key(config: &api::PodSandboxConfig) -> String {
    config
        .metadata
        .as_ref()
        .map(|m| format!("{}/{}", m.namespace, m.name))
        .unwrap_or_default()
}

impl RuntimeClient {
    /// A client over `channel` whose every call has `timeout` as its
    /// deadline (calls that wait, such as stopping a container, add their
    /// own wait to it).
    pub fn new(channel: Channel, timeout: Duration) -> Self {
        Self {
            inner: RuntimeServiceClient::new(channel),
            timeout,
        }
    }

    /// The runtime's name and versions (`Version`).
    #[instrument(skip(self))]
    pub async fn version(&mut self) -> Result<api::VersionResponse> {
        let response = self
            .inner
            .version(request(
                api::VersionRequest {
                    version: "v1".to_owned(),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("Version"))?;
        Ok(response.into_inner())
    }

    /// The runtime's conditions (`RuntimeReady`, `NetworkReady`), and with
    /// `verbose` its extra information (containerd: its configuration).
    #[instrument(skip(self))]
    pub async fn status(&mut self, verbose: bool) -> Result<api::StatusResponse> {
        let response = self
            .inner
            .status(request(api::StatusRequest { verbose }, self.timeout))
            .await
            .map_err(CriError::rpc("Status"))?;
        Ok(response.into_inner())
    }

    /// Creates and starts a pod sandbox; returns its ID.
    #[instrument(skip(self, config), fields(pod = %pod_key(config)))]
    pub async fn run_pod_sandbox(
        &mut self,
        config: &api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> Result<String> {
        let response = self
            .inner
            .run_pod_sandbox(request(
                api::RunPodSandboxRequest {
                    config: Some(config.clone()),
                    runtime_handler: runtime_handler.to_owned(),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("RunPodSandbox"))?;
        let id = response.into_inner().pod_sandbox_id;
        if id.is_empty() {
            return Err(CriError::MissingField {
                method: "RunPodSandbox",
                field: "pod_sandbox_id",
            });
        }
        debug!(sandbox = %id, "pod sandbox running");
        Ok(id)
    }

    /// Stops every container of the sandbox and the sandbox itself
    /// (idempotent: stopping a stopped sandbox succeeds).
    #[instrument(skip(self))]
    pub async fn stop_pod_sandbox(&mut self, pod_sandbox_id: &str) -> Result<()> {
        self.inner
            .stop_pod_sandbox(request(
                api::StopPodSandboxRequest {
                    pod_sandbox_id: pod_sandbox_id.to_owned(),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("StopPodSandbox"))?;
        Ok(())
    }

    /// Removes the sandbox and its containers (idempotent).
    #[instrument(skip(self))]
    pub async fn remove_pod_sandbox(&mut self, pod_sandbox_id: &str) -> Result<()> {
        self.inner
            .remove_pod_sandbox(request(
                api::RemovePodSandboxRequest {
                    pod_sandbox_id: pod_sandbox_id.to_owned(),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("RemovePodSandbox"))?;
        Ok(())
    }

    /// The sandbox's status.
    #[instrument(skip(self))]
    pub async fn pod_sandbox_status(
        &mut self,
        pod_sandbox_id: &str,
    ) -> Result<api::PodSandboxStatus> {
        let response = self
            .inner
            .pod_sandbox_status(request(
                api::PodSandboxStatusRequest {
                    pod_sandbox_id: pod_sandbox_id.to_owned(),
                    verbose: false,
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("PodSandboxStatus"))?;
        response.into_inner().status.ok_or(CriError::MissingField {
            method: "PodSandboxStatus",
            field: "status",
        })
    }

    /// The sandboxes matching `filter`.
    #[instrument(skip(self))]
    pub async fn list_pod_sandboxes(
        &mut self,
        filter: &SandboxFilter,
    ) -> Result<Vec<api::PodSandbox>> {
        let filter = api::PodSandboxFilter {
            id: filter.id.clone().unwrap_or_default(),
            state: filter.state.map(|state| api::PodSandboxStateValue {
                state: state as i32,
            }),
            label_selector: filter.labels.clone().into_iter().collect(),
        };
        let response = self
            .inner
            .list_pod_sandbox(request(
                api::ListPodSandboxRequest {
                    filter: Some(filter),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("ListPodSandbox"))?;
        Ok(response.into_inner().items)
    }

    /// Creates a container in the sandbox from an image already present
    /// (the runtime never pulls it here); returns the container's ID.
    #[instrument(skip(self, config, sandbox_config), fields(
        pod = %pod_key(sandbox_config),
        container = %config.metadata.as_ref().map(|m| m.name.as_str()).unwrap_or_default(),
    ))]
    pub async fn create_container(
        &mut self,
        pod_sandbox_id: &str,
        config: &api::ContainerConfig,
        sandbox_config: &api::PodSandboxConfig,
    ) -> Result<String> {
        let response = self
            .inner
            .create_container(request(
                api::CreateContainerRequest {
                    pod_sandbox_id: pod_sandbox_id.to_owned(),
                    config: Some(config.clone()),
                    sandbox_config: Some(sandbox_config.clone()),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("CreateContainer"))?;
        let id = response.into_inner().container_id;
        if id.is_empty() {
            return Err(CriError::MissingField {
                method: "CreateContainer",
                field: "container_id",
            });
        }
        debug!(container = %id, "container created");
        Ok(id)
    }

    #[instrument(skip(self))]
    pub async fn start_container(&mut self, container_id: &str) -> Result<()> {
        self.inner
            .start_container(request(
                api::StartContainerRequest {
                    container_id: container_id.to_owned(),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("StartContainer"))?;
        Ok(())
    }

    /// Stops the container: SIGTERM (or the image's stop signal), SIGKILL
    /// after `grace` (idempotent).
    #[instrument(skip(self))]
    pub async fn stop_container(&mut self, container_id: &str, grace: Duration) -> Result<()> {
        self.inner
            .stop_container(request(
                api::StopContainerRequest {
                    container_id: container_id.to_owned(),
                    timeout: whole_seconds(grace),
                },
                self.timeout + grace,
            ))
            .await
            .map_err(CriError::rpc("StopContainer"))?;
        Ok(())
    }

    /// Removes the container (stopping it first if it runs; idempotent).
    #[instrument(skip(self))]
    pub async fn remove_container(&mut self, container_id: &str) -> Result<()> {
        self.inner
            .remove_container(request(
                api::RemoveContainerRequest {
                    container_id: container_id.to_owned(),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("RemoveContainer"))?;
        Ok(())
    }

    /// The containers matching `filter`.
    #[instrument(skip(self))]
    pub async fn list_containers(
        &mut self,
        filter: &ContainerFilter,
    ) -> Result<Vec<api::Container>> {
        let filter = api::ContainerFilter {
            id: filter.id.clone().unwrap_or_default(),
            pod_sandbox_id: filter.pod_sandbox_id.clone().unwrap_or_default(),
            state: filter.state.map(|state| api::ContainerStateValue {
                state: state as i32,
            }),
            label_selector: filter.labels.clone().into_iter().collect(),
        };
        let response = self
            .inner
            .list_containers(request(
                api::ListContainersRequest {
                    filter: Some(filter),
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("ListContainers"))?;
        Ok(response.into_inner().containers)
    }

    /// The container's status.
    #[instrument(skip(self))]
    pub async fn container_status(&mut self, container_id: &str) -> Result<api::ContainerStatus> {
        Ok(self.container_status_verbose(container_id, false).await?.0)
    }

    /// The container's status and, with `verbose`, the runtime's extra
    /// information (containerd: `info` holds JSON with the pid and spec).
    #[instrument(skip(self))]
    pub async fn container_status_verbose(
        &mut self,
        container_id: &str,
        verbose: bool,
    ) -> Result<(
        api::ContainerStatus,
        std::collections::HashMap<String, String>,
    )> {
        let response = self
            .inner
            .container_status(request(
                api::ContainerStatusRequest {
                    container_id: container_id.to_owned(),
                    verbose,
                },
                self.timeout,
            ))
            .await
            .map_err(CriError::rpc("ContainerStatus"))?
            .into_inner();
        let status = response.status.ok_or(CriError::MissingField {
            method: "ContainerStatus",
            field: "status",
        })?;
        Ok((status, response.info))
    }

    /// Runs `cmd` in the container and waits up to `timeout` for it
    /// (`ExecSync`, what exec probes use). A non-zero exit code is an
    /// answer, not an error.
    #[instrument(skip(self))]
    pub async fn exec_sync(
        &mut self,
        container_id: &str,
        cmd: &[&str],
        timeout: Duration,
    ) -> Result<ExecOutput> {
        let response = self
            .inner
            .exec_sync(request(
                api::ExecSyncRequest {
                    container_id: container_id.to_owned(),
                    cmd: cmd.iter().map(|s| (*s).to_owned()).collect(),
                    timeout: whole_seconds(timeout),
                },
                self.timeout + timeout,
            ))
            .await
            .map_err(CriError::rpc("ExecSync"))?
            .into_inner();
        Ok(ExecOutput {
            stdout: response.stdout,
            stderr: response.stderr,
            exit_code: response.exit_code,
        })
    }
}
