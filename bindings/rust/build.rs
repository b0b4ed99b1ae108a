//! Links libbarrage into the crate statically (default), so any binary that
//! depends on this crate runs with no LD_LIBRARY_PATH or rpath: the engine's
//! objects from a meson build dir are packed into one archive in OUT_DIR.
//!
//! Build dir: $BARRAGE_BUILD_DIR, else ../../build relative to this crate
//! (the checkout's own `meson setup build`). Feature `dynamic` links the
//! shared libbarrage instead ($BARRAGE_LIB_DIR, else pkg-config).
use std::path::{Path, PathBuf};
use std::process::Command;

/// System libraries the engine needs (meson's engine_deps), via pkg-config.
const PKG_DEPS: &[&str] = &["openssl", "simdjson", "sqlite3", "libcares", "libnghttp2"];

fn pkg_libs(pkgs: &[&str]) -> Option<Vec<String>> {
    let out = Command::new("pkg-config").arg("--libs").args(pkgs).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_owned).collect())
}

fn emit_pkg_flags(flags: &[String]) {
    for f in flags {
        if let Some(d) = f.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={d}");
        } else if let Some(l) = f.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={l}");
        }
    }
}

/// Members of an archive; meson writes thin archives whose members are
/// paths relative to the build dir.
fn archive_members(build: &Path, archive: &Path) -> Vec<PathBuf> {
    let out = Command::new("ar").arg("t").arg(archive).output().expect("run ar");
    assert!(out.status.success(), "ar t {} failed", archive.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|m| {
            let p = Path::new(m);
            if p.is_absolute() { p.to_owned() } else { build.join(p) }
        })
        .collect()
}

fn link_static() {
    println!("cargo:rerun-if-env-changed=BARRAGE_BUILD_DIR");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let build = std::env::var_os("BARRAGE_BUILD_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../build"));
    let build = build.canonicalize().unwrap_or_else(|_| {
        panic!(
            "barrage: no meson build dir at {}: run `meson setup build --buildtype=release && \
             ninja -C build` in the checkout, or set BARRAGE_BUILD_DIR",
            build.display()
        )
    });
    let mut objects: Vec<PathBuf> = Vec::new();
    for a in ["capi/libbarrage_capi.a", "batch/libbarrage_batch.a", "libbarrage_engine.a", "libllhttp.a"] {
        let path = build.join(a);
        assert!(path.exists(), "barrage: {} missing (ninja -C {} capi/libbarrage.so.*)", path.display(), build.display());
        println!("cargo:rerun-if-changed={}", path.display());
        objects.extend(archive_members(&build, &path));
    }
    for o in &objects {
        println!("cargo:rerun-if-changed={}", o.display());
    }
    // One regular (not thin) archive, so rustc can bundle it into the rlib.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let lib = out.join("libbarrage_static.a");
    let _ = std::fs::remove_file(&lib);
    let st = Command::new("ar").arg("crs").arg(&lib).args(&objects).status().expect("run ar");
    assert!(st.success(), "ar crs {} failed", lib.display());
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=barrage_static");

    let flags = pkg_libs(PKG_DEPS).unwrap_or_else(|| {
        ["-lssl", "-lcrypto", "-lsimdjson", "-lsqlite3", "-lcares", "-lnghttp2"].map(String::from).to_vec()
    });
    emit_pkg_flags(&flags);
    // io_uring and hiredis (shared limits) are optional in meson; link them
    // when present (unused = dropped by --as-needed).
    for opt in ["liburing", "hiredis"] {
        if let Some(u) = pkg_libs(&[opt]) {
            emit_pkg_flags(&u);
        }
    }
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo:rustc-link-lib=dylib=pthread");
    println!("cargo:root={}", build.display());
}

fn link_dynamic() {
    println!("cargo:rerun-if-env-changed=BARRAGE_LIB_DIR");
    let dirs: Vec<PathBuf> = if let Some(d) = std::env::var_os("BARRAGE_LIB_DIR").filter(|d| !d.is_empty()) {
        vec![PathBuf::from(d)]
    } else if let Some(flags) = pkg_libs(&["barrage"]) {
        flags.iter().filter_map(|t| t.strip_prefix("-L")).map(PathBuf::from).collect()
    } else {
        let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
        let d = Path::new(&manifest).join("../../build/capi");
        vec![d.canonicalize().unwrap_or(d)]
    };
    for d in &dirs {
        println!("cargo:rustc-link-search=native={}", d.display());
        // Reaches only this crate's tests and examples; dependents need the
        // library in the loader's path (see README, "Linking").
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", d.display());
    }
    println!("cargo:rustc-link-lib=dylib=barrage");
}

fn main() {
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_DYNAMIC").is_some() {
        link_dynamic();
    } else {
        link_static();
    }
}
