mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use barrage::{Backend, Config, Engine, Error, Request, Response};
use common::{chat_body, Mock};

fn engine(mock: &Mock, inflight: u32) -> Engine {
    Engine::new(Config::new().max_inflight(inflight).ca_file(&mock.ca)).expect("engine")
}

fn question(i: usize) -> String {
    format!("question #{i}.")
}

fn check_answer(r: &Response, i: usize) {
    assert!(r.is_ok(), "request {i}: {:?}", r.error());
    assert_eq!(r.status(), 200);
    assert_eq!(r.user_data(), i as u64);
    let text = r.text();
    assert!(text.contains("mock answer to "), "request {i}: {text}");
    assert!(text.contains(&question(i)), "request {i} got someone else's answer: {text}");
    assert!(r.attempts() >= 1);
    assert!(r.timings().total >= r.timings().queued);
}

#[test]
fn thousand_requests_game_loop() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 100);
    const N: usize = 1000;
    const WINDOW: usize = 100;
    let mut seen = vec![false; N];
    let (mut next, mut done, mut out) = (0usize, 0usize, Vec::new());
    let start = Instant::now();
    while done < N {
        while next < N && next - done < WINDOW {
            let req = Request::new(mock.url()).json(chat_body(&question(next))).user_data(next as u64);
            e.submit(&req).unwrap();
            next += 1;
        }
        e.poll(Some(Duration::from_millis(100))).unwrap();
        out.clear();
        e.results(&mut out);
        for r in &out {
            let i = r.user_data() as usize;
            assert!(!seen[i], "second result for {i}");
            seen[i] = true;
            check_answer(r, i);
            assert!(r.prompt_tokens().is_some() && r.completion_tokens().is_some());
            done += 1;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "stuck at {done}/{N}");
    }
    assert!(seen.iter().all(|&s| s));
    let st = e.stats().unwrap();
    assert_eq!(st.completed, N as u64);
    assert!(st.connections_opened <= 100, "opened {}", st.connections_opened);
}

#[test]
fn run_all_keeps_input_order() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 100);
    // A request submitted separately must survive run_all for results().
    let other = e.submit(&Request::new(mock.url()).json(chat_body("other")).user_data(7777)).unwrap();
    let reqs: Vec<Request> =
        (0..300).map(|i| Request::new(mock.url()).json(chat_body(&question(i))).user_data(i as u64)).collect();
    let res = e.run_all(reqs);
    assert_eq!(res.len(), 300);
    for (i, r) in res.iter().enumerate() {
        check_answer(r.as_ref().unwrap(), i);
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.is_empty() && Instant::now() < deadline {
        e.poll(Some(Duration::from_millis(50))).unwrap();
        e.results(&mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id(), other);
    assert!(out[0].text().contains("other"));
}

#[test]
fn http_429_without_retries() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let req = Request::new(mock.url()).json(chat_body("x")).header("x-mock-status", "429").max_retries(0);
    let mut res = e.run_all(vec![req]);
    match res.pop().unwrap() {
        Err(Error::Http { status: 429, ref body, .. }) => assert!(!body.is_empty()),
        other => panic!("expected HTTP 429, got {other:?}"),
    }
}

#[test]
fn retry_after_and_headers_of_an_error_answer() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    // Own limit keys: a 429's Retry-After holds its key for 7 s.
    let ask = |h: bool| {
        Request::new(mock.url())
            .limit_key(if h { "with-headers" } else { "without" })
            .json(chat_body("x"))
            .header("x-mock-status", "429")
            .header("x-mock-retry-after", "7")
            .max_retries(0)
            .response_headers(h)
    };
    let mut res = e.run_all(vec![ask(true), ask(false)]);
    let plain = res.pop().unwrap().unwrap_err();
    let err = res.pop().unwrap().unwrap_err();
    assert_eq!(err.http_status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7))); // the header, as sent
    assert_eq!(err.header("Retry-After"), Some("7"));
    assert_eq!(err.header("content-type"), Some("application/json"));
    assert!(err.header("x-request-id").unwrap().starts_with("req_"));
    // Not asked for: no fields, the wait still known.
    assert_eq!(plain.headers().count(), 0);
    assert_eq!(plain.retry_after(), Some(Duration::from_secs(7)));
}

#[test]
fn response_headers_on_success_only_when_asked() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let req = Request::new(mock.url()).json(chat_body("h")).response_headers(true);
    let id = e.submit(&req).unwrap();
    let id2 = e.submit(&req.clone().response_headers(false)).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        e.poll(Some(Duration::from_secs(5))).unwrap();
        e.results(&mut got);
    }
    let r = got.iter().find(|r| r.id() == id).unwrap();
    assert!(r.is_ok() && r.retry_after().is_none());
    let names: Vec<&str> = r.headers().map(|(n, _)| n).collect();
    assert_eq!(&names[..2], ["content-type", "content-length"]);
    assert_eq!(r.headers().get("Content-Length"), Some(r.body().len().to_string().as_str()));
    assert_eq!(r.headers().get("x-request-id"), Some(r.request_id()));
    assert_eq!(r.headers().get("openai-processing-ms"), Some("0"));
    let r2 = got.iter().find(|r| r.id() == id2).unwrap();
    assert!(r2.is_ok() && r2.headers_block().is_empty() && r2.headers().next().is_none());
}

#[test]
fn stall_with_deadline_times_out() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let req = Request::new(mock.url())
        .json(chat_body("x"))
        .header("x-mock-fault", "stall")
        .deadline(Duration::from_millis(300));
    let t = Instant::now();
    let err = e.run_all(vec![req]).pop().unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err:?}");
    assert!(t.elapsed() >= Duration::from_millis(250) && t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(err.to_string().starts_with("timed out"), "{err}");
}

