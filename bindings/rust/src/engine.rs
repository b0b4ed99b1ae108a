use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::ptr::NonNull;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::{Backend, Config};
use crate::error::Error;
use crate::request::Request;
use crate::response::{RequestId, Response};
use crate::sys;

/// Engine counters (`struct brg_stats`).
pub type Stats = sys::brg_stats;

const BATCH: usize = 64;

fn timeout_ms(t: Option<Duration>) -> c_int {
    match t {
        None => -1,
        Some(d) => c_int::try_from(d.as_millis()).unwrap_or(c_int::MAX),
    }
}

/// Whether the loaded library takes `BRG_REQ_HEADERS` (0.4.0 and later;
/// only a `dynamic` build can load an older one).
fn takes_headers_flag() -> bool {
    static TAKES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TAKES.get_or_init(|| unsafe { sys::brg_version_hex() } >= 0x000400)
}

/// Whether the loaded library takes `BRG_REQ_NO_STREAM_BODY` (0.5.0 and
/// later; only a `dynamic` build can load an older one).
fn takes_no_stream_body_flag() -> bool {
    static TAKES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TAKES.get_or_init(|| unsafe { sys::brg_version_hex() } >= 0x000500)
}

fn submit_raw(e: *mut sys::brg_engine, req: &Request, extra_flags: u32) -> Result<RequestId, Error> {
    if let Some(why) = req.bad {
        return Err(Error::Invalid(why.to_owned()));
    }
    let mut id = 0u64;
    // brg_last_error is thread-local: read on this thread right after the call.
    let rc = req.with_raw(|raw| {
        let mut raw = *raw;
        raw.flags |= extra_flags;
        if !takes_headers_flag() {
            raw.flags &= !sys::BRG_REQ_HEADERS; // a library before 0.4 refuses it
        }
        if !takes_no_stream_body_flag() {
            // A library before 0.5 refuses it; without it the body is kept.
            raw.flags &= !sys::BRG_REQ_NO_STREAM_BODY;
        }
        unsafe { sys::brg_submit(e, &raw, &mut id) }
    });
    if rc != 0 {
        return Err(Error::from_call(rc));
    }
    Ok(RequestId(id))
}

/// Where results go once taken from the engine, besides the caller.
#[derive(Default)]
struct Router {
    /// Results for [`Engine::results`]: other code's requests, oldest first.
    stash: VecDeque<Response>,
    /// Open [`Stream`] handles: their results wait here.
    streams: HashMap<u64, VecDeque<Response>>,
    /// Requests of dropped [`Stream`] handles: their results are freed as
    /// they come, until the final one.
    discard: HashSet<u64>,
}

impl Router {
    /// Keeps `r` when it belongs to a stream handle (or a dropped one);
    /// otherwise hands it back.
    fn route(&mut self, r: Response) -> Option<Response> {
        let id = r.id().0;
        if let Some(q) = self.streams.get_mut(&id) {
            q.push_back(r);
            return None;
        }
        if self.discard.contains(&id) {
            if !r.is_partial() {
                self.discard.remove(&id);
            }
            return None; // freed here
        }
        Some(r)
    }
}

pub(crate) fn take_raw(e: *mut sys::brg_engine, out: &mut Vec<Response>) -> usize {
    let mut n = 0;
    let mut buf = [std::ptr::null_mut::<sys::brg_result>(); BATCH];
    loop {
        let got = unsafe { sys::brg_results(e, buf.as_mut_ptr(), BATCH) };
        for &r in &buf[..got] {
            out.push(unsafe { Response::from_raw(r) });
        }
        n += got;
        if got < BATCH {
            return n;
        }
    }
}

fn stats_raw(e: *const sys::brg_engine) -> Result<Stats, Error> {
    let mut s = Stats { size: std::mem::size_of::<Stats>() as u32, ..Default::default() };
    let rc = unsafe { sys::brg_stats(e, &mut s) };
    if rc != 0 {
        return Err(Error::from_code(rc, String::new()));
    }
    Ok(s)
}

