//! 0.3 exports in the current types.
//!
//! What changed from 0.3 to 0.4, and how a 0.3 plugin is read: the
//! promotions world's `validate-campaign` and `decide-campaign-offer` are
//! new. A 0.3 promotions plugin runs no campaign: validating one answers
//! `unsupported-offer` (the operator gets a 422), and deciding one answers
//! `not-applicable`, both without calling the plugin. Its coupons work as
//! before. Every other type kept its shape and converts field by field.

use wasmtime::Store;

use super::bindings;
use crate::contract::Answer;
use crate::contract::convert::{Convert, kept_since_0_2, same_records, same_variants};
use crate::error::Failure;
use crate::state::StoreState;
use crate::types::*;

/// The 0.3 types under one name, as `crate::types` holds the current ones.
mod old {
    pub use super::bindings::host::{HttpError, HttpMethod, HttpRequest, HttpResponse};
    pub use super::bindings::payment_gateway::powerbank::plugins::payment_types::*;
    pub use super::bindings::points::powerbank::plugins::points_types::*;
    pub use super::bindings::pricing::powerbank::plugins::pricing_types::*;
    pub use super::bindings::promotions::powerbank::plugins::promotion_types::*;
    pub use super::bindings::station_protocol::powerbank::plugins::station_types::*;
    pub use super::bindings::types::{CallContext, CallError, LogLevel, PluginInfo, PluginKind};
}

/// The current types under one name, for the macros.
mod new {
    pub use crate::contract::current::shared::PluginKind;
    pub use crate::types::*;
}

kept_since_0_2!(old => new);

// What 0.3 added to 0.2, unchanged in 0.4.
same_records!(old => new {
    LostRequest { package, due_unix_ms, context }
    LostPolicy { reminder_minutes, lost_after_minutes, penalty_paisa, explanation }
    ProfileCompletedEvent { user_id }
    KycApprovedEvent { user_id }
    OnTimeReturnEvent { user_id, rental_id, package_code }
    RefereeFirstRentalEvent { referrer_id, referee_id, rental_id }
});

same_variants!(old => new {
    PointsEvent {
        Signup(x), Referral(x), TopUp(x), RentalCompleted(x), ProfileCompleted(x), KycApproved(x), OnTimeReturn(x),
        RefereeFirstRental(x)
    }
});

/// `info` and `self-check`, which every 0.3 world exports at its root.
macro_rules! plugin_exports {
    ($($instance:ty),*) => {$(
        impl $instance {
            pub async fn info(&self, store: &mut Store<StoreState>) -> Result<PluginInfo, Failure> {
                Ok(export!(store, self.call_info(&mut *store))?.convert())
            }

            pub async fn self_check(&self, store: &mut Store<StoreState>) -> Answer<(), CallError> {
                Ok(export!(store, self.call_self_check(&mut *store))?.map_err(Convert::convert))
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
        Ok(export!(store, self.call_quote(&mut *store, &request.clone().convert()))?.convert())
    }

    pub async fn price_extension(
        &self,
        store: &mut Store<StoreState>,
        request: &ExtensionRequest,
    ) -> Answer<i64, CallError> {
        Ok(export!(store, self.call_price_extension(&mut *store, &request.clone().convert()))?.convert())
    }

    pub async fn overdue_charge(
        &self,
        store: &mut Store<StoreState>,
        request: &OverdueRequest,
    ) -> Answer<OverdueCharge, CallError> {
        Ok(export!(store, self.call_overdue_charge(&mut *store, &request.clone().convert()))?.convert())
    }

    pub async fn lost_penalty(
        &self,
        store: &mut Store<StoreState>,
        request: &LostRequest,
    ) -> Answer<LostPolicy, CallError> {
        Ok(export!(store, self.call_lost_penalty(&mut *store, &request.clone().convert()))?.convert())
    }
}

impl bindings::points::PointsRules {
    pub async fn award(
        &self,
        store: &mut Store<StoreState>,
        event: &PointsEvent,
        context: &CallContext,
    ) -> Answer<Vec<Award>, CallError> {
        let (event, context) = (event.clone().convert(), context.clone().convert());
        Ok(export!(store, self.call_award(&mut *store, &event, &context))?.convert())
    }

    pub async fn points_to_paisa(&self, store: &mut Store<StoreState>, points: i64) -> Answer<i64, CallError> {
        Ok(export!(store, self.call_points_to_paisa(&mut *store, points))?.convert())
    }

    pub async fn expiry_days(&self, store: &mut Store<StoreState>) -> Answer<u32, CallError> {
        Ok(export!(store, self.call_expiry_days(&mut *store))?.convert())
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
        Ok(export!(store, self.call_apply_coupon(&mut *store, &coupon, &order, usage.convert()))?.convert())
    }

    /// 0.3 had no campaigns: refused as unsupported, without a call.
    pub async fn validate_campaign(
        &self,
        _store: &mut Store<StoreState>,
        _campaign: &Campaign,
    ) -> Answer<(), CampaignRejection> {
        Ok(Err(crate::contract::no_campaigns()))
    }

    /// 0.3 had no campaigns: nothing offered, without a call.
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
        Ok(export!(store, self.call_topic_filters(&mut *store))?.convert())
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
        Ok(export!(store, self.call_encode(&mut *store, device_id, &command.clone().convert()))?.convert())
    }
}
