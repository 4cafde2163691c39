//! Typed calls per plugin kind, with the host's checks on what comes back.
//!
//! A plugin's answer is checked before the host uses it: money must not be
//! negative, a quote must add up, a discount must fit the amount, points go
//! only to users named in the event. A plugin that breaks these rules gets a
//! `MalformedResult` error instead of moving real money or points.

use crate::config::PluginKind;
use crate::error::{Failure, PluginError};
use crate::plugin_host::{Decided, PluginHost, ShadowJob, release_label};
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
    /// The build (`Decided::release`) that created the payment this call is
    /// about: it answers while it is kept, even after a newer one serves.
    pin: Option<String>,
}

/// Calls to one station-protocol plugin, by its name in plugins.toml.
pub struct StationProtocolPlugin<'a> {
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
        GatewayPlugin { host: self, name: name.to_string(), pin: None }
    }

    /// The gateway `name` through the build `release` (as `Decided::release`
    /// gave it when the payment was created) while that build is kept;
    /// otherwise through the serving build.
    pub fn gateway_pinned(&self, name: &str, release: Option<&str>) -> GatewayPlugin<'_> {
        GatewayPlugin { host: self, name: name.to_string(), pin: release.map(str::to_string) }
    }

    pub fn station_protocol(&self, name: &str) -> StationProtocolPlugin<'_> {
        StationProtocolPlugin { host: self, name: name.to_string() }
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
        PointsEvent::ProfileCompleted(e) => vec![&e.user_id],
        PointsEvent::KycApproved(e) => vec![&e.user_id],
        PointsEvent::OnTimeReturn(e) => vec![&e.user_id],
        PointsEvent::RefereeFirstRental(e) => vec![&e.referrer_id, &e.referee_id],
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

