//! The plugin contract: which versions of `powerbank:plugins` this host
//! speaks, how a component's version is recognised, and calls to any world
//! of any of them in the current types.
//!
//! A component names its contract version in every `powerbank:plugins/...`
//! interface it imports (`host@0.4.0`, `types@0.4.0`). The host reads that
//! once, at load, links the component against that version's world and
//! keeps a [`Versioned`] pre-linked component. Each call then goes to that
//! version's bindings: the current ones directly, an older one through its
//! adapter, which converts to and from the current types. Callers never see
//! which version served them. The rule for what makes a new version, and the
//! recipe for adding one, are in docs/plugins.md ("Contract versions").

/// Awaits an export call, classifying a wasmtime error (trap, timeout, out
/// of memory) into a `Failure`. Defined before the version modules so they
/// use it too.
macro_rules! export {
    ($store:ident, $call:expr) => {
        match $call.await {
            Ok(value) => Ok(value),
            Err(e) => Err(crate::engine::classify($store, e)),
        }
    };
}

/// An older version's `host` interface is the current one with its own
/// types: same functions, same limits, one implementation. `$bindings` is
/// the version's bindings module (with `host` and `types`); the interfaces
/// listed have only types, so their host traits are empty.
macro_rules! host_delegating_to_current {
    ($bindings:ident, [$($($types_only:ident)::+),* $(,)?]) => {
        impl $bindings::types::Host for crate::state::StoreState {}
        $(impl $($types_only)::+::Host for crate::state::StoreState {})*

        impl $bindings::host::Host for crate::state::StoreState {
            fn log(&mut self, level: $bindings::types::LogLevel, message: String, fields: Vec<(String, String)>) {
                use crate::contract::convert::Convert;
                crate::contract::current::host::Host::log(self, level.convert(), message, fields)
            }

            fn now_unix_ms(&mut self) -> i64 {
                crate::contract::current::host::Host::now_unix_ms(self)
            }

            fn config_get(&mut self, key: String) -> Option<String> {
                crate::contract::current::host::Host::config_get(self, key)
            }

            fn secret_get(&mut self, key: String) -> Option<String> {
                crate::contract::current::host::Host::secret_get(self, key)
            }

            async fn http_fetch(
                &mut self,
                request: $bindings::host::HttpRequest,
            ) -> Result<$bindings::host::HttpResponse, $bindings::host::HttpError> {
                use crate::contract::convert::Convert;
                crate::contract::current::host::Host::http_fetch(self, request.convert()).await.convert()
            }
        }
    };
}

mod convert;
pub(crate) mod current;
mod v0_1;
mod v0_2;
mod v0_3;

use std::fmt;

use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};

use crate::config::PluginKind;
use crate::error::Failure;
use crate::state::StoreState;
use crate::types::*;

/// A version of the `powerbank:plugins` WIT package that this host loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Contract {
    V0_1,
    V0_2,
    V0_3,
    V0_4,
}

impl Contract {
    /// The contract of `wit/`, which the SDK builds against.
    pub const CURRENT: Contract = Contract::V0_4;
    /// Newest first.
    pub const SUPPORTED: [Contract; 4] = [Contract::V0_4, Contract::V0_3, Contract::V0_2, Contract::V0_1];

    /// The full version of the WIT package this host binds.
    pub fn version(self) -> &'static str {
        match self {
            Contract::V0_1 => "0.1.0",
            Contract::V0_2 => "0.2.0",
            Contract::V0_3 => "0.3.0",
            Contract::V0_4 => "0.4.0",
        }
    }

    /// What must match for two versions to be compatible: the major, or
    /// while it is 0 the minor (semver, as wasmtime's linker applies it).
    fn track(self) -> (u64, u64) {
        match self {
            Contract::V0_1 => (0, 1),
            Contract::V0_2 => (0, 2),
            Contract::V0_3 => (0, 3),
            Contract::V0_4 => (0, 4),
        }
    }

    /// The contract a component was built against, read from the versions of
    /// the `powerbank:plugins` interfaces it imports and exports.
    pub(crate) fn of(engine: &Engine, component: &Component) -> Result<Contract, String> {
        let ty = component.component_type();
        let names = ty.imports(engine).map(|(name, _)| name).chain(ty.exports(engine).map(|(name, _)| name));
        let mut versions: Vec<&str> =
            names.filter_map(|name| name.strip_prefix(PACKAGE)?.split_once('@').map(|(_, v)| v)).collect();
        versions.sort_unstable();
        versions.dedup();
        let supported = || {
            let list: Vec<&str> = Contract::SUPPORTED.iter().map(|c| c.version()).collect();
            list.join(", ")
        };
        match versions.as_slice() {
            [] => Err(format!(
                "uses no `powerbank:plugins` interface: not a powerbank plugin (this host speaks {})",
                supported()
            )),
            [version] => {
                let track = semver_track(version)
                    .ok_or_else(|| format!("names `powerbank:plugins@{version}`, which is not a version"))?;
                Contract::SUPPORTED.into_iter().find(|c| c.track() == track).ok_or_else(|| {
                    format!(
                        "was built against powerbank:plugins@{version}; this host speaks {} \
                         (see docs/plugins.md, \"Contract versions\")",
                        supported()
                    )
                })
            }
            several => Err(format!("mixes versions of powerbank:plugins: {}", several.join(", "))),
        }
    }
}

