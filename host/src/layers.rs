//! The import rule of `docs/architecture.md`, checked on the source: core
//! names no domain, the ledger names only core, and a feature domain names
//! only core, the ledger and the domains below it in [`DOMAINS`] (so no
//! import cycle crosses domains). The composition root (`server`, `state`,
//! `schema`, `cli`, `demo`, `demo_checkout`) may name anything; every domain may name
//! `state::AppState`, the type its routes are served with.
//!
//! Test modules are not checked: a test may build the whole server.

use std::{collections::BTreeSet, fs, path::Path};

/// Shared ground floor: may name only itself.
const CORE: &[&str] = &["core", "config"];
/// The only code that changes balances: may name core.
const LEDGER: &str = "ledger";
/// Feature domains, lowest first: each may name the ones before it.
const DOMAINS: &[&str] = &[
    "app_core",
    "settings",
    "plugins",
    "notifications",
    "content",
    "kyc",
    "stations",
    "packages",
    "points",
    "audiences",
    "promotions",
    "payments",
    "users",
    "rentals",
    "social",
    "analytics",
    "admin",
    "console",
];
/// The composition root: wires everything, named by no one but itself.
const ROOT: &[&str] = &[
    "server",
    "state",
    "schema",
    "cli",
    "config_file",
    "demo",
    "demo_checkout",
    "demo_stations",
    "api_docs",
    "api_contract",
    "ops",
    "lib",
    "main",
    "layers",
];

/// The top-level modules `source` refers to through `crate::` paths, outside
/// comments and test modules.
fn crate_references(source: &str) -> BTreeSet<String> {
    let code = source.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = code.lines().filter(|l| !l.trim_start().starts_with("//")).map(|l| format!("{l}\n")).collect();
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::x, b::{y, z}}`: the top-level names of the group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.insert(first_name(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            found.insert(first_name(&item));
        } else {
            found.insert(first_name(rest));
        }
    }
    found.remove("");
    found
}

fn first_name(path: &str) -> String {
    path.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

/// What the module `from` may name, by the rule.
fn allowed(from: &str) -> Option<Vec<&'static str>> {
    let mut ok: Vec<&'static str> = CORE.to_vec();
    if CORE.contains(&from) {
        return Some(ok);
    }
    if from == LEDGER {
        ok.push(LEDGER);
        return Some(ok);
    }
    let position = DOMAINS.iter().position(|d| *d == from)?;
    ok.push(LEDGER);
    ok.push("state");
    ok.extend_from_slice(&DOMAINS[..=position]);
    Some(ok)
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn domains_import_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut broken = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        let module = first.trim_end_matches(".rs").to_string();
        if ROOT.contains(&module.as_str()) {
            continue;
        }
        let allowed = allowed(&module).unwrap_or_else(|| {
            panic!("{}: module `{module}` is in no layer; add it to src/layers.rs", relative.display())
        });
        for name in crate_references(&fs::read_to_string(&file).unwrap()) {
            if !allowed.contains(&name.as_str()) {
                broken.push(format!("{} names crate::{name}", relative.display()));
            }
        }
    }
    assert!(broken.is_empty(), "imports against the layer rule (docs/architecture.md):\n{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_inline_paths() {
    let source = "use crate::{\n    core::{ApiError, now_ts},\n    payments::gateway::{self, X},\n};\n\
                  // crate::commented::out\nfn f() { crate::rentals::lifecycle::go(); }\n\
                  #[cfg(test)]\nmod tests { use crate::server; }\n";
    let found: Vec<String> = crate_references(source).into_iter().collect();
    assert_eq!(found, ["core", "payments", "rentals"]);
    assert!(!allowed("payments").unwrap().contains(&"rentals"));
    assert!(allowed("rentals").unwrap().contains(&"payments"));
    assert!(allowed("core").unwrap().iter().all(|m| CORE.contains(m)));
}
