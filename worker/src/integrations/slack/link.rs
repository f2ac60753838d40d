//! A Slack identity (`team:user`) acts as an account only once its person has linked it: the
//! app offers them a one-time link (10 minutes, once), which they open signed in to the web app.
//! Settings lists their links and can remove one.

use agent_ops_protocol::api::{AuditAction, SlackIdentities, SlackIdentity};
use agent_ops_protocol::routes::endpoint;
use agent_ops_protocol::signing::hash_token;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::{Env, Request};

use crate::api::audit;
use crate::db::{slack, Db};
use crate::edge::auth::Principal;
use crate::edge::config::var;
use crate::edge::http::{answer, body, no_content, now_ms, random_hex, Handled};

const LINK_TTL_MS: u64 = 10 * 60 * 1000;

/// A new one-time link for `team:slack_user`, and the sentence that offers it.
pub async fn offer(env: &Env, team: &str, slack_user: &str) -> Handled<String> {
    let token = random_hex(24);
    let db = Db::of(env)?;
    slack::insert_link_token(
        &db,
        &hash_token(&token),
        team,
        slack_user,
        now_ms() + LINK_TTL_MS,
    )
    .await?;
    let app = var(env, "PUBLIC_URL").unwrap_or_default();
    // In the fragment: browsers send it to no server, nor in a Referer.
    let url = format!("{}/link/slack#{token}", app.trim_end_matches('/'));
    Ok(format!(
        "To use Agent Ops from Slack, link your Slack identity to your account first: \
         <{url}|link it> (the link works once, for 10 minutes)."
    ))
}

/// `POST /api/slack/link`: binds the identity the token was made for to the signed-in caller.
pub async fn link(mut req: Request, env: &Env, user: &Principal) -> Handled {
    let asked = body::<endpoint::LinkSlack>(&mut req, 1024).await?;
    let db = Db::of(env)?;
    let now = now_ms();
    let Some(claimed) = slack::claim_link_token(&db, &hash_token(&asked.token), now).await? else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "this Slack link is unknown, used or expired; ask the app in Slack for a new one",
        )
        .into());
    };
    slack::link(
        &db,
        &claimed.team_id,
        &claimed.slack_user_id,
        &user.user_id,
        now,
    )
    .await?;
    let identity = format!("{}:{}", claimed.team_id, claimed.slack_user_id);
    audit::record(&db, &user.user_id, AuditAction::SlackLinked, &identity, "").await?;
    answer::<endpoint::LinkSlack>(&SlackIdentity {
        team_id: claimed.team_id,
        slack_user_id: claimed.slack_user_id,
        linked_at: now,
    })
}

pub async fn identities(env: &Env, user: &Principal) -> Handled {
    let rows = slack::identities_of(&Db::of(env)?, &user.user_id).await?;
    answer::<endpoint::SlackIdentities>(&SlackIdentities {
        configured: super::configured(env),
        identities: rows
            .into_iter()
            .map(|r| SlackIdentity {
                team_id: r.team_id,
                slack_user_id: r.slack_user_id,
                linked_at: r.linked_at,
            })
            .collect(),
    })
}

pub async fn unlink(env: &Env, user: &Principal, team: &str, slack_user: &str) -> Handled {
    let db = Db::of(env)?;
    if !slack::unlink(&db, &user.user_id, team, slack_user).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{team}:{slack_user} is not linked to your account"),
        )
        .into());
    }
    let identity = format!("{team}:{slack_user}");
    audit::record(
        &db,
        &user.user_id,
        AuditAction::SlackUnlinked,
        &identity,
        "",
    )
    .await?;
    no_content()
}
