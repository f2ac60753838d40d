//! Rate limits, global rather than per isolate: every counter lives in a Durable Object named
//! after what it limits (a token, or a client address), so all of the Worker's isolates share
//! it. Fixed one-minute windows; a refused request learns when to come back.

use std::cell::Cell;

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::edge::http::{now_ms, Failure, Handled};

pub const WINDOW_MS: u64 = 60_000;

/// What a window allows, and what is left: the pure part, tested natively.
pub fn admit(window_start: u64, count: u32, now: u64, limit: u32) -> (u64, u32, Verdict) {
    let current = now - now % WINDOW_MS;
    let count = if window_start == current { count } else { 0 };
    if count >= limit {
        let retry_after_secs = (current + WINDOW_MS - now).div_ceil(1000).max(1);
        (current, count, Verdict::Refused { retry_after_secs })
    } else {
        (current, count + 1, Verdict::Admitted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Admitted,
    Refused { retry_after_secs: u64 },
}

#[durable_object]
pub struct RateLimiter {
    window: Cell<u64>,
    count: Cell<u32>,
}

impl DurableObject for RateLimiter {
    fn new(_state: State, _env: Env) -> Self {
        Self {
            window: Cell::new(0),
            count: Cell::new(0),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let limit = req
            .url()?
            .query_pairs()
            .find(|(k, _)| k == "limit")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(u32::MAX);
        let (window, count, verdict) = admit(self.window.get(), self.count.get(), now_ms(), limit);
        self.window.set(window);
        self.count.set(count);
        // The verdict is the status; a refusal says when to come back, as HTTP does.
        match verdict {
            Verdict::Admitted => Ok(Response::empty()?.with_status(204)),
            Verdict::Refused { retry_after_secs } => {
                let resp = Response::empty()?.with_status(429);
                let headers = resp.headers().clone();
                headers.set("retry-after", &retry_after_secs.to_string())?;
                Ok(resp.with_headers(headers))
            }
        }
    }
}

/// Counts one request against `bucket`, and refuses it when the bucket is full.
pub async fn check(env: &Env, bucket: &str, limit: u32) -> Handled<()> {
    let stub = env
        .durable_object("RATE_LIMITER")?
        .id_from_name(bucket)?
        .get_stub()?;
    let resp = stub
        .fetch_with_str(&format!("https://limiter/hit?limit={limit}"))
        .await?;
    if resp.status_code() != 429 {
        return Ok(());
    }
    let retry_after_secs: u64 = resp
        .headers()
        .get("retry-after")?
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Err(Failure::Limited { retry_after_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_fill_refuse_and_reset() {
        let t0 = 10 * WINDOW_MS + 500;
        let (w, c, v) = admit(0, 0, t0, 2);
        assert_eq!(v, Verdict::Admitted);
        let (w, c, v) = admit(w, c, t0 + 1, 2);
        assert_eq!(v, Verdict::Admitted);
        let (w, c, v) = admit(w, c, t0 + 2, 2);
        assert_eq!(
            v,
            Verdict::Refused {
                retry_after_secs: 60
            }
        );
        let (_, c2, v) = admit(w, c, t0 + WINDOW_MS, 2);
        assert_eq!(
            (v, c2),
            (Verdict::Admitted, 1),
            "a new window starts afresh"
        );
    }
}
