//! File-system operations shared by the v1 and v2 managers: interface-file
//! reads and writes with the path in every error, `cgroup.procs` over a
//! subtree, killing a subtree's processes, and removing a subtree bottom-up.
//! Nothing here decides values or layout.

use std::{
    collections::BTreeSet,
    io,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};

use super::{CgroupError, POD_PREFIX, validate_uid};

/// Poll interval while waiting for processes to die or rmdir to succeed.
const POLL: Duration = Duration::from_millis(10);

pub(crate) fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> CgroupError {
    let path = path.to_path_buf();
    move |source| CgroupError::Io { path, op, source }
}

/// Reads an interface file.
pub(crate) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(io_error(path, "reading"))
}

/// Reads an interface file holding one unsigned number.
pub(crate) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read(path)?;
    text.trim().parse().map_err(|_| CgroupError::Parse {
        path: path.to_path_buf(),
        content: text,
    })
}

/// Writes an interface file (one `write(2)`, as the kernel wants).
pub(crate) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    tracing::trace!(path = %path.display(), value, "cgroup write");
    std::fs::write(path, value).map_err(io_error(path, "writing"))
}

/// Makes one cgroup directory; `Ok(true)` if it was new.
pub(crate) fn mkdir(path: &Path) -> Result<bool, CgroupError> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io_error(path, "creating")(e)),
    }
}

/// The pids in one cgroup's `cgroup.procs` (none if it does not exist).
pub(crate) fn procs(dir: &Path) -> Result<Vec<u32>, CgroupError> {
    let path = dir.join("cgroup.procs");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_error(&path, "reading")(e)),
    }
}

/// `dir` and every cgroup below it, children before parents (the order
/// rmdir needs); empty if `dir` does not exist.
pub(crate) fn subtree(dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_error(dir, "listing")(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_error(dir, "listing"))?;
        if entry
            .file_type()
            .map_err(io_error(dir, "listing"))?
            .is_dir()
        {
            out.extend(subtree(&entry.path())?);
        }
    }
    out.push(dir.to_path_buf());
    Ok(out)
}

/// The distinct pids in the subtrees of `dirs`, sorted.
pub(crate) fn subtree_procs(dirs: &[PathBuf]) -> Result<Vec<u32>, CgroupError> {
    let mut pids = BTreeSet::new();
    for dir in dirs {
        for cgroup in subtree(dir)? {
            pids.extend(procs(&cgroup)?);
        }
    }
    Ok(pids.into_iter().collect())
}

/// SIGKILLs everything in the subtrees of `dirs`, again and again (a
/// process may fork meanwhile), until they are empty or `timeout` passes.
/// Never signals pid 0/1 or this process.
pub(crate) fn kill_until_empty(
    uid: &str,
    dirs: &[PathBuf],
    timeout: Duration,
) -> Result<(), CgroupError> {
    let deadline = Instant::now() + timeout;
    let me = std::process::id();
    loop {
        let pids = subtree_procs(dirs)?;
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CgroupError::ProcessesRemain {
                uid: uid.to_owned(),
                pids,
            });
        }
        for pid in pids {
            if pid <= 1 || pid == me {
                continue;
            }
            let Ok(raw) = i32::try_from(pid) else {
                continue;
            };
            // ESRCH: it is already gone.
            let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
        }
        thread::sleep(POLL);
    }
}

/// Removes `dir` and the cgroups below it, bottom-up. rmdir of a cgroup
/// whose last process just exited can fail with EBUSY for a moment:
/// retried until `timeout`.
pub(crate) fn remove_subtree(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + timeout;
    for cgroup in subtree(dir)? {
        loop {
            match std::fs::remove_dir(&cgroup) {
                Ok(()) => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                    thread::sleep(POLL);
                }
                Err(e) => return Err(io_error(&cgroup, "removing")(e)),
            }
        }
    }
    Ok(())
}

/// The uids of the `pod<uid>` directories in `dir` (none if it does not
/// exist); other names are not pods.
pub(crate) fn pod_uids(dir: &Path) -> Result<Vec<String>, CgroupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, "listing")(e)),
    };
    let mut uids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_error(dir, "listing"))?;
        if !entry
            .file_type()
            .map_err(io_error(dir, "listing"))?
            .is_dir()
        {
            continue;
        }
        let name = entry.file_name();
        let Some(uid) = name.to_str().and_then(|n| n.strip_prefix(POD_PREFIX)) else {
            continue;
        };
        if validate_uid(uid).is_ok() {
            uids.push(uid.to_owned());
        }
    }
    Ok(uids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subtree_is_children_first_and_pods_are_listed() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("burstable");
        for d in ["podA/c1", "podA/c2", "podB", "not-a-pod", "pod"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::write(base.join("podFile"), "").unwrap();
        let tree = subtree(&base.join("podA")).unwrap();
        assert_eq!(tree.len(), 3);
        assert_eq!(tree.last().unwrap(), &base.join("podA"));
        let mut uids = pod_uids(&base).unwrap();
        uids.sort();
        assert_eq!(uids, ["A", "B"]);
        assert!(pod_uids(&tmp.path().join("missing")).unwrap().is_empty());
        assert!(subtree(&tmp.path().join("missing")).unwrap().is_empty());
        remove_subtree(&base.join("podA"), Duration::from_secs(1)).unwrap();
        assert!(!base.join("podA").exists());
    }

    #[test]
    fn procs_of_a_missing_cgroup_are_none() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(procs(tmp.path()).unwrap().is_empty());
        std::fs::write(tmp.path().join("cgroup.procs"), "12\n34\n").unwrap();
        assert_eq!(procs(tmp.path()).unwrap(), [12, 34]);
        assert_eq!(
            subtree_procs(&[tmp.path().to_path_buf()]).unwrap(),
            [12, 34]
        );
    }
}
