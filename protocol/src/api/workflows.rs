//! Workflows: saved ways of starting a session, each with its triggers (a signed webhook, a
//! schedule) and the history of what they ran. The pure rules behind these (signatures,
//! filters, templates, schedules, admission) are `crate::workflows`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AgentKind;

/// What a workflow's sessions are started with. `prompt` and `title` are templates (see
/// `crate::workflows::template`); the rest is fixed when the workflow is saved, so nothing a
/// caller sends can choose a repository, an agent or a model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionTemplate {
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 65536)))]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 512)))]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// What a trigger does while an execution of the same workflow is running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    /// Start it anyway.
    Allow,
    /// Record it as skipped.
    #[default]
    Skip,
    /// Start it when the running one ends, in the order they came.
    Queue,
}

impl Concurrency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Skip => "skip",
            Self::Queue => "queue",
        }
    }
}

/// `POST /api/workflows` and `PUT /api/workflows/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkflowSpec {
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 200)))]
    pub name: String,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub template: SessionTemplate,
    #[serde(default)]
    pub concurrency: Concurrency,
    /// At most this many executions start per hour (none: no limit of its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 10000)))]
    pub max_runs_per_hour: Option<u32>,
    /// After this many failures in a row the workflow pauses itself, saying why.
    #[serde(default = "three")]
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 100)))]
    pub pause_after_failures: u32,
}

fn yes() -> bool {
    true
}

fn three() -> u32 {
    3
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Workflow {
    pub id: String,
    /// As saved (not flattened: a saved spec refuses fields it does not know, and so would
    /// its schema).
    pub spec: WorkflowSpec,
    /// Why it paused itself, while it is paused.
    pub paused_reason: Option<String>,
    pub consecutive_failures: u32,
    pub created_at: u64,
    pub updated_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WorkflowList {
    pub workflows: Vec<Workflow>,
}

/// How a webhook's sender proves it is the one the trigger was set up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum WebhookScheme {
    /// `X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.
    HmacSha256,
    /// GitHub's `X-Hub-Signature-256`, with `X-GitHub-Event` and `X-GitHub-Delivery`.
    Github,
    /// Slack's v0 signature (`X-Slack-Signature`, `X-Slack-Request-Timestamp`).
    Slack,
    /// `Authorization: Bearer <API key>` of the workflow's owner, with `workflows:run`, for
    /// senders that cannot sign.
    Bearer,
}

impl WebhookScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Github => "github",
            Self::Slack => "slack",
            Self::Bearer => "bearer",
        }
    }
}

/// A test of the payload: the value at `pointer` (RFC 6901) equals `equals`, or is a string
/// or array that contains `contains`. Exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PayloadFilter {
    #[cfg_attr(feature = "schema", schemars(length(max = 512)))]
    pub pointer: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contains: Option<Value>,
}

/// Where a delivery's idempotency key comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "from", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdempotencySource {
    Header {
        #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 128)))]
        name: String,
    },
    Pointer {
        #[cfg_attr(feature = "schema", schemars(length(max = 512)))]
        pointer: String,
    },
}

/// `POST /api/workflows/{id}/triggers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TriggerSpec {
    Webhook {
        scheme: WebhookScheme,
        /// Every filter must hold, or the delivery is recorded as skipped.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        filters: Vec<PayloadFilter>,
        /// Defaults: `X-GitHub-Delivery` for `github`, the `Idempotency-Key` header otherwise
        /// (a delivery without one is taken as new).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        idempotency: Option<IdempotencySource>,
        /// Request headers the templates may read (lower case); no others reach them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        headers: Vec<String>,
    },
    Schedule {
        /// Five fields: minute, hour, day of month, month, day of week.
        #[cfg_attr(feature = "schema", schemars(length(min = 9, max = 200)))]
        cron: String,
        /// An IANA time zone (`Europe/London`); the expression is read in it.
        #[serde(default = "utc")]
        timezone: String,
    },
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    Webhook,
    Schedule,
    Manual,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Trigger {
    pub id: String,
    pub workflow_id: String,
    pub spec: TriggerSpec,
    /// Where a webhook is delivered.
    pub url: Option<String>,
    /// A schedule's next five times (ms since the epoch).
    pub next_runs: Vec<u64>,
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TriggerList {
    pub triggers: Vec<Trigger>,
}

/// A new trigger, with a signed webhook's secret: shown this once, sealed in the vault after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TriggerCreated {
    pub trigger: Trigger,
    pub secret: Option<String>,
}

/// `POST /api/workflows/{id}/run`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RunWorkflow {
    /// What the templates read as `inputs`.
    #[serde(default)]
    pub inputs: Map<String, Value>,
    /// The same key again starts nothing and answers the first execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(min = 1, max = 256)))]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One run of a workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Execution {
    pub id: String,
    pub workflow_id: String,
    pub trigger_id: Option<String>,
    pub trigger_kind: TriggerKind,
    pub status: ExecutionStatus,
    /// The session it started.
    pub session_id: Option<String>,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// A schedule's tick missed while the platform was down, run late (once).
    pub catch_up: bool,
    /// The minute a schedule's tick was for.
    pub scheduled_for: Option<u64>,
    pub created_at: u64,
    pub started_at: Option<u64>,
    pub finished_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecutionList {
    pub executions: Vec<Execution>,
}

/// What a webhook or a manual run is answered: `202` for a new execution, `200` for one the
/// same delivery made before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExecutionAccepted {
    pub execution_id: String,
    pub status: ExecutionStatus,
}

/// `POST /api/admin/scheduler/tick`: the scheduler's minute, run now (a deployment without
/// Cloudflare's cron trigger, such as standalone workerd, calls it from its own cron). Only a
/// development deployment takes an explicit time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SchedulerTick {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// What a tick did: the schedules it fired, the stranded runs it moved on, and the rows D1
/// read to find them (what a tick costs, however many schedules are stored).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SchedulerTicked {
    pub fired: u32,
    pub swept: u32,
    pub rows_read: u64,
}

/// `/api/admin/workflows/settings`: the deployment's rules for every workflow, which its
/// administrators set. A schedule is checked against them when it is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WorkflowSettings {
    /// The shortest interval between two runs of a schedule, in minutes.
    #[cfg_attr(feature = "schema", schemars(range(min = 1, max = 1440)))]
    pub min_interval_minutes: u32,
}

impl WorkflowSettings {
    pub const MAX_INTERVAL_MINUTES: u32 = 24 * 60;

    pub fn check(&self) -> Result<(), String> {
        if (1..=Self::MAX_INTERVAL_MINUTES).contains(&self.min_interval_minutes) {
            Ok(())
        } else {
            Err(format!(
                "min_interval_minutes is from 1 to {} (a day)",
                Self::MAX_INTERVAL_MINUTES
            ))
        }
    }
}

/// `POST /api/workflows/preview`: a template rendered against a sample, and a schedule's next
/// times, as the editor shows them before anything is saved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schemars(length(max = 65536)))]
    pub template: Option<String>,
    /// The sample payload the template is rendered against.
    #[serde(default)]
    pub payload: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Preview {
    /// The prompt as the agent would get it.
    pub rendered: Option<String>,
    /// Why the template or the schedule cannot be used.
    pub error: Option<String>,
    /// The variables a template may use.
    pub variables: Vec<String>,
    /// The schedule's next five times (ms since the epoch).
    pub next_runs: Vec<u64>,
}
