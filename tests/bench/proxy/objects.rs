//! The benchmark's cluster: N ClusterIP Services (`bench/svc-<i>`, port 80
//! → target 8080, TCP) with one EndpointSlice each holding the same three
//! ready backends, as the API would hand them to kube-proxy or the agent.
//! Every proxy under test is programmed from these objects, so all of them
//! balance exactly the same services.

use std::net::Ipv4Addr;

use k8s_openapi::api::{
    core::v1::{Service, ServicePort, ServiceSpec},
    discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
};
use k8s_openapi::apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString};

/// The first service's cluster IP; service `i` has `FIRST_VIP + i`.
pub const FIRST_VIP: Ipv4Addr = Ipv4Addr::new(10, 96, 1, 0);
/// The service port every service exposes.
pub const SERVICE_PORT: u16 = 80;
/// The port the backends listen on.
pub const BACKEND_PORT: u16 = 8080;
/// The three backends (addresses of the backend namespace).
pub const BACKENDS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(10, 203, 1, 1),
    Ipv4Addr::new(10, 203, 1, 2),
    Ipv4Addr::new(10, 203, 1, 3),
];
/// The pod CIDR the kube-proxy layouts masquerade traffic from outside of.
pub const CLUSTER_CIDR: &str = "10.244.0.0/16";
pub const NAMESPACE: &str = "bench";

pub fn vip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(FIRST_VIP) + i as u32)
}

pub fn service_name(i: usize) -> String {
    format!("svc-{i}")
}

/// The services and their slices.
pub struct Cluster {
    pub services: Vec<Service>,
    pub slices: Vec<EndpointSlice>,
}

impl Cluster {
    pub fn new(n: usize) -> Self {
        Self {
            services: (0..n).map(service).collect(),
            slices: (0..n).map(|i| slice(i, &BACKENDS)).collect(),
        }
    }

    /// Replaces service `i`'s slice with one holding `backends`.
    pub fn set_endpoints(&mut self, i: usize, backends: &[Ipv4Addr]) {
        self.slices[i] = slice(i, backends);
    }
}

fn service(i: usize) -> Service {
    let ip = vip(i).to_string();
    Service {
        metadata: ObjectMeta {
            name: Some(service_name(i)),
            namespace: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some(ip.clone()),
            cluster_ips: Some(vec![ip]),
            ip_families: Some(vec!["IPv4".into()]),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: SERVICE_PORT.into(),
                target_port: Some(IntOrString::Int(BACKEND_PORT.into())),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn slice(i: usize, backends: &[Ipv4Addr]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(format!("{}-bench", service_name(i))),
            namespace: Some(NAMESPACE.into()),
            labels: Some([("kubernetes.io/service-name".to_owned(), service_name(i))].into()),
            ..ObjectMeta::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(
            backends
                .iter()
                .map(|ip| Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(EndpointConditions {
                        ready: Some(true),
                        serving: Some(true),
                        terminating: Some(false),
                    }),
                    ..Endpoint::default()
                })
                .collect(),
        ),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(BACKEND_PORT.into()),
            protocol: Some("TCP".into()),
            ..EndpointPort::default()
        }]),
    }
}
