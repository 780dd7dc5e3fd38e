//! The pod's status as the kubelet reports it, as a pure function of what
//! the worker observed through CRI: phase, conditions, pod IPs, start
//! time and one status per container (state, restart count, image and
//! image ID, container ID, ready/started). A running container is started
//! and ready unless its probes (startup, readiness) say otherwise.
//!
//! Times are whole seconds (what the API keeps), and a condition keeps its
//! `lastTransitionTime` while its status does not change, so an unchanged
//! pod computes an unchanged status and is not written again.

use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};

use crate::cri::api;

/// What the worker knows of one container of the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedContainer {
    pub name: String,
    /// The spec's image reference.
    pub image: String,
    /// The latest instance, if one was created.
    pub current: Option<api::ContainerStatus>,
    /// The instance before it (the `lastState`).
    pub previous: Option<api::ContainerStatus>,
    /// Instances before the current one.
    pub restart_count: i32,
    /// Why there is no (new) instance: `(reason, message)`, such as
    /// `ErrImageNeverPull` or `CrashLoopBackOff`.
    pub waiting: Option<(String, String)>,
    /// The current instance was OOM-killed (CRI reason, or the pod
    /// cgroup's OOM-kill counter with a SIGKILL exit).
    pub oom_killed: bool,
    /// What the probes of the running instance say (`None`: no probes).
    pub probe: Option<super::probe::ProbeStatus>,
}

/// What the worker observed of the pod.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observation {
    pub sandbox_ready: bool,
    pub pod_ip: Option<String>,
    pub host_ip: Option<String>,
    pub init: Vec<ObservedContainer>,
    pub containers: Vec<ObservedContainer>,
}

pub const PHASE_PENDING: &str = "Pending";
pub const PHASE_RUNNING: &str = "Running";
pub const PHASE_SUCCEEDED: &str = "Succeeded";
pub const PHASE_FAILED: &str = "Failed";

pub fn is_terminal(phase: &str) -> bool {
    phase == PHASE_SUCCEEDED || phase == PHASE_FAILED
}

/// A CRI time (ns since the epoch; 0 = unset) as a whole-second API time.
pub fn time_from_nanos(nanos: i64) -> Option<Time> {
    if nanos <= 0 {
        return None;
    }
    Timestamp::from_second(nanos / 1_000_000_000).ok().map(Time)
}

/// Now, to the second.
pub fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn exited(status: &api::ContainerStatus) -> bool {
    status.state == api::ContainerState::ContainerExited as i32
}

fn running(status: &api::ContainerStatus) -> bool {
    status.state == api::ContainerState::ContainerRunning as i32
}

/// The reason of an exited instance: `OOMKilled`, CRI's, or by exit code.
pub fn terminated_reason(status: &api::ContainerStatus, oom_killed: bool) -> String {
    if oom_killed || status.reason == "OOMKilled" {
        "OOMKilled".to_owned()
    } else if !status.reason.is_empty() {
        status.reason.clone()
    } else if status.exit_code == 0 {
        "Completed".to_owned()
    } else {
        "Error".to_owned()
    }
}

fn state_of(status: &api::ContainerStatus, oom_killed: bool) -> ContainerState {
    let container_id = Some(format!("containerd://{}", status.id));
    if running(status) {
        ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time_from_nanos(status.started_at),
            }),
            ..Default::default()
        }
    } else if exited(status) {
        ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: status.exit_code,
                reason: Some(terminated_reason(status, oom_killed)),
                message: Some(status.message.clone()).filter(|m| !m.is_empty()),
                started_at: time_from_nanos(status.started_at),
                finished_at: time_from_nanos(status.finished_at),
                container_id,
                signal: None,
            }),
            ..Default::default()
        }
    } else {
        ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".to_owned()),
                message: None,
            }),
            ..Default::default()
        }
    }
}

/// One container's API status.
pub fn container_status(c: &ObservedContainer) -> ContainerStatus {
    let state = match (&c.waiting, &c.current) {
        (Some((reason, message)), _) => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: Some(message.clone()).filter(|m| !m.is_empty()),
            }),
            ..Default::default()
        },
        (None, Some(current)) => state_of(current, c.oom_killed),
        (None, None) => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some("ContainerCreating".to_owned()),
                message: None,
            }),
            ..Default::default()
        },
    };
    // In back-off the current instance is the last state.
    let last = if c.waiting.is_some() {
        c.current.as_ref()
    } else {
        c.previous.as_ref()
    };
    let is_running = c.waiting.is_none() && c.current.as_ref().is_some_and(running);
    let (started, ready) = c
        .probe
        .as_ref()
        .map_or((true, true), super::probe::ProbeStatus::started_ready);
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: c
            .current
            .as_ref()
            .map(|s| s.image_ref.clone())
            .unwrap_or_default(),
        container_id: c.current.as_ref().map(|s| format!("containerd://{}", s.id)),
        ready: is_running && ready,
        started: Some(is_running && started),
        restart_count: c.restart_count,
        last_state: last.map(|s| state_of(s, false)),
        state: Some(state),
        ..Default::default()
    }
}

