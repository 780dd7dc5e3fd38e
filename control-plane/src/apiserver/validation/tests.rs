//! Tests of the whole pipeline through the public API: decoding, field
//! validation modes, defaulting results, validation causes with kube's
//! field paths and messages, update rules, and robustness on arbitrary
//! input.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;
use crate::registry::RESOURCES;

fn res(kind: &str) -> &'static Resource {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind)
        .unwrap_or_else(|| panic!("no resource {kind}"))
}

fn create(kind: &str, obj: Value) -> Result<Admitted, ApiError> {
    admit_create(res(kind), obj, FieldValidation::Warn)
}

fn ok(kind: &str, obj: Value) -> Value {
    match create(kind, obj) {
        Ok(a) => a.object,
        Err(e) => panic!("{kind} was rejected: {e}"),
    }
}

/// `(field, message)` of each cause of a 422.
fn causes(err: &ApiError) -> Vec<(String, String)> {
    assert_eq!(err.code, 422, "expected 422, got {err}");
    err.details.as_ref().unwrap()["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["field"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn invalid(kind: &str, obj: Value) -> Vec<(String, String)> {
    match create(kind, obj) {
        Ok(a) => panic!("{kind} was admitted: {}", a.object),
        Err(e) => causes(&e),
    }
}

fn fields(kind: &str, obj: Value) -> Vec<String> {
    invalid(kind, obj).into_iter().map(|(f, _)| f).collect()
}

/// Asserts exactly one cause, at `field`, whose message starts with `msg`.
fn assert_one(kind: &str, obj: Value, field: &str, msg: &str) {
    let c = invalid(kind, obj);
    assert_eq!(c.len(), 1, "causes: {c:?}");
    assert_eq!(c[0].0, field, "causes: {c:?}");
    assert!(
        c[0].1.starts_with(msg),
        "message {:?} does not start with {msg:?}",
        c[0].1
    );
}

fn bad_request(kind: &str, obj: Value, mode: FieldValidation) -> String {
    match admit_create(res(kind), obj, mode) {
        Ok(a) => panic!("{kind} was admitted: {}", a.object),
        Err(e) => {
            assert_eq!(e.code, 400, "expected 400, got {e}");
            assert_eq!(e.reason, "BadRequest");
            e.message
        }
    }
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn nginx_pod() -> Value {
    pod(json!({"containers": [{"name": "nginx", "image": "nginx"}]}))
}

/// Sets the field at a JSON pointer, creating it in its parent object.
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    match base.pointer_mut(parent) {
        Some(Value::Object(m)) => {
            m.insert(key.to_owned(), value);
        }
        Some(Value::Array(a)) => a[key.parse::<usize>().unwrap()] = value,
        _ => panic!("no object at {parent}"),
    }
    base
}

fn service(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn deployment() -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"name": "web", "namespace": "default"},
           "spec": {"selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx:1.25"}]}}}})
}

fn job() -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job",
           "metadata": {"name": "pi", "namespace": "default"},
           "spec": {"template": {"metadata": {"labels": {"app": "pi"}},
                                 "spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "pi", "image": "perl"}]}}}})
}

fn config_map(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": "cfg", "namespace": "default"}, "data": data})
}

// ---------------------------------------------------------------- defaults

#[test]
fn minimal_pod_is_defaulted_like_kube() {
    let out = ok("Pod", nginx_pod());
    assert_eq!(
        out["spec"],
        json!({
            "containers": [{
                "name": "nginx",
                "image": "nginx",
                "imagePullPolicy": "Always",
                "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File",
            }],
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": true,
            "preemptionPolicy": "PreemptLowerPriority",
            "priority": 0,
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "securityContext": {},
            "terminationGracePeriodSeconds": 30,
        })
    );
    assert_eq!(
        out["status"],
        json!({"phase": "Pending", "qosClass": "BestEffort"})
    );
    assert_eq!(out["apiVersion"], "v1");
    assert_eq!(out["kind"], "Pod");
}

#[test]
fn pod_container_details_are_defaulted() {
    let out = ok(
        "Pod",
        pod(json!({
            "containers": [{
                "name": "app", "image": "registry.local:5000/app:1.0",
                "ports": [{"containerPort": 8080}],
                "livenessProbe": {"httpGet": {"port": 8080}},
                "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 5},
                "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                "resources": {"limits": {"cpu": "0.5", "memory": "128Mi"}},
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]
            }],
            "volumes": [{"name": "data"}, {"name": "cfg", "configMap": {"name": "cfg"}}]
        })),
    );
    let c = &out["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
               "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 5);
    assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
    // Quantities are canonical; requests default to limits.
    assert_eq!(
        c["resources"],
        json!({"limits": {"cpu": "500m", "memory": "128Mi"},
               "requests": {"cpu": "500m", "memory": "128Mi"}})
    );
    assert_eq!(out["status"]["qosClass"], "Guaranteed");
    assert_eq!(
        out["spec"]["volumes"][0],
        json!({"name": "data", "emptyDir": {}})
    );
    assert_eq!(out["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
}

#[test]
fn host_network_pods_get_host_ports() {
    let out = ok(
        "Pod",
        pod(json!({"hostNetwork": true,
                   "containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 53}]}]})),
    );
    assert_eq!(out["spec"]["containers"][0]["ports"][0]["hostPort"], 53);
}

#[test]
fn minimal_deployment_is_defaulted_like_kube() {
    let out = ok("Deployment", deployment());
    let spec = &out["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let t = &spec["template"]["spec"];
    assert_eq!(t["restartPolicy"], "Always");
    assert_eq!(t["dnsPolicy"], "ClusterFirst");
    assert_eq!(t["schedulerName"], "default-scheduler");
    assert_eq!(t["terminationGracePeriodSeconds"], 30);
    assert_eq!(t["securityContext"], json!({}));
    assert_eq!(t["containers"][0]["imagePullPolicy"], "IfNotPresent");
    // Pod-only defaults stay off templates, as in kube.
    assert!(t.get("enableServiceLinks").is_none());
    assert!(t.get("priority").is_none());
    assert!(out.get("status").is_none());
}

#[test]
fn replicaset_daemonset_statefulset_defaults() {
    let rs = ok(
        "ReplicaSet",
        with(
            with(deployment(), "/kind", json!("ReplicaSet")),
            "/metadata/name",
            json!("rs"),
        ),
    );
    assert_eq!(rs["spec"]["replicas"], 1);

    let ds = ok("DaemonSet", with(deployment(), "/kind", json!("DaemonSet")));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);

    let mut sts = with(deployment(), "/kind", json!("StatefulSet"));
    sts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
    let sts = ok("StatefulSet", sts);
    let spec = &sts["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(
        spec["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        spec["volumeClaimTemplates"][0]["status"]["phase"],
        "Pending"
    );
}

#[test]
fn minimal_service_is_defaulted_like_kube() {
    let out = ok(
        "Service",
        service(json!({"selector": {"app": "web"}, "ports": [{"port": 80}]})),
    );
    assert_eq!(
        out["spec"],
        json!({
            "selector": {"app": "web"},
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "internalTrafficPolicy": "Cluster",
            "ipFamilyPolicy": "SingleStack",
            "ipFamilies": ["IPv4"],
        })
    );
    // NodePort services get an external traffic policy; the node port is
    // the caller's to allocate.
    let np = ok(
        "Service",
        service(json!({"type": "NodePort", "ports": [{"port": 80, "targetPort": "http"}]})),
    );
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(np["spec"]["ports"][0]["targetPort"], "http");
    assert!(np["spec"]["ports"][0].get("nodePort").is_none());
    // A given cluster IP is mirrored into clusterIPs.
    let fixed = ok(
        "Service",
        service(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53, "protocol": "UDP"}]})),
    );
    assert_eq!(fixed["spec"]["clusterIPs"], json!(["10.96.0.10"]));
    // ExternalName gets no IP family fields.
    let ext = ok(
        "Service",
        service(json!({"type": "ExternalName", "externalName": "example.com"})),
    );
    assert!(ext["spec"].get("ipFamilies").is_none());
    assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    // ClientIP affinity gets its default timeout.
    let sticky = ok(
        "Service",
        service(json!({"sessionAffinity": "ClientIP", "ports": [{"port": 80}]})),
    );
    assert_eq!(
        sticky["spec"]["sessionAffinityConfig"],
        json!({"clientIP": {"timeoutSeconds": 10800}})
    );
}

#[test]
fn minimal_job_is_defaulted_like_kube() {
    let out = ok("Job", job());
    let spec = &out["spec"];
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert!(spec.get("selector").is_none());
    // Job labels default to the template's.
    assert_eq!(out["metadata"]["labels"], json!({"app": "pi"}));

    // Parallelism without completions: completions stay unset.
    let out = ok("Job", with(job(), "/spec/parallelism", json!(3)));
    assert_eq!(out["spec"]["parallelism"], 3);
    assert!(out["spec"].get("completions").is_none());
}

#[test]
fn secret_namespace_and_slice_defaults() {
    let s = ok(
        "Secret",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "default"},
               "data": {"a": "eA=="}, "stringData": {"b": "hello", "a": "y"}}),
    );
    assert_eq!(s["type"], "Opaque");
    assert_eq!(s["data"], json!({"a": "eQ==", "b": "aGVsbG8="}));
    assert!(s.get("stringData").is_none());

    let ns = ok(
        "Namespace",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}),
    );
    assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
    assert_eq!(ns["status"], json!({"phase": "Active"}));
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team-a"
    );

    let slice = ok(
        "EndpointSlice",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-abc", "namespace": "default"},
               "addressType": "IPv4",
               "endpoints": [{"addresses": ["10.0.0.5"]}],
               "ports": [{"port": 80}]}),
    );
    assert_eq!(
        slice["ports"][0],
        json!({"name": "", "port": 80, "protocol": "TCP"})
    );
}

