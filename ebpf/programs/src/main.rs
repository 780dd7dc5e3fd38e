//! Keelson's BPF programs, built for `bpfel-unknown-none` into one object
//! that the node agent embeds (`cargo xtask build-ebpf`).
//!
//! One program family per file, as in Cilium's `bpf/lib`: each module owns
//! its maps and programs; the map key/value layouts live in
//! `keelson-ebpf-common` so user space reads exactly what the kernel writes.
//! Programs stay small: policy lives in user space and reaches the kernel as
//! map entries.
#![no_std]
#![no_main]

mod ifstats;
mod nodeport;
mod sock_lb;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // BPF programs cannot unwind; the verifier rejects any path reaching here.
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
