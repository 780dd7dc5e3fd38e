//! Container logs as the kubelet reads them: the CRI log format the
//! runtime writes (`<RFC3339Nano> <stdout|stderr> <F|P> <message>`, one
//! record a line, `P` records are partial lines joined up to the next `F`),
//! the `containerLogs` options (`tailLines`, `limitBytes`, `sinceSeconds`,
//! `sinceTime`, `timestamps`, `previous`, `follow`) and which restart's
//! file a request reads.
//!
//! Pure apart from [`log_files`] (one directory listing): the HTTP side is
//! [`super::server`]. Owns no files; never writes the runtime's logs.

use std::path::{Path, PathBuf};

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LogError {
    #[error("invalid value {value:?} for {name}")]
    BadOption { name: &'static str, value: String },
    #[error("not a CRI log record")]
    BadRecord,
}

/// Which stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One CRI log record (one line of the file, without its newline).
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub timestamp: &'a str,
    pub stream: Stream,
    /// `P`: the message continues in the next record.
    pub partial: bool,
    pub message: &'a [u8],
}

/// Parses one record (`line` without its trailing newline).
pub fn parse_record(line: &[u8]) -> Result<Record<'_>, LogError> {
    let mut fields = line.splitn(4, |b| *b == b' ');
    let timestamp = fields
        .next()
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| !t.is_empty())
        .ok_or(LogError::BadRecord)?;
    let stream = match fields.next() {
        Some(b"stdout") => Stream::Stdout,
        Some(b"stderr") => Stream::Stderr,
        _ => return Err(LogError::BadRecord),
    };
    let partial = match fields.next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(LogError::BadRecord),
    };
    Ok(Record {
        timestamp,
        stream,
        partial,
        message: fields.next().unwrap_or_default(),
    })
}

/// One log line as users see it: partial records joined, newline included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The timestamp of its first record.
    pub timestamp: String,
    pub stream: Stream,
    pub content: Vec<u8>,
}

impl Entry {
    /// The bytes sent to the client: the content, after the timestamp and
    /// a space when `timestamps` (as the kubelet).
    pub fn render(&self, timestamps: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.content.len() + 36);
        if timestamps {
            out.extend_from_slice(self.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(&self.content);
        out
    }

    /// Seconds since the epoch of its timestamp (`None`: unparseable).
    pub fn time(&self) -> Option<jiff::Timestamp> {
        self.timestamp.parse().ok()
    }
}

/// Turns file bytes into entries, keeping an unfinished line and partial
/// records (per stream) until their end arrives.
#[derive(Debug, Default)]
pub struct Assembler {
    pending_bytes: Vec<u8>,
    partial: [Option<Entry>; 2],
}

impl Assembler {
    /// Feeds the next bytes of the file; returns the entries they complete.
    /// Lines that are not CRI records are skipped (as the kubelet does).
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Entry> {
        self.pending_bytes.extend_from_slice(bytes);
        let Some(last_newline) = self.pending_bytes.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        let rest = self.pending_bytes.split_off(last_newline + 1);
        let complete = std::mem::replace(&mut self.pending_bytes, rest);
        let mut entries = Vec::new();
        for line in complete.split(|b| *b == b'\n') {
            let Ok(record) = parse_record(line) else {
                continue;
            };
            let slot = &mut self.partial[record.stream as usize];
            let entry = slot.get_or_insert_with(|| Entry {
                timestamp: record.timestamp.to_owned(),
                stream: record.stream,
                content: Vec::new(),
            });
            entry.content.extend_from_slice(record.message);
            if !record.partial {
                entry.content.push(b'\n');
                entries.extend(slot.take());
            }
        }
        entries
    }
}

/// All entries of a whole file's bytes.
pub fn parse_all(bytes: &[u8]) -> Vec<Entry> {
    Assembler::default().feed(bytes)
}

/// The `containerLogs` query options (`PodLogOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
    /// Only entries at or after this time (`sinceSeconds` / `sinceTime`).
    pub since: Option<jiff::Timestamp>,
}

