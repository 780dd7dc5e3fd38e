//! The CRI client (`keelson_node::cri`) and the image import
//! (`keelson_node::images`) against a real containerd: each test starts a
//! private instance configured by `keelson_runtime::containerd` (see
//! `fixtures/containerd.rs`), builds Keelson's local images with the real
//! builder, imports them through containerd's API, and runs pods with host
//! networking (no CNI needed). Nothing is ever pulled.

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream},
    path::Path,
    time::Duration,
};

use anyhow::{Context, Result, bail, ensure};
use keelson_e2e::containerd::{TestContainerd, eventually, labels};
use keelson_node::{
    cri::{ContainerFilter, Cri, CriError, SandboxFilter, api},
    images,
};
use keelson_runtime::images::{BUSYBOX_IMAGE, ECHO_IMAGE, PAUSE_IMAGE};

const WAIT: Duration = Duration::from_secs(20);

/// Builds the local images and imports `wanted` of them through the real
/// code path (`keelson-node images import`'s), waiting until CRI sees each.
async fn import(containerd: &TestContainerd, wanted: &[&str]) -> Result<()> {
    let written = containerd.build_images()?;
    for image in written.iter().filter(|w| wanted.contains(&w.name.as_str())) {
        let imported =
            images::import_archive(&containerd.endpoint(), images::CRI_NAMESPACE, &image.path)
                .await
                .with_context(|| format!("importing {}", image.path.display()))?;
        ensure!(imported.len() == 1, "{imported:?}");
        ensure!(imported[0].name == image.name, "{imported:?}");
        ensure!(imported[0].id == image.config_digest, "{imported:?}");
        let seen = images::wait_visible_to_cri(&containerd.endpoint(), &image.name, WAIT).await?;
        ensure!(seen.id == image.config_digest, "CRI reports {seen:?}");
    }
    Ok(())
}

/// A pod sandbox on the host's network (the kubelet's `hostNetwork: true`),
/// in the fixture's cgroup parent, logging into the fixture's directory.
fn host_network_sandbox(
    containerd: &TestContainerd,
    name: &str,
    case: &str,
) -> Result<api::PodSandboxConfig> {
    Ok(api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}-{}", std::process::id()),
            namespace: "default".to_owned(),
            attempt: 0,
        }),
        // None, as the kubelet sends for host-network pods: they share the
        // node's UTS namespace (runc refuses a host name without one).
        hostname: String::new(),
        log_directory: containerd.pod_log_dir(name)?.display().to_string(),
        labels: labels(case),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: containerd.cgroup_parent(),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Node as i32,
                    pid: api::NamespaceMode::Container as i32,
                    ipc: api::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn container(
    name: &str,
    image: &str,
    command: &[&str],
    envs: &[(&str, &str)],
    case: &str,
) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        command: command.iter().map(|s| (*s).to_owned()).collect(),
        envs: envs
            .iter()
            .map(|(k, v)| api::KeyValue {
                key: (*k).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        log_path: format!("{name}/0.log"),
        labels: labels(case),
        ..Default::default()
    }
}

async fn wait_state(
    cri: &mut Cri,
    id: &str,
    want: api::ContainerState,
) -> Result<api::ContainerStatus> {
    eventually(WAIT, &format!("container {id} {want:?}"), || {
        let mut runtime = cri.runtime.clone();
        async move {
            let status = runtime.container_status(id).await?;
            Ok((status.state == want as i32).then_some(status))
        }
    })
    .await
}

