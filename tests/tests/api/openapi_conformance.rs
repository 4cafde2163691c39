//! Every answer the server gives is in the OpenAPI document.
//!
//! The probe walks every operation of `/api/openapi.json` (so a route is
//! covered the day it is added) and sends what a careless or hostile client
//! would: no token, a rider's token, an operator's token, an empty JSON
//! object, a body of the wrong type, malformed JSON, a page size out of
//! range, an unknown id. Whatever the server answers must be a status that
//! operation documents, and never a 5xx: a generated client then has a type
//! for every answer it can get.

use std::collections::BTreeSet;

use powerbank_tests::TestServer;
use reqwest::{Method, header::CONTENT_TYPE};
use serde_json::Value;

use crate::support::openapi::{self, DocOperation};

struct Operation {
    method: Method,
    template: String,
    documented: BTreeSet<u16>,
    json_body: bool,
    multipart_body: bool,
    has_limit: bool,
    /// A server-sent event stream: only its status is read.
    streaming: bool,
}

impl Operation {
    /// The path with every `{param}` filled by an id nothing has.
    fn unknown_object_path(&self) -> String {
        openapi::fill_path(&self.template, |_| "987654".to_string())
    }

    /// Ends the caller's session or account: probed last.
    fn ends_the_session(&self) -> bool {
        self.template.ends_with("/logout") || (self.method == Method::DELETE && self.template == "/api/auth/account")
    }
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut ops: Vec<Operation> = openapi::operations(doc)
        .into_iter()
        .map(|DocOperation { method, path, op }| {
            let responses = op["responses"].as_object().expect("responses");
            let documented = responses.keys().filter_map(|k| k.parse().ok()).collect();
            let content = op["requestBody"]["content"].as_object();
            let has = |prefix: &str| content.is_some_and(|c| c.keys().any(|k| k.starts_with(prefix)));
            let parameters = op["parameters"].as_array().cloned().unwrap_or_default();
            let streaming = responses.values().any(|r| r["content"].get("text/event-stream").is_some());
            Operation {
                method,
                template: path.to_string(),
                documented,
                json_body: has("application/json"),
                multipart_body: has("multipart/"),
                has_limit: parameters.iter().any(|p| p["name"] == "limit" && p["in"] == "query"),
                streaming,
            }
        })
        .collect();
    ops.sort_by_key(Operation::ends_the_session);
    ops
}

enum Body {
    None,
    EmptyJson,
    Text,
    MalformedJson,
}

#[tokio::test]
async fn every_answer_the_server_gives_is_documented() {
    let s = TestServer::start().await;
    let doc = s.get("/api/openapi.json", None).await.body;
    let rider = s.register("+9779811100001").await.access;
    let operator = s.admin().await.access;

    let mut undocumented = Vec::new();
    let mut probes = 0;
    for op in operations(&doc) {
        let path = op.unknown_object_path();
        let token_for_op = if op.template.starts_with("/api/admin/") { &operator } else { &rider };
        let mut cases: Vec<(&str, Option<&str>, Body, String)> = vec![
            ("anonymous", None, Body::EmptyJson, path.clone()),
            ("rider", Some(rider.as_str()), Body::EmptyJson, path.clone()),
            ("operator", Some(operator.as_str()), Body::EmptyJson, path.clone()),
        ];
        if op.json_body || op.multipart_body {
            cases.push(("wrong content type", Some(token_for_op), Body::Text, path.clone()));
        }
        if op.json_body {
            cases.push(("malformed JSON", Some(token_for_op), Body::MalformedJson, path.clone()));
        }
        if op.has_limit {
            cases.push(("limit out of range", Some(token_for_op), Body::None, format!("{path}?limit=0")));
        }
        for (case, token, body, url) in cases {
            let mut req = s.http.request(op.method.clone(), s.url(&url));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let has_body = op.json_body || op.multipart_body;
            req = match body {
                _ if !has_body => req,
                Body::None => req,
                Body::EmptyJson => req.header(CONTENT_TYPE, "application/json").body("{}"),
                Body::Text => req.header(CONTENT_TYPE, "text/plain").body("hello"),
                Body::MalformedJson => req.header(CONTENT_TYPE, "application/json").body("{\"a\":"),
            };
            let resp = req.send().await.expect("request sent");
            let status = resp.status().as_u16();
            if !op.streaming {
                let _ = resp.bytes().await;
            }
            probes += 1;
            if !op.documented.contains(&status) {
                undocumented
                    .push(format!("{} {} ({case}): {status} not in {:?}", op.method, op.template, op.documented));
            }
        }
    }
    assert!(probes > 100, "only {probes} probes: is the document empty?");
    assert!(
        undocumented.is_empty(),
        "{} answers not in the document:\n{}",
        undocumented.len(),
        undocumented.join("\n")
    );
}

#[tokio::test]
async fn page_sizes_carry_their_bounds() {
    let s = TestServer::start().await;
    let doc = s.get("/api/openapi.json", None).await.body;
    let mut unbounded = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                if p["name"] == "limit" && (p["schema"]["minimum"] != 1 || !p["schema"]["maximum"].is_number()) {
                    unbounded.push(format!("{method} {template}: {}", p["schema"]));
                }
            }
        }
    }
    assert!(unbounded.is_empty(), "limit without minimum 1 and a maximum:\n{}", unbounded.join("\n"));
}
