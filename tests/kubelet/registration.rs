//! The Node a fresh agent registers, field by field against what the host
//! says through other channels (`getconf`, `uname`, `/proc`, `statvfs`),
//! and as `kubectl get nodes` prints it; the InternalIP found on the
//! host's interfaces when `--node-ip` is not given.

use std::{collections::BTreeMap, ffi::OsString, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::{api::core::v1::Node, apimachinery::pkg::api::resource::Quantity};
use keelson_e2e::{netns::NetNs, server::ServerProcess, unique_name};
use serde_json::Value;

use super::{Kubelet, client, condition, fast_args, root_dir, root_fs, wait_for, wait_ready};

/// A BinarySI/DecimalSI integer quantity in units (`8Ki`, `12`, `2Mi`).
fn units(q: &Quantity) -> Result<u64> {
    let s = q.0.as_str();
    let (digits, factor) = [
        ("Ki", 1u64 << 10),
        ("Mi", 1 << 20),
        ("Gi", 1 << 30),
        ("Ti", 1 << 40),
    ]
    .iter()
    .find_map(|(suffix, f)| s.strip_suffix(suffix).map(|d| (d, *f)))
    .unwrap_or((s, 1));
    Ok(digits
        .parse::<u64>()
        .with_context(|| format!("quantity {s:?}"))?
        * factor)
}

fn stdout_of(program: &str, args: &[&str]) -> Result<String> {
    Ok(keelson_e2e::run(program, args)?.trim().to_owned())
}

/// A `/proc/meminfo` field in bytes.
fn meminfo_field(field: &str) -> Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .with_context(|| format!("no {field} in /proc/meminfo"))?
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

fn pretty_name() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release")?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .context("PRETTY_NAME")?
        .trim_matches('"')
        .to_owned())
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_registers_with_the_hosts_resources_and_is_ready() -> Result<()> {
    let root = root_fs()?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let mut args = fast_args(&root, &name);
    args.extend(
        [
            "--pod-cidr",
            "10.244.7.0/24",
            "--node-ip",
            "10.219.0.7",
            "--max-pods",
            "42",
            "--node-labels",
            "node.kubernetes.io/instance-type=e2e,team=web",
            "--container-runtime-version",
            "containerd://1.6.20",
        ]
        .map(OsString::from),
    );
    let mut agent = Kubelet::start(&server, &args)?;
    let client = client(&server).await?;
    let node = wait_ready(&mut agent, &client, &name).await?;

    // Labels and the attach/detach annotation, as a kubelet sets them.
    let labels = node.metadata.labels.clone().unwrap_or_default();
    for (key, value) in [
        ("kubernetes.io/hostname", name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", go_arch()),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", go_arch()),
        ("node.kubernetes.io/instance-type", "e2e"),
        ("team", "web"),
    ] {
        ensure!(
            labels.get(key).map(String::as_str) == Some(value),
            "label {key}: {labels:?}"
        );
    }
    ensure!(
        node.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("volumes.kubernetes.io/controller-managed-attach-detach"))
            .map(String::as_str)
            == Some("true"),
        "annotations: {:?}",
        node.metadata.annotations
    );

    // The pod CIDR from the flag, in both fields.
    let spec = node.spec.clone().unwrap_or_default();
    ensure!(
        spec.pod_cidr.as_deref() == Some("10.244.7.0/24"),
        "{spec:?}"
    );
    ensure!(
        spec.pod_cidrs == Some(vec!["10.244.7.0/24".to_owned()]),
        "{spec:?}"
    );

    let status = node.status.clone().context("no status")?;
    let capacity: BTreeMap<_, _> = status.capacity.clone().context("no capacity")?;
    let allocatable: BTreeMap<_, _> = status.allocatable.clone().context("no allocatable")?;

    // cpu: the online CPUs, as getconf counts them; nothing kept back.
    let cpus: u64 = stdout_of("getconf", &["_NPROCESSORS_ONLN"])?.parse()?;
    ensure!(
        units(&capacity["cpu"])? == cpus,
        "cpu {:?}",
        capacity["cpu"]
    );
    ensure!(capacity["cpu"] == allocatable["cpu"]);

    // memory: MemTotal, allocatable 100Mi less (the eviction threshold).
    let mem = meminfo_field("MemTotal")?;
    ensure!(
        units(&capacity["memory"])? == mem,
        "memory {:?} vs MemTotal {mem}",
        capacity["memory"]
    );
    ensure!(
        units(&allocatable["memory"])? == mem - (100 << 20),
        "allocatable memory {:?}",
        allocatable["memory"]
    );

    // pods: --max-pods.
    ensure!(capacity["pods"].0 == "42" && allocatable["pods"].0 == "42");

    // ephemeral-storage: statvfs of the root dir (created by the agent),
    // allocatable 10% less.
    let dir = root_dir(&root);
    ensure!(dir.is_dir(), "the agent did not create {}", dir.display());
    let st = nix::sys::statvfs::statvfs(&dir)?;
    let fs_bytes = st.blocks() * st.fragment_size();
    ensure!(
        units(&capacity["ephemeral-storage"])? == fs_bytes,
        "ephemeral-storage {:?} vs statvfs {fs_bytes}",
        capacity["ephemeral-storage"]
    );
    ensure!(
        units(&allocatable["ephemeral-storage"])? == fs_bytes - fs_bytes / 10,
        "allocatable ephemeral-storage {:?}",
        allocatable["ephemeral-storage"]
    );

    // One hugepages-<size> per size the kernel offers.
    let sizes = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| d.count())
        .unwrap_or(0);
    let reported = capacity
        .keys()
        .filter(|k| k.starts_with("hugepages-"))
        .count();
    ensure!(reported == sizes, "hugepages: {capacity:?}");

    // Addresses.
    let addresses: Vec<(String, String)> = status
        .addresses
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.type_, a.address))
        .collect();
    ensure!(
        addresses
            == [
                ("InternalIP".to_owned(), "10.219.0.7".to_owned()),
                ("Hostname".to_owned(), name.clone())
            ],
        "{addresses:?}"
    );

    // Node info, against uname and the files the kubelet reads.
    let info = status.node_info.clone().context("no nodeInfo")?;
    let version = format!("v1.33.0-keelson.{}", env!("CARGO_PKG_VERSION"));
    ensure!(
        info.kernel_version == stdout_of("uname", &["-r"])?,
        "{info:?}"
    );
    ensure!(info.os_image == pretty_name()?, "{info:?}");
    ensure!(info.operating_system == "linux", "{info:?}");
    ensure!(info.architecture == go_arch(), "{info:?}");
    ensure!(
        info.machine_id == std::fs::read_to_string("/etc/machine-id")?.trim(),
        "{info:?}"
    );
    ensure!(
        info.boot_id == std::fs::read_to_string("/proc/sys/kernel/random/boot_id")?.trim(),
        "{info:?}"
    );
    ensure!(info.kubelet_version == version, "{info:?}");
    ensure!(info.kube_proxy_version == version, "{info:?}");
    ensure!(
        info.container_runtime_version == "containerd://1.6.20",
        "{info:?}"
    );

    // Conditions: no disk pressure on the near-empty tmpfs; memory and
    // pids as the host stands (far from the thresholds on a sane test
    // machine: both are checked to be so); Ready.
    let mem_available = meminfo_field("MemAvailable")?;
    ensure!(
        mem_available > 1 << 30,
        "the host is short of memory ({mem_available} bytes available): the memory condition is not testable"
    );
    for (kind, status, reason) in [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID"),
        ("Ready", "True", "KubeletReady"),
    ] {
        let c = condition(&node, kind).with_context(|| format!("no {kind}"))?;
        ensure!(
            c.status == status && c.reason.as_deref() == Some(reason),
            "{c:?}"
        );
        ensure!(c.last_heartbeat_time.is_some() && c.last_transition_time.is_some());
    }
    ensure!(
        condition(&node, "Ready").and_then(|c| c.message.as_deref())
            == Some("kubelet is posting ready status")
    );

    // kubectl prints it Ready.
    let table = server.kubectl_ok(&["get", "nodes"])?;
    let row: Vec<&str> = table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))
        .with_context(|| format!("no row for {name} in\n{table}"))?
        .split_whitespace()
        .collect();
    ensure!(row.get(1) == Some(&"Ready"), "kubectl get nodes:\n{table}");
    Ok(())
}

