//! Async API on tokio (feature `tokio`): the engine runs its own reactor
//! thread; one driver task waits on the results fd under `AsyncFd` and routes
//! each result to the future or stream that owns its request id.
//!
//! ```no_run
//! # async fn f() -> Result<(), barrage::Error> {
//! use barrage::{aio::AsyncEngine, Config, Request};
//! let engine = AsyncEngine::new(Config::new())?; // inside a tokio runtime
//! let resp = engine.send(Request::new("https://api.example.com/v1/chat/completions")
//!     .json(r#"{"model":"m","messages":[]}"#)).await?;
//! println!("{}", resp.text());
//! # Ok(()) }
//! ```
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use tokio::io::unix::AsyncFd;

use crate::config::Config;
use crate::engine::{take_raw, Engine, ThreadedEngine};
use crate::error::Error;
use crate::request::Request;
use crate::response::{RequestId, Response};
use crate::sys;

/// Where the results of one or more requests go: a queue and one waker.
#[derive(Default)]
struct Sink {
    state: Mutex<SinkState>,
}

#[derive(Default)]
struct SinkState {
    /// (caller's tag, result); partial results too, for streams.
    queue: VecDeque<(usize, Response)>,
    waker: Option<Waker>,
}

impl Sink {
    fn push(&self, tag: usize, r: Response) -> Option<Waker> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.queue.push_back((tag, r));
        s.waker.take()
    }
    /// The next result, or Pending with `cx` registered.
    fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<(usize, Response)> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.queue.pop_front() {
            Some(x) => Poll::Ready(x),
            None => {
                if !s.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    s.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

struct Route {
    sink: Arc<Sink>,
    tag: usize,
}

/// The raw results eventfd; owned by the engine, never closed here.
struct ResultsFd(RawFd);
impl AsRawFd for ResultsFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

struct Inner {
    // Field order matters: the AsyncFd deregisters before the engine (and its
    // fd) is freed.
    fd: AsyncFd<ResultsFd>,
    routes: Mutex<HashMap<u64, Route>>,
    driver: Mutex<Option<tokio::task::AbortHandle>>,
    engine: ThreadedEngine,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(h) = self.driver.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

impl Inner {
    /// Takes every waiting result and hands each to its sink.
    fn drain(&self) {
        let mut got = Vec::new();
        take_raw(self.engine.raw_ptr(), &mut got);
        if got.is_empty() {
            return;
        }
        let mut wake = Vec::new();
        {
            let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
            for r in got {
                let id = r.id().0;
                let partial = r.is_partial();
                let Some(route) = (if partial { routes.get(&id).map(|x| (x.sink.clone(), x.tag)) } else {
                    routes.remove(&id).map(|x| (x.sink, x.tag))
                }) else {
                    continue; // its future or stream was dropped: freed here
                };
                if let Some(w) = route.0.push(route.1, r) {
                    wake.push(w);
                }
            }
        }
        for w in wake {
            w.wake();
        }
    }

    /// Submits under the routes lock, so the result cannot arrive unrouted.
    fn submit(&self, req: &Request, stream: bool, sink: &Arc<Sink>, tag: usize) -> Result<RequestId, Error> {
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let id = if stream {
            self.engine.submit_flags(req, sys::BRG_REQ_STREAM)?
        } else {
            self.engine.submit(req)?
        };
        routes.insert(id.0, Route { sink: sink.clone(), tag });
        Ok(id)
    }

    /// Forgets a request whose consumer went away and cancels it.
    fn abandon(&self, id: RequestId) {
        let was = self.routes.lock().unwrap_or_else(|p| p.into_inner()).remove(&id.0);
        if was.is_some() {
            // NOTFOUND: it just finished; its result is freed by drain.
            let _ = self.engine.cancel(id);
        }
    }
}

async fn drive(weak: Weak<Inner>) {
    std::future::poll_fn(|cx| loop {
        let Some(inner) = weak.upgrade() else { return Poll::Ready(()) };
        match inner.fd.poll_read_ready(cx) {
            Poll::Ready(Ok(mut guard)) => {
                inner.drain();
                guard.clear_ready();
            }
            // The fd cannot be watched: nothing more will be routed.
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

/// An engine for async code: `Send + Sync + Clone` (clones share the engine).
/// Create it inside a tokio runtime (with IO enabled); it spawns one driver
/// task. The engine and its reactor thread end when the last clone and the
/// last future/stream are dropped (pending requests are cancelled).
#[derive(Clone)]
pub struct AsyncEngine {
    inner: Arc<Inner>,
}

impl AsyncEngine {
    /// Creates a threaded engine and its driver task on the current runtime.
    pub fn new(config: Config) -> Result<AsyncEngine, Error> {
        let engine = Engine::new(config)?.start()?;
        // The fd belongs to the engine, which `Inner` frees only after this
        // AsyncFd deregistered (field order): the I/O-safety concern behind
        // the deprecation (an fd closed while registered) cannot arise.
        // (`register_with_interest` would need tokio >= 1.54.)
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(ResultsFd(engine.results_fd()), tokio::io::Interest::READABLE)
            .map_err(|e| Error::Backend(format!("results fd under tokio: {e}")))?;
        let inner = Arc::new(Inner { fd, routes: Mutex::new(HashMap::new()), driver: Mutex::new(None), engine });
        let task = tokio::spawn(drive(Arc::downgrade(&inner)));
        *inner.driver.lock().unwrap() = Some(task.abort_handle());
        Ok(AsyncEngine { inner })
    }

    /// Engine counters (may be a moment old).
    pub fn stats(&self) -> Result<crate::Stats, Error> {
        self.inner.engine.stats()
    }

    /// Sends one request; resolves to its final outcome. Dropping the future
    /// before that cancels the request. A streamed request is allowed (its
    /// events are skipped; the body is the raw event stream): use
    /// [`AsyncEngine::stream`] to read events.
    pub fn send(&self, req: Request) -> ResponseFuture {
        let sink = Arc::new(Sink::default());
        let id = self.inner.submit(&req, false, &sink, 0);
        ResponseFuture { inner: self.inner.clone(), sink, id: Some(id), done: false }
    }

    /// Submits `req` as a streamed request (sets the stream flag; the body
    /// must ask for a stream itself) and returns a [`Stream`] of its events.
    pub fn stream(&self, req: Request) -> Result<EventStream, Error> {
        let sink = Arc::new(Sink::default());
        let id = self.inner.submit(&req, true, &sink, 0)?;
        Ok(EventStream { inner: self.inner.clone(), sink, id, last: None, end: false })
    }

    /// Runs `reqs` with at most `window` in flight at a time (requests are
    /// taken from the iterator lazily) and yields `(index, outcome)` as each
    /// finishes, in completion order: `buffer_unordered` over requests.
    /// Dropping the stream cancels what is still running.
    pub fn unordered<I>(&self, reqs: I, window: usize) -> Unordered<I::IntoIter>
    where
        I: IntoIterator<Item = Request>,
    {
        Unordered {
            inner: self.inner.clone(),
            sink: Arc::new(Sink::default()),
            reqs: reqs.into_iter().fuse(),
            held: None,
            next_index: 0,
            window: window.max(1),
            running: HashMap::new(),
            ready: VecDeque::new(),
            outcomes: false,
        }
    }

    /// As [`AsyncEngine::unordered`], but a request that ran and failed
    /// comes as `Ok(response)` too (check [`Response::error`]), so that its
    /// attempts, timings and body stay readable; `Err` only for a request
    /// the engine refused at submit.
    pub fn unordered_outcomes<I>(&self, reqs: I, window: usize) -> Unordered<I::IntoIter>
    where
        I: IntoIterator<Item = Request>,
    {
        let mut u = self.unordered(reqs, window);
        u.outcomes = true;
        u
    }

    /// Every request's final [`Response`] in input order, failures included
    /// (see [`AsyncEngine::unordered_outcomes`]).
    pub async fn run_all_outcomes(&self, reqs: Vec<Request>) -> Vec<Result<Response, Error>> {
        let n = reqs.len();
        let mut out: Vec<Option<Result<Response, Error>>> = (0..n).map(|_| None).collect();
        let mut s = self.unordered_outcomes(reqs, usize::MAX);
        while let Some((i, r)) = next(&mut s).await {
            out[i] = Some(r);
        }
        out.into_iter().map(|r| r.expect("every request has an outcome")).collect()
    }

    /// As [`AsyncEngine::unordered`] but yields outcomes in submission order
    /// (`buffered`): at most `window` requests run or wait to be yielded.
    pub fn ordered<I>(&self, reqs: I, window: usize) -> Ordered<I::IntoIter>
    where
        I: IntoIterator<Item = Request>,
    {
        Ordered { inner: self.unordered(reqs, window), next: 0, done: HashMap::new() }
    }

    /// Runs every request and returns the outcomes in input order.
    pub async fn run_all(&self, reqs: Vec<Request>) -> Vec<Result<Response, Error>> {
        let n = reqs.len();
        let mut out: Vec<Option<Result<Response, Error>>> = (0..n).map(|_| None).collect();
        let mut s = self.unordered(reqs, usize::MAX);
        while let Some((i, r)) = next(&mut s).await {
            out[i] = Some(r);
        }
        out.into_iter().map(|r| r.expect("every request has an outcome")).collect()
    }

    /// Runs every request; the first failure cancels the rest and is
    /// returned with its index (errgroup semantics). On success, the
    /// responses in input order.
    pub async fn run_all_fail_fast(&self, reqs: Vec<Request>) -> Result<Vec<Response>, (usize, Error)> {
        let n = reqs.len();
        let mut out: Vec<Option<Response>> = (0..n).map(|_| None).collect();
        let mut s = self.unordered(reqs, usize::MAX);
        while let Some((i, r)) = next(&mut s).await {
            match r {
                Ok(resp) => out[i] = Some(resp),
                Err(e) => return Err((i, e)), // dropping `s` cancels the rest
            }
        }
        Ok(out.into_iter().map(|r| r.expect("every request has an outcome")).collect())
    }

    /// Runs every request, but stops at `deadline` from now: requests still
    /// running then are cancelled and reported as `Error::Timeout`.
    pub async fn run_all_deadline(&self, reqs: Vec<Request>, deadline: Duration) -> Vec<Result<Response, Error>> {
        let n = reqs.len();
        let mut out: Vec<Option<Result<Response, Error>>> = (0..n).map(|_| None).collect();
        let mut s = self.unordered(reqs, usize::MAX);
        let sleep = tokio::time::sleep(deadline);
        tokio::pin!(sleep);
        loop {
            let step = std::future::poll_fn(|cx| {
                if let Poll::Ready(x) = Pin::new(&mut s).poll_next(cx) {
                    return Poll::Ready(x);
                }
                sleep.as_mut().poll(cx).map(|_| None)
            })
            .await;
            match step {
                Some((i, r)) => out[i] = Some(r),
                None => break,
            }
        }
        drop(s); // cancels what is left
        let why = format!("overall deadline of {deadline:?} passed");
        out.into_iter().map(|r| r.unwrap_or_else(|| Err(Error::Timeout(why.clone())))).collect()
    }
}

/// `StreamExt::next` without a futures-util dependency.
pub async fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    std::future::poll_fn(|cx| Pin::new(&mut *s).poll_next(cx)).await
}

/// The outcome of [`AsyncEngine::send`]. Dropping it cancels the request.
pub struct ResponseFuture {
    inner: Arc<Inner>,
    sink: Arc<Sink>,
    id: Option<Result<RequestId, Error>>,
    done: bool,
}

impl ResponseFuture {
    /// The request's id (`None` when the submit was refused).
    pub fn id(&self) -> Option<RequestId> {
        self.id.as_ref().and_then(|r| r.as_ref().ok().copied())
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.done {
            panic!("ResponseFuture polled after completion");
        }
        if let Some(Err(_)) = &this.id {
            this.done = true;
            return Poll::Ready(Err(this.id.take().unwrap().unwrap_err()));
        }
        loop {
            match this.sink.poll_pop(cx) {
                Poll::Ready((_, r)) if r.is_partial() => continue,
                Poll::Ready((_, r)) => {
                    this.done = true;
                    return Poll::Ready(r.into_result());
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        if !self.done {
            if let Some(Ok(id)) = self.id {
                self.inner.abandon(id);
            }
        }
    }
}

/// The events of one streamed request ([`AsyncEngine::stream`]): each item
/// is one server-sent event (a partial [`Response`]); after the last event
/// the stream ends, with one `Err` first when the request failed. The final
/// result is then at [`EventStream::final_response`]. Dropping the stream
/// before its end cancels the request.
pub struct EventStream {
    inner: Arc<Inner>,
    sink: Arc<Sink>,
    id: RequestId,
    last: Option<Response>,
    end: bool,
}

impl EventStream {
    pub fn id(&self) -> RequestId {
        self.id
    }
    /// The final result (raw event stream, usage, ttft), once the events ended.
    pub fn final_response(&self) -> Option<&Response> {
        self.last.as_ref()
    }
    /// Skips the remaining events and returns the final outcome.
    pub async fn finish(mut self) -> Result<Response, Error> {
        while next(&mut self).await.is_some() {}
        match self.last.take() {
            Some(r) => r.into_result(),
            None => Err(Error::Closed("stream ended without a final result".into())),
        }
    }
}

impl Stream for EventStream {
    type Item = Result<Response, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.end || this.last.is_some() {
            this.end = true;
            return Poll::Ready(None);
        }
        match this.sink.poll_pop(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready((_, r)) if r.is_partial() => Poll::Ready(Some(Ok(r))),
            Poll::Ready((_, r)) => {
                let err = r.error();
                this.last = Some(r);
                this.end = err.is_none();
                Poll::Ready(err.map(Err))
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if self.last.is_none() {
            self.inner.abandon(self.id);
        }
    }
}

/// [`AsyncEngine::unordered`]: `(index, outcome)` in completion order.
pub struct Unordered<I: Iterator<Item = Request>> {
    inner: Arc<Inner>,
    sink: Arc<Sink>,
    reqs: std::iter::Fuse<I>,
    /// A request refused with `Full`: retried after the next completion.
    held: Option<(usize, Request)>,
    next_index: usize,
    window: usize,
    running: HashMap<usize, RequestId>,
    /// Outcomes decided without the engine (a refused submit).
    ready: VecDeque<(usize, Result<Response, Error>)>,
    /// Failed responses come as Ok (unordered_outcomes).
    outcomes: bool,
}

impl<I: Iterator<Item = Request>> Unpin for Unordered<I> {}

impl<I: Iterator<Item = Request>> Unordered<I> {
    /// Submits until the window is full or the requests run out.
    fn fill(&mut self) {
        while self.running.len() < self.window {
            let (i, req) = match self.held.take() {
                Some(x) => x,
                None => match self.reqs.next() {
                    Some(r) => {
                        self.next_index += 1;
                        (self.next_index - 1, r)
                    }
                    None => return,
                },
            };
            match self.inner.submit(&req, false, &self.sink, i) {
                Ok(id) => {
                    self.running.insert(i, id);
                }
                // Back-pressure: wait for one of ours to finish, then retry.
                Err(Error::Full(_)) if !self.running.is_empty() => {
                    self.held = Some((i, req));
                    return;
                }
                Err(e) => self.ready.push_back((i, Err(e))),
            }
        }
    }
    /// Requests running now.
    pub fn in_flight(&self) -> usize {
        self.running.len()
    }
}

impl<I: Iterator<Item = Request>> Stream for Unordered<I> {
    type Item = (usize, Result<Response, Error>);
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.fill();
        if let Some(x) = this.ready.pop_front() {
            return Poll::Ready(Some(x));
        }
        loop {
            if this.running.is_empty() {
                return Poll::Ready(None);
            }
            match this.sink.poll_pop(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready((_, r)) if r.is_partial() => continue,
                Poll::Ready((i, r)) => {
                    this.running.remove(&i);
                    this.fill();
                    let r = if this.outcomes { Ok(r) } else { r.into_result() };
                    return Poll::Ready(Some((i, r)));
                }
            }
        }
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let (lo, hi) = self.reqs.size_hint();
        let extra = self.running.len() + self.ready.len() + self.held.is_some() as usize;
        (lo + extra, hi.map(|h| h + extra))
    }
}

impl<I: Iterator<Item = Request>> Drop for Unordered<I> {
    fn drop(&mut self) {
        for (_, id) in self.running.drain() {
            self.inner.abandon(id);
        }
    }
}

/// [`AsyncEngine::ordered`]: outcomes in submission order.
pub struct Ordered<I: Iterator<Item = Request>> {
    inner: Unordered<I>,
    next: usize,
    done: HashMap<usize, Result<Response, Error>>,
}

impl<I: Iterator<Item = Request>> Unpin for Ordered<I> {}

impl<I: Iterator<Item = Request>> Stream for Ordered<I> {
    type Item = Result<Response, Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(r) = this.done.remove(&this.next) {
                this.next += 1;
                return Poll::Ready(Some(r));
            }
            // The window counts finished-but-unyielded outcomes too.
            let window = this.inner.window;
            this.inner.window = window.saturating_sub(this.done.len()).max(1);
            let step = Pin::new(&mut this.inner).poll_next(cx);
            this.inner.window = window;
            match step {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Ready(Some((i, r))) => {
                    this.done.insert(i, r);
                }
            }
        }
    }
}