#[test]
fn cluster_scoped_objects_lose_their_namespace() {
    let out = ok(
        "Node",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "default"}}),
    );
    assert!(out["metadata"].get("namespace").is_none());
}

#[test]
fn metadata_is_preserved() {
    let metadata = json!({
        "name": "web", "namespace": "default", "generateName": "web-",
        "labels": {"app": "web"}, "annotations": {"note": "x"},
        "finalizers": ["example.com/hold"],
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1",
                             "uid": "1234", "controller": true, "blockOwnerDeletion": true}],
        "uid": "abcd", "resourceVersion": "7", "generation": 2,
        "creationTimestamp": "2024-05-01T10:00:00Z",
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                           "time": "2024-05-01T10:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]
    });
    let out = ok("Pod", with(nginx_pod(), "/metadata", metadata.clone()));
    assert_eq!(out["metadata"], metadata);
}

#[test]
fn nulls_behave_like_go() {
    let out = ok(
        "Deployment",
        with(
            with(deployment(), "/spec/replicas", Value::Null),
            "/metadata/labels",
            Value::Null,
        ),
    );
    assert_eq!(out["spec"]["replicas"], 1);
    let out = ok(
        "Pod",
        pod(
            json!({"containers": [{"name": "a", "image": "a", "ports": null, "args": [null, "x"]}],
                   "volumes": null}),
        ),
    );
    assert_eq!(out["spec"]["containers"][0]["args"], json!(["", "x"]));
    // A required field given as null is its zero value, which validation
    // then reports.
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": null, "image": "a"}]})),
        "spec.containers[0].name",
        "Required value",
    );
}

// ------------------------------------------------------------- type meta

#[test]
fn api_version_and_kind_must_match() {
    let msg = bad_request(
        "ConfigMap",
        with(config_map(json!({})), "/apiVersion", json!("apps/v1")),
        FieldValidation::Warn,
    );
    assert_eq!(
        msg,
        "the API version in the data (apps/v1) does not match the expected API version (v1)"
    );
    let msg = bad_request(
        "ConfigMap",
        with(config_map(json!({})), "/kind", json!("Secret")),
        FieldValidation::Warn,
    );
    assert_eq!(
        msg,
        "the kind in the data (Secret) does not match the expected kind (ConfigMap)"
    );
    let mut bare = config_map(json!({"a": "b"}));
    bare.as_object_mut().unwrap().remove("apiVersion");
    bare.as_object_mut().unwrap().remove("kind");
    let out = ok("ConfigMap", bare);
    assert_eq!(out["apiVersion"], "v1");
    assert_eq!(out["kind"], "ConfigMap");
    let out = ok("Deployment", with(deployment(), "/apiVersion", json!("")));
    assert_eq!(out["apiVersion"], "apps/v1");
    for body in [json!([1]), json!("x"), json!(null), json!(5)] {
        bad_request("Pod", body, FieldValidation::Warn);
    }
    bad_request(
        "Pod",
        with(nginx_pod(), "/kind", json!(3)),
        FieldValidation::Warn,
    );
}

// --------------------------------------------------------------- decoding

