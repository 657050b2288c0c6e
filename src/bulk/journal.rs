//! The job journal: an embedded SQLite file holding each chunk's state, written before and
//! after each send, so a killed job resumes without re-sending what went out.
//!
//! WAL mode with `synchronous=NORMAL` survives the process being killed at any moment (the
//! operating system holds every committed write); it is not meant to survive power loss.

use super::RowOutcome;
use crate::error::Error;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::Mutex;

const FORMAT_VERSION: &str = "1";

/// The state of one chunk in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkState {
    /// About to be sent, or sent with no answer recorded: it may have been applied.
    Sending,
    /// Answered 200: its rows are awarded (or skipped, as the row exceptions say).
    Done,
    /// Sent, with no definitive answer.
    Unknown,
    /// Refused with a 4xx; nothing was applied.
    Rejected,
    /// A 5xx, or it could not be sent; nothing was applied.
    Failed,
}

impl ChunkState {
    fn as_str(self) -> &'static str {
        match self {
            ChunkState::Sending => "sending",
            ChunkState::Done => "done",
            ChunkState::Unknown => "unknown",
            ChunkState::Rejected => "rejected",
            ChunkState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<ChunkState> {
        Some(match s {
            "sending" => ChunkState::Sending,
            "done" => ChunkState::Done,
            "unknown" => ChunkState::Unknown,
            "rejected" => ChunkState::Rejected,
            "failed" => ChunkState::Failed,
            _ => return None,
        })
    }
}

/// What the journal remembers of a chunk.
#[derive(Debug, Clone)]
pub struct JournalChunk {
    pub hash: String,
    pub state: ChunkState,
    pub request_id: Option<String>,
    pub message: Option<String>,
}

/// An open journal.
pub struct Journal {
    conn: Mutex<Connection>,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::Config(format!("journal: {e}"))
}

impl Journal {
    /// Opens (or creates) the journal at `path` for a job with these settings. A journal
    /// written by a job with other settings or against another endpoint is refused, unless
    /// it records no chunk (nothing was ever sent under it): then it takes the new settings.
    pub fn open(path: &Path, settings: &[(&str, String)]) -> Result<Journal, Error> {
        let conn = Connection::open(path).map_err(db_err)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=NORMAL;
             PRAGMA busy_timeout=5000;
             CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS chunks(
                 id INTEGER PRIMARY KEY, first_row INTEGER NOT NULL, last_row INTEGER NOT NULL,
                 rows INTEGER NOT NULL, hash TEXT NOT NULL, state TEXT NOT NULL,
                 request_id TEXT, message TEXT, updated_at TEXT NOT NULL DEFAULT (datetime('now')));
             CREATE TABLE IF NOT EXISTS row_outcomes(
                 row INTEGER PRIMARY KEY, chunk INTEGER NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL);",
        )
        .map_err(db_err)?;
        let journal = Journal { conn: Mutex::new(conn) };
        let fresh = journal.chunk_count()? == 0;
        let mut all = vec![("format_version", FORMAT_VERSION.to_string())];
        all.extend(settings.iter().map(|(k, v)| (*k, v.clone())));
        for (key, value) in all {
            match journal.meta(key)? {
                Some(old) if old != value && fresh => journal.set_meta(key, &value)?,
                Some(old) if old != value => {
                    return Err(Error::Config(format!(
                    "the journal {} belongs to another job ({key} was {old:?}, now {value:?}); use a new journal file",
                    path.display()
                )))
                }
                Some(_) => {}
                None => journal.set_meta(key, &value)?,
            }
        }
        Ok(journal)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A setting stored in the journal.
    pub fn meta(&self, key: &str) -> Result<Option<String>, Error> {
        self.lock().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional().map_err(db_err)
    }

    /// Stores a setting.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), Error> {
        self.lock()
            .execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", params![key, value])
            .map(|_| ())
            .map_err(db_err)
    }

    /// What the journal holds for chunk `id`.
    pub fn chunk(&self, id: usize) -> Result<Option<JournalChunk>, Error> {
        self.lock()
            .query_row("SELECT hash, state, request_id, message FROM chunks WHERE id = ?1", [id as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(db_err)?
            .map(|(hash, state, request_id, message)| {
                let state = ChunkState::parse(&state)
                    .ok_or_else(|| Error::Config(format!("journal: unknown chunk state {state:?}")))?;
                Ok(JournalChunk { hash, state, request_id, message })
            })
            .transpose()
    }

    /// Records that chunk `id` is about to go on the wire. Written before the first byte is
    /// sent: a chunk found in this state after a crash may have been applied.
    pub fn mark_sending(
        &self,
        id: usize,
        first_row: usize,
        last_row: usize,
        rows: usize,
        hash: &str,
    ) -> Result<(), Error> {
        self.lock()
            .execute(
                "INSERT INTO chunks(id, first_row, last_row, rows, hash, state) VALUES (?1, ?2, ?3, ?4, ?5, 'sending')
                 ON CONFLICT(id) DO UPDATE SET state = 'sending', hash = excluded.hash, request_id = NULL,
                     message = NULL, updated_at = datetime('now')",
                params![id as i64, first_row as i64, last_row as i64, rows as i64, hash],
            )
            .map(|_| ())
            .map_err(db_err)
    }

    /// Records a chunk's final state and its rows' own outcomes, in one transaction.
    pub fn finish(
        &self,
        id: usize,
        state: ChunkState,
        request_id: Option<&str>,
        message: Option<&str>,
        rows: &[RowOutcome],
    ) -> Result<(), Error> {
        let mut conn = self.lock();
        let tx = conn.transaction().map_err(db_err)?;
        tx.execute(
            "UPDATE chunks SET state = ?2, request_id = ?3, message = ?4, updated_at = datetime('now') WHERE id = ?1",
            params![id as i64, state.as_str(), request_id, message],
        )
        .map_err(db_err)?;
        tx.execute("DELETE FROM row_outcomes WHERE chunk = ?1", [id as i64]).map_err(db_err)?;
        {
            let mut stmt = tx
                .prepare("INSERT OR REPLACE INTO row_outcomes(row, chunk, outcome, detail) VALUES (?1, ?2, ?3, ?4)")
                .map_err(db_err)?;
            for r in rows {
                let detail = serde_json::to_string(r).unwrap_or_default();
                stmt.execute(params![r.row as i64, id as i64, r.outcome.as_str(), detail]).map_err(db_err)?;
            }
        }
        tx.commit().map_err(db_err)
    }

    /// The row outcomes recorded for chunk `id` (skipped rows and the like).
    pub fn row_outcomes(&self, id: usize) -> Result<Vec<RowOutcome>, Error> {
        let conn = self.lock();
        let mut stmt = conn.prepare("SELECT detail FROM row_outcomes WHERE chunk = ?1 ORDER BY row").map_err(db_err)?;
        let rows = stmt
            .query_map([id as i64], |r| r.get::<_, String>(0))
            .map_err(db_err)?
            .filter_map(|d| d.ok())
            .filter_map(|d| serde_json::from_str::<RowOutcome>(&d).ok())
            .collect();
        Ok(rows)
    }

    /// The number of chunks the journal knows.
    pub fn chunk_count(&self) -> Result<usize, Error> {
        self.lock()
            .query_row("SELECT COUNT(*) FROM chunks", [], |r| r.get::<_, i64>(0))
            .map(|n| n as usize)
            .map_err(db_err)
    }
}
