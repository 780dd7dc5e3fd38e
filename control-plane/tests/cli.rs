//! The `keelson-server` binary as users run it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_keelson-server");

#[test]
fn version_names_the_binary_and_crate_version() {
    let out = Command::new(BIN).arg("--version").output().expect("runs");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("keelson-server {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_the_control_plane() {
    let out = Command::new(BIN).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Kubernetes API server"), "{help}");
    assert!(help.contains("--version"), "{help}");
}
