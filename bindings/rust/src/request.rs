use std::ffi::CString;
use std::os::raw::c_void;
use std::time::Duration;

use crate::sys;

/// A request to submit. Built once, it can be submitted any number of times
/// (the engine copies everything at submit). Strings with a NUL byte make
/// `submit` fail with `Error::Invalid`.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Option<CString>,
    pub(crate) url: CString,
    pub(crate) headers: Vec<(CString, CString)>,
    pub(crate) body: Vec<u8>,
    pub(crate) flags: u32,
    pub(crate) user_data: u64,
    pub(crate) timeout_ms: i64,
    pub(crate) deadline_ms: i64,
    pub(crate) max_retries: i32,
    pub(crate) token_estimate: u32,
    pub(crate) limit_key: Option<CString>,
    pub(crate) group: u64,
    pub(crate) first_token_timeout_ms: i64,
    pub(crate) stream_idle_timeout_ms: i64,
    pub(crate) bad: Option<&'static str>,
}

fn ms(d: Duration) -> i64 {
    // A non-zero duration below 1 ms still means "a deadline", not "none".
    let m = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    if m == 0 && !d.is_zero() { 1 } else { m }
}

impl Request {
    /// A POST (the engine's default method) to `url`.
    pub fn new(url: impl Into<Vec<u8>>) -> Request {
        let mut bad = None;
        let url = CString::new(url).unwrap_or_else(|_| {
            bad = Some("url contains a NUL byte");
            CString::default()
        });
        Request {
            method: None,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            flags: 0,
            user_data: 0,
            timeout_ms: 0,
            deadline_ms: 0,
            max_retries: -1,
            token_estimate: 0,
            limit_key: None,
            group: 0,
            first_token_timeout_ms: 0,
            stream_idle_timeout_ms: 0,
            bad,
        }
    }

    fn c(&mut self, s: impl Into<Vec<u8>>, what: &'static str) -> CString {
        CString::new(s).unwrap_or_else(|_| {
            self.bad.get_or_insert(what);
            CString::default()
        })
    }

