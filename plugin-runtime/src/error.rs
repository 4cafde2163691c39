//! The one error type callers see. It always names the plugin and version so a
//! log line or an API error can be traced to the exact build that failed.

use std::fmt;

use crate::config::PluginKind;
use crate::types::CallError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("plugin {plugin}@{version} ({kind}) {operation}: {failure}")]
pub struct PluginError {
    pub plugin: String,
    /// `-` when no plugin was loaded, so there is no version to name.
    pub version: String,
    pub kind: PluginKind,
    /// The export or step that failed: `quote`, `load`, `self-check`, ...
    pub operation: String,
    pub failure: Failure,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No plugin of this kind (or name) is loaded.
    NotLoaded,
    /// The call ran past its `timeout_ms` and was interrupted.
    Timeout { timeout_ms: u64 },
    /// The plugin tried to grow its memory past `memory_mb`.
    OutOfMemory { memory_mb: u32 },
    /// The plugin trapped (panic, `unreachable`, bad memory access, ...).
    Trap(String),
    /// The plugin tried to reach a host outside its `allowed_hosts`.
    ForbiddenHost(String),
    /// The plugin returned something the host cannot accept (negative money,
    /// a breakdown that does not add up, points for an unrelated user, ...).
    MalformedResult(String),
    /// The plugin declined the input with its own message (`invalid-input`).
    Rejected(String),
    /// The plugin says its config or secrets are wrong (`misconfigured`).
    Misconfigured(String),
    /// The plugin does not do what was asked (`not-supported`).
    NotSupported(String),
    /// A service the plugin relies on could not be reached (`unavailable`).
    Unavailable(String),
    /// All call slots were in use; the call did not start.
    Busy,
    /// Compiling, linking, `info` or `self-check` failed, so the plugin was not loaded.
    Load(String),
    /// A host-side failure that is not the plugin's fault.
    Internal(String),
}

impl Failure {
    /// Short stable name, for metrics and API error codes.
    pub fn code(&self) -> &'static str {
        match self {
            Failure::NotLoaded => "not_loaded",
            Failure::Timeout { .. } => "timeout",
            Failure::OutOfMemory { .. } => "out_of_memory",
            Failure::Trap(_) => "trap",
            Failure::ForbiddenHost(_) => "forbidden_host",
            Failure::MalformedResult(_) => "malformed_result",
            Failure::Rejected(_) => "rejected",
            Failure::Misconfigured(_) => "misconfigured",
            Failure::NotSupported(_) => "not_supported",
            Failure::Unavailable(_) => "unavailable",
            Failure::Busy => "busy",
            Failure::Load(_) => "load",
            Failure::Internal(_) => "internal",
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::NotLoaded => f.write_str("no such plugin is loaded"),
            Failure::Timeout { timeout_ms } => write!(f, "timed out after {timeout_ms} ms"),
            Failure::OutOfMemory { memory_mb } => {
                write!(f, "ran out of memory (limit {memory_mb} MiB)")
            }
            Failure::Trap(m) => write!(f, "trapped: {m}"),
            Failure::ForbiddenHost(h) => write!(f, "tried to reach forbidden host {h}"),
            Failure::MalformedResult(m) => write!(f, "returned a malformed result: {m}"),
            Failure::Rejected(m) => write!(f, "rejected the request: {m}"),
            Failure::Misconfigured(m) => write!(f, "is misconfigured: {m}"),
            Failure::NotSupported(m) => write!(f, "does not support this: {m}"),
            Failure::Unavailable(m) => write!(f, "could not reach what it needs: {m}"),
            Failure::Busy => f.write_str("all plugin call slots are busy"),
            Failure::Load(m) => write!(f, "failed to load: {m}"),
            Failure::Internal(m) => write!(f, "host error: {m}"),
        }
    }
}

/// How the host reads a plugin's `call-error`.
impl From<CallError> for Failure {
    fn from(e: CallError) -> Self {
        match e {
            CallError::InvalidInput(m) => Failure::Rejected(m),
            CallError::Misconfigured(m) => Failure::Misconfigured(m),
            CallError::NotSupported(m) => Failure::NotSupported(m),
            CallError::Unavailable(m) => Failure::Unavailable(m),
        }
    }
}

impl PluginError {
    pub(crate) fn not_loaded(kind: PluginKind, name: &str, operation: &str) -> Self {
        PluginError {
            plugin: name.to_string(),
            version: "-".to_string(),
            kind,
            operation: operation.to_string(),
            failure: Failure::NotLoaded,
        }
    }

    /// Whether the plugin (rather than the host or the caller's input) is at fault.
    pub fn is_plugin_fault(&self) -> bool {
        matches!(
            self.failure,
            Failure::Timeout { .. }
                | Failure::OutOfMemory { .. }
                | Failure::Trap(_)
                | Failure::ForbiddenHost(_)
                | Failure::MalformedResult(_)
                | Failure::Misconfigured(_)
                | Failure::Load(_)
        )
    }
}

/// plugins.toml could not be read or is invalid; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("plugins config: {0}")]
pub struct ConfigError(pub String);
