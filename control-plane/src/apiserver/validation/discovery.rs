//! `discovery.k8s.io/v1` EndpointSlice: port defaults, address type,
//! addresses valid for that type, ports; `addressType` is immutable.

use std::collections::HashSet;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::Value;

use super::Kind;
use super::core::special_ip_errors;
use super::defaults;
use super::meta;
use super::names;
use super::path::Path;
use crate::apiserver::status::{FieldError, FieldErrorKind};

const ADDRESS_TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const MAX_ENDPOINTS: usize = 1000;
const MAX_ADDRESSES: usize = 100;
const MAX_PORTS: usize = 20000;

fn too_many(path: Path, n: usize, max: usize) -> FieldError {
    FieldError::new(
        FieldErrorKind::TooMany,
        path,
        Some(Value::from(n)),
        format!("must have at most {max} items"),
    )
}

/// `IsFullyQualifiedDomainName`.
fn fqdn(name: &str, path: &Path, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = names::is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, name, msgs.join(",")));
        return;
    }
    if name.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        ));
        return;
    }
    for label in name.split('.') {
        let msgs = names::is_dns1123_label(label);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(path, label, msgs.join(",")));
            return;
        }
    }
}

impl Kind for EndpointSlice {
    fn default(&mut self) {
        defaults::endpoint_slice(self);
    }

    fn validate(&self, _raw: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let address_type = self.address_type.as_str();
        let endpoints = self.endpoints.as_deref().unwrap_or_default();
        let ep_path = Path::root("endpoints");
        if endpoints.len() > MAX_ENDPOINTS {
            errs.push(too_many(ep_path.clone(), endpoints.len(), MAX_ENDPOINTS));
        } else {
            for (i, ep) in endpoints.iter().enumerate() {
                let p = ep_path.index(i);
                let ap = p.child("addresses");
                if ep.addresses.is_empty() {
                    errs.push(FieldError::required(&ap, "must contain at least 1 address"));
                } else if ep.addresses.len() > MAX_ADDRESSES {
                    errs.push(too_many(ap.clone(), ep.addresses.len(), MAX_ADDRESSES));
                }
                for (j, addr) in ep.addresses.iter().enumerate() {
                    let a = ap.index(j);
                    match address_type {
                        "IPv4" => match names::parse_ip(addr) {
                            Some(ip) if ip.is_ipv4() => special_ip_errors(addr, &a, &mut errs),
                            _ => errs.push(FieldError::invalid(
                                &a,
                                addr.as_str(),
                                "must be a valid IPv4 address",
                            )),
                        },
                        "IPv6" => match names::parse_ip(addr) {
                            Some(ip) if ip.is_ipv6() => special_ip_errors(addr, &a, &mut errs),
                            _ => errs.push(FieldError::invalid(
                                &a,
                                addr.as_str(),
                                "must be a valid IPv6 address",
                            )),
                        },
                        "FQDN" => fqdn(addr, &a, &mut errs),
                        _ => {}
                    }
                }
                if let Some(node) = ep.node_name.as_deref() {
                    for msg in names::is_dns1123_subdomain(node) {
                        errs.push(FieldError::invalid(p.child("nodeName"), node, msg));
                    }
                }
                if let Some(h) = ep.hostname.as_deref() {
                    for msg in names::is_dns1123_label(h) {
                        errs.push(FieldError::invalid(p.child("hostname"), h, msg));
                    }
                }
            }
        }
        match address_type {
            "" => errs.push(FieldError::required(Path::root("addressType"), "")),
            t if ADDRESS_TYPES.contains(&t) => {}
            t => errs.push(FieldError::not_supported(
                Path::root("addressType"),
                t,
                ADDRESS_TYPES,
            )),
        }
        let ports = self.ports.as_deref().unwrap_or_default();
        let ports_path = Path::root("ports");
        if ports.len() > MAX_PORTS {
            errs.push(too_many(ports_path, ports.len(), MAX_PORTS));
            return errs;
        }
        let mut seen = HashSet::new();
        for (i, port) in ports.iter().enumerate() {
            let p = ports_path.index(i);
            let name = port.name.as_deref().unwrap_or("");
            if !name.is_empty() {
                for msg in names::is_dns1123_label(name) {
                    errs.push(FieldError::invalid(p.child("name"), name, msg));
                }
            }
            if !seen.insert(name) {
                errs.push(FieldError::duplicate(p.child("name"), name));
            }
            if let Some(n) = port.port {
                for msg in names::is_valid_port_num(i64::from(n)) {
                    errs.push(FieldError::invalid(p.child("port"), n, msg));
                }
            }
            match port.protocol.as_deref() {
                None => errs.push(FieldError::required(p.child("protocol"), "")),
                Some(v) if PROTOCOLS.contains(&v) => {}
                Some(v) => errs.push(FieldError::not_supported(p.child("protocol"), v, PROTOCOLS)),
            }
            if let Some(ap) = port.app_protocol.as_deref() {
                for msg in names::is_qualified_name(ap) {
                    errs.push(FieldError::invalid(p.child("appProtocol"), ap, msg));
                }
            }
        }
        errs
    }

    fn validate_update(&self, old: &Self) -> Vec<FieldError> {
        meta::immutable(
            &self.address_type,
            &old.address_type,
            &Path::root("addressType"),
        )
        .into_iter()
        .collect()
    }
}