#[test]
fn type_errors_are_400_naming_the_field() {
    let msg = bad_request(
        "Deployment",
        with(deployment(), "/spec/replicas", json!("3")),
        FieldValidation::Warn,
    );
    assert_eq!(
        msg,
        "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field spec.replicas of type int32"
    );
    let msg = bad_request(
        "Pod",
        pod(
            json!({"containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 99999999999u64}]}]}),
        ),
        FieldValidation::Warn,
    );
    assert!(
        msg.ends_with("json: cannot unmarshal number 99999999999 into Go struct field spec.containers[0].ports[0].containerPort of type int32"),
        "{msg}"
    );
    let msg = bad_request(
        "ConfigMap",
        config_map(json!({"a": 1})),
        FieldValidation::Warn,
    );
    assert!(
        msg.contains("Go struct field data[a] of type string"),
        "{msg}"
    );
    let msg = bad_request(
        "Pod",
        with(nginx_pod(), "/metadata/labels", json!(["a"])),
        FieldValidation::Warn,
    );
    assert!(
        msg.contains("cannot unmarshal array into Go struct field metadata.labels"),
        "{msg}"
    );
    let msg = bad_request(
        "Pod",
        pod(json!({"containers": {"name": "a"}})),
        FieldValidation::Warn,
    );
    assert!(
        msg.contains("cannot unmarshal object into Go struct field spec.containers"),
        "{msg}"
    );
    let msg = bad_request(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a", "stdin": "yes"}]})),
        FieldValidation::Warn,
    );
    assert!(
        msg.contains("spec.containers[0].stdin of type bool"),
        "{msg}"
    );
}

#[test]
fn bad_quantities_and_base64_are_400() {
    let msg = bad_request(
        "Pod",
        pod(
            json!({"containers": [{"name": "a", "image": "a", "resources": {"limits": {"cpu": "lots"}}}]}),
        ),
        FieldValidation::Warn,
    );
    assert!(
        msg.contains("spec.containers[0].resources.limits[cpu]")
            && msg.contains("quantities must match the regular expression"),
        "{msg}"
    );
    let msg = bad_request(
        "Secret",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
               "data": {"k": "!!not base64"}}),
        FieldValidation::Warn,
    );
    assert!(msg.contains("data[k]"), "{msg}");
    let msg = bad_request(
        "Pod",
        with(
            nginx_pod(),
            "/metadata/creationTimestamp",
            json!("yesterday"),
        ),
        FieldValidation::Warn,
    );
    assert!(msg.contains("metadata.creationTimestamp"), "{msg}");
    // Numbers are quantities too.
    let out = ok(
        "Pod",
        pod(
            json!({"containers": [{"name": "a", "image": "a", "resources": {"requests": {"cpu": 2, "memory": 1000}}}]}),
        ),
    );
    assert_eq!(
        out["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "2", "memory": "1k"})
    );
}

#[test]
fn unknown_fields_follow_field_validation() {
    let body = pod(json!({
        "containers": [{"name": "a", "image": "a", "imagePullPolcy": "Always"}],
        "foo": {"bar": 1}
    }));
    let body = with(body, "/metadata/colour", json!("blue"));

    let msg = bad_request("Pod", body.clone(), FieldValidation::Strict);
    assert_eq!(
        msg,
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"metadata.colour\", unknown field \"spec.containers[0].imagePullPolcy\", unknown field \"spec.foo\""
    );

    let warned = admit_create(res("Pod"), body.clone(), FieldValidation::Warn).unwrap();
    assert_eq!(
        warned.warnings,
        [
            "unknown field \"metadata.colour\"",
            "unknown field \"spec.containers[0].imagePullPolcy\"",
            "unknown field \"spec.foo\"",
        ]
    );
    // Unknown fields are dropped, as kube-apiserver drops them.
    assert!(warned.object["spec"].get("foo").is_none());
    assert!(warned.object["metadata"].get("colour").is_none());
    assert_eq!(
        warned.object["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );

    let ignored = admit_create(res("Pod"), body, FieldValidation::Ignore).unwrap();
    assert!(ignored.warnings.is_empty());
    assert_eq!(ignored.object, warned.object);

    // A clean object has no warnings under any mode.
    for mode in [
        FieldValidation::Strict,
        FieldValidation::Warn,
        FieldValidation::Ignore,
    ] {
        assert!(
            admit_create(res("Pod"), nginx_pod(), mode)
                .unwrap()
                .warnings
                .is_empty()
        );
    }
    // Deep inside a template.
    let typo = deployment().tap(
        "/spec/template/spec/containers/0/imagePullPolcy",
        json!("Always"),
    );
    assert_eq!(
        admit_create(res("Deployment"), typo, FieldValidation::Warn)
            .unwrap()
            .warnings,
        ["unknown field \"spec.template.spec.containers[0].imagePullPolcy\""]
    );
    // Unknown top-level fields, e.g. `status` on a kind without one.
    let msg = bad_request(
        "ConfigMap",
        with(config_map(json!({})), "/status", json!({})),
        FieldValidation::Strict,
    );
    assert!(msg.ends_with("unknown field \"status\""), "{msg}");
}

#[test]
fn duplicate_fields_follow_field_validation() {
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","name":"b"},
                   "data":{"k":"1","k":"2"},"x":[{"y":1,"y":2}]}"#;
    let cm = res("ConfigMap");
    let err = check_duplicate_fields(cm, body, FieldValidation::Strict).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"metadata.name\", duplicate field \"data.k\", duplicate field \"x[0].y\""
    );
    assert_eq!(
        check_duplicate_fields(cm, body, FieldValidation::Warn).unwrap(),
        [
            "duplicate field \"metadata.name\"",
            "duplicate field \"data.k\"",
            "duplicate field \"x[0].y\""
        ]
    );
    assert!(
        check_duplicate_fields(cm, body, FieldValidation::Ignore)
            .unwrap()
            .is_empty()
    );
    assert!(
        check_duplicate_fields(cm, br#"{"a":{"b":1},"c":{"b":1}}"#, FieldValidation::Strict)
            .unwrap()
            .is_empty()
    );
    // Not JSON: nothing to report here (the caller's parser reports it).
    assert!(check_duplicate_fields(cm, b"{\"a\":1,\"a\"", FieldValidation::Strict).is_err());
    assert!(
        check_duplicate_fields(cm, b"not json", FieldValidation::Strict)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn field_validation_parses() {
    assert_eq!(FieldValidation::parse(None).unwrap(), FieldValidation::Warn);
    assert_eq!(
        FieldValidation::parse(Some("")).unwrap(),
        FieldValidation::Warn
    );
    assert_eq!(
        FieldValidation::parse(Some("Strict")).unwrap(),
        FieldValidation::Strict
    );
    assert_eq!(
        FieldValidation::parse(Some("Ignore")).unwrap(),
        FieldValidation::Ignore
    );
    assert_eq!(
        FieldValidation::parse(Some("Warn")).unwrap(),
        FieldValidation::Warn
    );
    let err = FieldValidation::parse(Some("strict")).unwrap_err();
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "fieldValidation: Unsupported value: \"strict\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
}

// ------------------------------------------------------------ validation

#[test]
fn names_follow_each_kinds_rule() {
    let c = invalid("Pod", with(nginx_pod(), "/metadata/name", json!("Web_1")));
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "metadata.name");
    assert_eq!(
        c[0].1,
        "Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    // Dotted names are fine for most kinds, not for Services or Namespaces.
    ok("Pod", with(nginx_pod(), "/metadata/name", json!("web.v1")));
    assert_one(
        "Service",
        service(json!({"ports": [{"port": 80}]})).tap("/metadata/name", json!("1web")),
        "metadata.name",
        "Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
    );
    assert_one(
        "Namespace",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.a"}}),
        "metadata.name",
        "Invalid value: \"team.a\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    );
    assert_one(
        "ConfigMap",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": "default"}}),
        "metadata.name",
        "Required value: name or generateName is required",
    );
    assert_one(
        "ConfigMap",
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        "metadata.namespace",
        "Required value",
    );
    assert_one(
        "Pod",
        with(nginx_pod(), "/metadata/name", json!("a".repeat(254))),
        "metadata.name",
        "Invalid value: ",
    );
    let err = create("Pod", with(nginx_pod(), "/metadata/name", json!("Web"))).unwrap_err();
    assert!(
        err.message
            .starts_with("Pod \"Web\" is invalid: metadata.name: Invalid value: \"Web\"")
    );
    assert_eq!(err.details.as_ref().unwrap()["kind"], "Pod");
}

trait Tap {
    fn tap(self, pointer: &str, value: Value) -> Value;
}
impl Tap for Value {
    fn tap(self, pointer: &str, value: Value) -> Value {
        with(self, pointer, value)
    }
}

#[test]
fn labels_annotations_finalizers_owners() {
    let c = invalid(
        "ConfigMap",
        config_map(json!({})).tap(
            "/metadata/labels",
            json!({"bad key": "ok", "good": "-bad-", "x/y/z": "", "example.com/ok": "v"}),
        ),
    );
    assert_eq!(c.len(), 3, "{c:?}");
    assert!(c.iter().all(|(f, _)| f == "metadata.labels"));
    assert!(c[0].1.starts_with(
        "Invalid value: \"bad key\": name part must consist of alphanumeric characters"
    ));
    assert!(c[1].1.starts_with("Invalid value: \"-bad-\": a valid label must be an empty string or consist of alphanumeric characters"));
    assert!(
        c[2].1
            .starts_with("Invalid value: \"x/y/z\": a qualified name must consist of")
    );
    assert_one(
        "ConfigMap",
        config_map(json!({})).tap("/metadata/labels", json!({"a": "v".repeat(64)})),
        "metadata.labels",
        &format!(
            "Invalid value: \"{}\": must be no more than 63 characters",
            "v".repeat(64)
        ),
    );
    assert_one(
        "ConfigMap",
        config_map(json!({})).tap(
            "/metadata/annotations",
            json!({"big": "x".repeat(256 * 1024)}),
        ),
        "metadata.annotations",
        "Too long: may not be more than 262144 bytes",
    );
    ok(
        "ConfigMap",
        config_map(json!({})).tap(
            "/metadata/annotations",
            json!({"Example.COM/Mixed_Case": "x"}),
        ),
    );
    assert_one(
        "ConfigMap",
        config_map(json!({})).tap("/metadata/finalizers", json!(["hold"])),
        "metadata.finalizers",
        "Invalid value: \"hold\": name is neither a standard finalizer name nor is it fully qualified",
    );
    ok(
        "ConfigMap",
        config_map(json!({})).tap(
            "/metadata/finalizers",
            json!(["example.com/hold", "orphan"]),
        ),
    );
    let f = fields(
        "ConfigMap",
        config_map(json!({})).tap(
            "/metadata/ownerReferences",
            json!([{"apiVersion": "", "kind": "", "name": "", "uid": ""}]),
        ),
    );
    assert_eq!(
        f,
        [
            "metadata.ownerReferences.apiVersion",
            "metadata.ownerReferences.kind",
            "metadata.ownerReferences.name",
            "metadata.ownerReferences.uid"
        ]
    );
    let c = invalid(
        "ConfigMap",
        config_map(json!({})).tap(
            "/metadata/ownerReferences",
            json!([{"apiVersion": "v1", "kind": "A", "name": "a", "uid": "1", "controller": true},
                   {"apiVersion": "v1", "kind": "B", "name": "b", "uid": "2", "controller": true}]),
        ),
    );
    assert_eq!(c.len(), 1);
    assert!(c[0].1.ends_with("Only one reference can have Controller set to true. Found \"true\" in references for A/a and B/b"));
}

#[test]
fn pod_rules_report_kube_paths() {
    assert_one("Pod", pod(json!({})), "spec.containers", "Required value");
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a"}]})),
        "spec.containers[0].image",
        "Required value",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "Web", "image": "a"}]})),
        "spec.containers[0].name",
        "Invalid value: \"Web\": a lowercase RFC 1123 label",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}],
                   "initContainers": [{"name": "a", "image": "b"}]})),
        "spec.initContainers[0].name",
        "Duplicate value: \"a\"",
    );
    let c = invalid(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a", "ports": [
            {"containerPort": 0},
            {"containerPort": 70000, "hostPort": 70000, "protocol": "HTTP", "name": "HTTP"},
            {"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]}]})),
    );
    assert_eq!(
        c,
        [
            ("spec.containers[0].ports[0].containerPort".into(), "Required value".into()),
            (
                "spec.containers[0].ports[1].name".into(),
                "Invalid value: \"HTTP\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into()
            ),
            (
                "spec.containers[0].ports[1].name".into(),
                "Invalid value: \"HTTP\": must contain at least one letter (a-z)".into()
            ),
            (
                "spec.containers[0].ports[1].containerPort".into(),
                "Invalid value: 70000: must be between 1 and 65535, inclusive".into()
            ),
            (
                "spec.containers[0].ports[1].hostPort".into(),
                "Invalid value: 70000: must be between 1 and 65535, inclusive".into()
            ),
            (
                "spec.containers[0].ports[1].protocol".into(),
                "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\"".into()
            ),
            ("spec.containers[0].ports[3].name".into(), "Duplicate value: \"web\"".into()),
        ]
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}], "restartPolicy": "Sometimes"})),
        "spec.restartPolicy",
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}], "dnsPolicy": "Google"})),
        "spec.dnsPolicy",
        "Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}], "dnsPolicy": "None"})),
        "spec.dnsConfig",
        "Required value: must provide `dnsConfig` when `dnsPolicy` is None",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a", "imagePullPolicy": "Sometimes"}]})),
        "spec.containers[0].imagePullPolicy",
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "env": [{"name": "1BAD", "value": "x"}, {"name": "GOOD.name-1"}]}]})),
        "spec.containers[0].env[0].name",
        "Invalid value: \"1BAD\": a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "env": [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]})),
        "spec.containers[0].env[0].valueFrom",
        "Invalid value: \"\": may not be specified when `value` is not empty",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.bogus"}}}]}]})),
        "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
        "Unsupported value: \"spec.bogus\"",
    );
    ok(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}}]}]})),
    );
    let c = invalid(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "volumeMounts": [{"name": "missing", "mountPath": "/x"},
                                                    {"name": "data", "mountPath": "/x"}]}],
                   "volumes": [{"name": "data"}, {"name": "data"}, {"name": "Bad"}]})),
    );
    let f: Vec<&str> = c.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        f,
        [
            "spec.volumes[1].name",
            "spec.volumes[2].name",
            "spec.containers[0].volumeMounts[0].name",
            "spec.containers[0].volumeMounts[1].mountPath",
        ],
        "{c:?}"
    );
    assert_eq!(c[0].1, "Duplicate value: \"data\"");
    assert_eq!(c[2].1, "Not found: \"missing\"");
    assert_eq!(c[3].1, "Invalid value: \"/x\": must be unique");
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]})),
        "spec.containers[0].resources.requests",
        "Invalid value: \"2\": must be less than or equal to cpu limit of 1",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "resources": {"requests": {"cpu": "-1"}}}]})),
        "spec.containers[0].resources.requests[cpu]",
        "Invalid value: \"-1\": must be greater than or equal to 0",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "resources": {"requests": {"pods": "1"}}}]})),
        "spec.containers[0].resources.requests[pods]",
        "Invalid value: \"pods\": must be a standard resource for containers",
    );
    assert_one(
        "Pod",
        pod(
            json!({"containers": [{"name": "a", "image": "a"}], "terminationGracePeriodSeconds": -1}),
        ),
        "spec.terminationGracePeriodSeconds",
        "Invalid value: -1: must be greater than or equal to 0",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}], "activeDeadlineSeconds": 0})),
        "spec.activeDeadlineSeconds",
        "Invalid value: 0: must be between 1 and 2147483647, inclusive",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a", "livenessProbe": {}}]})),
        "spec.containers[0].livenessProbe",
        "Required value: must specify a handler type",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a",
                                   "livenessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2}}]})),
        "spec.containers[0].livenessProbe.successThreshold",
        "Invalid value: 2: must be 1",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}],
                   "initContainers": [{"name": "i", "image": "a", "readinessProbe": {"exec": {"command": ["true"]}}}]})),
        "spec.initContainers[0].readinessProbe",
        "Forbidden: may not be set for init containers",
    );
    // Sidecars (restartPolicy Always init containers) may have probes.
    ok(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}],
                   "initContainers": [{"name": "i", "image": "a", "restartPolicy": "Always",
                                       "readinessProbe": {"exec": {"command": ["true"]}}}]})),
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}],
                   "tolerations": [{"operator": "Equal", "value": "x"}]})),
        "spec.tolerations[0].operator",
        "Invalid value: \"Equal\": operator must be Exists when `key` is empty",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}], "nodeSelector": {"a": "b c"}})),
        "spec.nodeSelector",
        "Invalid value: \"b c\"",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": "a"}],
                   "ephemeralContainers": [{"name": "e", "image": "a"}]})),
        "spec.ephemeralContainers",
        "Forbidden: cannot be set on create",
    );
    assert_one(
        "Pod",
        pod(json!({"containers": [{"name": "a", "image": " nginx"}]})),
        "spec.containers[0].image",
        "Invalid value: \" nginx\": must not have leading or trailing whitespace",
    );
    // Templates tolerate it, as kube does.
    ok(
        "Deployment",
        deployment().tap("/spec/template/spec/containers/0/image", json!(" ")),
    );
    assert_one(
        "Pod",
        pod(json!({"hostNetwork": true,
                   "containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 53, "hostPort": 54}]}]})),
        "spec.containers[0].ports[0].hostPort",
        "Invalid value: 54: must match `containerPort` when `hostNetwork` is true",
    );
}

#[test]
fn many_errors_make_one_422() {
    let err = create(
        "Pod",
        pod(json!({"containers": [{"name": "", "image": ""}], "restartPolicy": "x"}))
            .tap("/metadata/name", json!("A")),
    )
    .unwrap_err();
    let c = causes(&err);
    assert_eq!(
        c.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(),
        [
            "metadata.name",
            "spec.containers[0].name",
            "spec.containers[0].image",
            "spec.restartPolicy"
        ]
    );
    assert!(
        err.message
            .starts_with("Pod \"A\" is invalid: [metadata.name: Invalid value: \"A\"")
    );
}

#[test]
fn service_rules_report_kube_paths() {
    assert_one(
        "Service",
        service(json!({})),
        "spec.ports",
        "Required value",
    );
    ok(
        "Service",
        service(json!({"clusterIP": "None", "selector": {"app": "db"}})),
    );
    assert_one(
        "Service",
        service(json!({"type": "ExternalName"})),
        "spec.externalName",
        "Required value",
    );
    assert_one(
        "Service",
        service(json!({"type": "ExternalName", "externalName": "Bad_Name"})),
        "spec.externalName",
        "Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain",
    );
    ok(
        "Service",
        service(json!({"type": "ExternalName", "externalName": "db.example.com."})),
    );
    let c = invalid(
        "Service",
        service(json!({"ports": [{"port": 0}, {"port": 80, "name": "http", "targetPort": 0}]})),
    );
    assert_eq!(
        c,
        [
            ("spec.ports[0].name".into(), "Required value".into()),
            (
                "spec.ports[0].port".into(),
                "Invalid value: 0: must be between 1 and 65535, inclusive".into()
            ),
            (
                "spec.ports[0].targetPort".into(),
                "Invalid value: 0: must be between 1 and 65535, inclusive".into()
            ),
        ],
        "a zero targetPort defaults to the port (valid for ports[1], not for ports[0])"
    );
    assert_one(
        "Service",
        service(json!({"ports": [{"port": 80, "name": "a"}, {"port": 81, "name": "a"}]})),
        "spec.ports[1].name",
        "Duplicate value: \"a\"",
    );
    assert_one(
        "Service",
        service(json!({"ports": [{"port": 80, "targetPort": 70000}]})),
        "spec.ports[0].targetPort",
        "Invalid value: 70000: must be between 1 and 65535, inclusive",
    );
    assert_one(
        "Service",
        service(json!({"ports": [{"port": 80, "targetPort": "http-"}]})),
        "spec.ports[0].targetPort",
        "Invalid value: \"http-\": must not begin or end with a hyphen",
    );
    assert_one(
        "Service",
        service(json!({"ports": [{"port": 80, "nodePort": 30080}]})),
        "spec.ports[0].nodePort",
        "Forbidden: may not be used when `type` is 'ClusterIP'",
    );
    assert_one(
        "Service",
        service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]})),
        "spec.ports[0].nodePort",
        "Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767",
    );
    ok(
        "Service",
        service(json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]})),
    );
    assert_one(
        "Service",
        service(
            json!({"type": "NodePort", "ports": [{"port": 80, "name": "a", "nodePort": 30080},
                                                    {"port": 81, "name": "b", "nodePort": 30080}]}),
        ),
        "spec.ports[1].nodePort",
        "Duplicate value: 30080",
    );
    assert_one(
        "Service",
        service(json!({"type": "Fancy", "ports": [{"port": 80}]})),
        "spec.type",
        "Unsupported value: \"Fancy\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
    );
    assert_one(
        "Service",
        service(json!({"sessionAffinity": "Cookie", "ports": [{"port": 80}]})),
        "spec.sessionAffinity",
        "Unsupported value: \"Cookie\": supported values: \"ClientIP\", \"None\"",
    );
    assert_one(
        "Service",
        service(json!({"clusterIP": "10.0.0.300", "ports": [{"port": 80}]})),
        "spec.clusterIPs[0]",
        "Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
    );
    assert_one(
        "Service",
        service(json!({"selector": {"app": "a b"}, "ports": [{"port": 80}]})),
        "spec.selector",
        "Invalid value: \"a b\"",
    );
    assert_one(
        "Service",
        service(json!({"ports": [{"port": 80, "name": "a"}, {"port": 80, "name": "b"}]})),
        "spec.ports[1]",
        "Duplicate value: ",
    );
    assert_one(
        "Service",
        service(json!({"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]})),
        "spec.clusterIPs[0]",
        "Invalid value: \"None\": may not be set to 'None' for NodePort services",
    );
}

#[test]
fn workload_rules_report_kube_paths() {
    let mut no_selector = deployment();
    no_selector["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    assert_one("Deployment", no_selector, "spec.selector", "Required value");
    let c = invalid("Deployment", deployment().tap("/spec/selector", json!({})));
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, "spec.selector");
    assert!(
        c[0].1.ends_with("empty selector is invalid for deployment"),
        "{c:?}"
    );
    assert_one(
        "Deployment",
        deployment().tap("/spec/selector/matchLabels/app", json!("api")),
        "spec.template.metadata.labels",
        "Invalid value: {\"app\":\"web\"}: `selector` does not match template `labels`",
    );
    assert_one(
        "Deployment",
        deployment().tap("/spec/replicas", json!(-1)),
        "spec.replicas",
        "Invalid value: -1: must be greater than or equal to 0",
    );
    assert_one(
        "Deployment",
        deployment().tap("/spec/template/spec/restartPolicy", json!("Never")),
        "spec.template.spec.restartPolicy",
        "Unsupported value: \"Never\": supported values: \"Always\"",
    );
    assert_one(
        "Deployment",
        deployment().tap("/spec/strategy", json!({"type": "Blue"})),
        "spec.strategy",
        "Unsupported value: \"Blue\": supported values: \"Recreate\", \"RollingUpdate\"",
    );
    assert_one(
        "Deployment",
        deployment().tap(
            "/spec/strategy",
            json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}}),
        ),
        "spec.strategy.rollingUpdate.maxUnavailable",
        "Invalid value: 0: may not be 0 when `maxSurge` is 0",
    );
    assert_one(
        "Deployment",
        deployment().tap(
            "/spec/strategy",
            json!({"type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": "50", "maxSurge": 1}}),
        ),
        "spec.strategy.rollingUpdate.maxUnavailable",
        "Invalid value: \"50\": a valid percent string must be a numeric string followed by an ending '%'",
    );
    assert_one(
        "Deployment",
        deployment().tap(
            "/spec/template/metadata/labels",
            json!({"app": "web", "bad key": "x"}),
        ),
        "spec.template.labels",
        "Invalid value: \"bad key\"",
    );
    assert_one(
        "Deployment",
        deployment().tap("/spec/template/spec/containers/0/image", json!("")),
        "spec.template.spec.containers[0].image",
        "Required value",
    );
    ok(
        "Deployment",
        deployment().tap(
            "/spec/selector",
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}),
        ),
    );
    assert_eq!(
        invalid(
            "Deployment",
            deployment().tap(
                "/spec/selector",
                json!({"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Near"}]}),
            ),
        ),
        [
            (
                "spec.selector.matchExpressions[0].operator".to_owned(),
                "Invalid value: \"Near\": not a valid selector operator".to_owned()
            ),
            (
                "spec.selector".to_owned(),
                "Invalid value: {\"matchExpressions\":[{\"key\":\"tier\",\"operator\":\"Near\"}],\"matchLabels\":{\"app\":\"web\"}}: invalid label selector".to_owned()
            ),
        ]
    );
    assert_one(
        "DaemonSet",
        deployment()
            .tap("/kind", json!("DaemonSet"))
            .tap("/spec/selector", json!({})),
        "spec.selector",
        "Invalid value: {}: empty selector is invalid for daemonset",
    );
    assert_one(
        "StatefulSet",
        deployment()
            .tap("/kind", json!("StatefulSet"))
            .tap("/spec/podManagementPolicy", json!("Random")),
        "spec.podManagementPolicy",
        "Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
    );
    assert_one(
        "ReplicaSet",
        deployment()
            .tap("/kind", json!("ReplicaSet"))
            .tap("/spec/template/spec/activeDeadlineSeconds", json!(5)),
        "spec.template.spec.activeDeadlineSeconds",
        "Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
    );
}

