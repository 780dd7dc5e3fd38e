//! One measurement bench: a client namespace and a backend namespace
//! joined by a veth pair (neither has a route out of the machine), a test
//! cgroup the client process runs in, a TCP accept loop on the backends'
//! three addresses, and the client process (`keelson-sock-client`) that
//! opens connections on command. Each proxy is measured in a fresh lab so
//! none inherits another's kernel state (netfilter hooks, conntrack).
//! Everything is removed on drop.

use std::{
    net::{Ipv4Addr, TcpListener},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use anyhow::{Context, Result, bail};
use keelson_e2e::{
    cgroup::TestCgroup,
    netns::{NetNs, VethPair},
    sockclient::SockClient,
};
use serde_json::{Value, json};

use crate::objects::{BACKEND_PORT, BACKENDS, FIRST_VIP};

pub struct Lab {
    // Field order is drop order: the client process, the server, then the
    // kernel objects.
    client: SockClient,
    _server: AcceptLoop,
    pub cgroup: TestCgroup,
    _veth: VethPair,
    _backend_ns: NetNs,
    pub client_ns: NetNs,
}

impl Lab {
    pub fn new() -> Result<Self> {
        let client_ns = NetNs::new()?;
        let backend_ns = NetNs::new()?;
        let veth = VethPair::new(
            &client_ns,
            &backend_ns,
            Ipv4Addr::new(10, 203, 0, 1),
            Ipv4Addr::new(10, 203, 0, 2),
        )?;
        for ip in BACKENDS {
            backend_ns.ip(&["addr", "add", &format!("{ip}/32"), "dev", &veth.b])?;
        }
        // Backends are on-link; the service range is routed to the veth as a
        // node's default route would (iptables and nftables translate after
        // the route lookup; the socket programs before it).
        client_ns.ip(&["route", "add", "10.203.1.0/24", "dev", &veth.a])?;
        client_ns.ip(&["route", "add", "10.96.0.0/12", "dev", &veth.a])?;
        let server = AcceptLoop::start(&backend_ns)?;
        let cgroup = TestCgroup::new()?;
        let client = SockClient::spawn(
            env!("CARGO_BIN_EXE_keelson-sock-client"),
            &client_ns,
            &cgroup,
        )?;
        Ok(Self {
            client,
            _server: server,
            cgroup,
            _veth: veth,
            _backend_ns: backend_ns,
            client_ns,
        })
    }

    /// New connections for `seconds`, one at a time.
    pub fn measure(&mut self, target: Target, seconds: f64) -> Result<Sample> {
        let spec = match target {
            Target::Direct => format!(
                "list:{}",
                BACKENDS
                    .iter()
                    .map(|ip| format!("{ip}:{BACKEND_PORT}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Target::Vips(n) => format!("range:{FIRST_VIP}:{n}:{}", crate::objects::SERVICE_PORT),
        };
        let words = match self
            .client
            .call(&format!("connect-loop {seconds} {spec}"))?
        {
            Ok(words) => words,
            Err(e) => bail!("connect-loop to {spec}: {e:?}"),
        };
        let num = |k: usize| -> Result<f64> {
            words
                .get(k)
                .with_context(|| format!("short reply {words:?}"))?
                .parse()
                .with_context(|| format!("bad reply {words:?}"))
        };
        let (count, errors, elapsed_ns) = (num(0)?, num(1)?, num(2)?);
        Ok(Sample {
            rate: count / (elapsed_ns / 1e9),
            p50_us: num(3)? / 1e3,
            p99_us: num(4)? / 1e3,
            max_us: num(5)? / 1e3,
            connections: count as u64,
            errors: errors as u64,
        })
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The backends' own addresses.
    Direct,
    /// A random one of the first `n` service VIPs.
    Vips(usize),
}

/// One run of the connect loop.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// New connections per second.
    pub rate: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub connections: u64,
    pub errors: u64,
}

impl Sample {
    /// The median (by rate) of several runs.
    pub fn median(mut runs: Vec<Sample>) -> Sample {
        runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
        runs[runs.len() / 2]
    }

    /// Interleaved slices of one figure pooled: every connection over the
    /// whole time measured; the slices' median p50 and p99, their max.
    pub fn pooled(slices: &[Sample]) -> Sample {
        let connections: u64 = slices.iter().map(|s| s.connections).sum();
        let seconds: f64 = slices
            .iter()
            .filter(|s| s.rate > 0.0)
            .map(|s| s.connections as f64 / s.rate)
            .sum();
        let median = |f: fn(&Sample) -> f64| {
            let mut v: Vec<f64> = slices.iter().map(f).collect();
            v.sort_by(f64::total_cmp);
            v.get(v.len() / 2).copied().unwrap_or(0.0)
        };
        Sample {
            rate: if seconds > 0.0 {
                connections as f64 / seconds
            } else {
                0.0
            },
            p50_us: median(|s| s.p50_us),
            p99_us: median(|s| s.p99_us),
            max_us: slices.iter().map(|s| s.max_us).fold(0.0, f64::max),
            connections,
            errors: slices.iter().map(|s| s.errors).sum(),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "connections_per_s": round(self.rate),
            "p50_us": round(self.p50_us),
            "p99_us": round(self.p99_us),
            "max_us": round(self.max_us),
            "connections": self.connections,
            "errors": self.errors,
        })
    }
}

pub fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Accepts and closes connections on `0.0.0.0:BACKEND_PORT` of the
/// backend namespace until dropped.
struct AcceptLoop {
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    fn start(netns: &NetNs) -> Result<Self> {
        // A deep accept queue: a full one drops SYNs, and the client's
        // retransmission (1 s later) would stall the measurement.
        let listener = Arc::new(netns.enter(|| {
            std::fs::write("/proc/sys/net/core/somaxconn", "65535")
                .context("raising somaxconn in the backend namespace")?;
            let listener = TcpListener::bind(("0.0.0.0", BACKEND_PORT))
                .context("binding the backends' port")?;
            // SAFETY: listen() again on our own listening socket only
            // resizes its accept queue.
            if unsafe { libc::listen(listener.as_raw_fd(), 65535) } != 0 {
                return Err(std::io::Error::last_os_error()).context("listen");
            }
            Ok(listener)
        })?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (listener, stop) = (listener.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    // Accepted and closed at once: the client only times
                    // the handshake.
                    let _ = listener.accept();
                }
            })
        };
        Ok(Self {
            listener,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the blocked accept() with an error.
        // SAFETY: shutting down a socket fd this value owns.
        unsafe {
            libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
