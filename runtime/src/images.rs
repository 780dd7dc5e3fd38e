//! Keelson's local images, built from this workspace and Debian's
//! packages (no registry is reachable, and no docker is needed):
//!
//! - [`PAUSE_IMAGE`] `keelson.local/pause:1`: `/pause`, the static
//!   `keelson-pause` (every pod sandbox runs it);
//! - [`BUSYBOX_IMAGE`] `keelson.local/busybox:1`: Debian's static
//!   `/bin/busybox` and a symlink for each of its applets (`sh`, `wget`,
//!   `nslookup`, …) where busybox installs it;
//! - [`ECHO_IMAGE`] `keelson.local/echo:1`: `/echo`, the static
//!   `keelson-echo` HTTP server on :8080 answering with its host name.
//!
//! The two programs are the `keelson-images` crate's binaries, built by
//! [`build_programs`] with `-C target-feature=+crt-static` on the gnu
//! target (no musl target can be installed here) into their own target
//! directory, and checked to have no ELF interpreter.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use thiserror::Error;

use crate::oci::{self, ContainerConfig, ImageSpec, Layer, OciError, WrittenImage};

pub const PAUSE_IMAGE: &str = "keelson.local/pause:1";
pub const BUSYBOX_IMAGE: &str = "keelson.local/busybox:1";
pub const ECHO_IMAGE: &str = "keelson.local/echo:1";

/// Debian's `busybox-static`.
pub const BUSYBOX: &str = "/bin/busybox";
/// The port `keelson-echo` listens on unless `PORT` says otherwise.
pub const ECHO_PORT: u16 = 8080;

/// Where [`build_programs`] builds, relative to the workspace root.
pub const BUILD_DIR: &str = "target/images-build";
/// Where `cargo xtask images` writes the archives, relative to the
/// workspace root.
pub const OUT_DIR: &str = "target/images";

const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Error)]
pub enum ImagesError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("building the static image programs failed ({status}):\n{stderr}")]
    Build {
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("{path} is not a static ELF executable ({why})")]
    NotStatic { path: PathBuf, why: String },
    #[error(transparent)]
    Oci(#[from] OciError),
}

type Result<T, E = ImagesError> = std::result::Result<T, E>;

/// The static programs that go into the images.
#[derive(Debug, Clone)]
pub struct Programs {
    pub pause: PathBuf,
    pub echo: PathBuf,
}

/// This host's gnu target triple (`x86_64-unknown-linux-gnu`).
pub fn host_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Builds `keelson-pause` and `keelson-echo` statically in release into
/// `<workspace>/target/images-build`, with the cargo that runs us (`$CARGO`,
/// else `cargo`), and checks both are static.
pub fn build_programs(workspace: &Path) -> Result<Programs> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = host_target();
    let target_dir = workspace.join(BUILD_DIR);
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "keelson-images",
            "--bins",
        ])
        .arg("--target")
        .arg(&target)
        .arg("--target-dir")
        .arg(&target_dir)
        // With --target, these flags reach only the target's crates, never
        // build scripts or proc macros.
        .env(
            "CARGO_ENCODED_RUSTFLAGS",
            "-Ctarget-feature=+crt-static\x1f-Cstrip=symbols",
        )
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    // A cargo started from a build script, test or `cargo run` must not
    // inherit the variables describing that package.
    for (key, _) in std::env::vars_os() {
        let Some(name) = key.to_str() else { continue };
        if name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_BIN_EXE_")
            || matches!(
                name,
                "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
            )
        {
            command.env_remove(&key);
        }
    }
    let output = command.output().map_err(|source| ImagesError::Io {
        context: "starting cargo".to_owned(),
        source,
    })?;
    if !output.status.success() {
        return Err(ImagesError::Build {
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        });
    }
    let bin = target_dir.join(&target).join("release");
    let programs = Programs {
        pause: bin.join("keelson-pause"),
        echo: bin.join("keelson-echo"),
    };
    check_static(&programs.pause)?;
    check_static(&programs.echo)?;
    Ok(programs)
}

/// Fails unless `path` is an ELF64 executable without a `PT_INTERP`
/// program header (a dynamic one would fail in an image without libc with
/// a baffling "no such file or directory").
pub fn check_static(path: &Path) -> Result<()> {
    let bad = |why: &str| ImagesError::NotStatic {
        path: path.to_path_buf(),
        why: why.to_owned(),
    };
    let elf = std::fs::read(path).map_err(|source| ImagesError::Io {
        context: format!("reading {}", path.display()),
        source,
    })?;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return Err(bad("not a little-endian ELF64 file"));
    }
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return Err(bad("truncated ELF header"));
    };
    const PT_INTERP: u32 = 3;
    for i in 0..usize::from(phnum) {
        let at = usize::try_from(phoff).unwrap_or(usize::MAX) + i * usize::from(phentsize);
        let Some(kind) = elf
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
        else {
            return Err(bad("truncated program headers"));
        };
        if kind == PT_INTERP {
            return Err(bad("it has an ELF interpreter: dynamically linked"));
        }
    }
    Ok(())
}

/// A layer with the directories every container expects to mount over.
fn base_layer() -> Layer {
    let mut layer = Layer::new();
    for dir in ["dev", "proc", "sys", "etc", "run", "var"] {
        layer.dir(dir, 0o755);
    }
    layer.dir("tmp", 0o1777);
    layer.dir("root", 0o700);
    layer
}

