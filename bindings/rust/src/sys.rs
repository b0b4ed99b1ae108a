//! Raw FFI declarations mirroring `capi/barrage.h` (version 0.5.0; its structs are 0.4.0's) exactly.
//! Everything here is `unsafe` to use; see the safe API in the crate root.
#![allow(non_camel_case_types)]

use std::os::raw::{c_char, c_int, c_void};

pub const BRG_VERSION_MAJOR: u32 = 0;
pub const BRG_VERSION_MINOR: u32 = 5;
pub const BRG_VERSION_PATCH: u32 = 0;
pub const BRG_VERSION_HEX: u32 = (BRG_VERSION_MAJOR << 16) | (BRG_VERSION_MINOR << 8) | BRG_VERSION_PATCH;

// ---- brg_status ----
pub type brg_status = c_int;
pub const BRG_E_OK: c_int = 0;
pub const BRG_OK: c_int = 0;
pub const BRG_E_INVALID: c_int = -1;
pub const BRG_E_NOMEM: c_int = -2;
pub const BRG_E_FULL: c_int = -3;
pub const BRG_E_CLOSED: c_int = -4;
pub const BRG_E_TIMEOUT: c_int = -5;
pub const BRG_E_CANCELLED: c_int = -6;
pub const BRG_E_DNS: c_int = -7;
pub const BRG_E_CONNECT: c_int = -8;
pub const BRG_E_TLS: c_int = -9;
pub const BRG_E_IO: c_int = -10;
pub const BRG_E_PROTOCOL: c_int = -11;
pub const BRG_E_HTTP: c_int = -12;
pub const BRG_E_TOO_LARGE: c_int = -13;
pub const BRG_E_BACKEND: c_int = -14;
pub const BRG_E_NOTFOUND: c_int = -15;
pub const BRG_E_UNAVAILABLE: c_int = -16;

// ---- brg_option (a C enum: int-sized) ----
pub type brg_option = c_int;
pub const BRG_OPT_MAX_INFLIGHT: brg_option = 1;
pub const BRG_OPT_MAX_CONNS_PER_HOST: brg_option = 2;
pub const BRG_OPT_RATE_LIMIT: brg_option = 3;
pub const BRG_OPT_RATE_PERIOD_MS: brg_option = 4;
pub const BRG_OPT_RATE_BURST: brg_option = 5;
pub const BRG_OPT_TOKENS_PER_MINUTE: brg_option = 6;
pub const BRG_OPT_TIMEOUT_MS: brg_option = 7;
pub const BRG_OPT_CONNECT_TIMEOUT_MS: brg_option = 8;
pub const BRG_OPT_MAX_RETRIES: brg_option = 9;
pub const BRG_OPT_BACKOFF_BASE_MS: brg_option = 10;
pub const BRG_OPT_BACKOFF_MAX_MS: brg_option = 11;
pub const BRG_OPT_BACKEND: brg_option = 12;
pub const BRG_OPT_CA_FILE: brg_option = 13;
pub const BRG_OPT_VERIFY_PEER: brg_option = 14;
pub const BRG_OPT_MAX_RESPONSE_BYTES: brg_option = 15;
pub const BRG_OPT_CACHE_PATH: brg_option = 16;
pub const BRG_OPT_CACHE_TTL_S: brg_option = 17;
pub const BRG_OPT_ALLOW_HTTP: brg_option = 18;
pub const BRG_OPT_MAX_PENDING: brg_option = 19;
pub const BRG_OPT_MAX_HEADER_BYTES: brg_option = 20;
pub const BRG_OPT_IDLE_TIMEOUT_MS: brg_option = 21;
pub const BRG_OPT_TOKENS_BURST: brg_option = 22;
pub const BRG_OPT_RETRY_STATUSES: brg_option = 23;
pub const BRG_OPT_BREAKER_THRESHOLD: brg_option = 24;
pub const BRG_OPT_BREAKER_PAUSE_MS: brg_option = 25;
pub const BRG_OPT_TLS_RESUME: brg_option = 26;
pub const BRG_OPT_MAX_HANDSHAKES: brg_option = 27;
// since 0.2.0
pub const BRG_OPT_FIRST_TOKEN_TIMEOUT_MS: brg_option = 28;
pub const BRG_OPT_STREAM_IDLE_TIMEOUT_MS: brg_option = 29;
pub const BRG_OPT_HTTP_VERSION: brg_option = 30;
pub const BRG_OPT_PROXY: brg_option = 31;
pub const BRG_OPT_NO_PROXY: brg_option = 32;
pub const BRG_OPT_DNS_SERVERS: brg_option = 33;
pub const BRG_OPT_MAX_SERVER_WAIT_MS: brg_option = 34;
// since 0.4.0
pub const BRG_OPT_SHARED_LIMITS: brg_option = 35;
pub const BRG_OPT_SHARED_NAMESPACE: brg_option = 36;
pub const BRG_OPT_SHARED_TIMEOUT_MS: brg_option = 37;
pub const BRG_OPT_SHARED_LEASE_MS: brg_option = 38;

