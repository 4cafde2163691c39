//! `plugins.toml`: which plugin serves which kind, with its config, secrets,
//! limits and allowed hosts. Parsed once per (re)load into typed values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The kinds of plugin, one WIT world each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    Pricing,
    PointsRules,
    Promotions,
    PaymentGateway,
    StationProtocol,
}

impl PluginKind {
    pub const ALL: [PluginKind; 5] = [
        PluginKind::Pricing,
        PluginKind::PointsRules,
        PluginKind::Promotions,
        PluginKind::PaymentGateway,
        PluginKind::StationProtocol,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Pricing => "pricing",
            PluginKind::PointsRules => "points-rules",
            PluginKind::Promotions => "promotions",
            PluginKind::PaymentGateway => "payment-gateway",
            PluginKind::StationProtocol => "station-protocol",
        }
    }

    /// Kinds of which only one plugin may be enabled at a time. The others
    /// (gateways, station protocols) are addressed by name.
    pub fn is_singleton(self) -> bool {
        !matches!(self, PluginKind::PaymentGateway | PluginKind::StationProtocol)
    }

    /// Station protocols are pure translators: they get no outbound HTTP.
    pub fn may_call_out(self) -> bool {
        self != PluginKind::StationProtocol
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The version of the plugins.toml format this host reads.
pub const FORMAT_VERSION: u32 = 1;

/// The whole file, validated; plugin paths are resolved against its folder.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    /// The file's `version` (the format, not any plugin's): always
    /// [`FORMAT_VERSION`] once parsed.
    pub version: u32,
    /// `[signing] trusted_keys`: hex ed25519 public keys. When there are
    /// any, every component needs a signature by one of them, unless its
    /// slot says `allow_unsigned = true`.
    pub trusted_keys: Vec<String>,
    pub plugins: Vec<PluginConfig>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    pub name: String,
    pub kind: PluginKind,
    /// Absolute (or as given, if it was absolute) path of the component.
    pub path: PathBuf,
    pub enabled: bool,
    pub config: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, SecretSource>,
    pub limits: Limits,
    pub allowed_hosts: Vec<AllowedHost>,
    /// Loads without a signature even when plugins.toml trusts keys.
    pub allow_unsigned: bool,
}

/// Per-call resource limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory a plugin may grow to, per call.
    pub memory_mb: u32,
    /// Wall-clock budget of one call, host calls included.
    pub timeout_ms: u64,
    /// `http-fetch` calls allowed during one call.
    pub max_outbound_calls: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_mb: 64, timeout_ms: 500, max_outbound_calls: 4 }
    }
}

/// Where a secret's value comes from. Inline values are for development.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SecretSource {
    /// `{ env = "VAR" }`: read from the host's environment at load time.
    Env(String),
    /// `{ value = "..." }`: given inline.
    Value(String),
}

impl SecretSource {
    pub fn resolve(&self, key: &str) -> Result<String, String> {
        match self {
            SecretSource::Value(v) => Ok(v.clone()),
            SecretSource::Env(var) => {
                std::env::var(var).map_err(|_| format!("secret `{key}`: environment variable {var} is not set"))
            }
        }
    }
}

/// One `allowed_hosts` entry: `host`, `host:port`, `scheme://host[:port]`, or
/// a `*.` prefix for any subdomain. Without a port only the scheme's default
/// port is allowed; without a scheme both http and https are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub scheme: Option<String>,
    /// Lower-case; starts with `*.` for a subdomain wildcard.
    pub host: String,
    pub port: Option<u16>,
}

impl AllowedHost {
    pub fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let (scheme, rest) = match entry.split_once("://") {
            Some((s, rest)) => {
                let s = s.to_ascii_lowercase();
                if s != "http" && s != "https" {
                    return Err(format!("allowed host `{entry}`: scheme must be http or https"));
                }
                (Some(s), rest)
            }
            None => (None, entry),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') || rest.is_empty() {
            return Err(format!("allowed host `{entry}`: expected host[:port]"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse::<u16>().map_err(|_| format!("allowed host `{entry}`: bad port `{p}`"))?;
                (h, Some(port))
            }
            None => (rest, None),
        };
        let host = host.to_ascii_lowercase();
        let bare = host.strip_prefix("*.").unwrap_or(&host);
        if bare.is_empty() || bare.contains('*') {
            return Err(format!("allowed host `{entry}`: `*` only as a leading `*.`"));
        }
        Ok(AllowedHost { scheme, host, port })
    }

