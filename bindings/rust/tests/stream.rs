//! Streaming (server-sent events) against barrage-mockserver, which streams
//! when the body has "stream": true and paces the events by the
//! x-mock-stream-* / x-mock-first-token-ms headers. Loopback only.
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use barrage::{Config, Engine, Error, HttpVersion, Request, Response};
use common::{chat_body, Mock};

fn engine(mock: &Mock, inflight: u32) -> Engine {
    Engine::new(Config::new().max_inflight(inflight).ca_file(&mock.ca)).expect("engine")
}

fn stream_body(msg: &str) -> String {
    format!(
        r#"{{"model":"gpt-4o-mini","stream":true,"stream_options":{{"include_usage":true}},"messages":[{{"role":"user","content":"{msg}"}}]}}"#
    )
}

/// A streamed request for `tokens` token events " tok1".." tokN".
fn stream_req(mock: &Mock, tokens: usize) -> Request {
    Request::new(mock.url())
        .json(stream_body("stream me"))
        .stream(true)
        .header("x-mock-stream-tokens", &tokens.to_string())
}

/// The delta content of a chat chunk: `Some("")` for the role event,
/// `Some(" tokK")` for a token, `None` for the finish and usage chunks.
fn delta_content(ev: &Response) -> Option<String> {
    let text = ev.text();
    let d = text.find("\"delta\":{")?;
    let rest = &text[d..];
    let end = rest.find('}')?;
    let c = rest[..end].find("\"content\":\"")?;
    let s = &rest[c + "\"content\":\"".len()..];
    Some(s[..s.find('"')?].to_owned())
}

/// What the events of an N-token chat stream with usage carry.
fn expected_contents(n: usize) -> Vec<Option<String>> {
    let mut v = vec![Some(String::new())];
    v.extend((1..=n).map(|k| Some(format!(" tok{k}"))));
    v.push(None); // finish_reason chunk
    v.push(None); // usage chunk
    v
}

fn check_events_in_final(events: &[Response], last: &Response) {
    // The final body is the raw stream; each event is one of its data lines, in order.
    let raw = last.text();
    let mut pos = 0;
    for (i, ev) in events.iter().enumerate() {
        let line = format!("data: {}\n", ev.text());
        let at = raw[pos..].find(&line).unwrap_or_else(|| panic!("event {i} not in order in the raw stream"));
        pos += at + 1;
    }
    assert!(raw.contains("data: [DONE]"));
}

#[test]
fn headers_come_with_the_first_event_and_the_final_result() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let req = stream_req(&mock, 3).response_headers(true);
    let mut stream = e.stream(&req).unwrap();
    let events: Vec<Response> = (&mut stream).map(|ev| ev.expect("no error")).collect();
    assert_eq!(events.len(), 6);
    let first = &events[0];
    assert_eq!(first.headers().get("content-type"), Some("text/event-stream"));
    assert!(first.headers().get("x-request-id").unwrap().starts_with("req_"));
    assert_eq!(first.request_id(), first.headers().get("x-request-id").unwrap()); // 0.4: on the first partial
    assert!(first.retry_after().is_none());
    for ev in &events[1..] {
        assert!(ev.headers_block().is_empty(), "only the first partial carries the block");
    }
    let last = stream.final_response().expect("final");
    assert_eq!(last.headers_block(), first.headers_block());
    // Not asked: no block anywhere.
    let mut plain = e.stream(&stream_req(&mock, 1)).unwrap();
    for ev in &mut plain {
        assert!(ev.unwrap().headers_block().is_empty());
    }
    assert!(plain.final_response().unwrap().headers_block().is_empty());
}

