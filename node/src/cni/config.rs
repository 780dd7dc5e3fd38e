//! The network configuration on the plugin's stdin: decoded, checked and
//! completed with defaults. Pure (bytes in, [`NetConf`] or a [`CniError`]
//! out), so every rule is unit-tested.
//!
//! ```json
//! {
//!   "cniVersion": "1.0.0",          // 0.3.0, 0.3.1, 0.4.0 or 1.0.0
//!   "name": "keelson",              // network name; names the IPAM directory
//!   "type": "keelson-cni",          // the binary the runtime runs
//!   "podCIDR": "10.244.0.0/24",     // this node's pod CIDR (IPv4, prefix ≤ 30)
//!   "mtu": 1500,                    // both veth ends; default 1500
//!   "dataDir": "/var/lib/keelson/cni", // IPAM store root; the default
//!   "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]}
//! }
//! ```
//! The pod CIDR may instead come as `ipam.subnet` (host-local's spelling);
//! the IPAM is built in, so `ipam.type` is ignored. Fields the runtime adds
//! (`prevResult`, `runtimeConfig`, `args`, …) are accepted; `prevResult`
//! is used by CHECK.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use super::{error::CniError, version::Version};

pub const DEFAULT_MTU: u32 = 1500;
pub const DEFAULT_DATA_DIR: &str = "/var/lib/keelson/cni";

/// DNS settings handed back to the runtime in the ADD result (the spec's
/// `dns` object); the plugin itself configures no resolver.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A validated network configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct NetConf {
    pub cni_version: Version,
    pub name: String,
    pub pod_cidr: Ipv4Net,
    pub mtu: u32,
    pub data_dir: PathBuf,
    pub dns: Dns,
    /// The previous result (CHECK and DEL in 0.4.0 and later), undecoded.
    pub prev_result: Option<serde_json::Value>,
}

impl NetConf {
    /// The pods' gateway: the pod CIDR's first address, held by every
    /// node-side veth.
    pub fn gateway(&self) -> Ipv4Addr {
        gateway_of(self.pod_cidr)
    }
}

/// The first address after the network address.
pub fn gateway_of(cidr: Ipv4Net) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(cidr.network()).saturating_add(1))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConf {
    name: Option<String>,
    #[serde(rename = "type")]
    plugin_type: Option<String>,
    #[serde(rename = "podCIDR", alias = "podCidr")]
    pod_cidr: Option<String>,
    ipam: Option<RawIpam>,
    mtu: Option<u32>,
    data_dir: Option<PathBuf>,
    dns: Option<Dns>,
    prev_result: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawIpam {
    subnet: Option<String>,
}

/// The config's `cniVersion` as written, when the input is a JSON object
/// holding one (for error results, even when the rest is wrong).
pub fn declared_version(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("cniVersion")?.as_str().map(str::to_owned)
}

/// The config's `type`, if it is a JSON object with one.
pub fn plugin_type(bytes: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    value.get("type")?.as_str().map(str::to_owned)
}

/// Decodes and validates the config read from stdin.
pub fn parse(bytes: &[u8]) -> Result<NetConf, CniError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| CniError::Decoding(format!("the network config is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(CniError::Decoding(
            "the network config must be a JSON object".to_owned(),
        ));
    }
    let cni_version = match value.get("cniVersion") {
        None => {
            return Err(CniError::IncompatibleVersion(format!(
                "the config has no cniVersion (0.1.0 implied); this plugin supports {}",
                super::version::SUPPORTED.join(", ")
            )));
        }
        Some(serde_json::Value::String(v)) => Version::parse(v).ok_or_else(|| {
            CniError::IncompatibleVersion(format!(
                "cniVersion {v:?} is not supported; this plugin supports {}",
                super::version::SUPPORTED.join(", ")
            ))
        })?,
        Some(other) => {
            return Err(CniError::Decoding(format!(
                "cniVersion must be a string, not {other}"
            )));
        }
    };
    let raw: RawConf = serde_json::from_value(value)
        .map_err(|e| CniError::Decoding(format!("decoding the network config: {e}")))?;

    let name = raw
        .name
        .ok_or_else(|| CniError::InvalidConfig("the config has no network name".to_owned()))?;
    validate_name(&name)?;
    if raw.plugin_type.as_deref().is_none_or(str::is_empty) {
        return Err(CniError::InvalidConfig(
            "the config has no plugin type".to_owned(),
        ));
    }
    let pod_cidr = pod_cidr(
        raw.pod_cidr.as_deref(),
        raw.ipam.as_ref().and_then(|i| i.subnet.as_deref()),
    )?;
    let mtu = raw.mtu.unwrap_or(DEFAULT_MTU);
    if !(68..=65535).contains(&mtu) {
        return Err(CniError::InvalidConfig(format!(
            "mtu {mtu} is outside 68..65535"
        )));
    }
    let data_dir = raw
        .data_dir
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    if !data_dir.is_absolute() {
        return Err(CniError::InvalidConfig(format!(
            "dataDir {} must be an absolute path",
            data_dir.display()
        )));
    }
    Ok(NetConf {
        cni_version,
        name,
        pod_cidr,
        mtu,
        data_dir,
        dns: raw.dns.unwrap_or_default(),
        prev_result: raw.prev_result,
    })
}

