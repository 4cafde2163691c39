//! The operator console's built files (`console/dist`, made by `cargo xtask
//! console`) are embedded in the binary by `src/console/assets.rs`. The embed
//! macro only tracks the files it saw, so a new build with new hashed file
//! names would not recompile the host on its own: watch the whole directory.

fn main() {
    let dist = std::path::Path::new("../console/dist");
    // A missing path would make cargo rerun this script (and rebuild the host)
    // on every build; an empty directory is the "console not built" state.
    if !dist.exists() {
        let _ = std::fs::create_dir_all(dist);
    }
    println!("cargo:rerun-if-changed=../console/dist");
}
