//! Tests of the protobuf decoder against the real encoder: objects are
//! built as `k8s-pb` (prost) values and encoded with `prost::Message`, then
//! decoded here and checked against hand-written kube JSON or, for every
//! field of every supported kind, against `k8s-openapi` deserialized
//! strictly (no ignored field).

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{Value, json};

use super::schema::{self, Msg, Ty};
use super::{ProtobufError, decode, decode_object};

// ---------------------------------------------------------------- helpers

/// `k8s\0` + runtime.Unknown around `raw`, as client-go's protobuf serializer writes it.
fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

fn s(v: &str) -> Option<String> {
    Some(v.to_owned())
}

/// Go always writes non-pointer strings, ints and structs, so kubectl's
/// ObjectMeta carries every zero value; this reproduces that.
fn go_meta(name: &str, labels: &[(&str, &str)]) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(""),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..Default::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn int(i: i32) -> IntOrString {
    IntOrString {
        r#type: Some(0),
        int_val: Some(i),
        str_val: s(""),
    }
}

fn string(v: &str) -> IntOrString {
    IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    }
}

fn quantity(v: &str) -> Quantity {
    Quantity { string: s(v) }
}

fn ok(api_version: &str, kind: &str, raw: Vec<u8>) -> Value {
    match decode(&envelope(api_version, kind, raw)) {
        Ok(v) => v,
        Err(e) => panic!("decoding {api_version}/{kind} failed: {e}"),
    }
}

// ----------------------------------------------- hand-written expectations

/// The exact bytes kubectl 1.32 posted for `kubectl create namespace x`.
const KUBECTL_NAMESPACE: &[u8] = &[
    0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61, 0x6d, 0x65,
    0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x19, 0x0a, 0x11, 0x0a, 0x01, 0x78, 0x12, 0x00, 0x1a, 0x00,
    0x22, 0x00, 0x2a, 0x00, 0x32, 0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00,
    0x1a, 0x00, 0x22, 0x00,
];

#[test]
fn kubectl_namespace_body_decodes_to_the_json_kubectl_would_send() {
    let v = decode_object(KUBECTL_NAMESPACE).expect("decodes");
    assert_eq!(
        v,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "x"},
            "spec": {},
            "status": {},
        })
    );
}

#[test]
fn deployment_as_kubectl_builds_it() {
    let container = core::Container {
        name: s("web"),
        image: s("keelson.local/web:1"),
        working_dir: s(""),
        ports: vec![core::ContainerPort {
            name: s(""),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s(""),
            host_ip: s(""),
        }],
        resources: Some(core::ResourceRequirements::default()),
        termination_message_path: s(""),
        termination_message_policy: s(""),
        image_pull_policy: s(""),
        stdin: Some(false),
        stdin_once: Some(false),
        tty: Some(false),
        ..Default::default()
    };
    let d = apps::Deployment {
        metadata: Some(go_meta("web", &[("app", "web")])),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(2),
            selector: Some(meta::LabelSelector {
                match_labels: labels(&[("app", "web")]),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("", &[("app", "web")])),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    restart_policy: s(""),
                    dns_policy: s(""),
                    service_account_name: s(""),
                    service_account: s(""),
                    node_name: s(""),
                    host_network: Some(false),
                    host_pid: Some(false),
                    host_ipc: Some(false),
                    hostname: s(""),
                    subdomain: s(""),
                    scheduler_name: s(""),
                    priority_class_name: s(""),
                    ..Default::default()
                }),
            }),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s(""),
                rolling_update: None,
            }),
            min_ready_seconds: Some(0),
            paused: Some(false),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus {
            observed_generation: Some(0),
            replicas: Some(0),
            updated_replicas: Some(0),
            ready_replicas: Some(0),
            available_replicas: Some(0),
            unavailable_replicas: Some(0),
            ..Default::default()
        }),
    };
    let v = ok("apps/v1", "Deployment", d.encode_to_vec());
    assert_eq!(
        v,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": "keelson.local/web:1",
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }],
                    },
                },
                "strategy": {},
            },
            "status": {},
        })
    );
}

