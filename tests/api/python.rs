//! The official Kubernetes Python client against keelson-server.

use std::process::Command;

use anyhow::{Result, ensure};
use keelson_e2e::server::{ServerProcess, tail};

#[test]
fn python_client_lists_creates_patches_and_watches() -> Result<()> {
    let server = ServerProcess::start()?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/api/python.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(server.kubeconfig())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success() && stdout.trim_end().ends_with("OK"),
        "python client script failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        tail(&server.log(), 30)
    );
    Ok(())
}
