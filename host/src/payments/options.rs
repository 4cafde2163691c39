//! `GET /api/payment/methods` and `POST /api/payment/calculate-options`.
//!
//! Paying from the balance follows the seed's priority: points first, at the
//! points plugin's `points_to_paisa` rate, then the wallet.

use axum::{Json, extract::State};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    settings::{MAX_TOPUP_PAISA, MIN_TOPUP_PAISA},
    wallet,
};
use crate::{
    core::{ApiError, ApiJson, AuthUser, error::ErrorBody, money::PositivePaisa},
    state::AppState,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodOut {
    /// `wallet`, `points`, or a gateway plugin's name in plugins.toml.
    pub id: String,
    /// What people see; for a gateway, its plugin's `info` (or the
    /// `display_name` key of its config).
    pub name: String,
    /// For gateways: a square icon (an `https://` URL or a `data:` URI) from
    /// the plugin's `info` or its `icon_url` config key; null for the app's
    /// generic icon.
    pub icon_url: Option<String>,
    /// `balance` (wallet, points) or `gateway` (tops up the wallet).
    pub kind: String,
    /// For gateways: the top-up limits in paisa.
    pub min_amount_paisa: Option<i64>,
    pub max_amount_paisa: Option<i64>,
    pub currency: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodsOut {
    pub methods: Vec<PaymentMethodOut>,
}

/// Ways to pay: the wallet and points, and each gateway plugin that is
/// serving right now (a gateway whose plugin failed to load is not listed).
#[utoipa::path(
    get, path = "/api/payment/methods", tag = "payments",
    responses((status = 200, description = "Available payment methods", body = PaymentMethodsOut))
)]
pub async fn methods(State(state): State<AppState>) -> Result<Json<PaymentMethodsOut>, ApiError> {
    let settings = state.settings.clone();
    let (min, max) =
        state.db.read(move |c| Ok((settings.int(c, MIN_TOPUP_PAISA)?, settings.int(c, MAX_TOPUP_PAISA)?))).await?;
    let balance = |id: &str, name: &str| PaymentMethodOut {
        id: id.to_string(),
        name: name.to_string(),
        icon_url: None,
        kind: "balance".to_string(),
        min_amount_paisa: None,
        max_amount_paisa: None,
        currency: "NPR".to_string(),
    };
    let mut methods = vec![balance("wallet", "Wallet"), balance("points", "Points")];
    // A gateway reloaded away between the two looks is simply not listed.
    let gateways = state.plugins.gateway_names().into_iter().filter_map(|g| state.plugins.display_info(&g));
    methods.extend(gateways.map(|g| PaymentMethodOut {
        id: g.name,
        name: g.display_name,
        icon_url: g.icon_url,
        kind: "gateway".to_string(),
        min_amount_paisa: Some(min),
        max_amount_paisa: Some(max),
        currency: "NPR".to_string(),
    }));
    Ok(Json(PaymentMethodsOut { methods }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CalculateIn {
    /// What is to be paid, in paisa.
    pub amount_paisa: PositivePaisa,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOption {
    /// `points`, `wallet` or `wallet_points` (points first, then the wallet).
    pub method: String,
    pub feasible: bool,
    pub points_used: i64,
    pub points_value_paisa: i64,
    pub wallet_paisa: i64,
    /// What is missing for this option, in paisa (0 when feasible).
    pub shortfall_paisa: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CalculateOut {
    pub amount_paisa: i64,
    pub wallet_balance_paisa: i64,
    pub points_balance: i64,
    /// What all the user's points are worth, in paisa.
    pub points_value_paisa: i64,
    pub options: Vec<PaymentOption>,
    /// The first feasible option in the seed's priority (points, then points
    /// and wallet, then wallet); null when none is.
    pub recommended: Option<String>,
    /// How much to top up before any option works (0 when one does).
    pub topup_required_paisa: i64,
}

/// Points plus wallet, points first: the largest number of points worth no
/// more than `amount`, and the wallet for the rest.
pub(crate) async fn points_worth_at_most(state: &AppState, points: i64, amount: i64) -> Result<(i64, i64), ApiError> {
    let plugin = state.plugins.points();
    let all = plugin.points_to_paisa(points).await?;
    if all <= amount {
        return Ok((points, all));
    }
    // points_to_paisa only grows with points: bisect for the largest fit.
    let (mut lo, mut hi) = (0_i64, points);
    while lo < hi {
        let mid = lo + (hi - lo + 1) / 2;
        if plugin.points_to_paisa(mid).await? <= amount { lo = mid } else { hi = mid - 1 }
    }
    Ok((lo, plugin.points_to_paisa(lo).await?))
}

/// The fewest points worth at least `amount`, if the user has enough.
pub(crate) async fn points_covering(
    state: &AppState,
    points: i64,
    amount: i64,
) -> Result<Option<(i64, i64)>, ApiError> {
    let plugin = state.plugins.points();
    if plugin.points_to_paisa(points).await? < amount {
        return Ok(None);
    }
    let (mut lo, mut hi) = (0_i64, points);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if plugin.points_to_paisa(mid).await? >= amount { hi = mid } else { lo = mid + 1 }
    }
    Ok(Some((lo, plugin.points_to_paisa(lo).await?)))
}

/// How the caller could pay `amount_paisa` from points and the wallet, and
/// how much they would need to top up.
#[utoipa::path(
    post, path = "/api/payment/calculate-options", tag = "payments",
    security(("bearer" = [])),
    request_body = CalculateIn,
    responses(
        (status = 200, description = "Options with their feasibility", body = CalculateOut),
        (status = 400, description = "Not a number", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 422, description = "`invalid_amount`: outside 1 to 1,000,000,000 paisa", body = ErrorBody),
        (status = 502, description = "The points plugin failed", body = ErrorBody),
    )
)]
pub async fn calculate_options(
    State(state): State<AppState>,
    user: AuthUser,
    ApiJson(body): ApiJson<CalculateIn>,
) -> Result<Json<CalculateOut>, ApiError> {
    let amount = body.amount_paisa.get();
    let balance = state.db.read(move |c| wallet::load_balance(c, user.id)).await?;
    let (wallet, points) = (balance.balance_paisa, balance.points);
    let points_value = state.plugins.points().points_to_paisa(points).await?;

    let points_only = match points_covering(&state, points, amount).await? {
        Some((used, value)) => PaymentOption {
            method: "points".into(),
            feasible: true,
            points_used: used,
            points_value_paisa: value,
            wallet_paisa: 0,
            shortfall_paisa: 0,
        },
        None => PaymentOption {
            method: "points".into(),
            feasible: false,
            points_used: points,
            points_value_paisa: points_value,
            wallet_paisa: 0,
            shortfall_paisa: amount - points_value,
        },
    };
    let (used, value) = points_worth_at_most(&state, points, amount).await?;
    let rest = amount - value;
    let combined = PaymentOption {
        method: "wallet_points".into(),
        feasible: wallet >= rest,
        points_used: used,
        points_value_paisa: value,
        wallet_paisa: rest,
        shortfall_paisa: (rest - wallet).max(0),
    };
    let wallet_only = PaymentOption {
        method: "wallet".into(),
        feasible: wallet >= amount,
        points_used: 0,
        points_value_paisa: 0,
        wallet_paisa: amount,
        shortfall_paisa: (amount - wallet).max(0),
    };
    let topup_required = combined.shortfall_paisa;
    let options = vec![points_only, combined, wallet_only];
    let recommended = options.iter().find(|o| o.feasible).map(|o| o.method.clone());
    Ok(Json(CalculateOut {
        amount_paisa: amount,
        wallet_balance_paisa: wallet,
        points_balance: points,
        points_value_paisa: points_value,
        options,
        recommended,
        topup_required_paisa: topup_required,
    }))
}