#[test]
fn events_arrive_in_order_then_the_final_result() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    const N: usize = 6;
    let req = stream_req(&mock, N).header("x-mock-stream-interval-ms", "10").user_data(42);
    assert!(req.is_stream());
    let mut stream = e.stream(&req).unwrap();
    let id = stream.id();
    let mut events = Vec::new();
    for ev in &mut stream {
        let ev = ev.expect("no error");
        assert!(ev.is_partial());
        assert!(ev.is_ok());
        assert_eq!(ev.id(), id);
        assert_eq!(ev.user_data(), 42);
        assert_eq!(ev.status(), 200);
        assert_eq!(ev.event_index(), Some(events.len() as u32 + 1));
        assert_eq!(ev.events(), events.len() as u32 + 1);
        events.push(ev);
    }
    assert!(stream.next().is_none(), "fused after the end");
    assert!(stream.is_finished());
    let contents: Vec<Option<String>> = events.iter().map(delta_content).collect();
    assert_eq!(contents, expected_contents(N));
    // ttft is there once the first token arrived, not on the role event.
    assert_eq!(events[0].ttft(), None);
    for ev in &events[1..] {
        assert!(ev.ttft().is_some(), "event {:?} without ttft", ev.event_index());
    }

    let last = stream.final_response().expect("final result");
    assert!(!last.is_partial());
    assert!(last.is_ok(), "{:?}", last.error());
    assert_eq!(last.id(), id);
    assert_eq!(last.event_index(), None);
    assert_eq!(last.events(), events.len() as u32);
    assert_eq!(last.completion_tokens(), Some(N as u64));
    assert!(last.prompt_tokens().unwrap() > 0);
    let t = last.timings();
    let ttft = last.ttft().expect("ttft");
    assert!(ttft >= t.ttfb.unwrap() && ttft <= t.total, "ttft {ttft:?} vs {t:?}");
    let (gmax, gmean) = (last.gap_max().unwrap(), last.gap_mean().unwrap());
    assert!(gmax >= gmean);
    check_events_in_final(&events, last);
    // Nothing is left for the non-blocking API.
    let mut out = Vec::new();
    e.poll(Some(Duration::from_millis(20))).unwrap();
    assert_eq!(e.results(&mut out), 0);
}

#[test]
fn no_stream_body_keeps_the_events_and_empties_the_final_body() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    const N: usize = 5;
    let req = stream_req(&mock, N).header("x-mock-stream-interval-ms", "5");
    let run = |req: &Request| {
        let mut stream = e.stream(req).unwrap();
        let events: Vec<Response> = (&mut stream).map(|ev| ev.expect("no error")).collect();
        (events, stream.finish().expect("final result"))
    };
    // Switched on and off again: the default, which keeps the raw stream.
    let (kept_events, kept) = run(&req.clone().no_stream_body(true).no_stream_body(false));
    check_events_in_final(&kept_events, &kept);

    let (events, last) = run(&req.clone().no_stream_body(true));
    let contents: Vec<Option<String>> = events.iter().map(delta_content).collect();
    assert_eq!(contents, expected_contents(N));
    assert!(last.is_ok() && last.status() == 200, "{:?}", last.error());
    assert!(last.body().is_empty(), "body kept: {:?}", last.text());
    // Usage and timings come from the events, as without the flag.
    assert_eq!(last.events(), events.len() as u32);
    assert_eq!(last.events(), kept.events());
    assert_eq!(last.completion_tokens(), Some(N as u64));
    assert_eq!(last.prompt_tokens(), kept.prompt_tokens());
    assert!(last.ttft().is_some());

    // An error answer keeps its body.
    let bad = stream_req(&mock, 3).header("x-mock-status", "400").max_retries(0).no_stream_body(true);
    match e.stream(&bad).unwrap().finish() {
        Err(Error::Http { status: 400, body, .. }) => assert!(String::from_utf8_lossy(&body).contains("\"error\"")),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    // Only with a stream: the engine refuses it on a plain request.
    let plain = Request::new(mock.url()).json(stream_body("x")).no_stream_body(true);
    assert!(matches!(e.submit(&plain), Err(Error::Invalid(_))), "{:?}", e.submit(&plain));
}

#[test]
fn finish_skips_the_events_and_returns_the_final_result() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let mut stream = e.stream(&stream_req(&mock, 9)).unwrap();
    let first = stream.next().unwrap().unwrap();
    assert_eq!(first.event_index(), Some(1));
    let last = stream.finish().unwrap();
    assert!(!last.is_partial());
    assert_eq!(last.events(), 12);
    assert_eq!(last.completion_tokens(), Some(9));
    assert!(last.text().contains(" tok9"));
    // Engine::stream sets the flag even when the Request did not.
    let req = Request::new(mock.url()).json(stream_body("x")).header("x-mock-stream-tokens", "2");
    assert!(!req.is_stream());
    let n = e.stream(&req).unwrap().filter(|ev| ev.is_ok()).count();
    assert_eq!(n, 5);
    assert!(!Request::new("https://x").stream(true).stream(false).is_stream());
}

