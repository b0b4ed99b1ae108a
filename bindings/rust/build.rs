//! Finds libbarrage: $BARRAGE_LIB_DIR, else `pkg-config --libs barrage`,
//! else ../../build/capi relative to this crate. Emits an rpath so tests and
//! examples run without LD_LIBRARY_PATH.
use std::path::{Path, PathBuf};
use std::process::Command;

fn from_pkg_config() -> Option<Vec<PathBuf>> {
    let out = Command::new("pkg-config").args(["--libs", "barrage"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let dirs: Vec<PathBuf> =
        text.split_whitespace().filter_map(|t| t.strip_prefix("-L")).map(PathBuf::from).collect();
    // An empty list means the library is in a default search path: still found.
    Some(dirs)
}

fn main() {
    println!("cargo:rerun-if-env-changed=BARRAGE_LIB_DIR");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=build.rs");

    let dirs: Vec<PathBuf> = if let Some(d) = std::env::var_os("BARRAGE_LIB_DIR").filter(|d| !d.is_empty()) {
        vec![PathBuf::from(d)]
    } else if let Some(d) = from_pkg_config() {
        d
    } else {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        let d = Path::new(&manifest).join("../../build/capi");
        vec![d.canonicalize().unwrap_or(d)]
    };
    for d in &dirs {
        println!("cargo:rustc-link-search=native={}", d.display());
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", d.display());
    }
    println!("cargo:rustc-link-lib=dylib=barrage");
}
