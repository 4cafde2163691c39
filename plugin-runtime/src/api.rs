//! Typed calls per plugin kind, with the host's checks on what comes back.
//!
//! A plugin's answer is checked before the host uses it: money must not be
//! negative, a quote must add up, a discount must fit the amount, points go
//! only to users named in the event. A plugin that breaks these rules gets a
//! `MalformedResult` error instead of moving real money or points.

use crate::config::PluginKind;
use crate::error::{Failure, PluginError};
use crate::host::PluginHost;
use crate::types::*;

/// Calls to the active pricing plugin. Obtained from [`PluginHost::pricing`].
pub struct PricingPlugin<'a> {
    host: &'a PluginHost,
}

/// Calls to the active points-rules plugin.
pub struct PointsPlugin<'a> {
    host: &'a PluginHost,
}

/// Calls to the active promotions plugin.
pub struct PromotionsPlugin<'a> {
    host: &'a PluginHost,
}

/// Calls to one payment gateway plugin, by its name in plugins.toml.
pub struct GatewayPlugin<'a> {
    host: &'a PluginHost,
    name: String,
}

impl PluginHost {
    pub fn pricing(&self) -> PricingPlugin<'_> {
        PricingPlugin { host: self }
    }

    pub fn points(&self) -> PointsPlugin<'_> {
        PointsPlugin { host: self }
    }

    pub fn promotions(&self) -> PromotionsPlugin<'_> {
        PromotionsPlugin { host: self }
    }

    pub fn gateway(&self, name: &str) -> GatewayPlugin<'_> {
        GatewayPlugin { host: self, name: name.to_string() }
    }
}

fn malformed<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::MalformedResult(msg.into()))
}

fn check_quote(q: &Quote) -> Result<(), Failure> {
    if q.amount_paisa < 0 {
        return malformed(format!("negative amount {}", q.amount_paisa));
    }
    let sum = q.breakdown.iter().try_fold(0i64, |acc, l| acc.checked_add(l.amount_paisa));
    if sum != Some(q.amount_paisa) {
        return malformed(format!("breakdown does not add up to the amount {}", q.amount_paisa));
    }
    if q.due_minutes == 0 {
        return malformed("due duration of zero minutes");
    }
    Ok(())
}

fn check_paisa(amount: i64) -> Result<i64, Failure> {
    if amount < 0 {
        return malformed(format!("negative amount {amount}"));
    }
    Ok(amount)
}

fn event_users(event: &PointsEvent) -> Vec<&str> {
    match event {
        PointsEvent::Signup(e) => vec![&e.user_id],
        PointsEvent::Referral(e) => vec![&e.referrer_id, &e.referee_id],
        PointsEvent::TopUp(e) => vec![&e.user_id],
        PointsEvent::RentalCompleted(e) => vec![&e.user_id],
    }
}

fn check_awards(event: &PointsEvent, awards: &[Award]) -> Result<(), Failure> {
    let users = event_users(event);
    for a in awards {
        if a.points < 0 {
            return malformed(format!("negative award of {} points", a.points));
        }
        if !users.contains(&a.user_id.as_str()) {
            return malformed(format!("award to {} who is not part of the event", a.user_id));
        }
    }
    Ok(())
}

fn check_discount(amount: i64, d: &DiscountApplication) -> Result<(), Failure> {
    if d.discount_paisa < 0 || d.discount_paisa > amount {
        return malformed(format!("discount {} outside 0..={amount}", d.discount_paisa));
    }
    if d.final_amount_paisa != amount - d.discount_paisa {
        return malformed(format!(
            "final amount {} is not {amount} minus the discount {}",
            d.final_amount_paisa, d.discount_paisa
        ));
    }
    Ok(())
}