// Every plugin method has this shape: pick the build that answers (the
// serving one, or a canary for riders in its share), take a call slot, run
// the body against a fresh instance in a fresh store; then, when a shadow
// runs beside it, queue the same call for the shadow with the live answer.
macro_rules! plugin_call {
    (
        $(#[$doc:meta])*
        fn $name:ident / $traced:ident ($($arg:ident: $ty:ty),*) -> $ret:ty,
        kind = $kind:expr, gateway = $gw:expr, pin = $pin:expr, op = $op:literal, rider = $rider:expr,
        |$store:ident, $loaded:ident| $body:block
    ) => {
        $(#[$doc])*
        pub async fn $name(&self, $($arg: $ty),*) -> Result<$ret, PluginError> {
            self.$traced($($arg),*).await.map(|d| d.value)
        }

        $(#[$doc])*
        ///
        /// Also says which build decided (`Decided::release`).
        pub async fn $traced(&self, $($arg: $ty),*) -> Result<Decided<$ret>, PluginError> {
            let name: Option<String> = $gw(self);
            let rider: Option<String> = $rider;
            let pin: Option<String> = $pin(self);
            let route = self.host.route($kind, name.as_deref(), pin.as_deref(), $op, rider.as_deref())?;
            // The shadow's copy of the input, taken before the body consumes it.
            let shadow_input = route.shadow.as_ref().map(|_| (($($arg.clone(),)*), to_json(&($(&$arg,)*))));
            let started = std::time::Instant::now();
            let result =
                self.host.call_on(&route.loaded, $op, move |$store, $loaded| Box::pin(async move $body)).await;
            let took = started.elapsed();
            if let Some(canary) = &route.canary {
                self.host.canary_result(canary, result.as_ref().err().map(|e| &e.failure));
            }
            if let (Some(shadow), Some((($($arg,)*), input))) = (route.shadow.clone(), shadow_input) {
                let live = result.as_ref().cloned().map_err(|e| e.failure.code().to_string());
                let host = self.host.clone();
                let candidate = shadow.clone();
                let job: ShadowJob = Box::pin(async move {
                    let at = std::time::Instant::now();
                    let answer = host
                        .call_on(&candidate.loaded, $op, move |$store, $loaded| Box::pin(async move $body))
                        .await;
                    let took = at.elapsed();
                    candidate.record_shadow(
                        $op,
                        input,
                        live.map(|v| to_json(&v)),
                        answer.map(|v| to_json(&v)).map_err(|e| e.failure.code().to_string()),
                        took,
                    );
                });
                self.host.queue_shadow(&shadow, took, job);
            }
            let release = release_label(&route.loaded);
            result.map(|value| Decided { value, release })
        }
    };
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_else(|e| serde_json::json!({ "unserializable": e.to_string() }))
}

fn no_name<T>(_: &T) -> Option<String> {
    None
}

fn gateway_name(g: &GatewayPlugin<'_>) -> Option<String> {
    Some(g.name.clone())
}

fn gateway_pin(g: &GatewayPlugin<'_>) -> Option<String> {
    g.pin.clone()
}

fn protocol_name(p: &StationProtocolPlugin<'_>) -> Option<String> {
    Some(p.name.clone())
}

impl PricingPlugin<'_> {
    plugin_call! {
        /// Price of a new rental.
        fn quote / quote_traced(request: QuoteRequest) -> Quote,
        kind = PluginKind::Pricing, gateway = no_name, pin = no_name, op = "quote", rider = request.context.user_id.clone(),
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let quote = i.quote(store, &request).await?.map_err(Failure::from)?;
            check_quote(&quote)?;
            Ok(quote)
        }
    }

    plugin_call! {
        /// Price of extending a running rental, in paisa.
        fn price_extension / price_extension_traced(request: ExtensionRequest) -> i64,
        kind = PluginKind::Pricing, gateway = no_name, pin = no_name, op = "price-extension", rider = request.context.user_id.clone(),
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let paisa = i.price_extension(store, &request).await?.map_err(Failure::from)?;
            check_paisa(paisa)
        }
    }

    plugin_call! {
        /// Charge for returning late (zero when on time).
        fn overdue_charge / overdue_charge_traced(request: OverdueRequest) -> OverdueCharge,
        kind = PluginKind::Pricing, gateway = no_name, pin = no_name, op = "overdue-charge", rider = request.context.user_id.clone(),
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let charge = i.overdue_charge(store, &request).await?.map_err(Failure::from)?;
            check_paisa(charge.amount_paisa)?;
            Ok(charge)
        }
    }

    plugin_call! {
        /// Reminders, the lost deadline and the penalty of a bank not returned.
        fn lost_penalty / lost_penalty_traced(request: LostRequest) -> LostPolicy,
        kind = PluginKind::Pricing, gateway = no_name, pin = no_name, op = "lost-penalty", rider = request.context.user_id.clone(),
        |store, loaded| {
            let i = loaded.pricing(store).await?;
            let mut policy = i.lost_penalty(store, &request).await?.map_err(Failure::from)?;
            check_lost_policy(&mut policy)?;
            Ok(policy)
        }
    }
}

fn check_lost_policy(p: &mut LostPolicy) -> Result<(), Failure> {
    check_paisa(p.penalty_paisa)?;
    if p.lost_after_minutes == 0 {
        return malformed("a bank declared lost zero minutes after its due time");
    }
    // Reminders after the bank is lost are pointless; order them for the sweep.
    p.reminder_minutes.retain(|m| *m < p.lost_after_minutes);
    p.reminder_minutes.sort_unstable();
    p.reminder_minutes.dedup();
    Ok(())
}

impl PointsPlugin<'_> {
    plugin_call! {
        /// Points to award for `event`; every award names a user of the event.
        fn award / award_traced(event: PointsEvent, context: CallContext) -> Vec<Award>,
        kind = PluginKind::PointsRules, gateway = no_name, pin = no_name, op = "award", rider = context.user_id.clone().or_else(|| event_users(&event).first().map(|u| u.to_string())),
        |store, loaded| {
            let i = loaded.points(store).await?;
            let awards = i.award(store, &event, &context).await?.map_err(Failure::from)?;
            check_awards(&event, &awards)?;
            Ok(awards)
        }
    }

    plugin_call! {
        /// Value of `points` when redeemed, in paisa.
        fn points_to_paisa / points_to_paisa_traced(points: i64) -> i64,
        kind = PluginKind::PointsRules, gateway = no_name, pin = no_name, op = "points-to-paisa", rider = None,
        |store, loaded| {
            let i = loaded.points(store).await?;
            let paisa = i.points_to_paisa(store, points).await?.map_err(Failure::from)?;
            check_paisa(paisa)
        }
    }

    plugin_call! {
        /// Days after which unspent points expire.
        fn expiry_days / expiry_days_traced() -> u32,
        kind = PluginKind::PointsRules, gateway = no_name, pin = no_name, op = "expiry-days", rider = None,
        |store, loaded| {
            let i = loaded.points(store).await?;
            i.expiry_days(store).await?.map_err(Failure::from)
        }
    }
}

