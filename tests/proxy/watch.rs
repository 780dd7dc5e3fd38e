//! `proxy::watch::run` against a live server: the first state, the state
//! after creating a Service and its slices, and after each slice update
//! (endpoint terminating, nothing ready, slice deleted, Service deleted).

use std::{
    net::IpAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};
use keelson_e2e::server::{ServerProcess, tail};
use keelson_node::proxy::{
    desired::NodeContext,
    model::{
        Algorithm, Backend, BackendState, DesiredState, Frontend, FrontendKind, LbService, Protocol,
    },
    watch,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;
use tokio::sync::watch as channel;

use super::{Web, client, create_web, create_web_slices, endpoint, ip, server_port};

type Rx = channel::Receiver<Arc<DesiredState>>;

/// Waits (up to 20 s) until the received state satisfies `done`.
async fn wait_for(
    rx: &mut Rx,
    server: &ServerProcess,
    what: &str,
    done: impl Fn(&DesiredState) -> bool,
) -> Result<Arc<DesiredState>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let state = rx.borrow_and_update().clone();
        if done(&state) {
            return Ok(state);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => bail!("watch::run stopped while waiting for {what}"),
            Err(_) => bail!(
                "no state with {what} within 20s; last state:\n{}\nserver log tail:\n{}",
                keelson_node::proxy::show::table(&state),
                tail(&server.log(), 30)
            ),
        }
    }
}

fn tcp(ip: IpAddr, port: u16) -> Frontend {
    Frontend {
        ip,
        port,
        protocol: Protocol::Tcp,
    }
}

fn backend(addr: &str, state: BackendState, node: &str) -> Backend {
    Backend {
        ip: ip(addr),
        port: 8080,
        state,
        node_name: Some(node.to_owned()),
    }
}

