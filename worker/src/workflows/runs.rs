//! A workflow's runs. Each is made once (its idempotency key is unique per workflow), with its
//! templates rendered then; admitted by the workflow's policy when it is its turn; started as a
//! session of the workflow's owner, which the run then follows; and ended by that session's
//! first turn. Whoever makes, claims or ends a run, one conditional write decides it, so
//! deliveries, ticks and sweeps that race start nothing twice.

use agent_ops_protocol::api::{AuditAction, CreateSession, ExecutionStatus, TriggerKind};
use agent_ops_protocol::feed::{Feed, FeedTarget, Post};
use agent_ops_protocol::session_calls::Follow;
use agent_ops_protocol::workflows::template::{self, Context};
use agent_ops_protocol::workflows::{admit, pause_reason, Admission};
use agent_ops_protocol::TurnOutcome;
use serde_json::{Map, Value};
use worker::Env;

use crate::api::{audit, sessions as sessions_api};
use crate::db::workflow_executions::{self as executions, ExecutionRow, NewExecution};
use crate::db::workflows::{self, WorkflowRow};
use crate::db::{users, Db};
use crate::edge::auth::acting_principal;
use crate::edge::http::{now_ms, random_id, Handled};
use crate::integrations::slack::people::sentence;
use crate::session;

/// What started a run, and what its templates may read.
pub struct Start<'a> {
    pub trigger_id: Option<&'a str>,
    pub kind: TriggerKind,
    /// The delivery's own name for itself; none: it is new.
    pub key: Option<String>,
    pub payload: Value,
    pub headers: Map<String, Value>,
    pub inputs: Map<String, Value>,
    pub scheduled_for: Option<u64>,
    pub catch_up: bool,
    /// Why it is recorded without running (a filter it fails).
    pub skipped: Option<String>,
}

/// Makes the run `start` asks for, unless its key made one before: the run, and whether this
/// call made it.
pub async fn make(
    db: &Db,
    wf: &WorkflowRow,
    start: Start<'_>,
    now: u64,
) -> Handled<(ExecutionRow, bool)> {
    let id = random_id();
    let key = start.key.unwrap_or_else(|| format!("new:{id}"));
    let t = wf.template();
    let context = Context {
        workflow_id: &wf.id,
        workflow_name: &wf.name,
        trigger_id: start.trigger_id,
        trigger_kind: start.kind.as_str(),
        payload: &start.payload,
        headers: start.headers,
        inputs: &start.inputs,
        now_ms: now,
        scheduled_for: start.scheduled_for,
    }
    .to_value();
    let rendered = || -> Result<(String, Option<String>), String> {
        let prompt = template::render(&t.prompt, &context)?;
        let title = t
            .title
            .as_deref()
            .map(|s| template::render(s, &context))
            .transpose()?;
        Ok((template::prompt(&prompt, &start.payload), title))
    };
    let (status, reason, prompt, title) = match start.skipped {
        Some(why) => (ExecutionStatus::Skipped, Some(why), None, None),
        None => match rendered() {
            Ok((prompt, title)) => (ExecutionStatus::Queued, None, Some(prompt), title),
            Err(why) => (ExecutionStatus::Failed, Some(why), None, None),
        },
    };
    let new = NewExecution {
        id: &id,
        workflow_id: &wf.id,
        trigger_id: start.trigger_id,
        trigger_kind: start.kind,
        key: &key,
        status,
        reason: reason.as_deref(),
        catch_up: start.catch_up,
        scheduled_for: start.scheduled_for,
        prompt: prompt.as_deref(),
        title: title.as_deref(),
        now,
    };
    let (row, made) = executions::insert_once(db, &new).await?;
    if made && status == ExecutionStatus::Failed {
        count_outcome(db, wf, true, now).await?;
    }
    Ok((row, made))
}

/// Moves a queued run on: starts it when its workflow's policy lets it, skips it when the
/// policy says so, or leaves it queued behind the one running.
pub async fn advance(env: &Env, run: &ExecutionRow) -> Handled<()> {
    let db = Db::of(env)?;
    let now = now_ms();
    let Some(wf) = workflows::by_id(&db, &run.workflow_id).await? else {
        return Ok(());
    };
    if !wf.enabled {
        let why = "the workflow was disabled before this run started";
        executions::finish(&db, &run.id, ExecutionStatus::Skipped, Some(why), now).await?;
        return Ok(());
    }
    let load = executions::load(&db, &wf.id, now).await?;
    match admit(
        wf.concurrency,
        wf.max_runs_per_hour,
        load.running,
        load.last_hour,
    ) {
        Admission::Wait => Ok(()),
        Admission::Skip(why) => {
            executions::finish(&db, &run.id, ExecutionStatus::Skipped, Some(&why), now).await?;
            Ok(())
        }
        // Lost to another claim, or to a run that started meanwhile: that one moves the
        // queue on when it ends, and the scheduler's sweep retries what is left.
        Admission::Start
            if !executions::claim(&db, &run.id, &wf.id, wf.concurrency, now).await? =>
        {
            Ok(())
        }
        Admission::Start => start(env, &db, &wf, run).await,
    }
}

