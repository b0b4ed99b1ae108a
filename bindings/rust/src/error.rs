use std::ffi::CStr;
use std::fmt;
use std::os::raw::c_int;
use std::time::Duration;

use crate::sys;

/// A failed operation or request, one variant per `brg_status`.
///
/// The `String` carried by most variants is the detail text: `brg_last_error()`
/// for a refused call, or the result's `error` field for a failed request
/// (may be empty). `Display` prints `brg_strerror(code)` followed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    Invalid(String),
    NoMem(String),
    /// Too many pending requests (`BRG_OPT_MAX_PENDING`): poll, take results, retry.
    Full(String),
    Closed(String),
    Timeout(String),
    Cancelled(String),
    Dns(String),
    Connect(String),
    Tls(String),
    Io(String),
    Protocol(String),
    /// A non-success HTTP status; the answer's body is kept, its
    /// `Retry-After` (as sent; `None` when none) and, when the request asked
    /// ([`Request::response_headers`](crate::Request::response_headers)), its
    /// header fields `(name, value)` in the order received, names in lower case.
    Http { status: u16, body: Vec<u8>, message: String, retry_after: Option<Duration>, headers: Vec<(String, String)> },
    TooLarge(String),
    Backend(String),
    NotFound(String),
    /// Circuit breaker open for the request's limit key.
    Unavailable(String),
    /// A status this binding does not know (a newer library).
    Other { code: i32, message: String },
}

pub(crate) fn cstr(p: *const std::os::raw::c_char) -> &'static str {
    // Only used on static or caller-scoped strings; see call sites.
    if p.is_null() {
        return "";
    }
    unsafe { CStr::from_ptr(p) }.to_str().unwrap_or("")
}

/// `brg_last_error()` of this thread, copied.
pub(crate) fn last_error() -> String {
    let p = unsafe { sys::brg_last_error() };
    if p.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Error {
    /// Builds the variant for a negative status with a detail text.
    pub fn from_code(code: c_int, message: String) -> Error {
        match code {
            sys::BRG_E_INVALID => Error::Invalid(message),
            sys::BRG_E_NOMEM => Error::NoMem(message),
            sys::BRG_E_FULL => Error::Full(message),
            sys::BRG_E_CLOSED => Error::Closed(message),
            sys::BRG_E_TIMEOUT => Error::Timeout(message),
            sys::BRG_E_CANCELLED => Error::Cancelled(message),
            sys::BRG_E_DNS => Error::Dns(message),
            sys::BRG_E_CONNECT => Error::Connect(message),
            sys::BRG_E_TLS => Error::Tls(message),
            sys::BRG_E_IO => Error::Io(message),
            sys::BRG_E_PROTOCOL => Error::Protocol(message),
            sys::BRG_E_HTTP => Error::Http { status: 0, body: Vec::new(), message, retry_after: None, headers: Vec::new() },
            sys::BRG_E_TOO_LARGE => Error::TooLarge(message),
            sys::BRG_E_BACKEND => Error::Backend(message),
            sys::BRG_E_NOTFOUND => Error::NotFound(message),
            sys::BRG_E_UNAVAILABLE => Error::Unavailable(message),
            _ => Error::Other { code, message },
        }
    }

    /// For a refused call on this thread: the status plus `brg_last_error()`.
    pub(crate) fn from_call(code: c_int) -> Error {
        Error::from_code(code, last_error())
    }

    /// The `brg_status` number (negative).
    pub fn code(&self) -> i32 {
        match self {
            Error::Invalid(_) => sys::BRG_E_INVALID,
            Error::NoMem(_) => sys::BRG_E_NOMEM,
            Error::Full(_) => sys::BRG_E_FULL,
            Error::Closed(_) => sys::BRG_E_CLOSED,
            Error::Timeout(_) => sys::BRG_E_TIMEOUT,
            Error::Cancelled(_) => sys::BRG_E_CANCELLED,
            Error::Dns(_) => sys::BRG_E_DNS,
            Error::Connect(_) => sys::BRG_E_CONNECT,
            Error::Tls(_) => sys::BRG_E_TLS,
            Error::Io(_) => sys::BRG_E_IO,
            Error::Protocol(_) => sys::BRG_E_PROTOCOL,
            Error::Http { .. } => sys::BRG_E_HTTP,
            Error::TooLarge(_) => sys::BRG_E_TOO_LARGE,
            Error::Backend(_) => sys::BRG_E_BACKEND,
            Error::NotFound(_) => sys::BRG_E_NOTFOUND,
            Error::Unavailable(_) => sys::BRG_E_UNAVAILABLE,
            Error::Other { code, .. } => *code,
        }
    }

    /// The detail text (possibly empty).
    pub fn message(&self) -> &str {
        match self {
            Error::Http { message, .. } | Error::Other { message, .. } => message,
            Error::Invalid(m)
            | Error::NoMem(m)
            | Error::Full(m)
            | Error::Closed(m)
            | Error::Timeout(m)
            | Error::Cancelled(m)
            | Error::Dns(m)
            | Error::Connect(m)
            | Error::Tls(m)
            | Error::Io(m)
            | Error::Protocol(m)
            | Error::TooLarge(m)
            | Error::Backend(m)
            | Error::NotFound(m)
            | Error::Unavailable(m) => m,
        }
    }

    /// True for a request that ran out of time (attempt, first-token, idle,
    /// deadline or group deadline: `BRG_E_TIMEOUT`).
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }
    /// True for a rate-limit answer (HTTP 429) or a limit key's open breaker.
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Error::Http { status: 429, .. } | Error::Unavailable(_))
    }
    /// True when the request was cancelled (dropped future, `cancel`).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Error::Cancelled(_))
    }
    /// The HTTP status of an error answer (`Error::Http`), else `None`.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// The `brg_status` number, as [`Error::code`].
    pub fn status(&self) -> i32 {
        self.code()
    }
    /// The server's requested wait: an HTTP error's `Retry-After` (or
    /// `retry-after-ms`) header as sent (libbarrage 0.4; not clamped, the
    /// engine's own waits obey MAX_SERVER_WAIT_MS); without one, OpenAI-style
    /// error text in the body ("Please try again in 1.5s" / "in 20ms") or
    /// the detail text; else `None`.
    pub fn retry_after(&self) -> Option<Duration> {
        if let Error::Http { body, retry_after, .. } = self {
            if retry_after.is_some() {
                return *retry_after;
            }
            if let Some(d) = wait_in_text(&String::from_utf8_lossy(body)) {
                return Some(d);
            }
        }
        wait_in_text(self.message())
    }
    /// An HTTP error answer's header fields `(name, value)`, in the order
    /// received (empty unless the request asked for them, and for other errors).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        let h: &[(String, String)] = match self {
            Error::Http { headers, .. } => headers,
            _ => &[],
        };
        h.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
    /// The first value of an HTTP error answer's header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Static name such as `"BRG_E_TIMEOUT"` (`brg_status_name`).
    pub fn name(&self) -> &'static str {
        cstr(unsafe { sys::brg_status_name(self.code()) })
    }
}