#[test]
fn explicit_zeros_of_pointer_fields_survive_and_zeros_of_plain_fields_do_not() {
    let pod_spec = core::PodSpec {
        containers: vec![core::Container {
            name: s("c"),
            security_context: Some(core::SecurityContext {
                run_as_user: Some(0),
                privileged: Some(false),
                ..Default::default()
            }),
            liveness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    http_get: Some(core::HttpGetAction {
                        path: s(""),
                        port: Some(string("http")),
                        host: s(""),
                        scheme: s(""),
                        http_headers: vec![],
                    }),
                    ..Default::default()
                }),
                initial_delay_seconds: Some(0),
                period_seconds: Some(0),
                termination_grace_period_seconds: Some(0),
                ..Default::default()
            }),
            ..Default::default()
        }],
        termination_grace_period_seconds: Some(0),
        automount_service_account_token: Some(false),
        host_network: Some(false),
        ..Default::default()
    };
    let d = apps::Deployment {
        metadata: Some(go_meta("z", &[])),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            revision_history_limit: Some(0),
            paused: Some(false),
            min_ready_seconds: Some(0),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(int(0)),
                    max_surge: Some(string("25%")),
                }),
            }),
            template: Some(core::PodTemplateSpec {
                metadata: None,
                spec: Some(pod_spec),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let v = ok("apps/v1", "Deployment", d.encode_to_vec());
    assert_eq!(
        v["spec"],
        json!({
            "replicas": 0,
            "revisionHistoryLimit": 0,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
            "template": {"spec": {
                "containers": [{
                    "name": "c",
                    "securityContext": {"runAsUser": 0, "privileged": false},
                    "livenessProbe": {
                        "httpGet": {"port": "http"},
                        "terminationGracePeriodSeconds": 0,
                    },
                }],
                "terminationGracePeriodSeconds": 0,
                "automountServiceAccountToken": false,
            }},
        })
    );

    let svc = core::Service {
        metadata: Some(go_meta("s", &[])),
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                name: s("80-8080"),
                protocol: s("TCP"),
                port: Some(80),
                target_port: Some(int(0)),
                node_port: Some(0),
                app_protocol: None,
            }],
            selector: labels(&[("app", "s")]),
            cluster_ip: s(""),
            r#type: s(""),
            session_affinity: s(""),
            external_name: s(""),
            allocate_load_balancer_node_ports: Some(false),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus {
            load_balancer: Some(core::LoadBalancerStatus::default()),
            conditions: vec![],
        }),
    };
    let v = ok("v1", "Service", svc.encode_to_vec());
    assert_eq!(
        v,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "s"},
            "spec": {
                "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80}],
                "selector": {"app": "s"},
                "allocateLoadBalancerNodePorts": false,
            },
            "status": {"loadBalancer": {}},
        })
    );
}

