//! The `keelson-node` binary as users run it.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_keelson-node");

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("keelson-node runs")
}

#[test]
fn version_names_the_binary_and_crate_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("keelson-node {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_lists_only_working_subcommands() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("ifstats"), "{help}");
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .and_then(|s| s.split("Options:").next())
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(
        commands,
        [
            "ifstats", "proxy", "lb", "flows", "images", "kubelet", "help"
        ],
        "{help}"
    );
}

#[test]
fn flows_without_an_agent_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("keelson-flows-cli-{}", std::process::id()));
    let socket = dir.join("none.sock");
    let out = run(&["flows", "--socket", socket.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is `keelson-node proxy` running?"),
        "{stderr}"
    );
    let out = run(&["flows", "--verdict", "maybe"]);
    assert!(!out.status.success());
}

#[test]
fn images_import_without_containerd_or_archive_fails_clearly() {
    let dir = std::env::temp_dir().join(format!("keelson-images-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Not an archive: refused before any containerd is needed.
    let junk = dir.join("junk.tar");
    std::fs::write(&junk, b"not a tar").unwrap();
    let endpoint = format!("unix://{}", dir.join("none.sock").display());
    let out = run(&[
        "images",
        "import",
        "--container-runtime-endpoint",
        &endpoint,
        junk.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("importing"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // No runtime listening: `images list` says where it looked.
    let out = run(&["images", "list", "--container-runtime-endpoint", &endpoint]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("connecting to the container runtime"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ifstats_on_a_missing_interface_fails_clearly() {
    // Runs in a fresh network namespace so the host is never touched.
    let out = Command::new("unshare")
        .args(["--net", BIN, "ifstats", "--count", "1", "nosuchif0"])
        .output()
        .expect("unshare runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("attaching ifstats to nosuchif0"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn ifstats_counts_loopback_traffic_in_a_private_netns() {
    // A throwaway network namespace (gone when its processes exit): bring lo
    // up, run ifstats on it, and send datagrams to 127.0.0.1 until it ends.
    let script = r#"
        ip link set lo up
        "$BIN" ifstats --interval 400ms --count 3 lo &
        pid=$!
        while kill -0 "$pid" 2>/dev/null; do
            echo keelson > /dev/udp/127.0.0.1/9 2>/dev/null
            sleep 0.02
        done
        wait "$pid"
    "#;
    let out = Command::new("unshare")
        .args(["--net", "bash", "-c", script])
        .env("BIN", BIN)
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let last_lo = stdout
        .lines()
        .rfind(|l| l.starts_with("lo "))
        .unwrap_or_else(|| panic!("no report for lo:\n{stdout}\n{stderr}"));
    let packets: u64 = last_lo
        .split_whitespace()
        .nth(2)
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unparsable report line {last_lo:?}"));
    assert!(
        packets >= 10,
        "only {packets} packets counted on lo:\n{stdout}"
    );
}

#[test]
fn kubelet_refuses_bad_flags_before_reading_anything() {
    for (args, expected) in [
        (
            ["--pod-cidr", "10.244.1.5/24"],
            "has host bits set (did you mean 10.244.1.0/24?)",
        ),
        (
            ["--node-labels", "node-role.kubernetes.io/master="],
            "unknown 'kubernetes.io' or 'k8s.io' labels",
        ),
        (["--max-pods", "0"], "invalid value '0' for '--max-pods"),
    ] {
        let mut full = vec!["kubelet", "--kubeconfig", "/nonexistent/kubeconfig"];
        full.extend(args);
        let out = run(&full);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(!stderr.contains("nonexistent"), "{args:?}: {stderr}");
    }
}

#[test]
fn kubelet_with_a_missing_kubeconfig_fails_clearly_and_creates_nothing() {
    let dir = std::env::temp_dir().join(format!("keelson-kubelet-cli-{}", std::process::id()));
    let root = dir.join("root");
    let out = run(&[
        "kubelet",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
        "--node-name",
        "n1",
        "--root-dir",
        root.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("reading the kubeconfig /nonexistent/kubeconfig"),
        "{stderr}"
    );
    assert!(
        !root.exists(),
        "the root dir was created before the failure"
    );
}
