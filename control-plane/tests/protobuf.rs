//! Protobuf bodies as the real kubectl sends them: kubectl 1.32 is pointed
//! at a throwaway plain-HTTP listener on 127.0.0.1 that records every
//! request, answers `/version`, and answers each POST with the object our
//! decoder made of its body. Each recorded body must decode to exactly the
//! JSON kubectl itself produces for the same command (`--dry-run=client -o
//! json`), and is checked field by field and strictly against `k8s-openapi`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use keelson_control_plane::apiserver::protobuf::{CONTENT_TYPE, decode_object};
use serde_json::{Value, json};

/// One request kubectl made.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    path: String,
    content_type: String,
    accept: String,
    body: Vec<u8>,
}

/// The stub API server; stops its accept loop when dropped.
struct Stub {
    port: u16,
    requests: Arc<Mutex<Vec<Recorded>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stub {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let requests = Arc::clone(&requests);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let requests = Arc::clone(&requests);
                    // Connection threads end when kubectl closes the socket
                    // or after the read timeout.
                    std::thread::spawn(move || serve(conn, &requests));
                }
            })
        };
        Self {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serves HTTP/1.1 requests on one connection until it closes.
fn serve(conn: TcpStream, requests: &Mutex<Vec<Recorded>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(mut writer) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_owned(), path.to_owned());
        let (mut length, mut content_type, mut accept) = (0usize, String::new(), String::new());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim().to_owned();
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.parse().unwrap_or(0),
                    "content-type" => content_type = value,
                    "accept" => accept = value,
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let (status, reply) = respond(&method, &path, &body);
        requests.lock().expect("lock").push(Recorded {
            method,
            path,
            content_type,
            accept,
            body,
        });
        let reply = reply.to_string();
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(reply.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// `/version` for kubectl's version check; POSTs get the decoded object back.
fn respond(method: &str, path: &str, body: &[u8]) -> (&'static str, Value) {
    match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/version") => (
            "200 OK",
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"}),
        ),
        ("POST", _) => match decode_object(body) {
            Ok(object) => ("201 Created", object),
            Err(e) => ("400 Bad Request", e.to_status()),
        },
        _ => (
            "404 Not Found",
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        ),
    }
}

/// Runs kubectl against the stub with a throwaway kubeconfig and cache.
fn kubectl(stub: &Stub, dir: &Path, args: &[&str]) -> String {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: stub\n  cluster:\n    server: http://127.0.0.1:{}\ncontexts:\n- name: stub\n  context:\n    cluster: stub\n    user: stub\n    namespace: default\ncurrent-context: stub\nusers:\n- name: stub\n  user: {{}}\n",
            stub.port
        ),
    )
    .expect("write kubeconfig");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .arg("--request-timeout=20s")
        .args(args)
        .env("HOME", dir)
        .env_remove("KUBECONFIG")
        .output()
        .expect("kubectl is on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {stdout}{stderr}"
    );
    stdout
}

/// Runs `kubectl create ...`, returns the decoded body of the one POST it made.
fn create(stub: &Stub, dir: &Path, args: &[&str], expect_path: &str) -> Value {
    let before = stub.requests().len();
    let mut full = vec!["create"];
    full.extend_from_slice(args);
    let stdout = kubectl(stub, dir, &full);
    let posts: Vec<Recorded> = stub.requests()[before..]
        .iter()
        .filter(|r| r.method == "POST")
        .cloned()
        .collect();
    assert_eq!(posts.len(), 1, "kubectl {full:?} made {posts:?}");
    let post = &posts[0];
    assert_eq!(post.path.split('?').next(), Some(expect_path));
    assert_eq!(
        post.content_type, CONTENT_TYPE,
        "kubectl {full:?} did not send protobuf"
    );
    assert!(
        post.accept.starts_with(CONTENT_TYPE),
        "accept {}",
        post.accept
    );
    assert!(post.body.starts_with(b"k8s\0"));
    let object = decode_object(&post.body).unwrap_or_else(|e| panic!("kubectl {full:?}: {e}"));
    // kubectl printed the name from our JSON answer.
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    assert!(stdout.contains(&format!("/{name} created")), "{stdout}");

    // The same object as kubectl's own JSON encoding (Go's encoding/json), with
    // the nulls of unset Go structs such as creationTimestamp removed.
    let mut dry_run = full.clone();
    dry_run.extend(["--dry-run=client", "-o", "json"]);
    let mut as_json: Value = serde_json::from_str(&kubectl(stub, dir, &dry_run)).expect("JSON");
    strip_nulls(&mut as_json);
    assert_eq!(
        object, as_json,
        "kubectl {full:?}: protobuf and JSON bodies differ"
    );
    object
}

fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Deserializes into the k8s-openapi type, failing on any ignored field.
fn strictly<T: serde::de::DeserializeOwned>(v: &Value) -> T {
    let mut ignored = Vec::new();
    let t = serde_ignored::deserialize(v.clone(), |p| ignored.push(p.to_string()))
        .unwrap_or_else(|e| panic!("{v} does not deserialize: {e}"));
    assert!(
        ignored.is_empty(),
        "fields ignored by k8s-openapi: {ignored:?}"
    );
    t
}

#[test]
fn kubectl_create_posts_protobuf_that_decodes_to_kube_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stub = Stub::start();

    let ns = create(&stub, dir.path(), &["namespace", "x"], "/api/v1/namespaces");
    assert_eq!(
        ns,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}, "spec": {}, "status": {}})
    );
    let _: k8s_openapi::api::core::v1::Namespace = strictly(&ns);

    let cm = create(
        &stub,
        dir.path(),
        &["configmap", "c", "--from-literal=a=1"],
        "/api/v1/namespaces/default/configmaps",
    );
    assert_eq!(
        cm,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    );
    let _: k8s_openapi::api::core::v1::ConfigMap = strictly(&cm);

    let deploy = create(
        &stub,
        dir.path(),
        &[
            "deployment",
            "web",
            "--image=keelson.local/web:1",
            "--port=80",
            "--replicas=2",
        ],
        "/apis/apps/v1/namespaces/default/deployments",
    );
    assert_eq!(
        deploy,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "labels": {"app": "web"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "web",
                        "image": "keelson.local/web:1",
                        "ports": [{"containerPort": 80}],
                        "resources": {},
                    }]},
                },
                "strategy": {},
            },
            "status": {},
        })
    );
    let d: k8s_openapi::api::apps::v1::Deployment = strictly(&deploy);
    assert_eq!(d.spec.replicas, Some(2));

    let svc = create(
        &stub,
        dir.path(),
        &["service", "clusterip", "s", "--tcp=80:8080"],
        "/api/v1/namespaces/default/services",
    );
    assert_eq!(
        svc["metadata"],
        json!({"name": "s", "labels": {"app": "s"}})
    );
    assert_eq!(
        svc["spec"],
        json!({
            "ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
            "selector": {"app": "s"},
            "type": "ClusterIP",
        })
    );
    let _: k8s_openapi::api::core::v1::Service = strictly(&svc);

    let job = create(
        &stub,
        dir.path(),
        &["job", "j", "--image=keelson.local/j:1"],
        "/apis/batch/v1/namespaces/default/jobs",
    );
    assert_eq!(job["kind"], "Job");
    assert_eq!(job["apiVersion"], "batch/v1");
    assert_eq!(job["metadata"]["name"], "j");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["containers"][0]["name"], "j");
    assert_eq!(pod["containers"][0]["image"], "keelson.local/j:1");
    assert_eq!(pod["restartPolicy"], "Never");
    let _: k8s_openapi::api::batch::v1::Job = strictly(&job);

    let secret = create(
        &stub,
        dir.path(),
        &["secret", "generic", "s", "--from-literal=k=v"],
        "/api/v1/namespaces/default/secrets",
    );
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"], json!({"name": "s"}));
    assert_eq!(secret["data"], json!({"k": "dg=="}));
    let s: k8s_openapi::api::core::v1::Secret = strictly(&secret);
    let data = s.data.unwrap_or_default();
    assert_eq!(data.get("k").map(|b| b.0.as_slice()), Some(&b"v"[..]));
}

