//! Contract 4: runs bindings/conformance/scenarios.json through the async API
//! (run_all / unordered / fail-fast / deadline forms, event streams, dropped
//! futures for cancel) against one mock, and checks every expectation.
//! Unknown keys fail, so the suite cannot drift silently.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use barrage::aio::{next, AsyncEngine};
use barrage::{sys, Config, Error, OptionValue, Request, Response};
use common::Mock;
use serde_json::{Map, Value};

const TOP: &[&str] = &["version", "scenarios"];
const SCENARIO: &[&str] = &["name", "doc", "engine", "requests", "run", "overall_timeout_s", "expect"];
const REQUEST: &[&str] = &[
    "count", "method", "path", "headers", "body", "stream", "timeout_s", "deadline_s", "max_retries", "limit_key",
    "cancel_after_s", "response_headers", "no_stream_body",
];
const EXPECT: &[&str] = &[
    "status", "http_status", "attempts", "body_json_path", "stream_text_min_events", "stream_text", "order",
    "max_elapsed_s", "min_elapsed_s", "count_by_status", "first_error", "retry_after_s", "response_headers",
    "body_empty",
];

fn scenarios_path() -> std::path::PathBuf {
    match std::env::var_os("BARRAGE_CONFORMANCE") {
        Some(p) if !p.is_empty() => p.into(),
        _ => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/scenarios.json"),
    }
}

fn check_keys(what: &str, obj: &Map<String, Value>, known: &[&str]) -> Result<(), String> {
    for k in obj.keys() {
        if !known.contains(&k.as_str()) {
            return Err(format!("unknown key {k:?} in {what}"));
        }
    }
    Ok(())
}

fn expand(s: &str, i: usize, run: &str) -> String {
    s.replace("{i_mod7_x10}", &((i % 7) * 10).to_string()).replace("{i}", &i.to_string()).replace("{run}", run)
}

fn expand_json(v: &Value, i: usize, run: &str) -> Value {
    match v {
        Value::String(s) => Value::String(expand(s, i, run)),
        Value::Array(a) => Value::Array(a.iter().map(|x| expand_json(x, i, run)).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), expand_json(x, i, run))).collect()),
        x => x.clone(),
    }
}

/// One request of a scenario, expanded.
struct Spec {
    req: Request,
    stream: bool,
    cancel_after: Option<Duration>,
    /// The last user message, for the echo check.
    last_user: Option<String>,
}

/// What happened to one request.
#[derive(Debug, Default, Clone)]
struct Outcome {
    status: String,
    http_status: Option<u16>,
    attempts: Option<u32>,
    /// The final body (a stream's final result's; an HTTP error's body).
    body: Option<Vec<u8>>,
    stream: bool,
    text_events: usize,
    text: String,
    retry_after: Option<Duration>,
    /// The answer's header fields (for a stream: as known with its first event).
    headers: Vec<(String, String)>,
}

fn owned_headers(r: &Response) -> Vec<(String, String)> {
    r.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect()
}

fn status_name(code: i32) -> String {
    if code == sys::BRG_OK {
        return "OK".into();
    }
    Error::from_code(code, String::new()).name().trim_start_matches("BRG_").to_owned()
}

fn from_response(r: &Response) -> Outcome {
    let has_http = r.status_code() == sys::BRG_OK || r.status_code() == sys::BRG_E_HTTP;
    Outcome {
        status: status_name(r.status_code()),
        http_status: has_http.then(|| r.status()),
        attempts: Some(r.attempts()),
        body: Some(r.body().to_vec()),
        retry_after: r.retry_after(),
        headers: owned_headers(r),
        ..Default::default()
    }
}

fn from_error(e: &Error) -> Outcome {
    Outcome {
        status: status_name(e.code()),
        http_status: e.http_status(),
        body: match e {
            Error::Http { body, .. } => Some(body.clone()),
            _ => None,
        },
        retry_after: e.retry_after(),
        headers: e.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect(),
        ..Default::default()
    }
}

