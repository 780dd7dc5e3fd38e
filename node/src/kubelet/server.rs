//! The kubelet's HTTP server: what the API server proxies `pods/log` to.
//! Serves `GET /containerLogs/{namespace}/{pod}/{container}` (query
//! `follow`, `tailLines`, `timestamps`, `previous`, `limitBytes`,
//! `sinceSeconds`, `sinceTime`) from the CRI log files under the log root
//! (`<root>/<ns>_<name>_<uid>/<container>/<restart>.log`), and `/healthz`.
//!
//! Plain HTTP for now, on the address the agent binds (the Node's
//! `status.daemonEndpoints.kubeletEndpoint.Port`); HTTPS with the API
//! server authenticating to it is not here yet, so bind it only where the
//! API server alone can reach it.
//!
//! Which pods are on the node comes from a [`PodLookup`] (the pod
//! workers' reflector store implements it). Reads the log files only;
//! never writes them nor talks to the runtime.

use std::{
    collections::HashSet,
    convert::Infallible,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{ObjectRef, Store};
use thiserror::Error;
use tokio::{io::AsyncReadExt as _, io::AsyncSeekExt as _, net::TcpListener, sync::mpsc};
use tracing::{Instrument, debug, info, info_span, warn};

use super::logs::{self, Assembler, LogOptions};

/// How often a followed log file is polled for new bytes.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("kubelet server: {0}")]
    Io(#[from] std::io::Error),
}

/// What the log server needs to know of a pod on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodLogInfo {
    pub uid: String,
    /// Its containers' names (init containers included).
    pub containers: Vec<String>,
    /// Containers whose current instance has exited (a follow ends there).
    pub exited: HashSet<String>,
}

/// The pods of this node, by namespace and name.
pub trait PodLookup: Send + Sync + 'static {
    fn pod(&self, namespace: &str, name: &str) -> Option<PodLogInfo>;
}

impl PodLookup for Store<Pod> {
    fn pod(&self, namespace: &str, name: &str) -> Option<PodLogInfo> {
        let pod = self.get(&ObjectRef::new(name).within(namespace))?;
        let spec = pod.spec.as_ref()?;
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .map(|c| c.name.clone())
            .collect();
        let status = pod.status.as_ref();
        let exited = status
            .into_iter()
            .flat_map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            })
            .filter(|cs| {
                let state = cs.state.as_ref();
                let terminated = state.is_some_and(|s| s.terminated.is_some());
                let waiting_after_exit = state.is_some_and(|s| s.waiting.is_some())
                    && cs
                        .last_state
                        .as_ref()
                        .is_some_and(|s| s.terminated.is_some());
                terminated || waiting_after_exit
            })
            .map(|cs| cs.name.clone())
            .collect();
        Some(PodLogInfo {
            uid: pod.metadata.uid.clone()?,
            containers,
            exited,
        })
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn text(code: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(full(message.into()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// The log server's state.
struct LogServer {
    log_root: PathBuf,
    pods: Arc<dyn PodLookup>,
}

/// Serves until the future is dropped (each connection's task ends with
/// its connection).
pub async fn serve(
    listener: TcpListener,
    log_root: PathBuf,
    pods: Arc<dyn PodLookup>,
) -> Result<(), ServerError> {
    let server = Arc::new(LogServer { log_root, pods });
    info!(address = ?listener.local_addr().ok(), "kubelet server listening");
    loop {
        let (stream, peer) = listener.accept().await?;
        let server = server.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(server.handle(req).await) }
        });
        tokio::spawn(
            async move {
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                if let Err(e) = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!("connection: {e}");
                }
            }
            .instrument(info_span!("kubelet-conn", %peer)),
        );
    }
}

impl LogServer {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
        }
        let path = req.uri().path().to_owned();
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["healthz"] => text(StatusCode::OK, "ok"),
            ["containerLogs", namespace, pod, container] => {
                let query: Vec<(String, String)> = req
                    .uri()
                    .query()
                    .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                    .unwrap_or_default();
                let span =
                    info_span!("containerLogs", pod = %format!("{namespace}/{pod}"), container);
                self.container_logs(namespace, pod, container, &query)
                    .instrument(span)
                    .await
            }
            _ => text(StatusCode::NOT_FOUND, format!("no handler for {path}")),
        }
    }

    async fn container_logs(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        query: &[(String, String)],
    ) -> Response<Body> {
        let opts = match LogOptions::from_query(
            query.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            jiff::Timestamp::now(),
        ) {
            Ok(opts) => opts,
            Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
        };
        let safe = |s: &str| !s.is_empty() && !s.contains("..") && !s.contains('/');
        if ![namespace, pod, container].iter().all(|s| safe(s)) {
            return text(
                StatusCode::BAD_REQUEST,
                "invalid namespace, pod or container",
            );
        }
        let Some(info) = self.pods.pod(namespace, pod) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod \"{pod}\" in namespace \"{namespace}\" not found on this node"),
            );
        };
        if !info.containers.iter().any(|c| c == container) {
            return text(
                StatusCode::BAD_REQUEST,
                format!("container \"{container}\" is not valid for pod \"{pod}\""),
            );
        }
        let dir = self
            .log_root
            .join(format!("{namespace}_{pod}_{}", info.uid))
            .join(container);
        let files = logs::log_files(&dir).unwrap_or_default();
        let Some(file) = logs::pick_file(&files, opts.previous).map(Path::to_path_buf) else {
            let message = if opts.previous {
                format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
            } else {
                format!("container \"{container}\" in pod \"{pod}\" is waiting to start")
            };
            return text(StatusCode::BAD_REQUEST, message);
        };
        let bytes = match tokio::fs::read(&file).await {
            Ok(b) => b,
            Err(e) => {
                warn!(file = %file.display(), "reading the log: {e}");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading the log of container \"{container}\": {e}"),
                );
            }
        };
        let mut assembler = Assembler::default();
        let entries = assembler.feed(&bytes);
        let mut head = logs::select(&entries, &opts);
        let mut budget = opts.limit_bytes;
        if let Some(limit) = budget {
            head.truncate(limit);
            budget = Some(limit - head.len());
        }
        let follow = opts.follow && !opts.previous && budget != Some(0);
        if !follow {
            return plain(full(head));
        }
        let (tx, rx) = mpsc::channel::<Bytes>(16);
        let follower = Follower {
            pods: self.pods.clone(),
            namespace: namespace.to_owned(),
            pod: pod.to_owned(),
            uid: info.uid.clone(),
            container: container.to_owned(),
            dir,
            file,
            offset: bytes.len() as u64,
            assembler,
            opts,
            budget,
        };
        tokio::spawn(
            async move {
                if !head.is_empty() && tx.send(Bytes::from(head)).await.is_err() {
                    return;
                }
                follower.run(tx).await;
            }
            .in_current_span(),
        );
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|b| Ok::<_, Infallible>(Frame::data(b)));
        plain(BodyExt::boxed(StreamBody::new(stream)))
    }
}

