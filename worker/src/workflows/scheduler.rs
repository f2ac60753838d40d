//! The scheduler, run every minute: by the Worker's cron trigger on Cloudflare, at the time the
//! runtime says, or through `POST /api/admin/scheduler/tick` where there is no such trigger
//! (standalone workerd, `make dev`; tests give it explicit times). It reads only
//! the schedules that are due (an index on their next run), makes each one's run for the
//! minute it was due (the run's key is that minute, so a second handler, or a racing isolate,
//! makes nothing), then moves the schedule on past this minute: a tick missed while the
//! platform was down runs once, late, recorded as a catch-up. It also sweeps runs whose start
//! was lost (the isolate stopped between the answer and the start).

use agent_ops_protocol::api::{ExecutionStatus, SchedulerTicked, TriggerKind};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::workflows::schedule::{tick as tick_of, Tick, MINUTE_MS};
use agent_ops_protocol::{ApiError, ErrorCode};
use serde_json::{Map, Value};
use worker::{Env, Request};

use super::runs::{self, Start};
use super::triggers::schedule_of;
use crate::db::workflow_executions::{self as executions, ExecutionRow};
use crate::db::workflow_triggers::{self, TriggerRow};
use crate::db::{workflows, Db};
use crate::edge::config::is_development;
use crate::edge::http::{answer, body, now_ms, Handled};

/// Schedules fired per tick at most; the rest are due still, and fire in the next.
const PER_TICK: u64 = 500;
/// A run queued this long ago, not started, was lost.
const STRANDED_MS: u64 = 2 * MINUTE_MS;

pub async fn tick(env: &Env, at_ms: u64) -> Handled<SchedulerTicked> {
    let db = Db::of(env)?;
    let minute = at_ms - at_ms % MINUTE_MS;
    let due = workflow_triggers::due(&db, minute + MINUTE_MS - 1, PER_TICK).await?;
    let fired = futures::future::join_all(due.rows.iter().map(|t| fire(env, &db, t, at_ms))).await;
    let mut ticked = SchedulerTicked {
        rows_read: due.rows_read,
        ..SchedulerTicked::default()
    };
    for (t, result) in due.rows.iter().zip(fired) {
        match result {
            Ok(made) => ticked.fired += u32::from(made),
            Err(e) => worker::console_error!("schedule {}: {e:?}", t.id),
        }
    }
    // Stranded is judged by the clock, not the tick's time (which tests set to other days).
    let stranded = executions::stranded(&db, now_ms().saturating_sub(STRANDED_MS), 50).await?;
    ticked.rows_read += stranded.rows_read;
    ticked.swept = sweep(env, &db, &stranded.rows).await?;
    Ok(ticked)
}

/// `POST /api/admin/scheduler/tick`.
pub async fn tick_now(mut req: Request, env: &Env) -> Handled {
    let asked = body::<endpoint::SchedulerTick>(&mut req, 1024).await?;
    if asked.at_ms.is_some() && !is_development(env) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "only a development deployment runs the scheduler at a time of your choosing",
        )
        .into());
    }
    let ticked = tick(env, asked.at_ms.unwrap_or_else(now_ms)).await?;
    answer::<endpoint::SchedulerTick>(&ticked)
}

/// Whether this call made the trigger's run.
async fn fire(env: &Env, db: &Db, trigger: &TriggerRow, at_ms: u64) -> Handled<bool> {
    let (Some(due), Some(schedule)) = (
        trigger.next_run_at,
        trigger.spec.as_ref().and_then(schedule_of),
    ) else {
        return Ok(false);
    };
    let catch_up = match tick_of(due, at_ms) {
        Tick::NotDue => return Ok(false),
        Tick::OnTime => false,
        Tick::CatchUp => true,
    };
    let Some(wf) = workflows::by_id(db, &trigger.workflow_id).await? else {
        return Ok(false);
    };
    let start = Start {
        trigger_id: Some(&trigger.id),
        kind: TriggerKind::Schedule,
        key: Some(format!("schedule:{}:{due}", trigger.id)),
        payload: Value::Null,
        headers: Map::new(),
        inputs: Map::new(),
        scheduled_for: Some(due),
        catch_up,
        skipped: None,
    };
    let (run, made) = runs::make(db, &wf, start, now_ms()).await?;
    let minute = at_ms - at_ms % MINUTE_MS;
    let next = schedule.next_after(minute + MINUTE_MS - 1);
    workflow_triggers::advance(db, &trigger.id, due, next).await?;
    if made && run.status == ExecutionStatus::Queued {
        runs::advance(env, &run).await?;
    }
    Ok(made)
}

/// Runs left queued (or claimed without a session) by an isolate that stopped: each is moved
/// on again, or ended when it claimed and never started.
async fn sweep(env: &Env, db: &Db, stranded: &[ExecutionRow]) -> Handled<u32> {
    for run in stranded {
        match run.status {
            ExecutionStatus::Queued => runs::advance(env, run).await?,
            _ => {
                let why = "its session did not start";
                runs::ended(env, db, &run.id, ExecutionStatus::Failed, Some(why)).await?
            }
        }
    }
    Ok(stranded.len() as u32)
}
