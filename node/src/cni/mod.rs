//! Keelson's CNI plugin (`keelson-cni`): gives a pod its network as the
//! container runtime asks — ADD, DEL, CHECK and VERSION of the CNI spec
//! 1.0.0 (configs of 0.3.x and 0.4.0 too). One invocation is one short
//! process: environment and stdin in, one JSON result (or CNI error) on
//! stdout, exit status 0 or 1.
//!
//! The model is routed point-to-point (as the reference `ptp` plugin and
//! Calico): a veth pair per pod interface, the pod holding a /32 from the
//! node's pod CIDR with a default route via the gateway (the CIDR's first
//! address) that every node-side veth holds ([`veth`]); addresses come
//! from a flock-guarded file store under `dataDir` ([`ipam`]).
//!
//! Owns: the pod's veth pair, its addresses and routes, the node-side
//! `/32` route and the link's forwarding sysctl, and the IPAM files. Must
//! not touch: other links, the host's routes or global sysctls, the
//! runtime's state. Routes to other nodes' pod CIDRs and the eBPF fast path
//! on the node-side veth are not here yet (see docs/architecture.md).

pub mod config;
pub mod env;
pub mod error;
pub mod ipam;
pub mod result;
pub mod version;
pub mod veth;

use std::{
    io::{self, Read, Write},
    process::ExitCode,
    time::Duration,
};

use tracing::{error, info, info_span, warn};

use self::{
    config::NetConf,
    env::{Command, Invocation},
    error::CniError,
    ipam::{IpamError, Owner, Pool, Store},
    result::Attachment,
    veth::{Spec, VethError},
};

/// How long a command waits for another plugin process holding the IPAM
/// lock before answering "try again later".
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// The plugin binary's whole life: reads the process environment and
/// stdin, writes the result or error to stdout. Logs go to stderr
/// (`KEELSON_CNI_LOG`, tracing's filter syntax; default `warn`).
pub fn main() -> ExitCode {
    let filter = std::env::var("KEELSON_CNI_LOG").unwrap_or_else(|_| "warn".to_owned());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(io::stderr)
        .with_ansi(false)
        .try_init();
    let var = |name: &str| std::env::var(name).ok();
    let (output, code) = match run(&var, &mut io::stdin().lock()) {
        Ok(output) => (output, ExitCode::SUCCESS),
        Err(Failure { error, version }) => {
            error!(code = error.code(), details = error.details(), "{error}");
            (error.to_json(version.as_deref()), ExitCode::FAILURE)
        }
    };
    let mut stdout = io::stdout().lock();
    if !output.is_empty()
        && writeln!(stdout, "{output}")
            .and_then(|()| stdout.flush())
            .is_err()
    {
        return ExitCode::FAILURE;
    }
    code
}

/// An error and the version to report it in.
#[derive(Debug)]
pub struct Failure {
    pub error: CniError,
    pub version: Option<String>,
}

impl From<CniError> for Failure {
    fn from(error: CniError) -> Self {
        Self {
            error,
            version: None,
        }
    }
}

/// One invocation: `var` reads the environment, `stdin` the config.
/// Returns what goes to stdout (empty for DEL and CHECK).
pub fn run(var: &dyn Fn(&str) -> Option<String>, stdin: &mut dyn Read) -> Result<String, Failure> {
    let command = env::command(var)?;
    if command == Command::Version {
        return Ok(version::version_json());
    }
    let invocation = env::invocation(command, var)?;
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| CniError::Io(format!("reading the network config from stdin: {e}")))?;
    let declared =
        config::declared_version(&bytes).filter(|v| version::Version::parse(v).is_some());
    let with_version = |error: CniError| Failure {
        error,
        version: declared.clone(),
    };
    if config::plugin_type(&bytes).as_deref() == Some(LOOPBACK) {
        return loopback(&invocation, &bytes).map_err(with_version);
    }
    let conf = config::parse(&bytes).map_err(with_version)?;
    let _span = info_span!(
        "cni",
        command = command.as_str(),
        container = %invocation.container_id,
        ifname = %invocation.ifname,
        pod = invocation.pod().as_deref().unwrap_or("-"),
        network = %conf.name,
    )
    .entered();
    match command {
        Command::Add => add(&invocation, &conf),
        Command::Del => del(&invocation, &conf).map(|()| String::new()),
        Command::Check => check(&invocation, &conf).map(|()| String::new()),
        Command::Version => Ok(version::version_json()),
    }
    .map_err(|error| Failure {
        error,
        version: Some(conf.cni_version.as_str().to_owned()),
    })
}