#[test]
fn job_rules_report_kube_paths() {
    let mut no_policy = job();
    no_policy["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    assert_one(
        "Job",
        no_policy,
        "spec.template.spec.restartPolicy",
        "Required value: valid values: \"OnFailure\", \"Never\"",
    );
    assert_one(
        "Job",
        job().tap("/spec/template/spec/restartPolicy", json!("Always")),
        "spec.template.spec.restartPolicy",
        "Required value: valid values: \"OnFailure\", \"Never\"",
    );
    assert_one(
        "Job",
        job().tap("/spec/template/spec/restartPolicy", json!("Sometimes")),
        "spec.template.spec.restartPolicy",
        "Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
    );
    let c = fields(
        "Job",
        job()
            .tap("/spec/parallelism", json!(-1))
            .tap("/spec/completions", json!(-2))
            .tap("/spec/backoffLimit", json!(-3)),
    );
    assert_eq!(
        c,
        ["spec.parallelism", "spec.completions", "spec.backoffLimit"]
    );
    assert_one(
        "Job",
        job().tap("/spec/selector", json!({"matchLabels": {"app": "other"}})),
        "spec.template.metadata.labels",
        "Invalid value: {\"app\":\"pi\"}: `selector` does not match template `labels`",
    );
    assert_one(
        "Job",
        job()
            .tap("/spec/completionMode", json!("Indexed"))
            .tap("/spec/parallelism", json!(2)),
        "spec.completions",
        "Required value: when completion mode is Indexed",
    );
}