/// "try again in 1.5s", "retry after 20ms", "retry-after: 2" -> the wait.
fn wait_in_text(text: &str) -> Option<Duration> {
    let m = text.to_ascii_lowercase();
    let at = ["try again in ", "retry after ", "retry-after: ", "retry-after:"]
        .iter()
        .find_map(|k| m.find(k).map(|i| i + k.len()))?;
    let rest = m[at..].trim_start();
    let num: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let v: f64 = num.parse().ok()?;
    let unit = rest[num.len()..].trim_start();
    let secs = if unit.starts_with("ms") {
        v / 1000.0
    } else if unit.starts_with('m') && !unit.starts_with("ms") && unit[1..].starts_with(|c: char| !c.is_ascii_alphabetic()) {
        v * 60.0
    } else {
        v
    };
    Some(Duration::from_secs_f64(secs))
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // brg_strerror returns static text.
        f.write_str(cstr(unsafe { sys::brg_strerror(self.code()) }))?;
        if let Error::Http { status, .. } = self {
            write!(f, " {status}")?;
        }
        let m = self.message();
        if !m.is_empty() {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(body: &str) -> Error {
        Error::Http {
            status: 429,
            body: body.as_bytes().to_vec(),
            message: "HTTP 429 Too Many Requests".into(),
            retry_after: None,
            headers: Vec::new(),
        }
    }

    #[test]
    fn retry_after_reads_openai_error_text() {
        let e = http(r#"{"error":{"message":"Rate limit reached for gpt-4o-mini. Please try again in 1.5s.","type":"requests"}}"#);
        assert_eq!(e.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(http("... Please try again in 20ms. ...").retry_after(), Some(Duration::from_millis(20)));
        assert_eq!(http("Please try again later.").retry_after(), None);
        assert_eq!(Error::Timeout("attempt timed out".into()).retry_after(), None);
        assert!(http("").is_rate_limited() && !http("").is_timeout());
        assert_eq!(http("").http_status(), Some(429));
    }

    #[test]
    fn retry_after_header_wins_over_text() {
        let mut e = http("Please try again in 1.5s.");
        if let Error::Http { retry_after, headers, .. } = &mut e {
            *retry_after = Some(Duration::from_secs(7));
            headers.push(("retry-after".into(), "7".into()));
        }
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(e.header("Retry-After"), Some("7"));
        assert_eq!(Error::Timeout(String::new()).headers().count(), 0);
    }
}
