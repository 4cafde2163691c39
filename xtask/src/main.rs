//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `run`: build the plugins and the host, then serve the API with demo data.
//! - `test`: build the plugins, check formatting and clippy, then run every
//!   test of the workspace.
//! - `build-plugins`: build the Wasm plugins into `plugins/dist/`.
//! - `console`: build the operator console into `console/dist/` (the host
//!   embeds it); `console-test`: that, then its browser tests.

use std::{
    env,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, bail};

mod console;

const WASM_TARGET: &str = "wasm32-wasip2";
/// Cargo workspaces of guest plugins, built for the Wasm target.
const PLUGIN_WORKSPACES: &[&str] = &["plugins", "gateway-plugins"];

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("build-plugins") => build_plugins().map(|_| ()),
        Some("lint") => lint(),
        Some("console") => build_host().and_then(|b| console::build(&repo_root(), &b.host)).map(|_| ()),
        Some("console-test") => console_test(),
        _ => {
            eprintln!("usage: cargo xtask <run|test|lint|build-plugins|console|console-test> [args...]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The checkout this xtask was started from. `cargo run` sets
/// CARGO_MANIFEST_DIR at run time; the compile-time value could name another
/// clone that shares the target directory.
fn repo_root() -> PathBuf {
    let manifest_dir = env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn cargo() -> Command {
    Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub(crate) fn status(mut cmd: Command) -> anyhow::Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {shown}"))?;
    if !status.success() {
        bail!("{shown} failed with {status}");
    }
    Ok(())
}

/// Adds the Wasm target if rustup does not have it yet.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed =
        Command::new("rustup").args(["target", "list", "--installed"]).output().context("running rustup")?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == WASM_TARGET) {
        return Ok(());
    }
    let mut add = Command::new("rustup");
    add.args(["target", "add", WASM_TARGET]);
    status(add)
}

/// Builds every guest workspace and copies its `.wasm` files to `plugins/dist/`.
fn build_plugins() -> anyhow::Result<Vec<PathBuf>> {
    ensure_wasm_target()?;
    let root = repo_root();
    let dist = root.join("plugins").join("dist");
    std::fs::create_dir_all(&dist)?;
    let mut built = Vec::new();
    for ws in PLUGIN_WORKSPACES {
        let dir = root.join(ws);
        if !dir.join("Cargo.toml").exists() {
            continue;
        }
        eprintln!("xtask: building {ws}/ for {WASM_TARGET}");
        let output = cargo()
            .current_dir(&dir)
            .args(["build", "--release", "--target", WASM_TARGET, "--message-format=json-render-diagnostics"])
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("building {ws}"))?;
        if !output.status.success() {
            bail!("building {ws} failed");
        }
        // Cargo reports each artifact as a JSON line with its file names.
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some(start) = line.find("\"filenames\":[") else { continue };
            let rest = &line[start + 13..];
            let Some(end) = rest.find(']') else { continue };
            for name in rest[..end].split(',') {
                let path = PathBuf::from(name.trim().trim_matches('"'));
                if path.extension().is_some_and(|e| e == "wasm") {
                    let Some(file_name) = path.file_name() else { continue };
                    let target = dist.join(file_name);
                    std::fs::copy(&path, &target)
                        .with_context(|| format!("copying {} to {}", path.display(), target.display()))?;
                    built.push(target);
                }
            }
        }
    }
    eprintln!("xtask: {} plugin(s) in {}", built.len(), dist.display());
    Ok(built)
}

