//! The tokio API against the mock: send, event streams, unordered/ordered
//! windows, fail-fast and deadline run-all, cancel on drop, error accessors.
mod common;

use std::time::{Duration, Instant};

use barrage::aio::{next, AsyncEngine};
use barrage::{Config, Error, Request};
use common::{chat_body, Mock};

fn engine(mock: &Mock) -> AsyncEngine {
    AsyncEngine::new(Config::new().max_inflight(200).ca_file(&mock.ca)).expect("engine")
}

fn req(mock: &Mock, msg: &str) -> Request {
    Request::new(mock.url()).json(chat_body(msg))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_returns_the_answer_and_many_run_at_once() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let r = e.send(req(&mock, "hello")).await.expect("ok");
    assert_eq!(r.status(), 200);
    assert!(r.text().contains("chat.completion"), "{}", r.text());
    // 100 sends of 200 ms each at once: well under 100 x 200 ms.
    let t = Instant::now();
    let futs: Vec<_> = (0..100)
        .map(|i| e.send(req(&mock, &format!("m{i}")).header("x-mock-latency-ms", "200")))
        .collect();
    let mut handles = Vec::new();
    for f in futs {
        handles.push(tokio::spawn(f));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().expect("ok").status(), 200);
    }
    let el = t.elapsed();
    assert!(el < Duration::from_secs(3), "100 concurrent 200 ms sends took {el:?}");
}

#[tokio::test]
async fn http_errors_and_timeouts_have_accessors() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let err = e
        .send(req(&mock, "x").header("x-mock-status", "429").header("x-mock-retry-after", "0").max_retries(0))
        .await
        .unwrap_err();
    assert!(err.is_rate_limited(), "{err}");
    assert_eq!(err.http_status(), Some(429));
    assert_eq!(err.status(), barrage::sys::BRG_E_HTTP);
    assert!(!err.is_timeout());
    let err = e
        .send(req(&mock, "x").header("x-mock-fault", "stall").timeout(Duration::from_millis(300)).max_retries(0))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.http_status(), None);
}

#[tokio::test]
async fn dropping_a_send_future_cancels_the_request() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let slow = req(&mock, "slow").header("x-mock-latency-ms", "5000");
    let t = tokio::time::timeout(Duration::from_millis(200), e.send(slow)).await;
    assert!(t.is_err(), "the 5 s request cannot finish in 200 ms");
    // The engine saw the cancel: wait (bounded) for its counter.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let s = e.stats().unwrap();
        if s.cancelled >= 1 {
            assert_eq!(s.in_flight, 0);
            break;
        }
        assert!(Instant::now() < deadline, "request not cancelled: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The engine still serves.
    assert_eq!(e.send(req(&mock, "after")).await.unwrap().status(), 200);
}

fn stream_req(mock: &Mock, tokens: usize) -> Request {
    Request::new(mock.url())
        .json(r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#)
        .header("x-mock-stream-tokens", &tokens.to_string())
        .header("x-mock-stream-interval-ms", "5")
}

#[tokio::test]
async fn event_stream_yields_each_event_then_ends() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let mut s = e.stream(stream_req(&mock, 10)).unwrap();
    let mut texts = String::new();
    let mut n = 0;
    while let Some(ev) = next(&mut s).await {
        let ev = ev.expect("event");
        assert!(ev.is_partial());
        n += 1;
        let text = ev.text();
        if let Some(i) = text.find("\"content\":\"") {
            let rest = &text[i + 11..];
            texts.push_str(&rest[..rest.find('"').unwrap()]);
        }
    }
    let fin = s.final_response().expect("final");
    assert!(fin.is_ok());
    assert_eq!(fin.events() as usize, n);
    assert!(texts.contains(" tok1") && texts.contains(" tok10"), "{texts:?}");
}

