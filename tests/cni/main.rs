//! `keelson-cni` as a container runtime runs it: the real binary, the CNI
//! environment, the config on stdin, the result on stdout — with the
//! *node* side inside a test network namespace (`nsenter --net=…`, so no
//! link or route ever lands in the host's namespace) and every pod in a
//! further test namespace. The IPAM store lives in a temporary `dataDir`.
//!
//! `pods.rs`: ADD results, pod↔pod and node→pod TCP, CHECK, DEL;
//! `ipam.rs`: concurrent ADDs, exhaustion and reuse; `errors.rs`: VERSION,
//! older spec versions and the error codes of bad input.
//!
//! Needs root and the `keelson-cni` binary (`cargo build -p keelson-node
//! --bin keelson-cni`, which `cargo xtask test` does; or `$KEELSON_CNI_BIN`).

mod errors;
mod ipam;
mod pods;

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use ipnet::Ipv4Net;
use keelson_e2e::{netns::NetNs, unique_name};
use serde_json::{Value, json};

/// The plugin binary under test.
fn plugin() -> Result<PathBuf> {
    keelson_e2e::server::workspace_binary("keelson-cni", "KEELSON_CNI_BIN", "keelson-node")
}

/// A node: a network namespace the plugin runs in, a temporary data dir
/// and a pod CIDR. Dropping it deletes the namespace (and with it every
/// node-side veth and so every pair) and the data dir.
struct Node {
    ns: NetNs,
    data: tempfile::TempDir,
    cidr: Ipv4Net,
    bin: PathBuf,
}

/// One plugin run.
#[derive(Debug)]
struct Outcome {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Outcome {
    /// The stdout of a successful run, as JSON.
    fn json(&self) -> Result<Value> {
        ensure!(
            self.success,
            "plugin failed: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        serde_json::from_str(&self.stdout)
            .with_context(|| format!("plugin stdout is not JSON: {:?}", self.stdout))
    }

    /// A successful run with nothing on stdout (DEL, CHECK).
    fn ok_empty(&self) -> Result<()> {
        ensure!(
            self.success && self.stdout.trim().is_empty(),
            "expected success with empty stdout, got success={} stdout={:?} stderr={}",
            self.success,
            self.stdout,
            self.stderr
        );
        Ok(())
    }

    /// The CNI error of a failed run: checks its shape and returns it.
    fn error(&self) -> Result<Value> {
        ensure!(
            !self.success,
            "expected a failure, the plugin succeeded: {}",
            self.stdout
        );
        ensure!(
            !self.stderr.contains("panicked"),
            "the plugin panicked: {}",
            self.stderr
        );
        let v: Value = serde_json::from_str(self.stdout.trim())
            .with_context(|| format!("error output is not one JSON object: {:?}", self.stdout))?;
        ensure!(v["cniVersion"].is_string(), "no cniVersion in {v}");
        ensure!(v["code"].is_u64(), "no numeric code in {v}");
        ensure!(
            v["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "no msg in {v}"
        );
        let keys: Vec<&str> = v
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        ensure!(
            keys.iter()
                .all(|k| ["cniVersion", "code", "msg", "details"].contains(k)),
            "unexpected fields in {v}"
        );
        Ok(v)
    }

    fn code(&self) -> Result<u64> {
        self.error()?["code"]
            .as_u64()
            .context("code is not a number")
    }
}

/// A pod sandbox: its own network namespace and a container id.
struct Pod {
    ns: NetNs,
    id: String,
}

impl Pod {
    fn new() -> Result<Self> {
        Ok(Self {
            ns: NetNs::new()?,
            id: format!("{}-sandbox", unique_name('c')),
        })
    }

    fn netns(&self) -> PathBuf {
        self.ns.path()
    }
}

impl Node {
    fn new(cidr: &str) -> Result<Self> {
        Ok(Self {
            ns: NetNs::new()?,
            data: tempfile::tempdir()?,
            cidr: cidr.parse()?,
            bin: plugin()?,
        })
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + 1)
    }

    /// The network config a runtime would pass, in `version`.
    fn config_v(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": "keelson",
            "type": "keelson-cni",
            "podCIDR": self.cidr.to_string(),
            "mtu": 1400,
            "dataDir": self.data.path(),
        })
    }

    fn config(&self) -> Value {
        self.config_v("1.0.0")
    }

    /// The IPAM directory of the test network.
    fn ipam_dir(&self) -> PathBuf {
        self.data.path().join("networks/keelson")
    }

    /// The addresses with an allocation file.
    fn allocated(&self) -> Result<Vec<Ipv4Addr>> {
        let dir = self.ipam_dir();
        if !dir.exists() {
            return Ok(Vec::new());
        }
        let mut ips: Vec<Ipv4Addr> = std::fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        ips.sort();
        Ok(ips)
    }

