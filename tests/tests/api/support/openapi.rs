//! Walking `/api/openapi.json`: the suites that cover every operation the day
//! it is added (authorization matrix, status conformance, money bounds) read
//! the document the same way.

use reqwest::Method;
use serde_json::Value;

/// One operation of the document.
pub struct DocOperation<'a> {
    pub method: Method,
    /// The path template, e.g. `/api/rentals/{id}/cancel`.
    pub path: &'a str,
    /// The operation object (`responses`, `requestBody`, `security`, ...).
    pub op: &'a Value,
}

/// Every operation: the HTTP-method entries of each path item that carry
/// `responses` (a path item's `parameters` or `summary` are not operations).
pub fn operations(doc: &Value) -> Vec<DocOperation<'_>> {
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("the document has paths") {
        for (method, op) in item.as_object().expect("a path item is an object") {
            if !METHODS.contains(&method.as_str()) || !op["responses"].is_object() {
                continue;
            }
            let method = method.to_uppercase().parse().expect("an HTTP method");
            out.push(DocOperation { method, path, op });
        }
    }
    out
}

/// The names of a path template's parameters, in order.
pub fn params(template: &str) -> Vec<String> {
    template.split('{').skip(1).filter_map(|p| p.split_once('}')).map(|(name, _)| name.to_string()).collect()
}

/// `template` with each `{name}` replaced by `value(name)`.
pub fn fill_path(template: &str, value: impl Fn(&str) -> String) -> String {
    let mut out = template.to_string();
    for name in params(template) {
        out = out.replace(&format!("{{{name}}}"), &value(&name));
    }
    out
}