/// An engine in inline mode: you drive it with [`Engine::poll`] from your
/// own loop (a game loop, or an event loop via [`Engine::backend_fd`]), or
/// let [`Engine::run_all`] and [`Engine::stream`] drive it.
///
/// **`Send`, not `Sync`.** The header marks `brg_submit`, `brg_poll`,
/// `brg_results`, ... as `[owner]`: in inline mode they must come from one
/// thread, the one that calls `brg_poll` (before the first poll: the creating
/// thread). Sharing `&Engine` between threads would allow concurrent
/// `[owner]` calls, so it is not `Sync`; on one thread, methods take `&self`
/// so that [`Stream`] handles and other requests can be used side by side.
/// Moving it is memory-safe (`Send`: only one thread can hold it), and moving
/// it *before the first poll* is fully supported. Moving it *after* the first
/// poll works with the epoll backend, but the io_uring backend (SINGLE_ISSUER
/// ring) binds the engine to the thread of its first `brg_poll`: polls from
/// another thread then fail with `Error::Backend` (the binding adds an
/// explanation to the message). For submitting from many threads use
/// [`Engine::start`] → [`ThreadedEngine`].
pub struct Engine {
    raw: NonNull<sys::brg_engine>,
    /// Results taken by `run_all` or a `Stream` that belong to other requests,
    /// the queues of open streams, and dropped streams.
    router: RefCell<Router>,
    /// The thread of the first `brg_poll` (see the type's docs).
    owner: Cell<Option<std::thread::ThreadId>>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

unsafe impl Send for Engine {}

impl Engine {
    /// Creates an engine; the config is copied.
    pub fn new(mut config: Config) -> Result<Engine, Error> {
        if let Some(e) = config.take_error() {
            return Err(e);
        }
        let mut raw = std::ptr::null_mut();
        let rc = unsafe { sys::brg_engine_new(config.as_ptr(), &mut raw) };
        if rc != 0 {
            return Err(Error::from_call(rc));
        }
        Ok(Engine {
            raw: NonNull::new(raw).ok_or_else(|| Error::NoMem(String::new()))?,
            router: RefCell::new(Router::default()),
            owner: Cell::new(None),
            _not_sync: PhantomData,
        })
    }

    /// Validates and copies the request. Exactly one final result will carry
    /// the id; a streamed request ([`Request::stream`]) yields partial results
    /// with that id before it ([`Response::is_partial`]).
    pub fn submit(&self, req: &Request) -> Result<RequestId, Error> {
        submit_raw(self.raw.as_ptr(), req, 0)
    }

    /// Cancels a pending request; its result will be `Error::Cancelled`.
    /// `Error::NotFound` when it already finished.
    pub fn cancel(&self, id: RequestId) -> Result<(), Error> {
        let rc = unsafe { sys::brg_cancel(self.raw.as_ptr(), id.0) };
        if rc != 0 {
            return Err(Error::from_call(rc));
        }
        Ok(())
    }

    /// Cancels every pending request of a group; returns how many.
    pub fn cancel_group(&self, group: u64) -> Result<usize, Error> {
        let rc = unsafe { sys::brg_cancel_group(self.raw.as_ptr(), group) };
        if rc < 0 {
            return Err(Error::from_code(rc, String::new()));
        }
        Ok(rc as usize)
    }

    /// One shared deadline, `d` from now, for every request of the group.
    pub fn group_deadline(&self, group: u64, d: Duration) -> Result<(), Error> {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let rc = unsafe { sys::brg_group_deadline(self.raw.as_ptr(), group, ms) };
        if rc != 0 {
            return Err(Error::from_code(rc, String::new()));
        }
        Ok(())
    }

    /// One reactor turn, waiting at most `timeout` (`None` = until something
    /// happens, `Some(ZERO)` = do not wait). Returns the number of results
    /// waiting for [`Engine::results`] (an upper bound while [`Stream`]
    /// handles are open: their results go to them instead).
    pub fn poll(&self, timeout: Option<Duration>) -> Result<usize, Error> {
        let stashed = self.router.borrow().stash.len();
        let t = if stashed == 0 { timeout_ms(timeout) } else { 0 };
        Ok(self.poll_raw(t)? + stashed)
    }

