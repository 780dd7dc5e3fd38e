//! The `keelson-node flows` command's engine: sends one [`FlowRequest`]
//! line to the agent's flow socket and prints what comes back, as JSON
//! lines or as a `hubble observe`-like table. Talks only to the socket.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
};

use thiserror::Error;

use super::record::{Flow, FlowRequest};

/// How flows are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Table,
}

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("connecting to the flow socket {path} (is `keelson-node proxy` running?): {source}")]
    Connect {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("talking to the flow socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("the agent refused the request: {0}")]
    Refused(String),
    #[error("the agent sent an unreadable line {line:?}: {source}")]
    Decode {
        line: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The table's header.
pub fn table_header() -> String {
    format!(
        "{:<30} {:<22} {:<22} {:<22} {:<5} {:<10} {:<24} {}",
        "TIME", "SOURCE", "VIP", "BACKEND", "PROTO", "HOOK", "SERVICE", "VERDICT"
    )
}

/// One table row.
pub fn table_row(flow: &Flow) -> String {
    let source = flow
        .source
        .clone()
        .unwrap_or_else(|| format!("netns:{}", flow.netns_cookie));
    format!(
        "{:<30} {:<22} {:<22} {:<22} {:<5} {:<10} {:<24} {}",
        flow.time,
        source,
        flow.vip,
        flow.backend.as_deref().unwrap_or("-"),
        flow.protocol,
        flow.hook,
        flow.service.as_deref().unwrap_or("-"),
        flow.verdict.as_str()
    )
}

/// Sends `request` to the socket at `path` and writes every flow to `out`
/// until the agent closes the stream (never, with `follow`).
pub fn observe(
    path: &Path,
    request: &FlowRequest,
    output: Output,
    out: &mut impl Write,
) -> Result<(), ClientError> {
    let mut stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
        path: path.display().to_string(),
        source,
    })?;
    let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    if output == Output::Table {
        writeln!(out, "{}", table_header())?;
    }
    for line in BufReader::new(stream).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|source| ClientError::Decode {
                line: line.clone(),
                source,
            })?;
        if let Some(e) = value.get("error").and_then(|e| e.as_str()) {
            return Err(ClientError::Refused(e.to_owned()));
        }
        match output {
            Output::Json => writeln!(out, "{line}")?,
            Output::Table => {
                let flow: Flow =
                    serde_json::from_value(value).map_err(|source| ClientError::Decode {
                        line: line.clone(),
                        source,
                    })?;
                writeln!(out, "{}", table_row(&flow))?;
            }
        }
        out.flush()?;
    }
    Ok(())
}
