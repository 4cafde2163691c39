//! Wallet top-ups through a gateway plugin: `POST /api/wallet/topup-intent`
//! opens a `topup` intent, `POST /api/payment/verify-topup` confirms it after
//! the user comes back, and a paid top-up is credited to the wallet with
//! its points ([`credit_topup`]), once, whoever learns of it first.
//!
//! A gateway that is down or slow never loses a payment: the request fails
//! with 502/504, the intent stays pending, and the background check
//! ([`super::intent_checks`]) asks again with backoff.

use std::collections::BTreeMap;

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use powerbank_plugin_runtime::types::{PointsEvent, TopUpEvent};
use rusqlite::{OptionalExtension, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use super::{
    gateway_errors::gateway_failure,
    idempotency,
    idempotency::{remember_once, replayed},
    intents::{
        Credited, IntentOut, IntentPurpose, IntentStatus, PaidIntent, Settled, ask_gateway, callback_params,
        check_return_url, claim_paid_intent, find_intent, open_at_gateway, record_failure, settle, store_intent,
        user_intent,
    },
    wallet,
};
use crate::{
    core::{
        ApiError, ApiJson, AuthUser,
        error::ErrorBody,
        jobs::{self, NewJob},
        money::{PositivePaisa, format_npr},
        now_ts,
    },
    ledger::{self, TransactionKind, WalletKind},
    notifications::notify,
    payments::settings::{MAX_TOPUP_PAISA, MIN_TOPUP_PAISA},
    points::{self, PlannedAward},
    promotions::campaigns::apply as campaign_offers,
    state::AppState,
};

/// Job: grants a credited top-up's points when the points plugin could not be
/// asked at crediting time.
pub const TOPUP_POINTS_JOB: &str = "payments.topup_points";

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TopupIntentIn {
    /// In paisa, within the top-up minimum and maximum (settings; by default
    /// NPR 10 to NPR 100,000).
    pub amount_paisa: PositivePaisa,
    /// A gateway from `GET /api/payment/methods`: `khalti`, `esewa`, `stripe`.
    pub gateway: String,
    /// Where the gateway sends the user back (the app's deep link); the
    /// plugin's configured URL when absent.
    pub return_url: Option<String>,
}

/// Starts a wallet top-up at a gateway. With an `Idempotency-Key`, a repeated
/// request returns the first intent instead of opening another.
#[utoipa::path(
    post, path = "/api/wallet/topup-intent", tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    request_body = TopupIntentIn,
    responses(
        (status = 201, description = "Intent created: send the user to `payment_url`, post `form`, or confirm with `client_secret`", body = IntentOut),
        (status = 400, description = "Bad amount or unknown gateway", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "`invalid_amount` (outside 1 to 1,000,000,000 paisa), the gateway refused the request, or the Idempotency-Key was used for another request", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time", body = ErrorBody),
    )
)]
pub async fn topup_intent(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TopupIntentIn>,
) -> Result<(StatusCode, Json<IntentOut>), ApiError> {
    const ENDPOINT: &str = "wallet/topup-intent";
    let settings = state.settings.clone();
    let (min, max) =
        state.db.read(move |c| Ok((settings.int(c, MIN_TOPUP_PAISA)?, settings.int(c, MAX_TOPUP_PAISA)?))).await?;
    let amount = body.amount_paisa.get();
    if !(min..=max).contains(&amount) {
        return Err(ApiError::invalid_field("amount_paisa", format!("must be between {min} and {max} paisa")));
    }
    let gateways = state.plugins.gateway_names();
    if !gateways.contains(&body.gateway) {
        return Err(ApiError::invalid_field(
            "gateway",
            format!("`{}` is not an available gateway (available: {})", body.gateway, gateways.join(", ")),
        ));
    }
    check_return_url(body.return_url.as_deref())?;
    let key = idempotency::key_from(&headers)?;
    let hash = idempotency::request_hash(&body);
    if let Some((status, out)) = replayed::<IntentOut>(&state, user.id, &key, ENDPOINT, &hash).await? {
        return Ok((status, Json(out)));
    }

    let description = format!("powerbank wallet top-up NPR {}", crate::core::money::format_npr(amount));
    let opened = open_at_gateway(&state, user.id, &body.gateway, amount, description, body.return_url.clone()).await?;
    let (status, out) = state
        .db
        .write(move |tx| {
            // A twin request with the same key may have finished meanwhile.
            if let Some(k) = &key
                && let Some(stored) = idempotency::replay(tx, user.id, k, ENDPOINT, &hash)?
            {
                return Ok(stored);
            }
            let intent = store_intent(tx, user.id, IntentPurpose::Topup, &opened)?;
            remember_once(tx, user.id, key.as_deref(), ENDPOINT, &hash, StatusCode::CREATED, IntentOut::from(intent))
        })
        .await?;
    Ok((status, Json(out)))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyTopupIn {
    pub intent_id: String,
    /// Khalti: the `pidx` the user came back with.
    pub pidx: Option<String>,
    /// eSewa: the base64 `data` the user came back with.
    pub data: Option<String>,
    /// Any other parameters the gateway sent back with the user.
    pub params: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyOut {
    pub intent: IntentOut,
    /// Whether this request credited the wallet.
    pub credited: bool,
    /// `credited`, `already_completed`, `pending`, `failed`, `cancelled` or `expired`.
    pub outcome: String,
    /// The top-up payment, once there is one.
    pub transaction_reference: Option<String>,
    pub balance_paisa: i64,
    /// Points this top-up earned (when this request credited it).
    pub points_awarded: i64,
}

fn verify_out(
    tx: &Transaction<'_>,
    user_id: i64,
    intent_id: &str,
    settled: Option<&Settled>,
) -> Result<VerifyOut, ApiError> {
    let intent = find_intent(tx, intent_id)?.ok_or_else(|| ApiError::not_found("payment intent"))?;
    let reference: Option<String> = match intent.transaction_id {
        Some(id) => tx.query_row("SELECT reference FROM transactions WHERE id = ?1", [id], |r| r.get(0)).optional()?,
        None => None,
    };
    let balance = wallet::load_balance(tx, user_id)?.balance_paisa;
    let (credited, points) = match settled {
        Some(Settled::Credited(c)) => (true, c.points_awarded),
        _ => (false, 0),
    };
    let outcome = match (credited, intent.status) {
        (true, _) => "credited",
        (false, IntentStatus::Completed) => "already_completed",
        (false, other) => other.as_str(),
    }
    .to_string();
    Ok(VerifyOut {
        intent: IntentOut::from(intent),
        credited,
        outcome,
        transaction_reference: reference,
        balance_paisa: balance,
        points_awarded: points,
    })
}

/// Confirms a top-up with its gateway after the user comes back, and credits
/// the wallet if it was paid. Safe to call any number of times: an intent is
/// credited once. With an `Idempotency-Key`, a retry gets the first answer.
#[utoipa::path(
    post, path = "/api/payment/verify-topup", tag = "payments",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry return the first answer")),
    request_body = VerifyTopupIn,
    responses(
        (status = 200, description = "What the gateway says and what was done", body = VerifyOut),
        (status = 400, description = "The callback data's signature does not verify", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such intent of the caller's", body = ErrorBody),
        (status = 409, description = "The gateway reports another amount; nothing was credited", body = ErrorBody),
        (status = 422, description = "The gateway refused the verification", body = ErrorBody),
        (status = 502, description = "The gateway is unavailable; the intent stays pending", body = ErrorBody),
        (status = 504, description = "The gateway did not answer in time; the intent stays pending", body = ErrorBody),
    )
)]
pub async fn verify_topup(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    ApiJson(body): ApiJson<VerifyTopupIn>,
) -> Result<Json<VerifyOut>, ApiError> {
    const ENDPOINT: &str = "payment/verify-topup";
    let key = idempotency::key_from(&headers)?;
    let hash = idempotency::request_hash(&body);
    if let Some((_, out)) = replayed::<VerifyOut>(&state, user.id, &key, ENDPOINT, &hash).await? {
        return Ok(Json(out));
    }
    let intent = {
        let id = body.intent_id.clone();
        state.db.read(move |c| user_intent(c, user.id, &id)).await?
    };
    let respond = move |tx: &Transaction<'_>, settled: Option<&Settled>| -> Result<VerifyOut, ApiError> {
        let out = verify_out(tx, user.id, &body.intent_id, settled)?;
        Ok(remember_once(tx, user.id, key.as_deref(), ENDPOINT, &hash, StatusCode::OK, out)?.1)
    };
    // Only a credited intent needs no question: one that ended unpaid may
    // still have been paid at the last moment.
    if intent.status == IntentStatus::Completed {
        return Ok(Json(state.db.write(move |tx| respond(tx, None)).await?));
    }
    let callback = callback_params(body.pidx.clone(), body.data.clone(), body.params.clone());

    let verified = match ask_gateway(&state, &intent, callback).await {
        Ok(v) => v,
        Err(e) => {
            record_failure(&state, &intent, &e).await;
            return Err(e);
        }
    };
    let (settled, out) = settle(&state, &intent, &verified, move |tx, settled| {
        // A mismatch answers 409 below and stores no answer: a retry asks again.
        if matches!(settled, Settled::AmountMismatch) { Ok(None) } else { respond(tx, Some(settled)).map(Some) }
    })
    .await?;
    match (settled, out) {
        (_, Some(out)) => Ok(Json(out)),
        (_, None) => {
            Err(gateway_failure(&intent.gateway, powerbank_plugin_runtime::types::GatewayError::AmountMismatch))
        }
    }
}

