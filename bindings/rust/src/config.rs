use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr::NonNull;
use std::time::Duration;

use crate::error::Error;
use crate::sys;

/// Which reactor backend the engine uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Auto,
    IoUring,
    Epoll,
}

impl Backend {
    pub(crate) fn from_raw(v: i32) -> Backend {
        match v {
            sys::BRG_BACKEND_IO_URING => Backend::IoUring,
            sys::BRG_BACKEND_EPOLL => Backend::Epoll,
            _ => Backend::Auto,
        }
    }
}

/// Which HTTP version the engine speaks over TLS (`BRG_OPT_HTTP_VERSION`).
/// Plain `http://` URLs always use HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpVersion {
    /// HTTP/2 when the server offers it with ALPN, else HTTP/1.1 (the default).
    Auto,
    /// HTTP/1.1 only.
    Http1,
    /// HTTP/2 only: a server that does not agree fails the request with
    /// [`Error::Protocol`] (or [`Error::Tls`] when it refuses the handshake).
    Http2,
}

/// A value for [`Config::option`].
#[derive(Debug, Clone, Copy)]
pub enum OptionValue<'a> {
    Int(i64),
    Str(&'a str),
}

/// Engine configuration (owns a `brg_config`). Builder methods take and return
/// `self`; the first refused value is remembered and reported by
/// [`Engine::new`](crate::Engine::new), or use [`Config::set_int`] /
/// [`Config::set_str`] to see errors at once.
///
/// `Send` but not `Sync`: the header allows `brg_config_*` from any thread but
/// not concurrently on one config.
pub struct Config {
    raw: NonNull<sys::brg_config>,
    error: Option<Error>,
}

unsafe impl Send for Config {}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Config {
    /// Defaults.
    pub fn new() -> Config {
        let raw = NonNull::new(unsafe { sys::brg_config_new() }).expect("brg_config_new: out of memory");
        Config { raw, error: None }
    }

    /// Defaults, then `BARRAGE_*` and the wrapper names from the environment.
    pub fn from_env() -> Result<Config, Error> {
        let c = Config::new();
        let rc = unsafe { sys::brg_config_from_env(c.raw.as_ptr()) };
        if rc != 0 {
            return Err(Error::from_code(rc, c.error_text()));
        }
        Ok(c)
    }

    fn error_text(&self) -> String {
        let p = unsafe { sys::brg_config_error(self.raw.as_ptr()) };
        if p.is_null() {
            String::new()
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        }
    }

    /// `brg_config_set_int` for any option number.
    pub fn set_int(&mut self, opt: i32, value: i64) -> Result<(), Error> {
        let rc = unsafe { sys::brg_config_set_int(self.raw.as_ptr(), opt, value) };
        if rc != 0 {
            return Err(Error::from_code(rc, self.error_text()));
        }
        Ok(())
    }