#[test]
fn configmap_secret_rules() {
    let c = invalid("ConfigMap", config_map(json!({"a/b": "x", "..": "y"})));
    assert_eq!(c.len(), 2, "{c:?}");
    assert_eq!(c[0].0, "data[..]");
    assert_eq!(c[0].1, "Invalid value: \"..\": must not be '..'");
    assert_eq!(c[1].0, "data[a/b]");
    assert_eq!(
        c[1].1,
        "Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
    );
    assert_one(
        "ConfigMap",
        config_map(json!({"k": "x"})).tap("/binaryData", json!({"k": "eA=="})),
        "data[k]",
        "Invalid value: \"k\": duplicate of key present in binaryData",
    );
    assert_one(
        "ConfigMap",
        config_map(json!({"a": "x".repeat(600 * 1024), "b": "x".repeat(600 * 1024)})),
        "",
        "Too long: may not be more than 1048576 bytes",
    );
    let secret = |ty: &str, data: Value| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
               "type": ty, "data": data})
    };
    assert_eq!(
        fields("Secret", secret("kubernetes.io/tls", json!({}))),
        ["data[tls.crt]", "data[tls.key]"]
    );
    assert_one(
        "Secret",
        secret(
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "bm90IGpzb24="}),
        ),
        "data[.dockerconfigjson]",
        "Invalid value: \"<secret contents redacted>\"",
    );
    assert_one(
        "Secret",
        secret("Opaque", json!({"bad key": "eA=="})),
        "data[bad key]",
        "Invalid value: \"bad key\"",
    );
    ok("Secret", secret("example.com/custom", json!({"k": "eA=="})));
}