/// `kubectl get node NAME -o json` run inside the server's netns.
fn node_in_netns(server: &ServerProcess, name: &str) -> Result<Option<Node>> {
    let out = server
        .command("kubectl")
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(server.data_dir().join("kubectl-cache"))
        .args(["get", "node", name, "-o", "json"])
        .output()?;
    if !out.status.success() {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(&out.stdout)?;
    Ok(Some(serde_json::from_value(value)?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_ip_defaults_to_the_first_global_address_of_an_up_interface() -> Result<()> {
    // A node netns with a down interface and an up one, both addressed
    // (the two ends of a veth pair: no dummy devices on this kernel).
    let ns = NetNs::new()?;
    ns.ip(&["link", "add", "kd0", "type", "veth", "peer", "name", "kd1"])?;
    ns.ip(&["addr", "add", "10.218.8.5/24", "dev", "kd0"])?;
    ns.ip(&["addr", "add", "10.218.7.5/24", "dev", "kd1"])?;
    ns.ip(&["link", "set", "kd1", "up"])?;
    let root = root_fs()?;
    let server = ServerProcess::start_in_netns(ns.name(), &[])?;
    let name = unique_name('k');
    let mut agent = Kubelet::start_in(&ns, &server, &fast_args(&root, &name))?;
    let node = wait_for(
        &mut agent,
        "node with addresses",
        Duration::from_secs(20),
        || {
            let node = node_in_netns(&server, &name);
            async move {
                Ok(node?.filter(|n| {
                    n.status
                        .as_ref()
                        .and_then(|s| s.addresses.as_ref())
                        .is_some_and(|a| !a.is_empty())
                }))
            }
        },
    )
    .await?;
    let addresses: Vec<(String, String)> = node
        .status
        .and_then(|s| s.addresses)
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.type_, a.address))
        .collect();
    ensure!(
        addresses
            == [
                ("InternalIP".to_owned(), "10.218.7.5".to_owned()),
                ("Hostname".to_owned(), name.clone())
            ],
        "{addresses:?}"
    );
    // No --pod-cidr and none on the Node: the spec has none.
    ensure!(
        node.spec
            .as_ref()
            .is_none_or(|s| s.pod_cidr.is_none() && s.pod_cidrs.is_none()),
        "{:?}",
        node.spec
    );
    Ok(())
}
