//! The values passed to and from plugins, generated from the current
//! contract (`wit/`, `powerbank:plugins@0.4.0`) and re-exported under short
//! names. All money is integer paisa. Plugins built against an older
//! contract are called in these same types (`contract::v0_2`, `contract::v0_1`).

pub use crate::contract::current::host::{HttpError, HttpMethod, HttpRequest, HttpResponse};
pub use crate::contract::current::payment_gateway::powerbank::plugins::payment_types::{
    CreateIntentRequest, GatewayError, PaymentIntent, PaymentStatus, PaymentVerification, RefundRequest, RefundResult,
    VerifyRequest, WebhookEvent,
};
pub use crate::contract::current::points::powerbank::plugins::points_types::{
    Award, AwardRole, KycApprovedEvent, OnTimeReturnEvent, PointsEvent, ProfileCompletedEvent, RefereeFirstRentalEvent,
    ReferralEvent, RentalCompletedEvent, SignupEvent, TopUpEvent,
};
pub use crate::contract::current::pricing::powerbank::plugins::pricing_types::{
    BreakdownLine, ExtensionRequest, LostPolicy, LostRequest, OverdueCharge, OverdueRequest, PackageInfo, Quote,
    QuoteRequest,
};
pub use crate::contract::current::promotions::powerbank::plugins::promotion_types::{
    Campaign, CampaignEvent, CampaignOffer, CampaignRejection, Coupon, CouponDecision, CouponDiscount, CouponGrant,
    CouponRejection, CouponUsage, DiscountApplication, OfferDecision, OrderSummary, PointsMultiplier, RentalDiscount,
    TopUpSummary,
};
pub use crate::contract::current::shared::{CallContext, CallError, LogLevel, PluginInfo};
pub use crate::contract::current::station_protocol::powerbank::plugins::station_types::{
    DecodeError, DecodedMessage, EjectCommand, EjectFailedEvent, EjectedEvent, HeartbeatReport, MalformedMessage,
    OutboundMessage, Qos, ReturnedEvent, SlotFaultEvent, SlotReport, SlotState, StationCommand, StationEvent,
    StatusReport,
};