/// How an option is set: `brg_config_set_int` or `brg_config_set_str`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptKind {
    Int,
    Bool,
    Backend,
    Str,
}

/// Every option of `capi/barrage_options.h`: (NAME, number, kind). Checked
/// against the header's table (tests/abi_layout.rs); all are exposed,
/// through [`crate::Config::option`] and the typed `Config` methods.
pub const OPTIONS: &[(&str, brg_option, OptKind)] = &[
    ("MAX_INFLIGHT", BRG_OPT_MAX_INFLIGHT, OptKind::Int),
    ("MAX_CONNS_PER_HOST", BRG_OPT_MAX_CONNS_PER_HOST, OptKind::Int),
    ("RATE_LIMIT", BRG_OPT_RATE_LIMIT, OptKind::Int),
    ("RATE_PERIOD_MS", BRG_OPT_RATE_PERIOD_MS, OptKind::Int),
    ("RATE_BURST", BRG_OPT_RATE_BURST, OptKind::Int),
    ("TOKENS_PER_MINUTE", BRG_OPT_TOKENS_PER_MINUTE, OptKind::Int),
    ("TIMEOUT_MS", BRG_OPT_TIMEOUT_MS, OptKind::Int),
    ("CONNECT_TIMEOUT_MS", BRG_OPT_CONNECT_TIMEOUT_MS, OptKind::Int),
    ("MAX_RETRIES", BRG_OPT_MAX_RETRIES, OptKind::Int),
    ("BACKOFF_BASE_MS", BRG_OPT_BACKOFF_BASE_MS, OptKind::Int),
    ("BACKOFF_MAX_MS", BRG_OPT_BACKOFF_MAX_MS, OptKind::Int),
    ("BACKEND", BRG_OPT_BACKEND, OptKind::Backend),
    ("CA_FILE", BRG_OPT_CA_FILE, OptKind::Str),
    ("VERIFY_PEER", BRG_OPT_VERIFY_PEER, OptKind::Bool),
    ("MAX_RESPONSE_BYTES", BRG_OPT_MAX_RESPONSE_BYTES, OptKind::Int),
    ("CACHE_PATH", BRG_OPT_CACHE_PATH, OptKind::Str),
    ("CACHE_TTL_S", BRG_OPT_CACHE_TTL_S, OptKind::Int),
    ("ALLOW_HTTP", BRG_OPT_ALLOW_HTTP, OptKind::Bool),
    ("MAX_PENDING", BRG_OPT_MAX_PENDING, OptKind::Int),
    ("MAX_HEADER_BYTES", BRG_OPT_MAX_HEADER_BYTES, OptKind::Int),
    ("IDLE_TIMEOUT_MS", BRG_OPT_IDLE_TIMEOUT_MS, OptKind::Int),
    ("TOKENS_BURST", BRG_OPT_TOKENS_BURST, OptKind::Int),
    ("RETRY_STATUSES", BRG_OPT_RETRY_STATUSES, OptKind::Str),
    ("BREAKER_THRESHOLD", BRG_OPT_BREAKER_THRESHOLD, OptKind::Int),
    ("BREAKER_PAUSE_MS", BRG_OPT_BREAKER_PAUSE_MS, OptKind::Int),
    ("TLS_RESUME", BRG_OPT_TLS_RESUME, OptKind::Bool),
    ("MAX_HANDSHAKES", BRG_OPT_MAX_HANDSHAKES, OptKind::Int),
    ("FIRST_TOKEN_TIMEOUT_MS", BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, OptKind::Int),
    ("STREAM_IDLE_TIMEOUT_MS", BRG_OPT_STREAM_IDLE_TIMEOUT_MS, OptKind::Int),
    ("HTTP_VERSION", BRG_OPT_HTTP_VERSION, OptKind::Int),
    ("PROXY", BRG_OPT_PROXY, OptKind::Str),
    ("NO_PROXY", BRG_OPT_NO_PROXY, OptKind::Str),
    ("DNS_SERVERS", BRG_OPT_DNS_SERVERS, OptKind::Str),
    ("MAX_SERVER_WAIT_MS", BRG_OPT_MAX_SERVER_WAIT_MS, OptKind::Int),
    ("SHARED_LIMITS", BRG_OPT_SHARED_LIMITS, OptKind::Str),
    ("SHARED_NAMESPACE", BRG_OPT_SHARED_NAMESPACE, OptKind::Str),
    ("SHARED_TIMEOUT_MS", BRG_OPT_SHARED_TIMEOUT_MS, OptKind::Int),
    ("SHARED_LEASE_MS", BRG_OPT_SHARED_LEASE_MS, OptKind::Int),
];

