//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `run`: build the plugins and the host, then serve the API with demo data
//!   and simulated stations.
//! - `test`: build the plugins, check formatting and clippy, then run every
//!   test of the workspace.
//! - `build-plugins`: build the Wasm plugins into `plugins/dist/`.
//! - `console`: build the operator console into `console/dist/` (the host
//!   embeds it); `console-test`: that, then its browser tests.
//! - `dist`: the release tarball (binary built with the `dist` profile, the
//!   plugins plugins.toml names, plugins.toml, docs, deploy kit).
//! - `bench-fleet`: 10,000 simulated stations against a `dist` build of the
//!   host on its embedded broker; prints messages/s, host CPU and eject p99.
//! - `bench-reads`: the hot read paths (station list, nearby, signed-in
//!   reads) against `GET /api/app/version` on a release build with 1,000
//!   stations; prints req/s, p50/p99 and the ratios (`host/benches/reads.rs`).
//! - `install-moto`: install the S3 test server (moto) into a virtualenv
//!   under the target directory (`test` does it when it is missing).

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
        Some("dist") => dist(),
        Some("bench-fleet") => bench_fleet(&args[1..]),
        Some("bench-reads") => bench_reads(),
        Some("install-moto") => ensure_moto().map(|path| eprintln!("xtask: moto server at {}", path.display())),
        Some("lint") => lint(),
        Some("console") => build_host().and_then(|b| console::build(&repo_root(), &b.host)).map(|_| ()),
        Some("console-test") => console_test(),
        _ => {
            eprintln!(
                "usage: cargo xtask <run|test|lint|build-plugins|console|console-test|install-moto|dist|bench-fleet|bench-reads> [args...]"
            );
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

/// Serves the demo: the host on its embedded defaults with demo data; with
/// `--demo` the server runs a simulated station for each demo station itself.
/// Settings given in the environment (`POWERBANK_DATA_DIR`,
/// `POWERBANK_PLUGINS`, ...) win over this task's defaults, as the README says.
fn run(extra: &[String]) -> anyhow::Result<()> {
    build_plugins()?;
    let root = repo_root();
    let mut binaries = build_host()?;
    if console::build(&root, &binaries.host)? {
        // The host embeds the console: build it again with the new one.
        binaries = build_host()?;
    }
    // `serve --demo` runs the simulated demo stations itself. Every default
    // below gives way to its environment variable, as the README promises.
    let mut server = Command::new(&binaries.host);
    server.current_dir(&root).args(["--log-format", "text", "serve", "--demo"]);
    if env::var_os("POWERBANK_LISTEN").is_none() {
        server.args(["--listen", "127.0.0.1:8000"]);
    }
    if env::var_os("POWERBANK_DATA_DIR").is_none() {
        server.arg("--data-dir").arg(root.join(".demo-data"));
    }
    if env::var_os("POWERBANK_PLUGINS").is_none() {
        // The demo gateway instead of the real ones, which need merchant keys.
        server.arg("--plugins").arg(root.join("plugins.demo.toml"));
    }
    server.args(extra);
    status(server)
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

/// moto's S3 server for the object-storage tests, pinned.
const MOTO: &str = "moto[server]==5.1.22";

fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target"))
}

/// Installs moto into `<target dir>/moto-venv` unless it is there already;
/// returns its `moto_server`. Needs `python3` with `venv` and PyPI.
fn ensure_moto() -> anyhow::Result<PathBuf> {
    let venv = target_dir().join("moto-venv");
    let server = venv.join("bin").join("moto_server");
    let marker = venv.join(".installed");
    if server.is_file() && std::fs::read_to_string(&marker).is_ok_and(|m| m == MOTO) {
        return Ok(server);
    }
    eprintln!("xtask: installing {MOTO} into {}", venv.display());
    let mut create = Command::new("python3");
    create.args(["-m", "venv"]).arg(&venv);
    status(create).context("python3 with venv is needed for the S3 tests")?;
    let mut pip = Command::new(venv.join("bin").join("pip"));
    pip.args(["install", "--quiet", "--disable-pip-version-check", MOTO]);
    status(pip)?;
    anyhow::ensure!(server.is_file(), "{MOTO} installed no {}", server.display());
    std::fs::write(&marker, MOTO)?;
    Ok(server)
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    build_plugins()?;
    // The console first: it needs the host's API document, and the host embeds it.
    let binaries = build_host()?;
    console::build(&repo_root(), &binaries.host)?;
    lint()?;
    let moto = ensure_moto()?;
    let mut cmd = cargo();
    cmd.env("POWERBANK_TEST_MOTO_SERVER", &moto);
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

/// The `dist` profile (Cargo.toml): fat LTO, one codegen unit, stripped.
const DIST_PROFILE: &str = "dist";

fn build_dist_binaries(packages: &[&str]) -> anyhow::Result<PathBuf> {
    let mut build = cargo();
    build.current_dir(repo_root()).args(["build", "--profile", DIST_PROFILE]);
    for p in packages {
        build.args(["--package", p]);
    }
    let started = std::time::Instant::now();
    status(build)?;
    eprintln!("xtask: {DIST_PROFILE} build took {:.0} s", started.elapsed().as_secs_f64());
    Ok(target_dir().join(DIST_PROFILE))
}

/// The `.wasm` paths plugins.toml names (relative to it).
fn manifest_plugin_paths(manifest: &str) -> Vec<String> {
    manifest
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "path").then(|| value.trim().trim_matches('"').to_string())
        })
        .collect()
}

