//! `keelson-sock-client`: the client side of the socket load-balancing
//! tests, run as its own process so it can live in a test cgroup and a test
//! network namespace (the `SockClient` fixture puts it there before exec).
//!
//! It reads one command per line on stdin and answers one line on stdout:
//!
//! - `tcp ADDR` — connect, read the backend's greeting line, close:
//!   `ok NAME PEER`
//! - `tcp-open ADDR` — the same, keeping the connection: `ok ID NAME PEER`
//! - `tcp-ping ID` — send `ping` on a kept connection: `ok NAME`
//! - `udp ADDR` — a fresh unconnected socket, `sendto` + `recvfrom`:
//!   `ok NAME FROM`
//! - `udp-connected ADDR` — a fresh socket, `connect` + `send` + `recvfrom`:
//!   `ok NAME PEER FROM`
//!
//! - `connect-loop SECONDS TARGETS` — new TCP connections, one at a time,
//!   for SECONDS: each `connect()` is timed, then the socket is closed with
//!   a reset (`SO_LINGER` 0, so no TIME_WAIT piles up). TARGETS is
//!   `range:FIRST_IP:COUNT:PORT` (COUNT consecutive addresses, one picked
//!   at random per connection) or `list:ADDR,ADDR,…`:
//!   `ok CONNECTIONS ERRORS ELAPSED_NS P50_NS P99_NS MAX_NS` (used by
//!   `cargo xtask bench proxy`).
//!
//! Failures answer `err ERRNO MESSAGE` (ERRNO 0 when there is none). At
//! start it prints `ready PID CGROUP NETNS`: its cgroup v2 path and network
//! namespace, so the fixture can check where it runs.

use std::{
    collections::HashMap,
    io::{self, BufRead, BufReader, Write},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream, UdpSocket},
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

const TIMEOUT: Duration = Duration::from_secs(3);

fn main() {
    let stdin = io::stdin();
    let mut stdout = io::stdout();
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        })
        .unwrap_or_else(|| "?".to_owned());
    let netns = std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".to_owned());
    let _ = writeln!(stdout, "ready {} {cgroup} {netns}", std::process::id());
    let _ = stdout.flush();

    let mut kept: HashMap<u32, BufReader<TcpStream>> = HashMap::new();
    let mut next_id = 0;
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let reply = match (words.next(), words.next()) {
            (Some("tcp"), Some(addr)) => tcp(addr).map(|(_, name, peer)| format!("{name} {peer}")),
            (Some("tcp-open"), Some(addr)) => tcp(addr).map(|(conn, name, peer)| {
                next_id += 1;
                kept.insert(next_id, conn);
                format!("{next_id} {name} {peer}")
            }),
            (Some("tcp-ping"), Some(id)) => {
                match id.parse().ok().and_then(|id| kept.get_mut(&id)) {
                    Some(conn) => ping(conn),
                    None => Err(io::Error::other(format!("no connection {id}"))),
                }
            }
            (Some("tcp-peer"), Some(id)) => match id.parse().ok().and_then(|id| kept.get(&id)) {
                Some(conn) => conn.get_ref().peer_addr().map(|a| a.to_string()),
                None => Err(io::Error::other(format!("no connection {id}"))),
            },
            (Some("tcp-cookie"), Some(id)) => match id.parse().ok().and_then(|id| kept.get(&id)) {
                Some(conn) => cookie(conn.get_ref()).map(|c| c.to_string()),
                None => Err(io::Error::other(format!("no connection {id}"))),
            },
            (Some("udp"), Some(addr)) => udp(addr, false),
            (Some("udp-connected"), Some(addr)) => udp(addr, true),
            (Some("connect-loop"), Some(seconds)) => match words.next() {
                Some(targets) => connect_loop(seconds, targets),
                None => Err(io::Error::other("connect-loop SECONDS TARGETS")),
            },
            _ => Err(io::Error::other(format!("bad command {line:?}"))),
        };
        let out = match reply {
            Ok(text) => format!("ok {text}"),
            Err(e) => format!("err {} {e}", e.raw_os_error().unwrap_or(0)),
        };
        if writeln!(stdout, "{out}")
            .and_then(|()| stdout.flush())
            .is_err()
        {
            break;
        }
    }
}

/// The socket's cookie (`SO_COOKIE`), as `bpf_get_socket_cookie()` sees it.
fn cookie(stream: &TcpStream) -> io::Result<u64> {
    let mut cookie = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: a valid socket fd and an out-buffer of the option's size.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cookie)
}

fn parse(addr: &str) -> io::Result<SocketAddr> {
    addr.parse()
        .map_err(|e| io::Error::other(format!("{addr}: {e}")))
}