/// The spec's network name: starts alphanumeric, then alphanumerics, `_`,
/// `.` and `-`. It names a directory of the IPAM store, so this also
/// keeps it a single safe path component.
fn validate_name(name: &str) -> Result<(), CniError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CniError::InvalidConfig(format!(
            "network name {name:?} must start with a letter or digit and hold only letters, digits, '_', '.' and '-'"
        )))
    }
}

fn pod_cidr(pod_cidr: Option<&str>, ipam_subnet: Option<&str>) -> Result<Ipv4Net, CniError> {
    let parse = |field: &str, s: &str| -> Result<Ipv4Net, CniError> {
        let net: Ipv4Net = s.parse().map_err(|_| {
            CniError::InvalidConfig(format!(
                "{field} {s:?} is not an IPv4 CIDR (IPv6 pod networks are not supported yet)"
            ))
        })?;
        if net.trunc() != net {
            return Err(CniError::InvalidConfig(format!(
                "{field} {s:?} has host bits set (did you mean {}?)",
                net.trunc()
            )));
        }
        if net.prefix_len() > 30 {
            return Err(CniError::InvalidConfig(format!(
                "{field} {s:?} is too small: a pod CIDR needs a prefix of /30 or shorter (network, gateway, pods, broadcast)"
            )));
        }
        Ok(net)
    };
    match (pod_cidr, ipam_subnet) {
        (Some(a), Some(b)) => {
            let (a, b) = (parse("podCIDR", a)?, parse("ipam.subnet", b)?);
            if a != b {
                return Err(CniError::InvalidConfig(format!(
                    "podCIDR {a} and ipam.subnet {b} disagree"
                )));
            }
            Ok(a)
        }
        (Some(a), None) => parse("podCIDR", a),
        (None, Some(b)) => parse("ipam.subnet", b),
        (None, None) => Err(CniError::InvalidConfig(
            "the config has no podCIDR (or ipam.subnet)".to_owned(),
        )),
    }
}

