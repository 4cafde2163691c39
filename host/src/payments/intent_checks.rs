//! The background check of pending intents: a gateway that is down or slow
//! never loses a payment. Each new intent is checked after a minute, then
//! with backoff up to every ten minutes, until it is paid or expires; an
//! intent past its expiry is asked about once more before it is expired.

use rusqlite::{OptionalExtension, Transaction};
use serde_json::{Value, json};

use super::{
    gateway_errors::is_unreachable,
    intents::{IntentStatus, ask_gateway, find_intent, finish_unpaid, record_failure, settle},
};
use crate::{
    core::{
        ApiError,
        jobs::{self, NewJob},
        now_ts,
    },
    state::AppState,
};

/// Job: asks the gateway about a pending intent; expires it once its time is up.
pub const VERIFY_JOB: &str = "payments.verify_intent";

/// First background check of a new intent; later checks back off to 10 minutes.
pub(super) const FIRST_CHECK_SECS: i64 = 60;
const MAX_CHECK_SECS: i64 = 600;

pub(super) fn schedule_check(tx: &Transaction<'_>, intent_id: &str, attempt: i64, at: i64) -> Result<(), ApiError> {
    jobs::enqueue(
        tx,
        NewJob::new(VERIFY_JOB, json!({ "intent_id": intent_id, "attempt": attempt }))
            .at(at)
            .attempts(12)
            .dedupe(format!("{VERIFY_JOB}:{intent_id}:{attempt}")),
    )?;
    Ok(())
}

fn check_delay(attempt: i64) -> i64 {
    let exp = u32::try_from(attempt.clamp(1, 10) - 1).unwrap_or(0);
    (FIRST_CHECK_SECS * 2_i64.pow(exp)).min(MAX_CHECK_SECS)
}

/// The background check of one pending intent (see [`VERIFY_JOB`]). An
/// unreachable gateway fails the job, so the job runner retries it with
/// backoff; otherwise the next check is scheduled until the intent expires.
/// An intent past its expiry is asked about once more before it is expired,
/// so a payment made in its last minute is still credited.
pub async fn verify_job(state: AppState, payload: Value) -> Result<(), String> {
    let intent_id = payload["intent_id"].as_str().ok_or("payload without intent_id")?.to_string();
    let attempt = payload["attempt"].as_i64().unwrap_or(1);
    let found = {
        let id = intent_id.clone();
        state.db.read(move |c| find_intent(c, &id)).await.map_err(|e| e.to_string())?
    };
    let Some(intent) = found else { return Ok(()) };
    if intent.status != IntentStatus::Pending {
        return Ok(());
    }
    match ask_gateway(&state, &intent, Vec::new()).await {
        Ok(verified) => {
            settle(&state, &intent, &verified, |_, _| Ok(())).await.map_err(|e| e.to_string())?;
        }
        Err(e) => {
            record_failure(&state, &intent, &e).await;
            if is_unreachable(&e) {
                return Err(e.to_string());
            }
        }
    }
    let now = now_ts();
    let purposes = state.payment_purposes.clone();
    state
        .db
        .write(move |tx| {
            let status: Option<(IntentStatus, i64)> = tx
                .query_row("SELECT status, expires_at FROM payment_intents WHERE id = ?1", [&intent_id], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((IntentStatus::Pending, expires_at)) = status else { return Ok(()) };
            if now < expires_at {
                let next = (now + check_delay(attempt + 1)).min(expires_at + 1);
                schedule_check(tx, &intent_id, attempt + 1, next)?;
            } else if finish_unpaid(
                tx,
                &purposes,
                &intent_id,
                IntentStatus::Expired,
                "not paid before the intent expired",
            )? {
                tracing::info!(intent_id, "payment intent expired unpaid");
            }
            Ok(())
        })
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn checks_back_off_to_ten_minutes() {
        let delays: Vec<i64> = (1..=7).map(super::check_delay).collect();
        assert_eq!(delays, vec![60, 120, 240, 480, 600, 600, 600]);
    }
}