impl fmt::Display for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.version())
    }
}

const PACKAGE: &str = "powerbank:plugins/";

/// `(major, 0)`, or `(0, minor)` for a 0.x version.
fn semver_track(version: &str) -> Option<(u64, u64)> {
    let mut parts = version.split(['.', '-', '+']);
    let major: u64 = parts.next()?.parse().ok()?;
    let minor: u64 = parts.next()?.parse().ok()?;
    Some(if major == 0 { (0, minor) } else { (major, 0) })
}

/// Adds every supported version of `kind`'s world to a linker. Their
/// interfaces carry their version in their names, so they sit side by side.
pub(crate) fn add_to_linker(linker: &mut Linker<StoreState>, kind: PluginKind) -> wasmtime::Result<()> {
    type Data = wasmtime::component::HasSelf<StoreState>;
    match kind {
        PluginKind::Pricing => {
            current::pricing::Pricing::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_3::bindings::pricing::Pricing::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_2::bindings::pricing::Pricing::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_1::bindings::pricing::Pricing::add_to_linker::<_, Data>(linker, |s| s)
        }
        PluginKind::PointsRules => {
            current::points::PointsRules::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_3::bindings::points::PointsRules::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_2::bindings::points::PointsRules::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_1::bindings::points::PointsRules::add_to_linker::<_, Data>(linker, |s| s)
        }
        PluginKind::Promotions => {
            current::promotions::Promotions::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_3::bindings::promotions::Promotions::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_2::bindings::promotions::Promotions::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_1::bindings::promotions::Promotions::add_to_linker::<_, Data>(linker, |s| s)
        }
        PluginKind::PaymentGateway => {
            current::payment_gateway::PaymentGateway::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_3::bindings::payment_gateway::PaymentGateway::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_2::bindings::payment_gateway::PaymentGateway::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_1::bindings::payment_gateway::PaymentGateway::add_to_linker::<_, Data>(linker, |s| s)
        }
        PluginKind::StationProtocol => {
            current::station_protocol::StationProtocol::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_3::bindings::station_protocol::StationProtocol::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_2::bindings::station_protocol::StationProtocol::add_to_linker::<_, Data>(linker, |s| s)?;
            v0_1::bindings::station_protocol::StationProtocol::add_to_linker::<_, Data>(linker, |s| s)
        }
    }
}

/// One thing per supported contract version: a world's pre-linked
/// component, or an instance of it. A new version adds a case here.
pub(crate) enum Versioned<Current, V0_3, V0_2, V0_1> {
    Current(Current),
    V0_3(V0_3),
    V0_2(V0_2),
    V0_1(V0_1),
}

pub(crate) type Pricing = Versioned<
    current::pricing::Pricing,
    v0_3::bindings::pricing::Pricing,
    v0_2::bindings::pricing::Pricing,
    v0_1::bindings::pricing::Pricing,
>;
pub(crate) type PointsRules = Versioned<
    current::points::PointsRules,
    v0_3::bindings::points::PointsRules,
    v0_2::bindings::points::PointsRules,
    v0_1::bindings::points::PointsRules,
>;
pub(crate) type Promotions = Versioned<
    current::promotions::Promotions,
    v0_3::bindings::promotions::Promotions,
    v0_2::bindings::promotions::Promotions,
    v0_1::bindings::promotions::Promotions,
