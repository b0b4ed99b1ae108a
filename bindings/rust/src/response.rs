use std::borrow::Cow;
use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

use crate::error::Error;
use crate::headers::Headers;
use crate::sys;

/// The id `submit` returns; every submitted request gets exactly one result
/// carrying it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// Timings measured from submit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Submit -> first attempt got an in-flight slot.
    pub queued: Duration,
    /// Submit -> last attempt's request handed to its connection.
    pub sent: Option<Duration>,
    /// Submit -> first response byte of the last attempt.
    pub ttfb: Option<Duration>,
    /// Submit -> result.
    pub total: Duration,
}

/// One result: owns the `brg_result` and frees it on drop.
///
/// Usually a finished request, a success or a failure; see
/// [`Response::error`] and [`Response::into_result`]. For a streamed request
/// ([`Request::stream`](crate::Request::stream)) the engine first yields one
/// *partial* result per server-sent event ([`Response::is_partial`]; body =
/// the event's data, [`Response::event_index`] = its 1-based index), then
/// exactly one final result with the same id (body = the raw event stream,
/// usage tokens, [`Response::ttft`], [`Response::events`], gap timings).
/// Partial results come out of [`Engine::results`](crate::Engine::results)
/// and [`ThreadedEngine::results`](crate::ThreadedEngine::results) like any
/// other: check `is_partial()` before treating one as the request's outcome.
pub struct Response {
    raw: NonNull<sys::brg_result>,
}

// The result is a plain heap object owned by us; brg_result_free is [any].
unsafe impl Send for Response {}
unsafe impl Sync for Response {}

/// Offset just past a `brg_result` field (of the given type).
macro_rules! end_of {
    ($f:ident: $t:ty) => {
        std::mem::offset_of!(sys::brg_result, $f) + std::mem::size_of::<$t>()
    };
}

fn us(v: i64) -> Option<Duration> {
    (v >= 0).then(|| Duration::from_micros(v as u64))
}

impl Response {
    /// # Safety
    /// `raw` must be a result returned by `brg_results`, owned by the caller.
    pub(crate) unsafe fn from_raw(raw: *mut sys::brg_result) -> Response {
        Response { raw: NonNull::new(raw).expect("null brg_result") }
    }
    fn r(&self) -> &sys::brg_result {
        unsafe { self.raw.as_ref() }
    }

