//! `GET /api/docs`: the interactive API documentation (Scalar), served
//! entirely from the binary. utoipa-scalar's page loads its script from a
//! CDN, which leaves the page blank on an offline site; here the script is
//! vendored (see `host/assets/scalar/README.md`) and the page asks for no
//! web fonts, so nothing is fetched from outside.

use axum::{
    Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};

/// The vendored `@scalar/api-reference` release; its name is in the script's
/// URL, so browsers may cache it for good.
const SCALAR_VERSION: &str = "1.76.0";
const SCALAR_JS: &[u8] = include_bytes!("../assets/scalar/api-reference-1.76.0.js");

fn script_path() -> String {
    format!("/api/docs/api-reference-{SCALAR_VERSION}.js")
}

async fn page() -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <title>powerbank API</title>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
</head>
<body>
  <div id="app"></div>
  <script src="{script}"></script>
  <script>
    Scalar.createApiReference('#app', {{
      url: '/api/openapi.json',
      withDefaultFonts: false,
      hideClientButton: true,
    }})
  </script>
</body>
</html>
"#,
        script = script_path()
    ))
}

async fn script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        SCALAR_JS,
    )
}

/// The documentation page and its script.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/api/docs", get(page)).route(&script_path(), get(script))
}