fn parse_flag(name: &'static str, value: &str) -> Result<bool, LogError> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(LogError::BadOption {
            name,
            value: value.to_owned(),
        }),
    }
}

impl LogOptions {
    /// From the query's `(key, value)` pairs; `now` anchors `sinceSeconds`.
    pub fn from_query<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: jiff::Timestamp,
    ) -> Result<Self, LogError> {
        let mut opts = Self::default();
        for (key, value) in pairs {
            let bad = |name| LogError::BadOption {
                name,
                value: value.to_owned(),
            };
            match key {
                "follow" => opts.follow = parse_flag("follow", value)?,
                "previous" => opts.previous = parse_flag("previous", value)?,
                "timestamps" => opts.timestamps = parse_flag("timestamps", value)?,
                "tailLines" => {
                    let n: i64 = value.parse().map_err(|_| bad("tailLines"))?;
                    // Negative: all lines (as the kubelet).
                    opts.tail_lines = usize::try_from(n).ok();
                }
                "limitBytes" => {
                    let n: usize = value.parse().map_err(|_| bad("limitBytes"))?;
                    if n == 0 {
                        return Err(bad("limitBytes"));
                    }
                    opts.limit_bytes = Some(n);
                }
                "sinceSeconds" => {
                    let n: i64 = value.parse().map_err(|_| bad("sinceSeconds"))?;
                    if n <= 0 {
                        return Err(bad("sinceSeconds"));
                    }
                    let since = now
                        .checked_sub(jiff::SignedDuration::from_secs(n))
                        .map_err(|_| bad("sinceSeconds"))?;
                    opts.since = Some(since);
                }
                "sinceTime" => {
                    opts.since = Some(value.parse().map_err(|_| bad("sinceTime"))?);
                }
                _ => {}
            }
        }
        Ok(opts)
    }

    /// Whether `entry` passes the `since` filter.
    pub fn admits(&self, entry: &Entry) -> bool {
        match (self.since, entry.time()) {
            (Some(since), Some(t)) => t >= since,
            _ => true,
        }
    }
}

/// The bytes to send for the entries already in a file: the `since`
/// filter, then the last `tailLines`, rendered; `limitBytes` is the
/// caller's (it spans the followed part too).
pub fn select(entries: &[Entry], opts: &LogOptions) -> Vec<u8> {
    let admitted: Vec<&Entry> = entries.iter().filter(|e| opts.admits(e)).collect();
    let skip = opts
        .tail_lines
        .map_or(0, |n| admitted.len().saturating_sub(n));
    admitted[skip..]
        .iter()
        .flat_map(|e| e.render(opts.timestamps))
        .collect()
}