/// One line of the CRI log format: `<RFC 3339 time> <stream> <P|F> <text>`.
fn parse_cri_log_line(line: &str) -> Option<(&str, &str, &str, &str)> {
    let mut parts = line.splitn(4, ' ');
    Some((parts.next()?, parts.next()?, parts.next()?, parts.next()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busybox_runs_logs_and_execs_in_a_host_network_pod() -> Result<()> {
    let containerd = TestContainerd::start().await?;
    let mut cri = containerd.cri().await?;
    let version = cri.runtime.version().await?;
    assert_eq!(version.runtime_name, "containerd");
    assert_eq!(version.runtime_api_version, "v1");
    import(&containerd, &[PAUSE_IMAGE, BUSYBOX_IMAGE]).await?;

    let case = "busybox";
    let sandbox_config = host_network_sandbox(&containerd, "busybox-0", case)?;
    let sandbox = cri.runtime.run_pod_sandbox(&sandbox_config, "").await?;
    let status = cri.runtime.pod_sandbox_status(&sandbox).await?;
    assert_eq!(status.state, api::PodSandboxState::SandboxReady as i32);
    // The fixture finds the sandbox's shim socket (to clean it up after a
    // crash) where containerd 1.6 puts it.
    let shim_socket = keelson_e2e::containerd::shim_socket(&containerd.config().address, &sandbox);
    assert!(shim_socket.exists(), "{}", shim_socket.display());
    let listed = cri
        .runtime
        .list_pod_sandboxes(&SandboxFilter::labels([("keelson.test/case", case)]))
        .await?;
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [sandbox.as_str()]
    );
    let other = cri
        .runtime
        .list_pod_sandboxes(&SandboxFilter::labels([("keelson.test/case", "other")]))
        .await?;
    assert!(other.is_empty(), "{other:?}");

    let config = container(
        "shell",
        BUSYBOX_IMAGE,
        &["sh", "-c", "echo hello; sleep 60"],
        &[],
        case,
    );
    let id = cri
        .runtime
        .create_container(&sandbox, &config, &sandbox_config)
        .await?;
    cri.runtime.start_container(&id).await?;
    let running = wait_state(&mut cri, &id, api::ContainerState::ContainerRunning).await?;
    assert!(!running.image_ref.is_empty(), "{running:?}");
    let listed = cri
        .runtime
        .list_containers(&ContainerFilter {
            pod_sandbox_id: Some(sandbox.clone()),
            state: Some(api::ContainerState::ContainerRunning),
            labels: [("keelson.test/case".to_owned(), case.to_owned())].into(),
            ..Default::default()
        })
        .await?;
    assert_eq!(
        listed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        [id.as_str()]
    );

    // The container's process: in the sandbox's cgroup parent (cgroupfs
    // driver) and in the host's network namespace.
    let (_, info) = cri.runtime.container_status_verbose(&id, true).await?;
    let info: serde_json::Value = serde_json::from_str(info.get("info").context("no info")?)?;
    let pid = info["pid"]
        .as_u64()
        .with_context(|| format!("no pid in {info}"))?;
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))?;
    let parent = containerd.cgroup_parent();
    assert!(
        cgroups
            .lines()
            .any(|l| l.contains(":pids:") && l.contains(&format!("{parent}/{id}"))),
        "{cgroups}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/net"))?,
        std::fs::read_link("/proc/self/ns/net")?
    );

    // The CRI log file, in the sandbox's log directory.
    let log_path = Path::new(&sandbox_config.log_directory).join("shell/0.log");
    assert_eq!(Path::new(&running.log_path), log_path);
    let line = eventually(WAIT, "hello in the container's CRI log", || {
        let log_path = log_path.clone();
        async move {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            Ok(log.lines().next().map(str::to_owned))
        }
    })
    .await?;
    let (time, stream, tag, text) =
        parse_cri_log_line(&line).with_context(|| format!("not a CRI log line: {line:?}"))?;
    assert!(time.parse::<jiff::Timestamp>().is_ok(), "{line:?}");
    assert_eq!((stream, tag, text), ("stdout", "F", "hello"), "{line:?}");

    // ExecSync: the image's root, and a failing command's exit code.
    let ls = cri
        .runtime
        .exec_sync(&id, &["ls", "/"], Duration::from_secs(10))
        .await?;
    assert_eq!(ls.exit_code, 0, "{}", ls.stderr_lossy());
    let entries: Vec<String> = ls.stdout_lossy().lines().map(str::to_owned).collect();
    for want in ["bin", "etc", "proc", "usr"] {
        assert!(
            entries.iter().any(|e| e == want),
            "{want} not in {entries:?}"
        );
    }
    let failed = cri
        .runtime
        .exec_sync(
            &id,
            &["sh", "-c", "echo oops >&2; exit 3"],
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(
        (failed.exit_code, failed.stderr_lossy().trim()),
        (3, "oops")
    );
    // Busybox's applets are links to it where busybox installs them.
    let links = cri
        .runtime
        .exec_sync(
            &id,
            &[
                "sh",
                "-c",
                "for f in /bin/sh /usr/bin/wget /usr/bin/nslookup; do readlink $f; done",
            ],
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(
        links.stdout_lossy(),
        "/bin/busybox\n".repeat(3),
        "{}",
        links.stderr_lossy()
    );

    // Stop: SIGTERM, and SIGKILL if the shell outlives the grace period.
    cri.runtime
        .stop_container(&id, Duration::from_secs(1))
        .await?;
    let exited = wait_state(&mut cri, &id, api::ContainerState::ContainerExited).await?;
    assert!(matches!(exited.exit_code, 137 | 143), "{exited:?}");
    cri.runtime.remove_container(&id).await?;
    let err = cri.runtime.container_status(&id).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    cri.runtime.stop_pod_sandbox(&sandbox).await?;
    let status = cri.runtime.pod_sandbox_status(&sandbox).await?;
    assert_eq!(status.state, api::PodSandboxState::SandboxNotready as i32);
    cri.runtime.remove_pod_sandbox(&sandbox).await?;
    assert!(
        cri.runtime
            .list_pod_sandboxes(&SandboxFilter::default())
            .await?
            .is_empty()
    );
    assert!(!shim_socket.exists(), "{}", shim_socket.display());
    Ok(())
}

/// `GET /` on 127.0.0.1:`port`: (status line, body); `None` when nothing
/// listens.
fn http_get(port: u16) -> Result<Option<(String, String)>> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .with_context(|| format!("no HTTP head in {response:?}"))?;
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok(Some((status, body.to_owned())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_answers_with_the_pods_hostname_on_the_host_network() -> Result<()> {
    let containerd = TestContainerd::start().await?;
    let mut cri = containerd.cri().await?;
    import(&containerd, &[PAUSE_IMAGE, ECHO_IMAGE]).await?;

    // A free loopback port for this run (8080 may be taken on the host).
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port();
    assert!(
        http_get(port)?.is_none(),
        "something already serves port {port}"
    );

    let case = "echo";
    let sandbox_config = host_network_sandbox(&containerd, "echo-0", case)?;
    let sandbox = cri.runtime.run_pod_sandbox(&sandbox_config, "").await?;
    let port_text = port.to_string();
    let config = container("echo", ECHO_IMAGE, &[], &[("PORT", &port_text)], case);
    let id = cri
        .runtime
        .create_container(&sandbox, &config, &sandbox_config)
        .await?;
    cri.runtime.start_container(&id).await?;
    wait_state(&mut cri, &id, api::ContainerState::ContainerRunning).await?;
    let (status, body) =
        eventually(WAIT, "keelson-echo answering", || async { http_get(port) }).await?;
    assert_eq!(status, "HTTP/1.1 200 OK");
    // A host-network pod shares the node's UTS namespace: its host name is
    // the node's.
    let node_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")?;
    assert_eq!(body, node_hostname.trim());

    // The request reached the container's log.
    let log_path = Path::new(&sandbox_config.log_directory).join("echo/0.log");
    // (The shim copies the container's stdout to the file asynchronously.)
    eventually(WAIT, "the request in the container's CRI log", || {
        let log_path = log_path.clone();
        async move {
            let log = std::fs::read_to_string(&log_path)?;
            Ok(log
                .contains("stdout F keelson-echo: GET / HTTP/1.1 from 127.0.0.1:")
                .then_some(()))
        }
    })
    .await?;

    // SIGTERM stops it at once (PID 1 handles it), and the port closes.
    let stopping = std::time::Instant::now();
    cri.runtime
        .stop_container(&id, Duration::from_secs(10))
        .await?;
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "took {:?}",
        stopping.elapsed()
    );
    let exited = wait_state(&mut cri, &id, api::ContainerState::ContainerExited).await?;
    assert_eq!(exited.exit_code, 0, "{exited:?}");
    assert!(http_get(port)?.is_none(), "port {port} still served");
    cri.runtime.remove_pod_sandbox(&sandbox).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_an_error_and_never_pulled() -> Result<()> {
    let containerd = TestContainerd::start().await?;
    let mut cri = containerd.cri().await?;
    import(&containerd, &[PAUSE_IMAGE]).await?;
    let missing = "keelson.local/missing:1";

    let err = cri.images.image_status(missing).await.unwrap_err();
    assert!(
        matches!(&err, CriError::ImageNotPresent { image } if image == missing),
        "{err}"
    );
    assert!(err.to_string().contains("ErrImageNeverPull"), "{err}");
    let listed = cri.images.list_images(None).await?;
    let tags: Vec<&str> = listed
        .iter()
        .flat_map(|i| i.repo_tags.iter().map(String::as_str))
        .collect();
    assert_eq!(tags, [PAUSE_IMAGE], "{listed:?}");
    assert!(cri.images.list_images(Some(missing)).await?.is_empty());
    // Present images are found by reference and by ID.
    let pause = cri.images.image_status(PAUSE_IMAGE).await?;
    assert_eq!(cri.images.image_status(&pause.id).await?.id, pause.id);

    // CreateContainer with it fails (the CRI plugin does not pull there).
    let case = "missing";
    let sandbox_config = host_network_sandbox(&containerd, "missing-0", case)?;
    let sandbox = cri.runtime.run_pod_sandbox(&sandbox_config, "").await?;
    let config = container("app", missing, &["sh"], &[], case);
    let err = cri
        .runtime
        .create_container(&sandbox, &config, &sandbox_config)
        .await
        .unwrap_err();
    assert!(err.status().is_some(), "{err}");
    assert!(err.to_string().contains(missing), "{err}");
    cri.runtime.remove_pod_sandbox(&sandbox).await?;

    // Nothing tried to pull: no PullImage in containerd's log, and nothing
    // was being fetched into the content store.
    let log = containerd.log();
    assert!(!log.contains("PullImage"), "{log}");
    assert!(!log.contains("fetch"), "{log}");
    let ingests = std::fs::read_dir(
        containerd
            .config()
            .root
            .join("io.containerd.content.v1.content/ingest"),
    )
    .map(|d| d.count())
    .unwrap_or(0);
    assert_eq!(ingests, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importing_twice_reuses_content_and_snapshots() -> Result<()> {
    let containerd = TestContainerd::start().await?;
    let written = containerd.build_images()?;
    let busybox = written
        .iter()
        .find(|w| w.name == BUSYBOX_IMAGE)
        .context("no busybox archive")?;
    let endpoint = containerd.endpoint();
    let first = images::import_archive(&endpoint, images::CRI_NAMESPACE, &busybox.path).await?;
    assert_eq!((first[0].blobs_written, first[0].layers_unpacked), (3, 1));
    let second = images::import_archive(&endpoint, images::CRI_NAMESPACE, &busybox.path).await?;
    assert_eq!((second[0].blobs_written, second[0].layers_unpacked), (0, 0));
    assert_eq!(first[0].chain_id, second[0].chain_id);

    // The three references the CRI plugin makes when it pulls, all
    // labelled as managed by it, all naming the same manifest.
    let records = images::list_records(&endpoint, images::CRI_NAMESPACE).await?;
    let names: HashMap<&str, &str> = records
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.target
                    .as_ref()
                    .map(|t| t.digest.as_str())
                    .unwrap_or_default(),
            )
        })
        .collect();
    let manifest = busybox.manifest_digest.as_str();
    for name in [
        BUSYBOX_IMAGE.to_owned(),
        format!("keelson.local/busybox@{manifest}"),
        busybox.config_digest.clone(),
    ] {
        assert_eq!(
            names.get(name.as_str()),
            Some(&manifest),
            "{name} in {names:?}"
        );
    }
    for record in &records {
        assert_eq!(
            record
                .labels
                .get(images::CRI_IMAGE_LABEL)
                .map(String::as_str),
            Some("managed"),
            "{record:?}"
        );
    }
    if records.len() != 3 {
        bail!("expected 3 image records, got {records:?}");
    }
    Ok(())
}

/// Writes a `docker save` archive (manifest.json, config, uncompressed
/// layer) of Keelson's busybox filesystem, tagged as Docker Hub would name
/// it.
fn docker_save_archive(path: &Path, tag: &str) -> Result<()> {
    let spec = keelson_runtime::images::busybox_image(Path::new(keelson_runtime::images::BUSYBOX))?;
    let layer = spec.layers[0].tar()?;
    let diff_id = keelson_runtime::oci::sha256_digest(&layer);
    let config = serde_json::json!({
        "architecture": keelson_runtime::oci::host_architecture(),
        "os": "linux",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    .to_string();
    let config_hex = keelson_runtime::oci::sha256_digest(config.as_bytes());
    let config_name = format!("{}.json", config_hex.trim_start_matches("sha256:"));
    let manifest = serde_json::json!([{
        "Config": config_name, "RepoTags": [tag], "Layers": ["0/layer.tar"],
    }])
    .to_string();
    let mut out = tar::Builder::new(std::fs::File::create(path)?);
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        (config_name.as_str(), config.as_bytes()),
        ("0/layer.tar", layer.as_slice()),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        out.append_data(&mut header, name, data)?;
    }
    out.finish()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_save_archive_imports_and_runs() -> Result<()> {
    let containerd = TestContainerd::start().await?;
    let mut cri = containerd.cri().await?;
    import(&containerd, &[PAUSE_IMAGE]).await?;
    let path = containerd.dir().join("docker-save.tar");
    docker_save_archive(&path, "toolbox:test")?;
    let imported =
        images::import_archive(&containerd.endpoint(), images::CRI_NAMESPACE, &path).await?;
    // Docker's normalisation: an unqualified name is Docker Hub's library.
    let name = "docker.io/library/toolbox:test";
    assert_eq!(imported[0].name, name);
    assert_eq!(imported[0].layers_unpacked, 1);
    images::wait_visible_to_cri(&containerd.endpoint(), name, WAIT).await?;
    // CRI names it the way `docker run toolbox:test` would.
    let listed = cri.images.list_images(Some("toolbox:test")).await?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].repo_tags, [name]);

    let case = "docker";
    let sandbox_config = host_network_sandbox(&containerd, "docker-0", case)?;
    let sandbox = cri.runtime.run_pod_sandbox(&sandbox_config, "").await?;
    let config = container("toolbox", "toolbox:test", &["sleep", "30"], &[], case);
    let id = cri
        .runtime
        .create_container(&sandbox, &config, &sandbox_config)
        .await?;
    cri.runtime.start_container(&id).await?;
    wait_state(&mut cri, &id, api::ContainerState::ContainerRunning).await?;
    let passwd = cri
        .runtime
        .exec_sync(
            &id,
            &["head", "-n1", "/etc/passwd"],
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(passwd.stdout_lossy(), "root:x:0:0:root:/root:/bin/sh\n");
    cri.runtime.remove_pod_sandbox(&sandbox).await?;
    Ok(())
}
