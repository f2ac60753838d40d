//! The session's feeds: channels (a Slack thread) that follow its log with cursors of their own
//! (see `agent_ops_protocol::feed`). Delivery runs from the object's alarm, never on the path
//! of an event: a slow or failing channel delays only itself. After each post the feed is saved,
//! so a restart resumes with the next one.

use agent_ops_protocol::feed::{Feed, FeedTarget};
use agent_ops_protocol::SessionEvent;
use worker::Result;

use super::store::FeedRow;
use super::SessionObject;
use crate::edge::http::now_ms;
use crate::integrations::slack::thread::{self, Delivered};
use crate::integrations::slack::web::Refused;
use crate::workflows::runs;

/// Events a feed folds per read of the log.
const PAGE: usize = 500;
/// How long after an event a feed looks at it: events that come together are posted together.
const SETTLE_MS: u64 = 300;
/// The longest wait after repeated failures.
const MAX_BACKOFF_MS: u64 = 60_000;

impl SessionObject {
    pub(super) async fn follow(&self, target: FeedTarget) -> Result<()> {
        if self.store()?.add_feed(&target)? {
            self.has_feeds.set(Some(true));
            // It has seen none of the log yet.
            self.unfed.set(true);
            self.wake_feeds().await?;
        }
        Ok(())
    }

    /// What the running turn is doing, by the feed that has seen most of it.
    pub(super) fn activity(&self) -> Result<Option<String>> {
        let rows = self.store()?.feeds()?;
        let freshest = rows.into_iter().max_by_key(|r| r.feed.cursor);
        Ok(freshest.and_then(|r| r.feed.turn.map(|t| t.activity)))
    }

    /// Events were persisted: feeds see them once they settle. One alarm for any number, and
    /// none when nothing new was persisted (an alarm of the lifecycle's wakes no feed).
    pub(super) async fn wake_feeds(&self) -> Result<()> {
        if self.feeds_armed.get() || !self.unfed.get() {
            return Ok(());
        }
        let has = match self.has_feeds.get() {
            Some(has) => has,
            None => {
                let has = !self.store()?.feeds()?.is_empty();
                self.has_feeds.set(Some(has));
                has
            }
        };
        if has {
            self.feeds_armed.set(true);
            self.arm_alarm(now_ms() + SETTLE_MS).await?;
        }
        Ok(())
    }

    /// Folds what each feed has not seen and delivers what it owes, then arms the alarm for
    /// the soonest feed that must come back.
    pub(super) async fn deliver_feeds(&self) -> Result<()> {
        self.feeds_armed.set(false);
        self.unfed.set(false);
        let mut next: Option<u64> = None;
        for mut row in self.store()?.feeds()? {
            let now = now_ms();
            if row.retry_at > now {
                next = Some(next.map_or(row.retry_at, |n| n.min(row.retry_at)));
                continue;
            }
            self.fold_feed(&mut row.feed)?;
            let store = self.store()?;
            let (target, retry_at, attempts) = (row.target.clone(), row.retry_at, row.attempts);
            let save = |feed: &Feed| {
                store.save_feed(&FeedRow {
                    target: target.clone(),
                    feed: feed.clone(),
                    retry_at,
                    attempts,
                })
            };
            let outcome = match &row.target {
                FeedTarget::SlackThread { .. } => {
                    thread::deliver(&self.env, &row.target, &mut row.feed, now, save).await
                }
                FeedTarget::Execution { execution_id } => {
                    runs::deliver(&self.env, execution_id, &mut row.feed)
                        .await
                        .map(|()| Delivered::All)
                        .map_err(|e| Refused::Failed(format!("{e:?}")))
                }
            };
            let again = match outcome {
                Ok(Delivered::All) => {
                    row.attempts = 0;
                    None
                }
                Ok(Delivered::WaitUntil(at)) => {
                    row.attempts = 0;
                    Some(at)
                }
                Err(refused) => {
                    let wait = match refused {
                        Refused::RateLimited { retry_after_secs } => retry_after_secs * 1000,
                        Refused::Failed(ref why) => {
                            worker::console_error!("feed {:?}: {why}", row.target);
                            (1000 << row.attempts.min(6)).min(MAX_BACKOFF_MS)
                        }
                    };
                    row.attempts += 1;
                    row.retry_at = now_ms() + wait;
                    Some(row.retry_at)
                }
            };
            self.store()?.save_feed(&row)?;
            if let Some(at) = again {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if let Some(at) = next {
            self.feeds_armed.set(true);
            self.arm_alarm(at).await?;
        }
        Ok(())
    }

    /// Folds the events after the feed's cursor, all of them, in order.
    fn fold_feed(&self, feed: &mut Feed) -> Result<()> {
        loop {
            let (events, count) = self.store()?.events_after(feed.cursor, PAGE)?;
            if count == 0 {
                return Ok(());
            }
            let before = feed.cursor;
            let page: Vec<SessionEvent> = serde_json::from_str(&format!("[{events}]"))?;
            for event in &page {
                feed.fold(event);
            }
            if feed.cursor == before {
                return Ok(());
            }
        }
    }

    /// Wakes the object at `at_ms`, or sooner if it is already due to wake sooner: the
    /// lifecycle's deadlines and the feeds share the one alarm, and each re-arms what it still
    /// needs when it runs.
    pub(super) async fn arm_alarm(&self, at_ms: u64) -> Result<()> {
        let storage = self.state.storage();
        let now = now_ms();
        if let Some(current) = storage.get_alarm().await? {
            let current = current.max(0) as u64;
            if current <= at_ms && current + 1000 > now {
                return Ok(());
            }
        }
        // An absolute time: a bare integer would be read as an offset from now.
        let date = worker::js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
        storage.set_alarm(worker::ScheduledTime::new(date)).await
    }
}
