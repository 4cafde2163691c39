//! Every money input of every endpoint is bounded: walks the OpenAPI
//! document's request bodies for money fields (names ending `_paisa`, or
//! `amount`), checks each declares its range, and sends each the values an
//! attacker would (2^63−1, the most negative, −1, and just outside its
//! range): every one is refused with 422 `invalid_amount` while the request
//! is read, never 2xx or 5xx. A money field added tomorrow is covered the
//! day it is added.

use powerbank_tests::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::support::openapi::{self, DocOperation};

/// `schema` with a top-level `$ref` (or a one-element `allOf`/`oneOf`) resolved.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.trim_start_matches("#/components/schemas/");
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    for combinator in ["allOf", "oneOf", "anyOf"] {
        if let Some(parts) = schema[combinator].as_array() {
            // `Option<T>` is `oneOf: [null, T]`: the non-null part.
            if let Some(part) = parts.iter().find(|p| p["type"] != "null") {
                return resolve(spec, part);
            }
        }
    }
    schema
}

fn is_money(name: &str) -> bool {
    name.ends_with("_paisa") || name == "amount"
}

/// A money field of a JSON request body, with the range it declares.
#[derive(Debug)]
struct MoneyField {
    method: Method,
    path: String,
    field: String,
    minimum: Option<i64>,
    maximum: Option<i64>,
}

/// Every money field in a JSON request body of the document.
fn money_fields(spec: &Value) -> Vec<MoneyField> {
    let mut found = Vec::new();
    for DocOperation { method, path, op } in openapi::operations(spec) {
        let Some(body) = op["requestBody"]["content"]["application/json"]["schema"].as_object() else {
            continue;
        };
        let body = resolve(spec, &Value::Object(body.clone())).clone();
        let Some(properties) = body["properties"].as_object() else { continue };
        for (name, property) in properties {
            if !is_money(name) {
                continue;
            }
            let property = resolve(spec, property);
            found.push(MoneyField {
                method: method.clone(),
                path: path.to_string(),
                field: name.clone(),
                minimum: property["minimum"].as_i64(),
                maximum: property["maximum"].as_i64(),
            });
        }
    }
    found
}

#[tokio::test]
async fn every_money_input_is_bounded_and_refused_outside_its_range() {
    let s = TestServer::start().await;
    let spec = s.get("/api/openapi.json", None).await.body;
    let fields = money_fields(&spec);
    // The walk finds what it should (so it cannot pass by finding nothing).
    for (path, field) in [
        ("/api/wallet/topup-intent", "amount_paisa"),
        ("/api/payment/calculate-options", "amount_paisa"),
        ("/api/admin/coupons", "fixed_paisa"),
        ("/api/admin/coupons", "min_amount_paisa"),
        ("/api/admin/coupons", "max_discount_paisa"),
        ("/api/admin/coupons/{code}", "fixed_paisa"),
    ] {
        assert!(fields.iter().any(|m| m.path == path && m.field == field), "{path} {field} not found in {fields:?}");
    }

    let user = s.register("9841700101").await;
    let admin = s.admin().await;
    let mut failures = Vec::new();
    for MoneyField { method, path, field, minimum, maximum } in &fields {
        let (Some(minimum), Some(maximum)) = (*minimum, *maximum) else {
            failures.push(format!("{method} {path} `{field}` declares no minimum/maximum"));
            continue;
        };
        let token = if path.starts_with("/api/admin/") { &admin.access } else { &user.access };
        // Path parameters: any value; the body is read before the object is looked up.
        let url = openapi::fill_path(path, |_| "1".to_string());
        let mut refused = vec![i64::MAX, i64::MIN, maximum.saturating_add(1)];
        if minimum >= 0 {
            // Signed amounts (an operator's credit or debit) take negatives.
            refused.push(-1);
        }
        if minimum > i64::MIN {
            refused.push(minimum - 1);
        }
        for value in refused {
            // Only the money field: serde reads it (and refuses it) before it
            // notices any missing field.
            let body = Value::Object(Map::from_iter([(field.clone(), json!(value))]));
            let r = s.call(method.clone(), &url, Some(token), Some(body)).await;
            if (r.status, r.body["error"]["code"].as_str())
                != (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_amount"))
            {
                failures.push(format!("{method} {path} `{field}` = {value}: {} {}", r.status, r.body));
            }
        }
    }
    assert!(failures.is_empty(), "money inputs not bounded:\n{}", failures.join("\n"));
}
