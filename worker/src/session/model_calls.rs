//! The runner's calls to its model, admitted here: the object holds the runner's token hash and
//! knows whether the session has ended, so one call to it decides a model call and counts it
//! against the session's rate (a read of D1 and a rate limiter's object, side by side, took
//! twice as long).

use agent_ops_protocol::session_calls::{ModelAdmission, ModelCall, ModelCaller};
use agent_ops_protocol::signing::token_matches;
use agent_ops_protocol::{ApiError, ErrorCode};
use worker::Result;

use super::{Persisted, SessionObject};
use crate::db::{sessions, Db};
use crate::edge::http::now_ms;
use crate::edge::rate_limit::{admit, Verdict};

impl SessionObject {
    /// Whether the runner's call may go to the model, and if so which model and whose keys.
    /// Only calls with the runner's token count: others fill no window of the session's.
    pub(super) async fn admit_model_call(
        &self,
        call: &ModelCall,
        persisted: &Persisted,
    ) -> Result<std::result::Result<ModelAdmission, ApiError>> {
        if !token_matches(&call.token, &persisted.runner_token_hash) {
            return Ok(Err(ApiError::new(
                ErrorCode::InvalidToken,
                "invalid runner token",
            )));
        }
        if persisted.lifecycle.status().is_terminal() {
            return Ok(Err(ApiError::session_terminated()));
        }
        let (start, count) = self.model_window.get();
        let (start, count, verdict) = admit(start, count, now_ms(), call.per_minute);
        self.model_window.set((start, count));
        if let Verdict::Refused { retry_after_secs } = verdict {
            return Ok(Ok(ModelAdmission::Limited { retry_after_secs }));
        }
        let caller = match &persisted.model {
            Some(caller) => caller.clone(),
            None => self.model_caller_from_index(&persisted.session_id).await?,
        };
        Ok(Ok(ModelAdmission::Admitted(caller)))
    }

    /// A session begun before `Init` carried its model learns it from its row, once.
    async fn model_caller_from_index(&self, id: &str) -> Result<ModelCaller> {
        let row = sessions::by_id(&Db::of(&self.env)?, id)
            .await?
            .ok_or_else(|| worker::Error::RustError(format!("session {id} has no row")))?;
        let caller = ModelCaller {
            model: row.model,
            owner_id: row.owner_id,
        };
        self.update(|p| p.model = Some(caller.clone()))?;
        Ok(caller)
    }
}
