//! Operator-written Markdown to HTML that is safe to show in the app's web
//! views: pulldown-cmark renders (raw HTML in the source passes through it),
//! then ammonia keeps only an allow-list of tags, attributes and URL schemes,
//! so `<script>`, `<iframe>`, `on*=` attributes and `javascript:` links never
//! reach a rider, whoever wrote the page.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder.url_schemes(["http", "https", "mailto", "tel"].into_iter().collect());
    builder.link_rel(Some("noopener noreferrer nofollow"));
    builder
});

/// Markdown → sanitised HTML.
pub fn to_safe_html(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut raw = String::with_capacity(markdown.len() * 5 / 4);
    html::push_html(&mut raw, Parser::new_ext(markdown, options));
    SANITIZER.clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    use super::to_safe_html;

    #[test]
    fn renders_markdown_and_strips_what_could_run() {
        let html = to_safe_html(
            "# Terms\n\n**Bold** [ok](https://example.com) [bad](javascript:alert(1))\n\n\
             <script>alert(1)</script>\n\n<iframe src=\"https://evil.test\"></iframe>\n\n\
             <img src=\"x.png\" onerror=\"alert(1)\">\n\n<a href=\"JaVaScRiPt:alert(1)\" onclick=\"x()\">c</a>",
        );
        assert!(html.contains("<h1>Terms</h1>"), "{html}");
        assert!(html.contains("<strong>Bold</strong>"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        let lower = html.to_ascii_lowercase();
        for bad in ["<script", "<iframe", "onerror", "onclick", "javascript:"] {
            assert!(!lower.contains(bad), "{bad} survived: {html}");
        }
    }
}
