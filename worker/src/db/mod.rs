//! Every D1 query, one module per table, each named after what it does. Only this module talks
//! to D1: handlers call these functions and get typed rows back.

pub mod api_keys;
pub mod audit;
pub mod credentials;
pub mod invites;
pub mod login_sessions;
pub mod members;
pub mod oauth_states;
pub mod sessions;
pub mod settings;
pub mod share_links;
pub mod slack;
pub mod users;
pub mod workflow_executions;
pub mod workflow_triggers;
pub mod workflows;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Env, Result};

/// The index database, for one request.
pub struct Db(D1Database);

impl Db {
    pub fn of(env: &Env) -> Result<Db> {
        Ok(Db(env.d1("DB")?))
    }

    fn statement(&self, sql: &str, params: &[JsValue]) -> Result<D1PreparedStatement> {
        self.0.prepare(sql).bind(params)
    }

    async fn first<T: DeserializeOwned>(&self, sql: &str, params: &[JsValue]) -> Result<Option<T>> {
        self.statement(sql, params)?.first(None).await
    }

    async fn all<T: DeserializeOwned>(&self, sql: &str, params: &[JsValue]) -> Result<Vec<T>> {
        Ok(self.all_read(sql, params).await?.rows)
    }

    /// The rows, and how many rows D1 read to find them (what a scan costs).
    async fn all_read<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: &[JsValue],
    ) -> Result<Read<T>> {
        let result = self.statement(sql, params)?.all().await?;
        let rows_read = result.meta()?.and_then(|m| m.rows_read).unwrap_or(0) as u64;
        Ok(Read {
            rows: result.results()?,
            rows_read,
        })
    }

    /// Runs writes as one transaction: all of them land, or none does.
    async fn batch(&self, writes: &[(&str, Vec<JsValue>)]) -> Result<()> {
        let statements = writes
            .iter()
            .map(|(sql, params)| self.statement(sql, params))
            .collect::<Result<Vec<_>>>()?;
        self.0.batch(statements).await?;
        Ok(())
    }

    /// Runs a write; whether it changed any row is how single-use and revocation checks tell a
    /// claim that won from one that found nothing to claim.
    async fn write(&self, sql: &str, params: &[JsValue]) -> Result<bool> {
        let result = self.statement(sql, params)?.run().await?;
        Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
    }
}

/// A query's rows, with what finding them cost.
pub struct Read<T> {
    pub rows: Vec<T>,
    pub rows_read: u64,
}

fn text(s: &str) -> JsValue {
    JsValue::from_str(s)
}

fn opt_text(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from_str)
}

/// D1 numbers are JavaScript numbers: exact up to 2^53, far past any time in milliseconds.
fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn opt_num(n: Option<u64>) -> JsValue {
    n.map_or(JsValue::NULL, num)
}

/// A column holding JSON text (a list of scopes, of panels), read as its type.
fn json_text<'de, D: Deserializer<'de>, T: DeserializeOwned + Default>(
    d: D,
) -> std::result::Result<T, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    match text {
        Some(t) => serde_json::from_str(&t).map_err(serde::de::Error::custom),
        None => Ok(T::default()),
    }
}

/// An INTEGER column holding 0 or 1, read as a bool (SQLite has no booleans).
fn flag<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(f64::deserialize(d)? != 0.0)
}