// Every plugin method has this shape: look up the plugin, take a call slot, run the
// body against a fresh instance in a fresh store.
macro_rules! plugin_call {
    (
        $(#[$doc:meta])*
        fn $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty,
        kind = $kind:expr, gateway = $gw:expr, op = $op:literal,
        |$store:ident, $loaded:ident| $body:block
    ) => {
        $(#[$doc])*
        pub async fn $name(&self, $($arg: $ty),*) -> Result<$ret, PluginError> {
            let name: Option<String> = $gw(self);
            self.host
                .call($kind, name.as_deref(), $op, move |$store, $loaded| Box::pin(async move $body))
                .await
        }
    };
}

fn no_name<T>(_: &T) -> Option<String> {
    None
}

fn gateway_name(g: &GatewayPlugin<'_>) -> Option<String> {
    Some(g.name.clone())
}

/// Calls an export, turning a wasmtime error into a classified `Failure`.
macro_rules! call {
    ($store:ident, $instance:ident . $method:ident ( $($arg:expr),* )) => {
        match $instance.$method(&mut *$store, $($arg),*).await {
            Ok(value) => Ok(value),
            Err(e) => Err(crate::engine::classify($store, e)),
        }
    };
}

impl PricingPlugin<'_> {
    plugin_call! {
        /// Price of a new rental.
        fn quote(request: QuoteRequest) -> Quote,
        kind = PluginKind::Pricing, gateway = no_name, op = "quote",
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let quote = call!(store, i.call_quote(&request))?.map_err(Failure::Rejected)?;
            check_quote(&quote)?;
            Ok(quote)
        }
    }

    plugin_call! {
        /// Price of extending a running rental, in paisa.
        fn price_extension(request: ExtensionRequest) -> i64,
        kind = PluginKind::Pricing, gateway = no_name, op = "price-extension",
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let paisa = call!(store, i.call_price_extension(&request))?.map_err(Failure::Rejected)?;
            check_paisa(paisa)
        }
    }

    plugin_call! {
        /// Charge for returning late (zero when on time).
        fn overdue_charge(request: OverdueRequest) -> OverdueCharge,
        kind = PluginKind::Pricing, gateway = no_name, op = "overdue-charge",
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let charge = call!(store, i.call_overdue_charge(&request))?.map_err(Failure::Rejected)?;
            check_paisa(charge.amount_paisa)?;
            Ok(charge)
        }
    }
}

impl PointsPlugin<'_> {
    plugin_call! {
        /// Points to award for `event`; every award names a user of the event.
        fn award(event: PointsEvent, context: CallContext) -> Vec<Award>,
        kind = PluginKind::PointsRules, gateway = no_name, op = "award",
        |store, loaded| {
            let i = loaded.points(store).await?;
            let awards = call!(store, i.call_award(&event, &context))?.map_err(Failure::Rejected)?;
            check_awards(&event, &awards)?;
            Ok(awards)
        }
    }

    plugin_call! {
        /// Value of `points` when redeemed, in paisa.
        fn points_to_paisa(points: i64) -> i64,
        kind = PluginKind::PointsRules, gateway = no_name, op = "points-to-paisa",
        |store, loaded| {
            let i = loaded.points(store).await?;
            let paisa = call!(store, i.call_points_to_paisa(points))?.map_err(Failure::Rejected)?;
            check_paisa(paisa)
        }
    }

    plugin_call! {
        /// Days after which unspent points expire.
        fn expiry_days() -> u32,
        kind = PluginKind::PointsRules, gateway = no_name, op = "expiry-days",
        |store, loaded| {
            let i = loaded.points(store).await?;
            call!(store, i.call_expiry_days())
        }
    }
}

impl PromotionsPlugin<'_> {
    plugin_call! {
        /// Applies `coupon` to `order`. The outer error is a plugin failure; the
        /// inner `Err` is the plugin's reason for refusing the coupon.
        fn apply_coupon(coupon: Coupon, order: OrderSummary, usage: CouponUsage)
            -> Result<DiscountApplication, CouponRejection>,
        kind = PluginKind::Promotions, gateway = no_name, op = "apply-coupon",
        |store, loaded| {
            let i = loaded.promotions(store).await?;
            let applied = call!(store, i.call_apply_coupon(&coupon, &order, usage))?;
            if let Ok(d) = &applied {
                check_discount(order.amount_paisa, d)?;
            }
            Ok(applied)
        }
    }
}

impl GatewayPlugin<'_> {
    plugin_call! {
        /// Starts a payment. Inner `Err` is the gateway's own error.
        fn create_intent(request: CreateIntentRequest)
            -> Result<PaymentIntent, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, op = "create-intent",
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            call!(store, i.call_create_intent(&request))
        }
    }

    plugin_call! {
        /// Confirms a payment with the gateway after the user returns.
        fn verify(request: VerifyRequest)
            -> Result<PaymentVerification, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, op = "verify",
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            let verified = call!(store, i.call_verify(&request))?;
            if let Ok(v) = &verified {
                check_paisa(v.amount_paisa)?;
            }
            Ok(verified)
        }
    }

    plugin_call! {
        /// Verifies and parses a webhook delivery.
        fn parse_webhook(headers: Vec<(String, String)>, body: Vec<u8>)
            -> Result<WebhookEvent, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, op = "parse-webhook",
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            call!(store, i.call_parse_webhook(&headers, &body))
        }
    }

    plugin_call! {
        /// Refunds (part of) a payment.
        fn refund(request: RefundRequest) -> Result<RefundResult, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, op = "refund",
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            let refunded = call!(store, i.call_refund(&request))?;
            if let Ok(r) = &refunded
                && (r.amount_paisa < 0 || r.amount_paisa > request.amount_paisa)
            {
                return malformed(format!(
                    "refunded {} for a request of {}",
                    r.amount_paisa, request.amount_paisa
                ));
            }
            Ok(refunded)
        }
    }
}
