//! `powerbank.toml`: the third source of settings, after flags and the
//! environment (flags > env > file > built-in defaults).
//!
//! The file's keys are the long flag names with `_` for `-` (`data_dir`,
//! `mqtt_url`, `backup_every_hours`...). Each value becomes the default of
//! its flag before the command line is parsed, so clap's own precedence
//! (flag, then environment variable, then default) gives the order above, and
//! `powerbank serve --help` shows the values the file set. An unknown key is
//! an error, not a silently ignored typo.

use std::{
    collections::BTreeSet,
    ffi::OsString,
    path::{Path, PathBuf},
};

use anyhow::Context;
use clap::Command;

/// Looked for in the working directory when neither `--config` nor
/// `POWERBANK_CONFIG` names a file.
pub const DEFAULT_FILE: &str = "powerbank.toml";
pub const ENV: &str = "POWERBANK_CONFIG";

/// Subcommands whose flags the file may set: the server's and the
/// maintenance commands that open the same data directory.
const CONFIGURABLE: &[&str] = &["serve", "migrate", "seed-demo", "backup", "restore", "verify"];

/// Flags the file never sets: where the file itself is, and which backup to
/// restore (a one-off decision, never a standing setting).
const NOT_FROM_FILE: &[&str] = &["config", "from", "help", "version"];

/// The file named by `--config FILE` (or `--config=FILE`), else by
/// `POWERBANK_CONFIG`, else `./powerbank.toml` if there is one. A named file
/// must exist.
pub fn locate(args: &[OsString], env: Option<OsString>) -> anyhow::Result<Option<PathBuf>> {
    let mut named = None;
    let mut iter = args.iter().skip(1);
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else { continue };
        if text == "--" {
            break;
        }
        if text == "--config" {
            named = iter.next().map(PathBuf::from);
        } else if let Some(path) = text.strip_prefix("--config=") {
            named = Some(PathBuf::from(path));
        }
    }
    match named.or_else(|| env.filter(|e| !e.is_empty()).map(PathBuf::from)) {
        Some(path) => {
            anyhow::ensure!(path.is_file(), "config file {} not found", path.display());
            Ok(Some(path))
        }
        None => Ok(Path::new(DEFAULT_FILE).is_file().then(|| PathBuf::from(DEFAULT_FILE))),
    }
}

/// The flags a file may set, by key.
pub fn known_keys(command: &Command) -> BTreeSet<String> {
    let mut keys: BTreeSet<String> = settable(command).collect();
    for sub in command.get_subcommands().filter(|s| CONFIGURABLE.contains(&s.get_name())) {
        keys.extend(settable(sub));
    }
    keys
}

fn settable(command: &Command) -> impl Iterator<Item = String> + '_ {
    command
        .get_arguments()
        .filter(|a| a.get_long().is_some() && !NOT_FROM_FILE.contains(&a.get_id().as_str()))
        .map(|a| a.get_id().as_str().to_string())
}

/// Reads `path` and makes its values the defaults of their flags in `command`.
pub fn apply(command: Command, path: &Path) -> anyhow::Result<Command> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
    apply_str(command, &text).with_context(|| format!("config file {}", path.display()))
}

pub fn apply_str(mut command: Command, text: &str) -> anyhow::Result<Command> {
    let table: toml::Table = toml::from_str(text)?;
    let known = known_keys(&command);
    for (key, value) in table {
        anyhow::ensure!(
            known.contains(&key),
            "unknown key `{key}`; the keys are: {}",
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        );
        let values = clap_values(&key, &value)?;
        command = set_default(command, &key, &values);
        let subs: Vec<String> = command
            .get_subcommands()
            .filter(|s| CONFIGURABLE.contains(&s.get_name()))
            .map(|s| s.get_name().to_string())
            .collect();
        for sub in subs {
            command = command.mut_subcommand(sub, |s| set_default(s, &key, &values));
        }
    }
    Ok(command)
}

fn set_default(command: Command, key: &str, values: &[String]) -> Command {
    if !command.get_arguments().any(|a| a.get_id() == key) {
        return command;
    }
    // clap keeps defaults as `&'static str` (without its `string` feature):
    // the file is read once per process, so leaking its few values is fine.
    let values: Vec<&'static str> = values.iter().map(|v| &*Box::leak(v.clone().into_boxed_str())).collect();
    // A required flag (`backup --to`) is satisfied by the file's value.
    command.mut_arg(key, |arg| arg.default_values(values).required(false))
}

/// A TOML value as the text(s) clap would get on the command line.
fn clap_values(key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    Ok(match value {
        toml::Value::String(s) => vec![s.clone()],
        toml::Value::Integer(i) => vec![i.to_string()],
        toml::Value::Float(f) => vec![f.to_string()],
        toml::Value::Boolean(b) => vec![b.to_string()],
        toml::Value::Array(items) => items
            .iter()
            .map(|item| match item {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                _ => anyhow::bail!("`{key}`: list items must be strings or integers"),
            })
            .collect::<anyhow::Result<_>>()?,
        _ => anyhow::bail!("`{key}`: tables and dates are not settings"),
    })
}
