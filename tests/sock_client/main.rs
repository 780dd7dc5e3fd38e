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
//! Failures answer `err ERRNO MESSAGE` (ERRNO 0 when there is none). At
//! start it prints `ready PID CGROUP NETNS`: its cgroup v2 path and network
//! namespace, so the fixture can check where it runs.

use std::{
    collections::HashMap,
    io::{self, BufRead, BufReader, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    time::Duration,
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
            (Some("udp"), Some(addr)) => udp(addr, false),
            (Some("udp-connected"), Some(addr)) => udp(addr, true),
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