impl PromotionsPlugin<'_> {
    plugin_call! {
        /// Applies `coupon` to `order`. The outer error is a plugin failure; the
        /// inner `Err` is the plugin's reason for refusing the coupon.
        fn apply_coupon / apply_coupon_traced(coupon: Coupon, order: OrderSummary, usage: CouponUsage)
            -> Result<DiscountApplication, CouponRejection>,
        kind = PluginKind::Promotions, gateway = no_name, pin = no_name, op = "apply-coupon", rider = order.context.user_id.clone(),
        |store, loaded| {
            let i = loaded.promotions(store).await?;
            match i.apply_coupon(store, &coupon, &order, usage).await?.map_err(Failure::from)? {
                CouponDecision::Applied(d) => {
                    check_discount(order.amount_paisa, &d)?;
                    Ok(Ok(d))
                }
                CouponDecision::Rejected(rejection) => Ok(Err(rejection)),
            }
        }
    }

    plugin_call! {
        /// Whether the plugin will run `campaign`'s offer. The inner `Err` is
        /// its reason for refusing it (an answer for the operator).
        fn validate_campaign / validate_campaign_traced(campaign: Campaign) -> Result<(), CampaignRejection>,
        kind = PluginKind::Promotions, gateway = no_name, pin = no_name, op = "validate-campaign", rider = None,
        |store, loaded| {
            let i = loaded.promotions(store).await?;
            i.validate_campaign(store, &campaign).await
        }
    }

    plugin_call! {
        /// What `campaign` offers on `event`; a discount is checked like a
        /// coupon's, a multiplier is at most 100x.
        fn decide_campaign_offer / decide_campaign_offer_traced(campaign: Campaign, event: CampaignEvent) -> OfferDecision,
        kind = PluginKind::Promotions, gateway = no_name, pin = no_name, op = "decide-campaign-offer", rider = None,
        |store, loaded| {
            let i = loaded.promotions(store).await?;
            let decision = i.decide_campaign_offer(store, &campaign, &event).await?.map_err(Failure::from)?;
            match (&decision, &event) {
                (OfferDecision::Discount(d), CampaignEvent::Rental(order)) => check_discount(order.amount_paisa, d)?,
                (OfferDecision::Discount(_), CampaignEvent::TopUp(_)) => {
                    return malformed("a discount on a top-up");
                }
                (OfferDecision::PointsMultiplierBp(bp), _) if *bp > MAX_MULTIPLIER_BP => {
                    return malformed(format!("points multiplier of {bp} basis points (at most {MAX_MULTIPLIER_BP})"));
                }
                _ => {}
            }
            Ok(decision)
        }
    }
}

/// The largest points multiplier a campaign may give: 100x.
pub const MAX_MULTIPLIER_BP: u32 = 1_000_000;

