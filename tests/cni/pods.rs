//! ADD, CHECK and DEL of real pods: the result JSON against the spec, the
//! links, addresses, routes and sysctls in the kernel, and TCP between two
//! pods and from the node to each.

use anyhow::Result;
use serde_json::{Value, json};

use super::*;

/// Every field of an ADD result, checked against the spec and the pod.
fn check_add_result(node: &Node, pod: &Pod, result: &Value, version: &str) -> Result<()> {
    let object = result.as_object().context("the result is not an object")?;
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["cniVersion", "dns", "interfaces", "ips", "routes"]);
    assert_eq!(result["cniVersion"], version);

    let interfaces = result["interfaces"].as_array().context("interfaces")?;
    assert_eq!(interfaces.len(), 2, "{result}");
    let host = &interfaces[0];
    let name = host["name"].as_str().context("interfaces[0].name")?;
    assert!(name.starts_with("kc") && name.len() == 15, "{name}");
    assert!(host.get("sandbox").is_none(), "the node end has no sandbox");
    let sandbox = &interfaces[1];
    assert_eq!(sandbox["name"], "eth0");
    assert_eq!(sandbox["sandbox"], pod.netns().display().to_string());
    for iface in interfaces {
        let mac = iface["mac"].as_str().context("mac")?;
        assert!(
            mac.len() == 17 && mac.split(':').all(|b| u8::from_str_radix(b, 16).is_ok()),
            "{mac}"
        );
    }

    let ip = pod_ip(result)?;
    assert!(node.cidr.contains(&ip), "{ip} outside {}", node.cidr);
    assert!(ip != node.cidr.network() && ip != node.gateway() && ip != node.cidr.broadcast());
    let mut want_ip = json!({
        "interface": 1,
        "address": format!("{ip}/32"),
        "gateway": node.gateway().to_string(),
    });
    if version != "1.0.0" {
        want_ip["version"] = json!("4");
    }
    assert_eq!(result["ips"], json!([want_ip]));
    assert_eq!(
        result["routes"],
        json!([{"dst": "0.0.0.0/0", "gw": node.gateway().to_string()}])
    );
    assert_eq!(result["dns"], json!({}));

    // The kernel agrees with the result.
    let node_info = link_info(&node.ns, name).context("node-side veth missing")?;
    let pod_info = link_info(&pod.ns, "eth0").context("pod eth0 missing")?;
    assert_eq!(node_info["address"], host["mac"]);
    assert_eq!(pod_info["address"], sandbox["mac"]);
    assert_eq!(node_info["mtu"], 1400);
    assert_eq!(pod_info["mtu"], 1400);
    assert_not_in_host(name)?;
    Ok(())
}

#[test]
fn two_pods_get_addresses_and_reach_each_other_and_the_node_reaches_both() -> Result<()> {
    let node = Node::new("10.244.0.0/24")?;
    let (a, b) = (Pod::new()?, Pod::new()?);
    let ra = node.add(&a)?;
    let rb = node.add(&b)?;
    check_add_result(&node, &a, &ra, "1.0.0")?;
    check_add_result(&node, &b, &rb, "1.0.0")?;
    let (ip_a, ip_b) = (pod_ip(&ra)?, pod_ip(&rb)?);
    assert_ne!(ip_a, ip_b);
    assert_eq!(node.allocated()?, {
        let mut v = vec![ip_a, ip_b];
        v.sort();
        v
    });
    let allocation = std::fs::read_to_string(node.ipam_dir().join(ip_a.to_string()))?;
    assert_eq!(allocation, format!("{}\neth0\ndefault/web-0\n", a.id));

    // Routes: a /32 per pod on the node, a default via the gateway in the pod.
    let (link_a, link_b) = (node_link(&ra)?, node_link(&rb)?);
    let node_routes = routes(&node.ns)?;
    for (ip, link) in [(ip_a, &link_a), (ip_b, &link_b)] {
        assert!(
            node_routes
                .iter()
                .any(|r| r["dst"] == ip.to_string() && r["dev"] == link.as_str()),
            "no route {ip} dev {link}: {node_routes:?}"
        );
    }
    let pod_routes = routes(&a.ns)?;
    assert!(
        pod_routes.iter().any(|r| r["dst"] == "default"
            && r["gateway"] == node.gateway().to_string()
            && r["dev"] == "eth0"),
        "{pod_routes:?}"
    );

    // Forwarding is on for the plugin's links only.
    assert_eq!(
        sysctl(&node.ns, &format!("net/ipv4/conf/{link_a}/forwarding"))?,
        "1"
    );
    assert_eq!(
        sysctl(&node.ns, &format!("net/ipv4/conf/{link_b}/forwarding"))?,
        "1"
    );
    assert_eq!(sysctl(&node.ns, "net/ipv4/ip_forward")?, "0");
    assert_eq!(sysctl(&node.ns, "net/ipv4/conf/lo/forwarding")?, "0");

    // Pod ↔ pod, routed through the node (no NAT: the server sees the
    // other pod's address).
    let listener_a = listen(&a.ns, ip_a, 8080)?;
    let listener_b = listen(&b.ns, ip_b, 8080)?;
    assert_eq!(tcp_roundtrip(&b.ns, &listener_a, ip_a, 8080)?, ip_b);
    assert_eq!(tcp_roundtrip(&a.ns, &listener_b, ip_b, 8080)?, ip_a);
    // Node → each pod, from the gateway address.
    assert_eq!(
        tcp_roundtrip(&node.ns, &listener_a, ip_a, 8080)?,
        node.gateway()
    );
    assert_eq!(
        tcp_roundtrip(&node.ns, &listener_b, ip_b, 8080)?,
        node.gateway()
    );

    // CHECK passes for both.
    node.check(&a, &ra)?.ok_empty()?;
    node.check(&b, &rb)?.ok_empty()?;
    Ok(())
}

