//! The language a rider reads content in: `?lang=` first, then the
//! `Accept-Language` header (first supported tag by quality), then English.
//! An unknown or malformed value falls back instead of failing: a phone set
//! to French still gets the English terms.

use axum::{extract::FromRequestParts, http::request::Parts};

use crate::core::{ApiError, text_enum::text_enum};

text_enum! {
    /// A language content is written in.
    pub enum Lang {
        En = "en",
        Ne = "ne",
    }
}

/// The caller's preferred [`Lang`], as an extractor.
#[derive(Debug, Clone, Copy)]
pub struct PreferredLang(pub Lang);

impl PreferredLang {
    /// The languages to try, in order: the preferred one, then English.
    pub fn chain(self) -> [Lang; 2] {
        [self.0, Lang::En]
    }
}

fn primary(tag: &str) -> Option<Lang> {
    let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
    Lang::parse(&primary)
}

/// Reads `lang` from a query string and `Accept-Language` from a header value.
pub fn negotiate(query: Option<&str>, accept_language: Option<&str>) -> Lang {
    let from_query = query.and_then(|q| {
        q.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key == "lang").then(|| primary(value)).flatten()
        })
    });
    if let Some(lang) = from_query {
        return lang;
    }
    let Some(header) = accept_language else { return Lang::En };
    let mut tags: Vec<(f32, Lang)> = header
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let lang = primary(parts.next()?)?;
            let quality = parts
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok()))
                .unwrap_or(1.0);
            Some((quality, lang))
        })
        .collect();
    tags.sort_by(|a, b| b.0.total_cmp(&a.0));
    tags.first().map_or(Lang::En, |t| t.1)
}

impl<S: Send + Sync> FromRequestParts<S> for PreferredLang {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let header = parts.headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        Ok(PreferredLang(negotiate(parts.uri.query(), header)))
    }
}

#[cfg(test)]
mod tests {
    use super::{Lang, negotiate};

    #[test]
    fn query_then_header_then_english() {
        assert_eq!(negotiate(Some("lang=ne"), Some("en")), Lang::Ne);
        assert_eq!(negotiate(Some("x=1&lang=ne-NP"), None), Lang::Ne);
        assert_eq!(negotiate(Some("lang=fr"), Some("ne")), Lang::Ne);
        assert_eq!(negotiate(None, Some("fr-FR, ne;q=0.8, en;q=0.5")), Lang::Ne);
        assert_eq!(negotiate(None, Some("en;q=0.9, ne;q=0.3")), Lang::En);
        assert_eq!(negotiate(None, Some("de, fr")), Lang::En);
        assert_eq!(negotiate(Some("lang=%%%"), Some(";;;q=zz")), Lang::En);
        assert_eq!(negotiate(None, None), Lang::En);
    }
}
