//! Assembles the HTTP service: domain routers, middleware, OpenAPI, and the
//! listener with graceful shutdown.

use std::{future::Future, sync::Arc, time::Instant};

use anyhow::Context;
use axum::{
    Json, Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, Method, StatusCode},
    middleware,
    routing::get,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use rusqlite::OptionalExtension;
use tower::{Layer, util::MapRequestLayer};
use tower_http::{
    compression::{
        CompressionLayer,
        predicate::{NotForContentType, Predicate, SizeAbove},
    },
    cors::{AllowOrigin, Any, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;
use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::router::OpenApiRouter;

use powerbank_plugin_runtime::{PluginHost, PluginHostOptions};

use crate::{
    admin, app_core,
    config::Config,
    core::{
        Db,
        access::{JwtKeys, RouteRoles},
        error,
        jobs::{self, Jobs},
        messenger::Messenger,
        metrics::{self, Metrics},
        now_ts,
    },
    kyc, notifications, packages,
    payments::{self, intents::IntentPurpose, purposes::PaymentPurposes},
    points, promotions, rentals, schema,
    settings::{self, Settings},
    state::AppState,
    stations::{
        self,
        link::{StationLink, broker::BrokerCredentials, hooks::LinkHooks},
    },
    users,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "powerbank API",
        description = "Power-bank rental network: stations, rentals, payments, points. Money is integer paisa (1 NPR = 100 paisa).",
    ),
    modifiers(&BearerAuth),
    components(schemas(error::ErrorBody)),
    tags(
        (name = "app", description = "Health, versions, countries, banners, uploads"),
        (name = "auth", description = "OTP sign-in, sessions, account"),
        (name = "profile", description = "The user's profile"),
        (name = "stations", description = "Stations and availability"),
        (name = "payments", description = "Packages, wallet, payments"),
        (name = "rentals", description = "Renting, extending and returning power banks"),
        (name = "admin", description = "Operator endpoints: each lists the operator roles it accepts in `x-roles` (docs/admin.md)"),
        (name = "ops", description = "Running a site: Prometheus metrics"),
        (name = "kyc", description = "Identity verification (KYC) submissions"),
        (name = "notifications", description = "In-app notifications and devices for push"),
        (name = "points", description = "Loyalty points and referrals"),
        (name = "promotions", description = "Coupons"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Every documented route of the API, with its OpenAPI document (each
/// operator route's `x-roles` completed by [`RouteRoles::declare`]).
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = routes();
    // An unknown role text stops `build_state`, which declares again.
    if let Err(e) = RouteRoles::declare(&mut doc) {
        tracing::error!(error = %e, "operator roles");
    }
    crate::api_contract::complete_answers(&mut doc);
    (router, doc)
}

/// The roles each operator route accepts, from the document's `x-roles`.
pub fn route_roles() -> anyhow::Result<RouteRoles> {
    let (_, mut doc) = routes();
    RouteRoles::declare(&mut doc).map_err(|e| anyhow::anyhow!("operator roles: {e}"))
}

fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(app_core::router())
        .merge(users::router())
        .merge(stations::router())
        .merge(stations::link::routes::router())
        .merge(packages::router())
        .merge(rentals::router())
        .merge(payments::router())
        .merge(crate::plugins::router())
        .merge(kyc::router())
        .merge(notifications::router())
        .merge(points::router())
        .merge(promotions::router())
        .merge(settings::router())
        .merge(crate::console::router())
        .merge(admin::router())
        .merge(crate::analytics::router())
        .merge(crate::content::router())
        .merge(crate::social::router())
        .merge(crate::ops::metrics::router())
        .split_for_parts()
}

/// Reads a generated secret, creating it on first start.
fn server_secret(db: &Db, name: &str) -> anyhow::Result<Vec<u8>> {
    db.blocking_write(|tx| {
        let existing: Option<String> =
            tx.query_row("SELECT value FROM server_secrets WHERE name = ?1", [name], |r| r.get(0)).optional()?;
        let encoded = match existing {
            Some(v) => v,
            None => {
                let mut bytes = [0u8; 32];
                rand::rng().fill_bytes(&mut bytes);
                let v = STANDARD.encode(bytes);
                tx.execute(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES (?1, ?2, ?3)",
                    rusqlite::params![name, v, now_ts()],
                )?;
                v
            }
        };
        STANDARD.decode(encoded).context("stored secret is not base64")
    })
}

/// Opens the database, loads the plugins and builds the state every handler
/// shares.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let db = schema::open_db(&config.db_path, config.reader_connections)?;
    let jwt_secret = match &config.jwt_secret {
        Some(s) if s.len() >= 32 => s.as_bytes().to_vec(),
        Some(_) => anyhow::bail!("the JWT secret must be at least 32 characters"),
        None => server_secret(&db, "jwt_signing_key")?,
    };
    let otp_pepper = server_secret(&db, "otp_pepper")?;
    let broker_secret = server_secret(&db, "mqtt_broker_secret")?;
    let plugin_options = PluginHostOptions { watch: config.watch_plugins, ..Default::default() };
    let releases = crate::plugins::releases::serving_releases(&db, &config.data_dir)?;
    let (plugins, report) = PluginHost::start_with_releases(&config.plugins_path, plugin_options, releases)
        .await
        .map_err(|e| anyhow::anyhow!("plugins ({}): {e}", config.plugins_path.display()))?;
    for failure in &report.failed {
        tracing::error!(plugin = %failure.0, error = %failure.1, "plugin not loaded");
    }
    let metrics = Arc::new(Metrics::new());
    plugins.observe_calls(crate::ops::metrics::plugin_call_observer(metrics.clone()));
    let station_link = StationLink::new(
        config.link.clone(),
        BrokerCredentials::new(&broker_secret),
        plugins.clone(),
        db.clone(),
        station_hooks(),
        metrics.clone(),
    );
    let (storage, private_storage) = crate::core::storage::build(&config).await?;
    let messenger = Messenger::new(config.sms.clone(), config.email.clone())?;
    let station_pages = Arc::new(stations::page_cache::PageCache::new(&db));
    let app_versions = app_core::VersionCache::new(&db);
    Ok(AppState {
        db,
        jwt: Arc::new(JwtKeys::new(&jwt_secret)),
        route_roles: Arc::new(route_roles()?),
        otp_pepper: otp_pepper.into(),
        messenger: Arc::new(messenger),
        storage,
        private_storage,
        started_at: Instant::now(),
        app_versions,
        settings: settings(&config),
        jobs: job_handlers(config.job_idle_poll, metrics.clone()),
        station_link: Arc::new(station_link),
        station_pages,
        payment_purposes: payment_purposes(),
        plugins,
        metrics,
        config: Arc::new(config),
    })
}

/// What happens beyond the stations' own tables when a station reports a bank
/// leaving or entering a slot: the rentals domain matches it to rentals.
fn station_hooks() -> LinkHooks {
    // A bank seated for a swap starts the swap; any other is a return.
    LinkHooks::default().on_ejected(rentals::lifecycle::on_ejected).on_returned(rentals::swap::on_bank_returned)
}

/// What gateway payments of each purpose do beyond top-ups: the domains that
/// sell through a gateway register here, so payments names none of them.
fn payment_purposes() -> PaymentPurposes {
    PaymentPurposes::default()
        .with(IntentPurpose::Rental, rentals::orders::RentalPayments)
        .with(IntentPurpose::RentalDue, rentals::due_payments::DuePayments)
        .with(IntentPurpose::RentalExtension, rentals::due_payments::ExtensionPayments)
}

/// Every operator setting, registered by the domain that reads it.
fn settings(config: &Config) -> Settings {
    let settings = Settings::builder();
    let settings = payments::settings::register(settings);
    let settings = admin::broadcasts::register_settings(settings);
    rentals::settings::register(settings, &config.rentals).build()
}

/// Every background job kind and the domain code that runs it: each domain
/// registers its own, as each merges its own router.
fn job_handlers(idle_poll: std::time::Duration, metrics: Arc<Metrics>) -> Jobs<AppState> {
    let jobs = Jobs::builder().idle_poll(idle_poll).metrics(metrics);
    let jobs = notifications::jobs(jobs);
    let jobs = payments::jobs(jobs);
    let jobs = points::jobs(jobs);
    let jobs = crate::social::jobs(jobs);
    let jobs = admin::jobs(jobs);
    let jobs = promotions::jobs(jobs);
    rentals::jobs(jobs).build()
}

async fn not_found() -> error::ApiError {
    error::ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// The complete service: API routes, docs, media files and middleware.
pub fn app(state: AppState) -> Router {
    let config = state.config.clone();
    let metrics = state.metrics.clone();
    let (api, openapi) = api();
    let spec = Arc::new(openapi);
    let request_id = HeaderName::from_static("x-request-id");

    let cors = if config.cors_origins.is_empty() {
        CorsLayer::new().allow_origin(Any)
    } else {
        let origins: Vec<HeaderValue> = config.cors_origins.iter().filter_map(|o| o.parse().ok()).collect();
        CorsLayer::new().allow_origin(AllowOrigin::list(origins))
    }
    .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
    .allow_headers(Any);

    // Uploads and plugin releases carry their own, larger limits; everything
    // else is small JSON.
    let upload_limit = config.upload_max_bytes.max(config.plugin_release_max_bytes) + 64 * 1024;
    let api = api
        .route_layer(DefaultBodyLimit::max(config.json_body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(upload_limit.max(config.json_body_limit_bytes)))
        .method_not_allowed_fallback(|| async {
            error::ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        });

    let routed = Router::new()
        .merge(api)
        .route("/api/openapi.json", get(move || async move { Json(spec.as_ref().clone()) }))
        .merge(crate::api_docs::router())
        .merge(crate::demo_checkout::router())
        .merge(crate::core::storage::media_routes(&config))
        .route_layer(middleware::from_fn(metrics::tag_route))
        .fallback(not_found)
        .with_state(state)
        .layer(middleware::from_fn(error::error_shape_layer))
        // Small answers (a balance, a profile) cost more to gzip than they
        // save on the wire: compress from 1 KiB.
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(1024)
                    .and(NotForContentType::GRPC)
                    .and(NotForContentType::IMAGES)
                    .and(NotForContentType::SSE),
            ),
        )
        .layer(cors)
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, config.request_timeout))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<_>| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(middleware::from_fn_with_state(metrics, metrics::track_requests))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // Routing happens inside a Router, so a layer that changes the path must
    // wrap the whole routed service (a `Router::layer` would run too late).
    Router::new().fallback_service(MapRequestLayer::new(trim_api_trailing_slash::<axum::body::Body>).layer(routed))
}

