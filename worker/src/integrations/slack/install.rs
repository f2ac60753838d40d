//! Installing the app in a workspace (OAuth v2): an administrator starts it from Settings, Slack
//! sends the browser back with a code, which is traded for the workspace's bot token. The token
//! is sealed in the vault for that workspace; reinstalling replaces it, and uninstalling the app
//! (or revoking its tokens) forgets it. A one-workspace deployment may set `SLACK_BOT_TOKEN`
//! instead.

use agent_ops_protocol::api::{AuditAction, SlackChannels, SlackWorkspace, SlackWorkspaces};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::slack::wire::{OauthAccess, OauthGrant};
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

use crate::api::audit;
use crate::db::{credentials, slack, Db};
use crate::edge::auth::Principal;
use crate::edge::config::{secret, var};
use crate::edge::http::{answer, body, now_ms, redirect, Handled};
use crate::edge::oauth_state;
use crate::vault;

const NONCE_COOKIE: &str = "aops_slack_oauth";
const COOKIE_PATH: &str = "/slack/oauth";
/// Where a workspace's bot token is sealed.
pub const TOKEN_KIND: &str = "slack_bot_token";
/// What the bot may do: read mentions and its threads' messages, write in them, take the command.
const SCOPES: &str =
    "app_mentions:read,channels:history,groups:history,im:history,mpim:history,chat:write,commands";

pub fn token_owner(team: &str) -> String {
    format!("slack:{team}")
}

fn not_configured() -> ApiError {
    ApiError::new(
        ErrorCode::NotConfigured,
        "installing the Slack app needs SLACK_CLIENT_ID and SLACK_CLIENT_SECRET",
    )
}

fn callback_url(env: &Env) -> Handled<String> {
    Ok(format!(
        "{}/slack/oauth/callback",
        crate::edge::origins::app(env)?
    ))
}

/// `GET /slack/install`: to Slack's consent page, with a state bound to this browser.
pub async fn start(env: &Env, admin: &Principal) -> Handled {
    let client_id = var(env, "SLACK_CLIENT_ID").ok_or_else(not_configured)?;
    let (state, cookie) = oauth_state::begin(env, NONCE_COOKIE, COOKIE_PATH, Some(&admin.user_id))?;
    let base = var(env, "SLACK_OAUTH_URL").unwrap_or_else(|| "https://slack.com".into());
    let mut url = worker::Url::parse(&format!("{base}/oauth/v2/authorize"))?;
    url.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("scope", SCOPES)
        .append_pair("redirect_uri", &callback_url(env)?)
        .append_pair("state", &state);
    redirect(url.as_str(), &[cookie])
}

/// `GET /slack/oauth/callback`: the state verified, the code traded, the token sealed.
pub async fn callback(req: Request, env: &Env) -> Handled {
    let db = Db::of(env)?;
    let (code, claims) = oauth_state::verified_code(&req, env, &db, NONCE_COOKIE).await?;
    let installer = claims.by.unwrap_or_default();
    let grant = exchange(env, code).await?;
    let ring = vault::key_ring(env)?;
    let owner = token_owner(&grant.team.id);
    let sealed = vault::seal(&ring, &owner, TOKEN_KIND, &grant.access_token)?;
    credentials::upsert(&db, &sealed, now_ms()).await?;
    let workspace = slack::NewWorkspace {
        team_id: &grant.team.id,
        team_name: &grant.team.name,
        bot_user_id: &grant.bot_user_id,
        app_id: &grant.app_id,
        installed_by: &installer,
        now: now_ms(),
    };
    slack::upsert_workspace(&db, &workspace).await?;
    audit::record(
        &db,
        &installer,
        AuditAction::SlackInstalled,
        &grant.team.id,
        &grant.team.name,
    )
    .await?;
    redirect(
        "/settings",
        &[oauth_state::spent_cookie(env, NONCE_COOKIE, COOKIE_PATH)],
    )
}

async fn exchange(env: &Env, code: String) -> Handled<OauthGrant> {
    let access = OauthAccess {
        client_id: var(env, "SLACK_CLIENT_ID").ok_or_else(not_configured)?,
        client_secret: secret(env, "SLACK_CLIENT_SECRET").ok_or_else(not_configured)?,
        code,
        redirect_uri: callback_url(env)?,
    };
    let form = serde_urlencoded::to_string(&access)
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    let headers = Headers::new();
    headers.set("content-type", "application/x-www-form-urlencoded")?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(form.into()));
    let base = var(env, "SLACK_API_URL").unwrap_or_else(|| "https://slack.com".into());
    let req = Request::new_with_init(&format!("{base}/api/oauth.v2.access"), &init)?;
    let refused = |why: String| {
        ApiError::new(
            ErrorCode::ProviderError,
            format!("Slack refused the installation: {why}"),
        )
    };
    let mut resp = Fetch::Request(req)
        .send()
        .await
        .map_err(|e| refused(e.to_string()))?;
    let grant: OauthGrant = resp.json().await.map_err(|e| refused(e.to_string()))?;
    if !grant.ok || grant.access_token.is_empty() || grant.team.id.is_empty() {
        return Err(refused(grant.error.unwrap_or_else(|| "no token".into())).into());
    }
    Ok(grant)
}

/// The app was uninstalled from `team`, or its tokens revoked: forget them.
pub async fn forget(env: &Env, team: &str) -> Handled<()> {
    let db = Db::of(env)?;
    credentials::delete(&db, &token_owner(team), TOKEN_KIND).await?;
    if slack::forget_workspace(&db, team).await? {
        audit::record(&db, "slack", AuditAction::SlackUninstalled, team, "").await?;
    }
    Ok(())
}

/// `GET /api/slack/workspaces` (administrators).
pub async fn workspaces(env: &Env) -> Handled {
    let rows = slack::workspaces(&Db::of(env)?).await?;
    answer::<endpoint::SlackWorkspaces>(&SlackWorkspaces {
        workspaces: rows
            .into_iter()
            .map(|w| SlackWorkspace {
                team_id: w.team_id,
                team_name: w.team_name,
                bot_user_id: w.bot_user_id,
                installed_at: w.installed_at,
            })
            .collect(),
    })
}

/// `GET /api/slack/workspaces/{team}/channels`.
pub async fn channels(env: &Env, team: &str) -> Handled {
    let channels = slack::channels(&Db::of(env)?, team).await?;
    answer::<endpoint::SlackChannels>(&SlackChannels { channels })
}

/// `PUT /api/slack/workspaces/{team}/channels`: the list replaced at once.
pub async fn set_channels(mut req: Request, env: &Env, team: &str) -> Handled {
    let asked = body::<endpoint::SetSlackChannels>(&mut req, 64 * 1024).await?;
    if !asked.valid() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "channels are at most 500 Slack channel ids (capitals and digits)",
        )
        .into());
    }
    slack::set_channels(&Db::of(env)?, team, &asked.channels).await?;
    answer::<endpoint::SetSlackChannels>(&asked)
}