    /// Whether a request to `scheme://host:port` may go out.
    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme.as_deref().is_some_and(|s| s != scheme) {
            return false;
        }
        let default_port = if scheme == "https" { 443 } else { 80 };
        if self.port.unwrap_or(default_port) != port {
            return false;
        }
        let host = host.to_ascii_lowercase();
        match self.host.strip_prefix("*.") {
            Some(domain) => host.strip_suffix(domain).is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => host == self.host,
        }
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = &self.scheme {
            write!(f, "{s}://")?;
        }
        f.write_str(&self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        Ok(())
    }
}

// The on-disk shape, kept apart from the validated one above.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    /// The format version; files written before it existed have none.
    version: Option<i64>,
    #[serde(default)]
    signing: RawSigning,
    #[serde(default)]
    plugins: BTreeMap<String, RawPlugin>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSigning {
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    kind: PluginKind,
    path: PathBuf,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    #[serde(default)]
    secrets: BTreeMap<String, SecretSource>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    allow_unsigned: bool,
}

fn yes() -> bool {
    true
}

impl PluginsConfig {
    /// Reads and validates `path`; relative plugin paths are taken from its folder.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, base_dir: &Path) -> Result<Self, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let version = match raw.version {
            Some(v) if v == i64::from(FORMAT_VERSION) => FORMAT_VERSION,
            // Every file from before the key existed is in format 1.
            None => {
                tracing::warn!("plugins.toml has no `version`; reading it as version = {FORMAT_VERSION}");
                FORMAT_VERSION
            }
            Some(other) => {
                return Err(format!(
                    "version = {other}: this host reads plugins.toml format version {FORMAT_VERSION} \
                     (see docs/plugins.md)"
                ));
            }
        };
        let mut plugins = Vec::with_capacity(raw.plugins.len());
        for (name, p) in raw.plugins {
            plugins.push(validate_plugin(name, p, base_dir)?);
        }
        // Two enabled plugins of a singleton kind would make "the" pricing
        // plugin ambiguous; refuse rather than pick one silently.
        let mut seen = BTreeSet::new();
        for p in plugins.iter().filter(|p| p.enabled && p.kind.is_singleton()) {
            if !seen.insert(p.kind) {
                return Err(format!("more than one enabled plugin of kind {} (only one may serve it)", p.kind));
            }
        }
        for key in &raw.signing.trusted_keys {
            crate::signing::parse_public_key(key).map_err(|e| format!("signing.trusted_keys: {e}"))?;
        }
        let trusted_keys = raw.signing.trusted_keys.iter().map(|k| k.trim().to_ascii_lowercase()).collect();
        Ok(PluginsConfig { version, trusted_keys, plugins })
    }

    pub fn enabled(&self) -> impl Iterator<Item = &PluginConfig> {
        self.plugins.iter().filter(|p| p.enabled)
    }
}