    pub fn id(&self) -> RequestId { RequestId(self.r().id) }
    pub fn user_data(&self) -> u64 { self.r().user_data }
    /// True when the request succeeded (status BRG_OK, a 2xx answer).
    pub fn is_ok(&self) -> bool { self.r().status == sys::BRG_OK }
    /// The raw `brg_status` of the result.
    pub fn status_code(&self) -> i32 { self.r().status }
    /// HTTP status; 0 when no answer arrived.
    pub fn status(&self) -> u16 { self.r().http_status.clamp(0, u16::MAX as i32) as u16 }
    pub fn body(&self) -> &[u8] {
        let r = self.r();
        if r.body.is_null() || r.body_len == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(r.body as *const u8, r.body_len) }
    }
    /// Body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> { String::from_utf8_lossy(self.body()) }
    /// The engine's error text ("" on success).
    pub fn error_message(&self) -> &str {
        let p = self.r().error;
        if p.is_null() { "" } else { unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("") }
    }
    /// The answer's `x-request-id` header ("" when absent).
    pub fn request_id(&self) -> &str {
        let r = self.r();
        // request_id is in the struct since 0.1.0; check the producer's size anyway.
        if !self.has(end_of!(request_id: *const std::os::raw::c_char)) || r.request_id.is_null() {
            return "";
        }
        unsafe { CStr::from_ptr(r.request_id) }.to_str().unwrap_or("")
    }
    /// True when the producing library's `brg_result` is at least `end` bytes
    /// long, i.e. has the field ending there (fields only ever grow at the end).
    fn has(&self, end: usize) -> bool {
        self.r().size as usize >= end
    }
    /// True for one event of a streamed answer (`BRG_RES_PARTIAL`): more
    /// results with the same id follow, the last one not partial.
    pub fn is_partial(&self) -> bool { self.r().flags & sys::BRG_RES_PARTIAL != 0 }
    /// A partial result's 1-based event index; `None` for a final result.
    pub fn event_index(&self) -> Option<u32> {
        (self.is_partial() && self.has(end_of!(events: u32))).then(|| self.r().events)
    }
    /// Streamed requests: data events delivered so far (for a partial result,
    /// its own index; for the final one, how many events went out). 0 for
    /// requests that did not stream, or a library older than 0.2.
    pub fn events(&self) -> u32 {
        if self.has(end_of!(events: u32)) { self.r().events } else { 0 }
    }
    /// Streamed requests: submit -> first non-empty delta (first token) of the
    /// last attempt. `None` before the first token (on a partial result), when
    /// none arrived, or for requests that did not stream.
    pub fn ttft(&self) -> Option<Duration> {
        if self.has(end_of!(ttft_us: i64)) { us(self.r().ttft_us) } else { None }
    }
    /// Streamed requests: the longest gap between two token events (so far,
    /// on a partial result); `None` before a second token.
    pub fn gap_max(&self) -> Option<Duration> {
        if self.has(end_of!(gap_max_us: i64)) { us(self.r().gap_max_us) } else { None }
    }
    /// Streamed requests: the mean gap between token events (so far, on a
    /// partial result); `None` before a second token.
    pub fn gap_mean(&self) -> Option<Duration> {
        if self.has(end_of!(gap_mean_us: i64)) { us(self.r().gap_mean_us) } else { None }
    }
    /// The answer's `Retry-After` (or `retry-after-ms`) as the server sent it
    /// (an HTTP-date: the time until then); `None` when it sent none, on
    /// partial and cached results, and from a library older than 0.4. Not
    /// clamped: the engine's own waits obey `Config::max_server_wait`.
    pub fn retry_after(&self) -> Option<Duration> {
        if !self.has(end_of!(retry_after_ms: i64)) {
            return None;
        }
        u64::try_from(self.r().retry_after_ms).ok().map(Duration::from_millis)
    }
    /// The answer's header block as received (`name: value\n` each, names in
    /// lower case); empty unless the request asked
    /// ([`Request::response_headers`](crate::Request::response_headers)), on
    /// partial results after a stream's first, on cached results, and from a
    /// library older than 0.4.
    pub fn headers_block(&self) -> &[u8] {
        let r = self.r();
        if !self.has(end_of!(headers_len: usize)) || r.headers.is_null() || r.headers_len == 0 {
            return &[];
        }
        unsafe { std::slice::from_raw_parts(r.headers as *const u8, r.headers_len) }
    }
    /// The answer's header fields, `(name, value)` in the order received,
    /// names in lower case (see [`Response::headers_block`] for when there are
    /// none); `resp.headers().get("x-ratelimit-remaining-requests")`.
    pub fn headers(&self) -> Headers<'_> {
        Headers::new(self.headers_block())
    }
    pub fn attempts(&self) -> u32 { self.r().attempts }
    pub fn cached(&self) -> bool { self.r().flags & sys::BRG_RES_CACHED != 0 }
    pub fn prompt_tokens(&self) -> Option<u64> { u64::try_from(self.r().prompt_tokens).ok() }
    pub fn completion_tokens(&self) -> Option<u64> { u64::try_from(self.r().completion_tokens).ok() }
    pub fn timings(&self) -> Timings {
        let r = self.r();
        Timings {
            queued: us(r.queued_us).unwrap_or_default(),
            sent: us(r.sent_us),
            ttfb: us(r.ttfb_us),
            total: us(r.total_us).unwrap_or_default(),
        }
    }
    /// The failure, or `None` on success. HTTP failures keep status and body.
    pub fn error(&self) -> Option<Error> {
        let r = self.r();
        if r.status == sys::BRG_OK {
            return None;
        }
        let message = self.error_message().to_owned();
        Some(if r.status == sys::BRG_E_HTTP {
            Error::Http {
                status: self.status(),
                body: self.body().to_vec(),
                message,
                retry_after: self.retry_after(),
                headers: self.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
            }
        } else {
            Error::from_code(r.status, message)
        })
    }
    /// `Ok(self)` on success, else the error.
    pub fn into_result(self) -> Result<Response, Error> {
        match self.error() {
            None => Ok(self),
            Some(e) => Err(e),
        }
    }
    /// The raw result (read-only).
    pub fn as_raw(&self) -> &sys::brg_result { self.r() }
}

impl Drop for Response {
    fn drop(&mut self) {
        unsafe { sys::brg_result_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("id", &self.r().id)
            .field("user_data", &self.r().user_data)
            .field("status", &self.r().status)
            .field("http_status", &self.r().http_status)
            .field("partial", &self.is_partial())
            .field("events", &self.events())
            .field("attempts", &self.r().attempts)
            .field("body_len", &self.r().body_len)
            .field("error", &self.error_message())
            .finish()
    }
}