>;
pub(crate) type PaymentGateway = Versioned<
    current::payment_gateway::PaymentGateway,
    v0_3::bindings::payment_gateway::PaymentGateway,
    v0_2::bindings::payment_gateway::PaymentGateway,
    v0_1::bindings::payment_gateway::PaymentGateway,
>;
pub(crate) type StationProtocol = Versioned<
    current::station_protocol::StationProtocol,
    v0_3::bindings::station_protocol::StationProtocol,
    v0_2::bindings::station_protocol::StationProtocol,
    v0_1::bindings::station_protocol::StationProtocol,
>;

/// A component checked against its kind's world in its contract version;
/// instantiating it is the cheap, per-call part.
pub(crate) enum WorldPre {
    Pricing(
        Versioned<
            current::pricing::PricingPre<StoreState>,
            v0_3::bindings::pricing::PricingPre<StoreState>,
            v0_2::bindings::pricing::PricingPre<StoreState>,
            v0_1::bindings::pricing::PricingPre<StoreState>,
        >,
    ),
    Points(
        Versioned<
            current::points::PointsRulesPre<StoreState>,
            v0_3::bindings::points::PointsRulesPre<StoreState>,
            v0_2::bindings::points::PointsRulesPre<StoreState>,
            v0_1::bindings::points::PointsRulesPre<StoreState>,
        >,
    ),
    Promotions(
        Versioned<
            current::promotions::PromotionsPre<StoreState>,
            v0_3::bindings::promotions::PromotionsPre<StoreState>,
            v0_2::bindings::promotions::PromotionsPre<StoreState>,
            v0_1::bindings::promotions::PromotionsPre<StoreState>,
        >,
    ),
    Gateway(
        Versioned<
            current::payment_gateway::PaymentGatewayPre<StoreState>,
            v0_3::bindings::payment_gateway::PaymentGatewayPre<StoreState>,
            v0_2::bindings::payment_gateway::PaymentGatewayPre<StoreState>,
            v0_1::bindings::payment_gateway::PaymentGatewayPre<StoreState>,
        >,
    ),
    StationProtocol(
        Versioned<
            current::station_protocol::StationProtocolPre<StoreState>,
            v0_3::bindings::station_protocol::StationProtocolPre<StoreState>,
            v0_2::bindings::station_protocol::StationProtocolPre<StoreState>,
            v0_1::bindings::station_protocol::StationProtocolPre<StoreState>,
        >,
    ),
}

impl WorldPre {
    /// Checks the component against `kind`'s world of `contract`: every
    /// export present with the right type.
    pub fn new(contract: Contract, kind: PluginKind, pre: InstancePre<StoreState>) -> wasmtime::Result<Self> {
        macro_rules! pre {
            ($current:ty, $v0_3:ty, $v0_2:ty, $v0_1:ty) => {
                match contract {
                    Contract::V0_4 => Versioned::Current(<$current>::new(pre)?),
                    Contract::V0_3 => Versioned::V0_3(<$v0_3>::new(pre)?),
                    Contract::V0_2 => Versioned::V0_2(<$v0_2>::new(pre)?),
                    Contract::V0_1 => Versioned::V0_1(<$v0_1>::new(pre)?),
                }
            };
        }
        Ok(match kind {
            PluginKind::Pricing => WorldPre::Pricing(pre!(
                current::pricing::PricingPre<StoreState>,
                v0_3::bindings::pricing::PricingPre<StoreState>,
                v0_2::bindings::pricing::PricingPre<StoreState>,
                v0_1::bindings::pricing::PricingPre<StoreState>
            )),
            PluginKind::PointsRules => WorldPre::Points(pre!(
                current::points::PointsRulesPre<StoreState>,
                v0_3::bindings::points::PointsRulesPre<StoreState>,
                v0_2::bindings::points::PointsRulesPre<StoreState>,
                v0_1::bindings::points::PointsRulesPre<StoreState>
            )),
            PluginKind::Promotions => WorldPre::Promotions(pre!(
                current::promotions::PromotionsPre<StoreState>,
                v0_3::bindings::promotions::PromotionsPre<StoreState>,
                v0_2::bindings::promotions::PromotionsPre<StoreState>,
                v0_1::bindings::promotions::PromotionsPre<StoreState>
            )),
            PluginKind::PaymentGateway => WorldPre::Gateway(pre!(
                current::payment_gateway::PaymentGatewayPre<StoreState>,
                v0_3::bindings::payment_gateway::PaymentGatewayPre<StoreState>,
                v0_2::bindings::payment_gateway::PaymentGatewayPre<StoreState>,
                v0_1::bindings::payment_gateway::PaymentGatewayPre<StoreState>
            )),
            PluginKind::StationProtocol => WorldPre::StationProtocol(pre!(
                current::station_protocol::StationProtocolPre<StoreState>,
                v0_3::bindings::station_protocol::StationProtocolPre<StoreState>,
                v0_2::bindings::station_protocol::StationProtocolPre<StoreState>,
                v0_1::bindings::station_protocol::StationProtocolPre<StoreState>
            )),
        })
    }
}