#[test]
fn check_fails_once_the_pod_address_is_gone_or_the_container_is_unknown() -> Result<()> {
    let node = Node::new("10.244.1.0/24")?;
    let pod = Pod::new()?;
    let result = node.add(&pod)?;
    let ip = pod_ip(&result)?;
    node.check(&pod, &result)?.ok_empty()?;

    pod.ns
        .ip(&["addr", "del", &format!("{ip}/32"), "dev", "eth0"])?;
    let failed = node.check(&pod, &result)?;
    let error = failed.error()?;
    assert_eq!(error["code"], 102, "{error}");
    let details = error["details"].as_str().unwrap_or_default();
    assert!(details.contains(&format!("{ip}/32")), "{details}");

    // Put it back (the kernel flushed the routes with the last address):
    // CHECK passes again. A prevResult naming another address still fails.
    pod.ns
        .ip(&["addr", "add", &format!("{ip}/32"), "dev", "eth0"])?;
    let gateway = node.gateway().to_string();
    pod.ns.ip(&[
        "route", "add", "default", "via", &gateway, "dev", "eth0", "onlink",
    ])?;
    node.check(&pod, &result)?.ok_empty()?;
    let mut other = result.clone();
    other["ips"][0]["address"] = json!("10.244.1.200/32");
    assert_eq!(node.check(&pod, &other)?.code()?, 102);

    // The node side is checked as well: its forwarding sysctl, its state.
    let link = node_link(&result)?;
    let forwarding = format!("/proc/sys/net/ipv4/conf/{link}/forwarding");
    let path = forwarding.clone();
    node.ns.enter(move || Ok(std::fs::write(&path, "0")?))?;
    let error = node.check(&pod, &result)?.error()?;
    assert_eq!(error["code"], 102);
    assert!(
        error["details"]
            .as_str()
            .is_some_and(|d| d.contains("forwarding")),
        "{error}"
    );
    node.ns
        .enter(move || Ok(std::fs::write(&forwarding, "1")?))?;
    node.check(&pod, &result)?.ok_empty()?;
    node.ns.ip(&["link", "set", &link, "down"])?;
    let error = node.check(&pod, &result)?.error()?;
    assert_eq!(error["code"], 102);
    assert!(
        error["details"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("{link} is down"))),
        "{error}"
    );

    // An unknown container: code 3.
    let stranger = Pod::new()?;
    assert_eq!(node.check(&stranger, &result)?.code()?, 3);
    Ok(())
}

#[test]
fn del_removes_the_link_frees_the_address_and_is_idempotent() -> Result<()> {
    let node = Node::new("10.244.2.0/24")?;
    let pod = Pod::new()?;
    let result = node.add(&pod)?;
    let ip = pod_ip(&result)?;
    let link = node_link(&result)?;
    assert_eq!(node.allocated()?, vec![ip]);

    node.del(&pod.id, Some(&pod.netns()))?.ok_empty()?;
    assert!(link_info(&node.ns, &link).is_none(), "{link} survived DEL");
    assert!(link_info(&pod.ns, "eth0").is_none(), "eth0 survived DEL");
    assert!(
        !routes(&node.ns)?.iter().any(|r| r["dst"] == ip.to_string()),
        "the /32 route survived DEL"
    );
    assert_eq!(node.allocated()?, Vec::<Ipv4Addr>::new());

    // Twice, without a netns, and for a container never seen: all succeed.
    node.del(&pod.id, Some(&pod.netns()))?.ok_empty()?;
    node.del(&pod.id, None)?.ok_empty()?;
    node.del("never-added-container", Some(&pod.netns()))?
        .ok_empty()?;
    node.check(&pod, &result)?
        .code()
        .map(|c| assert_eq!(c, 3))?;

    // A pod whose namespace is already gone: DEL still frees its address.
    let gone = Pod::new()?;
    let gone_result = node.add(&gone)?;
    let gone_ip = pod_ip(&gone_result)?;
    let gone_id = gone.id.clone();
    let gone_path = gone.netns();
    drop(gone);
    assert!(!gone_path.exists());
    assert_eq!(node.allocated()?, vec![gone_ip]);
    node.del(&gone_id, Some(&gone_path))?.ok_empty()?;
    assert_eq!(node.allocated()?, Vec::<Ipv4Addr>::new());
    assert!(link_info(&node.ns, &node_link(&gone_result)?).is_none());
    Ok(())
}

#[test]
fn a_repeated_add_keeps_the_address_and_rebuilds_the_link() -> Result<()> {
    let node = Node::new("10.244.3.0/24")?;
    let pod = Pod::new()?;
    let first = node.add(&pod)?;
    // The runtime retries ADD after the pod's end vanished.
    pod.ns.ip(&["link", "del", "eth0"])?;
    assert!(node.check(&pod, &first)?.code()? == 102);
    let second = node.add(&pod)?;
    assert_eq!(pod_ip(&first)?, pod_ip(&second)?);
    assert_eq!(node_link(&first)?, node_link(&second)?);
    assert_eq!(node.allocated()?, vec![pod_ip(&first)?]);
    node.check(&pod, &second)?.ok_empty()?;
    // And once more with everything in place: the same again.
    let third = node.add(&pod)?;
    assert_eq!(pod_ip(&third)?, pod_ip(&first)?);
    node.check(&pod, &third)?.ok_empty()?;
    assert_eq!(
        node.ns.ip(&["-o", "link", "show"])?.matches("kc").count(),
        1,
        "one node-side veth per pod interface"
    );
    Ok(())
}
