//! Crash test of the SQLite store: a write storm in a child process (this
//! test binary re-executed to run [`crash_child_write_storm`]) prints each
//! key as soon as `create` acknowledges it; the parent SIGKILLs the child
//! mid-storm, several times, restarting it on the same file, then reopens
//! the file and checks that no acknowledged write was lost and that
//! revisions never went backwards across restarts.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use keelson_control_plane::storage::Store;
use keelson_control_plane::storage::sqlite::SqliteStore;

/// Set (to the store file) only in the child process.
const CHILD_DB: &str = "KEELSON_CRASH_CHILD_DB";
/// The child's round number, which goes into its keys.
const CHILD_ROUND: &str = "KEELSON_CRASH_CHILD_ROUND";
/// Concurrent creators in the child.
const WRITERS: usize = 16;
/// A child that is never killed stops after this long.
const CHILD_LIMIT: Duration = Duration::from_secs(60);
/// How long the parent waits for the next acknowledgement.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// One acknowledged write, as the child reported it.
#[derive(Debug)]
struct Ack {
    round: usize,
    key: String,
    revision: i64,
}

fn value_of(key: &str) -> Vec<u8> {
    format!("value of {key}").into_bytes()
}

/// The child: creates keys as fast as 16 writers can and reports each one
/// once acknowledged. Does nothing unless started by the parent.
#[test]
#[ignore = "child process of sqlite_acknowledged_writes_survive_sigkill"]
fn crash_child_write_storm() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    let round: usize = std::env::var(CHILD_ROUND)
        .expect("round")
        .parse()
        .expect("round number");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Arc::new(SqliteStore::open(Path::new(&path)).expect("open"));
        let deadline = tokio::time::Instant::now() + CHILD_LIMIT;
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let store = Arc::clone(&store);
            writers.push(tokio::spawn(async move {
                let mut n = 0u64;
                while tokio::time::Instant::now() < deadline {
                    let key = format!("/crash/r{round}/w{writer:02}/{n:08}");
                    let kv = store.create(&key, value_of(&key)).await.expect("create");
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {round} {key} {}", kv.mod_revision).expect("stdout");
                    out.flush().expect("flush");
                    n += 1;
                }
            }));
        }
        for writer in writers {
            writer.await.expect("writer");
        }
    });
}

/// Kills and reaps the child when dropped (also when the parent panics).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one child on `path`, SIGKILLs it after `kill_after` acks, and
/// returns every ack it printed (including those printed just before the
/// kill landed).
fn storm(path: &Path, round: usize, kill_after: usize) -> Vec<Ack> {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = ChildGuard(
        Command::new(exe)
            .args([
                "crash::crash_child_write_storm",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, path)
            .env(CHILD_ROUND, round.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the child"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");
    // Read on a thread so the parent can time out instead of hanging.
    let (lines, received) = mpsc::channel::<Vec<u8>>();
    let reader = std::thread::spawn(move || {
        let mut stdout = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match stdout.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if lines.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut acks = Vec::new();
    let mut killed = false;
    loop {
        let line = match received.recv_timeout(ACK_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("round {round}: no output from the child for {ACK_TIMEOUT:?}")
            }
        };
        // Only whole lines are acknowledgements.
        if line.last() != Some(&b'\n') {
            continue;
        }
        let line = String::from_utf8_lossy(&line);
        // libtest may have printed `test <name> ... ` without a newline
        // just before the first ack.
        let Some(at) = line.find("ACK ") else {
            continue;
        };
        let mut fields = line[at..].split_whitespace().skip(1);
        let ack = match (fields.next(), fields.next(), fields.next()) {
            (Some(r), Some(key), Some(revision)) => Ack {
                round: r.parse().expect("round"),
                key: key.to_owned(),
                revision: revision.parse().expect("revision"),
            },
            _ => panic!("malformed ack {line:?}"),
        };
        acks.push(ack);
        if !killed && acks.len() >= kill_after {
            child.0.kill().expect("SIGKILL the child");
            killed = true;
        }
    }
    reader.join().expect("reader thread");
    let status = child.0.wait().expect("reap the child");
    assert!(
        killed,
        "round {round}: the child ended before {kill_after} acks"
    );
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "round {round}: the child died of SIGKILL, mid-storm ({status})"
        );
    }
    acks
}

#[test]
fn sqlite_acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path: PathBuf = dir.path().join("state.db");
    let mut all: Vec<Ack> = Vec::new();
    for (round, kill_after) in [300, 450, 350, 500].into_iter().enumerate() {
        let acks = storm(&path, round, kill_after);
        assert!(acks.len() >= kill_after);
        let before = all.iter().map(|a| a.revision).max().unwrap_or(0);
        let lowest = acks.iter().map(|a| a.revision).min().expect("acks");
        assert!(
            lowest > before,
            "round {round}: revision {lowest} reused after a crash (had {before})"
        );
        eprintln!(
            "round {round}: {} acks, revisions {lowest}..={}",
            acks.len(),
            acks.iter().map(|a| a.revision).max().unwrap_or(0)
        );
        all.extend(acks);
    }

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqliteStore::open(&path).expect("reopen after the crashes");
        for ack in &all {
            let kv = store.get(&ack.key).await.expect("get").unwrap_or_else(|| {
                panic!(
                    "acknowledged key {} (round {}, revision {}) was lost",
                    ack.key, ack.round, ack.revision
                )
            });
            assert_eq!(kv.mod_revision, ack.revision, "{}", ack.key);
            assert_eq!(kv.value, value_of(&ack.key));
        }
        let highest = all.iter().map(|a| a.revision).max().expect("acks");
        let next = store.create("/crash/after", vec![1]).await.expect("create");
        assert!(next.mod_revision > highest);
        eprintln!("{} acknowledged writes all present", all.len());
    });
}