#[test]
fn event_endpoints_slice_lease_rules() {
    let event = |ns: &str, involved: Value| {
        json!({"apiVersion": "v1", "kind": "Event",
               "metadata": {"name": "web.17a", "namespace": ns},
               "involvedObject": involved, "reason": "Started", "message": "ok"})
    };
    ok(
        "Event",
        event(
            "default",
            json!({"kind": "Pod", "name": "web", "namespace": "default"}),
        ),
    );
    ok(
        "Event",
        event("default", json!({"kind": "Node", "name": "n1"})),
    );
    assert_one(
        "Event",
        event(
            "prod",
            json!({"kind": "Pod", "name": "web", "namespace": "default"}),
        ),
        "involvedObject.namespace",
        "Invalid value: \"default\": does not match event.namespace",
    );
    let mut new_style = event(
        "default",
        json!({"kind": "Pod", "name": "web", "namespace": "default"}),
    );
    new_style["eventTime"] = json!("2024-05-01T10:00:00.000000Z");
    assert_eq!(
        fields("Event", new_style.clone()),
        [
            "reportingComponent",
            "reportingComponent",
            "reportingComponent",
            "reportingInstance",
            "action"
        ]
    );
    // Event names only need to be valid path segments.
    ok(
        "Event",
        event("default", json!({"kind": "Node", "name": "n1"}))
            .tap("/metadata/name", json!("Node.N1_x")),
    );
    assert_one(
        "Event",
        event("default", json!({"kind": "Node", "name": "n1"})).tap("/metadata/name", json!("a/b")),
        "metadata.name",
        "Invalid value: \"a/b\": may not contain '/'",
    );
    new_style["reportingComponent"] = json!("kubelet");
    new_style["reportingInstance"] = json!("n1");
    new_style["action"] = json!("Start");
    ok("Event", new_style);

    let endpoints = |subsets: Value| {
        json!({"apiVersion": "v1", "kind": "Endpoints",
               "metadata": {"name": "web", "namespace": "default"}, "subsets": subsets})
    };
    let out = ok(
        "Endpoints",
        endpoints(json!([{"addresses": [{"ip": "127.0.0.5"}], "ports": [{"port": 80}]}])),
    );
    assert_eq!(out["subsets"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(
        fields(
            "Endpoints",
            endpoints(
                json!([{"addresses": [{"ip": "nope"}, {"ip": "169.254.1.1"}],
                             "ports": [{"port": 80}, {"port": 0, "name": "b"}]},
                            {"ports": [{"port": 1}]}])
            )
        ),
        [
            "subsets[0].addresses[0].ip",
            "subsets[0].addresses[1].ip",
            "subsets[0].ports[0].name",
            "subsets[0].ports[1].port",
            "subsets[1]"
        ]
    );

    let slice = |ty: &str, addrs: Value| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "web-1", "namespace": "default"},
               "addressType": ty, "endpoints": [{"addresses": addrs}]})
    };
    assert_one(
        "EndpointSlice",
        slice("IPv4", json!(["fe80::1"])),
        "endpoints[0].addresses[0]",
        "Invalid value: \"fe80::1\": must be a valid IPv4 address",
    );
    assert_one(
        "EndpointSlice",
        slice("IPv5", json!(["10.0.0.1"])),
        "addressType",
        "Unsupported value: \"IPv5\": supported values: \"FQDN\", \"IPv4\", \"IPv6\"",
    );
    assert_one(
        "EndpointSlice",
        slice("FQDN", json!(["localhost"])),
        "endpoints[0].addresses[0]",
        "Invalid value: \"localhost\": should be a domain with at least two segments separated by dots",
    );
    assert_one(
        "EndpointSlice",
        slice("IPv4", json!([])),
        "endpoints[0].addresses",
        "Required value: must contain at least 1 address",
    );
    ok("EndpointSlice", slice("IPv6", json!(["2001:db8::1"])));

    let lease = |spec: Value| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "n1", "namespace": "kube-node-lease"}, "spec": spec})
    };
    ok(
        "Lease",
        lease(json!({"holderIdentity": "n1", "leaseDurationSeconds": 40,
                     "renewTime": "2024-05-01T10:00:00.123456Z"})),
    );
    assert_one(
        "Lease",
        lease(json!({"leaseDurationSeconds": 0})),
        "spec.leaseDurationSeconds",
        "Invalid value: 0: must be greater than 0",
    );
}

// ------------------------------------------------------------ update rules

fn update(kind: &str, old: &Value, new: Value) -> Result<Admitted, ApiError> {
    admit_update(res(kind), old, new, FieldValidation::Warn)
}

fn update_causes(kind: &str, old: &Value, new: Value) -> Vec<(String, String)> {
    match update(kind, old, new) {
        Ok(a) => panic!("update admitted: {}", a.object),
        Err(e) => causes(&e),
    }
}