/// The kubelet's `getPhase`.
pub fn phase(restart_policy: &str, obs: &Observation) -> &'static str {
    let mut init_pending = false;
    for c in &obs.init {
        match &c.current {
            Some(s) if exited(s) && s.exit_code == 0 && c.waiting.is_none() => {}
            Some(s) if exited(s) && restart_policy == "Never" => return PHASE_FAILED,
            _ => init_pending = true,
        }
    }
    if init_pending {
        return PHASE_PENDING;
    }
    let (mut running_n, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in &obs.containers {
        match (&c.waiting, &c.current) {
            (None, Some(s)) if running(s) => running_n += 1,
            (None, Some(s)) if exited(s) => {
                stopped += 1;
                if s.exit_code == 0 {
                    succeeded += 1;
                }
            }
            // Waiting to restart after an exit.
            (Some(_), Some(s)) if exited(s) => stopped += 1,
            _ => waiting += 1,
        }
    }
    if waiting > 0 {
        PHASE_PENDING
    } else if running_n > 0 {
        PHASE_RUNNING
    } else if stopped > 0 {
        match restart_policy {
            "Always" => PHASE_RUNNING,
            "OnFailure" if succeeded < stopped => PHASE_RUNNING,
            _ if succeeded < stopped => PHASE_FAILED,
            _ => PHASE_SUCCEEDED,
        }
    } else {
        PHASE_PENDING
    }
}

