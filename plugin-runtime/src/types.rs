//! The values passed to and from plugins, generated from `wit/` and
//! re-exported under short names. All money is integer paisa.

pub use crate::bindings::host::{HttpError, HttpMethod, HttpRequest, HttpResponse};
pub use crate::bindings::payment_gateway::powerbank::plugins::payment_types::{
    CreateIntentRequest, GatewayError, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest, RefundResult,
    VerifyRequest, WebhookEvent,
};
pub use crate::bindings::points::powerbank::plugins::points_types::{
    Award, AwardRole, PointsEvent, ReferralEvent, RentalCompletedEvent, SignupEvent, TopUpEvent,
};
pub use crate::bindings::pricing::powerbank::plugins::pricing_types::{
    BreakdownLine, ExtensionRequest, OverdueCharge, OverdueRequest, PackageInfo, Quote, QuoteRequest,
};
pub use crate::bindings::promotions::powerbank::plugins::promotion_types::{
    Coupon, CouponDiscount, CouponRejection, CouponUsage, DiscountApplication, OrderSummary,
};
pub use crate::bindings::shared::{CallContext, LogLevel, PluginInfo};
pub use crate::bindings::station_protocol::powerbank::plugins::station_types::{
    DecodeError, DecodedMessage, EjectCommand, EjectFailedEvent, EjectedEvent, HeartbeatReport, MalformedMessage,
    OutboundMessage, ReturnedEvent, SlotFaultEvent, SlotReport, SlotState, StationCommand, StationEvent, StatusReport,
};