fn plain(body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// A followed log: polls the file from `offset` until the container
/// exits, a newer restart's file appears, the pod leaves the node, the
/// byte budget is spent, or the client goes away.
struct Follower {
    pods: Arc<dyn PodLookup>,
    namespace: String,
    pod: String,
    uid: String,
    container: String,
    dir: PathBuf,
    file: PathBuf,
    offset: u64,
    assembler: Assembler,
    opts: LogOptions,
    budget: Option<usize>,
}

impl Follower {
    async fn run(mut self, tx: mpsc::Sender<Bytes>) {
        loop {
            // Whether the file is done is decided before reading it, so the
            // last bytes the container wrote are still sent.
            let done = self.done();
            match self.read_new().await {
                Ok(chunk) if !chunk.is_empty() => {
                    if tx.send(Bytes::from(chunk)).await.is_err() {
                        debug!("log client went away");
                        return;
                    }
                    if self.budget == Some(0) {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    debug!("following the log: {e}");
                    return;
                }
            }
            if done {
                debug!("followed container is done");
                return;
            }
            tokio::select! {
                () = tx.closed() => {
                    debug!("log client went away");
                    return;
                }
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
        }
    }

    fn done(&self) -> bool {
        let Some(info) = self.pods.pod(&self.namespace, &self.pod) else {
            return true;
        };
        if info.uid != self.uid || info.exited.contains(&self.container) {
            return true;
        }
        let files = logs::log_files(&self.dir).unwrap_or_default();
        files.last().is_some_and(|(_, newest)| *newest != self.file)
    }

    /// The rendered entries completed since the last read.
    async fn read_new(&mut self) -> std::io::Result<Vec<u8>> {
        let mut file = tokio::fs::File::open(&self.file).await?;
        file.seek(std::io::SeekFrom::Start(self.offset)).await?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).await?;
        self.offset += bytes.len() as u64;
        let mut out: Vec<u8> = self
            .assembler
            .feed(&bytes)
            .iter()
            .filter(|e| self.opts.admits(e))
            .flat_map(|e| e.render(self.opts.timestamps))
            .collect();
        if let Some(budget) = self.budget.as_mut() {
            out.truncate(*budget);
            *budget -= out.len();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use kube::runtime::{reflector, watcher};

    use super::*;

    #[test]
    fn the_store_knows_containers_and_which_exited() {
        let (store, mut writer) = reflector::store::<Pod>();
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u-1"},
            "spec": {
                "initContainers": [{"name": "init"}],
                "containers": [{"name": "app"}, {"name": "side"}, {"name": "crashy"}],
            },
            "status": {
                "initContainerStatuses": [{"name": "init", "image": "i", "imageID": "",
                    "ready": false, "restartCount": 0,
                    "state": {"terminated": {"exitCode": 0}}}],
                "containerStatuses": [
                    {"name": "app", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                     "state": {"running": {}}},
                    {"name": "side", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "ContainerCreating"}}},
                    {"name": "crashy", "image": "i", "imageID": "", "ready": false, "restartCount": 1,
                     "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                     "lastState": {"terminated": {"exitCode": 1}}},
                ],
            },
        }))
        .expect("pod");
        writer.apply_watcher_event(&watcher::Event::Apply(pod));
        let info = store.pod("ns", "p").expect("found");
        assert_eq!(info.uid, "u-1");
        assert_eq!(info.containers, ["init", "app", "side", "crashy"]);
        let mut exited: Vec<&str> = info.exited.iter().map(String::as_str).collect();
        exited.sort_unstable();
        assert_eq!(exited, ["crashy", "init"]);
        assert_eq!(store.pod("ns", "other"), None);
        assert_eq!(store.pod("other", "p"), None);
    }
}