/// `keelson.local/pause:1`.
pub fn pause_image(programs: &Programs) -> Result<ImageSpec> {
    let mut layer = base_layer();
    layer.copy("pause", &programs.pause, 0o755)?;
    Ok(ImageSpec {
        name: PAUSE_IMAGE.to_owned(),
        layers: vec![layer],
        config: ContainerConfig {
            entrypoint: Some(vec!["/pause".to_owned()]),
            env: Some(vec![PATH_ENV.to_owned()]),
            working_dir: Some("/".to_owned()),
            ..Default::default()
        },
        history: vec!["keelson-pause (static) as /pause".to_owned()],
    })
}

/// `keelson.local/echo:1`.
pub fn echo_image(programs: &Programs) -> Result<ImageSpec> {
    let mut layer = base_layer();
    layer.copy("echo", &programs.echo, 0o755)?;
    let mut ports = std::collections::BTreeMap::new();
    ports.insert(format!("{ECHO_PORT}/tcp"), serde_json::json!({}));
    Ok(ImageSpec {
        name: ECHO_IMAGE.to_owned(),
        layers: vec![layer],
        config: ContainerConfig {
            entrypoint: Some(vec!["/echo".to_owned()]),
            env: Some(vec![PATH_ENV.to_owned()]),
            working_dir: Some("/".to_owned()),
            exposed_ports: Some(ports),
            ..Default::default()
        },
        history: vec!["keelson-echo (static) as /echo".to_owned()],
    })
}

/// `keelson.local/busybox:1` from the static busybox at `busybox`: the
/// binary as `/bin/busybox` and one symlink per applet it lists, plus
/// `/etc/passwd` and `/etc/group` with root, so `id` and `whoami` work.
pub fn busybox_image(busybox: &Path) -> Result<ImageSpec> {
    check_static(busybox)?;
    let output = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|source| ImagesError::Io {
            context: format!("running {} --list-full", busybox.display()),
            source,
        })?;
    let listed = String::from_utf8_lossy(&output.stdout);
    let applets: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains(".."))
        .collect();
    if !output.status.success() || !applets.contains(&"bin/sh") {
        return Err(ImagesError::Io {
            context: format!("{} --list-full", busybox.display()),
            source: std::io::Error::other("it lists no bin/sh applet"),
        });
    }
    let mut layer = base_layer();
    layer.copy("bin/busybox", busybox, 0o755)?;
    for applet in &applets {
        if *applet == "bin/busybox" {
            continue;
        }
        layer.symlink(applet, "/bin/busybox");
    }
    layer.file(
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            .to_vec(),
        0o644,
    );
    layer.file(
        "etc/group",
        b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
        0o644,
    );
    Ok(ImageSpec {
        name: BUSYBOX_IMAGE.to_owned(),
        layers: vec![layer],
        config: ContainerConfig {
            cmd: Some(vec!["sh".to_owned()]),
            env: Some(vec![PATH_ENV.to_owned()]),
            working_dir: Some("/".to_owned()),
            ..Default::default()
        },
        history: vec![format!(
            "Debian's static busybox and {} applet symlinks",
            applets.len()
        )],
    })
}

/// Builds the programs, then writes the three archives into `out_dir`
/// as `pause.tar`, `busybox.tar` and `echo.tar`.
pub fn build_all(workspace: &Path, out_dir: &Path) -> Result<Vec<WrittenImage>> {
    let programs = build_programs(workspace)?;
    write_all(&programs, Path::new(BUSYBOX), out_dir)
}

/// Writes the three archives from already built programs.
pub fn write_all(programs: &Programs, busybox: &Path, out_dir: &Path) -> Result<Vec<WrittenImage>> {
    std::fs::create_dir_all(out_dir).map_err(|source| ImagesError::Io {
        context: format!("creating {}", out_dir.display()),
        source,
    })?;
    let specs = [
        ("pause.tar", pause_image(programs)?),
        ("busybox.tar", busybox_image(busybox)?),
        ("echo.tar", echo_image(programs)?),
    ];
    specs
        .iter()
        .map(|(file, spec)| Ok(oci::write_archive(spec, &out_dir.join(file))?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_is_refused() {
        // The test binary itself links libc dynamically.
        let me = std::env::current_exe().unwrap();
        let err = check_static(&me).unwrap_err();
        assert!(err.to_string().contains("dynamically linked"), "{err}");
    }

    #[test]
    fn the_busybox_image_links_every_applet() {
        if !Path::new(BUSYBOX).exists() {
            eprintln!("skipped: {BUSYBOX} is missing (cargo xtask setup installs busybox-static)");
            return;
        }
        let spec = busybox_image(Path::new(BUSYBOX)).unwrap();
        let tar = spec.layers[0].tar().unwrap();
        let mut links = std::collections::HashMap::new();
        for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let entry = entry.unwrap();
            if let Some(target) = entry.link_name().unwrap() {
                links.insert(
                    entry.path().unwrap().to_string_lossy().into_owned(),
                    target.to_string_lossy().into_owned(),
                );
            }
        }
        for applet in ["bin/sh", "usr/bin/wget", "usr/bin/nslookup", "bin/ls"] {
            assert_eq!(
                links.get(applet).map(String::as_str),
                Some("/bin/busybox"),
                "{applet}"
            );
        }
    }
}
