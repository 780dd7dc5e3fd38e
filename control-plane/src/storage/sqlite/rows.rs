//! The SQLite revision log's schema and every SQL statement that reads it:
//! row decoding, key bounds, point reads, ranges at a revision, counts and
//! history scans for watches. Writes live in [`super::writer`]; this module
//! only reads (and creates the schema on open).
//!
//! The log is kine's: one row per write, `id` is the revision. A key's
//! value at revision `r` is its newest row with `id <= r`, absent if that
//! row is a delete. Keys are stored as BLOBs so comparisons are plain byte
//! comparisons, exactly etcd's key order.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::{Event, EventKind, KeyValue, Revision, StoreError};

/// The schema version this code writes and understands.
pub(super) const SCHEMA_VERSION: i64 = 1;

/// Creates the tables on first open; idempotent.
///
/// - `log`: the append-only revision log. `created` rows start a key's
///   life (their `create_revision` column is 0: the row's own `id` is the
///   create revision); `deleted` rows end it (their `value` is empty and
///   `create_revision` is that of the deleted key). `prev_revision` is the
///   id of the key's previous row (0 if none) and `old_value` that row's
///   value, so an event can be rebuilt from its own row even after the
///   previous row was compacted away.
/// - `meta`: small durable settings (`schema_version`, `compacted`).
pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            BLOB    NOT NULL,
    created         INTEGER NOT NULL,
    deleted         INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision   INTEGER NOT NULL,
    value           BLOB    NOT NULL,
    old_value       BLOB
);
CREATE INDEX IF NOT EXISTS log_name_id ON log (name, id);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The columns every row query selects, in [`Row::from_sql`]'s order.
const COLUMNS: &str = "id, name, created, deleted, \
     CASE WHEN created THEN id ELSE create_revision END, \
     prev_revision, value, old_value";

/// One decoded log row.
#[derive(Clone, Debug)]
pub(super) struct Row {
    pub id: Revision,
    pub name: String,
    pub created: bool,
    pub deleted: bool,
    /// The effective create revision (the row's own id for `created` rows).
    pub create_revision: Revision,
    pub prev_revision: Revision,
    pub value: Vec<u8>,
    pub old_value: Option<Vec<u8>>,
}

impl Row {
    fn from_sql(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        let name: Vec<u8> = row.get(1)?;
        let name = String::from_utf8(name)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(1, Type::Blob, Box::new(e)))?;
        Ok(Row {
            id: row.get(0)?,
            name,
            created: row.get(2)?,
            deleted: row.get(3)?,
            create_revision: row.get(4)?,
            prev_revision: row.get(5)?,
            value: row.get(6)?,
            old_value: row.get(7)?,
        })
    }

    /// The key's value as of this row (meaningful for non-delete rows).
    pub fn into_kv(self) -> KeyValue {
        KeyValue {
            key: self.name,
            value: self.value,
            create_revision: self.create_revision,
            mod_revision: self.id,
        }
    }

    /// The change this row records.
    pub fn into_event(self) -> Event {
        let prev = if self.created {
            None
        } else {
            Some(KeyValue {
                key: self.name.clone(),
                value: self.old_value.unwrap_or_default(),
                create_revision: self.create_revision,
                mod_revision: self.prev_revision,
            })
        };
        let kind = if self.created {
            EventKind::Added
        } else if self.deleted {
            EventKind::Deleted
        } else {
            EventKind::Modified
        };
        Event {
            kind,
            kv: KeyValue {
                key: self.name,
                value: if self.deleted { Vec::new() } else { self.value },
                create_revision: self.create_revision,
                mod_revision: self.id,
            },
            prev,
        }
    }
}

/// Maps a SQLite failure to the store's error type.
pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("sqlite: {e}"))
}

/// The exclusive upper bound of the keys starting with `prefix`.
///
/// Keys are UTF-8, which never contains the byte 0xFF, so incrementing the
/// last byte never carries, and `[0xFF]` is above every key (the bound of
/// the empty prefix).
pub(super) fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    match end.last_mut() {
        Some(last) => *last = last.saturating_add(1),
        None => end.push(0xFF),
    }
    end
}

