//! One pod's worker: drives the pod toward its spec through CRI and
//! reports what it sees to the pod's `/status`, one sync at a time
//! (on every change of the pod and every resync interval).
//!
//! A sync of a live pod: the sandbox (pod cgroup first, then
//! `RunPodSandbox`; a ready one found is adopted), the init containers in
//! order, each to completion, then the app containers (restarted per
//! `restartPolicy` with a doubling back-off, 10 s to 5 min) — with their
//! probes kept in step (`probe.rs`; a container whose liveness or startup
//! probe failed is stopped with the grace period, then restarts per
//! policy) — then the status. A terminal pod's sandbox is stopped (its IP freed). A pod with
//! a `deletionTimestamp` is torn down (preStop hooks, `StopContainer`
//! within the grace period, `StopPodSandbox`, `RemovePodSandbox`, the pod
//! cgroup, its logs) and then deleted from the API with grace 0; a pod gone
//! from the API is torn down the same way.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
};
use tracing::{debug, info, warn};

use super::{
    Context, PodError,
    container::{self, EnvSources, FieldValues},
    probe::{self, PodProbes},
    sandbox::{self, POD_UID_LABEL, PodKey},
    status::{self, Observation, ObservedContainer},
};
use crate::{
    cgroups::{OnProcesses, ResourceOptions, pod_resources},
    cri::{ContainerFilter, SandboxFilter, api},
};

const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Grace for pods whose object is gone (nothing says how long).
const ORPHAN_GRACE: Duration = Duration::from_secs(2);

/// What the worker does after a sync.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// The pod is gone (torn down, and deleted from the API).
    Finished,
}

pub struct Worker {
    ctx: Arc<Context>,
    uid: String,
    /// Container name → not before (restart back-off).
    backoff: HashMap<String, Instant>,
    /// The probes of the running app containers.
    probes: PodProbes,
}

fn restart_delay(restarts: i32) -> Duration {
    let shift = u32::try_from(restarts.clamp(0, 16)).unwrap_or(0);
    BACKOFF_INITIAL
        .saturating_mul(1u32 << shift)
        .min(BACKOFF_MAX)
}

fn exited(s: &api::ContainerStatus) -> bool {
    s.state == api::ContainerState::ContainerExited as i32
}

/// The instance's id and start time, when it runs.
fn running_instance(s: &api::ContainerStatus) -> Option<(&str, SystemTime)> {
    (s.state == api::ContainerState::ContainerRunning as i32).then(|| {
        let nanos = u64::try_from(s.started_at).unwrap_or(0);
        (
            s.id.as_str(),
            SystemTime::UNIX_EPOCH + Duration::from_nanos(nanos),
        )
    })
}

fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

impl Worker {
    pub fn new(ctx: Arc<Context>, uid: String) -> Self {
        let network = probe::Network {
            netns: ctx.config.probe_netns.clone(),
        };
        let probes = PodProbes::new(ctx.cri.runtime.clone(), network);
        Self {
            ctx,
            uid,
            backoff: HashMap::new(),
            probes,
        }
    }

    /// Notified when a probe result of the pod changes.
    pub fn probes_changed(&self) -> Arc<tokio::sync::Notify> {
        self.probes.changed()
    }

