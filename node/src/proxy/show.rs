//! Human-readable listing of a [`DesiredState`], in the spirit of
//! `cilium-dbg service list`: one row per frontend, one line per backend.
//! Used by `keelson-node lb desired` and `lb list`. Presentation only.

use std::fmt::Write as _;

use std::collections::BTreeMap;

use super::{
    maps::LiveService,
    model::{Algorithm, BackendState, DesiredState, Frontend, FrontendKind, LbService, Protocol},
};

/// The state as an aligned text table (ends with a newline).
pub fn table(state: &DesiredState) -> String {
    let rows = state
        .services
        .iter()
        .map(|(frontend, lb)| {
            (
                [
                    endpoint(frontend.ip, frontend.port, frontend.protocol),
                    kind(lb.kind).to_owned(),
                    service(lb),
                    flags(lb),
                ],
                backends(lb, frontend.protocol),
            )
        })
        .collect();
    render(["FRONTEND", "TYPE", "SERVICE", "FLAGS", "BACKENDS"], rows)
}

/// What the datapath holds (read back from the pinned maps), as
/// `keelson-node lb list` prints it: one row per frontend with its service
/// id and revision, one line per backend in slot order.
pub fn live_table(live: &BTreeMap<Frontend, LiveService>) -> String {
    let rows = live
        .iter()
        .map(|(frontend, service)| {
            let flags = service
                .affinity
                .map(|t| format!("affinity={}s", t.as_secs()))
                .unwrap_or_else(|| "-".to_owned());
            let backends = if service.backends.is_empty() {
                vec!["(none: connections refused)".to_owned()]
            } else {
                service
                    .backends
                    .iter()
                    .enumerate()
                    .map(|(i, (ip, port))| {
                        format!("{}) {}", i + 1, endpoint(*ip, *port, frontend.protocol))
                    })
                    .collect()
            };
            (
                [
                    service.service_id.to_string(),
                    endpoint(frontend.ip, frontend.port, frontend.protocol),
                    service.revision.to_string(),
                    flags,
                ],
                backends,
            )
        })
        .collect();
    render(["ID", "FRONTEND", "REVISION", "FLAGS", "BACKENDS"], rows)
}

/// Aligned columns; the last column may span several lines per row.
fn render(header: [&str; 5], rows: Vec<([String; 4], Vec<String>)>) -> String {
    let mut widths = [
        header[0].len(),
        header[1].len(),
        header[2].len(),
        header[3].len(),
    ];
    for (cells, _) in &rows {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.len());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: [&str; 4], last: &str| {
        for (cell, width) in cells.iter().zip(widths) {
            let _ = write!(out, "{cell:<width$}   ");
        }
        let _ = writeln!(out, "{last}");
    };
    line(
        &mut out,
        [header[0], header[1], header[2], header[3]],
        header[4],
    );
    for (cells, backends) in &rows {
        let [a, b, c, d] = cells;
        let mut backends = backends.iter();
        line(
            &mut out,
            [a, b, c, d],
            backends.next().map_or("", String::as_str),
        );
        for backend in backends {
            line(&mut out, ["", "", "", ""], backend);
        }
    }
    out
}

fn endpoint(ip: std::net::IpAddr, port: u16, protocol: Protocol) -> String {
    let protocol = match protocol {
        Protocol::Tcp => "TCP",
        Protocol::Udp => "UDP",
        Protocol::Sctp => "SCTP",
    };
    if ip.is_ipv6() {
        format!("[{ip}]:{port}/{protocol}")
    } else {
        format!("{ip}:{port}/{protocol}")
    }
}

fn kind(kind: FrontendKind) -> &'static str {
    match kind {
        FrontendKind::ClusterIp => "ClusterIP",
        FrontendKind::NodePort => "NodePort",
        FrontendKind::ExternalIp => "ExternalIP",
        FrontendKind::LoadBalancer => "LoadBalancer",
    }
}

fn service(lb: &LbService) -> String {
    if lb.port_name.is_empty() {
        lb.service.to_string()
    } else {
        format!("{}:{}", lb.service, lb.port_name)
    }
}

fn flags(lb: &LbService) -> String {
    let mut flags = vec![match lb.algorithm {
        Algorithm::Random => "random".to_owned(),
        Algorithm::Maglev => "maglev".to_owned(),
    }];
    if lb.external_local {
        flags.push("local".to_owned());
    }
    if let Some(timeout) = lb.affinity {
        flags.push(format!("affinity={}s", timeout.as_secs()));
    }
    flags.join(",")
}

fn backends(lb: &LbService, protocol: Protocol) -> Vec<String> {
    if lb.backends.is_empty() {
        return vec!["(none: connections refused)".to_owned()];
    }
    lb.backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let state = match b.state {
                BackendState::Active => "active",
                BackendState::Terminating => "terminating",
            };
            let node = b
                .node_name
                .as_deref()
                .map(|n| format!(", node {n}"))
                .unwrap_or_default();
            format!(
                "{} => {} ({state}{node})",
                i + 1,
                endpoint(b.ip, b.port, protocol)
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, time::Duration};

    use super::*;
    use crate::proxy::model::{Backend, Frontend, ServiceName};

    #[test]
    fn one_row_per_frontend_one_line_per_backend() {
        let service = ServiceName {
            namespace: "shop".into(),
            name: "web".into(),
        };
        let lb = |kind, backends: Vec<Backend>| LbService {
            service: service.clone(),
            port_name: "http".into(),
            kind,
            backends,
            algorithm: Algorithm::Maglev,
            affinity: Some(Duration::from_secs(600)),
            external_local: true,
        };
        let backend = |ip: &str, state, node: Option<&str>| Backend {
            ip: ip.parse().unwrap(),
            port: 8080,
            state,
            node_name: node.map(str::to_owned),
        };
        let state = DesiredState {
            services: BTreeMap::from([
                (
                    Frontend {
                        ip: "192.168.1.10".parse().unwrap(),
                        port: 30080,
                        protocol: Protocol::Tcp,
                    },
                    lb(
                        FrontendKind::NodePort,
                        vec![
                            backend("10.244.1.17", BackendState::Active, Some("node-a")),
                            backend("10.244.1.40", BackendState::Terminating, None),
                        ],
                    ),
                ),
                (
                    Frontend {
                        ip: "203.0.113.10".parse().unwrap(),
                        port: 80,
                        protocol: Protocol::Udp,
                    },
                    lb(FrontendKind::LoadBalancer, vec![]),
                ),
            ]),
        };
        let expected = "\
FRONTEND                 TYPE           SERVICE         FLAGS                        BACKENDS
192.168.1.10:30080/TCP   NodePort       shop/web:http   maglev,local,affinity=600s   1 => 10.244.1.17:8080/TCP (active, node node-a)
                                                                                     2 => 10.244.1.40:8080/TCP (terminating)
203.0.113.10:80/UDP      LoadBalancer   shop/web:http   maglev,local,affinity=600s   (none: connections refused)
";
        assert_eq!(table(&state), expected);
        assert_eq!(table(&DesiredState::default()).lines().count(), 1);
    }
}