#[test]
fn pod_spec_is_immutable_but_for_images_and_friends() {
    let old = ok("Pod", nginx_pod());
    let new = old
        .clone()
        .tap("/spec/containers/0/image", json!("nginx:1.27"));
    let out = update("Pod", &old, new).unwrap().object;
    assert_eq!(out["spec"]["containers"][0]["image"], "nginx:1.27");
    // Status written by the caller passes through untouched.
    let new = old
        .clone()
        .tap("/status", json!({"phase": "Running", "podIP": "10.0.0.7"}));
    let out = update("Pod", &old, new).unwrap().object;
    assert_eq!(out["status"]["podIP"], "10.0.0.7");
    // Ephemeral containers (added through their subresource) may be there.
    let debugged = old.clone().tap(
        "/spec/ephemeralContainers",
        json!([{"name": "debug", "image": "busybox"}]),
    );
    update("Pod", &debugged, debugged.clone()).unwrap();
    // A PUT without the defaults is defaulted again, so nothing changed.
    update("Pod", &old, nginx_pod()).unwrap();

    let c = update_causes(
        "Pod",
        &old,
        old.clone().tap("/spec/restartPolicy", json!("Never")),
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "spec");
    assert!(
        c[0].1.starts_with("Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"),
        "{c:?}"
    );
    assert!(c[0].1.contains("spec.restartPolicy"), "{c:?}");

    let mut more = old.clone();
    more["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "b", "image": "b"}));
    assert_eq!(
        update_causes("Pod", &old, more),
        [(
            "spec.containers".to_owned(),
            "Forbidden: pod updates may not add or remove containers".to_owned()
        )]
    );

    // activeDeadlineSeconds may be added and lowered, not raised or removed.
    let with_deadline = old.clone().tap("/spec/activeDeadlineSeconds", json!(100));
    let with_deadline_old = update("Pod", &old, with_deadline).unwrap().object;
    update(
        "Pod",
        &with_deadline_old,
        with_deadline_old
            .clone()
            .tap("/spec/activeDeadlineSeconds", json!(50)),
    )
    .unwrap();
    assert_eq!(
        update_causes(
            "Pod",
            &with_deadline_old,
            with_deadline_old
                .clone()
                .tap("/spec/activeDeadlineSeconds", json!(200))
        ),
        [(
            "spec.activeDeadlineSeconds".to_owned(),
            "Invalid value: 200: must be less than or equal to previous value".to_owned()
        )]
    );

    // Tolerations may be added, not removed.
    let tol =
        json!({"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10});
    let tolerant = update(
        "Pod",
        &old,
        old.clone().tap("/spec/tolerations", json!([tol])),
    )
    .unwrap()
    .object;
    let mut longer = tol.clone();
    longer["tolerationSeconds"] = json!(60);
    update(
        "Pod",
        &tolerant,
        tolerant.clone().tap("/spec/tolerations", json!([longer])),
    )
    .unwrap();
    assert_eq!(
        update_causes(
            "Pod",
            &tolerant,
            tolerant.clone().tap("/spec/tolerations", json!([]))
        ),
        [(
            "spec.tolerations".to_owned(),
            "Forbidden: existing toleration can not be modified except its tolerationSeconds"
                .to_owned()
        )]
    );
}

#[test]
fn service_cluster_ip_is_immutable() {
    let mut old = ok(
        "Service",
        service(json!({"type": "NodePort", "ports": [{"name": "http", "port": 80}]})),
    );
    // What the caller's allocator would have set.
    old["spec"]["clusterIP"] = json!("10.96.0.20");
    old["spec"]["clusterIPs"] = json!(["10.96.0.20"]);
    old["spec"]["ports"][0]["nodePort"] = json!(30080);

    // A PUT that leaves out allocated values keeps them.
    let put = service(
        json!({"type": "NodePort", "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
    );
    let out = update("Service", &old, put).unwrap().object;
    assert_eq!(out["spec"]["clusterIP"], "10.96.0.20");
    assert_eq!(out["spec"]["clusterIPs"], json!(["10.96.0.20"]));
    assert_eq!(out["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(out["spec"]["ports"][0]["targetPort"], 8080);

    let changed = old
        .clone()
        .tap("/spec/clusterIP", json!("10.96.0.21"))
        .tap("/spec/clusterIPs", json!(["10.96.0.21"]));
    assert_eq!(
        update_causes("Service", &old, changed),
        [(
            "spec.clusterIP".to_owned(),
            "Invalid value: \"10.96.0.21\": field is immutable".to_owned()
        )]
    );
    let headless = old.clone().tap("/spec/type", json!("ClusterIP"));
    let mut headless = headless;
    headless["spec"]["clusterIP"] = json!("None");
    headless["spec"]["clusterIPs"] = json!(["None"]);
    headless["spec"]["ports"][0]
        .as_object_mut()
        .unwrap()
        .remove("nodePort");
    headless["spec"]
        .as_object_mut()
        .unwrap()
        .remove("externalTrafficPolicy");
    let c = update_causes("Service", &old, headless);
    assert_eq!(
        c[0],
        (
            "spec.clusterIP".to_owned(),
            "Invalid value: \"None\": field is immutable".to_owned()
        )
    );

    // A PUT naming only the primary cluster IP keeps the secondary one.
    let mut dual = old.clone();
    dual["spec"]["clusterIPs"] = json!(["10.96.0.20", "fd00::20"]);
    dual["spec"]["ipFamilies"] = json!(["IPv4", "IPv6"]);
    dual["spec"]["ipFamilyPolicy"] = json!("PreferDualStack");
    let put = service(json!({"type": "NodePort", "clusterIP": "10.96.0.20",
                             "ports": [{"name": "http", "port": 80}]}));
    let out = update("Service", &dual, put).unwrap().object;
    assert_eq!(out["spec"]["clusterIPs"], json!(["10.96.0.20", "fd00::20"]));
    assert_eq!(out["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(out["spec"]["ipFamilyPolicy"], "PreferDualStack");

    // Switching to ExternalName drops the cluster IP carried along.
    let ext = old
        .clone()
        .tap("/spec/type", json!("ExternalName"))
        .tap("/spec/externalName", json!("db.example.com"));
    let out = update("Service", &old, ext).unwrap().object;
    assert!(out["spec"].get("clusterIP").is_none(), "{}", out["spec"]);
    assert!(out["spec"].get("ipFamilies").is_none());
    assert!(out["spec"]["ports"][0].get("nodePort").is_none());
}

#[test]
fn workload_selectors_are_immutable() {
    let old = ok("Deployment", deployment());
    let out = update(
        "Deployment",
        &old,
        deployment().tap("/spec/replicas", json!(3)),
    )
    .unwrap();
    assert_eq!(out.object["spec"]["replicas"], 3);
    let new = deployment()
        .tap(
            "/spec/selector/matchLabels",
            json!({"app": "web", "tier": "fe"}),
        )
        .tap(
            "/spec/template/metadata/labels",
            json!({"app": "web", "tier": "fe"}),
        );
    let c = update_causes("Deployment", &old, new);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "spec.selector");
    assert!(c[0].1.ends_with("field is immutable"), "{c:?}");

    let sts = deployment().tap("/kind", json!("StatefulSet"));
    let old = ok("StatefulSet", sts.clone());
    update(
        "StatefulSet",
        &old,
        sts.clone().tap("/spec/replicas", json!(5)),
    )
    .unwrap();
    let c = update_causes(
        "StatefulSet",
        &old,
        sts.tap("/spec/serviceName", json!("other")),
    );
    assert_eq!(c[0].0, "spec");
    assert!(
        c[0].1
            .starts_with("Forbidden: updates to statefulset spec for fields other than 'replicas'")
    );
}

#[test]
fn job_selector_and_template_are_immutable_once_set() {
    let selected = job().tap("/spec/selector", json!({"matchLabels": {"app": "pi"}}));
    let old = ok("Job", selected.clone());
    update(
        "Job",
        &old,
        selected.clone().tap("/spec/suspend", json!(true)),
    )
    .unwrap();
    let c = update_causes(
        "Job",
        &old,
        selected
            .clone()
            .tap("/spec/template/spec/containers/0/image", json!("perl:2")),
    );
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].0, "spec.template");
    assert!(c[0].1.ends_with("field is immutable"));
    let c = update_causes("Job", &old, selected.tap("/spec/completions", json!(3)));
    assert_eq!(c[0].0, "spec.completions");

    // Before the controller sets the selector, it may add it and its labels.
    let unselected = ok("Job", job());
    let adopted = job()
        .tap(
            "/spec/selector",
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}}),
        )
        .tap(
            "/spec/template/metadata/labels",
            json!({"app": "pi", "batch.kubernetes.io/controller-uid": "u1"}),
        );
    update("Job", &unselected, adopted).unwrap();
}

#[test]
fn immutable_configmaps_and_secrets() {
    let old = ok(
        "ConfigMap",
        config_map(json!({"a": "1"})).tap("/immutable", json!(true)),
    );
    let c = update_causes(
        "ConfigMap",
        &old,
        config_map(json!({"a": "2"})).tap("/immutable", json!(false)),
    );
    assert_eq!(
        c,
        [
            (
                "immutable".to_owned(),
                "Forbidden: field is immutable when `immutable` is set".to_owned()
            ),
            (
                "data".to_owned(),
                "Forbidden: field is immutable when `immutable` is set".to_owned()
            ),
        ]
    );
    // Metadata may still change.
    update(
        "ConfigMap",
        &old,
        old.clone().tap("/metadata/labels", json!({"x": "y"})),
    )
    .unwrap();

    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
                        "data": {"a": "eA=="}});
    let old = ok("Secret", secret.clone());
    let c = update_causes(
        "Secret",
        &old,
        secret.clone().tap("/type", json!("example.com/other")),
    );
    assert_eq!(
        c,
        [(
            "type".to_owned(),
            "Invalid value: \"example.com/other\": field is immutable".to_owned()
        )]
    );
    // A PUT without `type` is defaulted to the same Opaque.
    update("Secret", &old, secret).unwrap();

    let slice = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                       "metadata": {"name": "web-1", "namespace": "default"}, "addressType": "IPv4"});
    let old = ok("EndpointSlice", slice.clone());
    assert_eq!(
        update_causes(
            "EndpointSlice",
            &old,
            slice.tap("/addressType", json!("IPv6"))
        )[0]
        .0,
        "addressType"
    );
}