#[test]
fn ttft_and_gaps_follow_the_servers_pace() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let req = stream_req(&mock, 5)
        .header("x-mock-first-token-ms", "300")
        .header("x-mock-stream-interval-ms", "50");
    let t0 = Instant::now();
    let mut stream = e.stream(&req).unwrap();
    let mut first_token_at = None;
    for ev in &mut stream {
        let ev = ev.unwrap();
        if first_token_at.is_none() && delta_content(&ev).is_some_and(|c| !c.is_empty()) {
            first_token_at = Some(t0.elapsed());
            assert!(ev.ttft().unwrap() >= Duration::from_millis(300), "{:?}", ev.ttft());
        }
    }
    assert!(first_token_at.unwrap() >= Duration::from_millis(300));
    let last = stream.final_response().unwrap();
    assert!(last.is_ok());
    let ttft = last.ttft().unwrap();
    assert!(ttft >= Duration::from_millis(300), "ttft {ttft:?}");
    assert!(ttft < Duration::from_millis(300 + 1000), "ttft {ttft:?}");
    // Four gaps of 50 ms between five tokens: never (much) shorter than the pace.
    let gmean = last.gap_mean().unwrap();
    assert!(gmean >= Duration::from_millis(48) && gmean < Duration::from_millis(150), "gap mean {gmean:?}");
    assert!(last.gap_max().unwrap() >= gmean);
}

#[test]
fn idle_timeout_fails_after_the_events_that_arrived() {
    let mock = Mock::start(&[]);
    // Per request, and from the engine's config.
    let engines = [
        (engine(&mock, 10), Some(Duration::from_millis(250))),
        (
            Engine::new(Config::new().ca_file(&mock.ca).stream_idle_timeout(Duration::from_millis(250))).unwrap(),
            None,
        ),
    ];
    for (e, per_request) in &engines {
        let mut req = stream_req(&mock, 10).header("x-mock-stream-stall-after", "2");
        if let Some(d) = per_request {
            req = req.stream_idle_timeout(*d);
        }
        let t0 = Instant::now();
        let mut stream = e.stream(&req).unwrap();
        let items: Vec<Result<Response, Error>> = stream.by_ref().collect();
        assert_eq!(items.len(), 4, "{items:?}");
        let contents: Vec<Option<String>> =
            items[..3].iter().map(|r| delta_content(r.as_ref().unwrap())).collect();
        assert_eq!(contents, expected_contents(2)[..3].to_vec());
        match &items[3] {
            Err(Error::Timeout(m)) => assert!(m.contains("idle timeout of 250 ms"), "{m}"),
            other => panic!("expected an idle timeout, got {other:?}"),
        }
        assert!(t0.elapsed() >= Duration::from_millis(250) && t0.elapsed() < Duration::from_secs(3));
        let last = stream.final_response().unwrap();
        assert_eq!(last.events(), 3);
        assert_eq!(last.attempts(), 1);
        assert!(last.ttft().is_some());
        assert!(matches!(stream.finish(), Err(Error::Timeout(_))));
    }
}

#[test]
fn first_token_timeout_from_config_and_request() {
    let mock = Mock::start(&[]);
    let e = Engine::new(Config::new().ca_file(&mock.ca).first_token_timeout(Duration::from_millis(200))).unwrap();
    for (req, limit) in [
        // The engine's limit.
        (stream_req(&mock, 3).header("x-mock-first-token-ms", "2000"), 200u64),
        // The request's own, which wins.
        (stream_req(&mock, 3).header("x-mock-first-token-ms", "2000").first_token_timeout(Duration::from_millis(400)), 400),
    ] {
        let t0 = Instant::now();
        let items: Vec<_> = e.stream(&req).unwrap().collect();
        let took = t0.elapsed();
        assert_eq!(items.len(), 2, "{items:?}"); // the role event, then the error
        assert_eq!(delta_content(items[0].as_ref().unwrap()), Some(String::new()));
        match &items[1] {
            Err(Error::Timeout(m)) => assert!(m.contains(&format!("first-token timeout of {limit} ms")), "{m}"),
            other => panic!("expected a first-token timeout, got {other:?}"),
        }
        assert!(took >= Duration::from_millis(limit) && took < Duration::from_millis(1500), "{took:?}");
    }
    // Within the limits the stream completes: the engine's, and a longer one
    // of the request's (the engine's 200 ms would have failed it).
    let req = stream_req(&mock, 3).header("x-mock-first-token-ms", "50");
    assert_eq!(e.stream(&req).unwrap().finish().unwrap().completion_tokens(), Some(3));
    let req = stream_req(&mock, 3).header("x-mock-first-token-ms", "400").first_token_timeout(Duration::from_secs(3));
    let last = e.stream(&req).unwrap().finish().unwrap();
    assert!(last.ttft().unwrap() >= Duration::from_millis(400));
}

