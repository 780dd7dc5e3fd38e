//! The ADD result exactly as the spec words it (`cniVersion`, `interfaces`
//! with the pod's `sandbox`, `ips` pointing at their interface by index,
//! with the `gateway`, `routes`, `dns`), rendered in the config's version:
//! before 1.0.0 every IP also carries `"version": "4"`. Pure.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::{config::Dns, version::Version};

/// What ADD made, in plain values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub node_ifname: String,
    pub node_mac: String,
    pub pod_ifname: String,
    pub pod_mac: String,
    /// The pod's network namespace path (`CNI_NETNS`).
    pub sandbox: String,
    pub ip: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

/// The pod's address as configured and reported: a /32 (routed model).
pub fn pod_address(ip: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::from(ip)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AddResult<'a> {
    cni_version: &'static str,
    interfaces: Vec<Interface<'a>>,
    ips: Vec<IpConfig>,
    routes: Vec<Route>,
    dns: &'a Dns,
}

#[derive(Serialize)]
struct Interface<'a> {
    name: &'a str,
    mac: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sandbox: Option<&'a str>,
}

#[derive(Serialize)]
struct IpConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'static str>,
    interface: usize,
    address: String,
    gateway: String,
}

#[derive(Serialize)]
struct Route {
    dst: String,
    gw: String,
}

/// Index of the pod's interface in `interfaces`.
pub const POD_INTERFACE_INDEX: usize = 1;

/// The ADD result as JSON, its fields in the spec's order.
pub fn add_result(version: Version, attachment: &Attachment, dns: &Dns) -> String {
    let result = AddResult {
        cni_version: version.as_str(),
        interfaces: vec![
            Interface {
                name: &attachment.node_ifname,
                mac: &attachment.node_mac,
                sandbox: None,
            },
            Interface {
                name: &attachment.pod_ifname,
                mac: &attachment.pod_mac,
                sandbox: Some(&attachment.sandbox),
            },
        ],
        ips: vec![IpConfig {
            version: version.ip_has_version_field().then_some("4"),
            interface: POD_INTERFACE_INDEX,
            address: pod_address(attachment.ip).to_string(),
            gateway: attachment.gateway.to_string(),
        }],
        routes: vec![Route {
            dst: "0.0.0.0/0".to_owned(),
            gw: attachment.gateway.to_string(),
        }],
        dns,
    };
    // Strings, integers and vectors of them always serialise.
    serde_json::to_string(&result).unwrap_or_default()
}

/// The pod addresses a previous result (CHECK's `prevResult`) lists for
/// the interface named `ifname`, or for no interface in particular.
pub fn prev_result_ips(prev: &serde_json::Value, ifname: &str) -> Option<Vec<Ipv4Net>> {
    let interfaces = prev.get("interfaces").and_then(|i| i.as_array());
    let ips = prev.get("ips")?.as_array()?;
    Some(
        ips.iter()
            .filter(
                |ip| match (ip.get("interface").and_then(|i| i.as_u64()), interfaces) {
                    (Some(index), Some(interfaces)) => {
                        usize::try_from(index)
                            .ok()
                            .and_then(|i| interfaces.get(i))
                            .and_then(|i| i.get("name"))
                            .and_then(|n| n.as_str())
                            == Some(ifname)
                    }
                    _ => true,
                },
            )
            .filter_map(|ip| ip.get("address")?.as_str()?.parse().ok())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parsed(version: Version, dns: &Dns) -> serde_json::Value {
        serde_json::from_str(&add_result(version, &attachment(), dns)).unwrap()
    }

    fn attachment() -> Attachment {
        Attachment {
            node_ifname: "kc0123456789abc".into(),
            node_mac: "aa:bb:cc:dd:ee:01".into(),
            pod_ifname: "eth0".into(),
            pod_mac: "aa:bb:cc:dd:ee:02".into(),
            sandbox: "/var/run/netns/cni-1".into(),
            ip: Ipv4Addr::new(10, 244, 0, 7),
            gateway: Ipv4Addr::new(10, 244, 0, 1),
        }
    }

    #[test]
    fn one_oh_result_matches_the_spec() {
        let dns = Dns {
            nameservers: vec!["10.96.0.10".into()],
            ..Dns::default()
        };
        assert_eq!(
            parsed(Version::V1_0_0, &dns),
            json!({
                "cniVersion": "1.0.0",
                "interfaces": [
                    {"name": "kc0123456789abc", "mac": "aa:bb:cc:dd:ee:01"},
                    {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/var/run/netns/cni-1"},
                ],
                "ips": [{"interface": 1, "address": "10.244.0.7/32", "gateway": "10.244.0.1"}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.0.1"}],
                "dns": {"nameservers": ["10.96.0.10"]},
            })
        );
    }

    #[test]
    fn fields_come_in_the_spec_order() {
        let text = add_result(Version::V1_0_0, &attachment(), &Dns::default());
        let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
        assert!(at("cniVersion") < at("interfaces"));
        assert!(at("interfaces") < at("ips"));
        assert!(at("ips") < at("routes"));
        assert!(at("routes") < at("dns"));
    }

    #[test]
    fn older_results_carry_the_ip_version() {
        for v in [Version::V0_3_0, Version::V0_3_1, Version::V0_4_0] {
            let r = parsed(v, &Dns::default());
            assert_eq!(r["cniVersion"], v.as_str());
            assert_eq!(r["ips"][0]["version"], "4");
            assert_eq!(r["dns"], json!({}));
        }
    }

    #[test]
    fn prev_result_ips_follow_the_interface_index() {
        let r = parsed(Version::V1_0_0, &Dns::default());
        assert_eq!(
            prev_result_ips(&r, "eth0"),
            Some(vec!["10.244.0.7/32".parse().unwrap()])
        );
        assert_eq!(prev_result_ips(&r, "eth1"), Some(vec![]));
        assert_eq!(
            prev_result_ips(&json!({"cniVersion": "1.0.0"}), "eth0"),
            None
        );
        let no_index = json!({"ips": [{"address": "10.0.0.2/24"}]});
        assert_eq!(
            prev_result_ips(&no_index, "eth0"),
            Some(vec!["10.0.0.2/24".parse().unwrap()])
        );
    }
}