/// The claimed run's session, started as the workflow's owner, which the run then follows.
async fn start(env: &Env, db: &Db, wf: &WorkflowRow, run: &ExecutionRow) -> Handled<()> {
    let Some(owner) = users::by_id(db, &wf.owner_id).await? else {
        return fail(env, db, run, "the workflow's owner no longer exists").await;
    };
    let principal = acting_principal(
        owner.id,
        owner.login,
        owner.role,
        &format!("workflow:{}", wf.id),
    );
    let t = wf.template();
    let new = CreateSession {
        repo: t.repo,
        branch: t.branch,
        prompt: run.prompt.clone(),
        agent: t.agent,
        model: t.model,
        title: run.title.clone().or_else(|| Some(wf.name.clone())),
    };
    let info = match sessions_api::start_new(env, &principal, new).await {
        Ok(info) => info,
        Err(failure) => return fail(env, db, run, &sentence(failure)).await,
    };
    executions::set_session(db, &run.id, &info.id).await?;
    let detail = format!("workflow {} ({}), run {}", wf.id, wf.name, run.id);
    audit::record(
        db,
        &wf.owner_id,
        AuditAction::WorkflowRan,
        &info.id,
        &detail,
    )
    .await?;
    let target = FeedTarget::Execution {
        execution_id: run.id.clone(),
    };
    session::call(env, &info.id, Follow { target }).await?;
    Ok(())
}

async fn fail(env: &Env, db: &Db, run: &ExecutionRow, why: &str) -> Handled<()> {
    ended(env, db, &run.id, ExecutionStatus::Failed, Some(why)).await
}

/// Ends run `id` (once: a second end changes nothing), counts it towards its workflow's pause,
/// and starts the next queued run.
pub async fn ended(
    env: &Env,
    db: &Db,
    id: &str,
    status: ExecutionStatus,
    reason: Option<&str>,
) -> Handled<()> {
    let now = now_ms();
    if !executions::finish(db, id, status, reason, now).await? {
        return Ok(());
    }
    let Some(run) = executions::by_id(db, id).await? else {
        return Ok(());
    };
    let Some(wf) = workflows::by_id(db, &run.workflow_id).await? else {
        return Ok(());
    };
    if status != ExecutionStatus::Cancelled {
        count_outcome(db, &wf, status == ExecutionStatus::Failed, now).await?;
    }
    if let Some(next) = executions::first_queued(db, &wf.id).await? {
        Box::pin(advance(env, &next)).await?;
    }
    Ok(())
}

async fn count_outcome(db: &Db, wf: &WorkflowRow, failed: bool, now: u64) -> Handled<()> {
    let failures = workflows::record_outcome(db, &wf.id, failed, now).await?;
    if let Some(why) = pause_reason(failures, wf.pause_after_failures) {
        workflows::pause(db, &wf.id, &why, now).await?;
    }
    Ok(())
}

/// What the run's feed owes it: the end of the session's first turn, or of the session.
pub async fn deliver(env: &Env, execution_id: &str, feed: &mut Feed) -> Handled<()> {
    let Some(post) = feed.outbox.front().cloned() else {
        return Ok(());
    };
    let (status, reason) = match post {
        Post::TurnEnded {
            outcome: TurnOutcome::Completed,
            ..
        } => (ExecutionStatus::Succeeded, None),
        Post::TurnEnded {
            outcome: TurnOutcome::Interrupted,
            ..
        } => (
            ExecutionStatus::Cancelled,
            Some("the turn was stopped".to_owned()),
        ),
        Post::TurnEnded { reason, .. } => (
            ExecutionStatus::Failed,
            Some(reason.unwrap_or_else(|| "the agent's turn failed".into())),
        ),
        Post::SessionEnded => (
            ExecutionStatus::Failed,
            Some("the session ended before its first turn did".to_owned()),
        ),
    };
    ended(env, &Db::of(env)?, execution_id, status, reason.as_deref()).await?;
    // Only the first end counts; what the session does after is its own.
    feed.outbox.clear();
    Ok(())
}