#[test]
fn reset_and_error_answers_end_the_iteration_with_the_error() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    let items: Vec<_> = e.stream(&stream_req(&mock, 10).header("x-mock-stream-reset-after", "3")).unwrap().collect();
    assert_eq!(items.len(), 5, "{items:?}");
    assert!(items[..4].iter().all(|r| r.as_ref().is_ok_and(|ev| ev.is_partial())));
    assert!(matches!(items[4], Err(Error::Io(_))), "{:?}", items[4]);

    let items: Vec<_> = e.stream(&stream_req(&mock, 3).header("x-mock-status", "400").max_retries(0)).unwrap().collect();
    assert_eq!(items.len(), 1);
    match &items[0] {
        Err(Error::Http { status: 400, body, .. }) => assert!(String::from_utf8_lossy(body).contains("\"error\"")),
        other => panic!("expected HTTP 400, got {other:?}"),
    }
}

#[test]
fn dropping_a_stream_early_cancels_the_request() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    // 100 tokens 50 ms apart: five seconds of stream.
    let req = stream_req(&mock, 100).header("x-mock-stream-interval-ms", "50");
    let mut stream = e.stream(&req).unwrap();
    let id = stream.id();
    for k in 1..=3 {
        assert_eq!(stream.next().unwrap().unwrap().event_index(), Some(k));
    }
    assert_eq!(e.stats().unwrap().connections_open, 1);
    let t0 = Instant::now();
    drop(stream);
    // The engine cancelled it and closed its connection at once.
    let mut out = Vec::new();
    while e.stats().unwrap().cancelled < 1 && t0.elapsed() < Duration::from_secs(2) {
        e.poll(Some(Duration::from_millis(10))).unwrap();
        e.results(&mut out);
    }
    let st = e.stats().unwrap();
    assert_eq!(st.cancelled, 1);
    assert_eq!(st.connections_open, 0);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    // Its remaining results never reach results().
    let until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < until {
        e.poll(Some(Duration::from_millis(20))).unwrap();
        e.results(&mut out);
    }
    assert!(out.iter().all(|r| r.id() != id), "{out:?}");
    assert!(out.is_empty());

    // Dropped before any event, and the engine carries on.
    drop(e.stream(&req).unwrap());
    let r = e.run_all(vec![Request::new(mock.url()).json(chat_body("after"))]).pop().unwrap().unwrap();
    assert!(r.text().contains("after"));
    let until = Instant::now() + Duration::from_millis(200);
    while Instant::now() < until {
        e.poll(Some(Duration::from_millis(20))).unwrap();
        e.results(&mut out);
    }
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(e.stats().unwrap().cancelled, 2);
}

#[test]
fn fifty_concurrent_streams_with_normal_requests_alongside() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 100);
    const S: usize = 50;
    const PLAIN: usize = 30;
    struct Open<'e> {
        n: usize,
        stream: barrage::Stream<'e>,
        events: Vec<Response>,
        ended: bool,
    }
    let mut open: Vec<Open> = (0..S)
        .map(|i| {
            // Stream i has 1 + i tokens: each must see exactly its own.
            let req = stream_req(&mock, 1 + i).header("x-mock-stream-interval-ms", "5").user_data(i as u64);
            Open { n: 1 + i, stream: e.stream(&req).unwrap(), events: Vec::new(), ended: false }
        })
        .collect();
    for i in 0..PLAIN {
        let req = Request::new(mock.url()).json(chat_body(&format!("plain #{i}."))).user_data(1000 + i as u64);
        e.submit(&req).unwrap();
    }
    // Round robin: each next() drives the engine for everyone.
    let deadline = Instant::now() + Duration::from_secs(30);
    while open.iter().any(|o| !o.ended) {
        assert!(Instant::now() < deadline, "stuck");
        for o in open.iter_mut().filter(|o| !o.ended) {
            match o.stream.next() {
                Some(Ok(ev)) => o.events.push(ev),
                Some(Err(err)) => panic!("stream {} failed: {err}", o.n),
                None => o.ended = true,
            }
        }
    }
    for (i, o) in open.iter().enumerate() {
        let id = o.stream.id();
        for (k, ev) in o.events.iter().enumerate() {
            assert_eq!(ev.id(), id);
            assert_eq!(ev.user_data(), i as u64);
            assert_eq!(ev.event_index(), Some(k as u32 + 1));
        }
        let contents: Vec<Option<String>> = o.events.iter().map(delta_content).collect();
        assert_eq!(contents, expected_contents(o.n), "stream {i}");
        let last = o.stream.final_response().unwrap();
        assert!(last.is_ok());
        assert_eq!(last.completion_tokens(), Some(o.n as u64));
        assert_eq!(last.events() as usize, o.n + 3);
        check_events_in_final(&o.events, last);
    }
    // The plain requests' results waited for results(), untouched.
    let mut out = Vec::new();
    while out.len() < PLAIN && Instant::now() < deadline {
        e.poll(Some(Duration::from_millis(50))).unwrap();
        e.results(&mut out);
    }
    assert_eq!(out.len(), PLAIN);
    let mut seen = [false; PLAIN];
    for r in &out {
        assert!(!r.is_partial() && r.is_ok(), "{r:?}");
        let i = r.user_data() as usize - 1000;
        assert!(!std::mem::replace(&mut seen[i], true));
        assert!(r.text().contains(&format!("plain #{i}.")));
        assert_eq!(r.events(), 0);
        assert_eq!(r.ttft(), None);
    }
}

