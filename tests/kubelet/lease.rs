//! The node Lease: held and owned by the node, renewed with microsecond
//! `renewTime`s, created again when deleted, and left to expire when the
//! agent is SIGKILLed.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::{api::coordination::v1::Lease, jiff::Timestamp};
use keelson_e2e::{server::ServerProcess, unique_name};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

use super::{Kubelet, client, fast_args, renew_time, root_fs, wait_for, wait_lease, wait_ready};

/// `2025-01-02T03:04:05.123456Z`: MicroTime's wire form.
fn is_micro_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 27
        && b[19] == b'.'
        && b[26] == b'Z'
        && b[20..26].iter().all(u8::is_ascii_digit)
        && format!("{}Z", &s[..19]).parse::<Timestamp>().is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_is_renewed_recreated_and_stops_after_sigkill() -> Result<()> {
    let root = root_fs()?;
    let server = ServerProcess::start()?;
    let name = unique_name('k');
    let mut agent = Kubelet::start(&server, &fast_args(&root, &name))?;
    let client = client(&server).await?;
    let node = wait_ready(&mut agent, &client, &name).await?;
    let lease = wait_lease(&mut agent, &client, &name).await?;

    // Held and owned by the Node.
    let spec = lease.spec.clone().context("no spec")?;
    ensure!(
        spec.holder_identity.as_deref() == Some(name.as_str()),
        "{spec:?}"
    );
    ensure!(spec.lease_duration_seconds == Some(40), "{spec:?}");
    let owners = lease.metadata.owner_references.clone().unwrap_or_default();
    ensure!(
        owners.len() == 1
            && owners[0].kind == "Node"
            && owners[0].api_version == "v1"
            && owners[0].name == name
            && Some(&owners[0].uid) == node.metadata.uid.as_ref(),
        "owners {owners:?} vs node uid {:?}",
        node.metadata.uid
    );
    // renewTime on the wire has microseconds.
    let raw = server.kubectl_ok(&[
        "get",
        "lease",
        "-n",
        "kube-node-lease",
        &name,
        "-o",
        "jsonpath={.spec.renewTime}",
    ])?;
    ensure!(is_micro_time(raw.trim()), "renewTime {raw:?}");

    // Renewed: the renewTime advances (1 s interval).
    let api = Api::<Lease>::namespaced(client.clone(), "kube-node-lease");
    let first = renew_time(&lease)?;
    let renewed = wait_for(
        &mut agent,
        "lease renewal",
        Duration::from_secs(5),
        || async {
            let lease = api.get(&name).await?;
            Ok((renew_time(&lease)? > first).then_some(lease))
        },
    )
    .await?;
    ensure!(
        renewed.resource_version() != lease.resource_version(),
        "a renewal is a write"
    );

    // Deleted: created again (a new object), still owned by the Node.
    api.delete(&name, &DeleteParams::default()).await?;
    let old_uid = lease.metadata.uid.clone();
    let recreated = wait_for(
        &mut agent,
        "recreated lease",
        Duration::from_secs(10),
        || async {
            Ok(api
                .get_opt(&name)
                .await?
                .filter(|l| l.metadata.uid != old_uid))
        },
    )
    .await?;
    ensure!(
        recreated.owner_references().first().map(|o| &o.uid) == node.metadata.uid.as_ref(),
        "{:?}",
        recreated.metadata.owner_references
    );

    // Another writer in between: the agent's renewal from its last copy
    // conflicts, is retried on a fresh read, and the node holds it again.
    api.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"holderIdentity": "someone-else"}})),
    )
    .await?;
    wait_for(
        &mut agent,
        "lease held again",
        Duration::from_secs(10),
        || async {
            let lease = api.get(&name).await?;
            Ok((lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_deref())
                == Some(name.as_str()))
            .then_some(()))
        },
    )
    .await?;
    ensure!(
        agent.log().contains("the node lease changed meanwhile"),
        "no conflict was retried; log:\n{}",
        agent.log()
    );

    // SIGKILL: no more renewals.
    agent.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let last = renew_time(&api.get(&name).await?)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = renew_time(&api.get(&name).await?)?;
    ensure!(
        after == last,
        "the lease was renewed after SIGKILL: {last} → {after}"
    );
    Ok(())
}
