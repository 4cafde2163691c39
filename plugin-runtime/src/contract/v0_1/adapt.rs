//! 0.1 exports in the current types.
//!
//! What changed from 0.1 to 0.2, and how a 0.1 answer is read:
//! - `info` has no display name or icon: the display name is the plugin's
//!   `display_name` config key or else its name, the icon its `icon_url` key;
//! - business functions failed with a string: that is `invalid-input` (0.1
//!   meant "this input is refused"), and a failed `self-check` is
//!   `misconfigured`;
//! - `apply-coupon` answered `result<discount, rejection>`: `applied` or
//!   `rejected`;
//! - `topic-filters` and `expiry-days` could not fail: their answer is `ok`;
//! - a gateway signalled a timeout by an `unavailable` message starting with
//!   `timeout`: that is `gateway-error::timeout`;
//! - `outbound-message.qos` was a number checked by the host: 0-2 become the
//!   `qos` enum, anything else is a malformed result.
//!
//! - 0.3's additions are answered as for a 0.2 plugin: `lost-penalty` is the
//!   host's default policy, the new points events award nothing.
//!
//! Every other type kept its shape and converts field by field.

use wasmtime::Store;

use super::bindings;
use crate::contract::convert::{Convert, same_records, same_variants};
use crate::contract::{Answer, default_lost_policy};
use crate::error::Failure;
use crate::state::StoreState;
use crate::types::*;

/// The 0.1 types under one name, as `crate::types` holds the current ones.
mod old {
    pub use super::bindings::host::{HttpError, HttpMethod, HttpRequest, HttpResponse};
    pub use super::bindings::payment_gateway::powerbank::plugins::payment_types::*;
    pub use super::bindings::points::powerbank::plugins::points_types::*;
    pub use super::bindings::pricing::powerbank::plugins::pricing_types::*;
    pub use super::bindings::promotions::powerbank::plugins::promotion_types::*;
    pub use super::bindings::station_protocol::powerbank::plugins::station_types::*;
    pub use super::bindings::types::{CallContext, LogLevel, PluginKind};
}

/// The current types under one name, for the macros.
mod new {
    pub use crate::contract::current::shared::PluginKind;
    pub use crate::types::*;
}

same_records!(old => new {
    HttpRequest { method, url, headers, body }
    HttpResponse { status, headers, body }
    CallContext { user_id, station_sn, now_unix_ms }
    PackageInfo { id, code, price_paisa, duration_minutes }
    QuoteRequest { package, requested_minutes, context }
    BreakdownLine { label, amount_paisa }
    Quote { amount_paisa, breakdown, due_minutes }
    ExtensionRequest { package, current_due_unix_ms, extra_minutes, context }
    OverdueRequest { package, due_unix_ms, returned_unix_ms, context }
    OverdueCharge { amount_paisa, explanation }
    SignupEvent { user_id }
    ReferralEvent { referrer_id, referee_id }
    TopUpEvent { user_id, amount_paisa }
    RentalCompletedEvent { user_id, rental_id, package_code, amount_paisa, duration_minutes, returned_late }
    Award { role, user_id, points, reason }
    Coupon {
        code, discount, valid_from_unix_ms, valid_until_unix_ms, min_amount_paisa, max_uses_total,
        max_uses_per_user, max_discount_paisa
    }
    CouponUsage { total_used, used_by_user }
    OrderSummary { amount_paisa, package_code, context }
    DiscountApplication { discount_paisa, final_amount_paisa }
    CreateIntentRequest { order_id, amount_paisa, description, return_url, context }
    PaymentIntent { gateway_ref, status, redirect_url, client_payload }
    VerifyRequest { order_id, gateway_ref, callback_params, expected_amount_paisa }
    PaymentVerification { gateway_ref, status, amount_paisa }
    WebhookEvent { event_id, order_id, gateway_ref, status, amount_paisa }
    RefundRequest { order_id, gateway_ref, amount_paisa, reason, idempotency_key }
    RefundResult { refund_ref, status, amount_paisa }
    SlotReport { index, state, power_bank, battery }
    StatusReport { online, firmware, slots }
    HeartbeatReport { uptime_secs, signal }
    EjectedEvent { request_id, slot, power_bank }
    EjectFailedEvent { request_id, slot, power_bank, reason }
    ReturnedEvent { slot, power_bank, battery }
    SlotFaultEvent { slot, reason }
    DecodedMessage { device_id, events }
    MalformedMessage { device_id, reason }
    EjectCommand { request_id, slot, power_bank, issued_at_unix_ms, ttl_secs }
});

