//! Conversions between the bindings of two contract versions.
//!
//! Each version's bindings are their own Rust types, even where the WIT did
//! not change, so an older version's adapter converts every value it passes.
//! `Convert` does it field by field; the macros below write the impls for
//! records, variants and enums that kept their shape, so an adapter spells
//! out only what really changed. A change to a current type breaks the
//! compile of every conversion that touches it, which is the point: the
//! compiler lists what a new contract version must adapt.

/// `self` as the same value in another version's type.
pub(crate) trait Convert<T> {
    fn convert(self) -> T;
}

/// Plain values are the same in every version.
macro_rules! same_value {
    ($($ty:ty),* $(,)?) => {
        $(impl Convert<$ty> for $ty {
            fn convert(self) -> $ty {
                self
            }
        })*
    };
}

same_value!(bool, u8, u16, u32, u64, i64, String);

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

impl<A: Convert<C>, B: Convert<D>, C, D> Convert<(C, D)> for (A, B) {
    fn convert(self) -> (C, D) {
        (self.0.convert(), self.1.convert())
    }
}

impl<A: Convert<C>, B: Convert<D>, C, D> Convert<Result<C, D>> for Result<A, B> {
    fn convert(self) -> Result<C, D> {
        self.map(Convert::convert).map_err(Convert::convert)
    }
}

/// Records with the same fields in both versions, converted both ways:
/// `same_records!(old => new { Quote { amount_paisa, breakdown } })`.
macro_rules! same_records {
    ($old:ident => $new:ident { $($ty:ident { $($field:ident),* $(,)? })* }) => {
        $(
            impl Convert<$new::$ty> for $old::$ty {
                fn convert(self) -> $new::$ty {
                    $new::$ty { $($field: self.$field.convert()),* }
                }
            }
            impl Convert<$old::$ty> for $new::$ty {
                fn convert(self) -> $old::$ty {
                    $old::$ty { $($field: self.$field.convert()),* }
                }
            }
        )*
    };
}

/// Variants and enums with the same cases in both versions, converted both
/// ways; a case lists its payload in parentheses:
/// `same_variants!(old => new { CouponDiscount { PercentageBp(x), FixedPaisa(x) } })`.
macro_rules! same_variants {
    ($old:ident => $new:ident { $($ty:ident { $($case:ident $(($payload:ident))?),* $(,)? })* }) => {
        $(
            impl Convert<$new::$ty> for $old::$ty {
                fn convert(self) -> $new::$ty {
                    match self {
                        $($old::$ty::$case $(($payload))? => $new::$ty::$case $(($payload.convert()))?),*
                    }
                }
            }
            impl Convert<$old::$ty> for $new::$ty {
                fn convert(self) -> $old::$ty {
                    match self {
                        $($new::$ty::$case $(($payload))? => $old::$ty::$case $(($payload.convert()))?),*
                    }
                }
            }
        )*
    };
}

pub(crate) use {same_records, same_variants};

/// The conversions of every type that kept its shape from 0.2 to the current
/// contract, shared by the 0.2 and 0.3 adapters (each names its own `old`
/// module of bindings) instead of a copy in each.
macro_rules! kept_since_0_2 {
    ($old:ident => $new:ident) => {
        $crate::contract::convert::same_records!($old => $new {
            HttpRequest { method, url, headers, body }
            HttpResponse { status, headers, body }
            CallContext { user_id, station_sn, now_unix_ms }
            PluginInfo { name, version, kind, display_name, icon_url }
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
            OutboundMessage { topic, payload, qos, retain }
        });

        $crate::contract::convert::same_variants!($old => $new {
            LogLevel { Trace, Debug, Info, Warn, Error }
            HttpMethod { Get, Post, Put, Patch, Delete, Head }
            HttpError { ForbiddenHost(x), InvalidUrl(x), TooManyCalls, Timeout, Transport(x), ResponseTooLarge }
            PluginKind { Pricing, PointsRules, Promotions, PaymentGateway, StationProtocol }
            CallError { InvalidInput(x), Misconfigured(x), NotSupported(x), Unavailable(x) }
            AwardRole { Subject, Referrer, Referee }
            CouponDiscount { PercentageBp(x), FixedPaisa(x) }
            CouponRejection {
                NotYetValid, Expired, BelowMinimumAmount(x), UsageLimitReached, UserLimitReached, InvalidCoupon(x)
            }
            CouponDecision { Applied(x), Rejected(x) }
            PaymentStatus { Pending, Succeeded, Failed, Cancelled, Refunded }
            GatewayError {
                InvalidRequest(x), Declined(x), BadSignature, AmountMismatch, Timeout(x), Unavailable(x), NotSupported,
                Internal(x)
            }
            SlotState { Empty, Occupied, Fault }
            StationEvent { Status(x), Heartbeat(x), Ejected(x), EjectFailed(x), Returned(x), SlotFault(x) }
            DecodeError { UnknownTopic(x), Malformed(x) }
            StationCommand { Eject(x), QueryStatus }
            Qos { AtMostOnce, AtLeastOnce, ExactlyOnce }
        });
    };
}

pub(crate) use kept_since_0_2;