fn from_result(r: &Result<Response, Error>) -> Outcome {
    match r {
        Ok(r) => from_response(r),
        Err(e) => from_error(e),
    }
}

fn delta_content(ev: &Response) -> Option<String> {
    let v: Value = serde_json::from_slice(ev.body()).ok()?;
    v["choices"][0]["delta"]["content"].as_str().map(str::to_owned)
}

/// One request run alone (streams, caller cancels): a task of its own.
async fn run_one(engine: AsyncEngine, spec: Spec) -> Outcome {
    let Spec { req, stream, cancel_after, .. } = spec;
    let work = async {
        if !stream {
            return from_result(&engine.send(req).await);
        }
        let mut s = match engine.stream(req) {
            Ok(s) => s,
            Err(e) => return from_error(&e),
        };
        let (mut n, mut text) = (0, String::new());
        let mut first_headers = None;
        while let Some(ev) = next(&mut s).await {
            if let Ok(ev) = ev {
                first_headers.get_or_insert_with(|| owned_headers(&ev));
                if let Some(t) = delta_content(&ev).filter(|t| !t.is_empty()) {
                    n += 1;
                    text.push_str(&t);
                }
            }
        }
        let mut o = s.final_response().map(from_response).unwrap_or_else(|| from_error(&Error::Closed(String::new())));
        o.stream = true;
        if let Some(h) = first_headers {
            o.headers = h;
        }
        o.text_events = n;
        o.text = text;
        o
    };
    match cancel_after {
        None => work.await,
        // Dropping the future on time-out cancels the request (brg_cancel).
        Some(d) => tokio::time::timeout(d, work)
            .await
            .unwrap_or_else(|_| Outcome { status: "E_CANCELLED".into(), ..Default::default() }),
    }
}

struct Ran {
    outcomes: Vec<Outcome>,
    arrival: Vec<usize>,
    first_error: Option<String>,
    elapsed: Duration,
}

async fn run_scenario(engine: &AsyncEngine, specs: Vec<Spec>, run: &str, overall: Option<Duration>) -> Result<Ran, String> {
    let n = specs.len();
    let plain = specs.iter().all(|s| !s.stream && s.cancel_after.is_none());
    let t0 = Instant::now();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut arrival = Vec::new();
    let mut first_error = None;
    let reqs = |specs: Vec<Spec>| specs.into_iter().map(|s| s.req).collect::<Vec<_>>();
    match (run, plain, overall) {
        ("all", true, None) => {
            for (i, r) in engine.run_all_outcomes(reqs(specs)).await.iter().enumerate() {
                outcomes[i] = Some(from_result(r));
            }
        }
        ("all", true, Some(d)) => {
            for (i, r) in engine.run_all_deadline(reqs(specs), d).await.iter().enumerate() {
                outcomes[i] = Some(from_result(r));
            }
        }
        ("as_completed", true, None) => {
            let mut s = engine.unordered_outcomes(reqs(specs), usize::MAX);
            while let Some((i, r)) = next(&mut s).await {
                arrival.push(i);
                outcomes[i] = Some(from_result(&r));
            }
        }
        ("fail_fast", true, None) => {
            if let Err((_, e)) = engine.run_all_fail_fast(reqs(specs)).await {
                first_error = Some(status_name(e.code()));
            }
        }
        ("all" | "as_completed", false, _) => {
            // Streams and caller cancels: one task per request, as completed.
            let mut set = tokio::task::JoinSet::new();
            for (i, s) in specs.into_iter().enumerate() {
                let e = engine.clone();
                set.spawn(async move { (i, run_one(e, s).await) });
            }
            let deadline = overall.map(|d| tokio::time::Instant::now() + d);
            loop {
                let got = match deadline {
                    None => set.join_next().await,
                    Some(at) => match tokio::time::timeout_at(at, set.join_next()).await {
                        Ok(x) => x,
                        Err(_) => {
                            set.abort_all(); // dropping the futures cancels the requests
                            break;
                        }
                    },
                };
                let Some(j) = got else { break };
                let (i, o) = j.map_err(|e| format!("task: {e}"))?;
                arrival.push(i);
                outcomes[i] = Some(o);
            }
            for o in outcomes.iter_mut().filter(|o| o.is_none()) {
                *o = Some(Outcome { status: "E_TIMEOUT".into(), ..Default::default() });
            }
        }
        (r, p, o) => return Err(format!("run {r:?} (plain {p}, overall {o:?}) not supported by this runner")),
    }
    let elapsed = t0.elapsed();
    let outcomes = if run == "fail_fast" { Vec::new() } else { outcomes.into_iter().map(|o| o.unwrap()).collect() };
    Ok(Ran { outcomes, arrival, first_error, elapsed })
}

