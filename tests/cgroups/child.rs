//! A `keelson-cgroup-child` process (`tests/cgroup_child/main.rs`) driven
//! by a test: started, moved into a cgroup by the test, then told to go.
//! Killed and reaped on drop.

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::process::ExitStatusExt,
    process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail, ensure};

pub struct Workload {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Workload {
    /// Starts `keelson-cgroup-child ARGS` and waits for its `ready` line.
    pub fn spawn(args: &[&str]) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_keelson-cgroup-child"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .context("starting keelson-cgroup-child")?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().context("no stdout")?);
        let mut workload = Workload {
            child,
            stdin,
            stdout,
        };
        let ready = workload.line()?;
        ensure!(
            ready == format!("ready {}", workload.pid()),
            "unexpected first line {ready:?}"
        );
        Ok(workload)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets it start its work (it is in its cgroup now).
    pub fn go(&mut self) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "go")?;
        stdin.flush()?;
        Ok(())
    }

    /// Its next stdout line ("" at end of output).
    pub fn line(&mut self) -> Result<String> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        Ok(line.trim_end().to_owned())
    }

    /// Waits for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("pid {} still runs after {timeout:?}", self.pid());
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for it to die of SIGKILL.
    pub fn wait_killed(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait(timeout)?;
        ensure!(
            status.signal() == Some(libc::SIGKILL),
            "pid {} ended with {status}, not SIGKILL",
            self.pid()
        );
        Ok(())
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