#[test]
fn special_types_render_as_the_json_api_does() {
    let t = |seconds| meta::Time {
        seconds: Some(seconds),
        nanos: Some(999),
    };
    let fields = br#"{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}"#;
    let mut m = go_meta("e", &[]);
    m.namespace = s("default");
    m.owner_references = vec![meta::OwnerReference {
        api_version: s("apps/v1"),
        kind: s("ReplicaSet"),
        name: s("web-abc"),
        uid: s("3f2a"),
        controller: Some(true),
        block_owner_deletion: Some(false),
    }];
    m.managed_fields = vec![meta::ManagedFieldsEntry {
        manager: s("kubectl"),
        operation: s("Update"),
        api_version: s("v1"),
        time: Some(t(1_767_323_045)),
        fields_type: s("FieldsV1"),
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(fields.to_vec()),
        }),
        subresource: s(""),
    }];
    m.deletion_grace_period_seconds = Some(0);
    let ev = core::Event {
        metadata: Some(m),
        involved_object: Some(core::ObjectReference {
            kind: s("Pod"),
            name: s("web"),
            ..Default::default()
        }),
        reason: s("Started"),
        first_timestamp: Some(t(1_767_323_045)),
        last_timestamp: Some(meta::Time::default()),
        count: Some(1),
        event_time: Some(meta::MicroTime {
            seconds: Some(1_767_323_045),
            nanos: Some(123_456_789),
        }),
        series: Some(core::EventSeries {
            count: Some(2),
            last_observed_time: Some(meta::MicroTime {
                seconds: Some(0),
                nanos: Some(5_000),
            }),
        }),
        reporting_component: s(""),
        ..Default::default()
    };
    let v = ok("v1", "Event", ev.encode_to_vec());
    assert_eq!(
        v,
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": "e",
                "namespace": "default",
                "deletionGracePeriodSeconds": 0,
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc",
                    "uid": "3f2a", "controller": true, "blockOwnerDeletion": false,
                }],
                "managedFields": [{
                    "manager": "kubectl",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2026-01-02T03:04:05Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
                }],
            },
            "involvedObject": {"kind": "Pod", "name": "web"},
            "reason": "Started",
            "firstTimestamp": "2026-01-02T03:04:05Z",
            "count": 1,
            "eventTime": "2026-01-02T03:04:05.123456Z",
            "series": {"count": 2, "lastObservedTime": "1970-01-01T00:00:00.000005Z"},
        })
    );

    let secret = core::Secret {
        metadata: Some(go_meta("s", &[])),
        immutable: Some(false),
        data: [("k".to_owned(), b"v\x00\xff".to_vec())].into(),
        string_data: [("plain".to_owned(), "text".to_owned())].into(),
        r#type: s("Opaque"),
    };
    let v = ok("v1", "Secret", secret.encode_to_vec());
    assert_eq!(v["data"], json!({"k": "dgD/"}));
    assert_eq!(v["stringData"], json!({"plain": "text"}));
    assert_eq!(v["immutable"], json!(false));
    assert_eq!(v["type"], json!("Opaque"));

    let cm = core::ConfigMap {
        metadata: Some(go_meta("c", &[])),
        immutable: None,
        data: [
            ("a".to_owned(), "1".to_owned()),
            ("e".to_owned(), String::new()),
        ]
        .into(),
        binary_data: [("b".to_owned(), vec![1, 2, 3])].into(),
    };
    let v = ok("v1", "ConfigMap", cm.encode_to_vec());
    assert_eq!(v["data"], json!({"a": "1", "e": ""}));
    assert_eq!(v["binaryData"], json!({"b": "AQID"}));
    assert!(v.get("immutable").is_none());

    let pod = core::Pod {
        metadata: Some(go_meta("p", &[])),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                resources: Some(core::ResourceRequirements {
                    limits: [
                        ("cpu".to_owned(), quantity("500m")),
                        ("memory".to_owned(), quantity("1Gi")),
                    ]
                    .into(),
                    requests: [("cpu".to_owned(), Quantity { string: None })].into(),
                    claims: vec![],
                }),
                ..Default::default()
            }],
            volumes: vec![core::Volume {
                name: s("scratch"),
                volume_source: Some(core::VolumeSource {
                    empty_dir: Some(core::EmptyDirVolumeSource {
                        medium: s(""),
                        size_limit: Some(quantity("64Mi")),
                    }),
                    ..Default::default()
                }),
            }],
            ..Default::default()
        }),
        status: None,
    };
    let v = ok("v1", "Pod", pod.encode_to_vec());
    assert_eq!(
        v["spec"],
        json!({
            "containers": [{
                "name": "c",
                "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}, "requests": {"cpu": "0"}},
            }],
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "64Mi"}}],
        })
    );

    let lease = k8s_pb::api::coordination::v1::Lease {
        metadata: Some(go_meta("node-a", &[])),
        spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
            holder_identity: s("node-a"),
            lease_duration_seconds: Some(40),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_767_323_045),
                nanos: Some(7_000),
            }),
            lease_transitions: Some(0),
            ..Default::default()
        }),
    };
    let v = ok("coordination.k8s.io/v1", "Lease", lease.encode_to_vec());
    assert_eq!(
        v["spec"],
        json!({
            "holderIdentity": "node-a",
            "leaseDurationSeconds": 40,
            "renewTime": "2026-01-02T03:04:05.000007Z",
            "leaseTransitions": 0,
        })
    );
}

