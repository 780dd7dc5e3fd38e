//! Flow records as users see them: decoded from the kernel's
//! [`FlowRecord`], enriched with the service name, serialised as one JSON
//! object per line; and the request a `flows` client sends, with its
//! filters. Pure values and functions; no I/O.

use std::net::IpAddr;

use keelson_ebpf_common::{
    flows::{
        FlowRecord, HOOK_CONNECT4, HOOK_SENDMSG4, HOOK_TC_INGRESS, VERDICT_DROPPED,
        VERDICT_FORWARDED, VERDICT_NO_BACKEND,
    },
    lb::{IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, words_ip},
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// What the load balancer did with a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Translated to a backend.
    Forwarded,
    /// The service has no backends: refused with `ECONNREFUSED` (at TC the
    /// packet is left to the node, which refuses it).
    NoBackend,
    /// Refused with `EHOSTUNREACH` (entry changing under the program), or
    /// at TC not translated (that, or no free SNAT port).
    Dropped,
}

impl Verdict {
    /// Parses `forwarded`, `no-backend`, `dropped` (any case, `_` or `-`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "forwarded" => Some(Self::Forwarded),
            "no-backend" => Some(Self::NoBackend),
            "dropped" | "error" => Some(Self::Dropped),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forwarded => "FORWARDED",
            Self::NoBackend => "NO_BACKEND",
            Self::Dropped => "DROPPED",
        }
    }
}

/// One load-balancing decision, as served to clients.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Wall-clock time, RFC 3339 with nanoseconds.
    pub time: String,
    /// The kernel's monotonic timestamp (ns).
    pub ktime_ns: u64,
    /// Where the decision was taken: `connect4` or `sendmsg4` (socket
    /// programs, ClusterIP and in-node traffic) or `tc-ingress` (the
    /// NodePort program: a packet arriving at the node for a NodePort,
    /// external or load-balancer IP).
    pub hook: String,
    pub verdict: Verdict,
    /// `TCP`, `UDP`, `SCTP` or the protocol number.
    pub protocol: String,
    /// `ip:port` of the client when the hook knows it (usually not at
    /// connect time of an unbound socket; always at TC).
    pub source: Option<String>,
    /// The service address the application asked for (`ip:port`).
    pub vip: String,
    /// The backend chosen (`ip:port`); `None` when refused.
    pub backend: Option<String>,
    /// TC flows: the source the backend sees (`ip:port`) — the node with
    /// SNAT (`externalTrafficPolicy: Cluster`), the client without.
    /// `None` for socket flows and refusals.
    #[serde(default)]
    pub translated_source: Option<String>,
    /// `namespace/name` of the service, when the agent knows the id.
    pub service: Option<String>,
    pub service_id: u32,
    pub backend_id: u32,
    pub socket_cookie: u64,
    pub netns_cookie: u64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("flow record is {0} bytes, expected {1}")]
    Size(usize, usize),
    #[error("flow record has unknown verdict {0}")]
    Verdict(u8),
    #[error("flow record has unknown address family {0}")]
    Family(u8),
}

/// Reads a [`FlowRecord`] from a ring-buffer item.
pub fn parse_record(bytes: &[u8]) -> Result<FlowRecord, DecodeError> {
    let want = std::mem::size_of::<FlowRecord>();
    if bytes.len() < want {
        return Err(DecodeError::Size(bytes.len(), want));
    }
    // SAFETY: `bytes` holds at least size_of::<FlowRecord>() bytes, the
    // type is `#[repr(C)]` plain integers (any bit pattern is valid), and
    // `read_unaligned` needs no alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<FlowRecord>()) })
}

fn endpoint(family: u8, words: [u32; 4], port_be: u16) -> Result<String, DecodeError> {
    let ip = words_ip(family, words).ok_or(DecodeError::Family(family))?;
    let port = u16::from_be(port_be);
    Ok(match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    })
}