    fn poll_raw(&self, t: c_int) -> Result<usize, Error> {
        let me = std::thread::current().id();
        let first = match self.owner.get() {
            Some(o) => o,
            None => {
                self.owner.set(Some(me));
                me
            }
        };
        let rc = unsafe { sys::brg_poll(self.raw.as_ptr(), t) };
        if rc < 0 {
            let mut msg = String::new();
            if first != me {
                msg = "polled from a thread other than the one that first polled this engine \
                       (the io_uring backend binds the engine to that thread)"
                    .to_owned();
            }
            return Err(Error::from_code(rc, msg));
        }
        Ok(rc as usize)
    }

    /// Takes the engine's results: those of open or dropped streams are
    /// routed, the rest are appended to `out`. Returns how many went to `out`.
    fn take_routed(&self, out: &mut Vec<Response>) -> usize {
        let mut buf = Vec::new();
        take_raw(self.raw.as_ptr(), &mut buf);
        let mut router = self.router.borrow_mut();
        let before = out.len();
        out.extend(buf.into_iter().filter_map(|r| router.route(r)));
        out.len() - before
    }

    /// Moves every result into `out` (oldest first) and returns how many.
    /// Never blocks: call it once per frame after `poll(Some(ZERO))`.
    ///
    /// Streamed requests submitted with [`Engine::submit`] show up here with
    /// their partial results ([`Response::is_partial`]) before the final one;
    /// requests read through a [`Stream`] handle do not.
    pub fn results(&self, out: &mut Vec<Response>) -> usize {
        let stashed = {
            let mut router = self.router.borrow_mut();
            let n = router.stash.len();
            out.extend(router.stash.drain(..));
            n
        };
        stashed + self.take_routed(out)
    }

    /// Submits all requests, drives the engine until each has finished and
    /// returns their outcomes in input order. Results of requests submitted
    /// earlier by other code are kept for the next [`Engine::results`] (or
    /// their [`Stream`]).
    ///
    /// Streamed requests are allowed: their partial results are freed as they
    /// come, and the outcome is the final result (body = the raw event stream).
    pub fn run_all(&self, reqs: Vec<Request>) -> Vec<Result<Response, Error>> {
        let n = reqs.len();
        let mut slots: Vec<Option<Result<Response, Error>>> = (0..n).map(|_| None).collect();
        let mut index: HashMap<u64, usize> = HashMap::with_capacity(n);
        let mut buf = Vec::with_capacity(BATCH);
        let e = self.raw.as_ptr();

        let collect = |index: &mut HashMap<u64, usize>,
                       slots: &mut Vec<Option<Result<Response, Error>>>,
                       buf: &mut Vec<Response>| {
            take_raw(e, buf);
            let mut router = self.router.borrow_mut();
            for r in buf.drain(..) {
                let id = r.id().0;
                match index.get(&id) {
                    // One event of a streamed request: not its outcome.
                    Some(_) if r.is_partial() => {}
                    Some(&i) => {
                        index.remove(&id);
                        slots[i] = Some(r.into_result());
                    }
                    None => {
                        if let Some(r) = router.route(r) {
                            router.stash.push_back(r);
                        }
                    }
                }
            }
        };

        for (i, req) in reqs.iter().enumerate() {
            loop {
                match submit_raw(e, req, 0) {
                    Ok(id) => {
                        index.insert(id.0, i);
                    }
                    Err(Error::Full(_)) => {
                        // Back-pressure: run the loop, then try again.
                        if let Err(err) = self.poll_raw(-1) {
                            slots[i] = Some(Err(err));
                        } else {
                            collect(&mut index, &mut slots, &mut buf);
                            continue;
                        }
                    }
                    Err(err) => slots[i] = Some(Err(err)),
                }
                break;
            }
        }
        while !index.is_empty() {
            if let Err(err) = self.poll_raw(-1) {
                for (_, i) in index.drain() {
                    slots[i] = Some(Err(err.clone()));
                }
                break;
            }
            collect(&mut index, &mut slots, &mut buf);
        }
        slots.into_iter().map(|s| s.expect("every request has an outcome")).collect()
    }