/// The restart numbers of a container's log files (`<n>.log` in
/// `<pod log dir>/<container>/`), ascending.
pub fn log_files(container_dir: &Path) -> std::io::Result<Vec<(u32, PathBuf)>> {
    let mut files: Vec<(u32, PathBuf)> = std::fs::read_dir(container_dir)?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_suffix(".log")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The file a request reads: the newest, or the one before it for
/// `previous`.
pub fn pick_file(files: &[(u32, PathBuf)], previous: bool) -> Option<&Path> {
    let index = if previous {
        files.len().checked_sub(2)?
    } else {
        files.len().checked_sub(1)?
    };
    files.get(index).map(|(_, p)| p.as_path())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &[u8] = b"2026-12-04T03:00:00.000000001Z stdout F one\n\
2026-12-04T03:00:01.5Z stderr P tw\n\
2026-12-04T03:00:01.6Z stdout F three\n\
2026-12-04T03:00:01.7Z stderr F o\n\
garbage line\n\
2026-12-04T03:00:02Z stdout F \n";

    #[test]
    fn records_parse() {
        let r = parse_record(b"2026-12-04T03:00:00Z stdout P hello world").unwrap();
        assert_eq!(r.timestamp, "2026-12-04T03:00:00Z");
        assert_eq!(r.stream, Stream::Stdout);
        assert!(r.partial);
        assert_eq!(r.message, b"hello world");
        let empty = parse_record(b"2026-12-04T03:00:00Z stderr F").unwrap();
        assert_eq!((empty.stream, empty.message), (Stream::Stderr, &b""[..]));
        assert_eq!(parse_record(b"2026 stdin F x"), Err(LogError::BadRecord));
        assert_eq!(parse_record(b"2026 stdout X x"), Err(LogError::BadRecord));
        assert_eq!(parse_record(b""), Err(LogError::BadRecord));
    }

    #[test]
    fn partial_records_join_per_stream() {
        let entries = parse_all(LOG);
        let lines: Vec<&[u8]> = entries.iter().map(|e| e.content.as_slice()).collect();
        assert_eq!(lines, [&b"one\n"[..], b"three\n", b"two\n", b"\n"]);
        assert_eq!(entries[2].timestamp, "2026-12-04T03:00:01.5Z");
        assert_eq!(entries[2].stream, Stream::Stderr);
    }

    #[test]
    fn assembler_waits_for_whole_lines() {
        let mut a = Assembler::default();
        assert!(a.feed(b"2026-12-04T03:00:00Z stdout F he").is_empty());
        let entries = a.feed(b"llo\n2026-12-04T03:00:01Z stdout P a");
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].content, b"hello\n");
        assert!(a.feed(b"b\n").is_empty(), "P waits for its F");
        let entries = a.feed(b"2026-12-04T03:00:02Z stdout F c\n");
        assert_eq!(entries[0].content, b"abc\n");
    }

    #[test]
    fn options_parse() {
        let now: jiff::Timestamp = "2026-12-04T03:00:10Z".parse().unwrap();
        let opts = LogOptions::from_query(
            [
                ("follow", "true"),
                ("tailLines", "2"),
                ("timestamps", "true"),
                ("sinceSeconds", "9"),
                ("limitBytes", "100"),
                ("container", "c"),
            ],
            now,
        )
        .unwrap();
        assert!(opts.follow && opts.timestamps && !opts.previous);
        assert_eq!(opts.tail_lines, Some(2));
        assert_eq!(opts.limit_bytes, Some(100));
        assert_eq!(opts.since, Some("2026-12-04T03:00:01Z".parse().unwrap()));
        assert_eq!(
            LogOptions::from_query([("tailLines", "-1")], now)
                .unwrap()
                .tail_lines,
            None
        );
        assert!(LogOptions::from_query([("tailLines", "x")], now).is_err());
        assert!(LogOptions::from_query([("follow", "maybe")], now).is_err());
        assert!(LogOptions::from_query([("limitBytes", "0")], now).is_err());
    }

    #[test]
    fn select_filters_tails_and_renders() {
        let entries = parse_all(LOG);
        let all = select(&entries, &LogOptions::default());
        assert_eq!(all, b"one\nthree\ntwo\n\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            timestamps: true,
            ..Default::default()
        };
        assert_eq!(
            select(&entries, &tail),
            b"2026-12-04T03:00:01.5Z two\n2026-12-04T03:00:02Z \n"
        );
        let since = LogOptions {
            since: Some("2026-12-04T03:00:01.6Z".parse().unwrap()),
            ..Default::default()
        };
        assert_eq!(select(&entries, &since), b"three\n\n");
        let none = LogOptions {
            tail_lines: Some(0),
            ..Default::default()
        };
        assert!(select(&entries, &none).is_empty());
    }

    #[test]
    fn files_by_restart() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["0.log", "10.log", "2.log", "x.log", "3.tmp"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let files = log_files(dir.path()).unwrap();
        let numbers: Vec<u32> = files.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, [0, 2, 10]);
        assert_eq!(
            pick_file(&files, false),
            Some(dir.path().join("10.log").as_path())
        );
        assert_eq!(
            pick_file(&files, true),
            Some(dir.path().join("2.log").as_path())
        );
        assert_eq!(pick_file(&files[..1], true), None);
        assert_eq!(pick_file(&[], false), None);
    }
}