/// Groups results by id, checking the order rules; returns (partials, final).
fn collect_by_id(
    results: impl FnMut(&mut Vec<Response>),
    finals: usize,
) -> HashMap<u64, (Vec<Response>, Option<Response>)> {
    let mut results = results;
    let mut by_id: HashMap<u64, (Vec<Response>, Option<Response>)> = HashMap::new();
    let (mut done, mut out) = (0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(30);
    while done < finals {
        assert!(Instant::now() < deadline, "{done}/{finals} final results");
        out.clear();
        results(&mut out);
        for r in out.drain(..) {
            let slot = by_id.entry(r.id().0).or_default();
            assert!(slot.1.is_none(), "a result after the final one: {r:?}");
            if r.is_partial() {
                assert_eq!(r.event_index(), Some(slot.0.len() as u32 + 1));
                slot.0.push(r);
            } else {
                slot.1 = Some(r);
                done += 1;
            }
        }
    }
    by_id
}

#[test]
fn poll_and_results_api_sees_partials_flagged() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 100);
    let mut tokens = HashMap::new();
    for i in 0..50usize {
        let id = e.submit(&stream_req(&mock, 1 + i % 9).header("x-mock-stream-interval-ms", "3")).unwrap();
        tokens.insert(id.0, 1 + i % 9);
    }
    let mut plain = Vec::new();
    for i in 0..20 {
        plain.push(e.submit(&Request::new(mock.url()).json(chat_body(&format!("p{i}")))).unwrap().0);
    }
    let by_id = collect_by_id(
        |out| {
            e.poll(Some(Duration::from_millis(50))).unwrap();
            e.results(out);
        },
        70,
    );
    assert_eq!(by_id.len(), 70);
    for (id, (events, last)) in &by_id {
        let last = last.as_ref().unwrap();
        assert!(last.is_ok(), "{last:?}");
        match tokens.get(id) {
            Some(&n) => {
                let contents: Vec<Option<String>> = events.iter().map(delta_content).collect();
                assert_eq!(contents, expected_contents(n));
                assert_eq!(last.events() as usize, events.len());
                assert_eq!(last.completion_tokens(), Some(n as u64));
            }
            None => {
                assert!(plain.contains(id));
                assert!(events.is_empty());
            }
        }
    }
}

#[test]
fn threaded_engine_results_carry_partials() {
    let mock = Mock::start(&[]);
    let te = engine(&mock, 20).start().unwrap();
    for i in 0..10 {
        te.submit(&stream_req(&mock, 4 + i)).unwrap();
    }
    let by_id = collect_by_id(
        |out| {
            te.wait_results(out, Some(Duration::from_millis(200)));
        },
        10,
    );
    for (events, last) in by_id.values() {
        let last = last.as_ref().unwrap();
        assert_eq!(last.completion_tokens(), Some(events.len() as u64 - 3));
        assert_eq!(last.events() as usize, events.len());
    }
}

