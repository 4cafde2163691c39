//! Content through HTTP: pages per language with versions and sanitised
//! HTML, legal acceptance at registration and when asked, the FAQ with
//! full-text search and votes, support threads, the app changelog.

use powerbank_tests::{Reply, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{notifications, upload_png};

async fn publish(s: &TestServer, admin: &str, slug: &str, body: Value) -> Reply {
    s.post(&format!("/api/admin/content/pages/{slug}/versions"), Some(admin), body).await
}

async fn get_with_header(s: &TestServer, path: &str, accept_language: &str) -> Reply {
    let resp = s.http.get(s.url(path)).header("accept-language", accept_language).send().await.unwrap();
    TestServer::read(resp).await
}

const HOSTILE: &str = "# Rules\n\nBe **kind**. [Help](https://example.com/help)\n\n\
    <script>alert('x')</script>\n\n<iframe src=\"https://evil.example\"></iframe>\n\n\
    [tap me](javascript:alert(1)) <a href=\"jAvAsCrIpT:alert(2)\" onclick=\"steal()\">link</a>\n\n\
    <img src=\"https://example.com/a.png\" onerror=\"steal()\"> <div onmouseover=\"steal()\">hover</div>";

fn assert_harmless(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in ["<script", "<iframe", "javascript:", "onclick", "onerror", "onmouseover", "alert("] {
        assert!(!lower.contains(bad), "{bad} survived sanitising: {html}");
    }
}

#[tokio::test]
async fn pages_are_versioned_per_language_and_hostile_markdown_is_sanitised() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let rider = s.register("9841500001").await;

    let v1 = publish(
        &s,
        &admin.access,
        "about",
        json!({"texts": [
            {"lang": "en", "title": "About us", "markdown": "We rent **power banks**."},
            {"lang": "ne", "title": "हाम्रो बारेमा", "markdown": "हामी **पावर बैंक** भाडामा दिन्छौं।"}
        ]}),
    )
    .await;
    assert_eq!(v1.status, StatusCode::CREATED, "{}", v1.body);
    assert_eq!(v1.body["version"], 1);
    assert_eq!(v1.body["languages"], json!(["en", "ne"]));

    // Anyone reads it; the language comes from ?lang=, then Accept-Language, then English.
    let en = s.get("/api/content/pages/about", None).await;
    assert_eq!(en.status, StatusCode::OK, "{}", en.body);
    assert_eq!(en.body["lang"], "en");
    assert_eq!(en.body["html"], "<p>We rent <strong>power banks</strong>.</p>\n");
    assert_eq!(en.body["markdown"], "We rent **power banks**.");
    assert_eq!(en.headers["content-language"], "en");
    let ne = s.get("/api/content/pages/about?lang=ne", None).await;
    assert_eq!(ne.body["lang"], "ne");
    assert_eq!(ne.body["title"], "हाम्रो बारेमा");
    assert_eq!(ne.headers["content-language"], "ne");
    let by_header = get_with_header(&s, "/api/content/pages/about", "fr-FR, ne-NP;q=0.8, en;q=0.5").await;
    assert_eq!(by_header.body["lang"], "ne", "{}", by_header.body);
    for unknown in
        ["/api/content/pages/about?lang=fr", "/api/content/pages/about?lang=%ZZ", "/api/content/pages/about?lang="]
    {
        let r = s.get(unknown, None).await;
        assert_eq!(r.status, StatusCode::OK, "{unknown}: {}", r.body);
        assert_eq!(r.body["lang"], "en", "{unknown}");
    }

    // Version 2, English only, written by someone hostile (or careless).
    let v2 =
        publish(&s, &admin.access, "about", json!({"texts": [{"lang": "en", "title": "About", "markdown": HOSTILE}]}))
            .await;
    assert_eq!(v2.status, StatusCode::CREATED, "{}", v2.body);
    assert_eq!(v2.body["version"], 2);
    let latest = s.get("/api/content/pages/about?lang=ne", Some(&rider.access)).await;
    assert_eq!(latest.body["version"], 2);
    assert_eq!(latest.body["lang"], "en", "no Nepali text in v2: English is served");
    let html = latest.body["html"].as_str().unwrap();
    assert_harmless(html);
    assert!(html.contains("<strong>kind</strong>"), "{html}");
    assert!(html.contains("href=\"https://example.com/help\""), "{html}");
    assert_eq!(latest.body["markdown"], HOSTILE, "the source is kept as written");

    // The old version stays readable, in Nepali.
    let old = s.get("/api/content/pages/about?version=1&lang=ne", None).await;
    assert_eq!(old.status, StatusCode::OK, "{}", old.body);
    assert_eq!(old.body["version"], 1);
    assert_eq!(old.body["latest_version"], 2);
    assert_eq!(old.body["lang"], "ne");
    let versions = s.get("/api/content/pages/about/versions", None).await;
    let numbers: Vec<i64> = versions.body.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [2, 1]);
    let list = s.get("/api/content/pages?lang=ne", None).await;
    assert_eq!(list.body[0]["slug"], "about");
    assert_eq!(list.body[0]["version"], 2);

    // Refusals: who, what, and nothing changes.
    let text = json!({"texts": [{"lang": "en", "title": "T", "markdown": "x"}]});
    assert_eq!(publish(&s, &rider.access, "about", text.clone()).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.post("/api/admin/content/pages/about/versions", None, text.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    for (slug, body, status, code) in [
        (
            "about",
            json!({"texts": [{"lang": "ne", "title": "T", "markdown": "x"}]}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "about",
            json!({"texts": [{"lang": "fr", "title": "T", "markdown": "x"}]}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "about",
            json!({"texts": [{"lang": "en", "title": "", "markdown": "x"}]}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        (
            "about",
            json!({"texts": [{"lang": "en", "title": "T", "markdown": " "}]}),
            StatusCode::BAD_REQUEST,
            "validation_failed",
        ),
        ("Bad_Slug", text.clone(), StatusCode::BAD_REQUEST, "validation_failed"),
        (
            "about",
            json!({"texts": text["texts"], "requires_acceptance": true}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_legal_page",
        ),
    ] {
        let r = publish(&s, &admin.access, slug, body.clone()).await;
        assert_eq!(r.status, status, "{slug} {body}: {}", r.body);
        assert_eq!(r.error_code(), code, "{body}");
    }
    let versions = s.get("/api/content/pages/about/versions", None).await;
    assert_eq!(versions.body.as_array().unwrap().len(), 2, "a refused publish adds no version");
    assert_eq!(s.get("/api/content/pages/no-such-page", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/content/pages/about?version=9", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(s.get("/api/content/pages/about?version=x", None).await.status, StatusCode::BAD_REQUEST);

    // Operator-defined slugs work like the standard ones.
    let custom = publish(&s, &admin.access, "dashain-offer-2026", text).await;
    assert_eq!(custom.status, StatusCode::CREATED, "{}", custom.body);
    assert_eq!(s.get("/api/content/pages/dashain-offer-2026", None).await.body["title"], "T");
}

async fn me(s: &TestServer, token: &str) -> Value {
    let r = s.get("/api/auth/me", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

fn legal_text(title: &str) -> Value {
    json!([{"lang": "en", "title": title, "markdown": format!("{title} text")}])
}

#[tokio::test]
async fn registering_accepts_the_current_legal_texts_and_new_required_versions_are_asked_for() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let early = s.register("9841500101").await;

    let r = publish(&s, &admin.access, "terms", json!({"texts": legal_text("Terms v1"), "requires_acceptance": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r =
        publish(&s, &admin.access, "privacy", json!({"texts": legal_text("Privacy v1"), "requires_acceptance": true}))
            .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Registered before the terms existed: asked for both.
    let early_me = me(&s, &early.access).await;
    let legal = &early_me["legal"];
    assert_eq!(legal["acceptance_required"], true, "{legal}");
    assert_eq!(legal["pending"], json!([{"slug": "privacy", "version": 1}, {"slug": "terms", "version": 1}]));
    // Registering now accepts what is current.
    let late = s.register("9841500102").await;
    assert_eq!(late.user["legal"]["acceptance_required"], false, "{}", late.user);
    assert_eq!(me(&s, &late.access).await["legal"]["pending"], json!([]));

    // A new terms version that requires acceptance: both are asked again.
    let r = publish(&s, &admin.access, "terms", json!({"texts": legal_text("Terms v2"), "requires_acceptance": true}))
        .await;
    assert_eq!(r.body["version"], 2);
    assert_eq!(me(&s, &late.access).await["legal"]["pending"], json!([{"slug": "terms", "version": 2}]));
    // A privacy edit that does not require acceptance asks nothing.
    publish(&s, &admin.access, "privacy", json!({"texts": legal_text("Privacy v2")})).await;
    assert_eq!(me(&s, &late.access).await["legal"]["pending"], json!([{"slug": "terms", "version": 2}]));

    // Accepting: only the newest version of a legal page; the same twice is fine.
    let accept = |token: String, slug: &'static str, version: i64| {
        let s = &s;
        async move { s.post("/api/content/legal/accept", Some(&token), json!({"slug": slug, "version": version})).await }
    };
    let r = accept(late.access.clone(), "terms", 1).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.error_code(), "version_superseded");
    assert_eq!(r.body["error"]["details"]["latest_version"], 2);
    assert_eq!(accept(late.access.clone(), "about", 1).await.status, StatusCode::NOT_FOUND);
    assert_eq!(accept(late.access.clone(), "terms", 7).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.post("/api/content/legal/accept", None, json!({"slug": "terms", "version": 2})).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(me(&s, &late.access).await["legal"]["acceptance_required"], true, "refusals record nothing");
    let r = accept(late.access.clone(), "terms", 2).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"acceptance_required": false, "pending": []}));
    assert_eq!(accept(late.access.clone(), "terms", 2).await.status, StatusCode::OK);
    assert_eq!(me(&s, &late.access).await["legal"]["acceptance_required"], false);
    // The early rider accepts the newest of each.
    accept(early.access.clone(), "terms", 2).await;
    assert_eq!(me(&s, &early.access).await["legal"]["pending"], json!([{"slug": "privacy", "version": 2}]));
    accept(early.access.clone(), "privacy", 2).await;
    assert_eq!(s.get("/api/content/legal/status", Some(&early.access)).await.body["acceptance_required"], false);

    // Operators see the counts; riders do not.
    assert_eq!(s.get("/api/admin/content/legal/acceptances", Some(&late.access)).await.status, StatusCode::FORBIDDEN);
    let report = s.get("/api/admin/content/legal/acceptances", Some(&admin.access)).await;
    assert_eq!(report.status, StatusCode::OK, "{}", report.body);
    assert_eq!(report.body["active_riders"], 2);
    let count = |slug: &str, version: i64| {
        report.body["versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["slug"] == slug && v["version"] == version)
            .cloned()
            .unwrap_or_else(|| panic!("{slug} v{version}: {}", report.body))
    };
    assert_eq!(count("terms", 1)["accepted_at_signup"], 1);
    assert_eq!(count("terms", 2)["accepted_when_prompted"], 2);
    assert_eq!(count("privacy", 1)["accepted_at_signup"], 1);
    assert_eq!(count("privacy", 2)["accepted_when_prompted"], 1);
}

async fn faq_item(s: &TestServer, admin: &str, body: Value) -> i64 {
    let r = s.post("/api/admin/content/faq/items", Some(admin), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn faq_is_ordered_per_language_searchable_and_voted_once_per_rider() {
    let s = TestServer::start().await;
    let admin = s.admin().await;
    let (asha, bikash) = (s.register("9841500201").await, s.register("9841500202").await);

    for (slug, position, en, ne) in [("payments", 2, "Payments", "भुक्तानी"), ("renting", 1, "Renting", "भाडा")]
    {
        let r = s
            .post(
                "/api/admin/content/faq/categories",
                Some(&admin.access),
                json!({"slug": slug, "position": position, "names": [{"lang": "en", "name": en}, {"lang": "ne", "name": ne}]}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let dup = s
        .post(
            "/api/admin/content/faq/categories",
            Some(&admin.access),
            json!({"slug": "renting", "names": [{"lang": "en", "name": "X"}]}),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.body);

    let return_item = faq_item(
        &s,
        &admin.access,
        json!({"category": "renting", "position": 2, "texts": [
            {"lang": "en", "question": "How do I return a power bank?", "answer": "Push it into any free slot of any station."},
            {"lang": "ne", "question": "पावर बैंक कसरी फिर्ता गर्ने?", "answer": "कुनै पनि स्टेसनको खाली स्लटमा घुसाउनुहोस्।"}
        ]}),
    )
    .await;
    let rent_item = faq_item(
        &s,
        &admin.access,
        json!({"category": "renting", "position": 1, "texts": [
            {"lang": "en", "question": "How do I rent?", "answer": "Scan the station's QR code and choose a package. <script>alert(1)</script>"}
        ]}),
    )
    .await;
    let topup_item = faq_item(
        &s,
        &admin.access,
        json!({"category": "payments", "texts": [
            {"lang": "en", "question": "How do I top up my wallet?", "answer": "Use Khalti or eSewa from the wallet screen."}
        ]}),
    )
    .await;
    let hidden = faq_item(
        &s,
        &admin.access,
        json!({"category": "payments", "is_published": false, "texts": [
            {"lang": "en", "question": "Draft about wallet refunds", "answer": "Not ready."}
        ]}),
    )
    .await;

    // Order: categories, then items by position; unpublished items hidden.
    let faq = s.get("/api/content/faq?lang=ne", None).await;
    assert_eq!(faq.status, StatusCode::OK, "{}", faq.body);
    let cats = faq.body.as_array().unwrap();
    assert_eq!(cats.iter().map(|c| c["slug"].clone()).collect::<Vec<_>>(), [json!("renting"), json!("payments")]);
    assert_eq!(cats[0]["name"], "भाडा");
    let renting: Vec<i64> = cats[0]["items"].as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(renting, [rent_item, return_item]);
    assert_eq!(cats[0]["items"][1]["lang"], "ne");
    assert_eq!(cats[0]["items"][0]["lang"], "en", "no Nepali text: English");
    assert_harmless(cats[0]["items"][0]["answer_html"].as_str().unwrap());
    assert_eq!(cats[1]["items"].as_array().unwrap().len(), 1, "the draft is not shown: {}", cats[1]);
    let only = s.get("/api/content/faq?category=payments", None).await;
    assert_eq!(only.body.as_array().unwrap().len(), 1);

    // Full-text search: words in any order, the last one as a prefix, Nepali too.
    let search = |q: &str| {
        let url = format!("/api/content/faq/search?q={}", urlencode(q));
        let s = &s;
        async move { s.get(&url, None).await }
    };
    let r = search("wallet top").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ids: Vec<i64> = r.body.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [topup_item], "drafts never match: {}", r.body);
    let r = search("stat").await;
    let ids: Vec<i64> = r.body.as_array().unwrap().iter().map(|i| i["id"].as_i64().unwrap()).collect();
    assert!(ids.contains(&return_item) && ids.contains(&rent_item), "{}", r.body);
    let r = search("फिर्ता").await;
    assert_eq!(r.body[0]["id"], return_item, "{}", r.body);
    // FTS5 syntax in the query is taken as words, never an error.
    for hostile in ["\"", "wallet AND (", "*", "NEAR(a b)", "top-up: \"x", "'); DROP TABLE faq_items; --"] {
        let r = search(hostile).await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::BAD_REQUEST,
            "{hostile}: {} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(search("   ").await.status, StatusCode::BAD_REQUEST);

    // Votes: one per rider; voting again changes it; unknown or draft items 404.
    let vote = |token: String, id: i64, helpful: bool| {
        let s = &s;
        async move { s.post(&format!("/api/content/faq/{id}/vote"), Some(&token), json!({"helpful": helpful})).await }
    };
    assert_eq!(vote(asha.access.clone(), return_item, true).await.body["helpful_count"], 1);
    let again = vote(asha.access.clone(), return_item, true).await;
    assert_eq!((again.body["helpful_count"].clone(), again.body["not_helpful_count"].clone()), (json!(1), json!(0)));
    let changed = vote(asha.access.clone(), return_item, false).await;
    assert_eq!(
        (changed.body["helpful_count"].clone(), changed.body["not_helpful_count"].clone()),
        (json!(0), json!(1))
    );
    let other = vote(bikash.access.clone(), return_item, true).await;
    assert_eq!((other.body["helpful_count"].clone(), other.body["not_helpful_count"].clone()), (json!(1), json!(1)));
    assert_eq!(vote(asha.access.clone(), hidden, true).await.status, StatusCode::NOT_FOUND);
    assert_eq!(vote(asha.access.clone(), 999_999, true).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        s.post(&format!("/api/content/faq/{return_item}/vote"), None, json!({"helpful": true})).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Editing replaces the searchable text; deleting removes the item.
    let r = s
        .call(
            Method::PUT,
            &format!("/api/admin/content/faq/items/{topup_item}"),
            Some(&admin.access),
            Some(json!({"category": "payments", "texts": [{"lang": "en", "question": "How do I add money?", "answer": "Use a gateway."}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(search("wallet top").await.body, json!([]));
    assert_eq!(search("add money").await.body[0]["id"], topup_item);
    let r =
        s.call(Method::DELETE, &format!("/api/admin/content/faq/items/{topup_item}"), Some(&admin.access), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(search("add money").await.body, json!([]));
    assert_eq!(s.get("/api/admin/content/faq/items", Some(&admin.access)).await.body.as_array().unwrap().len(), 3);
    assert_eq!(s.get("/api/admin/content/faq/items", Some(&asha.access)).await.status, StatusCode::FORBIDDEN);
    let bad = s
        .post(
            "/api/admin/content/faq/items",
            Some(&admin.access),
            json!({"category": "nope", "texts": [{"lang": "en", "question": "Q", "answer": "A"}]}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
}

fn urlencode(raw: &str) -> String {
    raw.bytes().map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") }).collect()
}

#[tokio::test]
async fn riders_write_to_support_and_see_operator_replies_in_their_thread() {
    let s = TestServer::start().await;
    let db = powerbank::core::Db::open(&s.db_path(), 1).unwrap();
    powerbank::demo::seed_if_empty(&db).unwrap();
    let admin = s.admin().await;
    let (asha, bikash) = (s.register("9841500301").await, s.register("9841500302").await);
    let photo = upload_png(&s, &asha.access).await;
    let bikash_photo = upload_png(&s, &bikash.access).await;

    // Someone else's upload, an unknown station, a short message: refused, nothing opened.
    for bad in [
        json!({"subject": "Broken slot", "message": "Slot 3 is stuck", "upload_ids": [bikash_photo]}),
        json!({"subject": "Broken slot", "message": "Slot 3 is stuck", "station_sn": "NOPE-1"}),
        json!({"subject": "Broken slot", "message": "Slot 3 is stuck", "rental_id": 1}),
        json!({"subject": "Broken slot", "message": "x"}),
    ] {
        let r = s.post("/api/content/contact", Some(&asha.access), bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(s.get("/api/content/contact", Some(&asha.access)).await.body["results"], json!([]));

    let r = s
        .post(
            "/api/content/contact",
            Some(&asha.access),
            json!({"subject": "Broken slot", "message": "Slot 3 at Thamel is stuck.", "station_sn": "KTM-THAMEL-01",
                   "upload_ids": [photo]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let thread = r.body["id"].as_i64().unwrap();
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["station_sn"], "KTM-THAMEL-01");
    assert_eq!(r.body["messages"][0]["attachments"][0]["upload_id"], photo);

    // Only the rider and operators see it.
    assert_eq!(
        s.get(&format!("/api/content/contact/{thread}"), Some(&bikash.access)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get("/api/admin/support/threads", Some(&asha.access)).await.status, StatusCode::FORBIDDEN);
    let open = s.get("/api/admin/support/threads?status=open", Some(&admin.access)).await;
    assert_eq!(open.body["results"][0]["id"], thread, "{}", open.body);

    // The operator replies: the rider is notified and reads it in the thread.
    let r = s
        .post(
            &format!("/api/admin/support/threads/{thread}/reply"),
            Some(&admin.access),
            json!({"message": "A technician is on the way."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "answered");
    let inbox = notifications(&s, &asha.access, "").await;
    let note = inbox.iter().find(|n| n["template"] == "support_reply").unwrap_or_else(|| panic!("{inbox:?}"));
    assert_eq!(note["title"], "Support replied: Broken slot");
    assert_eq!(note["data"]["thread_id"], thread);
    assert!(notifications(&s, &bikash.access, "").await.iter().all(|n| n["template"] != "support_reply"));
    let seen = s.get(&format!("/api/content/contact/{thread}"), Some(&asha.access)).await;
    let bodies: Vec<&str> =
        seen.body["messages"].as_array().unwrap().iter().map(|m| m["body"].as_str().unwrap()).collect();
    assert_eq!(bodies, ["Slot 3 at Thamel is stuck.", "A technician is on the way."]);
    assert_eq!(seen.body["messages"][1]["from_operator"], true);

    // The rider answers (waiting for an operator again); the operator closes.
    let r = s
        .post(&format!("/api/content/contact/{thread}/messages"), Some(&asha.access), json!({"message": "Thanks!"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "open");
    let r = s
        .post(&format!("/api/content/contact/{thread}/messages"), Some(&bikash.access), json!({"message": "Me too"}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = s.post(&format!("/api/admin/support/threads/{thread}/close"), Some(&admin.access), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "closed");
    let r = s
        .post(&format!("/api/content/contact/{thread}/messages"), Some(&asha.access), json!({"message": "One more"}))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.error_code(), "thread_closed");
    let r = s
        .post(&format!("/api/admin/support/threads/{thread}/reply"), Some(&admin.access), json!({"message": "Late"}))
        .await;
    assert_eq!(r.error_code(), "thread_closed");
    assert_eq!(
        s.get(&format!("/api/content/contact/{thread}"), Some(&asha.access)).await.body["messages"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn app_updates_list_published_versions_newest_first() {
    let s = TestServer::start().await;
    let conn = rusqlite::Connection::open(s.db_path()).unwrap();
    let now = chrono::Utc::now().timestamp();
    for (version, notes, released) in [
        ("1.9.0", "Map", now - 3000),
        ("1.10.0", "Wallet", now - 2000),
        ("1.2.0", "First", now - 9000),
        ("2.0.0", "Not yet", now + 86_400),
    ] {
        conn.execute(
            "INSERT INTO app_versions (platform, version, min_supported_version, download_url, release_notes, released_at)
             VALUES ('android', ?1, '1.0.0', 'https://example.com/app', ?2, ?3)",
            rusqlite::params![version, notes, released],
        )
        .unwrap();
    }
    let r = s.get("/api/app/updates?platform=android", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let versions: Vec<&str> = r.body.as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.10.0", "1.9.0", "1.2.0"], "numeric order; the future one is not published yet");
    assert_eq!(r.body[0]["release_notes"], "Wallet");
    let since = s.get("/api/app/updates?platform=android&since=1.9.0", None).await;
    assert_eq!(since.body.as_array().unwrap().len(), 1);
    assert_eq!(s.get("/api/app/updates?platform=ios", None).await.body, json!([]));
    assert_eq!(s.get("/api/app/updates?platform=windows", None).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(s.get("/api/app/updates?platform=android&since=abc", None).await.status, StatusCode::BAD_REQUEST);
}
