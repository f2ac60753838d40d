//! The session object's SQLite storage: its event log (consecutive events sharing a row, see
//! `log_rows`), prompt queue, outbound commands and a small key/value table. All calls are
//! synchronous, so a sequence of them runs without any other event interleaving.

use agent_ops_protocol::feed::{Feed, FeedTarget};
use agent_ops_protocol::frames::Command;
use agent_ops_protocol::log_rows;
use agent_ops_protocol::{EventBody, SessionEvent};
use js_sys::JsString;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use worker::{Result, SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (
  first_seq INTEGER PRIMARY KEY,
  last_seq INTEGER NOT NULL,
  events TEXT NOT NULL,
  -- How far the runner's numbering is persisted, on the rows that moved it: the runner's
  -- events and its acknowledged position land in one statement.
  rseq INTEGER
);
CREATE TABLE IF NOT EXISTS prompts (
  id TEXT PRIMARY KEY,
  client_request_id TEXT NOT NULL UNIQUE,
  text TEXT NOT NULL,
  status TEXT NOT NULL,
  queued_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS feeds (
  target TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  retry_at INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS commands (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  body TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending'
);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptState {
    Queued,
    Running,
    Completed,
    Failed,
    Interrupted,
    Cancelled,
}

pub struct Store {
    storage: worker::Storage,
    sql: SqlStorage,
}

/// Runs `f` as one transaction of the object's SQLite storage (`transactionSync`): its writes
/// land together, or none of them do when it fails.
pub fn atomically<R: 'static>(
    storage: &worker::Storage,
    f: impl FnOnce() -> Result<R> + 'static,
) -> Result<R> {
    use std::cell::RefCell;
    use std::rc::Rc;
    use wasm_bindgen::closure::Closure;
    let raw: &JsValue = storage.as_raw().as_ref();
    let run: js_sys::Function = js_sys::Reflect::get(raw, &JsValue::from_str("transactionSync"))?
        .dyn_into()
        .map_err(|_| worker::Error::RustError("storage has no transactionSync".into()))?;
    let out = Rc::new(RefCell::new(None));
    let slot = out.clone();
    let body: Closure<dyn FnMut() -> std::result::Result<JsValue, JsValue>> =
        Closure::once(move || match f() {
            Ok(r) => {
                *slot.borrow_mut() = Some(r);
                Ok(JsValue::UNDEFINED)
            }
            // Thrown, so the transaction rolls back.
            Err(e) => Err(JsValue::from_str(&e.to_string())),
        });
    run.call1(raw, body.as_ref().unchecked_ref())?;
    let r = out.borrow_mut().take();
    r.ok_or_else(|| worker::Error::RustError("the transaction did not run".into()))
}

/// A log kept one event a row, before events shared rows: each becomes a row of one, and the
/// runner's position, kept in the object's state then, goes on the last.
const ONE_EVENT_ROWS: &str = "
INSERT OR IGNORE INTO log (first_seq, last_seq, events) SELECT seq, seq, '[' || json || ']' FROM events;
UPDATE log SET rseq = (SELECT json_extract(value, '$.last_rseq') FROM meta WHERE key = 'state')
  WHERE first_seq = (SELECT MAX(first_seq) FROM log);
DROP TABLE events;
";

fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(v as i64)
}

impl Store {
    pub fn open(storage: worker::Storage) -> Result<Self> {
        let sql = storage.sql();
        sql.exec(SCHEMA, None)?;
        let old = sql
            .exec(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'",
                None,
            )?
            .to_array::<serde_json::Value>()?;
        if !old.is_empty() {
            sql.exec(ONE_EVENT_ROWS, None)?;
        }
        Ok(Self { storage, sql })
    }

    pub fn meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        #[derive(Deserialize)]
        struct V {
            value: String,
        }
        let rows: Vec<V> = self
            .sql
            .exec("SELECT value FROM meta WHERE key = ?", vec![key.into()])?
            .to_array()?;
        match rows.into_iter().next() {
            Some(v) => Ok(Some(serde_json::from_str(&v.value)?)),
            None => Ok(None),
        }
    }

    pub fn set_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        self.sql.exec(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            vec![key.into(), serde_json::to_string(value)?.into()],
        )?;
        Ok(())
    }

    pub fn last_seq(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct M {
            m: Option<u64>,
        }
        let rows: Vec<M> = self
            .sql
            .exec("SELECT MAX(last_seq) AS m FROM log", None)?
            .to_array()?;
        Ok(rows.into_iter().next().and_then(|r| r.m).unwrap_or(0))
    }

    /// Persists `bodies` as the events `first_seq`, `first_seq + 1`, ... with the runner's
    /// position `rseq` when they are its events, and returns them as their JSON array, ready to
    /// broadcast. A runner's batch is one row, or rows written in one transaction: it lands
    /// whole or not at all.
    pub fn append(
        &self,
        first_seq: u64,
        ts: u64,
        bodies: &[EventBody],
        rseq: Option<u64>,
    ) -> Result<String> {
        let jsons = (first_seq..)
            .zip(bodies)
            .map(|(seq, body)| SessionEvent::json(seq, ts, body))
            .collect::<serde_json::Result<Vec<String>>>()?;
        let rows = match <[_; 1]>::try_from(log_rows::rows(first_seq, &jsons)) {
            // The common case: the row's array is what is broadcast.
            Ok([row]) => {
                insert_row(&self.sql, &row, rseq)?;
                return Ok(row.2);
            }
            Err(rows) => rows,
        };
        if !rows.is_empty() {
            let sql = self.sql.clone();
            atomically(&self.storage, move || {
                rows.iter().try_for_each(|row| insert_row(&sql, row, rseq))
            })?;
        }
        Ok(format!("[{}]", jsons.join(",")))
    }

    /// How far the runner's events are persisted (0 before any).
    pub fn runner_position(&self) -> Result<u64> {
        #[derive(Deserialize)]
        struct R {
            rseq: u64,
        }
        let rows: Vec<R> = self
            .sql
            .exec(
                "SELECT rseq FROM log WHERE rseq IS NOT NULL ORDER BY first_seq DESC LIMIT 1",
                None,
            )?
            .to_array()?;
        Ok(rows.into_iter().next().map_or(0, |r| r.rseq))
    }

    /// Moves the runner's position on when none of its events was kept: on the log's last row,
    /// which is never older than the runner's `runner.connected`.
    pub fn set_runner_position(&self, rseq: u64) -> Result<()> {
        self.sql.exec(
            "UPDATE log SET rseq = ? WHERE first_seq = (SELECT MAX(first_seq) FROM log)",
            vec![int(rseq)],
        )?;
        Ok(())
    }

    /// The events after `after_seq`, at most `limit`, in order: their JSON separated by commas,
    /// and how many there are.
    pub fn events_after(&self, after_seq: u64, limit: usize) -> Result<(String, usize)> {
        #[derive(Deserialize)]
        struct Row {
            first_seq: u64,
            last_seq: u64,
            events: String,
        }
        let (from, to) = (after_seq + 1, after_seq + limit as u64);
        // The row holding `from` and those after it, read only as far as the page needs.
        let cursor = self.sql.exec(
            "SELECT first_seq, last_seq, events FROM log
             WHERE first_seq >= (SELECT COALESCE(MAX(first_seq), 0) FROM log WHERE first_seq <= ?)
             ORDER BY first_seq",
            vec![int(from)],
        )?;
        let mut page = String::new();
        let mut count = 0;
        for row in cursor.next::<Row>() {
            let row = row?;
            if row.first_seq > to {
                break;
            }
            if row.last_seq < from {
                continue;
            }
            let part = log_rows::slice(row.first_seq, row.last_seq, &row.events, from, to)?;
            if !page.is_empty() && !part.is_empty() {
                page.push(',');
            }
            page.push_str(&part);
            count += (row.last_seq.min(to) + 1 - row.first_seq.max(from)) as usize;
            if row.last_seq >= to {
                break;
            }
        }
        Ok((page, count))
    }

    pub fn prompt_by_request(&self, client_request_id: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct I {
            id: String,
        }
        let rows: Vec<I> = self
            .sql
            .exec(
                "SELECT id FROM prompts WHERE client_request_id = ?",
                vec![client_request_id.into()],
            )?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.id))
    }

    pub fn insert_prompt(
        &self,
        id: &str,
        client_request_id: &str,
        text: &str,
        now: u64,
    ) -> Result<()> {
        self.sql.exec(
            "INSERT INTO prompts (id, client_request_id, text, status, queued_at) VALUES (?, ?, ?, 'queued', ?)",
            vec![id.into(), client_request_id.into(), text.into(), int(now)],
        )?;
        Ok(())
    }

    pub fn prompt_text(&self, id: &str) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct T {
            text: String,
        }
        let rows: Vec<T> = self
            .sql
            .exec("SELECT text FROM prompts WHERE id = ?", vec![id.into()])?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.text))
    }

    pub fn set_prompt_state(&self, id: &str, state: PromptState) -> Result<()> {
        let state = serde_json::to_value(state)?;
        self.sql.exec(
            "UPDATE prompts SET status = ? WHERE id = ?",
            vec![state.as_str().unwrap_or_default().into(), id.into()],
        )?;
        Ok(())
    }

    pub fn has_prompt(&self, id: &str) -> Result<bool> {
        Ok(self.prompt_text(id)?.is_some())
    }

    pub fn enqueue_command(&self, command: &Command) -> Result<u64> {
        #[derive(Deserialize)]
        struct I {
            id: u64,
        }
        let rows: Vec<I> = self
            .sql
            .exec(
                "INSERT INTO commands (body) VALUES (?) RETURNING id",
                vec![serde_json::to_string(command)?.into()],
            )?
            .to_array()?;
        Ok(rows.into_iter().next().map(|r| r.id).unwrap_or_default())
    }

    pub fn pending_commands(&self) -> Result<Vec<(u64, Command)>> {
        #[derive(Deserialize)]
        struct C {
            id: u64,
            body: String,
        }
        let rows: Vec<C> = self
            .sql
            .exec(
                "SELECT id, body FROM commands WHERE state = 'pending' ORDER BY id",
                None,
            )?
            .to_array()?;
        rows.into_iter()
            .map(|r| Ok((r.id, serde_json::from_str(&r.body)?)))
            .collect()
    }

    pub fn ack_command(&self, id: u64) -> Result<()> {
        self.sql.exec(
            "UPDATE commands SET state = 'acked' WHERE id = ?",
            vec![int(id)],
        )?;
        Ok(())
    }

    /// A new runner instance must not receive what was meant for the one that died.
    pub fn drop_pending_commands(&self) -> Result<()> {
        self.sql.exec(
            "UPDATE commands SET state = 'dropped' WHERE state = 'pending'",
            None,
        )?;
        Ok(())
    }

    /// Adds a feed, from the log's start; false when the target had one.
    pub fn add_feed(&self, target: &FeedTarget) -> Result<bool> {
        let rows: Vec<serde_json::Value> = self
            .sql
            .exec(
                "INSERT INTO feeds (target, state) VALUES (?, ?) ON CONFLICT (target) DO NOTHING RETURNING target",
                vec![
                    serde_json::to_string(target)?.into(),
                    serde_json::to_string(&Feed::default())?.into(),
                ],
            )?
            .to_array()?;
        Ok(!rows.is_empty())
    }

    pub fn feeds(&self) -> Result<Vec<FeedRow>> {
        #[derive(Deserialize)]
        struct Row {
            target: String,
            state: String,
            retry_at: u64,
            attempts: u32,
        }
        let rows: Vec<Row> = self
            .sql
            .exec("SELECT target, state, retry_at, attempts FROM feeds", None)?
            .to_array()?;
        rows.into_iter()
            .map(|r| {
                Ok(FeedRow {
                    target: serde_json::from_str(&r.target)?,
                    feed: serde_json::from_str(&r.state)?,
                    retry_at: r.retry_at,
                    attempts: r.attempts,
                })
            })
            .collect()
    }

    pub fn save_feed(&self, row: &FeedRow) -> Result<()> {
        self.sql.exec(
            "UPDATE feeds SET state = ?, retry_at = ?, attempts = ? WHERE target = ?",
            vec![
                serde_json::to_string(&row.feed)?.into(),
                int(row.retry_at),
                int(row.attempts.into()),
                serde_json::to_string(&row.target)?.into(),
            ],
        )?;
        Ok(())
    }
}

