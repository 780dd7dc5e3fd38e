//! `cargo xtask bench <suite>`: builds the release binaries, then runs a
//! benchmark target with `cargo bench`. The `api` suite is
//! `control-plane/benches/api.rs`, pointed at the release `keelson-server`
//! through `KEELSON_SERVER_BIN`; it prints its figures and writes them to
//! `target/bench/api.json`. The `proxy` suite is `tests/bench/proxy.rs`
//! (root; BPF object built first); extra arguments after the suite name go
//! to it; it writes `target/bench/proxy.json`. This module only drives
//! cargo.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::ValueEnum;

use crate::{
    cmd::{cargo, step},
    setup,
};

/// The benchmark suites.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Suite {
    /// The API server under load on both stores (SQLite, etcd) and a raw
    /// etcd baseline; figures to target/bench/api.json.
    Api,
    /// New-connection rate and latency through the eBPF load balancer,
    /// kube-proxy's iptables and nftables layouts and no proxy, at 1 to
    /// 100 000 services; programming and endpoint-change times; figures to
    /// target/bench/proxy.json.
    Proxy,
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` or `<root>/target`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                crate::root().join(dir)
            }
        }
        None => crate::root().join("target"),
    }
}

pub fn run(suite: Suite, args: &[String]) -> Result<()> {
    // etcd, etcdctl, iptables and nft come from setup's package list.
    setup::run(setup::Mode::Automatic)?;
    match suite {
        Suite::Api => {
            step("bench", "keelson-control-plane (release)", || {
                cargo(&["build", "--release", "-p", "keelson-control-plane"]).run()
            })?;
            let server = target_dir().join("release/keelson-server");
            if !server.exists() {
                bail!("{} was not built", server.display());
            }
            step("bench", "api", || {
                cargo(&["bench", "-p", "keelson-control-plane", "--bench", "api"])
                    .env("KEELSON_SERVER_BIN", &server)
                    .run()
            })
        }
        Suite::Proxy => {
            // The node crate embeds the BPF object.
            crate::ebpf::build()?;
            let mut command = vec!["bench", "-p", "keelson-e2e", "--bench", "proxy", "--"];
            command.extend(args.iter().map(String::as_str));
            step("bench", "proxy", || cargo(&command).run())
        }
    }
}