    /// Submits `req` as a streamed request (sets [`Request::stream`]) and
    /// returns a handle that yields its server-sent events as they arrive.
    /// The body must still ask for a stream itself (`"stream": true`).
    ///
    /// Iterating the [`Stream`] drives this engine (`brg_poll`), so other
    /// requests progress too: their results are kept for
    /// [`Engine::results`], other streams' events for their handles. Any
    /// number of streams may be open at once. Dropping a handle before its
    /// final result cancels the request (its connection is closed at once) and
    /// frees its remaining results.
    ///
    /// ```no_run
    /// # use barrage::{Config, Engine, Error, Request};
    /// # fn main() -> Result<(), Error> {
    /// let engine = Engine::new(Config::new())?;
    /// let req = Request::new("https://api.example.com/v1/chat/completions")
    ///     .json(r#"{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}"#);
    /// let mut stream = engine.stream(&req)?;
    /// for event in &mut stream {
    ///     let event = event?; // the request failed (after the events so far)
    ///     println!("event {}: {}", event.event_index().unwrap(), event.text());
    /// }
    /// let done = stream.final_response().unwrap();
    /// println!("{} events, first token after {:?}", done.events(), done.ttft());
    /// # Ok(()) }
    /// ```
    pub fn stream(&self, req: &Request) -> Result<Stream<'_>, Error> {
        let id = submit_raw(self.raw.as_ptr(), req, sys::BRG_REQ_STREAM)?;
        self.router.borrow_mut().streams.insert(id.0, VecDeque::new());
        Ok(Stream { engine: self, id, done: false, end: false, last: None })
    }

    /// The next result of an open stream, polling the engine when none waits.
    fn stream_next(&self, id: RequestId) -> Result<Response, Error> {
        loop {
            {
                let mut router = self.router.borrow_mut();
                let q = router.streams.get_mut(&id.0).expect("open stream is registered");
                if let Some(r) = q.pop_front() {
                    if !r.is_partial() {
                        router.streams.remove(&id.0);
                    }
                    return Ok(r);
                }
            }
            self.poll_raw(-1)?;
            let mut others = Vec::new();
            self.take_routed(&mut others);
            self.router.borrow_mut().stash.extend(others);
        }
    }

    /// A stream handle went away before its final result.
    fn abandon_stream(&self, id: RequestId) {
        let mut router = self.router.borrow_mut();
        let finished = match router.streams.remove(&id.0) {
            Some(q) => q.iter().any(|r| !r.is_partial()),
            None => true,
        };
        if !finished {
            router.discard.insert(id.0);
            drop(router);
            // NOTFOUND: it finished; its final result is still to be taken
            // and will be discarded then.
            let _ = unsafe { sys::brg_cancel(self.raw.as_ptr(), id.0) };
        }
    }

    /// A descriptor that becomes readable when `poll` has work to do (for
    /// embedding in another event loop). Do not read from or close it.
    pub fn backend_fd(&self) -> i32 {
        unsafe { sys::brg_backend_fd(self.raw.as_ptr()) }
    }
    /// How long until the next timer needs `poll`; `Some(ZERO)` when work is
    /// due, `None` when no timer is armed.
    pub fn backend_timeout(&self) -> Option<Duration> {
        let ms = unsafe { sys::brg_backend_timeout(self.raw.as_ptr()) };
        (ms >= 0).then(|| Duration::from_millis(ms as u64))
    }
    /// Readable while results are waiting.
    pub fn results_fd(&self) -> i32 {
        unsafe { sys::brg_results_fd(self.raw.as_ptr()) }
    }
    pub fn stats(&self) -> Result<Stats, Error> {
        stats_raw(self.raw.as_ptr())
    }
    /// The backend actually in use.
    pub fn backend(&self) -> Backend {
        self.stats().map(|s| Backend::from_raw(s.backend)).unwrap_or(Backend::Auto)
    }

    /// Starts the engine's own reactor thread (threaded mode). Results kept
    /// for [`Engine::results`] move over; results of dropped [`Stream`]
    /// handles are still freed as they come.
    pub fn start(self) -> Result<ThreadedEngine, Error> {
        let rc = unsafe { sys::brg_start(self.raw.as_ptr()) };
        if rc != 0 {
            return Err(Error::from_call(rc)); // self drops: the engine is freed
        }
        let me = std::mem::ManuallyDrop::new(self);
        // No Stream can be open: it would borrow `self`.
        let router = unsafe { std::ptr::read(&me.router) }.into_inner();
        Ok(ThreadedEngine { raw: me.raw, consumer: Mutex::new(router) })
    }

