//! containerd as Keelson runs it: the configuration (rendered from paths,
//! one function shared by the node agent, `cargo xtask up` and the tests)
//! and starting an instance with it.
//!
//! Each instance is independent — its own `root`, `state` and gRPC socket —
//! so several can run on one host (one per test, one per node namespace).
//! What the configuration pins, and why:
//! - the CRI plugin's `sandbox_image` is Keelson's local pause image; no
//!   registry is reachable, so it must be imported, never pulled;
//! - `restrict_oom_score_adj = true`: processes here lack
//!   CAP_SYS_RESOURCE, and the sandbox's default -998 makes runc fail;
//! - the cgroupfs driver (`SystemdCgroup = false`): there is no systemd;
//! - the overlayfs snapshotter; CNI binaries and configuration in Keelson's
//!   own directories; runc's state under this instance's `state`.
//!
//! Stopping containers, shims and mounts is the caller's business (the
//! kubelet, or a test fixture): this module only starts and stops the
//! daemon.

use std::{
    fmt::Write as _,
    fs::File,
    io,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use thiserror::Error;

/// The sandbox ("pause") image every pod's sandbox runs.
pub const SANDBOX_IMAGE: &str = crate::images::PAUSE_IMAGE;
/// The containerd namespace the CRI plugin keeps its images and
/// containers in.
pub const CRI_NAMESPACE: &str = "k8s.io";
/// The containerd binary (Debian's package).
pub const CONTAINERD: &str = "/usr/bin/containerd";
/// util-linux's `nsenter`, for [`Containerd::start_in_netns`].
pub const NSENTER: &str = "/usr/bin/nsenter";

/// The paths and images one containerd instance runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerdConfig {
    /// Persistent state: content store, snapshots, metadata.
    pub root: PathBuf,
    /// Runtime state: shims' and runc's state, sandboxes' /dev/shm.
    pub state: PathBuf,
    /// The gRPC socket (containerd's API and the CRI services).
    pub address: PathBuf,
    /// Where the CRI plugin looks for CNI plugin binaries.
    pub cni_bin_dir: PathBuf,
    /// Where the CRI plugin looks for the CNI network configuration.
    pub cni_conf_dir: PathBuf,
    pub sandbox_image: String,
    /// containerd's log level (`info`, `debug`, …).
    pub log_level: String,
}

impl ContainerdConfig {
    /// A node's instance: `/var/lib/keelson/containerd`,
    /// `/run/keelson/containerd`, the socket
    /// `/run/keelson/containerd/containerd.sock`, CNI in
    /// `/opt/keelson/cni/bin` and `/etc/keelson/cni/net.d`.
    pub fn node() -> Self {
        Self {
            root: "/var/lib/keelson/containerd".into(),
            state: "/run/keelson/containerd".into(),
            address: DEFAULT_ADDRESS.into(),
            cni_bin_dir: "/opt/keelson/cni/bin".into(),
            cni_conf_dir: "/etc/keelson/cni/net.d".into(),
            sandbox_image: SANDBOX_IMAGE.to_owned(),
            log_level: "info".to_owned(),
        }
    }

    /// An instance whose every path is under `dir` (a test's, or one node
    /// namespace's): `dir/root`, `dir/state`, `dir/containerd.sock`,
    /// `dir/cni/bin`, `dir/cni/net.d`.
    pub fn under(dir: &Path) -> Self {
        Self {
            root: dir.join("root"),
            state: dir.join("state"),
            address: dir.join("containerd.sock"),
            cni_bin_dir: dir.join("cni/bin"),
            cni_conf_dir: dir.join("cni/net.d"),
            sandbox_image: SANDBOX_IMAGE.to_owned(),
            log_level: "info".to_owned(),
        }
    }