/// Points a top-up earns, asked of the points plugin before the crediting
/// transaction. `None` when the plugin could not answer: the credit goes
/// ahead and a job grants the points later.
pub struct TopupPoints {
    pub awards: Vec<PlannedAward>,
    pub expiry_days: u32,
    /// A running campaign's points multiplier, as extra points.
    pub bonus: Option<CampaignBonus>,
}

/// Points a campaign adds to a top-up's usual award.
pub struct CampaignBonus {
    pub campaign_id: i64,
    pub extra_points: i64,
}

pub async fn plan_topup_points(state: &AppState, user_id: i64, amount_paisa: i64) -> Option<TopupPoints> {
    let event = PointsEvent::TopUp(TopUpEvent { user_id: user_id.to_string(), amount_paisa });
    let planned = async {
        let awards = points::plan_awards(state, event).await?;
        let expiry_days = points::expiry_days(state).await?;
        let usual: i64 = awards.iter().filter(|a| a.user_id == user_id).map(|a| a.points).sum();
        let bonus = match campaign_offers::best_topup_multiplier(state, user_id, amount_paisa).await {
            Some(b) if usual > 0 => Some(CampaignBonus {
                campaign_id: b.campaign_id,
                extra_points: campaign_offers::extra_points(usual, b.multiplier_bp),
            }),
            _ => None,
        };
        Ok::<_, ApiError>(TopupPoints { awards, expiry_days, bonus })
    };
    match planned.await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(user_id, error = %e, "top-up points not planned; a job will grant them");
            None
        }
    }
}

