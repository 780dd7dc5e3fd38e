//! `keelson-node kubelet` as users run it, against a real `keelson-server`:
//! the Node it registers (resources, addresses, node info, pod CIDR,
//! conditions) compared with what the host itself says, `kubectl get
//! nodes` (`registration.rs`); the heartbeat Lease, its renewals, its
//! re-creation and its end after SIGKILL (`lease.rs`); a restart or a
//! Node created beforehand adopted, not replaced (`restart.rs`); conditions
//! changing at once and transition times (`status.rs`).
//!
//! Every test starts its own server and agents with a unique node name and
//! a small tmpfs as root dir (so DiskPressure never follows the host's own
//! disk); the agents run with 1 s status and lease intervals so the suite
//! stays fast. Agents are SIGKILLed, tmpfs unmounted on drop (needs root).

mod lease;
mod registration;
mod restart;
mod status;

use std::{
    ffi::OsString,
    future::Future,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::{
    api::{
        coordination::v1::Lease,
        core::v1::{Node, NodeCondition},
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use keelson_e2e::{
    netns::NetNs,
    server::{ServerProcess, tail},
    tmpfs::Tmpfs,
};
use kube::{Api, Client};

/// A kube-rs client from the server's admin kubeconfig.
async fn client(server: &ServerProcess) -> Result<Client> {
    Ok(keelson_node::proxy::watch::client_from_kubeconfig(&server.kubeconfig()).await?)
}

fn node_binary() -> Result<PathBuf> {
    keelson_e2e::server::workspace_binary("keelson-node", "KEELSON_NODE_BIN", "keelson-node")
}

/// Size of the tmpfs each test gives its agents as root dir: the node's
/// disk signals then never depend on how full the host's disk is.
const ROOT_FS_SIZE: u64 = 64 << 20;

/// A fresh root filesystem for a test's agents.
fn root_fs() -> Result<Tmpfs> {
    Tmpfs::new(ROOT_FS_SIZE)
}

/// The root dir the agents of a test use: `kubelet/` on `root` (the agent
/// creates it).
fn root_dir(root: &Tmpfs) -> PathBuf {
    root.path().join("kubelet")
}

/// The flags every test agent gets: its node name, 1 s status and lease
/// periods, the root dir on `root`.
fn fast_args(root: &Tmpfs, node_name: &str) -> Vec<OsString> {
    let mut args: Vec<OsString> = [
        "--node-name",
        node_name,
        "--node-status-update-frequency",
        "1s",
        "--lease-renew-interval",
        "1s",
        "--log",
        "info,keelson_node=debug",
        "--root-dir",
    ]
    .map(OsString::from)
    .into();
    args.push(root_dir(root).into());
    args
}

/// A `keelson-node kubelet` process (optionally inside a network
/// namespace, entered with `nsenter --net`), its stderr in `log`.
/// SIGKILLed on drop.
struct Kubelet {
    child: Option<Child>,
    log: PathBuf,
}

impl Kubelet {
    /// `keelson-node kubelet --kubeconfig <server's> <args>`.
    fn start(server: &ServerProcess, args: &[OsString]) -> Result<Self> {
        Self::spawn(None, server, args)
    }

    /// The same inside `netns` (where `server` must run too).
    fn start_in(netns: &NetNs, server: &ServerProcess, args: &[OsString]) -> Result<Self> {
        Self::spawn(Some(netns), server, args)
    }

    fn spawn(netns: Option<&NetNs>, server: &ServerProcess, args: &[OsString]) -> Result<Self> {
        let log = server
            .data_dir()
            .join(format!("kubelet-{}.log", keelson_e2e::unique_name('l')));
        let file = std::fs::File::create(&log)?;
        let mut cmd = match netns {
            Some(ns) => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net={}", ns.path().display()))
                    .arg("--")
                    .arg(node_binary()?);
                cmd
            }
            None => Command::new(node_binary()?),
        };
        let child = cmd
            .arg("kubelet")
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .args(args)
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .context("starting keelson-node kubelet")?;
        Ok(Self {
            child: Some(child),
            log,
        })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails (with the log) if the agent has exited.
    fn check_running(&mut self) -> Result<()> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait()?
        {
            bail!(
                "the kubelet exited ({status}); its log:\n{}",
                tail(&self.log(), 40)
            );
        }
        Ok(())
    }

    /// Sends SIGTERM and waits (up to 5 s) for the exit.
    fn terminate(&mut self) -> Result<ExitStatus> {
        let mut child = self
            .child
            .take()
            .context("the kubelet was stopped already")?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "the kubelet ignored SIGTERM for 5s; its log:\n{}",
                    tail(&self.log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `probe` every 100 ms for up to `timeout` until it returns
/// `Some`; fails with `what`, the last error and the agent's log.
async fn wait_for<T, F, Fut>(
    agent: &mut Kubelet,
    what: &str,
    timeout: Duration,
    mut probe: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        agent.check_running()?;
        if Instant::now() > deadline {
            bail!(
                "no {what} within {timeout:?} (last error: {last_error:?}); kubelet log:\n{}",
                tail(&agent.log(), 40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn condition<'a>(node: &'a Node, kind: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// Waits until the Node exists with `Ready=True`.
async fn wait_ready(agent: &mut Kubelet, client: &Client, name: &str) -> Result<Node> {
    let api = Api::<Node>::all(client.clone());
    wait_for(agent, "Ready node", Duration::from_secs(20), || async {
        Ok(api
            .get_opt(name)
            .await?
            .filter(|n| condition(n, "Ready").is_some_and(|c| c.status == "True")))
    })
    .await
}

/// Waits until `kube-node-lease/<name>` exists.
async fn wait_lease(agent: &mut Kubelet, client: &Client, name: &str) -> Result<Lease> {
    let api = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    wait_for(agent, "node lease", Duration::from_secs(20), || async {
        Ok(api.get_opt(name).await?)
    })
    .await
}

/// A condition's `(lastHeartbeatTime, lastTransitionTime)`.
fn times(node: &Node, kind: &str) -> Result<(Timestamp, Timestamp)> {
    let c = condition(node, kind).with_context(|| format!("no {kind} condition"))?;
    let time = |t: &Option<Time>| t.as_ref().map(|t| t.0).context("missing time");
    Ok((
        time(&c.last_heartbeat_time)?,
        time(&c.last_transition_time)?,
    ))
}

/// A Lease's `spec.renewTime`.
fn renew_time(lease: &Lease) -> Result<Timestamp> {
    Ok(lease
        .spec
        .as_ref()
        .and_then(|s| s.renew_time.as_ref())
        .context("no renewTime")?
        .0)
}