fn http_backends(state: &DesiredState, web: &Web) -> Option<Vec<Backend>> {
    state
        .services
        .get(&tcp(IpAddr::V4(web.cluster_ip), 80))
        .map(|lb| lb.backends.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desired_state_follows_services_and_endpointslices() -> Result<()> {
    let server = ServerProcess::start()?;
    let client = client(&server).await?;
    let (tx, mut rx) = channel::channel(Arc::new(DesiredState::default()));
    let node = NodeContext::new("node-a", vec![ip("127.0.0.1"), ip("::1")]);
    let runner = tokio::spawn(watch::run(client.clone(), node, tx));

    // 1. The first state: the API server's own `default/kubernetes`.
    let kubernetes = tcp(ip("10.96.0.1"), 443);
    let first = wait_for(&mut rx, &server, "default/kubernetes", |s| {
        s.services.contains_key(&kubernetes)
    })
    .await?;
    let lb = &first.services[&kubernetes];
    assert_eq!(lb.kind, FrontendKind::ClusterIp);
    assert_eq!(lb.service.to_string(), "default/kubernetes");
    assert_eq!(lb.port_name, "https");
    assert_eq!(
        lb.backends,
        [Backend {
            ip: ip("127.0.0.1"),
            port: server_port(&server)?,
            state: BackendState::Active,
            node_name: None,
        }]
    );

    // 2. A NodePort Service with named ports, then its slices.
    let web = create_web(&client).await?;
    let started = Instant::now();
    create_web_slices(&client, &web).await?;
    let state = wait_for(&mut rx, &server, "shop/web with 3 backends", |s| {
        http_backends(s, &web).is_some_and(|b| b.len() == 3)
    })
    .await?;
    println!(
        "service + 3 slices created → desired state in {:?}",
        started.elapsed()
    );
    let active = BackendState::Active;
    let expected_http = vec![
        backend("10.244.1.17", active, "node-a"),
        backend("10.244.2.9", active, "node-b"),
        backend("10.244.3.5", active, "node-c"),
    ];
    let cluster = &state.services[&tcp(IpAddr::V4(web.cluster_ip), 80)];
    assert_eq!(
        cluster,
        &LbService {
            service: cluster.service.clone(),
            port_name: "http".into(),
            kind: FrontendKind::ClusterIp,
            backends: expected_http.clone(),
            algorithm: Algorithm::Random,
            affinity: Some(Duration::from_secs(10_800)),
            external_local: false,
        }
    );
    assert_eq!(cluster.service.to_string(), "shop/web");
    let node_port = &state.services[&tcp(ip("127.0.0.1"), web.http_node_port)];
    assert_eq!(node_port.kind, FrontendKind::NodePort);
    assert_eq!(node_port.algorithm, Algorithm::Maglev);
    assert_eq!(node_port.backends, expected_http);
    let dns = &state.services[&Frontend {
        ip: ip("127.0.0.1"),
        port: web.dns_node_port,
        protocol: Protocol::Udp,
    }];
    assert_eq!(
        dns.backends.iter().map(|b| b.port).collect::<Vec<_>>(),
        [5353, 5353, 5353]
    );
    // kubernetes + web: 2 ports × (cluster IP + one IPv4 node IP); the
    // IPv6 node IP and slice add nothing.
    assert_eq!(state.services.len(), 5, "{:#?}", state.services.keys());

    // 3. An endpoint starts terminating: it leaves the set at once.
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "shop");
    let patch = |endpoints| Patch::Merge(json!({ "endpoints": endpoints }));
    let started = Instant::now();
    slices
        .patch(
            "web-abc12",
            &PatchParams::default(),
            &patch(json!([
                endpoint("10.244.1.17", "node-a", false, true, true),
                endpoint("10.244.2.9", "node-b", true, true, false)
            ])),
        )
        .await?;
    let written = started.elapsed();
    wait_for(&mut rx, &server, "10.244.1.17 gone", |s| {
        http_backends(s, &web)
            == Some(vec![
                backend("10.244.2.9", active, "node-b"),
                backend("10.244.3.5", active, "node-c"),
            ])
    })
    .await?;
    println!(
        "endpoint marked terminating → desired state in {:?} (API write took {written:?})",
        started.elapsed()
    );

    // 4. Nothing ready anywhere: the serving terminating endpoints serve.
    let started = Instant::now();
    slices
        .patch(
            "web-abc12",
            &PatchParams::default(),
            &patch(json!([
                endpoint("10.244.1.17", "node-a", false, true, true),
                endpoint("10.244.2.9", "node-b", false, false, false)
            ])),
        )
        .await?;
    slices
        .patch(
            "web-def34",
            &PatchParams::default(),
            &patch(json!([
                endpoint("10.244.1.40", "node-a", false, true, true),
                endpoint("10.244.3.5", "node-c", false, false, false)
            ])),
        )
        .await?;
    let terminating = BackendState::Terminating;
    wait_for(&mut rx, &server, "terminating fallback", |s| {
        http_backends(s, &web)
            == Some(vec![
                backend("10.244.1.17", terminating, "node-a"),
                backend("10.244.1.40", terminating, "node-a"),
            ])
    })
    .await?;
    println!(
        "two slices updated, none ready → terminating fallback in {:?}",
        started.elapsed()
    );

    // 5. A slice goes away.
    let started = Instant::now();
    slices.delete("web-def34", &DeleteParams::default()).await?;
    wait_for(&mut rx, &server, "web-def34 gone", |s| {
        http_backends(s, &web) == Some(vec![backend("10.244.1.17", terminating, "node-a")])
    })
    .await?;
    println!("slice deleted → desired state in {:?}", started.elapsed());

    // 6. The Service goes away: its frontends with it.
    let started = Instant::now();
    Api::<Service>::namespaced(client.clone(), "shop")
        .delete("web", &DeleteParams::default())
        .await?;
    let state = wait_for(&mut rx, &server, "shop/web gone", |s| {
        s.services.values().all(|lb| lb.service.name != "web")
    })
    .await?;
    println!("service deleted → desired state in {:?}", started.elapsed());
    assert_eq!(
        state.services.keys().copied().collect::<Vec<_>>(),
        [kubernetes]
    );

    // 7. The consumer leaves: run returns Ok.
    drop(rx);
    let result = tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .context("watch::run did not stop after its receiver was dropped")??;
    result.context("watch::run")?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_state_waits_for_both_lists_and_is_sent_even_if_unchanged() -> Result<()> {
    let server = ServerProcess::start()?;
    let client = client(&server).await?;
    let web = create_web(&client).await?;
    create_web_slices(&client, &web).await?;

    // Started after the objects exist: the very first state sent is the
    // complete one (never Services without their endpoints).
    let (tx, mut rx) = channel::channel(Arc::new(DesiredState::default()));
    let runner = tokio::spawn(watch::run(
        client.clone(),
        NodeContext::new("node-a", vec![]),
        tx,
    ));
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .context("no first state within 20s")??;
    let first = rx.borrow_and_update().clone();
    assert_eq!(
        http_backends(&first, &web).map(|b| b.len()),
        Some(3),
        "{}",
        keelson_node::proxy::show::table(&first)
    );

    // A channel that already holds exactly the state still gets a send:
    // the consumer learns that the watch is synced.
    let (tx2, mut rx2) = channel::channel(first.clone());
    let runner2 = tokio::spawn(watch::run(
        client.clone(),
        NodeContext::new("node-a", vec![]),
        tx2,
    ));
    tokio::time::timeout(Duration::from_secs(20), rx2.changed())
        .await
        .context("no first send on a channel already holding the state")??;
    assert_eq!(*rx2.borrow_and_update(), first);

    // A change that does not alter the state (a label on a slice) sends
    // nothing; the next real change does.
    let slices = Api::<EndpointSlice>::namespaced(client.clone(), "shop");
    slices
        .patch(
            "web-abc12",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"touched": "yes"}}})),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !rx.has_changed()?,
        "a no-op change was sent: {}",
        keelson_node::proxy::show::table(&rx.borrow())
    );
    slices.delete("web-abc12", &DeleteParams::default()).await?;
    tokio::time::timeout(Duration::from_secs(20), rx.changed())
        .await
        .context("no state after deleting a slice")??;
    // Left: web-def34's ready 10.244.3.5 (its terminating one stays out).
    assert_eq!(
        http_backends(&rx.borrow_and_update(), &web),
        Some(vec![backend("10.244.3.5", BackendState::Active, "node-c")])
    );

    drop((rx, rx2));
    for runner in [runner, runner2] {
        tokio::time::timeout(Duration::from_secs(5), runner)
            .await
            .context("watch::run did not stop")???;
    }
    Ok(())
}
