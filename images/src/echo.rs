//! `keelson-echo`: the HTTP server of `keelson.local/echo:1`, a test
//! backend whose answer tells which pod served it.
//!
//! Listens on `0.0.0.0:$PORT` (8080 when `PORT` is unset) and answers
//! every GET (and HEAD) with `200 OK` and a body that is exactly its host
//! name — the pod's name, in a pod with its own UTS namespace; anything
//! else gets `405`. One thread per connection, `Connection: close`. Logs
//! one line per request to stdout (the container's CRI log). Exits 0 on
//! SIGTERM/SIGINT, which matters as PID 1 of a container: the default
//! action would be ignored there. Static, std and libc only.

use std::{
    io::{BufRead, BufReader, Write},
    net::{TcpListener, TcpStream},
    process::ExitCode,
    time::Duration,
};

/// One line to stdout; a closed stdout must not bring the server down.
macro_rules! log {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// The port when `PORT` is unset.
const DEFAULT_PORT: u16 = 8080;
/// The longest request head read; longer ones get `431`.
const MAX_HEAD: usize = 16 * 1024;

extern "C" fn on_shutdown(_signal: libc::c_int) {
    let message = b"keelson-echo: shutting down\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(libc::STDOUT_FILENO, message.as_ptr().cast(), message.len());
        libc::_exit(0);
    }
}

fn install_shutdown(signal: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is valid; the handler lives for the
    // whole program.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_shutdown as *const () as usize;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
    }
}

/// The kernel's host name of this UTS namespace.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length; gethostname
    // NUL-terminates within it when the name fits.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Reads the request head; returns its first line (`GET / HTTP/1.1`).
fn read_head(stream: &TcpStream) -> std::io::Result<Option<String>> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Ok(None);
        }
        if first.is_empty() {
            first = line.trim_end().to_owned();
        } else if line == "\r\n" || line == "\n" {
            return Ok(Some(first));
        }
    }
}

fn respond(
    mut stream: &TcpStream,
    status: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        response.push_str(body);
    }
    stream.write_all(response.as_bytes())
}

fn serve(stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(10)));
    let result = match read_head(&stream) {
        Ok(Some(first)) => {
            let method = first.split_whitespace().next().unwrap_or_default();
            log!("keelson-echo: {first} from {peer}");
            match method {
                "GET" => respond(&stream, "200 OK", &hostname(), false),
                "HEAD" => respond(&stream, "200 OK", &hostname(), true),
                _ => respond(&stream, "405 Method Not Allowed", "GET only\n", false),
            }
        }
        Ok(None) => respond(&stream, "431 Request Header Fields Too Large", "", false),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        log!("keelson-echo: {peer}: {e}");
    }
}

fn main() -> ExitCode {
    if !(install_shutdown(libc::SIGTERM) && install_shutdown(libc::SIGINT)) {
        eprintln!(
            "keelson-echo: sigaction: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    let port = match std::env::var("PORT") {
        Ok(port) => match port.parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("keelson-echo: PORT={port:?} is not a port number");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => DEFAULT_PORT,
    };
    let listener = match TcpListener::bind(("0.0.0.0", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("keelson-echo: listening on 0.0.0.0:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    log!("keelson-echo: serving {} on 0.0.0.0:{port}", hostname());
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                std::thread::spawn(move || serve(stream));
            }
            Err(e) => log!("keelson-echo: accept: {e}"),
        }
    }
    ExitCode::SUCCESS
}