same_variants!(old => new {
    LogLevel { Trace, Debug, Info, Warn, Error }
    HttpMethod { Get, Post, Put, Patch, Delete, Head }
    HttpError { ForbiddenHost(x), InvalidUrl(x), TooManyCalls, Timeout, Transport(x), ResponseTooLarge }
    PluginKind { Pricing, PointsRules, Promotions, PaymentGateway, StationProtocol }
    AwardRole { Subject, Referrer, Referee }
    CouponDiscount { PercentageBp(x), FixedPaisa(x) }
    CouponRejection {
        NotYetValid, Expired, BelowMinimumAmount(x), UsageLimitReached, UserLimitReached, InvalidCoupon(x)
    }
    PaymentStatus { Pending, Succeeded, Failed, Cancelled, Refunded }
    SlotState { Empty, Occupied, Fault }
    StationEvent { Status(x), Heartbeat(x), Ejected(x), EjectFailed(x), Returned(x), SlotFault(x) }
    DecodeError { UnknownTopic(x), Malformed(x) }
    StationCommand { Eject(x), QueryStatus }
});

impl Convert<GatewayError> for old::GatewayError {
    fn convert(self) -> GatewayError {
        match self {
            old::GatewayError::InvalidRequest(m) => GatewayError::InvalidRequest(m),
            old::GatewayError::Declined(m) => GatewayError::Declined(m),
            old::GatewayError::BadSignature => GatewayError::BadSignature,
            old::GatewayError::AmountMismatch => GatewayError::AmountMismatch,
            // 0.1's convention, which 0.2 made a case of its own.
            old::GatewayError::Unavailable(m) if m.starts_with("timeout") => GatewayError::Timeout(m),
            old::GatewayError::Unavailable(m) => GatewayError::Unavailable(m),
            old::GatewayError::NotSupported => GatewayError::NotSupported,
            old::GatewayError::Internal(m) => GatewayError::Internal(m),
        }
    }
}

fn outbound(m: old::OutboundMessage) -> Result<OutboundMessage, Failure> {
    let qos = match m.qos {
        0 => Qos::AtMostOnce,
        1 => Qos::AtLeastOnce,
        2 => Qos::ExactlyOnce,
        other => return Err(Failure::MalformedResult(format!("QoS {other}"))),
    };
    Ok(OutboundMessage { topic: m.topic, payload: m.payload, qos, retain: m.retain })
}

/// The event as 0.1 knew it; `None` for the events 0.3 added.
fn known_event(event: &PointsEvent) -> Option<old::PointsEvent> {
    Some(match event.clone() {
        PointsEvent::Signup(e) => old::PointsEvent::Signup(e.convert()),
        PointsEvent::Referral(e) => old::PointsEvent::Referral(e.convert()),
        PointsEvent::TopUp(e) => old::PointsEvent::TopUp(e.convert()),
        PointsEvent::RentalCompleted(e) => old::PointsEvent::RentalCompleted(e.convert()),
        PointsEvent::ProfileCompleted(_)
        | PointsEvent::KycApproved(_)
        | PointsEvent::OnTimeReturn(_)
        | PointsEvent::RefereeFirstRental(_) => return None,
    })
}

/// A 0.1 business function's string error: 0.1 used it to refuse an input.
fn refused(message: String) -> CallError {
    CallError::InvalidInput(message)
}

/// `info` and `self-check`, which every 0.1 world exports at its root.
macro_rules! plugin_exports {
    ($($instance:ty),*) => {$(
        impl $instance {
            pub async fn info(&self, store: &mut Store<StoreState>) -> Result<PluginInfo, Failure> {
                let info = export!(store, self.call_info(&mut *store))?;
                let config = &store.data().env.config;
                Ok(PluginInfo {
                    display_name: config.get("display_name").cloned().unwrap_or_else(|| info.name.clone()),
                    icon_url: config.get("icon_url").cloned(),
                    name: info.name,
                    version: info.version,
                    kind: info.kind.convert(),
                })
            }

            pub async fn self_check(&self, store: &mut Store<StoreState>) -> Answer<(), CallError> {
                let checked = export!(store, self.call_self_check(&mut *store))?;
                Ok(checked.map_err(CallError::Misconfigured))
            }
        }
    )*};
}

plugin_exports!(
    bindings::pricing::Pricing,
    bindings::points::PointsRules,
    bindings::promotions::Promotions,
    bindings::payment_gateway::PaymentGateway,
    bindings::station_protocol::StationProtocol
);

impl bindings::pricing::Pricing {
    pub async fn quote(&self, store: &mut Store<StoreState>, request: &QuoteRequest) -> Answer<Quote, CallError> {
        let answer = export!(store, self.call_quote(&mut *store, &request.clone().convert()))?;
        Ok(answer.map(Convert::convert).map_err(refused))
    }

    pub async fn price_extension(
        &self,
        store: &mut Store<StoreState>,
        request: &ExtensionRequest,
    ) -> Answer<i64, CallError> {
        let answer = export!(store, self.call_price_extension(&mut *store, &request.clone().convert()))?;
        Ok(answer.map_err(refused))
    }

    pub async fn overdue_charge(
        &self,
        store: &mut Store<StoreState>,
        request: &OverdueRequest,
    ) -> Answer<OverdueCharge, CallError> {
        let answer = export!(store, self.call_overdue_charge(&mut *store, &request.clone().convert()))?;
        Ok(answer.map(Convert::convert).map_err(refused))
    }