#[tokio::test]
async fn event_stream_without_the_final_body() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let mut bodies = Vec::new();
    for on in [false, true] {
        let mut s = e.stream(stream_req(&mock, 4).no_stream_body(on)).unwrap();
        let mut n = 0;
        while let Some(ev) = next(&mut s).await {
            assert!(ev.expect("event").is_partial());
            n += 1;
        }
        let fin = s.final_response().expect("final");
        assert!(fin.is_ok(), "{:?}", fin.error());
        assert_eq!(fin.events() as usize, n);
        assert_eq!(n, 1 + 4 + 1, "role, 4 tokens, finish");
        bodies.push(fin.body().to_vec());
    }
    assert!(String::from_utf8_lossy(&bodies[0]).contains(" tok4"), "the default keeps the raw stream");
    assert!(bodies[1].is_empty(), "no_stream_body: {:?}", String::from_utf8_lossy(&bodies[1]));
}

#[tokio::test]
async fn dropping_an_event_stream_cancels_it() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let mut s = e.stream(stream_req(&mock, 5).header("x-mock-stream-stall-after", "2")).unwrap();
    let first = next(&mut s).await.unwrap().unwrap();
    assert!(first.is_partial());
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(3);
    while e.stats().unwrap().cancelled < 1 {
        assert!(Instant::now() < deadline, "stream not cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn unordered_keeps_the_window_and_yields_all() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    // Latency decreasing with index: completion order differs from input order.
    let reqs = (0..40).map(|i| req(&mock, &format!("u{i}")).header("x-mock-latency-ms", &((40 - i) * 5).to_string()));
    let mut s = e.unordered(reqs, 8);
    let mut seen = vec![false; 40];
    let mut order = Vec::new();
    while let Some((i, r)) = next(&mut s).await {
        assert!(s.in_flight() <= 8);
        assert_eq!(r.expect("ok").status(), 200);
        assert!(!seen[i]);
        seen[i] = true;
        order.push(i);
    }
    assert!(seen.iter().all(|&x| x));
    assert_ne!(order, (0..40).collect::<Vec<_>>(), "completion order equals input order");
    // The engine never had more than the window in flight.
    assert!(e.stats().unwrap().submitted >= 40);

    let reqs = (0..20).map(|i| req(&mock, &format!("o{i}")).user_data(i).header("x-mock-latency-ms", &((20 - i) * 5).to_string()));
    let mut s = e.ordered(reqs, 5);
    let mut k = 0;
    while let Some(r) = next(&mut s).await {
        assert_eq!(r.unwrap().user_data(), k);
        k += 1;
    }
    assert_eq!(k, 20);
}

#[tokio::test]
async fn run_all_fail_fast_and_deadline() {
    let mock = Mock::start(&[]);
    let e = engine(&mock);
    let rs = e.run_all((0..10).map(|i| req(&mock, &format!("a{i}"))).collect()).await;
    assert_eq!(rs.len(), 10);
    assert!(rs.iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == 200)));

    // One quick failure among slow requests: fail fast returns at once.
    let mut reqs: Vec<Request> = (0..10).map(|i| req(&mock, &format!("f{i}")).header("x-mock-latency-ms", "3000")).collect();
    reqs[6] = req(&mock, "bad").header("x-mock-status", "400").max_retries(0);
    let t = Instant::now();
    match e.run_all_fail_fast(reqs).await {
        Err((6, Error::Http { status: 400, .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // Deadline: fast ones finish, slow ones are cancelled and time out.
    let reqs: Vec<Request> = (0..10)
        .map(|i| req(&mock, &format!("d{i}")).header("x-mock-latency-ms", if i % 2 == 0 { "10" } else { "5000" }))
        .collect();
    let t = Instant::now();
    let rs = e.run_all_deadline(reqs, Duration::from_millis(500)).await;
    let el = t.elapsed();
    assert!(el >= Duration::from_millis(490) && el < Duration::from_millis(900), "{el:?}");
    for (i, r) in rs.iter().enumerate() {
        if i % 2 == 0 {
            assert!(r.is_ok(), "{i}: {r:?}");
        } else {
            assert!(r.as_ref().unwrap_err().is_timeout(), "{i}: {r:?}");
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while e.stats().unwrap().in_flight > 0 {
        assert!(Instant::now() < deadline, "cancelled requests still in flight");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
