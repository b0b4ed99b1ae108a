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
//! Streaming (server-sent events): set [`Request::stream`] and ask for a
//! stream in the body, then read the events with [`Engine::stream`]:
//!
//! ```no_run
//! use barrage::{Config, Engine, Request};
//! let engine = Engine::new(Config::new()).unwrap();
//! let req = Request::new("https://api.example.com/v1/chat/completions")
//!     .json(r#"{"model":"m","stream":true,"stream_options":{"include_usage":true},
//!              "messages":[{"role":"user","content":"hi"}]}"#)
//!     .first_token_timeout(std::time::Duration::from_secs(10))
//!     .stream_idle_timeout(std::time::Duration::from_secs(5));
//! let mut stream = engine.stream(&req).unwrap();
//! for event in &mut stream {
//!     match event {
//!         Ok(ev) => println!("data: {}", ev.text()), // one SSE event's data
//!         Err(e) => eprintln!("stream failed: {e}"), // after the events so far
//!     }
//! }
//! if let Some(done) = stream.final_response() {
//!     println!("ttft {:?}, {} events, {:?} tokens", done.ttft(), done.events(), done.completion_tokens());
//! }
//! ```
//!
//! With the non-blocking [`Engine::submit`] / [`Engine::poll`] /
//! [`Engine::results`] API (and [`ThreadedEngine`]) a streamed request yields
//! partial results ([`Response::is_partial`]) before its final one; every
//! helper that waits for outcomes ([`Engine::run_all`]) skips them.
//!
//! Threads: an inline [`Engine`] is `Send` but not `Sync` (see its docs);
//! [`Engine::start`] gives a [`ThreadedEngine`] that is `Send + Sync`.
//! Requests are copied at submit; [`Response`] owns its `brg_result`.

pub mod sys;

#[cfg(feature = "tokio")]
pub mod aio;
pub mod batch;
#[cfg(feature = "serde")]
mod json;

mod config;
mod engine;
mod error;
mod headers;
mod request;
mod response;

pub use config::{Backend, Config, HttpVersion, OptionValue};
pub use engine::{Engine, Stats, Stream, ThreadedEngine};
pub use error::Error;
pub use headers::Headers;
pub use request::Request;
pub use response::{RequestId, Response, Timings};

/// Run-time library version, e.g. "0.2.0".
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
