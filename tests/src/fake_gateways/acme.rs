//! Acme Pay (`gateway-plugins/testing/acme-pay`): a gateway the host has
//! never heard of. It makes no outbound calls, so there is no fake server:
//! only its plugins.toml entry and how its webhooks are signed.

use super::{dist, hmac_sha256};

pub const ACME_WEBHOOK_SECRET: &str = "acme_whsec_3f1c9b7e";
pub const ACME_CHECKOUT_URL: &str = "https://checkout.acme.test/pay";
pub const ACME_ICON_URL: &str = "https://acme.test/icon.png";

/// The plugins.toml entry of Acme Pay under `name`, branded with an icon by config.
pub fn acme_pay_toml(name: &str) -> String {
    format!(
        r#"
[plugins.{name}]
kind = "payment-gateway"
path = "{path}"
secrets = {{ webhook_secret = {{ value = "{ACME_WEBHOOK_SECRET}" }} }}
[plugins.{name}.config]
checkout_url = "{ACME_CHECKOUT_URL}"
icon_url = "{ACME_ICON_URL}"
[plugins.{name}.limits]
max_outbound_calls = 0
"#,
        path = dist("acme_pay.wasm").display().to_string().replace('\\', "/"),
    )
}

/// The `Acme-Signature` header value for `body`.
pub fn acme_signature(secret: &str, body: &str) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(secret.as_bytes(), body.as_bytes())))
}