// ---- brg_backend ----
pub type brg_backend = c_int;
pub const BRG_BACKEND_AUTO: brg_backend = 0;
pub const BRG_BACKEND_IO_URING: brg_backend = 1;
pub const BRG_BACKEND_EPOLL: brg_backend = 2;

#[repr(C)]
pub struct brg_config {
    _private: [u8; 0],
}
#[repr(C)]
pub struct brg_engine {
    _private: [u8; 0],
}

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct brg_header {
    pub name: *const c_char,
    pub value: *const c_char,
}

pub const BRG_REQ_STREAM: u32 = 0x1;
pub const BRG_REQ_NO_RETRY: u32 = 0x2;
pub const BRG_REQ_NO_CACHE: u32 = 0x4;
/// Since 0.4.0 (an older library refuses it with `BRG_E_INVALID`).
pub const BRG_REQ_HEADERS: u32 = 0x8;
/// Since 0.5.0, with `BRG_REQ_STREAM` only (else `BRG_E_INVALID`; an older
/// library refuses the bit): a 2xx event stream's final body is empty.
pub const BRG_REQ_NO_STREAM_BODY: u32 = 0x10;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct brg_request {
    pub size: u32,
    pub flags: u32,
    pub method: *const c_char,
    pub url: *const c_char,
    pub headers: *const brg_header,
    pub n_headers: u32,
    pub body: *const c_void,
    pub body_len: usize,
    pub user_data: u64,
    pub timeout_ms: i64,
    pub deadline_ms: i64,
    pub max_retries: i32,
    pub token_estimate: u32,
    // since 0.1.0, second part
    pub limit_key: *const c_char,
    pub group: u64,
    // since 0.2.0, third part
    pub first_token_timeout_ms: i64,
    pub stream_idle_timeout_ms: i64,
}

pub const BRG_RES_PARTIAL: u32 = 0x1;
pub const BRG_RES_CACHED: u32 = 0x2;

#[repr(C)]
#[derive(Debug)]
pub struct brg_result {
    pub size: u32,
    pub flags: u32,
    pub id: u64,
    pub user_data: u64,
    pub status: i32,
    pub http_status: i32,
    pub attempts: u32,
    pub reserved0: u32,
    pub body: *const c_char,
    pub body_len: usize,
    pub error: *const c_char,
    pub queued_us: i64,
    pub ttfb_us: i64,
    pub total_us: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub sent_us: i64,
    pub request_id: *const c_char,
    // since 0.2.0: present when size covers them
    pub ttft_us: i64,
    pub events: u32,
    pub reserved1: u32,
    pub gap_max_us: i64,
    pub gap_mean_us: i64,
    // since 0.4.0: present when size covers them
    pub retry_after_ms: i64,
    pub headers: *const c_char,
    pub headers_len: usize,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct brg_stats {
    pub size: u32,
    pub backend: i32,
    pub submitted: u64,
    pub completed: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub retried: u64,
    pub timed_out: u64,
    pub queued: u64,
    pub in_flight: u64,
    pub connections_open: u64,
    pub connections_idle: u64,
    pub connections_opened: u64,
    pub tls_resumed: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub results_waiting: u64,
    pub waiting_rate: u64,
    pub throttled: u64,
    pub cooling_keys: u64,
    pub breaker_open_keys: u64,
    pub rejected: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cache_hits: u64,
    pub shared_round_trips: u64,
    pub shared_fallback_keys: u64,
}

pub const BRG_BATCH_RESUME: u32 = 0x1;
pub const BRG_BATCH_ORDERED: u32 = 0x2;
pub const BRG_BATCH_DRY_RUN: u32 = 0x4;

#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct brg_batch_options {
    pub size: u32,
    pub flags: u32,
    pub input_path: *const c_char,
    pub output_path: *const c_char,
    pub endpoint: *const c_char,
    pub api_key_env: *const c_char,
    pub headers: *const brg_header,
    pub n_headers: u32,
    pub reorder_window: u32,
    pub prices_path: *const c_char,
    pub deadline_ms: i64,
    pub max_retries: i32,
    pub shard_index: u32,
    pub shard_count: u32,
    pub reserved0: u32,
}