    /// The plugin command inside the node namespace, with exactly `env`.
    fn command(&self, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", self.ns.path().display()))
            .arg(&self.bin)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    fn spawn(&self, env: &[(&str, &str)], stdin: &str) -> Result<Child> {
        let mut child = self.command(env).spawn().context("running nsenter")?;
        let mut input = child.stdin.take().context("plugin stdin")?;
        // A plugin that rejects its environment exits before reading stdin
        // (as libcni's skel does); the runtime ignores the broken pipe.
        match input.write_all(stdin.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
        drop(input);
        Ok(child)
    }

    fn run(&self, env: &[(&str, &str)], stdin: &str) -> Result<Outcome> {
        wait(self.spawn(env, stdin)?)
    }

    /// The full runtime environment of `command` for `pod`.
    fn env<'a>(command: &'a str, id: &'a str, netns: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        let mut env = vec![
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", id),
            ("CNI_IFNAME", "eth0"),
            ("CNI_PATH", "/opt/cni/bin"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0",
            ),
        ];
        if let Some(netns) = netns {
            env.push(("CNI_NETNS", netns));
        }
        env
    }

    fn cmd(&self, command: &str, pod: &Pod, config: &Value) -> Result<Outcome> {
        let netns = pod.netns().display().to_string();
        self.run(
            &Self::env(command, &pod.id, Some(&netns)),
            &config.to_string(),
        )
    }

    /// ADD with the 1.0.0 config; fails unless the plugin succeeds.
    fn add(&self, pod: &Pod) -> Result<Value> {
        self.cmd("ADD", pod, &self.config())?.json()
    }

    /// DEL with the 1.0.0 config (`netns` as the runtime knows it).
    fn del(&self, id: &str, netns: Option<&Path>) -> Result<Outcome> {
        let netns = netns.map(|p| p.display().to_string());
        self.run(
            &Self::env("DEL", id, netns.as_deref()),
            &self.config().to_string(),
        )
    }

    /// CHECK as runtimes send it: the config with the ADD result as
    /// `prevResult`.
    fn check(&self, pod: &Pod, prev: &Value) -> Result<Outcome> {
        let mut config = self.config();
        config["prevResult"] = prev.clone();
        self.cmd("CHECK", pod, &config)
    }
}

fn wait(child: Child) -> Result<Outcome> {
    let output = child.wait_with_output()?;
    Ok(Outcome {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

/// The pod address (without prefix) of an ADD result.
fn pod_ip(result: &Value) -> Result<Ipv4Addr> {
    let address = result["ips"][0]["address"]
        .as_str()
        .with_context(|| format!("no ips[0].address in {result}"))?;
    let net: Ipv4Net = address.parse()?;
    ensure!(net.prefix_len() == 32, "pod address {address} is not a /32");
    Ok(net.addr())
}

/// The node-side veth's name in an ADD result.
fn node_link(result: &Value) -> Result<String> {
    result["interfaces"][0]["name"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no interfaces[0].name in {result}"))
}

/// `ip -j link show <link>` in `ns`, or `None` when the link is missing.
fn link_info(ns: &NetNs, link: &str) -> Option<Value> {
    let out = ns.ip(&["-j", "link", "show", "dev", link]).ok()?;
    let v: Value = serde_json::from_str(&out).ok()?;
    v.get(0).cloned()
}

/// `ip -j -4 route show` in `ns`.
fn routes(ns: &NetNs) -> Result<Vec<Value>> {
    let v: Value = serde_json::from_str(&ns.ip(&["-j", "-4", "route", "show"])?)?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// A sysctl of the namespace, read from a thread inside it.
fn sysctl(ns: &NetNs, path: &str) -> Result<String> {
    let path = format!("/proc/sys/{path}");
    ns.enter(move || Ok(std::fs::read_to_string(&path)?.trim().to_owned()))
}

/// A TCP listener on `ip:port` inside `ns`.
fn listen(ns: &NetNs, ip: Ipv4Addr, port: u16) -> Result<TcpListener> {
    ns.enter(move || TcpListener::bind((ip, port)).with_context(|| format!("binding {ip}:{port}")))
}

/// Connects from inside `client` to `listener` (at `ip:port`), sends a
/// line and returns the address the server saw the connection from.
fn tcp_roundtrip(
    client: &NetNs,
    listener: &TcpListener,
    ip: Ipv4Addr,
    port: u16,
) -> Result<Ipv4Addr> {
    let mut stream = client.enter(move || {
        let stream =
            TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(3))
                .with_context(|| format!("connecting to {ip}:{port}"))?;
        Ok(stream)
    })?;
    stream.write_all(b"hello pod\n")?;
    let (mut served, peer) = listener.accept()?;
    served.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut buf = [0u8; 10];
    served.read_exact(&mut buf)?;
    ensure!(&buf == b"hello pod\n", "got {buf:?}");
    match peer {
        SocketAddr::V4(v4) => Ok(*v4.ip()),
        SocketAddr::V6(v6) => bail!("unexpected IPv6 peer {v6}"),
    }
}

/// Fails if `link` exists in the test process's own (host) namespace.
fn assert_not_in_host(link: &str) -> Result<()> {
    ensure!(
        nix::net::if_::if_nametoindex(link).is_err(),
        "{link} landed in the host's network namespace"
    );
    Ok(())
}
