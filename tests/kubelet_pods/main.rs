//! The kubelet's pod workers (`keelson_node::kubelet::pods::PodManager`)
//! in-process against real parts: a `keelson-server`, a private containerd
//! running inside a test node network namespace (so its CNI calls make the
//! pods' veths there, never in the host's), `keelson-cni` installed and
//! configured by the manager in that containerd's private CNI dirs, the
//! pod cgroup tree under the containerd fixture's cgroup root, and
//! Keelson's three local images imported (nothing is pulled).
//!
//! One scenario per node (setup is the slow part): an echo pod runs,
//! becomes Ready with an IP from the node's podCIDR and answers HTTP from
//! the node namespace with its name; a `restartPolicy: Never` pod exiting
//! 3 ends Failed (exit code 3, reason Error); env from a ConfigMap and the
//! downward API reaches a container after its init container completed; a
//! missing image is ErrImageNeverPull; deleting the echo pod removes its
//! sandbox, IPAM entry, pod cgroup and API object.
//!
//! [`logs`]: `kubectl logs` through the API server and the kubelet's log
//! server, on a node of its own.
//!
//! [`probes`]: readiness, liveness and startup probes (exec, httpGet,
//! tcpSocket), on a lab of their own.
//!
//! Every guard removes what it made on drop, also when an assertion fails:
//! the manager task first (the lab's first field), then containerd with
//! its pods, cgroups and state, the namespace, the server.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpStream},
    sync::Arc,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Pod};
use keelson_e2e::{
    containerd::{TestContainerd, eventually},
    netns::NetNs,
    server::{ServerProcess, workspace_binary},
    unique_name,
};
use keelson_node::{
    cri::SandboxFilter,
    images,
    kubelet::pods::{NETWORK_NAME, PodManager, PodManagerConfig, sandbox::POD_UID_LABEL},
};
use keelson_runtime::images::{BUSYBOX_IMAGE, ECHO_IMAGE};
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
};
use serde_json::json;

mod logs;
mod probes;

pub const WAIT: Duration = Duration::from_secs(40);
const POD_CIDR: &str = "10.244.7.0/24";

/// The manager's task, aborted (stopping every worker) on drop.
struct Running(tokio::task::JoinHandle<()>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub async fn import_all(containerd: &TestContainerd) -> Result<()> {
    for image in containerd.build_images()? {
        images::import_archive(&containerd.endpoint(), images::CRI_NAMESPACE, &image.path)
            .await
            .with_context(|| format!("importing {}", image.path.display()))?;
        images::wait_visible_to_cri(&containerd.endpoint(), &image.name, WAIT).await?;
    }
    Ok(())
}

pub fn pod(node: &str, name: &str, spec: serde_json::Value) -> Result<Pod> {
    let mut spec = spec;
    spec["nodeName"] = json!(node);
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }))?)
}

/// Waits until the pod's status satisfies `check`.
pub async fn wait_pod(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    let last = std::sync::Mutex::new(None);
    let found = eventually(WAIT, &format!("pod {name}: {what}"), || async {
        let pod = pods.get(name).await?;
        let value = serde_json::to_value(&pod)?;
        let ok = check(&value);
        *last.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Some(value["status"].clone());
        Ok(ok.then_some(value))
    })
    .await;
    found.with_context(|| {
        format!(
            "last status seen: {:?}",
            last.lock().ok().and_then(|l| l.clone())
        )
    })
}

pub fn condition(pod: &serde_json::Value, type_: &str) -> Option<String> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .and_then(|c| c["status"].as_str().map(str::to_owned))
}

/// One HTTP/1.0 GET from inside the node namespace; the body.
pub fn http_get(netns: &NetNs, ip: Ipv4Addr, port: u16) -> Result<String> {
    netns.enter(move || {
        let mut stream =
            TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"GET / HTTP/1.0\r\nHost: pod\r\n\r\n")?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response
            .split_once("\r\n\r\n")
            .with_context(|| format!("no HTTP response: {response:?}"))?;
        ensure!(
            head.starts_with("HTTP/1.") && head.contains(" 200 "),
            "{head}"
        );
        Ok(body.trim().to_owned())
    })
}

/// One node's lab: keelson-server, a containerd in a node namespace with
/// the images imported, the Node object, and a `PodManager` running
/// in-process. Fields drop in order: the manager first.
pub struct Lab {
    _running: Running,
    pub cgroups: Arc<dyn keelson_node::cgroups::CgroupManager>,
    pub client: Client,
    pub node_name: String,
    pub data_dir: std::path::PathBuf,
    pub log_root: std::path::PathBuf,
    /// The manager's pod cache (what the kubelet's log server looks pods
    /// up in).
    pub pods: kube::runtime::reflector::Store<Pod>,
    pub containerd: TestContainerd,
    pub netns: NetNs,
    pub server: ServerProcess,
}