/// The plugin type containerd's CRI runs before every network (go-cni's
/// `WithLoNetwork`); `keelson-cni` installed under that name serves it.
pub const LOOPBACK: &str = "loopback";

/// `loopback`: ADD sets the pod's `lo` up and reports 127.0.0.1/8 on it;
/// DEL and CHECK have nothing to undo or check (the namespace goes with
/// the sandbox).
fn loopback(invocation: &Invocation, bytes: &[u8]) -> Result<String, CniError> {
    let version = config::declared_version(bytes)
        .and_then(|v| version::Version::parse(&v))
        .unwrap_or(
            version::Version::parse(version::CURRENT)
                .ok_or_else(|| CniError::Io("the current CNI version does not parse".to_owned()))?,
        );
    match invocation.command {
        Command::Add => {
            let netns = open_netns(invocation)?;
            veth::loopback_up(&netns).map_err(veth_error)?;
            let mut ip = serde_json::json!({"address": "127.0.0.1/8", "interface": 0});
            if version.ip_has_version_field() {
                ip["version"] = serde_json::json!("4");
            }
            Ok(serde_json::json!({
                "cniVersion": version.as_str(),
                "interfaces": [{"name": "lo", "sandbox": invocation.netns.as_ref().map(|p| p.display().to_string()).unwrap_or_default()}],
                "ips": [ip],
            })
            .to_string())
        }
        Command::Del | Command::Check => Ok(String::new()),
        Command::Version => Ok(version::version_json()),
    }
}

fn store(conf: &NetConf) -> Result<Store, CniError> {
    Store::open(
        config::network_dir(&conf.data_dir, &conf.name),
        Pool::new(conf.pod_cidr),
    )
    .map_err(ipam_error)
}

fn ipam_error(e: IpamError) -> CniError {
    match e {
        IpamError::Io { .. } => CniError::Io(e.to_string()),
        IpamError::Busy { .. } => CniError::TryAgainLater(e.to_string()),
        IpamError::Exhausted { .. } => CniError::PoolExhausted(e.to_string()),
    }
}

fn veth_error(e: VethError) -> CniError {
    if e.is_netns() {
        CniError::Netns(e.to_string())
    } else {
        CniError::Datapath(e.to_string())
    }
}

fn open_netns(invocation: &Invocation) -> Result<std::fs::File, CniError> {
    let path = invocation.netns.as_deref().ok_or_else(|| {
        CniError::InvalidEnvironment(format!(
            "CNI_NETNS is required for {}",
            invocation.command.as_str()
        ))
    })?;
    veth::open_netns(path).map_err(|e| CniError::InvalidEnvironment(format!("CNI_NETNS: {e}")))
}

fn spec(invocation: &Invocation, conf: &NetConf, ip: std::net::Ipv4Addr) -> Spec {
    Spec {
        node_ifname: veth::node_ifname(&invocation.container_id, &invocation.ifname),
        pod_ifname: invocation.ifname.clone(),
        ip,
        gateway: conf.gateway(),
        mtu: conf.mtu,
    }
}

fn add(invocation: &Invocation, conf: &NetConf) -> Result<String, CniError> {
    let netns = open_netns(invocation)?;
    let store = store(conf)?;
    let owner = Owner {
        container_id: invocation.container_id.clone(),
        ifname: invocation.ifname.clone(),
        pod: invocation.pod(),
    };
    let ip = store
        .lock(LOCK_TIMEOUT)
        .and_then(|locked| locked.allocate(&owner))
        .map_err(ipam_error)?;
    let spec = spec(invocation, conf, ip);
    let macs = match veth::setup(&netns, &spec) {
        Ok(macs) => macs,
        Err(e) => {
            if let Err(release) = store
                .lock(LOCK_TIMEOUT)
                .and_then(|l| l.release(&invocation.container_id, &invocation.ifname))
            {
                warn!(error = %release, %ip, "freeing the address of a failed ADD");
            }
            return Err(veth_error(e));
        }
    };
    info!(%ip, node_link = %spec.node_ifname, "pod network added");
    let attachment = Attachment {
        node_ifname: spec.node_ifname,
        node_mac: macs.node,
        pod_ifname: spec.pod_ifname,
        pod_mac: macs.pod,
        sandbox: invocation
            .netns
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        ip,
        gateway: spec.gateway,
    };
    Ok(result::add_result(conf.cni_version, &attachment, &conf.dns))
}

