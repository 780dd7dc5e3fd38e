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
    assert!(help.contains("Kubernetes API"), "{help}");
    for flag in [
        "--data-dir",
        "--store",
        "--etcd-endpoints",
        "--token-auth-file",
        "--service-cidr",
        "--version",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_fail_clearly() {
    let out = Command::new(BIN)
        .args([
            "--store",
            "etcd",
            "--data-dir",
            "/nonexistent-keelson-test/x",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let out = Command::new(BIN)
        .args(["--service-node-port-range", "5-1"])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid port range"));
}