    pub fn url(mut self, url: impl Into<Vec<u8>>) -> Self {
        self.url = self.c(url, "url contains a NUL byte");
        self
    }
    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(self.c(m, "method contains a NUL byte"));
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        let n = self.c(name, "header name contains a NUL byte");
        let v = self.c(value, "header value contains a NUL byte");
        self.headers.push((n, v));
        self
    }
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
    /// Sets the body and `Content-Type: application/json`.
    pub fn json(self, body: impl Into<Vec<u8>>) -> Self {
        self.header("Content-Type", "application/json").body(body)
    }
    /// Per attempt; zero = engine default.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout_ms = ms(d);
        self
    }
    /// Whole request including retries, from submit; zero = none.
    pub fn deadline(mut self, d: Duration) -> Self {
        self.deadline_ms = ms(d);
        self
    }
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = i32::try_from(n).unwrap_or(i32::MAX);
        self
    }
    pub fn no_retry(mut self) -> Self {
        self.flags |= sys::BRG_REQ_NO_RETRY;
        self
    }
    pub fn no_cache(mut self) -> Self {
        self.flags |= sys::BRG_REQ_NO_CACHE;
        self
    }
    /// Asks for the answer's header fields (`BRG_REQ_HEADERS`): they come in
    /// [`Response::headers`](crate::Response::headers) (for a stream, on its
    /// first event and its final result) and in `Error::Http`. Off by default
    /// because a provider's head is ~1 KiB per result. Needs libbarrage 0.4;
    /// an older library (feature `dynamic`) is not asked, and headers stay empty.
    pub fn response_headers(self, on: bool) -> Self {
        self.with_flag(sys::BRG_REQ_HEADERS, on)
    }
    pub fn token_estimate(mut self, n: u32) -> Self {
        self.token_estimate = n;
        self
    }
    pub fn limit_key(mut self, key: &str) -> Self {
        self.limit_key = Some(self.c(key, "limit key contains a NUL byte"));
        self
    }
    pub fn group(mut self, g: u64) -> Self {
        self.group = g;
        self
    }
    pub fn user_data(mut self, v: u64) -> Self {
        self.user_data = v;
        self
    }

    /// Asks for the answer as server-sent events (`BRG_REQ_STREAM`): every
    /// data event of a 2xx `text/event-stream` answer becomes one partial
    /// [`Response`](crate::Response) ([`Response::is_partial`](crate::Response::is_partial)),
    /// in order, before the one final result, whose body is the whole raw
    /// event stream (empty with [`Request::no_stream_body`]). OpenAI's
    /// `[DONE]` is not delivered as an event.
    ///
    /// This sets the flag only: **the body must ask for a stream itself**
    /// (`"stream": true`, and `"stream_options": {"include_usage": true}` for
    /// token counts in the final result). Once an event went out, a failed
    /// attempt is not retried (events would repeat): the final result carries
    /// the error. Use [`Engine::stream`](crate::Engine::stream) to read the
    /// events of one request, or the poll/results API for many.
    pub fn stream(self, on: bool) -> Self {
        self.with_flag(sys::BRG_REQ_STREAM, on)
    }
    /// Streamed requests (`BRG_REQ_NO_STREAM_BODY`, libbarrage 0.5): once the
    /// answer is a 2xx event stream its raw bytes are not kept, so the final
    /// result's body is empty while the events, usage tokens and timings are
    /// the same. A long stream then costs no memory for the events already
    /// delivered; [`Config::max_response_bytes`](crate::Config::max_response_bytes)
    /// bounds each event instead of the whole stream (the stream timeouts
    /// bound its length). Error answers and answers that are not an event
    /// stream keep their body.
    ///
    /// Only for a streamed request: [`Request::stream`], or one given to
    /// [`Engine::stream`](crate::Engine::stream) or `AsyncEngine::stream`
    /// (they set the stream flag). Submitted otherwise, it fails with
    /// [`Error::Invalid`](crate::Error::Invalid). An older library (feature
    /// `dynamic`) refuses the flag, so it is not asked, and the body is kept.
    pub fn no_stream_body(self, on: bool) -> Self {
        self.with_flag(sys::BRG_REQ_NO_STREAM_BODY, on)
    }
    /// True when [`Request::stream`] is on.
    pub fn is_stream(&self) -> bool {
        self.flags & sys::BRG_REQ_STREAM != 0
    }
    fn with_flag(mut self, flag: u32, on: bool) -> Self {
        if on {
            self.flags |= flag;
        } else {
            self.flags &= !flag;
        }
        self
    }
    /// Streamed requests: an attempt whose first token (first non-empty
    /// delta) has not arrived this long after its request was sent fails with
    /// [`Error::Timeout`](crate::Error::Timeout). Zero = the engine's
    /// [`Config::first_token_timeout`](crate::Config::first_token_timeout).
    pub fn first_token_timeout(mut self, d: Duration) -> Self {
        self.first_token_timeout_ms = ms(d);
        self
    }
    /// Streamed requests: the longest silence allowed before the first event
    /// and between two events; the request then fails with
    /// [`Error::Timeout`](crate::Error::Timeout) after the events that arrived.
    /// Zero = the engine's
    /// [`Config::stream_idle_timeout`](crate::Config::stream_idle_timeout).
    pub fn stream_idle_timeout(mut self, d: Duration) -> Self {
        self.stream_idle_timeout_ms = ms(d);
        self
    }

    /// Calls `f` with a `brg_request` pointing into `self` (valid for the call only).
    pub(crate) fn with_raw<R>(&self, f: impl FnOnce(&sys::brg_request) -> R) -> R {
        const INLINE: usize = 8;
        let mut small = [sys::brg_header { name: std::ptr::null(), value: std::ptr::null() }; INLINE];
        let big: Vec<sys::brg_header>;
        let hdrs: &[sys::brg_header] = if self.headers.len() <= INLINE {
            for (slot, (n, v)) in small.iter_mut().zip(&self.headers) {
                *slot = sys::brg_header { name: n.as_ptr(), value: v.as_ptr() };
            }
            &small[..self.headers.len()]
        } else {
            big = self
                .headers
                .iter()
                .map(|(n, v)| sys::brg_header { name: n.as_ptr(), value: v.as_ptr() })
                .collect();
            &big
        };
        let raw = sys::brg_request {
            size: std::mem::size_of::<sys::brg_request>() as u32,
            flags: self.flags,
            method: self.method.as_ref().map_or(std::ptr::null(), |m| m.as_ptr()),
            url: self.url.as_ptr(),
            headers: if hdrs.is_empty() { std::ptr::null() } else { hdrs.as_ptr() },
            n_headers: hdrs.len() as u32,
            body: if self.body.is_empty() { std::ptr::null() } else { self.body.as_ptr() as *const c_void },
            body_len: self.body.len(),
            user_data: self.user_data,
            timeout_ms: self.timeout_ms,
            deadline_ms: self.deadline_ms,
            max_retries: self.max_retries,
            token_estimate: self.token_estimate,
            limit_key: self.limit_key.as_ref().map_or(std::ptr::null(), |k| k.as_ptr()),
            group: self.group,
            first_token_timeout_ms: self.first_token_timeout_ms,
            stream_idle_timeout_ms: self.stream_idle_timeout_ms,
        };
        f(&raw)
    }
}