/// Serves the demo: the host on its embedded defaults with demo data, and a
/// simulated station for each demo station so they show live.
fn run(extra: &[String]) -> anyhow::Result<()> {
    build_plugins()?;
    let root = repo_root();
    let mut binaries = build_host()?;
    if console::build(&root, &binaries.host)? {
        // The host embeds the console: build it again with the new one.
        binaries = build_host()?;
    }

    let listen = env::var("POWERBANK_LISTEN").unwrap_or_else(|_| "127.0.0.1:8000".into());
    // The simulator waits for the API to come up, then signs in as the demo operator.
    let mut sim = Command::new(&binaries.station_sim)
        .current_dir(&root)
        .arg("--api")
        .arg(format!("http://{listen}"))
        .spawn()
        .context("starting the station simulator")?;

    let mut server = Command::new(&binaries.host);
    server
        .current_dir(&root)
        .args(["--log-format", "text", "serve", "--demo", "--listen", &listen])
        .arg("--data-dir")
        .arg(root.join(".demo-data"))
        .arg("--plugins")
        .arg(root.join("plugins.toml"))
        .args(extra);
    let served = status(server);
    let _ = sim.kill();
    let _ = sim.wait();
    served
}

/// Debug builds of the host and the station simulator. Built as part of the
/// whole workspace so dependencies get the same features as in `cargo test`
/// and are compiled once, not once per package selection.
fn build_host() -> anyhow::Result<console::Binaries> {
    let root = repo_root();
    let mut build = cargo();
    build.current_dir(&root).args(["build", "--workspace", "--bins"]);
    status(build)?;
    Ok(console::Binaries::debug(&root))
}

/// The console built into a fresh host, then its browser tests.
fn console_test() -> anyhow::Result<()> {
    build_plugins()?;
    let binaries = build_host()?;
    if console::build(&repo_root(), &binaries.host)? {
        build_host()?;
    }
    console::browser_tests(&repo_root(), &binaries)
}

/// Formatting and clippy (warnings are errors) over the host workspace and
/// both guest workspaces, so CI refuses what review would.
fn lint() -> anyhow::Result<()> {
    let root = repo_root();
    for dir in std::iter::once(root.clone()).chain(PLUGIN_WORKSPACES.iter().map(|ws| root.join(ws))) {
        eprintln!("xtask: cargo fmt --check and clippy in {}", dir.display());
        let mut fmt = cargo();
        fmt.current_dir(&dir).args(["fmt", "--all", "--check"]);
        status(fmt)?;
        let mut clippy = cargo();
        clippy.current_dir(&dir).args(["clippy", "--workspace", "--all-targets"]);
        if dir != root {
            clippy.args(["--release", "--target", WASM_TARGET]);
        }
        clippy.args(["--", "-D", "warnings"]);
        status(clippy)?;
    }
    Ok(())
}

/// The MQTT broker the link tests also run against, when one answers.
const SYSTEM_BROKER: &str = "127.0.0.1:1883";

fn test(extra: &[String]) -> anyhow::Result<()> {
    build_plugins()?;
    // The console first: it needs the host's API document, and the host embeds it.
    let binaries = build_host()?;
    console::build(&repo_root(), &binaries.host)?;
    lint()?;
    let mut cmd = cargo();
    // Every test binary runs even after one fails, so a CI log shows all failures at once.
    cmd.current_dir(repo_root()).args(["test", "--workspace", "--no-fail-fast"]).args(extra);
    if env::var_os("POWERBANK_TEST_MQTT_URL").is_none() {
        let reachable = SYSTEM_BROKER.parse().ok().is_some_and(|addr| {
            std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500)).is_ok()
        });
        if reachable {
            eprintln!("xtask: MQTT broker on {SYSTEM_BROKER}; link tests also run against it");
            cmd.env("POWERBANK_TEST_MQTT_URL", format!("mqtt://{SYSTEM_BROKER}"));
        } else {
            eprintln!("xtask: no MQTT broker on {SYSTEM_BROKER}; link tests use the embedded broker only");
        }
    }
    let tests = status(cmd);
    // The browser tests run even after a failed test above, so one CI log shows everything.
    let browser = build_host().and_then(|binaries| console::browser_tests(&repo_root(), &binaries));
    match (tests, browser) {
        (Ok(()), Ok(())) => Ok(()),
        (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
        (Err(tests), Err(browser)) => Err(tests.context(format!("and the browser tests failed too: {browser:#}"))),
    }
}