#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct brg_batch_progress {
    pub size: u32,
    pub reserved0: u32,
    pub total: u64,
    pub done: u64,
    pub ok: u64,
    pub failed: u64,
    pub cached: u64,
    pub invalid: u64,
    pub skipped: u64,
    pub in_flight: u64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub elapsed_s: f64,
}

pub type brg_batch_progress_fn =
    Option<unsafe extern "C" fn(p: *const brg_batch_progress, user: *mut c_void) -> c_int>;

extern "C" {
    pub fn brg_config_new() -> *mut brg_config;
    pub fn brg_config_set_int(cfg: *mut brg_config, opt: brg_option, value: i64) -> c_int;
    pub fn brg_config_set_str(cfg: *mut brg_config, opt: brg_option, value: *const c_char) -> c_int;
    pub fn brg_config_from_env(cfg: *mut brg_config) -> c_int;
    pub fn brg_config_error(cfg: *const brg_config) -> *const c_char;
    pub fn brg_config_free(cfg: *mut brg_config);

    pub fn brg_engine_new(cfg: *const brg_config, out: *mut *mut brg_engine) -> c_int;
    pub fn brg_engine_free(e: *mut brg_engine);

    pub fn brg_submit(e: *mut brg_engine, req: *const brg_request, id_out: *mut u64) -> c_int;
    pub fn brg_cancel(e: *mut brg_engine, id: u64) -> c_int;
    pub fn brg_poll(e: *mut brg_engine, timeout_ms: c_int) -> c_int;

    pub fn brg_results(e: *mut brg_engine, out: *mut *mut brg_result, max: usize) -> usize;
    pub fn brg_result_free(r: *mut brg_result);

    pub fn brg_backend_fd(e: *const brg_engine) -> c_int;
    pub fn brg_cancel_group(e: *mut brg_engine, group: u64) -> c_int;
    pub fn brg_group_deadline(e: *mut brg_engine, group: u64, deadline_ms: i64) -> c_int;
    pub fn brg_backend_timeout(e: *const brg_engine) -> c_int;
    pub fn brg_start(e: *mut brg_engine) -> c_int;
    pub fn brg_results_fd(e: *const brg_engine) -> c_int;
    pub fn brg_stats(e: *const brg_engine, out: *mut brg_stats) -> c_int;

    pub fn brg_strerror(status: c_int) -> *const c_char;
    pub fn brg_status_name(status: c_int) -> *const c_char;
    pub fn brg_last_error() -> *const c_char;
    pub fn brg_version() -> *const c_char;
    pub fn brg_version_hex() -> u32;

    pub fn brg_batch_run(
        e: *mut brg_engine,
        opts: *const brg_batch_options,
        progress: brg_batch_progress_fn,
        user: *mut c_void,
        final_out: *mut brg_batch_progress,
    ) -> c_int;
}

#[cfg(test)]
mod layout {
    use super::*;
    use std::mem::{offset_of, size_of};
    // x86_64 / aarch64 LP64 layout of the header's structs.
    #[test]
    fn sizes() {
        assert_eq!(size_of::<brg_request>(), 120);
        assert_eq!(offset_of!(brg_request, limit_key), 88);
        assert_eq!(offset_of!(brg_request, first_token_timeout_ms), 104);
        assert_eq!(offset_of!(brg_request, stream_idle_timeout_ms), 112);
        assert_eq!(size_of::<brg_result>(), 176);
        assert_eq!(offset_of!(brg_result, request_id), 112);
        assert_eq!(offset_of!(brg_result, ttft_us), 120);
        assert_eq!(offset_of!(brg_result, events), 128);
        assert_eq!(offset_of!(brg_result, reserved1), 132);
        assert_eq!(offset_of!(brg_result, gap_max_us), 136);
        assert_eq!(offset_of!(brg_result, gap_mean_us), 144);
        assert_eq!(offset_of!(brg_result, retry_after_ms), 152);
        assert_eq!(offset_of!(brg_result, headers), 160);
        assert_eq!(offset_of!(brg_result, headers_len), 168);
        assert_eq!(size_of::<brg_stats>(), 8 + 25 * 8);
        assert_eq!(size_of::<brg_batch_options>(), 88);
        assert_eq!(size_of::<brg_batch_progress>(), 104);
    }
}