/// A fresh instance in `store` of the world `$variant` of a `WorldPre`.
macro_rules! instantiate {
    ($fn_name:ident, $variant:ident, $instance:ty) => {
        /// A fresh instance in `store`; `None` if the component is of another kind.
        pub async fn $fn_name(&self, store: &mut Store<StoreState>) -> Option<Result<$instance, Failure>> {
            Some(match self {
                WorldPre::$variant(Versioned::Current(pre)) => {
                    export!(store, pre.instantiate_async(&mut *store)).map(Versioned::Current)
                }
                WorldPre::$variant(Versioned::V0_3(pre)) => {
                    export!(store, pre.instantiate_async(&mut *store)).map(Versioned::V0_3)
                }
                WorldPre::$variant(Versioned::V0_2(pre)) => {
                    export!(store, pre.instantiate_async(&mut *store)).map(Versioned::V0_2)
                }
                WorldPre::$variant(Versioned::V0_1(pre)) => {
                    export!(store, pre.instantiate_async(&mut *store)).map(Versioned::V0_1)
                }
                _ => return None,
            })
        }
    };
}

impl WorldPre {
    instantiate!(pricing, Pricing, Pricing);
    instantiate!(points, Points, PointsRules);
    instantiate!(promotions, Promotions, Promotions);
    instantiate!(gateway, Gateway, PaymentGateway);
    instantiate!(station_protocol, StationProtocol, StationProtocol);

    /// `info`, then `self-check`, on a fresh instance.
    pub async fn probe(&self, store: &mut Store<StoreState>) -> Result<(PluginInfo, Result<(), CallError>), Failure> {
        macro_rules! probe {
            ($instance:expr) => {{
                // `self` is of this kind, so the instance is too.
                let instance = $instance.ok_or_else(|| Failure::Internal("world mismatch".to_string()))??;
                let info = instance.info(store).await?;
                (info, instance.self_check(store).await?)
            }};
        }
        Ok(match self {
            WorldPre::Pricing(_) => probe!(self.pricing(store).await),
            WorldPre::Points(_) => probe!(self.points(store).await),
            WorldPre::Promotions(_) => probe!(self.promotions(store).await),
            WorldPre::Gateway(_) => probe!(self.gateway(store).await),
            WorldPre::StationProtocol(_) => probe!(self.station_protocol(store).await),
        })
    }
}

/// A plugin call's two layers: the plugin failing (trap, timeout...), or its answer.
pub(crate) type Answer<T, E> = Result<Result<T, E>, Failure>;

/// `info` and `self-check` of every world, current or not.
macro_rules! plugin_exports {
    ($($instance:ty),*) => {$(
        impl $instance {
            pub async fn info(&self, store: &mut Store<StoreState>) -> Result<PluginInfo, Failure> {
                match self {
                    Versioned::Current(i) => export!(store, i.call_info(&mut *store)),
                    Versioned::V0_3(i) => i.info(store).await,
                    Versioned::V0_2(i) => i.info(store).await,
                    Versioned::V0_1(i) => i.info(store).await,
                }
            }

            pub async fn self_check(&self, store: &mut Store<StoreState>) -> Answer<(), CallError> {
                match self {
                    Versioned::Current(i) => export!(store, i.call_self_check(&mut *store)),
                    Versioned::V0_3(i) => i.self_check(store).await,
                    Versioned::V0_2(i) => i.self_check(store).await,
                    Versioned::V0_1(i) => i.self_check(store).await,
                }
            }
        }
    )*};
}

plugin_exports!(Pricing, PointsRules, Promotions, PaymentGateway, StationProtocol);

