//! Adoption: an agent stopped with SIGTERM (a clean exit) and started
//! again finds its Node and Lease and keeps them — same uids, same pod
//! CIDR even when the new run asks for another, Ready's transition time
//! unchanged; a Node created beforehand (by an admin or an IPAM
//! controller) is adopted with its pod CIDR and others' labels.

use std::{ffi::OsString, time::Duration};

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Node};
use keelson_e2e::{server::ServerProcess, unique_name};
use kube::{Api, api::PostParams};
use serde_json::json;

use super::{
    Kubelet, client, condition, fast_args, renew_time, root_fs, times, wait_for, wait_lease,
    wait_ready,
};

fn with(mut args: Vec<OsString>, extra: &[&str]) -> Vec<OsString> {
    args.extend(extra.iter().map(OsString::from));
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_adopts_its_node_and_lease_and_keeps_the_pod_cidr() -> Result<()> {
    let root = root_fs()?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let client = client(&server).await?;
    let api = Api::<Node>::all(client.clone());

    let mut first = Kubelet::start(
        &server,
        &with(fast_args(&root, &name), &["--pod-cidr", "10.244.5.0/24"]),
    )?;
    let node = wait_ready(&mut first, &client, &name).await?;
    let lease = wait_lease(&mut first, &client, &name).await?;
    let (_, transition) = times(&node, "Ready")?;
    // Let the first Ready transition be at least a second old.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let status = first.terminate()?;
    ensure!(
        status.success(),
        "SIGTERM is a clean exit, not {status}; log:\n{}",
        first.log()
    );
    let (heartbeat_at_stop, _) = times(&api.get(&name).await?, "Ready")?;
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    let renewed_at_stop = renew_time(&leases.get(&name).await?)?;

    // Another --pod-cidr: the Node's own wins.
    let mut second = Kubelet::start(
        &server,
        &with(fast_args(&root, &name), &["--pod-cidr", "10.244.6.0/24"]),
    )?;
    let adopted = wait_for(
        &mut second,
        "heartbeat of the new run",
        Duration::from_secs(10),
        || async {
            let node = api.get(&name).await?;
            Ok((times(&node, "Ready")?.0 > heartbeat_at_stop).then_some(node))
        },
    )
    .await?;
    ensure!(
        adopted.metadata.uid == node.metadata.uid,
        "a new Node: {:?} → {:?}",
        node.metadata.uid,
        adopted.metadata.uid
    );
    let spec = adopted.spec.clone().unwrap_or_default();
    ensure!(
        spec.pod_cidr.as_deref() == Some("10.244.5.0/24"),
        "{spec:?}"
    );
    ensure!(
        spec.pod_cidrs == Some(vec!["10.244.5.0/24".to_owned()]),
        "{spec:?}"
    );
    ensure!(
        times(&adopted, "Ready")?.1 == transition,
        "Ready stayed True, yet its transition time moved: {transition} → {}",
        times(&adopted, "Ready")?.1
    );
    ensure!(
        second.log().contains("adopted the existing node"),
        "{}",
        second.log()
    );

    // The Lease is the same object, renewed by the new run.
    let renewed = wait_for(
        &mut second,
        "lease renewal of the new run",
        Duration::from_secs(10),
        || async {
            let lease = leases.get(&name).await?;
            Ok((renew_time(&lease)? > renewed_at_stop).then_some(lease))
        },
    )
    .await?;
    ensure!(renewed.metadata.uid == lease.metadata.uid, "a new Lease");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_created_beforehand_is_adopted_with_its_cidr_and_labels() -> Result<()> {
    let root = root_fs()?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let client = client(&server).await?;
    let api = Api::<Node>::all(client.clone());
    let precreated: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"owner": "ops", "kubernetes.io/arch": "wrong"}},
        "spec": {"podCIDR": "10.244.9.0/24", "podCIDRs": ["10.244.9.0/24"]}
    }))?;
    let created = api.create(&PostParams::default(), &precreated).await?;

    let mut agent = Kubelet::start(&server, &fast_args(&root, &name))?;
    let node = wait_ready(&mut agent, &client, &name).await?;
    ensure!(
        node.metadata.uid == created.metadata.uid,
        "the Node was replaced"
    );
    let labels = node.metadata.labels.clone().context("no labels")?;
    ensure!(
        labels.get("owner").map(String::as_str) == Some("ops"),
        "{labels:?}"
    );
    ensure!(
        labels.get("kubernetes.io/arch") != Some(&"wrong".to_owned())
            && labels.get("kubernetes.io/hostname") == Some(&name),
        "{labels:?}"
    );
    let spec = node.spec.clone().unwrap_or_default();
    ensure!(
        spec.pod_cidr.as_deref() == Some("10.244.9.0/24"),
        "{spec:?}"
    );
    ensure!(
        node.status
            .as_ref()
            .and_then(|s| s.capacity.as_ref())
            .is_some_and(|c| c.contains_key("memory")),
        "no capacity posted"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_deleted_under_a_running_agent_is_registered_again() -> Result<()> {
    let root = root_fs()?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let client = client(&server).await?;
    let api = Api::<Node>::all(client.clone());
    let leases = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    let mut agent = Kubelet::start(
        &server,
        &with(fast_args(&root, &name), &["--pod-cidr", "10.244.4.0/24"]),
    )?;
    let node = wait_ready(&mut agent, &client, &name).await?;
    wait_lease(&mut agent, &client, &name).await?;
    api.delete(&name, &Default::default()).await?;

    let again = wait_for(
        &mut agent,
        "a new Node",
        Duration::from_secs(10),
        || async {
            Ok(api
                .get_opt(&name)
                .await?
                .filter(|n| n.metadata.uid != node.metadata.uid)
                .filter(|n| condition(n, "Ready").is_some_and(|c| c.status == "True")))
        },
    )
    .await?;
    ensure!(
        again.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()) == Some("10.244.4.0/24"),
        "{:?}",
        again.spec
    );
    // The Lease follows its new owner.
    wait_for(
        &mut agent,
        "lease owned by the new Node",
        Duration::from_secs(10),
        || async {
            let lease = leases.get(&name).await?;
            let owners = lease.metadata.owner_references.unwrap_or_default();
            Ok(
                (owners.len() == 1 && Some(&owners[0].uid) == again.metadata.uid.as_ref())
                    .then_some(()),
            )
        },
    )
    .await?;
    Ok(())
}