    /// The CRI endpoint, as `--container-runtime-endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.address.display())
    }

    /// containerd's `config.toml` (version 2) for these paths.
    pub fn render(&self) -> String {
        let cri = "plugins.\"io.containerd.grpc.v1.cri\"";
        let runc = format!("{cri}.containerd.runtimes.runc");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# containerd configuration rendered by keelson-runtime; do not edit.\n\
             version = 2\n\
             root = {}\n\
             state = {}\n\
             oom_score = 0\n\
             # Snapshotters this host has no use for (and whose probes only log noise).\n\
             disabled_plugins = [\n  \"io.containerd.snapshotter.v1.aufs\",\n  \"io.containerd.snapshotter.v1.btrfs\",\n  \"io.containerd.snapshotter.v1.devmapper\",\n  \"io.containerd.snapshotter.v1.zfs\",\n]\n\
             \n\
             [grpc]\n  address = {}\n\
             \n\
             [debug]\n  level = {}\n\
             \n\
             [plugins.\"io.containerd.internal.v1.opt\"]\n  path = {}\n\
             \n\
             [{cri}]\n  \
               sandbox_image = {}\n  \
               # Needed here: no CAP_SYS_RESOURCE, so runc cannot apply -998.\n  \
               restrict_oom_score_adj = true\n  \
               systemd_cgroup = false\n  \
               disable_tcp_service = true\n  \
               stream_server_address = \"127.0.0.1\"\n  \
               stream_server_port = \"0\"\n  \
               enable_selinux = false\n\
             \n\
             [{cri}.cni]\n  \
               bin_dir = {}\n  \
               conf_dir = {}\n  \
               max_conf_num = 1\n\
             \n\
             [{cri}.containerd]\n  \
               snapshotter = \"overlayfs\"\n  \
               default_runtime_name = \"runc\"\n  \
               discard_unpacked_layers = false\n\
             \n\
             [{runc}]\n  \
               runtime_type = \"io.containerd.runc.v2\"\n\
             \n\
             [{runc}.options]\n  \
               # The cgroupfs driver: Keelson manages cgroups itself, without systemd.\n  \
               SystemdCgroup = false\n  \
               Root = {}\n\
             \n\
             [{cri}.registry]\n  \
               # No registry is reachable from Keelson's nodes: images are imported.\n  \
               config_path = \"\"",
            toml_string(&self.root),
            toml_string(&self.state),
            toml_string(&self.address),
            toml_string(Path::new(&self.log_level)),
            toml_string(&self.root.join("opt")),
            toml_string(Path::new(&self.sandbox_image)),
            toml_string(&self.cni_bin_dir),
            toml_string(&self.cni_conf_dir),
            toml_string(&self.state.join("runc")),
        );
        out
    }
}

/// The node's containerd socket.
pub const DEFAULT_ADDRESS: &str = "/run/keelson/containerd/containerd.sock";
/// The same socket as a CRI endpoint (`--container-runtime-endpoint`).
pub const DEFAULT_ENDPOINT: &str = "unix:///run/keelson/containerd/containerd.sock";

/// A TOML basic string.
fn toml_string(value: &Path) -> String {
    let value = value.to_string_lossy();
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[derive(Debug, Error)]
pub enum ContainerdError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("containerd exited ({status}) while starting; its log ({log}):\n{tail}")]
    Exited {
        status: std::process::ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("containerd did not serve {socket} within {seconds}s; its log ({log}):\n{tail}")]
    Timeout {
        socket: PathBuf,
        seconds: u64,
        log: PathBuf,
        tail: String,
    },
}

/// A running containerd started by [`Containerd::start`]. Dropping it
/// stops the daemon (SIGTERM, then SIGKILL); the shims of running
/// containers outlive it, as with any containerd.
#[derive(Debug)]
pub struct Containerd {
    child: Option<Child>,
    config: ContainerdConfig,
    config_path: PathBuf,
    log_path: PathBuf,
}

impl Containerd {
    /// Creates the instance's directories, writes its configuration to
    /// `config_path`, starts `containerd --config config_path` with its
    /// output appended to `log_path`, and waits until its socket accepts
    /// connections.
    pub fn start(
        config: &ContainerdConfig,
        config_path: &Path,
        log_path: &Path,
        timeout: Duration,
    ) -> Result<Self, ContainerdError> {
        Self::start_inner(config, config_path, log_path, timeout, None)
    }

