//! The operator console (`console/`): its npm packages, its API types from
//! the host's OpenAPI document, type check and build into `console/dist`
//! (which the host embeds), and its browser tests.
//!
//! Node.js and npm are needed here, at build time only. `npm ci` runs when
//! `package-lock.json` changed, and the build when any input did, so repeated
//! `cargo xtask test` runs do not relink the host for nothing.

use std::{
    collections::hash_map::DefaultHasher,
    env, fs,
    hash::Hasher,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};

use crate::status;

/// The host and simulator binaries the console is built from and tested against.
pub struct Binaries {
    pub host: PathBuf,
    pub station_sim: PathBuf,
}

impl Binaries {
    /// The debug builds in the cargo target directory.
    pub fn debug(root: &Path) -> Self {
        let dir = target_dir(root).join("debug");
        let exe = env::consts::EXE_SUFFIX;
        Binaries {
            host: dir.join(format!("powerbank{exe}")),
            station_sim: dir.join(format!("powerbank-station-sim{exe}")),
        }
    }
}

pub fn target_dir(root: &Path) -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

fn npm() -> Command {
    Command::new(if cfg!(windows) { "npm.cmd" } else { "npm" })
}

fn require_node() -> anyhow::Result<()> {
    let found = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        bail!("the console needs Node.js 20+ and npm at build time (e.g. `apt-get install nodejs npm`)");
    }
    Ok(())
}

/// A digest of files' paths and contents (directories walked in order).
fn digest(base: &Path, entries: &[&str]) -> anyhow::Result<String> {
    fn walk(base: &Path, path: &Path, hasher: &mut DefaultHasher) -> anyhow::Result<()> {
        if path.is_dir() {
            let mut children: Vec<PathBuf> =
                fs::read_dir(path)?.map(|e| e.map(|e| e.path())).collect::<Result<_, _>>()?;
            children.sort();
            for child in children {
                walk(base, &child, hasher)?;
            }
        } else if path.is_file() {
            hasher.write(path.strip_prefix(base).unwrap_or(path).to_string_lossy().as_bytes());
            hasher.write(&fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        }
        Ok(())
    }
    let mut hasher = DefaultHasher::new();
    for entry in entries {
        walk(base, &base.join(entry), &mut hasher)?;
    }
    Ok(format!("{:016x}", hasher.finish()))
}

/// Files the build reads; a change to any of them means a new build.
const BUILD_INPUTS: &[&str] =
    &["src", "public", "index.html", "vite.config.ts", "tsconfig.json", "package.json", "package-lock.json", "scripts"];

/// Writes `contents` unless the file already holds exactly that.
fn write_if_changed(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if fs::read(path).ok().as_deref() != Some(contents) {
        fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// `npm ci` when node_modules is missing or the lock file changed since.
fn install(console: &Path, stamps: &Path) -> anyhow::Result<()> {
    let stamp = stamps.join("npm-ci.stamp");
    let lock = digest(console, &["package-lock.json"])?;
    if console.join("node_modules").is_dir() && fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) {
        return Ok(());
    }
    eprintln!("xtask: npm ci in {}", console.display());
    let mut ci = npm();
    ci.current_dir(console).args(["ci", "--no-audit", "--no-fund"]);
    status(ci)?;
    fs::write(&stamp, lock)?;
    Ok(())
}

/// Builds `console/dist` against the API of `host` (a built `powerbank`
/// binary): OpenAPI document, generated types, type check, Vite build,
/// bundle-size check. Returns whether anything was rebuilt.
pub fn build(root: &Path, host: &Path) -> anyhow::Result<bool> {
    require_node()?;
    let console = root.join("console");
    let stamps = target_dir(root).join("console");
    fs::create_dir_all(&stamps)?;
    install(&console, &stamps)?;

    let openapi = Command::new(host).arg("openapi").output().with_context(|| format!("running {}", host.display()))?;
    if !openapi.status.success() {
        bail!("{} openapi failed: {}", host.display(), String::from_utf8_lossy(&openapi.stderr));
    }
    write_if_changed(&console.join("src/api/openapi.json"), &openapi.stdout)?;

    let stamp = stamps.join("build.stamp");
    let inputs = digest(&console, BUILD_INPUTS)?;
    if console.join("dist/index.html").is_file() && fs::read_to_string(&stamp).ok().as_deref() == Some(inputs.as_str())
    {
        eprintln!("xtask: console up to date ({})", console.join("dist").display());
        bundle_size(&console)?;
        return Ok(false);
    }
    eprintln!("xtask: building the console (API types, tsc --noEmit, vite build)");
    let mut build = npm();
    build.current_dir(&console).args(["run", "build"]);
    status(build)?;
    bundle_size(&console)?;
    // After the build: it regenerates src/api/schema.d.ts, one of its inputs.
    fs::write(&stamp, digest(&console, BUILD_INPUTS)?)?;
    Ok(true)
}

/// Prints the built console's size (JS + CSS, gzip); fails over the budget.
fn bundle_size(console: &Path) -> anyhow::Result<()> {
    let mut size = Command::new("node");
    size.current_dir(console).arg("scripts/bundle-size.mjs");
    status(size)
}

/// Debian's Chromium for the browser tests, installed when missing (as root).
fn chromium() -> anyhow::Result<PathBuf> {
    if let Some(path) = env::var_os("CHROMIUM").map(PathBuf::from) {
        return Ok(path);
    }
    let system = PathBuf::from("/usr/bin/chromium");
    if system.exists() {
        return Ok(system);
    }
    let is_root = Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !is_root {
        bail!(
            "the browser tests need Chromium: `sudo apt-get install -y chromium` (or set CHROMIUM to a Chromium binary)"
        );
    }
    eprintln!("xtask: installing Debian's chromium for the browser tests");
    let install = || {
        let mut apt = Command::new("apt-get");
        apt.env("DEBIAN_FRONTEND", "noninteractive").args(["install", "-y", "-q", "chromium"]);
        status(apt)
    };
    if install().is_err() {
        let mut update = Command::new("apt-get");
        update.args(["update", "-q"]);
        status(update)?;
        install()?;
    }
    if !system.exists() {
        bail!("chromium installed but {} is missing", system.display());
    }
    Ok(system)
}

/// Runs console/e2e (Node's test runner, Playwright driving Chromium) against
/// the given binaries; screenshots and logs go to `<target>/console-e2e/`.
pub fn browser_tests(root: &Path, binaries: &Binaries) -> anyhow::Result<()> {
    require_node()?;
    let console = root.join("console");
    let out = target_dir(root).join("console-e2e");
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("clearing {}", out.display()))?;
    }
    fs::create_dir_all(&out)?;
    let browser = chromium()?;
    eprintln!("xtask: browser tests of the console (screenshots in {})", out.join("screenshots").display());
    let mut node = Command::new("node");
    node.current_dir(&console)
        .args(["--test", "--test-concurrency=1", "e2e/"])
        .env("POWERBANK_BIN", &binaries.host)
        .env("STATION_SIM_BIN", &binaries.station_sim)
        .env("CONSOLE_E2E_OUT", &out)
        .env("CHROMIUM", browser);
    status(node)
}
