#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A barrage-mockserver subprocess, killed on drop.
pub struct Mock {
    child: Child,
    pub base: String,
    pub ca: PathBuf,
}

pub fn mockserver_path() -> PathBuf {
    match std::env::var_os("BARRAGE_MOCKSERVER") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../build/mockserver/barrage-mockserver"),
    }
}

impl Mock {
    pub fn start(extra: &[&str]) -> Mock {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let ca = std::env::temp_dir().join(format!(
            "barrage-rs-ca-{}-{}.pem",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut child = Command::new(mockserver_path())
            .args(["--port", "0", "--write-ca"])
            .arg(&ca)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", mockserver_path().display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("mock said {line:?}")).to_owned();
        Mock { child, base, ca }
    }
    pub fn url(&self) -> String {
        format!("{}/v1/chat/completions", self.base)
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.ca);
    }
}

pub fn chat_body(msg: &str) -> String {
    format!(r#"{{"model":"gpt-4o-mini","messages":[{{"role":"user","content":"{msg}"}}],"max_tokens":16}}"#)
}