fn validate_plugin(name: String, p: RawPlugin, base_dir: &Path) -> Result<PluginConfig, String> {
    let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(format!("plugin name `{name}`: use letters, digits, `-` and `_`"));
    }
    let mut config = BTreeMap::new();
    for (key, value) in p.config {
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(format!(
                    "plugins.{name}.config.{key}: expected a string, integer or boolean, got {}",
                    other.type_str()
                ));
            }
        };
        config.insert(key, text);
    }
    if p.limits.memory_mb == 0 || p.limits.timeout_ms == 0 {
        return Err(format!("plugins.{name}.limits: memory_mb and timeout_ms must be positive"));
    }
    let allowed_hosts = p
        .allowed_hosts
        .iter()
        .map(|h| AllowedHost::parse(h).map_err(|e| format!("plugins.{name}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut limits = p.limits;
    if !p.kind.may_call_out() {
        if !allowed_hosts.is_empty() {
            return Err(format!("plugins.{name}: a {} plugin makes no outbound calls; remove allowed_hosts", p.kind));
        }
        limits.max_outbound_calls = 0;
    }
    Ok(PluginConfig {
        name,
        kind: p.kind,
        path: base_dir.join(p.path),
        enabled: p.enabled,
        config,
        secrets: p.secrets,
        limits,
        allowed_hosts,
        allow_unsigned: p.allow_unsigned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
        version = 1

        [plugins.pricing-standard]
        kind = "pricing"
        path = "plugins/dist/pricing_standard.wasm"
        allowed_hosts = ["api.example.com", "http://localhost:8080", "*.khalti.com"]
        [plugins.pricing-standard.config]
        overdue_paisa_per_hour = 500
        label = "std"
        [plugins.pricing-standard.limits]
        timeout_ms = 100

        [plugins.khalti]
        kind = "payment-gateway"
        path = "/abs/khalti.wasm"
        enabled = false
        secrets = { api_key = { env = "KHALTI_KEY" }, dev = { value = "x" } }
    "#;

    #[test]
    fn parses_the_documented_shape() -> Result<(), String> {
        let cfg = PluginsConfig::parse(SAMPLE, Path::new("/srv/pb"))?;
        let pricing = &cfg.plugins[1];
        assert_eq!(pricing.name, "pricing-standard");
        assert_eq!(pricing.path, PathBuf::from("/srv/pb/plugins/dist/pricing_standard.wasm"));
        assert_eq!(pricing.config["overdue_paisa_per_hour"], "500");
        assert_eq!(pricing.limits.timeout_ms, 100);
        assert_eq!(pricing.limits.memory_mb, 64);
        let khalti = &cfg.plugins[0];
        assert!(!khalti.enabled);
        assert_eq!(khalti.path, PathBuf::from("/abs/khalti.wasm"));
        assert_eq!(khalti.secrets["api_key"], SecretSource::Env("KHALTI_KEY".into()));
        Ok(())
    }

    #[test]
    fn the_format_version_is_1_and_may_be_left_out() -> Result<(), String> {
        assert_eq!(PluginsConfig::parse(SAMPLE, Path::new("."))?.version, 1);
        let without = PluginsConfig::parse("[plugins.a]\nkind = \"pricing\"\npath = \"a.wasm\"\n", Path::new("."))?;
        assert_eq!((without.version, without.plugins.len()), (1, 1));
        for other in ["version = 2", "version = 0", "version = -1"] {
            let err = PluginsConfig::parse(other, Path::new(".")).err().unwrap_or_default();
            assert!(err.contains("format version 1"), "{other}: {err}");
        }
        let err = PluginsConfig::parse("version = \"1\"", Path::new(".")).err().unwrap_or_default();
        assert!(err.contains("version"), "{err}");
        Ok(())
    }

    #[test]
    fn refuses_two_active_pricing_plugins() {
        let text = r#"
            [plugins.a]
            kind = "pricing"
            path = "a.wasm"
            [plugins.b]
            kind = "pricing"
            path = "b.wasm"
        "#;
        let err = PluginsConfig::parse(text, Path::new(".")).err();
        assert!(err.is_some_and(|e| e.contains("more than one")));
    }

    #[test]
    fn refuses_unknown_keys_and_nested_config() {
        let unknown = "[plugins.a]\nkind = \"pricing\"\npath = \"a.wasm\"\nmemory = 3\n";
        assert!(PluginsConfig::parse(unknown, Path::new(".")).is_err());
        let nested = "[plugins.a]\nkind = \"pricing\"\npath = \"a.wasm\"\nconfig = { x = [1] }\n";
        assert!(PluginsConfig::parse(nested, Path::new(".")).is_err());
    }

    #[test]
    fn allowlist_matching() -> Result<(), String> {
        let plain = AllowedHost::parse("api.example.com")?;
        assert!(plain.allows("https", "api.example.com", 443));
        assert!(plain.allows("http", "API.example.com", 80));
        assert!(!plain.allows("https", "api.example.com", 8443));
        assert!(!plain.allows("https", "evil.com", 443));
        assert!(!plain.allows("https", "api.example.com.evil.com", 443));

        let exact = AllowedHost::parse("http://localhost:8080")?;
        assert!(exact.allows("http", "localhost", 8080));
        assert!(!exact.allows("https", "localhost", 8080));

        let wild = AllowedHost::parse("*.khalti.com")?;
        assert!(wild.allows("https", "a.khalti.com", 443));
        assert!(!wild.allows("https", "khalti.com", 443));
        assert!(!wild.allows("https", "evilkhalti.com", 443));

        assert!(AllowedHost::parse("ftp://x").is_err());
        assert!(AllowedHost::parse("x/y").is_err());
        assert!(AllowedHost::parse("a.*.com").is_err());
        Ok(())
    }
}