    /// As [`Containerd::start`], with containerd running inside the network
    /// namespace at `netns` (`nsenter --net=<netns>`, which execs it, so the
    /// child is containerd itself). The CNI plugins it runs, and so the
    /// node-side ends of the pods' links, land in that namespace; so do
    /// host-network pods.
    pub fn start_in_netns(
        config: &ContainerdConfig,
        config_path: &Path,
        log_path: &Path,
        timeout: Duration,
        netns: &Path,
    ) -> Result<Self, ContainerdError> {
        Self::start_inner(config, config_path, log_path, timeout, Some(netns))
    }

    fn start_inner(
        config: &ContainerdConfig,
        config_path: &Path,
        log_path: &Path,
        timeout: Duration,
        netns: Option<&Path>,
    ) -> Result<Self, ContainerdError> {
        let io = |context: String| move |source| ContainerdError::Io { context, source };
        for dir in [
            &config.root,
            &config.state,
            &config.cni_bin_dir,
            &config.cni_conf_dir,
        ] {
            std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        }
        if let Some(parent) = config.address.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io(format!("creating {}", parent.display())))?;
        }
        std::fs::write(config_path, config.render())
            .map_err(io(format!("writing {}", config_path.display())))?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(io(format!("opening {}", log_path.display())))?;
        let log_err = log
            .try_clone()
            .map_err(io(format!("opening {}", log_path.display())))?;
        let mut command = match netns {
            Some(netns) => {
                let mut command = Command::new(NSENTER);
                command
                    .arg(format!("--net={}", netns.display()))
                    .arg("--")
                    .arg(CONTAINERD);
                command
            }
            None => Command::new(CONTAINERD),
        };
        let child = command
            .arg("--config")
            .arg(config_path)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(io(format!("starting {CONTAINERD}")))?;
        let mut containerd = Self {
            child: Some(child),
            config: config.clone(),
            config_path: config_path.to_path_buf(),
            log_path: log_path.to_path_buf(),
        };
        containerd.wait_serving(timeout)?;
        Ok(containerd)
    }

    fn wait_serving(&mut self, timeout: Duration) -> Result<(), ContainerdError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().map_err(|source| ContainerdError::Io {
                    context: "polling containerd".to_owned(),
                    source,
                })?
            {
                self.child = None;
                return Err(ContainerdError::Exited {
                    status,
                    log: self.log_path.clone(),
                    tail: self.log_tail(30),
                });
            }
            if UnixStream::connect(&self.config.address).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ContainerdError::Timeout {
                    socket: self.config.address.clone(),
                    seconds: timeout.as_secs(),
                    log: self.log_path.clone(),
                    tail: self.log_tail(30),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn config(&self) -> &ContainerdConfig {
        &self.config
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The daemon's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The last `lines` lines of the daemon's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, up to `grace` for containerd to exit, then SIGKILL; reaps it.
    pub fn stop(&mut self, grace: Duration) -> io::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on our own child, which we have not reaped.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill()?;
        child.wait().map(drop)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.stop(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rendered_config_pins_what_keelson_needs() {
        let config = ContainerdConfig::under(Path::new("/tmp/kt \"x\""));
        let toml = config.render();
        for line in [
            "version = 2",
            r#"root = "/tmp/kt \"x\"/root""#,
            r#"state = "/tmp/kt \"x\"/state""#,
            r#"address = "/tmp/kt \"x\"/containerd.sock""#,
            r#"sandbox_image = "keelson.local/pause:1""#,
            "restrict_oom_score_adj = true",
            r#"bin_dir = "/tmp/kt \"x\"/cni/bin""#,
            r#"conf_dir = "/tmp/kt \"x\"/cni/net.d""#,
            "SystemdCgroup = false",
            r#"snapshotter = "overlayfs""#,
            r#"runtime_type = "io.containerd.runc.v2""#,
            r#"Root = "/tmp/kt \"x\"/state/runc""#,
        ] {
            assert!(
                toml.lines().any(|l| l.trim() == line),
                "missing {line:?} in:\n{toml}"
            );
        }
        assert_eq!(config.endpoint(), "unix:///tmp/kt \"x\"/containerd.sock");
        let node = ContainerdConfig::node();
        assert_eq!(node.endpoint(), DEFAULT_ENDPOINT);
    }
}