/// The directory of one network's IPAM state.
pub fn network_dir(data_dir: &Path, network: &str) -> PathBuf {
    data_dir.join("networks").join(network)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cni::error::code;

    fn parse_json(v: serde_json::Value) -> Result<NetConf, CniError> {
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn a_full_config_parses() {
        let conf = parse_json(json!({
            "cniVersion": "1.0.0", "name": "keelson", "type": "keelson-cni",
            "podCIDR": "10.244.0.0/24", "mtu": 1450, "dataDir": "/tmp/x",
            "dns": {"nameservers": ["10.96.0.10"], "search": ["svc.cluster.local"]},
            "runtimeConfig": {"portMappings": []}, "unknownField": 1,
        }))
        .unwrap();
        assert_eq!(conf.cni_version, Version::V1_0_0);
        assert_eq!(conf.name, "keelson");
        assert_eq!(conf.pod_cidr, "10.244.0.0/24".parse::<Ipv4Net>().unwrap());
        assert_eq!(conf.gateway(), Ipv4Addr::new(10, 244, 0, 1));
        assert_eq!(conf.mtu, 1450);
        assert_eq!(conf.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(conf.dns.nameservers, vec!["10.96.0.10".to_owned()]);
        assert_eq!(conf.prev_result, None);
    }

    #[test]
    fn defaults_and_ipam_subnet() {
        let conf = parse_json(json!({
            "cniVersion": "0.3.1", "name": "k8s-pod-network", "type": "keelson-cni",
            "ipam": {"type": "host-local", "subnet": "10.1.0.0/16"},
        }))
        .unwrap();
        assert_eq!(conf.cni_version, Version::V0_3_1);
        assert_eq!(conf.pod_cidr, "10.1.0.0/16".parse::<Ipv4Net>().unwrap());
        assert_eq!(conf.mtu, DEFAULT_MTU);
        assert_eq!(conf.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(conf.dns, Dns::default());
    }

    #[test]
    fn each_rule_has_its_code() {
        let base = json!({"cniVersion": "1.0.0", "name": "n", "type": "keelson-cni",
                          "podCIDR": "10.244.0.0/24"});
        let with = |key: &str, value: serde_json::Value| {
            let mut v = base.clone();
            if value.is_null() {
                v.as_object_mut().unwrap().remove(key);
            } else {
                v[key] = value;
            }
            parse_json(v).map(|_| ()).map_err(|e| e.code())
        };
        assert_eq!(
            with("cniVersion", json!("9.9.9")),
            Err(code::INCOMPATIBLE_VERSION)
        );
        assert_eq!(
            with("cniVersion", json!("0.2.0")),
            Err(code::INCOMPATIBLE_VERSION)
        );
        assert_eq!(
            with("cniVersion", serde_json::Value::Null),
            Err(code::INCOMPATIBLE_VERSION)
        );
        assert_eq!(with("cniVersion", json!(1)), Err(code::DECODING_FAILURE));
        assert_eq!(with("mtu", json!("big")), Err(code::DECODING_FAILURE));
        assert_eq!(with("mtu", json!(-1)), Err(code::DECODING_FAILURE));
        assert_eq!(with("mtu", json!(10)), Err(code::INVALID_NETWORK_CONFIG));
        assert_eq!(with("podCIDR", json!(42)), Err(code::DECODING_FAILURE));
        assert_eq!(
            with("podCIDR", json!("banana")),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("podCIDR", json!("10.244.0.7/24")),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("podCIDR", json!("10.244.0.0/31")),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("podCIDR", json!("fd00::/64")),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("podCIDR", serde_json::Value::Null),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("name", json!("../etc")),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(with("name", json!("")), Err(code::INVALID_NETWORK_CONFIG));
        assert_eq!(
            with("name", serde_json::Value::Null),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("type", serde_json::Value::Null),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("dataDir", json!("relative/dir")),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(
            with("ipam", json!({"subnet": "10.9.0.0/24"})),
            Err(code::INVALID_NETWORK_CONFIG)
        );
        assert_eq!(with("ipam", json!({"subnet": "10.244.0.0/24"})), Ok(()));
        assert_eq!(with("podCIDR", json!("10.244.0.0/30")), Ok(()));
        assert_eq!(
            parse(b"{not json").unwrap_err().code(),
            code::DECODING_FAILURE
        );
        assert_eq!(parse(b"[1,2]").unwrap_err().code(), code::DECODING_FAILURE);
        assert_eq!(parse(b"").unwrap_err().code(), code::DECODING_FAILURE);
    }

    #[test]
    fn declared_version_survives_other_errors() {
        assert_eq!(
            declared_version(br#"{"cniVersion":"0.4.0","mtu":"x"}"#).as_deref(),
            Some("0.4.0")
        );
        assert_eq!(declared_version(b"nope"), None);
    }
}