fn json_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, part| match part.parse::<usize>() {
        Ok(i) if cur.is_array() => cur.get(i),
        _ => cur.get(part),
    })
}

fn check(expect: &Map<String, Value>, ran: &Ran, specs_last_user: &[Option<String>]) -> Result<(), String> {
    let set = |k: &str| expect.get(k).filter(|v| !v.is_null());
    let el = ran.elapsed.as_secs_f64();
    if let Some(m) = set("max_elapsed_s") {
        if el > m.as_f64().unwrap() {
            return Err(format!("took {el:.3} s > {m}"));
        }
    }
    if let Some(m) = set("min_elapsed_s") {
        if el < m.as_f64().unwrap() {
            return Err(format!("took {el:.3} s < {m}"));
        }
    }
    if let Some(fe) = set("first_error") {
        let got = ran.first_error.as_deref().ok_or("fail-fast run returned no error")?;
        if got != fe.as_str().unwrap() {
            return Err(format!("first_error {got}, expected {fe}"));
        }
    }
    for (i, o) in ran.outcomes.iter().enumerate() {
        if let Some(s) = set("status") {
            if o.status != s.as_str().unwrap() {
                return Err(format!("request {i}: status {} expected {s} ({o:?})", o.status));
            }
        }
        if let (Some(h), Some(got)) = (set("http_status"), o.http_status) {
            if got as u64 != h.as_u64().unwrap() {
                return Err(format!("request {i}: http_status {got} expected {h}"));
            }
        }
        if let (Some(a), Some(got)) = (set("attempts"), o.attempts) {
            if got as u64 != a.as_u64().unwrap() {
                return Err(format!("request {i}: attempts {got} expected {a}"));
            }
        }
        let answered = o.status == "OK" || o.status == "E_HTTP";
        if let (Some(want), true) = (set("retry_after_s"), answered) {
            let want = want.as_f64().unwrap();
            let want = (want >= 0.0).then(|| Duration::from_secs_f64(want));
            if o.retry_after != want {
                return Err(format!("request {i}: retry_after {:?} expected {want:?}", o.retry_after));
            }
        }
        if let (Some(want), true) = (set("body_empty"), answered) {
            let want = want.as_bool().ok_or("body_empty: not a bool")?;
            let body = o.body.as_ref().ok_or_else(|| format!("request {i}: no body recorded ({o:?})"))?;
            if body.is_empty() != want {
                return Err(format!("request {i}: body {:?}, expected empty {want}", String::from_utf8_lossy(body)));
            }
        }
        if let (Some(want), true) = (set("response_headers"), answered) {
            for (name, w) in want.as_object().unwrap() {
                let got = o.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
                let ok = match w {
                    Value::Bool(true) => got.is_some(),
                    Value::Bool(false) => got.is_none(),
                    Value::String(v) => got == Some(v.as_str()),
                    x => return Err(format!("response_headers.{name}: bad expectation {x}")),
                };
                if !ok {
                    return Err(format!("request {i}: header {name} = {got:?}, expected {w} (all: {:?})", o.headers));
                }
            }
        }
        let body_json = o.body.as_ref().filter(|_| o.status == "OK" && !o.stream).and_then(|b| serde_json::from_slice::<Value>(b).ok());
        if let (Some(paths), Some(v)) = (set("body_json_path"), body_json.as_ref()) {
            for (p, want) in paths.as_object().unwrap() {
                if json_path(v, p) != Some(want) {
                    return Err(format!("request {i}: {p} = {:?}, expected {want}", json_path(v, p)));
                }
            }
        } else if set("body_json_path").is_some() && o.status == "OK" && !o.stream {
            return Err(format!("request {i}: body is not JSON"));
        }
        if o.stream {
            if let Some(m) = set("stream_text_min_events") {
                if (o.text_events as u64) < m.as_u64().unwrap() {
                    return Err(format!("request {i}: {} text events < {m}", o.text_events));
                }
            }
            if let Some(t) = set("stream_text") {
                if o.status == "OK" && o.text != t.as_str().unwrap() {
                    return Err(format!("request {i}: stream text {:?} expected {t}", o.text));
                }
            }
        }
        // Echo check: an OK chat answer belongs to its own request.
        if let (Some(v), Some(Some(user))) = (body_json.as_ref(), specs_last_user.get(i)) {
            if let Some(content) = v["choices"][0]["message"]["content"].as_str() {
                if !content.ends_with(&format!(": {user}")) {
                    return Err(format!("request {i}: answer {content:?} does not echo {user:?}"));
                }
            }
        }
    }
    match set("order") {
        Some(Value::Array(want)) => {
            let want: Vec<usize> = want.iter().map(|x| x.as_u64().unwrap() as usize).collect();
            if ran.arrival != want {
                return Err(format!("arrival order {:?}, expected {want:?}", ran.arrival));
            }
        }
        Some(Value::String(s)) if s == "submission" || s == "any" => {}
        Some(x) => return Err(format!("unknown order {x}")),
        None => {}
    }
    if let Some(c) = set("count_by_status") {
        let c = c.as_object().unwrap();
        let mut got: BTreeMap<&str, u64> = BTreeMap::new();
        for o in &ran.outcomes {
            *got.entry(o.status.as_str()).or_default() += 1;
        }
        for (k, n) in &got {
            let want = c.get(*k).and_then(Value::as_u64).unwrap_or(0);
            if *n != want {
                return Err(format!("count_by_status: {k} = {n}, expected {want} (all: {got:?})"));
            }
        }
        for (k, v) in c {
            if v.as_u64().unwrap() > 0 && !got.contains_key(k.as_str()) {
                return Err(format!("count_by_status: no {k}"));
            }
        }
    }
    Ok(())
}