impl Pricing {
    pub async fn quote(&self, store: &mut Store<StoreState>, request: &QuoteRequest) -> Answer<Quote, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_quote(&mut *store, request)),
            Versioned::V0_3(i) => i.quote(store, request).await,
            Versioned::V0_2(i) => i.quote(store, request).await,
            Versioned::V0_1(i) => i.quote(store, request).await,
        }
    }

    pub async fn price_extension(
        &self,
        store: &mut Store<StoreState>,
        request: &ExtensionRequest,
    ) -> Answer<i64, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_price_extension(&mut *store, request)),
            Versioned::V0_3(i) => i.price_extension(store, request).await,
            Versioned::V0_2(i) => i.price_extension(store, request).await,
            Versioned::V0_1(i) => i.price_extension(store, request).await,
        }
    }

    pub async fn overdue_charge(
        &self,
        store: &mut Store<StoreState>,
        request: &OverdueRequest,
    ) -> Answer<OverdueCharge, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_overdue_charge(&mut *store, request)),
            Versioned::V0_3(i) => i.overdue_charge(store, request).await,
            Versioned::V0_2(i) => i.overdue_charge(store, request).await,
            Versioned::V0_1(i) => i.overdue_charge(store, request).await,
        }
    }
}

impl Pricing {
    pub async fn lost_penalty(
        &self,
        store: &mut Store<StoreState>,
        request: &LostRequest,
    ) -> Answer<LostPolicy, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_lost_penalty(&mut *store, request)),
            Versioned::V0_3(i) => i.lost_penalty(store, request).await,
            Versioned::V0_2(i) => i.lost_penalty(store, request).await,
            Versioned::V0_1(i) => i.lost_penalty(store, request).await,
        }
    }
}

/// What a promotions plugin older than 0.4 (which has no campaigns) answers
/// when asked to validate one.
pub(crate) fn no_campaigns() -> CampaignRejection {
    CampaignRejection::UnsupportedOffer(
        "the promotions plugin was built against a contract older than 0.4.0, which has no campaigns".to_string(),
    )
}

/// What a pricing plugin older than 0.3 (which has no `lost-penalty`)
/// answers: reminded at the due time, lost a day later, NPR 5,000 penalty.
pub(crate) fn default_lost_policy() -> LostPolicy {
    LostPolicy {
        reminder_minutes: vec![0],
        lost_after_minutes: 24 * 60,
        penalty_paisa: 500_000,
        explanation: "Power bank not returned within 24 hours of its due time".to_string(),
    }
}

impl PointsRules {
    pub async fn award(
        &self,
        store: &mut Store<StoreState>,
        event: &PointsEvent,
        context: &CallContext,
    ) -> Answer<Vec<Award>, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_award(&mut *store, event, context)),
            Versioned::V0_3(i) => i.award(store, event, context).await,
            Versioned::V0_2(i) => i.award(store, event, context).await,
            Versioned::V0_1(i) => i.award(store, event, context).await,
        }
    }

    pub async fn points_to_paisa(&self, store: &mut Store<StoreState>, points: i64) -> Answer<i64, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_points_to_paisa(&mut *store, points)),
            Versioned::V0_3(i) => i.points_to_paisa(store, points).await,
            Versioned::V0_2(i) => i.points_to_paisa(store, points).await,
            Versioned::V0_1(i) => i.points_to_paisa(store, points).await,
        }
    }

    pub async fn expiry_days(&self, store: &mut Store<StoreState>) -> Answer<u32, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_expiry_days(&mut *store)),
            Versioned::V0_3(i) => i.expiry_days(store).await,
            Versioned::V0_2(i) => i.expiry_days(store).await,
            Versioned::V0_1(i) => i.expiry_days(store).await,
        }
    }
}

impl Promotions {
    pub async fn validate_campaign(
        &self,
        store: &mut Store<StoreState>,
        campaign: &Campaign,
    ) -> Answer<(), CampaignRejection> {
        match self {
            Versioned::Current(i) => export!(store, i.call_validate_campaign(&mut *store, campaign)),
            Versioned::V0_3(i) => i.validate_campaign(store, campaign).await,
            Versioned::V0_2(i) => i.validate_campaign(store, campaign).await,
            Versioned::V0_1(i) => i.validate_campaign(store, campaign).await,
        }
    }

