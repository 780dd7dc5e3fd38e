//! The processes the bench measures: a throwaway etcd (`/usr/bin/etcd` on
//! free 127.0.0.1 ports) and a `keelson-server` (embedded SQLite or that
//! etcd), each in a fresh temporary data dir, SIGKILLed and reaped on drop
//! (the dir goes with it). Owns only these children and their dirs.

use std::{
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

/// The parent of every temp dir the bench makes: the disk under `/tmp`
/// (the same filesystem for SQLite and etcd, so both pay the same fsync).
fn temp_dir(prefix: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("creating a temp dir")
}

/// A port nothing listens on right now (bind-and-release on 127.0.0.1).
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Kills and reaps a child; used by the drop guards.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// CPU time (user + system) a process has used so far, in seconds, from
/// `/proc/<pid>/stat` (`self` for this process). Linux reports it in
/// USER_HZ ticks, which is 100 on every architecture it runs on.
pub fn cpu_seconds(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name may contain spaces: fields are counted after ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64> {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .map(|t| t as f64 / 100.0)
            .with_context(|| format!("unexpected {path}"))
    };
    // utime and stime are fields 14 and 15 of stat(5); `rest` starts at 3.
    Ok(tick(11)? + tick(12)?)
}

/// A single-member etcd 3.4 with its data in a temp dir.
pub struct Etcd {
    child: Child,
    pub endpoint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Etcd {
    pub async fn start() -> Result<Self> {
        let dir = temp_dir("keelson-bench-etcd-")?;
        let (client, peer) = (free_port()?, free_port()?);
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.path().join("etcd.log");
        let log_file = std::fs::File::create(&log).context("creating etcd.log")?;
        let child = Command::new("/usr/bin/etcd")
            .arg("--name")
            .arg("bench")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--listen-client-urls")
            .arg(&endpoint)
            .arg("--advertise-client-urls")
            .arg(&endpoint)
            .arg("--listen-peer-urls")
            .arg(&peer_url)
            .arg("--initial-advertise-peer-urls")
            .arg(&peer_url)
            .arg("--initial-cluster")
            .arg(format!("bench={peer_url}"))
            .args(["--logger", "zap", "--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting /usr/bin/etcd (is etcd-server installed? cargo xtask setup)")?;
        let mut etcd = Self {
            child,
            endpoint,
            log,
            _dir: dir,
        };
        etcd.wait_ready().await?;
        Ok(etcd)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("etcd exited ({status}); its log:\n{}", log_tail(&self.log));
            }
            let attempt = async {
                let mut client = etcd_client::Client::connect([&self.endpoint], None).await?;
                client.status().await
            };
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_secs(2), attempt).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd at {} not ready within 20s; its log:\n{}",
                    self.endpoint,
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Etcd {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// A `keelson-server` on 127.0.0.1 with a fresh data dir.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    log: PathBuf,
}

impl Server {
    /// Starts `binary` with `extra` arguments (e.g. `--store etcd ...`)
    /// and waits for its "serving" line.
    pub fn start(binary: &Path, extra: &[&str]) -> Result<Self> {
        let dir = temp_dir("keelson-bench-server-")?;
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).context("creating server.log")?;
        let mut child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--bind-address", "127.0.0.1", "--secure-port", "0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keeps draining stdout so the server never blocks on it.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) =
                    line.strip_prefix("keelson-server: serving the Kubernetes API on ")
                {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let mut server = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dir,
            log,
        };
        let url = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(url) => url,
            Err(_) => bail!(
                "keelson-server did not start within 30s; its log:\n{}",
                server.log_tail()
            ),
        };
        server.addr = url
            .strip_prefix("https://")
            .and_then(|a| a.parse().ok())
            .with_context(|| format!("unexpected server URL {url:?}"))?;
        Ok(server)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// The server's resident set (VmRSS) in bytes.
    pub fn rss_bytes(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .with_context(|| format!("no VmRSS in {path}"))?;
        Ok(kib * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