#[test]
fn run_all_never_takes_a_partial_for_the_outcome() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 50);
    // An open stream handle and a streamed request submitted by other code
    // must both keep every one of their results through run_all.
    let mut handle = e.stream(&stream_req(&mock, 20).header("x-mock-stream-interval-ms", "10")).unwrap();
    let other = e.submit(&stream_req(&mock, 7).header("x-mock-stream-interval-ms", "10")).unwrap();

    let reqs: Vec<Request> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                stream_req(&mock, 3 + i).user_data(i as u64)
            } else {
                Request::new(mock.url()).json(chat_body(&format!("q{i}"))).user_data(i as u64)
            }
        })
        .collect();
    let res = e.run_all(reqs);
    assert_eq!(res.len(), 20);
    for (i, r) in res.iter().enumerate() {
        let r = r.as_ref().unwrap_or_else(|err| panic!("{i}: {err}"));
        assert!(!r.is_partial(), "run_all returned a partial for {i}");
        assert_eq!(r.user_data(), i as u64);
        if i % 2 == 0 {
            assert_eq!(r.completion_tokens(), Some(3 + i as u64));
            assert_eq!(r.events() as usize, 3 + i + 3);
            assert!(r.text().contains("data: [DONE]"));
        } else {
            assert!(r.text().contains(&format!("q{i}")));
        }
    }

    let events: Vec<Response> = handle.by_ref().map(|ev| ev.unwrap()).collect();
    assert_eq!(events.iter().map(delta_content).collect::<Vec<_>>(), expected_contents(20));
    assert_eq!(handle.final_response().unwrap().completion_tokens(), Some(20));

    let by_id = collect_by_id(
        |out| {
            e.poll(Some(Duration::from_millis(50))).unwrap();
            e.results(out);
        },
        1,
    );
    let (events, last) = &by_id[&other.0];
    assert_eq!(events.len(), 10);
    assert_eq!(last.as_ref().unwrap().completion_tokens(), Some(7));
}

#[test]
fn a_stream_whose_answer_is_not_an_event_stream_has_no_events() {
    let mock = Mock::start(&[]);
    let e = engine(&mock, 10);
    // Without "stream": true in the body the server answers plain JSON.
    let mut s = e.stream(&Request::new(mock.url()).json(chat_body("plain"))).unwrap();
    assert!(s.next().is_none());
    let last = s.final_response().unwrap();
    assert!(last.is_ok() && last.text().contains("plain"));
    assert_eq!(last.events(), 0);
}

#[test]
fn new_config_options() {
    let mock = Mock::start(&[]);
    let ask = |cfg: Config| {
        let e = Engine::new(cfg.ca_file(&mock.ca).max_retries(0))?;
        e.run_all(vec![Request::new(mock.url()).json(chat_body("cfg"))]).pop().unwrap()
    };
    // The mock speaks HTTP/1.1 only.
    assert!(ask(Config::new().http_version(HttpVersion::Http1)).is_ok());
    assert!(ask(Config::new().http_version(HttpVersion::Auto)).is_ok());
    let err = ask(Config::new().http_version(HttpVersion::Http2)).unwrap_err();
    assert!(matches!(err, Error::Protocol(_)), "{err:?}");

    // A proxy nobody listens on: NO_PROXY lets loopback go direct.
    let dead_proxy = "http://127.0.0.1:1";
    assert!(ask(Config::new().proxy(dead_proxy).no_proxy("127.0.0.1")).is_ok());
    let err = ask(Config::new().proxy(dead_proxy)).unwrap_err();
    assert!(matches!(err, Error::Connect(_)), "{err:?}");
    assert!(ask(Config::new().proxy(dead_proxy).no_proxy("")).is_err());
    assert!(ask(Config::new().proxy("")).is_ok());

    let err = Engine::new(Config::new().proxy("ftp://127.0.0.1:21")).err().expect("ftp proxy refused");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");

    assert!(Engine::new(Config::new().dns_servers("127.0.0.1:5353")).is_ok());
    assert!(ask(Config::new().dns_servers("127.0.0.1:5353")).is_ok()); // IP literal: no lookup

    // Stream timeouts are plain non-negative integers.
    let mut c = Config::new();
    c.set_int(barrage::sys::BRG_OPT_FIRST_TOKEN_TIMEOUT_MS, 1000).unwrap();
    c.set_int(barrage::sys::BRG_OPT_STREAM_IDLE_TIMEOUT_MS, 1000).unwrap();
    assert!(c.set_int(barrage::sys::BRG_OPT_HTTP_VERSION, 3).is_err());
    assert!(c.set_int(barrage::sys::BRG_OPT_STREAM_IDLE_TIMEOUT_MS, -1).is_err());
}