    pub async fn decide_campaign_offer(
        &self,
        store: &mut Store<StoreState>,
        campaign: &Campaign,
        event: &CampaignEvent,
    ) -> Answer<OfferDecision, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_decide_campaign_offer(&mut *store, campaign, event)),
            Versioned::V0_3(i) => i.decide_campaign_offer(store, campaign, event).await,
            Versioned::V0_2(i) => i.decide_campaign_offer(store, campaign, event).await,
            Versioned::V0_1(i) => i.decide_campaign_offer(store, campaign, event).await,
        }
    }

    pub async fn apply_coupon(
        &self,
        store: &mut Store<StoreState>,
        coupon: &Coupon,
        order: &OrderSummary,
        usage: CouponUsage,
    ) -> Answer<CouponDecision, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_apply_coupon(&mut *store, coupon, order, usage)),
            Versioned::V0_3(i) => i.apply_coupon(store, coupon, order, usage).await,
            Versioned::V0_2(i) => i.apply_coupon(store, coupon, order, usage).await,
            Versioned::V0_1(i) => i.apply_coupon(store, coupon, order, usage).await,
        }
    }
}

impl PaymentGateway {
    pub async fn create_intent(
        &self,
        store: &mut Store<StoreState>,
        request: &CreateIntentRequest,
    ) -> Answer<PaymentIntent, GatewayError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_create_intent(&mut *store, request)),
            Versioned::V0_3(i) => i.create_intent(store, request).await,
            Versioned::V0_2(i) => i.create_intent(store, request).await,
            Versioned::V0_1(i) => i.create_intent(store, request).await,
        }
    }

    pub async fn verify(
        &self,
        store: &mut Store<StoreState>,
        request: &VerifyRequest,
    ) -> Answer<PaymentVerification, GatewayError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_verify(&mut *store, request)),
            Versioned::V0_3(i) => i.verify(store, request).await,
            Versioned::V0_2(i) => i.verify(store, request).await,
            Versioned::V0_1(i) => i.verify(store, request).await,
        }
    }

    pub async fn parse_webhook(
        &self,
        store: &mut Store<StoreState>,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Answer<WebhookEvent, GatewayError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_parse_webhook(&mut *store, headers, body)),
            Versioned::V0_3(i) => i.parse_webhook(store, headers, body).await,
            Versioned::V0_2(i) => i.parse_webhook(store, headers, body).await,
            Versioned::V0_1(i) => i.parse_webhook(store, headers, body).await,
        }
    }

    pub async fn refund(
        &self,
        store: &mut Store<StoreState>,
        request: &RefundRequest,
    ) -> Answer<RefundResult, GatewayError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_refund(&mut *store, request)),
            Versioned::V0_3(i) => i.refund(store, request).await,
            Versioned::V0_2(i) => i.refund(store, request).await,
            Versioned::V0_1(i) => i.refund(store, request).await,
        }
    }
}

impl StationProtocol {
    pub async fn topic_filters(&self, store: &mut Store<StoreState>) -> Answer<Vec<String>, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_topic_filters(&mut *store)),
            Versioned::V0_3(i) => i.topic_filters(store).await,
            Versioned::V0_2(i) => i.topic_filters(store).await,
            Versioned::V0_1(i) => i.topic_filters(store).await,
        }
    }

    pub async fn decode(
        &self,
        store: &mut Store<StoreState>,
        topic: &str,
        payload: &[u8],
    ) -> Answer<DecodedMessage, DecodeError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_decode(&mut *store, topic, payload)),
            Versioned::V0_3(i) => i.decode(store, topic, payload).await,
            Versioned::V0_2(i) => i.decode(store, topic, payload).await,
            Versioned::V0_1(i) => i.decode(store, topic, payload).await,
        }
    }

    pub async fn encode(
        &self,
        store: &mut Store<StoreState>,
        device_id: &str,
        command: &StationCommand,
    ) -> Answer<Vec<OutboundMessage>, CallError> {
        match self {
            Versioned::Current(i) => export!(store, i.call_encode(&mut *store, device_id, command)),
            Versioned::V0_3(i) => i.encode(store, device_id, command).await,
            Versioned::V0_2(i) => i.encode(store, device_id, command).await,
            Versioned::V0_1(i) => i.encode(store, device_id, command).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::semver_track;

    #[test]
    fn versions_are_compatible_within_their_track() {
        assert_eq!(semver_track("0.2.0"), Some((0, 2)));
        assert_eq!(semver_track("0.2.7"), Some((0, 2)));
        assert_eq!(semver_track("0.3.0-rc.1"), Some((0, 3)));
        assert_eq!(semver_track("1.4.2"), Some((1, 0)));
        assert_eq!(semver_track("x"), None);
    }
}
