//! Running child processes with one announced line per step.

use std::{
    ffi::OsStr,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context, Result, bail};

/// Runs `f` as a named step: prints `<task>: <what> ...` and then how it
/// ended, with its duration.
pub fn step<T>(task: &str, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    println!("{task}: {what} ...");
    let started = Instant::now();
    let result = f();
    let took = started.elapsed().as_secs_f64();
    match &result {
        Ok(_) => println!("{task}: {what}: ok ({took:.1}s)"),
        Err(e) => println!("{task}: {what}: FAILED ({took:.1}s): {e:#}"),
    }
    result
}

/// A command to run, with helpers that turn failure into errors.
pub struct Cmd {
    inner: Command,
    display: String,
}

impl Cmd {
    pub fn new(program: impl AsRef<OsStr>) -> Self {
        let program = program.as_ref();
        Self {
            display: program.to_string_lossy().into_owned(),
            inner: Command::new(program),
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for arg in args {
            let arg = arg.as_ref();
            self.display.push(' ');
            self.display.push_str(&arg.to_string_lossy());
            self.inner.arg(arg);
        }
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.inner.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.inner.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<std::path::Path>) -> Self {
        self.inner.current_dir(dir);
        self
    }

    /// Runs with inherited stdio; fails unless it exits 0.
    pub fn run(mut self) -> Result<()> {
        let status = self
            .inner
            .status()
            .with_context(|| format!("cannot start `{}`", self.display))?;
        if !status.success() {
            bail!("`{}` failed ({status})", self.display);
        }
        Ok(())
    }

    /// Runs quietly; returns stdout, or fails with stderr.
    pub fn output(mut self) -> Result<String> {
        let output = self
            .inner
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("cannot start `{}`", self.display))?;
        if !output.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.display,
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The underlying command, for callers that stream its output.
    pub fn into_inner(self) -> (Command, String) {
        (self.inner, self.display)
    }
}

/// `cargo <args>` with the cargo that runs xtask, in the workspace root,
/// without the variables `cargo run` set for xtask itself: ring's build
/// script tracks `CARGO_MANIFEST_DIR`, so passing xtask's on would make
/// every task rebuild ring, rustls and everything above them.
pub fn cargo(args: &[&str]) -> Cmd {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Cmd::new(cargo).args(args).current_dir(crate::root());
    for (key, _) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd = cmd.env_remove(&key);
        }
    }
    cmd
}
