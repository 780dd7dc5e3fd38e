//! Embeds the BPF object built by `cargo xtask build-ebpf`, refusing to build
//! the node agent against a missing or stale object.
//!
//! The object lives at `target/ebpf/bpfel-unknown-none/release/keelson-ebpf`
//! (a fixed path under the workspace root, independent of CARGO_TARGET_DIR).
//! It is stale when any file under the BPF program crate or the shared
//! `keelson-ebpf-common` crate is newer than it.

use std::{
    fs,
    path::{Path, PathBuf},
    process::exit,
    time::SystemTime,
};

const FIX: &str = "run `cargo xtask build-ebpf` (or `cargo xtask build`) from the workspace root";

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = manifest_dir
        .parent()
        .unwrap_or(Path::new(".."))
        .to_path_buf();
    let object = root.join("target/ebpf/bpfel-unknown-none/release/keelson-ebpf");
    let sources = [
        root.join("ebpf/programs/src"),
        root.join("ebpf/programs/Cargo.toml"),
        root.join("ebpf/programs/Cargo.lock"),
        root.join("ebpf/common/src"),
        root.join("ebpf/common/Cargo.toml"),
    ];

    println!("cargo::rerun-if-changed={}", object.display());
    for source in &sources {
        println!("cargo::rerun-if-changed={}", source.display());
    }

    let built = match fs::metadata(&object).and_then(|m| m.modified()) {
        Ok(built) => built,
        Err(_) => fail(&format!(
            "the BPF object {} is missing; {FIX}",
            object.display()
        )),
    };
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for source in &sources {
        newest_file(source, &mut newest);
    }
    if let Some((changed, path)) = newest
        && changed > built
    {
        fail(&format!(
            "the BPF object {} is older than its source {}; {FIX}",
            object.display(),
            path.display()
        ));
    }
    println!("cargo::rustc-env=KEELSON_BPF_OBJECT={}", object.display());
}

/// Records in `newest` the most recently modified file at or below `path`.
fn newest_file(path: &Path, newest: &mut Option<(SystemTime, PathBuf)>) {
    let Ok(meta) = fs::metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                newest_file(&entry.path(), newest);
            }
        }
    } else if let Ok(modified) = meta.modified()
        && newest.as_ref().is_none_or(|(t, _)| modified > *t)
    {
        *newest = Some((modified, path.to_path_buf()));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    exit(1);
}