/// Removes the link (gone already with its netns is fine) and frees the
/// address — the address even when removing the link failed, whose error
/// is then returned so the runtime retries.
fn del(invocation: &Invocation, conf: &NetConf) -> Result<(), CniError> {
    let node_ifname = veth::node_ifname(&invocation.container_id, &invocation.ifname);
    let teardown = veth::teardown(&node_ifname);
    let dir = config::network_dir(&conf.data_dir, &conf.name);
    let freed = if dir.exists() {
        store(conf)?
            .lock(LOCK_TIMEOUT)
            .and_then(|l| l.release(&invocation.container_id, &invocation.ifname))
            .map_err(ipam_error)?
    } else {
        Vec::new()
    };
    let removed = teardown.map_err(veth_error)?;
    info!(?freed, link_removed = removed, "pod network deleted");
    Ok(())
}

fn check(invocation: &Invocation, conf: &NetConf) -> Result<(), CniError> {
    if !conf.cni_version.supports_check() {
        return Err(CniError::IncompatibleVersion(format!(
            "cniVersion {} does not know CHECK (0.4.0 and later do)",
            conf.cni_version.as_str()
        )));
    }
    let netns = open_netns(invocation)?;
    let ip = store(conf)?
        .lock(LOCK_TIMEOUT)
        .and_then(|l| l.find(&invocation.container_id, &invocation.ifname))
        .map_err(ipam_error)?
        .ok_or_else(|| {
            CniError::UnknownContainer(format!(
                "no address is allocated to container {} interface {} in network {}",
                invocation.container_id, invocation.ifname, conf.name
            ))
        })?;
    if let Some(ips) = conf
        .prev_result
        .as_ref()
        .and_then(|prev| result::prev_result_ips(prev, &invocation.ifname))
        && !ips.contains(&result::pod_address(ip))
    {
        return Err(CniError::CheckFailed(format!(
            "prevResult lists {ips:?} for {}, the IPAM store holds {ip}",
            invocation.ifname
        )));
    }
    let problems = veth::check(&netns, &spec(invocation, conf, ip)).map_err(veth_error)?;
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CniError::CheckFailed(problems.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoke(vars: &[(&str, &str)], stdin: &str) -> Result<String, Failure> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let var = move |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        run(&var, &mut stdin.as_bytes())
    }

    const DEL: &[(&str, &str)] = &[
        ("CNI_COMMAND", "DEL"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
    ];

    #[test]
    fn version_needs_nothing_but_the_command() {
        let out = invoke(&[("CNI_COMMAND", "VERSION")], "garbage").unwrap();
        assert_eq!(out, version::version_json());
    }

    #[test]
    fn failures_carry_their_code_and_the_config_version() {
        let err = invoke(&[], "").unwrap_err();
        assert_eq!(
            (err.error.code(), err.version),
            (error::code::INVALID_ENVIRONMENT, None)
        );
        let err = invoke(DEL, "{").unwrap_err();
        assert_eq!(
            (err.error.code(), err.version),
            (error::code::DECODING_FAILURE, None)
        );
        let err = invoke(DEL, r#"{"cniVersion":"0.4.0","name":"n","type":"t"}"#).unwrap_err();
        assert_eq!(err.error.code(), error::code::INVALID_NETWORK_CONFIG);
        assert_eq!(err.version.as_deref(), Some("0.4.0"));
        let err = invoke(DEL, r#"{"cniVersion":"7.0.0"}"#).unwrap_err();
        assert_eq!(
            (err.error.code(), err.version),
            (error::code::INCOMPATIBLE_VERSION, None)
        );
    }
}
