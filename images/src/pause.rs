//! `keelson-pause`: the first process of every pod sandbox
//! (`keelson.local/pause:1`), Keelson's counterpart of Kubernetes' `pause`.
//!
//! It holds the sandbox's namespaces open and does nothing else: it sleeps
//! until SIGTERM or SIGINT (then exits 0) and, being PID 1 of the pod's
//! PID namespace when the pod shares one, reaps every zombie re-parented
//! to it. Static, no allocation after start-up, std and libc only.

use std::process::ExitCode;

/// SIGTERM/SIGINT: say so and exit. Only async-signal-safe calls.
extern "C" fn on_shutdown(signal: libc::c_int) {
    let message: &[u8] = if signal == libc::SIGTERM {
        b"keelson-pause: shutting down, got SIGTERM\n"
    } else {
        b"keelson-pause: shutting down, got SIGINT\n"
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the buffer is
    // a static byte string.
    unsafe {
        libc::write(libc::STDERR_FILENO, message.as_ptr().cast(), message.len());
        libc::_exit(0);
    }
}

/// SIGCHLD: reap every child that has exited, without blocking.
extern "C" fn on_child(_signal: libc::c_int) {
    loop {
        // SAFETY: waitpid(2) is async-signal-safe; a null status pointer is
        // allowed.
        let pid = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

fn install(signal: libc::c_int, handler: extern "C" fn(libc::c_int), flags: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
    // the handler is an `extern "C"` fn that lives for the whole program.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = handler as *const () as usize;
        action.sa_flags = flags;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut()) == 0
    }
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("-v") {
        println!("keelson-pause {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        eprintln!("keelson-pause: warning: not PID 1, zombies of others are not mine to reap");
    }
    let installed = install(libc::SIGINT, on_shutdown, 0)
        && install(libc::SIGTERM, on_shutdown, 0)
        && install(
            libc::SIGCHLD,
            on_child,
            libc::SA_NOCLDSTOP | libc::SA_RESTART,
        );
    if !installed {
        eprintln!(
            "keelson-pause: sigaction: {}",
            std::io::Error::last_os_error()
        );
        return ExitCode::FAILURE;
    }
    loop {
        // SAFETY: pause(2) only sleeps until a signal arrives.
        unsafe { libc::pause() };
    }
}