impl Lab {
    pub async fn start() -> Result<Self> {
        let server = ServerProcess::start()?;
        let netns = NetNs::new()?;
        let containerd = TestContainerd::start_in_netns(&netns.path()).await?;
        import_all(&containerd).await?;
        let client: Client =
            keelson_node::proxy::watch::client_from_kubeconfig(&server.kubeconfig()).await?;

        let node_name = unique_name('k');
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node_name},
            "spec": {"podCIDR": POD_CIDR},
        }))?;
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await?;

        let cgroups: Arc<dyn keelson_node::cgroups::CgroupManager> =
            Arc::from(keelson_node::cgroups::manager(&containerd.cgroup_parent())?);
        let data_dir = containerd.dir().join("cni/data");
        let log_root = containerd.dir().join("pod-logs");
        let config = PodManagerConfig {
            runtime_endpoint: containerd.endpoint(),
            pod_cidr: None,
            node_ip: Some("192.0.2.10".parse()?),
            cni_conf_dir: containerd.config().cni_conf_dir.clone(),
            cni_bin_dir: containerd.config().cni_bin_dir.clone(),
            cni_plugin: Some(workspace_binary(
                "keelson-cni",
                "KEELSON_CNI_BIN",
                "keelson-node",
            )?),
            cni_data_dir: data_dir.clone(),
            log_root: log_root.clone(),
            resync: Duration::from_millis(500),
            // Pod IPs are routed in the node namespace.
            probe_netns: Some(netns.path()),
        };
        let manager = PodManager::new(client.clone(), &node_name, cgroups.clone(), config).await?;
        let pods = manager.pods();
        let running = Running(tokio::spawn(async move {
            if let Err(e) = manager.run().await {
                eprintln!("pod manager: {e}");
            }
        }));
        Ok(Self {
            _running: running,
            cgroups,
            client,
            node_name,
            data_dir,
            log_root,
            pods,
            containerd,
            netns,
            server,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_run_report_status_and_are_torn_down() -> Result<()> {
    let lab = Lab::start().await?;
    let (netns, containerd) = (&lab.netns, &lab.containerd);
    let (client, node_name, cgroups) = (lab.client.clone(), lab.node_name.clone(), &lab.cgroups);
    let (data_dir, log_root) = (&lab.data_dir, &lab.log_root);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "env-cfg"},
        "data": {"greeting": "hello-from-configmap"},
    }))?;
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await?;

    // The echo pod: Running, Ready, an IP from the pod CIDR, answering.
    let echo = pod(
        &node_name,
        "echo",
        json!({"containers": [{"name": "echo", "image": ECHO_IMAGE,
                "ports": [{"containerPort": 8080}]}]}),
    )?;
    pods.create(&PostParams::default(), &echo).await?;
    let running = wait_pod(&pods, "echo", "Running and Ready", |p| {
        p["status"]["phase"] == "Running" && condition(p, "Ready").as_deref() == Some("True")
    })
    .await
    .with_context(|| containerd.log_tail(20))?;
    let status = &running["status"];
    let ip: Ipv4Addr = status["podIP"]
        .as_str()
        .context("no podIP")?
        .parse()
        .context("podIP")?;
    let cidr: Ipv4Net = POD_CIDR.parse()?;
    ensure!(cidr.contains(&ip), "{ip} is not in {cidr}");
    ensure!(status["podIPs"][0]["ip"] == ip.to_string(), "{status}");
    ensure!(status["hostIP"] == "192.0.2.10", "{status}");
    ensure!(status["startTime"].is_string(), "{status}");
    for c in [
        "PodScheduled",
        "PodReadyToStartContainers",
        "Initialized",
        "ContainersReady",
    ] {
        ensure!(
            condition(&running, c).as_deref() == Some("True"),
            "{c}: {status}"
        );
    }
    let cs = &status["containerStatuses"][0];
    ensure!(cs["ready"] == true && cs["started"] == true, "{cs}");
    ensure!(cs["state"]["running"]["startedAt"].is_string(), "{cs}");
    ensure!(cs["image"] == ECHO_IMAGE, "{cs}");
    ensure!(
        cs["imageID"]
            .as_str()
            .is_some_and(|i| i.contains("@sha256:")),
        "{cs}"
    );
    ensure!(
        cs["containerID"]
            .as_str()
            .is_some_and(|i| i.starts_with("containerd://")),
        "{cs}"
    );
    ensure!(cs["restartCount"] == 0, "{cs}");
    let body = eventually(Duration::from_secs(10), "echo answers", || async {
        Ok(http_get(netns, ip, 8080).ok())
    })
    .await?;
    ensure!(body == "echo", "echo answered {body:?}");
    // The veth's node side is in the node namespace, not the host's.
    let ipam_entry = data_dir
        .join("networks")
        .join(NETWORK_NAME)
        .join(ip.to_string());
    ensure!(ipam_entry.exists(), "{} missing", ipam_entry.display());
    let echo_uid = running["metadata"]["uid"]
        .as_str()
        .context("uid")?
        .to_owned();
    let cgroup = cgroups.find_pod(&echo_uid)?.context("no pod cgroup")?;
    ensure!(
        cgroups
            .dirs(&cgroup.cgroup_parent)
            .iter()
            .any(|d| d.is_dir()),
        "{cgroup:?}"
    );

    // restartPolicy Never, exit 3: Failed, exit code 3, reason Error.
    let failing = pod(
        &node_name,
        "fails",
        json!({"restartPolicy": "Never", "containers": [{"name": "sh", "image": BUSYBOX_IMAGE,
                "command": ["sh", "-c", "exit 3"]}]}),
    )?;
    pods.create(&PostParams::default(), &failing).await?;
    let failed = wait_pod(&pods, "fails", "Failed", |p| {
        p["status"]["phase"] == "Failed"
    })
    .await?;
    let term = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    ensure!(
        term["exitCode"] == 3 && term["reason"] == "Error",
        "{failed}"
    );
    ensure!(
        condition(&failed, "Ready").as_deref() == Some("False"),
        "{failed}"
    );

    // Env from a ConfigMap and fieldRefs, after an init container.
    let env = pod(
        &node_name,
        "env",
        json!({"restartPolicy": "Never",
        "initContainers": [{"name": "init", "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c", "echo init done"]}],
        "containers": [{"name": "show", "image": BUSYBOX_IMAGE,
            "command": ["sh", "-c"],
            "args": ["echo GREETING=$GREETING NAME=$POD_NAME NS=$POD_NS NODE=$NODE IP=$POD_IP"],
            "env": [
                {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "env-cfg", "key": "greeting"}}},
                {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
            ]}]}),
    )?;
    pods.create(&PostParams::default(), &env).await?;
    let done = wait_pod(&pods, "env", "Succeeded", |p| {
        p["status"]["phase"] == "Succeeded"
    })
    .await?;
    ensure!(
        condition(&done, "Initialized").as_deref() == Some("True"),
        "{done}"
    );
    let init_term = &done["status"]["initContainerStatuses"][0]["state"]["terminated"];
    ensure!(
        init_term["exitCode"] == 0 && init_term["reason"] == "Completed",
        "{done}"
    );
    let env_ip = done["status"]["podIP"].as_str().context("env pod IP")?;
    let env_uid = done["metadata"]["uid"].as_str().context("uid")?;
    let log = log_root
        .join(format!("default_env_{env_uid}"))
        .join("show/0.log");
    let text = eventually(Duration::from_secs(10), "the env pod's log", || async {
        Ok(std::fs::read_to_string(&log)
            .ok()
            .filter(|t| t.contains("GREETING=")))
    })
    .await?;
    let want =
        format!("GREETING=hello-from-configmap NAME=env NS=default NODE={node_name} IP={env_ip}");
    ensure!(
        text.contains(&want),
        "log {}: {text:?}, want {want:?}",
        log.display()
    );

    // A missing image is never pulled: ErrImageNeverPull.
    let missing = pod(
        &node_name,
        "missing",
        json!({"containers": [{"name": "c", "image": "keelson.local/missing:1",
                "imagePullPolicy": "IfNotPresent"}]}),
    )?;
    pods.create(&PostParams::default(), &missing).await?;
    wait_pod(&pods, "missing", "ErrImageNeverPull", |p| {
        p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ErrImageNeverPull"
            && p["status"]["phase"] == "Pending"
    })
    .await?;

    // Deleting the echo pod: stopped, sandbox, IP, cgroup and object gone.
    pods.delete("echo", &DeleteParams::default()).await?;
    eventually(WAIT, "echo pod deleted from the API", || async {
        Ok(pods.get_opt("echo").await?.is_none().then_some(()))
    })
    .await?;
    let mut cri = containerd.cri().await?;
    let left = cri
        .runtime
        .list_pod_sandboxes(&SandboxFilter::labels([(POD_UID_LABEL, echo_uid.as_str())]))
        .await?;
    ensure!(left.is_empty(), "sandboxes left: {left:?}");
    ensure!(
        !ipam_entry.exists(),
        "{} still allocated",
        ipam_entry.display()
    );
    ensure!(cgroups.find_pod(&echo_uid)?.is_none(), "pod cgroup left");
    if http_get(netns, ip, 8080).is_ok() {
        bail!("the deleted echo pod still answers");
    }
    Ok(())
}
