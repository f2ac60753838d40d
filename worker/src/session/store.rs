//! The session object's SQLite storage: its event log, prompt queue, outbound commands and a
//! small key/value table. All calls are synchronous, so a sequence of them runs without any
//! other event interleaving.

use agent_ops_protocol::feed::{Feed, FeedTarget};
use agent_ops_protocol::frames::Command;
use agent_ops_protocol::{EventBody, SessionEvent};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use worker::{Result, SqlStorage, SqlStorageValue};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, json TEXT NOT NULL);
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

#[derive(Clone)]
pub struct Store {
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
    use wasm_bindgen::{JsCast, JsValue};
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

/// Rows per `INSERT`, two parameters each: a statement may bind at most 100.
const ROWS_PER_INSERT: usize = 40;

fn int(v: u64) -> SqlStorageValue {
    SqlStorageValue::Integer(v as i64)
}

impl Store {
    pub fn open(sql: SqlStorage) -> Result<Self> {
        sql.exec(SCHEMA, None)?;
        Ok(Self { sql })
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
            .exec("SELECT MAX(seq) AS m FROM events", None)?
            .to_array()?;
        Ok(rows.into_iter().next().and_then(|r| r.m).unwrap_or(0))
    }

    /// Persists `bodies` as the events `first_seq`, `first_seq + 1`, ... and returns their JSON,
    /// ready to broadcast. Rows go in a few statements of many rows each: a runner's batch of
    /// deltas costs a handful of calls into SQLite, not one per event.
    pub fn append(&self, first_seq: u64, ts: u64, bodies: Vec<EventBody>) -> Result<Vec<String>> {
        let jsons = (first_seq..)
            .zip(bodies)
            .map(|(seq, body)| serde_json::to_string(&SessionEvent { seq, ts, body }))
            .collect::<serde_json::Result<Vec<String>>>()?;
        for (n, chunk) in jsons.chunks(ROWS_PER_INSERT).enumerate() {
            let first = first_seq + (n * ROWS_PER_INSERT) as u64;
            let rows = vec!["(?, ?)"; chunk.len()].join(", ");
            let params: Vec<SqlStorageValue> = (first..)
                .zip(chunk)
                .flat_map(|(seq, json)| [int(seq), json.as_str().into()])
                .collect();
            self.sql.exec(
                &format!("INSERT INTO events (seq, json) VALUES {rows}"),
                params,
            )?;
        }
        Ok(jsons)
    }

    /// The serialized events after `after_seq`, at most `limit`, in order.
    pub fn events_after(&self, after_seq: u64, limit: usize) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct J {
            json: String,
        }
        let rows: Vec<J> = self
            .sql
            .exec(
                "SELECT json FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                vec![int(after_seq), int(limit as u64)],
            )?
            .to_array()?;
        Ok(rows.into_iter().map(|r| r.json).collect())
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

/// A feed as stored: where it posts, how far it is, and when it may try again after a failure.
#[derive(Debug, Clone)]
pub struct FeedRow {
    pub target: FeedTarget,
    pub feed: Feed,
    pub retry_at: u64,
    pub attempts: u32,
}