#[test]
fn more_kubectl_generators_decode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let stub = Stub::start();

    let sa = create(
        &stub,
        dir.path(),
        &["serviceaccount", "robot"],
        "/api/v1/namespaces/default/serviceaccounts",
    );
    assert_eq!(
        sa,
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot"}})
    );

    let ext = create(
        &stub,
        dir.path(),
        &[
            "service",
            "externalname",
            "e",
            "--external-name=example.com",
        ],
        "/api/v1/namespaces/default/services",
    );
    assert_eq!(ext["spec"]["type"], "ExternalName");
    assert_eq!(ext["spec"]["externalName"], "example.com");
    let _: k8s_openapi::api::core::v1::Service = strictly(&ext);

    let np = create(
        &stub,
        dir.path(),
        &[
            "service",
            "nodeport",
            "n",
            "--tcp=8080:80",
            "--node-port=30080",
        ],
        "/api/v1/namespaces/default/services",
    );
    assert_eq!(np["spec"]["type"], "NodePort");
    assert_eq!(np["spec"]["ports"][0]["nodePort"], 30080);
    assert_eq!(np["spec"]["ports"][0]["targetPort"], 80);

    let docker = create(
        &stub,
        dir.path(),
        &[
            "secret",
            "docker-registry",
            "reg",
            "--docker-server=keelson.local",
            "--docker-username=u",
            "--docker-password=p",
        ],
        "/api/v1/namespaces/default/secrets",
    );
    assert_eq!(docker["type"], "kubernetes.io/dockerconfigjson");
    let s: k8s_openapi::api::core::v1::Secret = strictly(&docker);
    let config = s.data.unwrap_or_default();
    let config = config.get(".dockerconfigjson").expect("docker config");
    let config: Value = serde_json::from_slice(&config.0).expect("JSON docker config");
    assert_eq!(config["auths"]["keelson.local"]["username"], "u");

    let lb = create(
        &stub,
        dir.path(),
        &["service", "loadbalancer", "lb", "--tcp=443:8443"],
        "/api/v1/namespaces/default/services",
    );
    assert_eq!(lb["spec"]["type"], "LoadBalancer");
    assert_eq!(lb["spec"]["ports"][0]["targetPort"], 8443);

    // An explicit zero of a pointer field survives.
    let zero = create(
        &stub,
        dir.path(),
        &[
            "deployment",
            "idle",
            "--image=keelson.local/idle:1",
            "--replicas=0",
        ],
        "/apis/apps/v1/namespaces/default/deployments",
    );
    assert_eq!(zero["spec"]["replicas"], 0);

    let cert = rcgen::generate_simple_self_signed(vec!["keelson.local".to_owned()]).expect("cert");
    let (crt, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&crt, cert.cert.pem()).expect("write cert");
    std::fs::write(&key, cert.signing_key.serialize_pem()).expect("write key");
    let tls = create(
        &stub,
        dir.path(),
        &[
            "secret",
            "tls",
            "t",
            &format!("--cert={}", crt.display()),
            &format!("--key={}", key.display()),
        ],
        "/api/v1/namespaces/default/secrets",
    );
    assert_eq!(tls["type"], "kubernetes.io/tls");
    let s: k8s_openapi::api::core::v1::Secret = strictly(&tls);
    let data = s.data.unwrap_or_default();
    assert_eq!(
        data.get("tls.crt").map(|b| b.0.clone()),
        Some(cert.cert.pem().into_bytes())
    );
}