impl GatewayPlugin<'_> {
    plugin_call! {
        /// Starts a payment. Inner `Err` is the gateway's own error.
        fn create_intent / create_intent_traced(request: CreateIntentRequest)
            -> Result<PaymentIntent, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, pin = gateway_pin, op = "create-intent", rider = None,
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            i.create_intent(store, &request).await
        }
    }

    plugin_call! {
        /// Confirms a payment with the gateway after the user returns.
        fn verify / verify_traced(request: VerifyRequest)
            -> Result<PaymentVerification, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, pin = gateway_pin, op = "verify", rider = None,
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            let verified = i.verify(store, &request).await?;
            if let Ok(v) = &verified {
                check_paisa(v.amount_paisa)?;
            }
            Ok(verified)
        }
    }

    plugin_call! {
        /// Verifies and parses a webhook delivery.
        fn parse_webhook / parse_webhook_traced(headers: Vec<(String, String)>, body: Vec<u8>)
            -> Result<WebhookEvent, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, pin = gateway_pin, op = "parse-webhook", rider = None,
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            i.parse_webhook(store, &headers, &body).await
        }
    }

    plugin_call! {
        /// Refunds (part of) a payment.
        fn refund / refund_traced(request: RefundRequest) -> Result<RefundResult, GatewayError>,
        kind = PluginKind::PaymentGateway, gateway = gateway_name, pin = gateway_pin, op = "refund", rider = None,
        |store, loaded| {
            let i = loaded.gateway(store).await?;
            let refunded = i.refund(store, &request).await?;
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

/// Bounds on what a station-protocol plugin may hand the host. Everything it
/// returns came from bytes a station sent, so the host checks it as input.
pub mod station_limits {
    pub const MAX_TOPIC_FILTERS: usize = 16;
    pub const MAX_TOPIC_BYTES: usize = 256;
    pub const MAX_EVENTS: usize = 64;
    pub const MAX_SLOTS: usize = 512;
    pub const MAX_TEXT_BYTES: usize = 256;
    pub const MAX_MESSAGES: usize = 8;
    pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;
}

/// Device ids end up in topics and database lookups: 1-64 of A-Z, a-z, 0-9, `-`, `_`.
fn valid_device_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_text(what: &str, text: &str) -> Result<(), Failure> {
    if text.len() > station_limits::MAX_TEXT_BYTES {
        return malformed(format!("{what} of {} bytes", text.len()));
    }
    Ok(())
}

fn check_slot(slot: u16) -> Result<(), Failure> {
    if slot == 0 {
        return malformed("slot 0 (slots are numbered from 1)");
    }
    Ok(())
}

fn check_bank(serial: &str) -> Result<(), Failure> {
    if !valid_device_id(serial) {
        return malformed(format!("power bank serial `{}`", serial.escape_debug()));
    }
    Ok(())
}

fn check_battery(battery: Option<u8>) -> Result<(), Failure> {
    match battery {
        Some(b) if b > 100 => malformed(format!("battery {b} %")),
        _ => Ok(()),
    }
}

/// An MQTT topic filter: levels split by `/`, `+` alone in a level, `#` only as the last level.
fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > station_limits::MAX_TOPIC_BYTES || filter.contains('\0') {
        return false;
    }
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| {
        (*level == "#" && i == levels.len() - 1) || *level == "+" || !(level.contains('+') || level.contains('#'))
    })
}

fn check_decoded(d: &DecodedMessage) -> Result<(), Failure> {
    if !valid_device_id(&d.device_id) {
        return malformed(format!("device id `{}`", d.device_id.escape_debug()));
    }
    if d.events.len() > station_limits::MAX_EVENTS {
        return malformed(format!("{} events from one message", d.events.len()));
    }
    for event in &d.events {
        match event {
            StationEvent::Status(s) => {
                if let Some(fw) = &s.firmware {
                    check_text("firmware", fw)?;
                }
                let slots = s.slots.as_deref().unwrap_or_default();
                if slots.len() > station_limits::MAX_SLOTS {
                    return malformed(format!("{} slots", slots.len()));
                }
                for slot in slots {
                    check_slot(slot.index)?;
                    check_battery(slot.battery)?;
                    if let Some(bank) = &slot.power_bank {
                        check_bank(bank)?;
                    }
                }
            }
            StationEvent::Heartbeat(_) => {}
            StationEvent::Ejected(e) => {
                check_slot(e.slot)?;
                if let Some(bank) = &e.power_bank {
                    check_bank(bank)?;
                }
                if let Some(id) = &e.request_id {
                    check_text("request id", id)?;
                }
            }
            StationEvent::EjectFailed(e) => {
                if let Some(slot) = e.slot {
                    check_slot(slot)?;
                }
                if let Some(bank) = &e.power_bank {
                    check_bank(bank)?;
                }
                if let Some(id) = &e.request_id {
                    check_text("request id", id)?;
                }
                check_text("reason", &e.reason)?;
            }
            StationEvent::Returned(e) => {
                check_slot(e.slot)?;
                check_bank(&e.power_bank)?;
                check_battery(e.battery)?;
            }
            StationEvent::SlotFault(e) => {
                check_slot(e.slot)?;
                check_text("reason", &e.reason)?;
            }
        }
    }
    Ok(())
}