#[test]
fn delete_options_and_eviction_decode_in_any_group_version() {
    let opts = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("u-1"),
            resource_version: None,
        }),
        orphan_dependents: None,
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".to_owned()],
        ignore_store_read_error_with_cluster_breaking_potential: None,
    };
    for api_version in ["v1", "meta.k8s.io/v1", "apps/v1"] {
        let v = ok(api_version, "DeleteOptions", opts.encode_to_vec());
        assert_eq!(
            v,
            json!({
                "apiVersion": api_version,
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": "u-1"},
                "propagationPolicy": "Foreground",
                "dryRun": ["All"],
            })
        );
    }
    let eviction = k8s_pb::api::policy::v1::Eviction {
        metadata: Some(go_meta("web-0", &[])),
        delete_options: Some(opts),
    };
    let v = ok("policy/v1", "Eviction", eviction.encode_to_vec());
    assert_eq!(v["metadata"], json!({"name": "web-0"}));
    assert_eq!(v["deleteOptions"]["gracePeriodSeconds"], json!(0));
}

// ------------------------------------- every field of every supported kind

/// A test-side protobuf writer.
#[derive(Default)]
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }
    fn key(&mut self, tag: u32, wire_type: u8) {
        self.varint(u64::from(tag) << 3 | u64::from(wire_type));
    }
    fn int(&mut self, tag: u32, v: i64) {
        self.key(tag, 0);
        self.varint(v as u64);
    }
    fn bytes(&mut self, tag: u32, b: &[u8]) {
        self.key(tag, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

/// Fills every field of `m` with a distinct non-zero value (two elements
/// per repeated field and map), recursively: the most complete object the
/// schema describes, written without prost.
fn synthesize(m: &'static Msg, n: &mut i64) -> Vec<u8> {
    let mut w = Writer::default();
    for f in m.fields {
        let count = if f.repeated { 2 } else { 1 };
        // Repeated ints are written packed, which prost also accepts; the
        // re-encoded bytes are unpacked, so both forms are decoded below.
        if f.repeated && matches!(f.ty, Ty::I32 | Ty::I64 | Ty::Bool) {
            let mut packed = Writer::default();
            for _ in 0..count {
                *n += 1;
                packed.varint(if matches!(f.ty, Ty::Bool) {
                    1
                } else {
                    *n as u64
                });
            }
            w.bytes(f.tag, &packed.0);
            continue;
        }
        for _ in 0..count {
            *n += 1;
            value(&mut w, f.tag, f.name, &f.ty, n);
        }
    }
    w.0
}

fn value(w: &mut Writer, tag: u32, name: &str, ty: &Ty, n: &mut i64) {
    let i = *n;
    match ty {
        Ty::Str => w.bytes(tag, format!("{name}-{i}").as_bytes()),
        Ty::Bytes => w.bytes(tag, format!("bytes-{i}").as_bytes()),
        Ty::I32 | Ty::I64 => w.int(tag, i),
        Ty::Bool => w.int(tag, 1),
        Ty::Msg(sub) | Ty::Inline(sub) => {
            let b = synthesize(sub, n);
            w.bytes(tag, &b);
        }
        Ty::MapStr | Ty::MapBytes | Ty::MapQuantity | Ty::MapMsg(_) => {
            let mut e = Writer::default();
            e.bytes(1, format!("key-{i}").as_bytes());
            match ty {
                Ty::MapStr => e.bytes(2, format!("value-{i}").as_bytes()),
                Ty::MapBytes => e.bytes(2, &[0, 1, 2, (i % 256) as u8]),
                Ty::MapQuantity => value(&mut e, 2, name, &Ty::Quantity, n),
                Ty::MapMsg(sub) => {
                    let b = synthesize(sub, n);
                    e.bytes(2, &b);
                }
                _ => {}
            }
            w.bytes(tag, &e.0);
        }
        Ty::Time | Ty::MicroTime => {
            let mut t = Writer::default();
            t.int(1, 1_767_323_045 + i);
            if matches!(ty, Ty::MicroTime) {
                t.int(2, 123_456_000);
            }
            w.bytes(tag, &t.0);
        }
        Ty::Duration => {
            let mut d = Writer::default();
            d.int(1, i * 1_000_000);
            w.bytes(tag, &d.0);
        }
        Ty::IntOrString => {
            let mut v = Writer::default();
            if i % 2 == 0 {
                v.int(1, 0);
                v.int(2, i);
            } else {
                v.int(1, 1);
                v.bytes(3, format!("{i}%").as_bytes());
            }
            w.bytes(tag, &v.0);
        }
        Ty::Quantity => {
            let mut q = Writer::default();
            q.bytes(1, format!("{i}m").as_bytes());
            w.bytes(tag, &q.0);
        }
        Ty::FieldsV1 => {
            let mut r = Writer::default();
            r.bytes(
                1,
                format!(r#"{{"f:metadata":{{"f:n{i}":{{}}}}}}"#).as_bytes(),
            );
            w.bytes(tag, &r.0);
        }
        Ty::RawExtension => {
            let mut r = Writer::default();
            r.bytes(1, format!(r#"{{"n":{i}}}"#).as_bytes());
            w.bytes(tag, &r.0);
        }
    }
}

/// Paths `k8s-openapi` 0.29 (v1_37) does not know although k8s-pb 0.9 has
/// them: `PodSpec.workloadRef` (alpha in 1.35, gone from 1.37's OpenAPI).
fn known_to_openapi(path: &str) -> bool {
    !path.ends_with("workloadRef")
}

/// Every field of `kind`: the schema's fully populated object must survive
/// prost (same tags, same wire types as k8s-pb), decode identically from the
/// prost-encoded bytes, and deserialize into the `k8s-openapi` type with no
/// field ignored and re-serialize to exactly the same JSON.
fn every_field<P, O>(api_version: &str, kind: &str)
where
    P: prost::Message + Default,
    O: serde::de::DeserializeOwned + serde::Serialize,
{
    let msg = schema::kind(api_version, kind).expect("supported kind");
    let synthesized = synthesize(msg, &mut 0);
    let real = P::decode(synthesized.as_slice())
        .unwrap_or_else(|e| panic!("k8s-pb rejects the schema's {kind}: {e}"))
        .encode_to_vec();
    assert!(
        real.len() > 50,
        "{kind} encodes to only {} bytes",
        real.len()
    );

    let from_schema = ok(api_version, kind, synthesized);
    let from_prost = ok(api_version, kind, real);
    let mut diffs = Vec::new();
    diff("", &from_prost, &from_schema, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{kind}: fields the schema writes are unknown to k8s-pb or typed differently: {diffs:?}"
    );

    let mut ignored = Vec::new();
    let typed: O = serde_ignored::deserialize(from_prost.clone(), |p| {
        ignored.push(p.to_string());
    })
    .unwrap_or_else(|e| panic!("{kind} does not deserialize into k8s-openapi: {e}"));
    let unexpected: Vec<_> = ignored.iter().filter(|p| known_to_openapi(p)).collect();
    assert!(
        unexpected.is_empty(),
        "{kind}: k8s-openapi ignored {unexpected:?}"
    );

    let mut expected = from_prost;
    strip_unknown_to_openapi(&mut expected);
    let mut round_trip = serde_json::to_value(&typed).expect("serializes");
    // k8s-openapi writes apiVersion/kind into embedded PVC templates; Go does not.
    if let Some(Value::Array(templates)) = round_trip.pointer_mut("/spec/volumeClaimTemplates") {
        for t in templates.iter_mut().filter_map(Value::as_object_mut) {
            t.remove("apiVersion");
            t.remove("kind");
        }
    }
    let mut diffs = Vec::new();
    diff("", &round_trip, &expected, &mut diffs);
    assert!(
        diffs.is_empty(),
        "{kind}: JSON differs from k8s-openapi's at {diffs:?}"
    );
}

/// Paths where `a` and `b` differ.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(a), Some(b)) => diff(&p, a, b, out),
                    (a, b) => out.push(format!("{p}: {a:?} vs {b:?}")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (a, b)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}/{i}"), a, b, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} vs {b}")),
    }
}

fn strip_unknown_to_openapi(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("workloadRef");
            m.values_mut().for_each(strip_unknown_to_openapi);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_unknown_to_openapi),
        _ => {}
    }
}