/// The inclusive lower bound of a range over `prefix` that resumes after
/// `start_after`: the smallest key greater than `start_after` is
/// `start_after + "\0"`.
pub(super) fn range_start(prefix: &str, start_after: Option<&str>) -> Vec<u8> {
    match start_after {
        Some(after) if after.as_bytes() >= prefix.as_bytes() => {
            let mut start = after.as_bytes().to_vec();
            start.push(0);
            start
        }
        _ => prefix.as_bytes().to_vec(),
    }
}

/// The newest revision in the log (0 for an empty store). Compaction never
/// removes the newest row, so this is the store's revision.
pub(super) fn current_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    conn.prepare_cached("SELECT COALESCE(MAX(id), 0) FROM log")?
        .query_row([], |r| r.get(0))
}

/// A `meta` value, if set.
pub(super) fn meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

/// The last compaction revision (0 if never compacted).
pub(super) fn compacted_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    Ok(meta(conn, "compacted")?.unwrap_or(0))
}

/// The newest row of `key` (possibly a delete), if any.
pub(super) fn latest(conn: &Connection, key: &str) -> rusqlite::Result<Option<Row>> {
    let sql = format!("SELECT {COLUMNS} FROM log WHERE name = ?1 ORDER BY id DESC LIMIT 1");
    conn.prepare_cached(&sql)?
        .query_row([key.as_bytes()], Row::from_sql)
        .optional()
}

/// The live keys in `[start, end)` at `revision`, in key order, at most
/// `limit` of them (`None`: all).
pub(super) fn range(
    conn: &Connection,
    start: &[u8],
    end: &[u8],
    revision: Revision,
    limit: Option<i64>,
) -> rusqlite::Result<Vec<Row>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM log AS kv \
         WHERE kv.name >= ?1 AND kv.name < ?2 \
           AND kv.id = (SELECT MAX(m.id) FROM log AS m WHERE m.name = kv.name AND m.id <= ?3) \
           AND kv.deleted = 0 \
         ORDER BY kv.name LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(
        params![start, end, revision, limit.unwrap_or(-1)],
        Row::from_sql,
    )?;
    rows.collect()
}

/// The number of live keys in `[start, end)` now.
pub(super) fn count(conn: &Connection, start: &[u8], end: &[u8]) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "SELECT COUNT(*) FROM log AS kv \
         WHERE kv.name >= ?1 AND kv.name < ?2 \
           AND kv.id = (SELECT MAX(m.id) FROM log AS m WHERE m.name = kv.name) \
           AND kv.deleted = 0",
    )?
    .query_row(params![start, end], |r| r.get(0))
}

/// Up to `limit` rows with `id > after` and keys in `[start, end)`, in
/// revision order. Scans by revision (the `+` keeps SQLite off the name
/// index), which suits watches that resume from a recent revision.
pub(super) fn history(
    conn: &Connection,
    after: Revision,
    start: &[u8],
    end: &[u8],
    limit: i64,
) -> rusqlite::Result<Vec<Row>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM log \
         WHERE id > ?1 AND +name >= ?2 AND +name < ?3 \
         ORDER BY id LIMIT ?4"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![after, start, end, limit], Row::from_sql)?;
    rows.collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_are_byte_exact() {
        assert_eq!(prefix_end("/registry/pods/"), b"/registry/pods0".to_vec());
        assert_eq!(prefix_end(""), vec![0xFF]);
        // The last byte of a multi-byte character is a continuation byte.
        assert_eq!(prefix_end("é"), vec![0xC3, 0xAA]);
        assert_eq!(range_start("/a/", None), b"/a/".to_vec());
        assert_eq!(range_start("/a/", Some("/a/x")), b"/a/x\0".to_vec());
        // A resume point before the prefix starts at the prefix.
        assert_eq!(range_start("/b/", Some("/a/x")), b"/b/".to_vec());
    }
}