    /// `brg_config_set_str` for any option number; `None` clears it.
    pub fn set_str(&mut self, opt: i32, value: Option<&str>) -> Result<(), Error> {
        let c = match value.map(CString::new).transpose() {
            Ok(c) => c,
            Err(_) => return Err(Error::Invalid("string option contains a NUL byte".into())),
        };
        let p = c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr());
        let rc = unsafe { sys::brg_config_set_str(self.raw.as_ptr(), opt, p) };
        if rc != 0 {
            return Err(Error::from_code(rc, self.error_text()));
        }
        Ok(())
    }

    fn int(mut self, opt: i32, v: i64) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.set_int(opt, v) {
                self.error = Some(e);
            }
        }
        self
    }

    fn fail(mut self, why: String) -> Self {
        self.error.get_or_insert(Error::Invalid(why));
        self
    }

    fn string(mut self, opt: i32, v: Option<&str>) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.set_str(opt, v) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Longest wait a server's answer can impose (Retry-After and friends).
    pub fn max_server_wait(self, d: Duration) -> Self { self.int(sys::BRG_OPT_MAX_SERVER_WAIT_MS, ms(d)) }
    /// Sets an option by its header NAME (e.g. `"MAX_RETRIES"`, see
    /// [`sys::OPTIONS`]): an integer for INT/BOOL/BACKEND options, a string
    /// for STR ones. An unknown name or a wrong kind makes `Engine::new` fail
    /// with `Error::Invalid`.
    pub fn option(self, name: &str, value: OptionValue<'_>) -> Self {
        match (sys::OPTIONS.iter().find(|o| o.0 == name), value) {
            (Some(&(_, n, sys::OptKind::Str)), OptionValue::Str(v)) => self.string(n, Some(v)),
            (Some(&(_, n, k)), OptionValue::Int(v)) if k != sys::OptKind::Str => self.int(n, v),
            (Some(_), _) => self.fail(format!("option {name}: wrong value kind")),
            (None, _) => self.fail(format!("unknown option {name}")),
        }
    }
    pub fn max_inflight(self, n: u32) -> Self { self.int(sys::BRG_OPT_MAX_INFLIGHT, n.into()) }
    pub fn max_conns_per_host(self, n: u32) -> Self { self.int(sys::BRG_OPT_MAX_CONNS_PER_HOST, n.into()) }
    pub fn rate_limit(self, requests: u32, period: Duration) -> Self {
        self.int(sys::BRG_OPT_RATE_LIMIT, requests.into()).int(sys::BRG_OPT_RATE_PERIOD_MS, ms(period))
    }
    pub fn rate_burst(self, n: u32) -> Self { self.int(sys::BRG_OPT_RATE_BURST, n.into()) }
    pub fn tokens_per_minute(self, n: u64) -> Self { self.int(sys::BRG_OPT_TOKENS_PER_MINUTE, n as i64) }
    pub fn tokens_burst(self, n: u64) -> Self { self.int(sys::BRG_OPT_TOKENS_BURST, n as i64) }
    /// Per attempt.
    pub fn timeout(self, d: Duration) -> Self { self.int(sys::BRG_OPT_TIMEOUT_MS, ms(d)) }
    pub fn connect_timeout(self, d: Duration) -> Self { self.int(sys::BRG_OPT_CONNECT_TIMEOUT_MS, ms(d)) }
    pub fn max_retries(self, n: u32) -> Self { self.int(sys::BRG_OPT_MAX_RETRIES, n.into()) }
    pub fn backoff(self, base: Duration, max: Duration) -> Self {
        self.int(sys::BRG_OPT_BACKOFF_BASE_MS, ms(base)).int(sys::BRG_OPT_BACKOFF_MAX_MS, ms(max))
    }
    pub fn backend(self, b: Backend) -> Self {
        let v = match b {
            Backend::Auto => sys::BRG_BACKEND_AUTO,
            Backend::IoUring => sys::BRG_BACKEND_IO_URING,
            Backend::Epoll => sys::BRG_BACKEND_EPOLL,
        };
        self.int(sys::BRG_OPT_BACKEND, v.into())
    }
    /// PEM file of extra trusted CAs.
    pub fn ca_file(self, path: impl AsRef<Path>) -> Self {
        let s = path.as_ref().to_string_lossy().into_owned();
        self.string(sys::BRG_OPT_CA_FILE, Some(&s))
    }
    pub fn verify_peer(self, on: bool) -> Self { self.int(sys::BRG_OPT_VERIFY_PEER, on as i64) }
    pub fn max_response_bytes(self, n: u64) -> Self { self.int(sys::BRG_OPT_MAX_RESPONSE_BYTES, n as i64) }
    /// SQLite response cache; `None` disables it.
    pub fn cache_path(self, path: Option<&Path>) -> Self {
        let s = path.map(|p| p.to_string_lossy().into_owned());
        self.string(sys::BRG_OPT_CACHE_PATH, s.as_deref())
    }
    pub fn cache_ttl(self, d: Duration) -> Self { self.int(sys::BRG_OPT_CACHE_TTL_S, d.as_secs() as i64) }
    pub fn allow_http(self, on: bool) -> Self { self.int(sys::BRG_OPT_ALLOW_HTTP, on as i64) }
    pub fn max_pending(self, n: u64) -> Self { self.int(sys::BRG_OPT_MAX_PENDING, n as i64) }
    pub fn max_header_bytes(self, n: u64) -> Self { self.int(sys::BRG_OPT_MAX_HEADER_BYTES, n as i64) }
    pub fn idle_timeout(self, d: Duration) -> Self { self.int(sys::BRG_OPT_IDLE_TIMEOUT_MS, ms(d)) }
    /// e.g. `"408,409,429,500-504"`.
    pub fn retry_statuses(self, list: &str) -> Self { self.string(sys::BRG_OPT_RETRY_STATUSES, Some(list)) }
    pub fn breaker(self, threshold: u32, pause: Duration) -> Self {
        self.int(sys::BRG_OPT_BREAKER_THRESHOLD, threshold.into()).int(sys::BRG_OPT_BREAKER_PAUSE_MS, ms(pause))
    }

    /// `false` makes every new connection do a full TLS handshake.
    pub fn tls_resume(self, on: bool) -> Self { self.int(sys::BRG_OPT_TLS_RESUME, on as i64) }
    /// TLS handshakes in progress at once (default 64).
    pub fn max_handshakes(self, n: u32) -> Self { self.int(sys::BRG_OPT_MAX_HANDSHAKES, n.into()) }

    /// Streamed requests ([`Request::stream`](crate::Request::stream)): an
    /// attempt whose first token (first non-empty delta) has not arrived this
    /// long after its request was sent ends with [`Error::Timeout`]. Zero (the
    /// default) = no such limit. A request's own
    /// [`Request::first_token_timeout`](crate::Request::first_token_timeout) wins.
    pub fn first_token_timeout(self, d: Duration) -> Self {
        self.int(sys::BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, ms(d))
    }
    /// Streamed requests: the longest silence allowed before the first event
    /// and between two events; zero (the default) = none. Not to be confused
    /// with [`Config::idle_timeout`] (keep-alive connections). A request's own
    /// [`Request::stream_idle_timeout`](crate::Request::stream_idle_timeout) wins.
    pub fn stream_idle_timeout(self, d: Duration) -> Self {
        self.int(sys::BRG_OPT_STREAM_IDLE_TIMEOUT_MS, ms(d))
    }
    /// HTTP/1.1, HTTP/2 or whatever the server offers (ALPN, the default).
    pub fn http_version(self, v: HttpVersion) -> Self {
        let n = match v {
            HttpVersion::Auto => 0,
            HttpVersion::Http1 => 1,
            HttpVersion::Http2 => 2,
        };
        self.int(sys::BRG_OPT_HTTP_VERSION, n)
    }
    /// HTTP proxy for `https://` URLs, reached with CONNECT:
    /// `"http://[user:password@]host:port"` (the port is required). `""` =
    /// direct (the default unless [`Config::from_env`] found `https_proxy`).
    /// A malformed value is reported by [`Engine::new`](crate::Engine::new).
    pub fn proxy(self, url: &str) -> Self { self.string(sys::BRG_OPT_PROXY, Some(url)) }
    /// Hosts that bypass [`Config::proxy`], with curl's `NO_PROXY` rules
    /// (domain suffixes, IPs, CIDR blocks, `host:port`, `"*"`); localhost is
    /// not implied.
    pub fn no_proxy(self, hosts: &str) -> Self { self.string(sys::BRG_OPT_NO_PROXY, Some(hosts)) }
    /// DNS servers `"ip[:port],..."` (`[v6]:port`) asked instead of
    /// `/etc/resolv.conf`'s; `""` = the system's.
    pub fn dns_servers(self, servers: &str) -> Self { self.string(sys::BRG_OPT_DNS_SERVERS, Some(servers)) }
    /// Rate limits shared by every process using this Redis
    /// (`redis://[user:password@]host:port[/db]`) and namespace.
    pub fn shared_limits(self, url: &str) -> Self { self.string(sys::BRG_OPT_SHARED_LIMITS, Some(url)) }
    pub fn shared_namespace(self, ns: &str) -> Self { self.string(sys::BRG_OPT_SHARED_NAMESPACE, Some(ns)) }
    pub fn shared_timeout(self, d: Duration) -> Self { self.int(sys::BRG_OPT_SHARED_TIMEOUT_MS, ms(d)) }
    pub fn shared_lease(self, d: Duration) -> Self { self.int(sys::BRG_OPT_SHARED_LEASE_MS, ms(d)) }

    pub(crate) fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }
    pub(crate) fn as_ptr(&self) -> *const sys::brg_config {
        self.raw.as_ptr()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        unsafe { sys::brg_config_free(self.raw.as_ptr()) }
    }
}