macro_rules! every_field_tests {
    ($($name:ident: $api_version:literal, $kind:literal, $pb:ty, $openapi:ty;)*) => {
        $(
            #[test]
            fn $name() {
                every_field::<$pb, $openapi>($api_version, $kind);
            }
        )*

        #[test]
        fn every_supported_kind_has_an_every_field_test() {
            let tested = [$(($api_version, $kind)),*];
            for (v, k) in schema::KINDS {
                assert!(tested.contains(&(*v, *k)), "{v}/{k} is not tested");
            }
        }
    };
}

every_field_tests! {
    every_field_namespace: "v1", "Namespace", core::Namespace, k8s_openapi::api::core::v1::Namespace;
    every_field_config_map: "v1", "ConfigMap", core::ConfigMap, k8s_openapi::api::core::v1::ConfigMap;
    every_field_secret: "v1", "Secret", core::Secret, k8s_openapi::api::core::v1::Secret;
    every_field_service_account: "v1", "ServiceAccount", core::ServiceAccount, k8s_openapi::api::core::v1::ServiceAccount;
    every_field_service: "v1", "Service", core::Service, k8s_openapi::api::core::v1::Service;
    every_field_pod: "v1", "Pod", core::Pod, k8s_openapi::api::core::v1::Pod;
    every_field_endpoints: "v1", "Endpoints", core::Endpoints, k8s_openapi::api::core::v1::Endpoints;
    every_field_node: "v1", "Node", core::Node, k8s_openapi::api::core::v1::Node;
    every_field_event: "v1", "Event", core::Event, k8s_openapi::api::core::v1::Event;
    every_field_binding: "v1", "Binding", core::Binding, k8s_openapi::api::core::v1::Binding;
    every_field_deployment: "apps/v1", "Deployment", apps::Deployment, k8s_openapi::api::apps::v1::Deployment;
    every_field_replica_set: "apps/v1", "ReplicaSet", apps::ReplicaSet, k8s_openapi::api::apps::v1::ReplicaSet;
    every_field_daemon_set: "apps/v1", "DaemonSet", apps::DaemonSet, k8s_openapi::api::apps::v1::DaemonSet;
    every_field_stateful_set: "apps/v1", "StatefulSet", apps::StatefulSet, k8s_openapi::api::apps::v1::StatefulSet;
    every_field_job: "batch/v1", "Job", k8s_pb::api::batch::v1::Job, k8s_openapi::api::batch::v1::Job;
    every_field_endpoint_slice: "discovery.k8s.io/v1", "EndpointSlice", k8s_pb::api::discovery::v1::EndpointSlice, k8s_openapi::api::discovery::v1::EndpointSlice;
    every_field_lease: "coordination.k8s.io/v1", "Lease", k8s_pb::api::coordination::v1::Lease, k8s_openapi::api::coordination::v1::Lease;
    every_field_delete_options: "meta.k8s.io/v1", "DeleteOptions", meta::DeleteOptions, k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions;
    every_field_eviction: "policy/v1", "Eviction", k8s_pb::api::policy::v1::Eviction, k8s_openapi::api::policy::v1::Eviction;
    every_field_scale: "autoscaling/v1", "Scale", k8s_pb::api::autoscaling::v1::Scale, k8s_openapi::api::autoscaling::v1::Scale;
}