/// Turns a kernel record into a [`Flow`]. `boot_offset_ns` is wall-clock
/// minus monotonic time (see [`boot_offset_ns`]); `service` names the
/// record's service id.
pub fn decode(
    record: &FlowRecord,
    boot_offset_ns: i128,
    service: Option<String>,
) -> Result<Flow, DecodeError> {
    let verdict = match record.verdict {
        VERDICT_FORWARDED => Verdict::Forwarded,
        VERDICT_NO_BACKEND => Verdict::NoBackend,
        VERDICT_DROPPED => Verdict::Dropped,
        other => return Err(DecodeError::Verdict(other)),
    };
    let protocol = match record.protocol {
        IPPROTO_TCP => "TCP".to_owned(),
        IPPROTO_UDP => "UDP".to_owned(),
        IPPROTO_SCTP => "SCTP".to_owned(),
        other => other.to_string(),
    };
    let hook = match record.hook {
        HOOK_CONNECT4 => "connect4".to_owned(),
        HOOK_SENDMSG4 => "sendmsg4".to_owned(),
        HOOK_TC_INGRESS => "tc-ingress".to_owned(),
        other => format!("hook{other}"),
    };
    let source = (record.src_address != [0; 4] || record.src_port != 0)
        .then(|| endpoint(record.family, record.src_address, record.src_port))
        .transpose()?;
    let backend = (verdict == Verdict::Forwarded)
        .then(|| endpoint(record.family, record.xlate_address, record.xlate_port))
        .transpose()?;
    let translated_source = (verdict == Verdict::Forwarded
        && (record.xlate_src_address != [0; 4] || record.xlate_src_port != 0))
        .then(|| {
            endpoint(
                record.family,
                record.xlate_src_address,
                record.xlate_src_port,
            )
        })
        .transpose()?;
    let wall = i128::from(record.timestamp_ns) + boot_offset_ns;
    let wall = u64::try_from(wall.max(0)).unwrap_or(u64::MAX);
    let time = humantime::format_rfc3339_nanos(
        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(wall),
    )
    .to_string();
    Ok(Flow {
        time,
        ktime_ns: record.timestamp_ns,
        hook,
        verdict,
        protocol,
        source,
        vip: endpoint(record.family, record.orig_address, record.orig_port)?,
        backend,
        translated_source,
        service,
        service_id: record.service_id,
        backend_id: record.backend_id,
        socket_cookie: record.socket_cookie,
        netns_cookie: record.netns_cookie,
    })
}

/// Wall-clock time minus `CLOCK_MONOTONIC` (what `bpf_ktime_get_ns` reads), in ns.
pub fn boot_offset_ns() -> i128 {
    let mono = clock_ns(libc::CLOCK_MONOTONIC);
    let real = clock_ns(libc::CLOCK_REALTIME);
    real - mono
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; both clocks always exist.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0;
    }
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// The one line a client sends after connecting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowRequest {
    /// Keep the connection open and stream new matching flows.
    #[serde(default)]
    pub follow: bool,
    /// Only flows of this `namespace/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Only flows with this verdict (`forwarded`, `no-backend`, `dropped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Only flows to this backend IP or from this source IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// How many recent matching flows to send first (default: all kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<usize>,
}

/// A parsed request's matching rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FlowFilter {
    pub service: Option<String>,
    pub verdict: Option<Verdict>,
    pub ip: Option<IpAddr>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("unknown verdict {0:?} (forwarded, no-backend, dropped)")]
    Verdict(String),
    #[error("--service must be NAMESPACE/NAME, got {0:?}")]
    Service(String),
}

impl FlowRequest {
    /// Validates the request into a filter.
    pub fn filter(&self) -> Result<FlowFilter, RequestError> {
        let verdict = match &self.verdict {
            Some(v) => Some(Verdict::parse(v).ok_or_else(|| RequestError::Verdict(v.clone()))?),
            None => None,
        };
        if let Some(s) = &self.service {
            let mut parts = s.split('/');
            let ok = matches!((parts.next(), parts.next(), parts.next()), (Some(ns), Some(n), None) if !ns.is_empty() && !n.is_empty());
            if !ok {
                return Err(RequestError::Service(s.clone()));
            }
        }
        Ok(FlowFilter {
            service: self.service.clone(),
            verdict,
            ip: self.ip,
        })
    }
}