fn condition(
    old: &[PodCondition],
    type_: &str,
    status: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if status { "True" } else { "False" }.to_owned();
    let since = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_owned(),
        status,
        reason: reason.map(str::to_owned),
        message,
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// The pod's whole status from `obs`; `now` stamps new transitions and a
/// missing start time.
pub fn pod_status(pod: &Pod, obs: &Observation, now: &Time) -> PodStatus {
    let old = pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let restart_policy = pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".to_owned());
    let phase = phase(&restart_policy, obs);
    let terminal = is_terminal(phase);
    let init_statuses: Vec<ContainerStatus> = obs.init.iter().map(container_status).collect();
    let statuses: Vec<ContainerStatus> = obs.containers.iter().map(container_status).collect();
    let initialized = obs.init.iter().all(|c| {
        c.waiting.is_none()
            && c.current
                .as_ref()
                .is_some_and(|s| exited(s) && s.exit_code == 0)
    });
    let unready: Vec<&str> = statuses
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let ready = unready.is_empty() && !terminal;
    let (ready_reason, ready_message) = if ready {
        (None, None)
    } else if terminal {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let uninitialized: Vec<&str> = init_statuses
        .iter()
        .filter(|s| {
            s.state
                .as_ref()
                .and_then(|st| st.terminated.as_ref())
                .is_none_or(|t| t.exit_code != 0)
        })
        .map(|s| s.name.as_str())
        .collect();
    let conditions = vec![
        condition(
            &old_conditions,
            "PodReadyToStartContainers",
            obs.sandbox_ready,
            None,
            None,
            now,
        ),
        condition(
            &old_conditions,
            "Initialized",
            initialized,
            (!initialized).then_some("ContainersNotInitialized"),
            (!initialized).then(|| {
                format!(
                    "containers with incomplete status: [{}]",
                    uninitialized.join(" ")
                )
            }),
            now,
        ),
        condition(
            &old_conditions,
            "Ready",
            ready,
            ready_reason,
            ready_message.clone(),
            now,
        ),
        condition(
            &old_conditions,
            "ContainersReady",
            ready,
            ready_reason,
            ready_message,
            now,
        ),
        condition(&old_conditions, "PodScheduled", true, None, None, now),
    ];
    // A stopped sandbox (terminal pod) keeps the address it had.
    let pod_ip = obs.pod_ip.clone().or(old.pod_ip.clone());
    PodStatus {
        phase: Some(phase.to_owned()),
        conditions: Some(conditions),
        host_ip: obs.host_ip.clone(),
        host_ips: obs.host_ip.clone().map(|ip| vec![HostIP { ip }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: old.start_time.clone().or_else(|| Some(now.clone())),
        qos_class: crate::cgroups::resources::pod_qos(pod)
            .ok()
            .map(|q| q.as_str().to_owned()),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        container_statuses: Some(statuses),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cri(id: &str, state: api::ContainerState, exit_code: i32) -> api::ContainerStatus {
        api::ContainerStatus {
            id: id.to_owned(),
            state: state as i32,
            exit_code,
            started_at: 1_700_000_000_123_456_789,
            finished_at: if state == api::ContainerState::ContainerExited {
                1_700_000_010_000_000_000
            } else {
                0
            },
            image_ref: "sha256:abc".to_owned(),
            ..Default::default()
        }
    }

    fn observed(name: &str, current: Option<api::ContainerStatus>) -> ObservedContainer {
        ObservedContainer {
            name: name.to_owned(),
            image: "keelson.local/busybox:1".to_owned(),
            current,
            previous: None,
            restart_count: 0,
            waiting: None,
            oom_killed: false,
            probe: None,
        }
    }

    fn pod(policy: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c"}]}
        }))
        .expect("pod")
    }

    #[test]
    fn running_pod_is_ready_with_its_ip() {
        let obs = Observation {
            sandbox_ready: true,
            pod_ip: Some("10.244.0.2".to_owned()),
            host_ip: Some("192.0.2.1".to_owned()),
            init: vec![],
            containers: vec![observed(
                "c",
                Some(cri("abc", api::ContainerState::ContainerRunning, 0)),
            )],
        };
        let now = now();
        let status = pod_status(&pod("Always"), &obs, &now);
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.pod_ip.as_deref(), Some("10.244.0.2"));
        let conditions = status.conditions.clone().unwrap_or_default();
        for c in &conditions {
            assert_eq!(c.status, "True", "{c:?}");
        }
        let cs = &status.container_statuses.clone().unwrap_or_default()[0];
        assert!(cs.ready);
        assert_eq!(cs.container_id.as_deref(), Some("containerd://abc"));
        assert_eq!(cs.image_id, "sha256:abc");
        let started = cs
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.clone());
        assert_eq!(started.map(|t| t.0.as_second()), Some(1_700_000_000));

        // Recomputing with the status written keeps every transition time.
        let mut written = pod("Always");
        written.status = Some(status.clone());
        let later = Time(Timestamp::from_second(2_000_000_000).expect("time"));
        assert_eq!(pod_status(&written, &obs, &later), status);
    }

    #[test]
    fn probes_decide_ready_and_started() {
        let mut c = observed(
            "c",
            Some(cri("abc", api::ContainerState::ContainerRunning, 0)),
        );
        c.probe = Some(super::super::probe::ProbeStatus::initial(true, true));
        let obs = Observation {
            sandbox_ready: true,
            containers: vec![c.clone()],
            ..Default::default()
        };
        let status = pod_status(&pod("Always"), &obs, &now());
        let cs = &status.container_statuses.clone().unwrap_or_default()[0];
        assert_eq!((cs.started, cs.ready), (Some(false), false));
        let ready = status
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        c.probe = Some(super::super::probe::ProbeStatus::initial(false, false));
        let cs = container_status(&c);
        assert_eq!((cs.started, cs.ready), (Some(true), true));
    }

    #[test]
    fn phases_follow_the_restart_policy() {
        let exit = |code| {
            vec![observed(
                "c",
                Some(cri("x", api::ContainerState::ContainerExited, code)),
            )]
        };
        let obs = |containers| Observation {
            containers,
            ..Default::default()
        };
        assert_eq!(phase("Never", &obs(exit(3))), "Failed");
        assert_eq!(phase("Never", &obs(exit(0))), "Succeeded");
        assert_eq!(phase("OnFailure", &obs(exit(0))), "Succeeded");
        assert_eq!(phase("OnFailure", &obs(exit(1))), "Running");
        assert_eq!(phase("Always", &obs(exit(0))), "Running");
        assert_eq!(phase("Always", &obs(vec![observed("c", None)])), "Pending");
        let mut init = observed(
            "i",
            Some(cri("i", api::ContainerState::ContainerRunning, 0)),
        );
        let pending = Observation {
            init: vec![init.clone()],
            containers: exit(0),
            ..Default::default()
        };
        assert_eq!(phase("Never", &pending), "Pending");
        init.current = Some(cri("i", api::ContainerState::ContainerExited, 1));
        let failed = Observation {
            init: vec![init],
            containers: vec![],
            ..Default::default()
        };
        assert_eq!(phase("Never", &failed), "Failed");
    }

    #[test]
    fn terminated_reasons() {
        let mut s = cri("x", api::ContainerState::ContainerExited, 3);
        assert_eq!(terminated_reason(&s, false), "Error");
        assert_eq!(terminated_reason(&s, true), "OOMKilled");
        s.exit_code = 0;
        assert_eq!(terminated_reason(&s, false), "Completed");
        let failed = Observation {
            containers: vec![observed(
                "c",
                Some(cri("x", api::ContainerState::ContainerExited, 3)),
            )],
            ..Default::default()
        };
        let status = pod_status(&pod("Never"), &failed, &now());
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let cs = &status.container_statuses.unwrap_or_default()[0];
        let t = cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.clone())
            .expect("terminated");
        assert_eq!((t.exit_code, t.reason.as_deref()), (3, Some("Error")));
        assert!(!cs.ready);
    }

    #[test]
    fn missing_images_wait_with_err_image_never_pull() {
        let mut c = observed("c", None);
        c.waiting = Some(("ErrImageNeverPull".to_owned(), "not present".to_owned()));
        let cs = container_status(&c);
        let w = cs.state.and_then(|s| s.waiting).expect("waiting");
        assert_eq!(w.reason.as_deref(), Some("ErrImageNeverPull"));
        let obs = Observation {
            containers: vec![c],
            ..Default::default()
        };
        assert_eq!(phase("Always", &obs), "Pending");
    }
}
