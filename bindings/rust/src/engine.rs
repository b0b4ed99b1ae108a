use std::collections::{HashMap, VecDeque};
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

fn submit_raw(e: *mut sys::brg_engine, req: &Request) -> Result<RequestId, Error> {
    if let Some(why) = req.bad {
        return Err(Error::Invalid(why.to_owned()));
    }
    let mut id = 0u64;
    // brg_last_error is thread-local: read on this thread right after the call.
    let rc = req.with_raw(|raw| unsafe { sys::brg_submit(e, raw, &mut id) });
    if rc != 0 {
        return Err(Error::from_call(rc));
    }
    Ok(RequestId(id))
}

fn take_raw(e: *mut sys::brg_engine, out: &mut Vec<Response>) -> usize {
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
/// own loop (a game loop, or an event loop via [`Engine::backend_fd`]).
///
/// **`Send`, not `Sync`.** The header marks `brg_submit`, `brg_poll`,
/// `brg_results`, ... as `[owner]`: in inline mode they must come from one
/// thread, the one that calls `brg_poll` (before the first poll: the creating
/// thread). Sharing `&Engine` between threads would allow concurrent
/// `[owner]` calls, so it is not `Sync`. Moving it is memory-safe (`Send`:
/// only one thread can hold it), and moving it *before the first poll* is
/// fully supported. Moving it *after* the first poll works with the epoll
/// backend, but the io_uring backend (SINGLE_ISSUER ring) binds the engine to
/// the thread of its first `brg_poll`: polls from another thread then fail
/// with `Error::Backend` (the binding adds an explanation to the message).
/// For submitting from many threads use [`Engine::start`] → [`ThreadedEngine`].
pub struct Engine {
    raw: NonNull<sys::brg_engine>,
    /// Results taken by `run_all` that belong to other requests.
    stash: VecDeque<Response>,
    /// The thread of the first `brg_poll` (see the type's docs).
    owner: Option<std::thread::ThreadId>,
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
            stash: VecDeque::new(),
            owner: None,
            _not_sync: PhantomData,
        })
    }

    /// Validates and copies the request. Exactly one result will carry the id.
    pub fn submit(&mut self, req: &Request) -> Result<RequestId, Error> {
        submit_raw(self.raw.as_ptr(), req)
    }

    /// Cancels a pending request; its result will be `Error::Cancelled`.
    /// `Error::NotFound` when it already finished.
    pub fn cancel(&mut self, id: RequestId) -> Result<(), Error> {
        let rc = unsafe { sys::brg_cancel(self.raw.as_ptr(), id.0) };
        if rc != 0 {
            return Err(Error::from_call(rc));
        }
        Ok(())
    }

    /// Cancels every pending request of a group; returns how many.
    pub fn cancel_group(&mut self, group: u64) -> Result<usize, Error> {
        let rc = unsafe { sys::brg_cancel_group(self.raw.as_ptr(), group) };
        if rc < 0 {
            return Err(Error::from_code(rc, String::new()));
        }
        Ok(rc as usize)
    }

    /// One shared deadline, `d` from now, for every request of the group.
    pub fn group_deadline(&mut self, group: u64, d: Duration) -> Result<(), Error> {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let rc = unsafe { sys::brg_group_deadline(self.raw.as_ptr(), group, ms) };
        if rc != 0 {
            return Err(Error::from_code(rc, String::new()));
        }
        Ok(())
    }

    /// One reactor turn, waiting at most `timeout` (`None` = until something
    /// happens, `Some(ZERO)` = do not wait). Returns the number of results
    /// waiting for [`Engine::results`].
    pub fn poll(&mut self, timeout: Option<Duration>) -> Result<usize, Error> {
        let t = if self.stash.is_empty() { timeout_ms(timeout) } else { 0 };
        Ok(self.poll_raw(t)? + self.stash.len())
    }

    fn poll_raw(&mut self, t: c_int) -> Result<usize, Error> {
        let me = std::thread::current().id();
        let first = *self.owner.get_or_insert(me);
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

    /// Moves every finished result into `out` (oldest first) and returns how
    /// many. Never blocks: call it once per frame after `poll(Some(ZERO))`.
    pub fn results(&mut self, out: &mut Vec<Response>) -> usize {
        let stashed = self.stash.len();
        out.extend(self.stash.drain(..));
        stashed + take_raw(self.raw.as_ptr(), out)
    }

    /// Submits all requests, drives the engine until each has finished and
    /// returns their outcomes in input order. Results of requests submitted
    /// earlier by other code are kept for the next [`Engine::results`].
    pub fn run_all(&mut self, reqs: Vec<Request>) -> Vec<Result<Response, Error>> {
        let n = reqs.len();
        let mut slots: Vec<Option<Result<Response, Error>>> = (0..n).map(|_| None).collect();
        let mut index: HashMap<u64, usize> = HashMap::with_capacity(n);
        let mut buf = Vec::with_capacity(BATCH);
        let e = self.raw.as_ptr();

        let collect = |index: &mut HashMap<u64, usize>,
                           slots: &mut Vec<Option<Result<Response, Error>>>,
                           stash: &mut VecDeque<Response>,
                           buf: &mut Vec<Response>| {
            take_raw(e, buf);
            for r in buf.drain(..) {
                match index.remove(&r.id().0) {
                    Some(i) => slots[i] = Some(r.into_result()),
                    None => stash.push_back(r),
                }
            }
        };

        for (i, req) in reqs.iter().enumerate() {
            loop {
                match submit_raw(e, req) {
                    Ok(id) => {
                        index.insert(id.0, i);
                    }
                    Err(Error::Full(_)) => {
                        // Back-pressure: run the loop, then try again.
                        if let Err(err) = self.poll_raw(-1) {
                            slots[i] = Some(Err(err));
                        } else {
                            collect(&mut index, &mut slots, &mut self.stash, &mut buf);
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
            collect(&mut index, &mut slots, &mut self.stash, &mut buf);
        }
        slots.into_iter().map(|s| s.expect("every request has an outcome")).collect()
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

    /// Starts the engine's own reactor thread (threaded mode).
    pub fn start(self) -> Result<ThreadedEngine, Error> {
        let rc = unsafe { sys::brg_start(self.raw.as_ptr()) };
        if rc != 0 {
            return Err(Error::from_call(rc)); // self drops: the engine is freed
        }
        let me = std::mem::ManuallyDrop::new(self);
        let stash = unsafe { std::ptr::read(&me.stash) };
        Ok(ThreadedEngine { raw: me.raw, consumer: Mutex::new(stash) })
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

/// An engine running its own reactor thread (after [`Engine::start`]).
///
/// **`Send` and `Sync`**: in threaded mode `brg_submit`, `brg_cancel`,
/// `brg_cancel_group`, `brg_group_deadline`, `brg_stats` and
/// `brg_results_fd` are `[any]`, so they take `&self`; share it with an
/// `Arc`. `brg_results` is `[consumer]` (one consumer thread at a time), which
/// an internal mutex enforces.
pub struct ThreadedEngine {
    raw: NonNull<sys::brg_engine>,
    consumer: Mutex<VecDeque<Response>>,
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
        submit_raw(self.raw.as_ptr(), req)
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
    /// Moves every finished result into `out`; never blocks on the engine.
    pub fn results(&self, out: &mut Vec<Response>) -> usize {
        let mut stash = self.consumer.lock().unwrap_or_else(|p| p.into_inner());
        let s = stash.len();
        out.extend(stash.drain(..));
        s + take_raw(self.raw.as_ptr(), out)
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