impl FlowFilter {
    pub fn matches(&self, flow: &Flow) -> bool {
        if let Some(service) = &self.service
            && flow.service.as_deref() != Some(service.as_str())
        {
            return false;
        }
        if let Some(verdict) = self.verdict
            && flow.verdict != verdict
        {
            return false;
        }
        if let Some(ip) = self.ip {
            let host = |ep: &Option<String>| {
                ep.as_deref()
                    .and_then(|e| e.parse::<std::net::SocketAddr>().ok())
                    .map(|sa| sa.ip())
            };
            if host(&flow.backend) != Some(ip) && host(&flow.source) != Some(ip) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use keelson_ebpf_common::lb::{AF_INET, ipv4_words};

    use super::*;

    fn record(verdict: u8) -> FlowRecord {
        FlowRecord {
            timestamp_ns: 5_000_000_000,
            socket_cookie: 42,
            netns_cookie: 7,
            orig_address: ipv4_words("10.96.0.10".parse().unwrap()),
            xlate_address: ipv4_words("10.215.0.2".parse().unwrap()),
            service_id: 3,
            backend_id: 9,
            orig_port: 80u16.to_be(),
            xlate_port: 8080u16.to_be(),
            family: AF_INET,
            protocol: IPPROTO_TCP,
            verdict,
            hook: HOOK_CONNECT4,
            ..Default::default()
        }
    }

    fn bytes(r: &FlowRecord) -> Vec<u8> {
        // SAFETY: a plain #[repr(C)] value without padding holes.
        unsafe {
            std::slice::from_raw_parts(
                (r as *const FlowRecord).cast::<u8>(),
                std::mem::size_of::<FlowRecord>(),
            )
        }
        .to_vec()
    }

    #[test]
    fn decodes_a_forwarded_record() {
        let raw = bytes(&record(VERDICT_FORWARDED));
        let parsed = parse_record(&raw).unwrap();
        let flow = decode(&parsed, 1_000_000_000, Some("default/web".into())).unwrap();
        assert_eq!(flow.vip, "10.96.0.10:80");
        assert_eq!(flow.backend.as_deref(), Some("10.215.0.2:8080"));
        assert_eq!(flow.verdict, Verdict::Forwarded);
        assert_eq!(flow.protocol, "TCP");
        assert_eq!(flow.hook, "connect4");
        assert_eq!(flow.source, None);
        assert_eq!(flow.time, "1970-01-01T00:00:06.000000000Z");
        assert_eq!(flow.socket_cookie, 42);
        assert_eq!(flow.translated_source, None);
        let json = serde_json::to_value(&flow).unwrap();
        assert_eq!(json["verdict"], "FORWARDED");
        assert_eq!(json["service"], "default/web");
    }

    #[test]
    fn decodes_a_tc_record_with_both_tuples() {
        let mut tc = record(VERDICT_FORWARDED);
        tc.hook = HOOK_TC_INGRESS;
        tc.socket_cookie = 0;
        tc.src_address = ipv4_words("192.0.2.7".parse().unwrap());
        tc.src_port = 40_000u16.to_be();
        tc.orig_address = ipv4_words("10.216.0.1".parse().unwrap());
        tc.orig_port = 30_080u16.to_be();
        tc.xlate_src_address = ipv4_words("10.216.0.1".parse().unwrap());
        tc.xlate_src_port = 40_000u16.to_be();
        let flow = decode(&tc, 0, Some("default/web".into())).unwrap();
        assert_eq!(flow.hook, "tc-ingress");
        assert_eq!(flow.source.as_deref(), Some("192.0.2.7:40000"));
        assert_eq!(flow.vip, "10.216.0.1:30080");
        assert_eq!(flow.translated_source.as_deref(), Some("10.216.0.1:40000"));
        assert_eq!(flow.backend.as_deref(), Some("10.215.0.2:8080"));
        let json = serde_json::to_value(&flow).unwrap();
        assert_eq!(json["hook"], "tc-ingress");
        assert_eq!(json["translated_source"], "10.216.0.1:40000");
        // What older agents sent (no translated_source) still parses.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("translated_source");
        let parsed: Flow = serde_json::from_value(old).unwrap();
        assert_eq!(parsed.translated_source, None);
        // A refusal at TC names no translation.
        tc.verdict = VERDICT_NO_BACKEND;
        let refused = decode(&tc, 0, None).unwrap();
        assert_eq!((refused.backend, refused.translated_source), (None, None));
    }

    #[test]
    fn refused_records_have_no_backend_and_bad_ones_are_errors() {
        let flow = decode(&record(VERDICT_NO_BACKEND), 0, None).unwrap();
        assert_eq!(flow.verdict, Verdict::NoBackend);
        assert_eq!(flow.backend, None);
        assert_eq!(
            serde_json::to_value(&flow).unwrap()["verdict"],
            "NO_BACKEND"
        );
        assert_eq!(decode(&record(99), 0, None), Err(DecodeError::Verdict(99)));
        let mut bad = record(VERDICT_FORWARDED);
        bad.family = 3;
        assert_eq!(decode(&bad, 0, None), Err(DecodeError::Family(3)));
        assert!(matches!(
            parse_record(&[0u8; 10]),
            Err(DecodeError::Size(10, _))
        ));
    }

    #[test]
    fn filters_match_service_verdict_and_ip() {
        let flow = decode(&record(VERDICT_FORWARDED), 0, Some("default/web".into())).unwrap();
        let req = |json: &str| serde_json::from_str::<FlowRequest>(json).unwrap();
        assert!(req("{}").filter().unwrap().matches(&flow));
        assert!(
            req(r#"{"service":"default/web"}"#)
                .filter()
                .unwrap()
                .matches(&flow)
        );
        assert!(
            !req(r#"{"service":"default/db"}"#)
                .filter()
                .unwrap()
                .matches(&flow)
        );
        assert!(
            req(r#"{"verdict":"forwarded"}"#)
                .filter()
                .unwrap()
                .matches(&flow)
        );
        assert!(
            !req(r#"{"verdict":"no-backend"}"#)
                .filter()
                .unwrap()
                .matches(&flow)
        );
        assert!(
            req(r#"{"ip":"10.215.0.2"}"#)
                .filter()
                .unwrap()
                .matches(&flow)
        );
        assert!(
            !req(r#"{"ip":"10.215.1.2"}"#)
                .filter()
                .unwrap()
                .matches(&flow)
        );
        assert_eq!(
            req(r#"{"verdict":"maybe"}"#).filter(),
            Err(RequestError::Verdict("maybe".into()))
        );
        assert!(req(r#"{"service":"web"}"#).filter().is_err());
        assert!(serde_json::from_str::<FlowRequest>(r#"{"bogus":1}"#).is_err());
        let unnamed = decode(&record(VERDICT_FORWARDED), 0, None).unwrap();
        assert!(
            !req(r#"{"service":"default/web"}"#)
                .filter()
                .unwrap()
                .matches(&unnamed)
        );
    }
}