#[wasm_bindgen]
extern "C" {
    /// The storage's `sql`, for the log's one hot statement: called with its parameters as
    /// arguments, one call out of wasm, where `SqlStorage::exec` makes an array of them first.
    type SqlExec;
    #[wasm_bindgen(method, catch, js_name = exec)]
    fn exec_row(
        this: &SqlExec,
        query: &JsString,
        first_seq: f64,
        last_seq: f64,
        events: &str,
        rseq: Option<f64>,
    ) -> std::result::Result<JsValue, JsValue>;
}

thread_local! {
    /// Made a JS string once, not copied out of wasm for every row.
    static INSERT_ROW: JsString = JsString::from(
        "INSERT INTO log (first_seq, last_seq, events, rseq) VALUES (?, ?, ?, ?)",
    );
}

/// Writes one row of the log. Its numbers go as JS numbers, exact far beyond any sequence
/// number (2^53); no `rseq` binds NULL.
fn insert_row(
    sql: &SqlStorage,
    (first, last, events): &(u64, u64, String),
    rseq: Option<u64>,
) -> Result<()> {
    let exec: &SqlExec = sql.as_ref().unchecked_ref();
    INSERT_ROW.with(|query| {
        exec.exec_row(
            query,
            *first as f64,
            *last as f64,
            events,
            rseq.map(|r| r as f64),
        )
    })?;
    Ok(())
}

/// A feed as stored: where it posts, how far it is, and when it may try again after a failure.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub target: FeedTarget,
    pub feed: Feed,
    pub retry_at: u64,
    pub attempts: u32,
}