#[test]
fn namespace_finalizer_only_on_create() {
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}});
    let old = ok("Namespace", ns.clone());
    // The finalize subresource may empty spec.finalizers on update.
    let finalized = old.clone().tap("/spec/finalizers", json!([]));
    let out = update("Namespace", &old, finalized).unwrap().object;
    assert_eq!(out["spec"]["finalizers"], json!([]));
    assert_one(
        "Namespace",
        ns.tap("/spec", json!({"finalizers": ["custom"]})),
        "spec.finalizers",
        "Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified",
    );
}

#[test]
fn undecodable_stored_object_is_a_500() {
    let err = update("ConfigMap", &json!({"data": 5}), config_map(json!({}))).unwrap_err();
    assert_eq!(err.code, 500);
}

// ------------------------------------------------------------- robustness

/// A small deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_value(rng: &mut Rng, depth: u32) -> Value {
    let leaf = depth == 0;
    match rng.below(if leaf { 9 } else { 12 }) {
        0 => Value::Null,
        1 => json!(rng.next().is_multiple_of(2)),
        2 => json!(rng.next()),
        3 => json!(-(rng.below(1_000_000) as i64)),
        4 => json!(f64::from(u32::try_from(rng.below(100_000)).unwrap()) / 7.0),
        5 => json!(
            [
                "", "0", "-1", "1e400", "None", "Always", "a b", "é", "100Mi", "x/y/z"
            ][rng.below(10)]
        ),
        6 => json!(i64::MIN),
        7 => json!(u64::MAX),
        8 => json!("x".repeat(rng.below(300))),
        9 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth - 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|i| {
                    let key = [
                        "name", "image", "ports", "port", "spec", "metadata", "labels", "x",
                    ][(i + rng.below(8)) % 8];
                    (key.to_owned(), random_value(rng, depth - 1))
                })
                .collect(),
        ),
    }
}

fn pointers(v: &Value, prefix: String, out: &mut Vec<String>) {
    out.push(prefix.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                pointers(
                    child,
                    format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                pointers(child, format!("{prefix}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn valid_objects() -> Vec<(&'static str, Value)> {
    let rich_pod = pod(json!({
        "containers": [{"name": "a", "image": "a", "ports": [{"containerPort": 80, "name": "http"}],
                        "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
                        "resources": {"limits": {"cpu": "1"}},
                        "livenessProbe": {"httpGet": {"port": "http"}},
                        "volumeMounts": [{"name": "v", "mountPath": "/v"}]}],
        "volumes": [{"name": "v", "secret": {"secretName": "s"}}],
        "tolerations": [{"key": "k", "operator": "Exists"}],
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}]}}}
    }));
    vec![
        ("Pod", rich_pod),
        (
            "Service",
            service(
                json!({"type": "NodePort", "selector": {"a": "b"}, "ports": [{"port": 80, "nodePort": 30001}]}),
            ),
        ),
        ("Deployment", deployment()),
        ("ReplicaSet", deployment().tap("/kind", json!("ReplicaSet"))),
        ("DaemonSet", deployment().tap("/kind", json!("DaemonSet"))),
        (
            "StatefulSet",
            deployment().tap("/kind", json!("StatefulSet")),
        ),
        ("Job", job()),
        (
            "ConfigMap",
            config_map(json!({"a": "b"})).tap("/binaryData", json!({"c": "eA=="})),
        ),
        (
            "Secret",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "d"},
                          "type": "kubernetes.io/tls", "data": {"tls.crt": "eA==", "tls.key": "eA=="}}),
        ),
        (
            "Namespace",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}),
        ),
        (
            "Node",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                        "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
                        "status": {"capacity": {"cpu": "4"}}}),
        ),
        (
            "ServiceAccount",
            json!({"apiVersion": "v1", "kind": "ServiceAccount",
                                  "metadata": {"name": "default", "namespace": "d"}, "secrets": [{"name": "x"}]}),
        ),
        (
            "Event",
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "d"},
                         "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d"}, "count": 1}),
        ),
        (
            "Endpoints",
            json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e", "namespace": "d"},
                             "subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]}),
        ),
        (
            "EndpointSlice",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                                 "metadata": {"name": "e", "namespace": "d"}, "addressType": "IPv4",
                                 "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}],
                                 "ports": [{"port": 80, "name": "http"}]}),
        ),
        (
            "Lease",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                         "metadata": {"name": "l", "namespace": "d"}, "spec": {"holderIdentity": "x"}}),
        ),
    ]
}

#[test]
fn every_kind_admits_a_valid_object_idempotently() {
    for (kind, obj) in valid_objects() {
        let first = ok(kind, obj);
        // Admitting the admitted object again changes nothing, and neither
        // does an update to itself.
        assert_eq!(
            ok(kind, first.clone()),
            first,
            "{kind} create is not idempotent"
        );
        let again = update(kind, &first, first.clone())
            .unwrap_or_else(|e| panic!("{kind} self-update rejected: {e}"));
        assert_eq!(again.object, first, "{kind} self-update changed the object");
        assert!(again.warnings.is_empty());
    }
}

#[test]
fn arbitrary_input_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for (kind, valid) in valid_objects() {
        let admitted = ok(kind, valid.clone());
        let mut paths = Vec::new();
        pointers(&valid, String::new(), &mut paths);
        for round in 0..150 {
            let mut obj = valid.clone();
            for _ in 0..=rng.below(3) {
                let p = &paths[rng.below(paths.len())];
                if let Some(slot) = obj.pointer_mut(p) {
                    *slot = random_value(&mut rng, 3);
                }
            }
            let mode = [
                FieldValidation::Strict,
                FieldValidation::Warn,
                FieldValidation::Ignore,
            ][round % 3];
            // Bad input is a 400 or a 422; only an undecodable stored
            // object is the server's problem (500).
            for (result, allowed) in [
                (admit_create(res(kind), obj.clone(), mode), &[400, 422][..]),
                (
                    admit_update(res(kind), &admitted, obj.clone(), mode),
                    &[400, 422][..],
                ),
                (
                    admit_update(res(kind), &obj, admitted.clone(), mode),
                    &[400, 422, 500][..],
                ),
            ] {
                if let Err(e) = result {
                    assert!(
                        allowed.contains(&e.code),
                        "{kind}: unexpected {e} for {obj}"
                    );
                }
            }
        }
    }
    // Whole-body garbage too.
    for _ in 0..200 {
        let v = random_value(&mut rng, 4);
        for (kind, _) in valid_objects() {
            let _ = admit_create(res(kind), v.clone(), FieldValidation::Strict);
        }
    }
}

#[test]
fn kubectl_dry_run_manifests_are_admitted_strictly() {
    // What `kubectl create ... --dry-run=client -o json` prints.
    let manifests = [
        (
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"creationTimestamp": null, "labels": {"app": "web"}, "name": "web", "namespace": "default"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "strategy": {},
                            "template": {"metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                                         "spec": {"containers": [{"image": "nginx", "name": "nginx", "resources": {}}]}}},
                   "status": {}}),
        ),
        (
            "Service",
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"creationTimestamp": null, "labels": {"app": "web"}, "name": "web", "namespace": "default"},
                   "spec": {"ports": [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                            "selector": {"app": "web"}, "type": "ClusterIP"},
                   "status": {"loadBalancer": {}}}),
        ),
        (
            "Job",
            json!({"apiVersion": "batch/v1", "kind": "Job",
                   "metadata": {"creationTimestamp": null, "name": "pi", "namespace": "default"},
                   "spec": {"template": {"metadata": {"creationTimestamp": null},
                                         "spec": {"containers": [{"image": "perl", "name": "pi", "resources": {}}],
                                                  "restartPolicy": "Never"}}},
                   "status": {}}),
        ),
        (
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"creationTimestamp": null, "name": "cfg", "namespace": "default"},
                   "data": {"a": "1"}}),
        ),
        (
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"creationTimestamp": null, "labels": {"run": "web"}, "name": "web", "namespace": "default"},
                   "spec": {"containers": [{"image": "nginx", "name": "web", "resources": {}}],
                            "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"},
                   "status": {}}),
        ),
    ];
    for (kind, manifest) in manifests {
        let admitted = admit_create(res(kind), manifest, FieldValidation::Strict)
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(
            admitted.warnings.is_empty(),
            "{kind}: {:?}",
            admitted.warnings
        );
        assert!(
            admitted.object["metadata"]
                .get("creationTimestamp")
                .is_none()
        );
    }
}