    pub async fn sync(&mut self, pod: Option<&Pod>) -> Result<Flow, PodError> {
        match pod {
            None => {
                self.teardown(ORPHAN_GRACE, &[]).await?;
                Ok(Flow::Finished)
            }
            Some(pod) if pod.metadata.deletion_timestamp.is_some() => {
                let key = PodKey::of(pod).ok_or(PodError::InvalidPod)?;
                let grace = pod
                    .metadata
                    .deletion_grace_period_seconds
                    .or_else(|| pod.spec.as_ref()?.termination_grace_period_seconds)
                    .unwrap_or(30);
                let grace = Duration::from_secs(u64::try_from(grace).unwrap_or(0));
                let containers = pod
                    .spec
                    .as_ref()
                    .map(|s| s.containers.clone())
                    .unwrap_or_default();
                self.teardown(grace, &containers).await?;
                let _ =
                    std::fs::remove_dir_all(sandbox::pod_log_dir(&self.ctx.config.log_root, &key));
                let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(key.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                match api.delete(&key.name, &params).await {
                    Ok(_) => info!(pod = %key, "pod deleted"),
                    Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
                    Err(e) => return Err(PodError::Api(e)),
                }
                Ok(Flow::Finished)
            }
            Some(pod) => {
                self.sync_live(pod).await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// Stops and removes every container and sandbox of the pod, then its
    /// cgroup. `containers` are the spec's (for preStop hooks).
    async fn teardown(
        &mut self,
        grace: Duration,
        containers: &[Container],
    ) -> Result<(), PodError> {
        self.probes.clear();
        let mut runtime = self.ctx.cri.runtime.clone();
        let labels = [(POD_UID_LABEL, self.uid.as_str())];
        let running = runtime
            .list_containers(&ContainerFilter {
                state: Some(api::ContainerState::ContainerRunning),
                ..ContainerFilter::labels(labels)
            })
            .await?;
        let stops = running.into_iter().map(|c| {
            let mut runtime = self.ctx.cri.runtime.clone();
            let name = c
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            let pre_stop = containers.iter().find(|s| s.name == name).and_then(|s| {
                s.lifecycle
                    .as_ref()?
                    .pre_stop
                    .as_ref()?
                    .exec
                    .as_ref()?
                    .command
                    .clone()
            });
            async move {
                let started = Instant::now();
                if let Some(command) = pre_stop {
                    let command: Vec<&str> = command.iter().map(String::as_str).collect();
                    match runtime.exec_sync(&c.id, &command, grace).await {
                        Ok(out) if out.exit_code != 0 => {
                            warn!(
                                container = name,
                                code = out.exit_code,
                                "preStop hook failed"
                            )
                        }
                        Ok(_) => {}
                        Err(e) => warn!(container = name, "preStop hook: {e}"),
                    }
                }
                let left = grace.saturating_sub(started.elapsed());
                runtime.stop_container(&c.id, left).await
            }
        });
        for result in futures::future::join_all(stops).await {
            if let Err(e) = result
                && !e.is_not_found()
            {
                return Err(e.into());
            }
        }
        for sb in runtime
            .list_pod_sandboxes(&SandboxFilter::labels(labels))
            .await?
        {
            runtime.stop_pod_sandbox(&sb.id).await?;
            runtime.remove_pod_sandbox(&sb.id).await?;
            info!(uid = self.uid, sandbox = sb.id, "pod sandbox removed");
        }
        let cgroups = self.ctx.cgroups.clone();
        let uid = self.uid.clone();
        tokio::task::spawn_blocking(move || cgroups.remove_pod(&uid, OnProcesses::Kill))
            .await
            .map_err(|e| PodError::Join(e.to_string()))??;
        Ok(())
    }

    async fn sync_live(&mut self, pod: &Pod) -> Result<(), PodError> {
        let key = PodKey::of(pod).ok_or(PodError::InvalidPod)?;
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".to_owned());
        let mut runtime = self.ctx.cri.runtime.clone();
        let labels = [(POD_UID_LABEL, key.uid.as_str())];
        let mut sandboxes = runtime
            .list_pod_sandboxes(&SandboxFilter::labels(labels))
            .await?;
        sandboxes.sort_by_key(|s| s.created_at);
        let latest = sandboxes.last().cloned();
        let ready = |s: &api::PodSandbox| s.state == api::PodSandboxState::SandboxReady as i32;
        let old_phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default();
        let sandbox = match latest {
            Some(s) if ready(&s) => s,
            Some(s) if status::is_terminal(&old_phase) => s,
            other => {
                for old in &sandboxes {
                    runtime.stop_pod_sandbox(&old.id).await?;
                    runtime.remove_pod_sandbox(&old.id).await?;
                }
                let attempt = other
                    .and_then(|s| s.metadata)
                    .map(|m| m.attempt + 1)
                    .unwrap_or(0);
                self.run_sandbox(pod, &key, attempt).await?
            }
        };
        let sandbox_id = sandbox.id.clone();
        let sandbox_status = runtime.pod_sandbox_status(&sandbox_id).await?;
        let sandbox_ready = sandbox_status.state == api::PodSandboxState::SandboxReady as i32;
        let pod_ip = sandbox_status
            .network
            .as_ref()
            .map(|n| n.ip.clone())
            .filter(|ip| !ip.is_empty());
        let config = sandbox::sandbox_config(
            pod,
            &key,
            &self.ctx.config.log_root,
            &self
                .ctx
                .cgroups
                .find_pod(&key.uid)?
                .map(|p| p.cgroup_parent)
                .unwrap_or_default(),
            sandbox.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
        );
        // Every instance in this sandbox, by container name, newest last.
        let mut instances: HashMap<String, Vec<api::ContainerStatus>> = HashMap::new();
        for c in runtime
            .list_containers(&ContainerFilter::sandbox(&sandbox_id))
            .await?
        {
            let status = runtime.container_status(&c.id).await?;
            let name = status
                .metadata
                .as_ref()
                .map(|m| m.name.clone())
                .unwrap_or_default();
            instances.entry(name).or_default().push(status);
        }
        for list in instances.values_mut() {
            list.sort_by_key(|s| (s.metadata.as_ref().map(|m| m.attempt), s.created_at));
        }
        let oom_kills = self
            .ctx
            .cgroups
            .oom_events(&key.uid)
            .map(|e| e.oom_kills)
            .unwrap_or(0);
        let observe = |c: &Container, waiting: Option<(String, String)>| {
            let list = instances.get(&c.name).cloned().unwrap_or_default();
            let current = list.last().cloned();
            let oom_killed = current.as_ref().is_some_and(|s| {
                s.reason == "OOMKilled" || (exited(s) && s.exit_code == 137 && oom_kills > 0)
            });
            ObservedContainer {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                previous: list.len().checked_sub(2).and_then(|i| list.get(i).cloned()),
                restart_count: i32::try_from(list.len().saturating_sub(1)).unwrap_or(i32::MAX),
                current,
                waiting,
                oom_killed,
                probe: None,
            }
        };
        let fields_ip = pod_ip.clone();
        let mut obs = Observation {
            sandbox_ready,
            pod_ip: pod_ip.clone(),
            host_ip: self.ctx.host_ip.clone(),
            init: Vec::new(),
            containers: Vec::new(),
        };
        let terminal = status::is_terminal(&old_phase);
        // Init containers, in order, each to completion.
        let mut initialized = true;
        for c in spec.init_containers.iter().flatten() {
            let o = observe(c, None);
            let waiting = if !initialized || terminal || !sandbox_ready {
                None
            } else {
                // Not started yet, or failed and to be retried; a running
                // one or one done is left (`initialized` follows below).
                let start = match &o.current {
                    None => true,
                    Some(s) if exited(s) => {
                        s.exit_code != 0 && should_restart(&policy, s.exit_code)
                    }
                    Some(_) => false,
                };
                if start {
                    self.maybe_start(pod, &key, &sandbox_id, &config, c, &o, fields_ip.as_deref())
                        .await
                } else {
                    None
                }
            };
            if o.current
                .as_ref()
                .is_none_or(|s| !(exited(s) && s.exit_code == 0))
            {
                initialized = false;
            }
            obs.init.push(ObservedContainer { waiting, ..o });
        }
        let pod_grace = spec.termination_grace_period_seconds.unwrap_or(30);
        for c in &spec.containers {
            let mut o = observe(c, None);
            let running = o.current.as_ref().and_then(running_instance);
            let probe_ip = fields_ip.as_deref().or(self.ctx.host_ip.as_deref());
            let mut probe = self.probes.update(c, running, probe_ip);
            if let Some((id, _)) = running
                && let Some(why) = probe.as_ref().and_then(|p| p.failed.clone())
            {
                // The kubelet's kill of a container failing its liveness
                // (or startup) probe; the restart policy brings it back.
                let grace = PodProbes::termination_grace(c, &why)
                    .unwrap_or_else(|| Duration::from_secs(u64::try_from(pod_grace).unwrap_or(0)));
                info!(pod = %key, container = c.name, "Container {} {why}, will be restarted", c.name);
                let id = id.to_owned();
                self.probes.update(c, None, None);
                probe = None;
                runtime.stop_container(&id, grace).await?;
                o.current = Some(runtime.container_status(&id).await?);
            }
            let o = ObservedContainer { probe, ..o };
            let waiting = if !initialized || terminal || !sandbox_ready {
                None
            } else {
                match &o.current {
                    None => {
                        self.maybe_start(
                            pod,
                            &key,
                            &sandbox_id,
                            &config,
                            c,
                            &o,
                            fields_ip.as_deref(),
                        )
                        .await
                    }
                    Some(s) if exited(s) && should_restart(&policy, s.exit_code) => {
                        self.maybe_start(
                            pod,
                            &key,
                            &sandbox_id,
                            &config,
                            c,
                            &o,
                            fields_ip.as_deref(),
                        )
                        .await
                    }
                    Some(_) => None,
                }
            };
            obs.containers.push(ObservedContainer { waiting, ..o });
        }
        let now = status::now();
        let new_status = status::pod_status(pod, &obs, &now);
        let phase = new_status.phase.clone().unwrap_or_default();
        if status::is_terminal(&phase) && sandbox_ready {
            info!(pod = %key, phase, "pod finished: stopping its sandbox");
            runtime.stop_pod_sandbox(&sandbox_id).await?;
        }
        if pod.status.as_ref() != Some(&new_status) {
            debug!(pod = %key, phase, "writing pod status");
            let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &key.namespace);
            let patch = serde_json::json!({ "status": new_status });
            api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(PodError::Api)?;
        }
        Ok(())
    }

    async fn run_sandbox(
        &self,
        pod: &Pod,
        key: &PodKey,
        attempt: u32,
    ) -> Result<api::PodSandbox, PodError> {
        let (qos, resources) = pod_resources(pod, &ResourceOptions::default())?;
        let cgroups = self.ctx.cgroups.clone();
        let uid = key.uid.clone();
        let cgroup = tokio::task::spawn_blocking(move || cgroups.ensure_pod(&uid, qos, &resources))
            .await
            .map_err(|e| PodError::Join(e.to_string()))??;
        let config = sandbox::sandbox_config(
            pod,
            key,
            &self.ctx.config.log_root,
            &cgroup.cgroup_parent,
            attempt,
        );
        let log_dir = sandbox::pod_log_dir(&self.ctx.config.log_root, key);
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| PodError::Io(format!("creating {}: {e}", log_dir.display())))?;
        let mut runtime = self.ctx.cri.runtime.clone();
        let id = runtime.run_pod_sandbox(&config, "").await?;
        info!(pod = %key, sandbox = id, attempt, "pod sandbox running");
        let mut found = runtime
            .list_pod_sandboxes(&SandboxFilter {
                id: Some(id.clone()),
                ..SandboxFilter::default()
            })
            .await?;
        found.pop().ok_or(PodError::SandboxVanished(id))
    }

    /// Starts the container's next instance unless it is in back-off;
    /// returns why it waits, if it does.
    #[allow(clippy::too_many_arguments)]
    async fn maybe_start(
        &mut self,
        pod: &Pod,
        key: &PodKey,
        sandbox_id: &str,
        sandbox_config: &api::PodSandboxConfig,
        c: &Container,
        o: &ObservedContainer,
        pod_ip: Option<&str>,
    ) -> Option<(String, String)> {
        let restart_count = if o.current.is_some() {
            o.restart_count + 1
        } else {
            0
        };
        if let Some(current) = &o.current {
            let not_before = *self
                .backoff
                .entry(c.name.clone())
                .or_insert_with(|| Instant::now() + restart_delay(o.restart_count));
            if Instant::now() < not_before {
                let _ = current;
                return Some((
                    "CrashLoopBackOff".to_owned(),
                    format!(
                        "back-off {}s restarting failed container={} pod={key}",
                        restart_delay(o.restart_count).as_secs(),
                        c.name
                    ),
                ));
            }
            self.backoff.remove(&c.name);
        }
        match self
            .start_container(
                pod,
                key,
                sandbox_id,
                sandbox_config,
                c,
                restart_count,
                pod_ip,
            )
            .await
        {
            Ok(()) => None,
            Err(waiting) => {
                warn!(pod = %key, container = c.name, reason = waiting.0, "{}", waiting.1);
                Some(waiting)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_container(
        &self,
        pod: &Pod,
        key: &PodKey,
        sandbox_id: &str,
        sandbox_config: &api::PodSandboxConfig,
        c: &Container,
        restart_count: i32,
        pod_ip: Option<&str>,
    ) -> Result<(), (String, String)> {
        let image = c.image.clone().unwrap_or_default();
        let mut images = self.ctx.cri.images.clone();
        match images.image_status(&image).await {
            Ok(_) => {}
            Err(e) if e.is_image_not_present() => {
                return Err((
                    "ErrImageNeverPull".to_owned(),
                    format!("Container image \"{image}\" is not present with pull policy of Never"),
                ));
            }
            Err(e) => return Err(("ErrImageInspect".to_owned(), e.to_string())),
        }
        let sources = self
            .env_sources(&key.namespace, c)
            .await
            .map_err(|e| ("CreateContainerConfigError".to_owned(), e.to_string()))?;
        let fields = FieldValues {
            pod_ip,
            host_ip: self.ctx.host_ip.as_deref(),
            node_name: &self.ctx.node_name,
        };
        let envs = container::container_env(pod, key, c, &fields, &sources)
            .map_err(|e| ("CreateContainerConfigError".to_owned(), e.to_string()))?;
        let restart = u32::try_from(restart_count).unwrap_or(0);
        let config = container::container_config(key, c, restart, envs);
        let dir = sandbox::pod_log_dir(&self.ctx.config.log_root, key).join(&c.name);
        std::fs::create_dir_all(&dir).map_err(|e| {
            (
                "CreateContainerError".to_owned(),
                format!("{}: {e}", dir.display()),
            )
        })?;
        let mut runtime = self.ctx.cri.runtime.clone();
        let id = runtime
            .create_container(sandbox_id, &config, sandbox_config)
            .await
            .map_err(|e| ("CreateContainerError".to_owned(), e.to_string()))?;
        runtime
            .start_container(&id)
            .await
            .map_err(|e| ("RunContainerError".to_owned(), e.to_string()))?;
        info!(pod = %key, container = c.name, id, restart_count, "container started");
        Ok(())
    }

    /// The ConfigMaps and Secrets the container's env names (absent ones
    /// are left out; whether that is an error is the env's `optional`).
    async fn env_sources(&self, namespace: &str, c: &Container) -> Result<EnvSources, PodError> {
        let (config_maps, secrets) = container::env_references(c);
        let mut sources = EnvSources::default();
        let cm_api: Api<ConfigMap> = Api::namespaced(self.ctx.client.clone(), namespace);
        for name in config_maps {
            if let Some(cm) = cm_api.get_opt(&name).await.map_err(PodError::Api)? {
                sources.config_maps.insert(name, cm);
            }
        }
        let secret_api: Api<Secret> = Api::namespaced(self.ctx.client.clone(), namespace);
        for name in secrets {
            if let Some(s) = secret_api.get_opt(&name).await.map_err(PodError::Api)? {
                sources.secrets.insert(name, s);
            }
        }
        Ok(sources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_to_five_minutes() {
        assert_eq!(restart_delay(0), Duration::from_secs(10));
        assert_eq!(restart_delay(1), Duration::from_secs(20));
        assert_eq!(restart_delay(5), Duration::from_secs(300));
        assert_eq!(restart_delay(100), Duration::from_secs(300));
        assert!(should_restart("Always", 0));
        assert!(!should_restart("OnFailure", 0));
        assert!(should_restart("OnFailure", 2));
        assert!(!should_restart("Never", 2));
    }
}
