//! `cargo xtask test`: everything CI checks, in order — set-up, the BPF
//! build, rustfmt, clippy with warnings denied, then the whole test suite
//! (unit tests and the root/BPF integration tests), ending with a summary.

use std::{
    io::{BufRead, BufReader},
    process::Stdio,
    time::Instant,
};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::{
    cmd::{cargo, step},
    ebpf, setup,
};

#[derive(Args)]
pub struct TestArgs {
    /// Run only tests whose name contains this string.
    filter: Option<String>,
    /// Skip rustfmt and clippy.
    #[arg(long)]
    no_lint: bool,
}

/// Totals over every `test result:` line of a cargo test run.
#[derive(Default, Debug, PartialEq, Eq)]
struct Summary {
    suites: u32,
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Summary {
    fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            return;
        };
        self.suites += 1;
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<u64>() else {
                continue;
            };
            match what {
                "passed" => self.passed += count,
                "failed" => self.failed += count,
                "ignored" => self.ignored += count,
                _ => {}
            }
        }
    }
}

pub fn run(args: TestArgs) -> Result<()> {
    let started = Instant::now();
    setup::run(setup::Mode::Automatic)?;
    ebpf::build()?;
    if !args.no_lint {
        step("test", "rustfmt --check", || {
            cargo(&["fmt", "--all", "--check"]).run()?;
            cargo(&[
                "fmt",
                "--check",
                "--manifest-path",
                "ebpf/programs/Cargo.toml",
            ])
            .run()
        })?;
        step("test", "clippy -D warnings", || {
            cargo(&[
                "clippy",
                "--locked",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])
            .run()
        })?;
    }
    let summary = step("test", "test suite (unit + integration)", || {
        let mut argv = vec!["test", "--locked", "--workspace", "--no-fail-fast"];
        if let Some(filter) = &args.filter {
            argv.extend(["--", filter.as_str()]);
        }
        run_tests(&argv)
    });
    let took = started.elapsed().as_secs_f64();
    match summary {
        Ok(s) => {
            println!(
                "test: summary: {} passed, {} failed, {} ignored in {} suites; all checks passed in {took:.0}s",
                s.passed, s.failed, s.ignored, s.suites
            );
            Ok(())
        }
        Err(e) => {
            println!("test: summary: FAILED after {took:.0}s");
            Err(e)
        }
    }
}

/// Runs `cargo <argv>`, echoing its output and totalling its results.
fn run_tests(argv: &[&str]) -> Result<Summary> {
    let (mut command, display) = cargo(argv).into_inner();
    let mut child = command
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{display}`"))?;
    let mut summary = Summary::default();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            summary.add_line(&line);
        }
    }
    let status = child.wait()?;
    if !status.success() || summary.failed > 0 {
        bail!(
            "{} passed, {} failed, {} ignored ({display}: {status})",
            summary.passed,
            summary.failed,
            summary.ignored
        );
    }
    if summary.suites == 0 {
        bail!("no test results found in the output of `{display}`");
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::Summary;

    #[test]
    fn summary_totals_result_lines() {
        let mut s = Summary::default();
        s.add_line("test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.26s");
        s.add_line("running 3 tests");
        s.add_line("test result: FAILED. 1 passed; 2 failed; 0 ignored; 0 measured; 5 filtered out; finished in 1.00s");
        assert_eq!(
            s,
            Summary {
                suites: 2,
                passed: 4,
                failed: 2,
                ignored: 1
            }
        );
    }
}
