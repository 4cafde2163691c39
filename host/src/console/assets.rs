//! The console's built files, embedded at compile time (`console/dist`) and
//! served under `/console/`.
//!
//! Vite names every script and stylesheet after its content
//! (`assets/index-3f9a1c.js`), so those are cached for a year; `index.html`
//! names the current ones and is revalidated on every load (ETag), so a new
//! binary is picked up at the next page load. Any other path without a file
//! extension is a client-side route and gets `index.html`.

use std::borrow::Cow;

use axum::{
    extract::Path,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};
use rust_embed::RustEmbed;

use crate::core::ApiError;

#[derive(RustEmbed)]
#[folder = "../console/dist/"]
struct Dist;

/// One file of the console build.
pub struct Asset {
    pub bytes: Cow<'static, [u8]>,
    pub content_type: String,
    pub sha256: [u8; 32],
}

/// Where the files come from: the embedded build, or a fixed set in tests.
pub trait Assets {
    fn get(&self, path: &str) -> Option<Asset>;
}

struct Embedded;

impl Assets for Embedded {
    fn get(&self, path: &str) -> Option<Asset> {
        Dist::get(path).map(|f| Asset {
            content_type: f.metadata.mimetype().to_string(),
            sha256: f.metadata.sha256_hash(),
            bytes: f.data,
        })
    }
}

/// The map's tile server: the one thing the console may load from the
/// internet (console/src/stations/map.ts names the same host).
const TILE_HOSTS: &str = "https://tile.openstreetmap.org";

/// Scripts and styles only from this origin, API calls only to it, images
/// also from `blob:` (KYC documents fetched with the operator's token) and
/// the tile server; no framing, no plugins, no inline script.
fn content_security_policy() -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: {TILE_HOSTS}; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

pub async fn index(headers: HeaderMap) -> Response {
    respond(&Embedded, "", &headers)
}

pub async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    respond(&Embedded, &path, &headers)
}

/// Answers `GET /console/{path}` from `assets`.
pub fn respond(assets: &impl Assets, path: &str, request: &HeaderMap) -> Response {
    if let Some(asset) = (!path.is_empty()).then(|| assets.get(path)).flatten() {
        let cache = if path.starts_with("assets/") { IMMUTABLE } else { "no-cache" };
        return send(asset, cache, request);
    }
    let last_segment = path.rsplit('/').next().unwrap_or_default();
    if last_segment.contains('.') {
        // A file the build does not have (an old hashed name, a typo): no HTML
        // in its place, or a stale script would be parsed as markup.
        return ApiError::not_found("console file").into_response();
    }
    match assets.get("index.html") {
        Some(asset) => send(asset, "no-cache", request),
        None => not_built(),
    }
}

fn send(asset: Asset, cache: &'static str, request: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex::encode(&asset.sha256[..16]));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let is_html = asset.content_type.starts_with("text/html");
    let mut response =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { asset.bytes.into_owned().into_response() };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&asset.content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    security_headers(headers, is_html);
    response
}

fn security_headers(headers: &mut axum::http::HeaderMap, is_html: bool) {
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if is_html {
        if let Ok(v) = HeaderValue::from_str(&content_security_policy()) {
            headers.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    }
}

/// What `/console` shows when the binary was built without the console.
fn not_built() -> Response {
    let mut response = Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>powerbank console not built</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem\">\
         <h1>The operator console is not in this build</h1>\
         <p>This <code>powerbank</code> binary was compiled before the console was built, so it has no \
         console to serve. The API itself works: see <a href=\"/api/docs\">/api/docs</a>.</p>\
         <p>To include the console, build it and then the host: <code>cargo xtask console</code> followed by \
         <code>cargo build</code>, or simply <code>cargo xtask run</code>. Building it needs Node.js 20 and npm \
         at build time only.</p></body></html>",
    )
    .into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    security_headers(response.headers_mut(), true);
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Fixed(HashMap<&'static str, (&'static str, &'static str)>);

    impl Assets for Fixed {
        fn get(&self, path: &str) -> Option<Asset> {
            self.0.get(path).map(|(content_type, body)| {
                let mut sha256 = [0u8; 32];
                sha256[0] = body.len() as u8;
                Asset { bytes: Cow::Borrowed(body.as_bytes()), content_type: content_type.to_string(), sha256 }
            })
        }
    }

    fn built() -> Fixed {
        Fixed(HashMap::from([
            ("index.html", ("text/html", "<html>app</html>")),
            ("assets/index-abc123.js", ("text/javascript", "console.log(1)")),
            ("favicon.svg", ("image/svg+xml", "<svg/>")),
        ]))
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn hashed_assets_are_immutable_and_index_is_revalidated() {
        let assets = built();
        let r = respond(&assets, "assets/index-abc123.js", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], IMMUTABLE);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/javascript");
        assert!(r.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
        assert_eq!(body(r).await, "console.log(1)");

        let r = respond(&assets, "", &HeaderMap::new());
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
        let csp = r.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(r.headers()[header::X_FRAME_OPTIONS], "DENY");

        let r = respond(&assets, "favicon.svg", &HeaderMap::new());
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-cache");
    }

    #[tokio::test]
    async fn client_routes_get_the_app_and_missing_files_a_404() {
        let assets = built();
        for route in ["stations", "stations/KTM-THAMEL-01", "kyc"] {
            let r = respond(&assets, route, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::OK, "{route}");
            assert_eq!(body(r).await, "<html>app</html>", "{route}");
        }
        for missing in ["assets/index-old999.js", "robots.txt", "../Cargo.toml"] {
            let r = respond(&assets, missing, &HeaderMap::new());
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
        }
    }

    #[tokio::test]
    async fn a_matching_etag_gets_304_without_a_body() {
        let assets = built();
        let first = respond(&assets, "", &HeaderMap::new());
        let etag = first.headers()[header::ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(header::IF_NONE_MATCH, etag.clone());
        let again = respond(&assets, "", &request);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[header::ETAG], etag);
        assert_eq!(body(again).await, "");
        request.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert_eq!(respond(&assets, "", &request).status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn without_a_build_the_page_says_how_to_make_one() {
        let r = respond(&Fixed(HashMap::new()), "", &HeaderMap::new());
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
        let page = body(r).await;
        assert!(page.contains("not in this build") && page.contains("cargo xtask run"), "{page}");
        let r = respond(&Fixed(HashMap::new()), "stations", &HeaderMap::new());
        assert!(body(r).await.contains("not in this build"));
    }
}