fn check_outbound(messages: &[OutboundMessage]) -> Result<(), Failure> {
    if messages.is_empty() || messages.len() > station_limits::MAX_MESSAGES {
        return malformed(format!("{} messages for one command", messages.len()));
    }
    for m in messages {
        let publishable = valid_topic_filter(&m.topic) && !m.topic.contains(['+', '#']);
        if !publishable {
            return malformed(format!("cannot publish to `{}`", m.topic.escape_debug()));
        }
        if m.payload.len() > station_limits::MAX_PAYLOAD_BYTES {
            return malformed(format!("payload of {} bytes", m.payload.len()));
        }
    }
    Ok(())
}

impl StationProtocolPlugin<'_> {
    plugin_call! {
        /// The MQTT topic filters this protocol's stations publish on.
        fn topic_filters / topic_filters_traced() -> Vec<String>,
        kind = PluginKind::StationProtocol, gateway = protocol_name, pin = no_name, op = "topic-filters", rider = None,
        |store, loaded| {
            let i = loaded.station_protocol(store).await?;
            let filters = i.topic_filters(store).await?.map_err(Failure::from)?;
            if filters.is_empty() || filters.len() > station_limits::MAX_TOPIC_FILTERS {
                return malformed(format!("{} topic filters", filters.len()));
            }
            if let Some(bad) = filters.iter().find(|f| !valid_topic_filter(f)) {
                return malformed(format!("invalid topic filter `{}`", bad.escape_debug()));
            }
            Ok(filters)
        }
    }

    plugin_call! {
        /// Decodes one message. The inner `Err` is the plugin saying the bytes
        /// are not a valid message; the outer one is the plugin failing.
        fn decode / decode_traced(topic: String, payload: Vec<u8>) -> Result<DecodedMessage, DecodeError>,
        kind = PluginKind::StationProtocol, gateway = protocol_name, pin = no_name, op = "decode", rider = None,
        |store, loaded| {
            let i = loaded.station_protocol(store).await?;
            let decoded = i.decode(store, &topic, &payload).await?;
            if let Ok(d) = &decoded {
                check_decoded(d)?;
            }
            Ok(decoded)
        }
    }

    plugin_call! {
        /// The messages that carry `command` to the station `device_id`.
        fn encode / encode_traced(device_id: String, command: StationCommand) -> Vec<OutboundMessage>,
        kind = PluginKind::StationProtocol, gateway = protocol_name, pin = no_name, op = "encode", rider = None,
        |store, loaded| {
            let i = loaded.station_protocol(store).await?;
            let messages = i.encode(store, &device_id, &command).await?.map_err(Failure::from)?;
            check_outbound(&messages)?;
            Ok(messages)
        }
    }
}

#[cfg(test)]
mod station_tests {
    use super::*;

    #[test]
    fn topic_filters_follow_mqtt_rules() {
        for ok in ["powerbank/stations/+/status", "/powerbank/+/user/update", "a/#", "#", "+"] {
            assert!(valid_topic_filter(ok), "{ok}");
        }
        for bad in ["", "a/#/b", "a/b#", "a+/b", "a/\0"] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
    }

    #[test]
    fn decoded_messages_are_checked_like_input() {
        let ok = DecodedMessage {
            device_id: "864601068412899".into(),
            events: vec![StationEvent::Returned(ReturnedEvent {
                slot: 3,
                power_bank: "85021618".into(),
                battery: Some(80),
            })],
        };
        assert!(check_decoded(&ok).is_ok());
        let mut bad_id = ok.clone();
        bad_id.device_id = "a/b".into();
        assert!(check_decoded(&bad_id).is_err());
        let slot_zero = DecodedMessage {
            device_id: "x".into(),
            events: vec![StationEvent::SlotFault(SlotFaultEvent { slot: 0, reason: "jam".into() })],
        };
        assert!(check_decoded(&slot_zero).is_err());
        let battery = DecodedMessage {
            device_id: "x".into(),
            events: vec![StationEvent::Returned(ReturnedEvent { slot: 1, power_bank: "p".into(), battery: Some(101) })],
        };
        assert!(check_decoded(&battery).is_err());
    }
}