fn tcp(addr: &str) -> io::Result<(BufReader<TcpStream>, String, SocketAddr)> {
    let stream = TcpStream::connect_timeout(&parse(addr)?, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    let peer = stream.peer_addr()?;
    let mut conn = BufReader::new(stream);
    let name = read_line(&mut conn)?;
    Ok((conn, name, peer))
}

fn ping(conn: &mut BufReader<TcpStream>) -> io::Result<String> {
    conn.get_mut().write_all(b"ping\n")?;
    read_line(conn)
}

fn read_line(conn: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut name = String::new();
    if conn.read_line(&mut name)? == 0 {
        return Err(io::Error::other("connection closed"));
    }
    Ok(name.trim().to_owned())
}

fn udp(addr: &str, connected: bool) -> io::Result<String> {
    let target = parse(addr)?;
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    socket.set_read_timeout(Some(TIMEOUT))?;
    let peer = if connected {
        socket.connect(target)?;
        socket.send(b"hello")?;
        Some(socket.peer_addr()?)
    } else {
        socket.send_to(b"hello", target)?;
        None
    };
    let mut buf = [0u8; 256];
    let (len, from) = socket.recv_from(&mut buf)?;
    let name = String::from_utf8_lossy(&buf[..len]).trim().to_owned();
    Ok(match peer {
        Some(peer) => format!("{name} {peer} {from}"),
        None => format!("{name} {from}"),
    })
}

/// Where `connect-loop` connects.
enum Targets {
    Range { first: u32, count: u32, port: u16 },
    List(Vec<SocketAddr>),
}

impl Targets {
    fn parse(spec: &str) -> io::Result<Self> {
        let bad = || io::Error::other(format!("bad targets {spec:?}"));
        if let Some(range) = spec.strip_prefix("range:") {
            let mut parts = range.split(':');
            let (Some(first), Some(count), Some(port), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(bad());
            };
            let first: Ipv4Addr = first.parse().map_err(|_| bad())?;
            let count: u32 = count.parse().map_err(|_| bad())?;
            if count == 0 {
                return Err(bad());
            }
            Ok(Self::Range {
                first: first.into(),
                count,
                port: port.parse().map_err(|_| bad())?,
            })
        } else if let Some(list) = spec.strip_prefix("list:") {
            let addrs = list.split(',').map(parse).collect::<io::Result<Vec<_>>>()?;
            if addrs.is_empty() {
                return Err(bad());
            }
            Ok(Self::List(addrs))
        } else {
            Err(bad())
        }
    }

    fn pick(&self, random: u64) -> SocketAddr {
        match self {
            Self::Range { first, count, port } => {
                let ip = Ipv4Addr::from(first + (random % u64::from(*count)) as u32);
                SocketAddr::V4(SocketAddrV4::new(ip, *port))
            }
            Self::List(addrs) => addrs[(random % addrs.len() as u64) as usize],
        }
    }
}

fn connect_loop(seconds: &str, targets: &str) -> io::Result<String> {
    let seconds: f64 = seconds
        .parse()
        .map_err(|_| io::Error::other(format!("bad duration {seconds:?}")))?;
    let targets = Targets::parse(targets)?;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // xorshift64*, seeded from the pid: no shared pattern between runs.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    let mut latencies: Vec<u64> = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    let mut first_error = None;
    let started = Instant::now();
    let budget = Duration::from_secs_f64(seconds);
    while started.elapsed() < budget {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let target = targets.pick(state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11);
        let t0 = Instant::now();
        match TcpStream::connect_timeout(&target, TIMEOUT) {
            Ok(stream) => {
                latencies.push(t0.elapsed().as_nanos() as u64);
                // SAFETY: a valid socket fd and a correctly sized linger.
                unsafe {
                    libc::setsockopt(
                        stream.as_raw_fd(),
                        libc::SOL_SOCKET,
                        libc::SO_LINGER,
                        (&raw const linger).cast(),
                        size_of::<libc::linger>() as libc::socklen_t,
                    );
                }
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{target}: {e}"));
                if errors > 100 && latencies.is_empty() {
                    break;
                }
            }
        }
    }
    let elapsed = started.elapsed().as_nanos();
    if latencies.is_empty() {
        return Err(io::Error::other(format!(
            "no connection succeeded ({errors} errors; first: {})",
            first_error.unwrap_or_default()
        )));
    }
    latencies.sort_unstable();
    let quantile = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Ok(format!(
        "{} {errors} {elapsed} {} {} {}",
        latencies.len(),
        quantile(0.5),
        quantile(0.99),
        quantile(1.0)
    ))
}