fn build(sc: &Map<String, Value>, mock: &Mock, run_token: &str) -> Result<(Config, Vec<Spec>), String> {
    let mut cfg = Config::new().ca_file(&mock.ca);
    for (name, v) in sc.get("engine").and_then(Value::as_object).into_iter().flatten() {
        if !sys::OPTIONS.iter().any(|o| o.0 == name) {
            return Err(format!("engine option {name} not exposed by the Rust binding"));
        }
        cfg = match v {
            Value::String(s) => cfg.option(name, OptionValue::Str(s)),
            Value::Number(n) => cfg.option(name, OptionValue::Int(n.as_i64().ok_or("option value")?)),
            Value::Bool(b) => cfg.option(name, OptionValue::Int(*b as i64)),
            x => return Err(format!("engine option {name}: bad value {x}")),
        };
    }
    let mut specs = Vec::new();
    for g in sc["requests"].as_array().ok_or("requests")? {
        let g = g.as_object().ok_or("request")?;
        check_keys("request", g, REQUEST)?;
        let f = |k: &str| g.get(k).filter(|v| !v.is_null());
        for _ in 0..f("count").and_then(Value::as_u64).unwrap_or(1) {
            let i = specs.len();
            let url = format!("{}{}", mock.base, f("path").and_then(Value::as_str).ok_or("path")?);
            let mut req = Request::new(url).method(f("method").and_then(Value::as_str).unwrap_or("GET"));
            for (k, v) in f("headers").and_then(Value::as_object).into_iter().flatten() {
                req = req.header(k, &expand(v.as_str().ok_or("header value")?, i, run_token));
            }
            let mut last_user = None;
            if let Some(b) = f("body") {
                let body = expand_json(b, i, run_token);
                last_user = body["messages"]
                    .as_array()
                    .and_then(|m| m.iter().rev().find(|x| x["role"] == "user"))
                    .and_then(|x| x["content"].as_str())
                    .map(str::to_owned);
                req = req.json_value(&body);
            }
            if let Some(t) = f("timeout_s") {
                req = req.timeout(Duration::from_secs_f64(t.as_f64().unwrap()));
            }
            if let Some(t) = f("deadline_s") {
                req = req.deadline(Duration::from_secs_f64(t.as_f64().unwrap()));
            }
            if let Some(n) = f("max_retries") {
                req = req.max_retries(n.as_u64().unwrap() as u32);
            }
            if let Some(k) = f("limit_key") {
                req = req.limit_key(&expand(k.as_str().unwrap(), i, run_token));
            }
            req = req.response_headers(f("response_headers").and_then(Value::as_bool).unwrap_or(false));
            let stream = f("stream").and_then(Value::as_bool).unwrap_or(false);
            let no_stream_body = f("no_stream_body").and_then(Value::as_bool).unwrap_or(false);
            if no_stream_body && !stream {
                return Err("no_stream_body on a request that is not streamed".into());
            }
            req = req.no_stream_body(no_stream_body);
            specs.push(Spec {
                req,
                stream,
                cancel_after: f("cancel_after_s").map(|t| Duration::from_secs_f64(t.as_f64().unwrap())),
                last_user,
            });
        }
    }
    Ok((cfg, specs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_scenarios() {
    let path = scenarios_path();
    if !path.exists() {
        // The suite lands on main from the Go helper's branch; until then
        // this branch has no file to run (said loudly, not silently passed).
        eprintln!("conformance: {} missing: SKIPPED (set BARRAGE_CONFORMANCE)", path.display());
        return;
    }
    let doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .expect("scenarios JSON");
    let top = doc.as_object().unwrap();
    check_keys("top level", top, TOP).unwrap();
    assert_eq!(top["version"], 1, "unknown scenarios version");
    let mock = Mock::start(&[]);
    let run_token = format!("rs{}-{}", std::process::id(), std::time::UNIX_EPOCH.elapsed().unwrap().as_millis());
    let mut failures = Vec::new();
    let scenarios = top["scenarios"].as_array().unwrap();
    assert!(!scenarios.is_empty());
    for sc in scenarios {
        let sc = sc.as_object().unwrap();
        let name = sc["name"].as_str().unwrap_or("?").to_owned();
        let result = async {
            check_keys("scenario", sc, SCENARIO)?;
            let expect = sc["expect"].as_object().ok_or("expect")?;
            check_keys("expect", expect, EXPECT)?;
            let (cfg, specs) = build(sc, &mock, &run_token)?;
            let last_user: Vec<Option<String>> = specs.iter().map(|s| s.last_user.clone()).collect();
            let engine = AsyncEngine::new(cfg).map_err(|e| format!("engine: {e}"))?;
            let overall = sc.get("overall_timeout_s").and_then(Value::as_f64).map(Duration::from_secs_f64);
            let ran = run_scenario(&engine, specs, sc["run"].as_str().ok_or("run")?, overall).await?;
            check(expect, &ran, &last_user)
        }
        .await;
        match result {
            Ok(()) => eprintln!("conformance {name}: ok"),
            Err(e) => {
                eprintln!("conformance {name}: FAILED: {e}");
                failures.push(format!("{name}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} scenarios failed:\n{}", failures.len(), scenarios.len(), failures.join("\n"));
}