    /// The raw handle, for calls this binding does not wrap (e.g. brg_batch_run).
    pub fn as_raw(&mut self) -> *mut sys::brg_engine {
        self.raw.as_ptr()
    }
}


impl Drop for Engine {
    /// Cancels every request still pending and frees the engine; results not
    /// yet taken are freed. Responses already handed out stay valid.
    fn drop(&mut self) {
        unsafe { sys::brg_engine_free(self.raw.as_ptr()) }
    }
}

/// The events of one streamed request, from [`Engine::stream`].
///
/// An iterator of `Result<Response, Error>`: each `Ok` is one server-sent
/// event, a partial [`Response`] (`is_partial()`, body = the event's data,
/// [`Response::event_index`], [`Response::ttft`] once the first token came).
/// After the last event the iteration ends: with `None` when the request
/// succeeded, or with one `Err` (e.g. [`Error::Timeout`] for a
/// first-token or idle timeout, [`Error::Io`] for a reset, [`Error::Http`]
/// for an error answer) and then `None`. `next()` blocks, driving the engine,
/// until the next event or the end; the engine's timeouts bound the wait.
///
/// The final result (raw event stream, empty with
/// [`Request::no_stream_body`]; usage tokens, ttft, gap timings, event
/// count) is then at [`Stream::final_response`]; [`Stream::finish`]
/// skips the remaining events and returns it.
///
/// Dropping the handle before the final result cancels the request.
pub struct Stream<'e> {
    engine: &'e Engine,
    id: RequestId,
    /// The final result arrived (it is in `last` unless `finish` took it).
    done: bool,
    /// The iterator has returned its last item.
    end: bool,
    last: Option<Response>,
}

impl<'e> Stream<'e> {
    /// The request's id (for [`Engine::cancel`]: the iteration then ends
    /// with `Err(Error::Cancelled)`).
    pub fn id(&self) -> RequestId {
        self.id
    }
    /// The engine this stream runs on.
    pub fn engine(&self) -> &'e Engine {
        self.engine
    }
    /// True once the final result arrived.
    pub fn is_finished(&self) -> bool {
        self.done
    }
    /// The final result (success or failure), once the events are over.
    pub fn final_response(&self) -> Option<&Response> {
        self.last.as_ref()
    }
    /// Waits for the end of the stream, freeing the events not read yet, and
    /// returns the final result: `Ok` with the whole raw event stream as body,
    /// or the request's error.
    pub fn finish(mut self) -> Result<Response, Error> {
        while !self.done {
            self.advance()?;
        }
        self.last.take().expect("final result").into_result()
    }

    /// The next partial result, or `None` once the final one arrived.
    fn advance(&mut self) -> Result<Option<Response>, Error> {
        if self.done {
            return Ok(None);
        }
        let r = self.engine.stream_next(self.id)?;
        if r.is_partial() {
            return Ok(Some(r));
        }
        self.done = true;
        self.last = Some(r);
        Ok(None)
    }
}

impl Iterator for Stream<'_> {
    type Item = Result<Response, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.end {
            return None;
        }
        match self.advance() {
            Ok(Some(event)) => Some(Ok(event)),
            Ok(None) => {
                self.end = true;
                self.last.as_ref().and_then(|r| r.error()).map(Err)
            }
            Err(poll_failed) => {
                // The engine itself failed (BRG_E_BACKEND): nothing more will come.
                self.end = true;
                Some(Err(poll_failed))
            }
        }
    }
}

impl std::iter::FusedIterator for Stream<'_> {}

impl Drop for Stream<'_> {
    /// Before the final result: cancels the request and frees its remaining
    /// results as they come.
    fn drop(&mut self) {
        if !self.done {
            self.engine.abandon_stream(self.id);
        }
    }
}

impl std::fmt::Debug for Stream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("id", &self.id).field("finished", &self.done).finish()
    }
}

/// An engine running its own reactor thread (after [`Engine::start`]).
///
/// **`Send` and `Sync`**: in threaded mode `brg_submit`, `brg_cancel`,
/// `brg_cancel_group`, `brg_group_deadline`, `brg_stats` and
/// `brg_results_fd` are `[any]`, so they take `&self`; share it with an
/// `Arc`. `brg_results` is `[consumer]` (one consumer thread at a time), which
/// an internal mutex enforces.
pub struct ThreadedEngine {
    raw: NonNull<sys::brg_engine>,
    consumer: Mutex<Router>,
}