/// `/api/stations/` reaches `/api/stations`: apps written against the spec
/// (Django routes end in a slash) work unchanged. Only API paths: the
/// console's `/console/` is a route of its own.
fn trim_api_trailing_slash<B>(mut req: axum::http::Request<B>) -> axum::http::Request<B> {
    let path = req.uri().path();
    if !(path.starts_with("/api/") && path.len() > "/api/".len() && path.ends_with('/')) {
        return req;
    }
    let trimmed = path.trim_end_matches('/');
    let rebuilt = match req.uri().query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    };
    if let Ok(path_and_query) = rebuilt.parse::<axum::http::uri::PathAndQuery>() {
        let mut parts = req.uri().clone().into_parts();
        parts.path_and_query = Some(path_and_query);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Serves until `shutdown` resolves, then serves the connections waiting to
/// be accepted, lets in-flight requests finish and stops the background
/// worker after its current job.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_background, background_stopped) = tokio::sync::watch::channel(false);
    state.db.write(|tx| rentals::lifecycle::schedule_sweep(tx, now_ts())).await?;
    points::schedule_expiry(&state).await?;
    StationLink::start(&state, background_stopped.clone())?;
    crate::plugins::releases::candidates::start_notice_listener(&state);
    crate::ops::start(&state, background_stopped.clone());
    crate::ops::metrics::start(&state, background_stopped.clone()).await?;
    let worker = tokio::spawn(jobs::worker(state.clone(), background_stopped));
    let limits = state.config.http.clone();
    let served = crate::core::http_listener::serve(listener, app(state), limits, shutdown).await.context("HTTP server");
    let _ = stop_background.send(true);
    let _ = worker.await;
    served
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