/// Credits a paid top-up intent inside the caller's transaction: intent
/// completed, a `topup` transaction, the wallet credit, the points and the
/// notification, all or nothing. `amount_paisa` is what the gateway says was
/// paid: anything but the intent's amount credits nothing. Returns `None`
/// when the intent was credited before or the amount differs.
pub fn credit_topup(
    tx: &Transaction<'_>,
    intent_id: &str,
    amount_paisa: i64,
    planned: Option<&TopupPoints>,
) -> Result<Option<Credited>, ApiError> {
    let now = now_ts();
    let Some(PaidIntent { user_id, gateway, transaction_id, reference, description }) =
        claim_paid_intent(tx, intent_id, amount_paisa, IntentPurpose::Topup, TransactionKind::Topup, "Wallet top-up")?
    else {
        return Ok(None);
    };
    let balance_paisa =
        ledger::wallet_change(tx, user_id, amount_paisa, WalletKind::Topup, Some(transaction_id), &description)?;
    let points_awarded = match planned {
        Some(p) => {
            points::grant(tx, &p.awards, p.expiry_days, now)?;
            let usual: i64 = p.awards.iter().filter(|a| a.user_id == user_id).map(|a| a.points).sum();
            usual + grant_campaign_bonus(tx, user_id, transaction_id, p, now)?
        }
        None => {
            jobs::enqueue(
                tx,
                NewJob::new(TOPUP_POINTS_JOB, json!({ "user_id": user_id, "amount_paisa": amount_paisa }))
                    .dedupe(format!("topup_points:{transaction_id}"))
                    .attempts(12),
            )?;
            0
        }
    };
    notify(
        tx,
        user_id,
        "topup_credited",
        json!({ "amount": format_npr(amount_paisa), "balance": format_npr(balance_paisa) }),
    )?;
    tracing::info!(intent_id, user_id, amount_paisa, gateway, transaction_id, "top-up credited");
    Ok(Some(Credited { transaction_id, reference, balance_paisa, points_awarded }))
}

/// Grants a campaign's extra points with its redemption, when the campaign
/// still runs and its limits hold; otherwise the top-up earns the usual
/// points only (the credit never fails for a bonus). Returns the extra points.
fn grant_campaign_bonus(
    tx: &Transaction<'_>,
    user_id: i64,
    transaction_id: i64,
    planned: &TopupPoints,
    now: i64,
) -> Result<i64, ApiError> {
    let Some(bonus) = planned.bonus.as_ref().filter(|b| b.extra_points > 0) else { return Ok(0) };
    let redemption = campaign_offers::Redemption {
        rental_id: None,
        rental_order_id: None,
        transaction_id: Some(transaction_id),
        discount_paisa: 0,
        points: bonus.extra_points,
    };
    match campaign_offers::redeem(tx, bonus.campaign_id, user_id, redemption) {
        Ok(()) => {}
        Err(e) if e.code == "campaign_limit_reached" || e.code == "campaign_ended" => return Ok(0),
        Err(e) => return Err(e),
    }
    let award = PlannedAward {
        user_id,
        points: bonus.extra_points,
        reason: "campaign bonus".to_string(),
        plugin_release: None,
    };
    points::grant(tx, &[award], planned.expiry_days, now)?;
    Ok(bonus.extra_points)
}

/// Grants a top-up's points later (see [`TOPUP_POINTS_JOB`]).
pub async fn topup_points_job(state: AppState, payload: Value) -> Result<(), String> {
    let user_id = payload["user_id"].as_i64().ok_or("payload without user_id")?;
    let amount_paisa = payload["amount_paisa"].as_i64().ok_or("payload without amount_paisa")?;
    let event = PointsEvent::TopUp(TopUpEvent { user_id: user_id.to_string(), amount_paisa });
    let awards = points::plan_awards(&state, event).await.map_err(|e| e.to_string())?;
    let days = points::expiry_days(&state).await.map_err(|e| e.to_string())?;
    state.db.write(move |tx| points::grant(tx, &awards, days, now_ts())).await.map_err(|e| e.to_string())
}
