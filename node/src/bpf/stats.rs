//! Run-time statistics of loaded BPF programs: how often the kernel ran a
//! program and for how long (`bpf_prog_info.run_cnt` / `run_time_ns`),
//! counted while BPF statistics are enabled — system-wide by the
//! `kernel.bpf_stats_enabled` sysctl, or for as long as a holder of
//! [`enable`]'s descriptor keeps it open (`BPF_ENABLE_STATS`).
//!
//! aya 0.14's `ProgramInfo` does not expose these two fields, so they are
//! read here with `BPF_OBJ_GET_INFO_BY_FD` into aya's own binding of the
//! kernel structure.

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
    time::Duration,
};

use aya_obj::generated::{bpf_cmd, bpf_prog_info};

/// What the kernel counted for one program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Times the program ran.
    pub runs: u64,
    /// Time spent in it, in total.
    pub run_time: Duration,
}

impl RunStats {
    /// The mean time of one run (zero before the first).
    pub fn per_run(&self) -> Duration {
        if self.runs == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos((self.run_time.as_nanos() / u128::from(self.runs)) as u64)
    }

    /// What was counted since `earlier`.
    pub fn since(&self, earlier: &RunStats) -> RunStats {
        RunStats {
            runs: self.runs.saturating_sub(earlier.runs),
            run_time: self.run_time.saturating_sub(earlier.run_time),
        }
    }
}

/// Turns run-time statistics on for as long as the returned descriptor is
/// open (they cost two clock reads per run, so they are off by default).
pub fn enable() -> io::Result<OwnedFd> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map_err(|e| io::Error::other(format!("BPF_ENABLE_STATS: {e}")))
}

/// The statistics of the program behind `fd`.
pub fn run_stats(fd: BorrowedFd<'_>) -> io::Result<RunStats> {
    // SAFETY: bpf_prog_info is plain old data; all-zero is a valid value.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    /// `union bpf_attr`'s `info` member.
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = InfoAttr {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: size_of::<bpf_prog_info>() as u32,
        info: std::ptr::from_mut(&mut info) as u64,
    };
    // SAFETY: `attr` names a live, correctly sized buffer the kernel fills
    // (it writes at most `info_len` bytes); both outlive the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as libc::c_int,
            std::ptr::from_mut(&mut attr),
            size_of::<InfoAttr>() as u32,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(RunStats {
        runs: info.run_cnt,
        run_time: Duration::from_nanos(info.run_time_ns),
    })
}
