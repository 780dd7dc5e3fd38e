//! `cargo xtask build-ebpf`: builds `ebpf/programs` for `bpfel-unknown-none`
//! with Debian's rustc (`-Z build-std=core`) and bpf-linker, into
//! `target/ebpf/`, where `node/build.rs` expects it.

use std::{fs::File, io::Read, path::PathBuf, time::SystemTime};

use anyhow::{Context, Result, bail};

use crate::{
    cmd::{cargo, step},
    setup::{BPF_RUSTC, cargo_bin_dir, prepend_path},
};

/// Where the object lands, relative to the workspace root. Keep in sync
/// with `node/build.rs`.
pub const OBJECT: &str = "target/ebpf/bpfel-unknown-none/release/keelson-ebpf";
/// ELF `e_machine` of BPF objects.
const EM_BPF: u16 = 247;

pub fn build() -> Result<PathBuf> {
    step("build-ebpf", "BPF programs for bpfel-unknown-none", || {
        cargo(&[
            "build",
            "--release",
            "--locked",
            "--target",
            "bpfel-unknown-none",
            "-Z",
            "build-std=core",
            "--manifest-path",
            "ebpf/programs/Cargo.toml",
            "--target-dir",
            "target/ebpf",
        ])
        .env("RUSTC", BPF_RUSTC)
        .env("RUSTC_BOOTSTRAP", "1")
        .env("PATH", prepend_path(&cargo_bin_dir()))
        // Host settings must not leak into the BPF build.
        .env_remove("RUSTFLAGS")
        // bpf-linker emits BTF (from the debug info): the kernel needs it
        // for socket-local storage maps, and verifier messages name types.
        .env("CARGO_ENCODED_RUSTFLAGS", "-Clink-arg=--btf")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .run()?;
        let object = crate::root().join(OBJECT);
        check_bpf_elf(&object)?;
        // Cargo judged the object up to date with every source; say so in
        // its mtime, which is what node/build.rs compares.
        File::options()
            .append(true)
            .open(&object)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .with_context(|| format!("touching {}", object.display()))?;
        let size = std::fs::metadata(&object)?.len();
        println!(
            "build-ebpf: {} ({} KiB, eBPF ELF)",
            object.display(),
            size.div_ceil(1024)
        );
        Ok(object)
    })
}

/// Fails unless `path` is a little-endian ELF for the BPF machine.
fn check_bpf_elf(path: &std::path::Path) -> Result<()> {
    let mut header = [0u8; 20];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .with_context(|| format!("reading {}", path.display()))?;
    let machine = u16::from_le_bytes([header[18], header[19]]);
    if &header[..4] != b"\x7fELF" || header[5] != 1 || machine != EM_BPF {
        bail!("{} is not a little-endian eBPF ELF object", path.display());
    }
    Ok(())
}