fn copy_into(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            copy_into(&entry.path(), &target)?;
        }
    }
    Ok(())
}

/// `target/dist/powerbank-VERSION-linux-ARCH.tar.gz`: `bin/powerbank`,
/// `plugins.toml` and the plugins it names, `docs/`, `deploy/`, README.
fn dist() -> anyhow::Result<()> {
    let root = repo_root();
    build_plugins()?;
    let bin = build_dist_binaries(&["powerbank"])?.join("powerbank");
    let version = env!("CARGO_PKG_VERSION");
    let name = format!("powerbank-{version}-{}-{}", env::consts::OS, env::consts::ARCH);
    let out = target_dir().join("dist");
    let staging = out.join(&name);
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    copy_into(&bin, &staging.join("bin").join("powerbank"))?;
    let manifest = std::fs::read_to_string(root.join("plugins.toml"))?;
    for path in manifest_plugin_paths(&manifest) {
        copy_into(&root.join(&path), &staging.join(&path))
            .with_context(|| format!("{path} (named in plugins.toml): run cargo xtask build-plugins"))?;
    }
    copy_into(&root.join("plugins.toml"), &staging.join("plugins.toml"))?;
    copy_into(&root.join("README.md"), &staging.join("README.md"))?;
    copy_dir(&root.join("docs"), &staging.join("docs"))?;
    copy_dir(&root.join("deploy"), &staging.join("deploy"))?;
    let tarball = out.join(format!("{name}.tar.gz"));
    let mut tar = Command::new("tar");
    tar.arg("-czf").arg(&tarball).arg("-C").arg(&out).arg(&name);
    status(tar)?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64 / 1_048_576.0).unwrap_or(0.0);
    eprintln!(
        "xtask: {} ({:.1} MiB; binary {:.1} MiB)",
        tarball.display(),
        size(&tarball),
        size(&staging.join("bin").join("powerbank"))
    );
    Ok(())
}

/// `cargo bench --bench reads`: a release build of the host serving 1,000
/// stations, loaded interleaved on five read endpoints.
fn bench_reads() -> anyhow::Result<()> {
    build_plugins()?;
    let mut bench = cargo();
    bench.current_dir(repo_root()).args(["bench", "-p", "powerbank", "--bench", "reads"]);
    status(bench)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

const BENCH_ADMIN: (&str, &str) = ("bench@powerbank.local", "powerbank-bench-admin");

/// Runs `powerbank-station-sim fleet` (10,000 stations by default; extra
/// arguments go to it) against a fresh `dist` build of the host on its
/// embedded broker, and prints the simulator's report.
fn bench_fleet(extra: &[String]) -> anyhow::Result<()> {
    let root = repo_root();
    build_plugins()?;
    let bin = build_dist_binaries(&["powerbank", "powerbank-station-sim"])?;
    let work = target_dir().join("bench-fleet");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    std::fs::create_dir_all(&work)?;
    let host = bin.join("powerbank");
    let mut admin = Command::new(&host);
    admin.args(["admin", "create", "--data-dir"]).arg(&work).args([
        "--email",
        BENCH_ADMIN.0,
        "--password",
        BENCH_ADMIN.1,
    ]);
    status(admin)?;
    let (http, mqtt) = (free_port()?, free_port()?);
    let log = work.join("host.log");
    let mut server = Command::new(&host)
        .current_dir(&root)
        .env("POWERBANK_LOG", "warn")
        .args(["serve", "--data-dir"])
        .arg(&work)
        .args(["--listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
        .arg("--plugins")
        .arg(root.join("plugins.toml"))
        .args(["--no-plugin-watch", "--heartbeat-timeout", "120"])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .context("starting the host")?;
    let mut sim = Command::new(bin.join("powerbank-station-sim"));
    sim.args(["fleet", "--api", &format!("http://127.0.0.1:{http}")])
        .args(["--admin-email", BENCH_ADMIN.0, "--admin-password", BENCH_ADMIN.1])
        .args(["--host-pid", &server.id().to_string()])
        .args(extra);
    let ran = status(sim);
    let _ = server.kill();
    let _ = server.wait();
    let warnings = std::fs::read_to_string(&log).map(|l| l.lines().count()).unwrap_or(0);
    eprintln!("xtask: host log ({warnings} warning/error lines): {}", log.display());
    ran
}
