//! The IPAM store under real concurrency and at its limits: 20 plugin
//! processes at once never share an address; a full pool answers with a
//! clear error and leaves nothing behind; a freed address is handed out
//! again.

use std::collections::HashSet;

use anyhow::Result;

use super::*;

#[test]
fn twenty_concurrent_adds_never_duplicate_an_address() -> Result<()> {
    let node = Node::new("10.244.10.0/24")?;
    let pods = (0..20).map(|_| Pod::new()).collect::<Result<Vec<_>>>()?;
    let config = node.config().to_string();
    let netns: Vec<String> = pods
        .iter()
        .map(|p| p.netns().display().to_string())
        .collect();
    // Start them all before waiting for any.
    let children = pods
        .iter()
        .zip(&netns)
        .map(|(pod, ns)| node.spawn(&Node::env("ADD", &pod.id, Some(ns)), &config))
        .collect::<Result<Vec<_>>>()?;
    let results = children
        .into_iter()
        .map(|c| wait(c)?.json())
        .collect::<Result<Vec<_>>>()?;

    let ips = results.iter().map(pod_ip).collect::<Result<Vec<_>>>()?;
    let unique: HashSet<_> = ips.iter().copied().collect();
    assert_eq!(unique.len(), 20, "duplicate addresses: {ips:?}");
    let mut sorted = ips.clone();
    sorted.sort();
    assert_eq!(node.allocated()?, sorted);
    let node_routes = routes(&node.ns)?;
    for ((pod, result), ip) in pods.iter().zip(&results).zip(&ips) {
        assert!(node.cidr.contains(ip) && *ip != node.gateway());
        let addrs = pod.ns.ip(&["-4", "-o", "addr", "show", "dev", "eth0"])?;
        assert!(addrs.contains(&format!("{ip}/32")), "{addrs}");
        let link = node_link(result)?;
        assert!(
            node_routes
                .iter()
                .any(|r| r["dst"] == ip.to_string() && r["dev"] == link.as_str()),
            "no route for {ip}"
        );
    }

    // And 20 concurrent DELs free them all.
    let children = pods
        .iter()
        .zip(&netns)
        .map(|(pod, ns)| node.spawn(&Node::env("DEL", &pod.id, Some(ns)), &config))
        .collect::<Result<Vec<_>>>()?;
    for child in children {
        wait(child)?.ok_empty()?;
    }
    assert_eq!(node.allocated()?, Vec::<Ipv4Addr>::new());
    Ok(())
}

#[test]
fn a_full_pool_fails_clearly_and_a_freed_address_is_reused() -> Result<()> {
    // A /29: .0 network, .1 gateway, .7 broadcast → five pods, .2 to .6.
    let node = Node::new("10.244.20.0/29")?;
    let pods = (0..6).map(|_| Pod::new()).collect::<Result<Vec<_>>>()?;
    let mut ips = Vec::new();
    for pod in &pods[..5] {
        ips.push(pod_ip(&node.add(pod)?)?);
    }
    let want: Vec<Ipv4Addr> = (2..=6).map(|i| Ipv4Addr::new(10, 244, 20, i)).collect();
    assert_eq!(
        ips, want,
        "handed out in order, skipping network and gateway"
    );

    let sixth = &pods[5];
    let full = node.cmd("ADD", sixth, &node.config())?;
    let error = full.error()?;
    assert_eq!(error["code"], 100, "{error}");
    assert_eq!(error["msg"], "address pool exhausted");
    assert_eq!(error["cniVersion"], "1.0.0");
    let details = error["details"].as_str().unwrap_or_default();
    assert!(
        details.contains("10.244.20.0/29") && details.contains('5'),
        "{details}"
    );
    // Nothing of the failed ADD is left: no link in its netns, no file.
    assert!(link_info(&sixth.ns, "eth0").is_none());
    assert_eq!(node.allocated()?, want);

    // Free .4; the next ADD gets exactly that address back.
    node.del(&pods[2].id, Some(&pods[2].netns()))?.ok_empty()?;
    let reused = pod_ip(&node.add(sixth)?)?;
    assert_eq!(reused, Ipv4Addr::new(10, 244, 20, 4));
    // The pod on the reused address works.
    let listener = listen(&sixth.ns, reused, 9000)?;
    assert_eq!(tcp_roundtrip(&pods[0].ns, &listener, reused, 9000)?, ips[0]);
    Ok(())
}