// ------------------------------------------------------------- bad input

fn err(body: &[u8]) -> crate::apiserver::status::ApiError {
    match decode_object(body) {
        Ok(v) => panic!("decoded {v}"),
        Err(e) => e,
    }
}

fn pod_bytes() -> Vec<u8> {
    core::Pod {
        metadata: Some(go_meta("p", &[("a", "b")])),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                image: s("i"),
                ports: vec![core::ContainerPort {
                    container_port: Some(80),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: Some(core::PodStatus::default()),
    }
    .encode_to_vec()
}

#[test]
fn missing_or_wrong_magic_is_bad_request() {
    assert_eq!(err(b"").code, 400);
    assert_eq!(err(b"{\"kind\":\"Pod\"}").code, 400);
    let mut body = envelope("v1", "Pod", pod_bytes());
    body[3] = 1;
    let e = err(&body);
    assert_eq!((e.code, e.reason), (400, "BadRequest"));
    assert!(e.message.contains("magic"), "{}", e.message);
}

#[test]
fn bad_varints_truncation_and_wrong_wire_types_are_bad_request() {
    // A key that never ends.
    let mut body = b"k8s\0".to_vec();
    body.extend([
        0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ]);
    let e = err(&body);
    assert_eq!(e.code, 400);
    assert!(e.message.contains("varint"), "{}", e.message);

    // raw claims more bytes than there are.
    let mut body = envelope("v1", "Pod", pod_bytes());
    body.truncate(body.len() - 5);
    assert_eq!(err(&body).code, 400);

    // metadata (field 1 of Pod) sent as a varint.
    let e = err(&envelope("v1", "Pod", vec![0x08, 0x01]));
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("k8s.io.api.core.v1.Pod"),
        "{}",
        e.message
    );
    assert!(e.message.contains("wire type varint"), "{}", e.message);

    // A name that is not UTF-8.
    let e = err(&envelope("v1", "Pod", vec![0x0a, 0x03, 0x0a, 0x01, 0xff]));
    assert_eq!(e.code, 400);
    assert!(e.message.contains("metadata.name"), "{}", e.message);
    assert!(e.message.contains("UTF-8"), "{}", e.message);
}

#[test]
fn unknown_field_numbers_are_bad_request_naming_message_and_tag() {
    let mut raw = pod_bytes();
    raw.extend([0xf8, 0x06, 0x01]); // field 111, varint 1
    let e = err(&envelope("v1", "Pod", raw));
    assert_eq!((e.code, e.reason), (400, "BadRequest"));
    assert!(
        e.message.contains("k8s.io.api.core.v1.Pod"),
        "{}",
        e.message
    );
    assert!(e.message.contains("111"), "{}", e.message);

    // Deep inside: a ContainerPort with field 9.
    let pod = core::Pod {
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("c"),
                ports: vec![core::ContainerPort {
                    container_port: Some(80),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut port = core::ContainerPort {
        container_port: Some(80),
        ..Default::default()
    }
    .encode_to_vec();
    port.extend([0x48, 0x07]); // field 9, varint 7
    let container = [
        core::Container {
            name: s("c"),
            ..Default::default()
        }
        .encode_to_vec(),
        {
            let mut f = vec![0x32, port.len() as u8];
            f.extend(&port);
            f
        },
    ]
    .concat();
    let mut spec = vec![0x12, container.len() as u8];
    spec.extend(&container);
    let mut raw = vec![0x12, spec.len() as u8];
    raw.extend(&spec);
    assert!(decode_object(&envelope("v1", "Pod", pod.encode_to_vec())).is_ok());
    let e = err(&envelope("v1", "Pod", raw));
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("k8s.io.api.core.v1.ContainerPort"),
        "{}",
        e.message
    );
    assert!(e.message.contains("field number 9"), "{}", e.message);
    assert!(
        e.message.contains("spec.containers[0].ports[0]"),
        "{}",
        e.message
    );
}

#[test]
fn unknown_kinds_and_envelopes_are_unsupported_media_type() {
    let e = err(&envelope("v1", "Frobnicator", vec![]));
    assert_eq!((e.code, e.reason), (415, "UnsupportedMediaType"));
    assert!(e.message.contains("Frobnicator"), "{}", e.message);
    assert!(e.message.contains("application/json"), "{}", e.message);
    assert_eq!(err(&envelope("apps/v2", "Deployment", vec![])).code, 415);

    let mut unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("Pod"),
        }),
        raw: Some(pod_bytes()),
        content_encoding: s("gzip"),
        content_type: None,
    };
    let body = |u: &Unknown| [b"k8s\0".to_vec(), u.encode_to_vec()].concat();
    assert_eq!(err(&body(&unknown)).code, 415);
    unknown.content_encoding = None;
    unknown.content_type = s("application/json");
    assert_eq!(err(&body(&unknown)).code, 415);
    unknown.content_type = s(super::CONTENT_TYPE);
    assert!(decode_object(&body(&unknown)).is_ok());
    unknown.type_meta = None;
    assert_eq!(err(&body(&unknown)).code, 400);
}

