//! `cargo xtask images`: Keelson's local images as OCI archives in
//! `target/images/`, through `keelson_runtime::images` (the same code the
//! tests use): the static `keelson-pause` and `keelson-echo` built with
//! `+crt-static` into `target/images-build/`, Debian's static busybox.

use std::path::PathBuf;

use anyhow::Result;
use keelson_runtime::{images, oci::WrittenImage};

use crate::cmd::step;

pub fn run() -> Result<Vec<WrittenImage>> {
    let root = crate::root();
    let programs = step(
        "images",
        "static programs (keelson-pause, keelson-echo; +crt-static)",
        || Ok(images::build_programs(&root)?),
    )?;
    let out: PathBuf = root.join(images::OUT_DIR);
    let written = step("images", "OCI archives", || {
        Ok(images::write_all(
            &programs,
            std::path::Path::new(images::BUSYBOX),
            &out,
        )?)
    })?;
    for image in &written {
        println!(
            "images: {} → {} ({} KiB, manifest {}, id {})",
            image.name,
            image.path.display(),
            image.size.div_ceil(1024),
            image.manifest_digest,
            image.config_digest
        );
    }
    Ok(written)
}
