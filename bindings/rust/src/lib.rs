//! Safe Rust binding of libbarrage, an engine that runs very many HTTPS (LLM
//! API) requests at once, over its stable C ABI (`capi/barrage.h`).
//!
//! ```no_run
//! use barrage::{Config, Engine, Request};
//! let mut engine = Engine::new(Config::new().max_inflight(100)).unwrap();
//! let reqs = vec![Request::new("https://api.example.com/v1/chat/completions").json(r#"{"model":"m"}"#)];
//! for r in engine.run_all(reqs) {
//!     match r {
//!         Ok(resp) => println!("{}", resp.text()),
//!         Err(e) => eprintln!("{e}"),
//!     }
//! }
//! ```
//!
//! Threads: an inline [`Engine`] is `Send` but not `Sync` (see its docs);
//! [`Engine::start`] gives a [`ThreadedEngine`] that is `Send + Sync`.
//! Requests are copied at submit; [`Response`] owns its `brg_result`.

pub mod sys;

mod config;
mod engine;
mod error;
mod request;
mod response;

pub use config::{Backend, Config};
pub use engine::{Engine, Stats, ThreadedEngine};
pub use error::Error;
pub use request::Request;
pub use response::{RequestId, Response, Timings};

/// Run-time library version, e.g. "0.1.0".
pub fn version() -> &'static str {
    error::cstr(unsafe { sys::brg_version() })
}

/// True when the loaded library's major version matches the header this
/// crate mirrors and its minor version is at least as new.
pub fn version_compatible() -> bool {
    let v = unsafe { sys::brg_version_hex() };
    (v >> 16) == sys::BRG_VERSION_MAJOR && ((v >> 8) & 0xff) >= sys::BRG_VERSION_MINOR
}

/// `brg_strerror` text of a status number.
pub fn strerror(code: i32) -> &'static str {
    error::cstr(unsafe { sys::brg_strerror(code) })
}
