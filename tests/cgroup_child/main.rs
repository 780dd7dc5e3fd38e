//! `keelson-cgroup-child`: the workload of the cgroup tests, run as its own
//! process so the test can move it into a pod cgroup before it does
//! anything (see `tests/cgroups/child.rs`).
//!
//! It prints `ready PID`, then (except for `sleep`) waits for a line on
//! stdin — the test sends it once the process is in place — and then:
//!
//! - `alloc MIB` — allocates MIB MiB and writes to every page (so the
//!   memory is really charged), prints `allocated MIB`, and exits 0;
//! - `spin` — burns CPU in a loop until killed;
//! - `sleep` — sleeps until killed (no stdin line needed).

use std::{
    io::{self, BufRead, Write},
    process::ExitCode,
    thread,
    time::Duration,
};

/// Bytes per page written to (the smallest page size Linux uses).
const PAGE: usize = 4096;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdout = io::stdout();
    let say = |out: &mut io::Stdout, line: &str| {
        // A closed pipe just means the test stopped listening.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    };
    say(&mut stdout, &format!("ready {}", std::process::id()));
    let wait_for_go = || {
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line).is_ok()
    };
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["alloc", mib] => {
            let Ok(mib) = mib.parse::<usize>() else {
                eprintln!("alloc: bad size {mib:?}");
                return ExitCode::from(2);
            };
            if !wait_for_go() {
                return ExitCode::from(2);
            }
            let len = mib << 20;
            let mut memory: Vec<u8> = Vec::with_capacity(len);
            let base = memory.as_mut_ptr();
            for offset in (0..len).step_by(PAGE) {
                // SAFETY: offset < len = the capacity just reserved; a
                // volatile write so the page is really touched.
                unsafe { base.add(offset).write_volatile(1) };
            }
            // The Vec's length stays 0 (one byte per page was written
            // through the pointer); keep the memory alive until the report.
            std::hint::black_box(&memory);
            say(&mut stdout, &format!("allocated {mib}"));
            drop(memory);
            ExitCode::SUCCESS
        }
        ["spin"] => {
            if !wait_for_go() {
                return ExitCode::from(2);
            }
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        ["sleep"] => loop {
            thread::sleep(Duration::from_secs(3600));
        },
        _ => {
            eprintln!("usage: keelson-cgroup-child alloc MIB | spin | sleep");
            ExitCode::from(2)
        }
    }
}