#[test]
fn invalid_url_refused_at_submit() {
    let e = Engine::new(Config::new()).unwrap();
    let err = e.submit(&Request::new("not a url")).unwrap_err();
    assert!(matches!(err, Error::Invalid(ref m) if !m.is_empty()), "{err:?}");
    assert_eq!(err.code(), barrage::sys::BRG_E_INVALID);
    assert_eq!(err.name(), "BRG_E_INVALID");
    let err = e.submit(&Request::new("https://a\0b")).unwrap_err();
    assert!(matches!(err, Error::Invalid(_)));
    // A refused submit produces no result.
    assert_eq!(e.poll(Some(Duration::ZERO)).unwrap(), 0);
    // Bad config values are reported by Engine::new.
    let err = Engine::new(Config::new().max_inflight(0)).err().expect("max_inflight 0 refused");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
}

#[test]
fn cancel_gives_cancelled() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let id = e.submit(&Request::new(mock.url()).json(chat_body("x")).header("x-mock-fault", "stall")).unwrap();
    e.poll(Some(Duration::from_millis(50))).unwrap();
    e.cancel(id).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.is_empty() && Instant::now() < deadline {
        e.poll(Some(Duration::from_millis(50))).unwrap();
        e.results(&mut out);
    }
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id(), id);
    assert!(matches!(out[0].error(), Some(Error::Cancelled(_))), "{:?}", out[0].error());
    assert!(matches!(e.cancel(id), Err(Error::NotFound(_))));
}

#[test]
fn drop_with_requests_in_flight() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 50);
    for i in 0..100 {
        let mut req = Request::new(mock.url()).json(chat_body("x"));
        if i % 2 == 0 {
            req = req.header("x-mock-fault", "stall");
        }
        e.submit(&req).unwrap();
    }
    for _ in 0..5 {
        e.poll(Some(Duration::from_millis(20))).unwrap();
    }
    // Keep one response past the engine's end: it must stay valid.
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while out.is_empty() && Instant::now() < deadline {
        e.poll(Some(Duration::from_millis(20))).unwrap();
        e.results(&mut out);
    }
    let t = Instant::now();
    drop(e);
    assert!(t.elapsed() < Duration::from_secs(2), "drop took {:?}", t.elapsed());
    assert!(!out.is_empty() && out[0].is_ok() && out[0].text().contains("mock answer"));
}

fn move_after_first_poll(backend: Backend) -> Result<(), Error> {
    let mock = Mock::start(&[]);
    let e = Engine::new(Config::new().max_inflight(10).ca_file(&mock.ca).backend(backend)).unwrap();
    e.submit(&Request::new(mock.url()).json(chat_body(&question(0)))).unwrap();
    e.poll(Some(Duration::ZERO))?; // this thread becomes the owner
    let url = mock.url();
    std::thread::spawn(move || {
        let r = e.run_all(vec![Request::new(url).json(chat_body(&question(1))).user_data(1)]).pop().unwrap()?;
        check_answer(&r, 1);
        let mut out = Vec::new();
        while out.is_empty() {
            e.poll(Some(Duration::from_millis(50)))?;
            e.results(&mut out);
        }
        assert!(out[0].text().contains(&question(0)));
        Ok(())
    })
    .join()
    .unwrap()
}

#[test]
fn engine_moves_to_another_thread_before_first_poll() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let url = mock.url();
    let r = std::thread::spawn(move || {
        let e = e;
        e.run_all(vec![Request::new(url).json(chat_body(&question(3))).user_data(3)]).pop().unwrap().unwrap()
    })
    .join()
    .unwrap();
    check_answer(&r, 3);
}

#[test]
fn engine_moves_after_first_poll_epoll() {
    move_after_first_poll(Backend::Epoll).unwrap();
}

#[test]
fn engine_moves_after_first_poll_auto() {
    // With io_uring (SINGLE_ISSUER) the first polling thread stays the owner:
    // polling from another thread fails with Error::Backend instead of working.
    match move_after_first_poll(Backend::Auto) {
        Ok(()) => {}
        Err(Error::Backend(m)) => {
            assert!(m.contains("thread"), "{m}");
            eprintln!("note: {}", Error::Backend(m));
        }
        Err(other) => panic!("{other:?}"),
    }
}

#[test]
fn threaded_engine_submits_from_many_threads() {
    let mock = Mock::start(&[]);
    let te = Arc::new(engine(&mock, 50).start().unwrap());
    const PER: usize = 50;
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let te = te.clone();
            let url = mock.url();
            std::thread::spawn(move || {
                for k in 0..PER {
                    let i = t * PER + k;
                    te.submit(&Request::new(url.clone()).json(chat_body(&question(i))).user_data(i as u64)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while out.len() < 4 * PER && Instant::now() < deadline {
        te.wait_results(&mut out, Some(Duration::from_millis(200)));
    }
    assert_eq!(out.len(), 4 * PER);
    let mut seen = vec![false; 4 * PER];
    for r in &out {
        let i = r.user_data() as usize;
        assert!(!std::mem::replace(&mut seen[i], true));
        check_answer(r, i);
    }
}

#[test]
fn version_and_errors() {
    assert_eq!(barrage::version(), env!("CARGO_PKG_VERSION"));
    assert!(barrage::version_compatible());
    let e = Error::Http { status: 503, body: vec![], message: String::new(), retry_after: None, headers: vec![] };
    assert_eq!(e.to_string(), "non-success HTTP status 503");
    let _: &dyn std::error::Error = &e;
    fn assert_send<T: Send>() {}
    fn assert_sync<T: Sync>() {}
    assert_send::<Engine>();
    assert_send::<Response>();
    assert_send::<barrage::ThreadedEngine>();
    assert_sync::<barrage::ThreadedEngine>();
}