    /// 0.1 had no `lost-penalty`: the host's default, without a call.
    pub async fn lost_penalty(
        &self,
        _store: &mut Store<StoreState>,
        _request: &LostRequest,
    ) -> Answer<LostPolicy, CallError> {
        Ok(Ok(default_lost_policy()))
    }
}

impl bindings::points::PointsRules {
    pub async fn award(
        &self,
        store: &mut Store<StoreState>,
        event: &PointsEvent,
        context: &CallContext,
    ) -> Answer<Vec<Award>, CallError> {
        let Some(event) = known_event(event) else { return Ok(Ok(Vec::new())) };
        let context = context.clone().convert();
        let answer = export!(store, self.call_award(&mut *store, &event, &context))?;
        Ok(answer.map(Convert::convert).map_err(refused))
    }

    pub async fn points_to_paisa(&self, store: &mut Store<StoreState>, points: i64) -> Answer<i64, CallError> {
        let answer = export!(store, self.call_points_to_paisa(&mut *store, points))?;
        Ok(answer.map_err(refused))
    }

    pub async fn expiry_days(&self, store: &mut Store<StoreState>) -> Answer<u32, CallError> {
        Ok(Ok(export!(store, self.call_expiry_days(&mut *store))?))
    }
}

impl bindings::promotions::Promotions {
    pub async fn apply_coupon(
        &self,
        store: &mut Store<StoreState>,
        coupon: &Coupon,
        order: &OrderSummary,
        usage: CouponUsage,
    ) -> Answer<CouponDecision, CallError> {
        let (coupon, order) = (coupon.clone().convert(), order.clone().convert());
        let answer = export!(store, self.call_apply_coupon(&mut *store, &coupon, &order, usage.convert()))?;
        Ok(Ok(match answer {
            Ok(applied) => CouponDecision::Applied(applied.convert()),
            Err(rejection) => CouponDecision::Rejected(rejection.convert()),
        }))
    }

    /// No campaigns before 0.4: refused as unsupported, without a call.
    pub async fn validate_campaign(
        &self,
        _store: &mut Store<StoreState>,
        _campaign: &Campaign,
    ) -> Answer<(), CampaignRejection> {
        Ok(Err(crate::contract::no_campaigns()))
    }

    /// No campaigns before 0.4: nothing offered, without a call.
    pub async fn decide_campaign_offer(
        &self,
        _store: &mut Store<StoreState>,
        _campaign: &Campaign,
        _event: &CampaignEvent,
    ) -> Answer<OfferDecision, CallError> {
        Ok(Ok(OfferDecision::NotApplicable))
    }
}

impl bindings::payment_gateway::PaymentGateway {
    pub async fn create_intent(
        &self,
        store: &mut Store<StoreState>,
        request: &CreateIntentRequest,
    ) -> Answer<PaymentIntent, GatewayError> {
        Ok(export!(store, self.call_create_intent(&mut *store, &request.clone().convert()))?.convert())
    }

    pub async fn verify(
        &self,
        store: &mut Store<StoreState>,
        request: &VerifyRequest,
    ) -> Answer<PaymentVerification, GatewayError> {
        Ok(export!(store, self.call_verify(&mut *store, &request.clone().convert()))?.convert())
    }

    pub async fn parse_webhook(
        &self,
        store: &mut Store<StoreState>,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Answer<WebhookEvent, GatewayError> {
        Ok(export!(store, self.call_parse_webhook(&mut *store, headers, body))?.convert())
    }

    pub async fn refund(
        &self,
        store: &mut Store<StoreState>,
        request: &RefundRequest,
    ) -> Answer<RefundResult, GatewayError> {
        Ok(export!(store, self.call_refund(&mut *store, &request.clone().convert()))?.convert())
    }
}

impl bindings::station_protocol::StationProtocol {
    pub async fn topic_filters(&self, store: &mut Store<StoreState>) -> Answer<Vec<String>, CallError> {
        Ok(Ok(export!(store, self.call_topic_filters(&mut *store))?))
    }

    pub async fn decode(
        &self,
        store: &mut Store<StoreState>,
        topic: &str,
        payload: &[u8],
    ) -> Answer<DecodedMessage, DecodeError> {
        Ok(export!(store, self.call_decode(&mut *store, topic, payload))?.convert())
    }

    pub async fn encode(
        &self,
        store: &mut Store<StoreState>,
        device_id: &str,
        command: &StationCommand,
    ) -> Answer<Vec<OutboundMessage>, CallError> {
        match export!(store, self.call_encode(&mut *store, device_id, &command.clone().convert()))? {
            Ok(messages) => Ok(Ok(messages.into_iter().map(outbound).collect::<Result<_, _>>()?)),
            Err(message) => Ok(Err(refused(message))),
        }
    }
}
