//! `cargo xtask bench <suite>`: builds the release binaries, then runs a
//! benchmark target with `cargo bench`. The `api` suite is
//! `control-plane/benches/api.rs`, pointed at the release `keelson-server`
//! through `KEELSON_SERVER_BIN`; it prints its figures and writes them to
//! `target/bench/api.json`. This module only drives cargo.

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

pub fn run(suite: Suite) -> Result<()> {
    // etcd and etcdctl come from setup's package list.
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
    }
}