unsafe impl Send for ThreadedEngine {}
unsafe impl Sync for ThreadedEngine {}

#[repr(C)]
struct PollFd {
    fd: c_int,
    events: i16,
    revents: i16,
}
extern "C" {
    fn poll(fds: *mut PollFd, nfds: std::os::raw::c_ulong, timeout: c_int) -> c_int;
}
const POLLIN: i16 = 1;

impl ThreadedEngine {
    pub fn submit(&self, req: &Request) -> Result<RequestId, Error> {
        submit_raw(self.raw.as_ptr(), req, 0)
    }
    pub(crate) fn submit_flags(&self, req: &Request, flags: u32) -> Result<RequestId, Error> {
        submit_raw(self.raw.as_ptr(), req, flags)
    }
    /// A cancel racing completion is harmless: the result is whichever came first.
    pub fn cancel(&self, id: RequestId) -> Result<(), Error> {
        let rc = unsafe { sys::brg_cancel(self.raw.as_ptr(), id.0) };
        if rc != 0 {
            return Err(Error::from_call(rc));
        }
        Ok(())
    }
    pub fn cancel_group(&self, group: u64) -> Result<(), Error> {
        let rc = unsafe { sys::brg_cancel_group(self.raw.as_ptr(), group) };
        if rc < 0 {
            return Err(Error::from_code(rc, String::new()));
        }
        Ok(())
    }
    pub fn group_deadline(&self, group: u64, d: Duration) -> Result<(), Error> {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let rc = unsafe { sys::brg_group_deadline(self.raw.as_ptr(), group, ms) };
        if rc != 0 {
            return Err(Error::from_code(rc, String::new()));
        }
        Ok(())
    }
    /// Moves every result into `out`; never blocks on the engine. Streamed
    /// requests' partial results come too ([`Response::is_partial`]).
    pub fn results(&self, out: &mut Vec<Response>) -> usize {
        let mut router = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let before = out.len();
        out.extend(router.stash.drain(..));
        if router.discard.is_empty() {
            take_raw(self.raw.as_ptr(), out);
        } else {
            let mut buf = Vec::new();
            take_raw(self.raw.as_ptr(), &mut buf);
            out.extend(buf.into_iter().filter_map(|r| router.route(r)));
        }
        out.len() - before
    }
    /// Blocks until results are waiting or `timeout` passes (`None` = forever);
    /// true when some are waiting.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let mut p = PollFd { fd: self.results_fd(), events: POLLIN, revents: 0 };
        loop {
            let rc = unsafe { poll(&mut p, 1, timeout_ms(timeout)) };
            if rc >= 0 {
                return rc > 0;
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return false;
            }
        }
    }
    /// Blocks until at least one result is available, then takes them all.
    pub fn wait_results(&self, out: &mut Vec<Response>, timeout: Option<Duration>) -> usize {
        let n = self.results(out);
        if n > 0 || !self.wait(timeout) {
            return n;
        }
        self.results(out)
    }
    pub fn results_fd(&self) -> i32 {
        unsafe { sys::brg_results_fd(self.raw.as_ptr()) }
    }
    /// The raw handle, for calls this binding does not wrap. Calling
    /// `brg_results` on it makes you the consumer: do not mix it with
    /// [`ThreadedEngine::results`] on other threads.
    pub fn as_raw(&self) -> *mut sys::brg_engine {
        self.raw.as_ptr()
    }
    /// The raw handle (for the async driver, the only consumer then).
    pub(crate) fn raw_ptr(&self) -> *mut sys::brg_engine {
        self.raw.as_ptr()
    }
    /// Figures may be a moment old.
    pub fn stats(&self) -> Result<Stats, Error> {
        stats_raw(self.raw.as_ptr())
    }
}

impl Drop for ThreadedEngine {
    /// Stops the reactor thread, cancels what is left and frees the engine.
    fn drop(&mut self) {
        unsafe { sys::brg_engine_free(self.raw.as_ptr()) }
    }
}