#[test]
fn invalid_special_values_are_bad_request() {
    let bad_int_or_string = core::Service {
        spec: Some(core::ServiceSpec {
            ports: vec![core::ServicePort {
                port: Some(80),
                target_port: Some(IntOrString {
                    r#type: Some(7),
                    int_val: None,
                    str_val: None,
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let e = err(&envelope(
        "v1",
        "Service",
        bad_int_or_string.encode_to_vec(),
    ));
    assert_eq!(e.code, 400);
    assert!(
        e.message.contains("spec.ports[0].targetPort"),
        "{}",
        e.message
    );

    let mut m = go_meta("x", &[]);
    m.managed_fields = vec![meta::ManagedFieldsEntry {
        fields_v1: Some(meta::FieldsV1 {
            raw: Some(b"{not json".to_vec()),
        }),
        ..Default::default()
    }];
    let ns = core::Namespace {
        metadata: Some(m),
        ..Default::default()
    };
    assert_eq!(
        err(&envelope("v1", "Namespace", ns.encode_to_vec())).code,
        400
    );

    let out_of_range = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            creation_timestamp: Some(meta::Time {
                seconds: Some(i64::MAX),
                nanos: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(
        err(&envelope("v1", "Namespace", out_of_range.encode_to_vec())).code,
        400
    );
}

/// xorshift64*: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn assert_clean(result: Result<Value, crate::apiserver::status::ApiError>) {
    if let Err(e) = result {
        assert!(matches!(e.code, 400 | 415), "unexpected {e}");
    }
}

#[test]
fn fuzzed_and_truncated_bodies_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid = envelope("apps/v1", "Deployment", {
        let mut n = 0;
        synthesize(schema::kind("apps/v1", "Deployment").expect("kind"), &mut n)
    });
    assert!(decode_object(&valid).is_ok());

    // Every prefix.
    for len in 0..valid.len() {
        assert_clean(decode_object(&valid[..len]));
    }
    // Random bytes after the magic.
    for _ in 0..3000 {
        let len = rng.below(64);
        let mut body = b"k8s\0".to_vec();
        body.extend((0..len).map(|_| rng.next() as u8));
        assert_clean(decode_object(&body));
    }
    // Random mutations of a valid body: flipped, inserted and removed bytes.
    let mut rejected = 0;
    for _ in 0..3000 {
        let mut body = valid.clone();
        for _ in 0..1 + rng.below(4) {
            let at = 4 + rng.below(body.len() - 4);
            match rng.below(3) {
                0 => body[at] ^= 1 << rng.below(8),
                1 => body.insert(at, rng.next() as u8),
                _ => {
                    body.remove(at);
                }
            }
        }
        let result = decode_object(&body);
        rejected += usize::from(result.is_err());
        assert_clean(result);
    }
    assert!(
        rejected > 1000,
        "only {rejected} of 3000 mutated bodies were rejected"
    );
}

#[test]
fn typed_errors_carry_the_detail() {
    // metadata holding field 501 as a varint.
    let e =
        decode(&envelope("v1", "Pod", vec![0x0a, 0x03, 0xa8, 0x1f, 0x01])).expect_err("rejected");
    assert_eq!(
        e,
        ProtobufError::UnknownField {
            message: "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            tag: 501,
            path: "metadata".to_owned(),
        }
    );
    let e = decode(&envelope("v1", "Pod", vec![0x0a, 0x02, 0x0a, 0x05])).expect_err("rejected");
    assert!(
        matches!(
            e,
            ProtobufError::Malformed {
                message: "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta",
                ..
            }
        ),
        "{e:?}"
    );
}
