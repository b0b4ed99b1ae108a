"""Runner for the shared conformance suite (bindings/conformance/scenarios.json,
format in its README): every scenario through the idiomatic Python API
(Client.call / stream / gather / as_completed) against one mock server."""
import asyncio
import json
import os
import time

import pytest

import barrage
from barrage.client import _DEPRECATED, SECONDS

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = os.environ.get("BARRAGE_CONFORMANCE_SCENARIOS") or os.path.join(
    HERE, "..", "..", "conformance", "scenarios.json")
TOP_KEYS = {"version", "scenarios"}
SCENARIO_KEYS = {"name", "doc", "engine", "requests", "run", "overall_timeout_s", "expect"}
REQUEST_KEYS = {"count", "method", "path", "headers", "body", "stream", "timeout_s", "deadline_s",
                "max_retries", "limit_key", "cancel_after_s", "response_headers", "no_stream_body"}
EXPECT_KEYS = {"status", "http_status", "attempts", "body_json_path", "stream_text_min_events",
               "stream_text", "order", "max_elapsed_s", "min_elapsed_s", "count_by_status",
               "first_error", "retry_after_s", "response_headers", "body_empty"}
RUN_TOKEN = f"{os.getpid()}-{time.time_ns()}"


def _load():
    if not os.path.exists(SCENARIOS):
        return None
    with open(SCENARIOS) as f:
        return json.load(f)


DATA = _load()


def _check_keys(obj, allowed, where):
    unknown = set(obj) - allowed
    assert not unknown, f"{where}: unknown keys {sorted(unknown)} (runner out of date)"


def _template(v, i):
    if isinstance(v, str):
        return (v.replace("{i}", str(i)).replace("{run}", RUN_TOKEN)
                .replace("{i_mod7_x10}", str((i % 7) * 10)))
    if isinstance(v, dict):
        return {k: _template(x, i) for k, x in v.items()}
    if isinstance(v, list):
        return [_template(x, i) for x in v]
    return v


def _options(engine):
    """Option NAMEs of the header as Client keywords, durations in seconds."""
    out = {}
    for name, value in engine.items():
        key = name.lower()
        if key in _DEPRECATED:
            new = _DEPRECATED[key]
            out[new] = value / SECONDS[new][1]
        elif key in barrage.OPTIONS:
            out[key] = value
        else:
            raise AssertionError(f"engine option {name} is not exposed by the Python binding")
    return out


def _expand(requests):
    out = []
    for g in requests:
        _check_keys(g, REQUEST_KEYS, "request")
        assert not g.get("no_stream_body") or g.get("stream"), "no_stream_body without stream"
        for _ in range(g["count"]):
            i = len(out)
            headers = _template(g.get("headers") or {}, i)
            body = _template(g.get("body"), i)
            if body is not None:
                headers.setdefault("content-type", "application/json")
            out.append(dict(g, headers=headers, body=body, i=i))
    return out


def _outcome_of_error(exc, synthetic=False):
    if isinstance(exc, barrage.BarrageError):
        return {"status": exc.name[4:], "http_status": exc.http_status or None,
                "attempts": None if synthetic else exc.attempts, "body": exc.body,
                "retry_after": exc.retry_after, "headers": exc.headers}
    raise exc


def _outcome_of_response(resp, events, stream, headers=None):
    return {"status": "OK", "http_status": resp.status_code, "attempts": resp.attempts,
            "body": resp.content, "events": events, "stream": stream,
            "retry_after": resp.retry_after,
            "headers": resp.headers if headers is None else headers}


async def _one(c, mock, r):
    """Runs one request; returns its outcome dict (never raises for engine errors)."""
    kw = dict(method=r["method"], headers=r["headers"], timeout=r.get("timeout_s"),
              deadline=r.get("deadline_s"),
              max_retries=-1 if r.get("max_retries") is None else r["max_retries"],
              limit_key=r.get("limit_key"), response_headers=bool(r.get("response_headers")))
    url = mock.url + r["path"]
    body = r["body"]
    events = []
    first_headers = None  # a stream's headers as known with its first event
    try:
        if r.get("stream"):
            s = c.stream(url, body, no_stream_body=bool(r.get("no_stream_body")), **kw)
            try:
                async with s:
                    async for ev in s:
                        if not events:
                            first_headers = s.headers
                        events.append(ev.content)
            except barrage.BarrageError as exc:
                o = _outcome_of_error(exc)
                o["events"] = events
                if first_headers is not None:
                    o["headers"] = first_headers
                return o
            resp = s.response
        else:
            resp = await c.call(url, body, **kw)
    except barrage.BarrageError as exc:
        o = _outcome_of_error(exc)
        o["events"] = events
        return o
    return _outcome_of_response(resp, events, bool(r.get("stream")), first_headers)


async def _with_cancel(c, mock, r):
    task = asyncio.ensure_future(_one(c, mock, r))
    if r.get("cancel_after_s") is not None:
        asyncio.get_running_loop().call_later(r["cancel_after_s"], task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled() and not asyncio.current_task().cancelling():
            return {"status": "E_CANCELLED", "http_status": None, "attempts": None,
                    "body": b"", "events": []}
        raise


async def _run(sc, mock):
    reqs = _expand(sc["requests"])
    opts = _options(sc["engine"] or {})
    arrival, first_error = [], None
    async with barrage.Client(base_url=mock.url, ca_file=mock.ca_file, **opts) as c:
        t0 = time.monotonic()
        if sc["run"] == "all":
            res = await c.gather(*[_with_cancel(c, mock, r) for r in reqs],
                                 timeout=sc.get("overall_timeout_s"), return_exceptions=True)
            outcomes = [o if isinstance(o, dict) else _outcome_of_error(o, synthetic=True)
                        for o in res]
        elif sc["run"] == "as_completed":
            assert not any(r.get("stream") or r.get("cancel_after_s") for r in reqs)
            outcomes = [None] * len(reqs)
            breqs = [barrage.Request(mock.url + r["path"], r["body"], method=r["method"],
                                     headers=r["headers"], timeout=r.get("timeout_s"),
                                     deadline=r.get("deadline_s"), limit_key=r.get("limit_key"),
                                     max_retries=-1 if r.get("max_retries") is None
                                     else r["max_retries"],
                                     response_headers=bool(r.get("response_headers")))
                     for r in reqs]
            async for done in c.as_completed(breqs):
                arrival.append(done.index)
                if done.error is not None:
                    outcomes[done.index] = _outcome_of_error(done.error)
                else:
                    outcomes[done.index] = _outcome_of_response(done.response, [], False)
        elif sc["run"] == "fail_fast":
            breqs = [barrage.Request(mock.url + r["path"], r["body"], method=r["method"],
                                     headers=r["headers"], timeout=r.get("timeout_s"),
                                     deadline=r.get("deadline_s"),
                                     response_headers=bool(r.get("response_headers")))
                     for r in reqs]
            outcomes = None
            try:
                await c.gather(*breqs, timeout=sc.get("overall_timeout_s"))
            except barrage.BarrageError as exc:
                first_error = exc.name[4:]
        else:
            raise AssertionError(f"unknown run {sc['run']!r}")
        elapsed = time.monotonic() - t0
    return reqs, outcomes, arrival, first_error, elapsed


def _json_path(doc, path):
    for part in path.split("."):
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def _check(sc, reqs, outcomes, arrival, first_error, elapsed):
    ex = sc["expect"]
    _check_keys(ex, EXPECT_KEYS, "expect")
    name = sc["name"]
    if ex.get("max_elapsed_s") is not None:
        assert elapsed <= ex["max_elapsed_s"], (name, elapsed)
    if ex.get("min_elapsed_s") is not None:
        assert elapsed >= ex["min_elapsed_s"], (name, elapsed)
    if ex.get("first_error") is not None:
        assert sc["run"] == "fail_fast" and first_error == ex["first_error"], (name, first_error)
    if outcomes is None:
        return
    for r, o in zip(reqs, outcomes):
        if ex.get("status") is not None:
            assert o["status"] == ex["status"], (name, r["i"], o)
        if ex.get("http_status") is not None and o["status"] in ("OK", "E_HTTP"):
            assert o["http_status"] == ex["http_status"], (name, r["i"], o)
        if ex.get("attempts") is not None and o["attempts"] is not None:
            assert o["attempts"] == ex["attempts"], (name, r["i"], o)
        answered = o["status"] in ("OK", "E_HTTP")
        if ex.get("retry_after_s") is not None and answered:
            want = None if ex["retry_after_s"] == -1 else ex["retry_after_s"]
            assert o["retry_after"] == want, (name, r["i"], o["retry_after"])
        if ex.get("body_empty") is not None and answered:
            # a stream's final body, an HTTPError's body
            assert (o["body"] == b"") == ex["body_empty"], (name, r["i"], o["body"][:80])
        if ex.get("response_headers") is not None and answered:
            h = o["headers"]
            for hname, want in ex["response_headers"].items():
                if want is True:
                    assert hname in h, (name, r["i"], hname, h)
                elif want is False:
                    assert hname not in h, (name, r["i"], hname, h)
                else:
                    assert h.get(hname) == want, (name, r["i"], hname, h)
        texts = [t for t in o.get("events", []) if t]
        if ex.get("stream_text_min_events") is not None and r.get("stream"):
            assert len(texts) >= ex["stream_text_min_events"], (name, r["i"], texts)
        if ex.get("stream_text") is not None and r.get("stream") and o["status"] == "OK":
            assert "".join(texts) == ex["stream_text"], (name, texts)
        if o["status"] == "OK" and not r.get("stream"):
            doc = None
            if ex.get("body_json_path") is not None:
                doc = json.loads(o["body"])
                for path, want in ex["body_json_path"].items():
                    assert _json_path(doc, path) == want, (name, path)
            if ex.get("order") in ("submission", "any") and o["body"][:1] == b"{":
                doc = doc or json.loads(o["body"])
                msgs = (r["body"] or {}).get("messages") or []
                if doc.get("object") == "chat.completion" and msgs:
                    content = doc["choices"][0]["message"]["content"]
                    assert content.endswith(": " + msgs[-1]["content"]), (name, r["i"], content)
    if isinstance(ex.get("order"), list):
        assert sc["run"] == "as_completed" and arrival == ex["order"], (name, arrival)
    if ex.get("count_by_status") is not None:
        counts = {}
        for o in outcomes:
            counts[o["status"]] = counts.get(o["status"], 0) + 1
        assert counts == ex["count_by_status"], (name, counts)


if DATA is None:
    _IDS = []
else:
    _check_keys(DATA, TOP_KEYS, "top level")
    assert DATA["version"] == 1, f"unknown scenarios version {DATA['version']}"
    _IDS = [s["name"] for s in DATA["scenarios"]]


@pytest.mark.parametrize("name", _IDS or ["<no scenarios.json>"])
async def test_scenario(mock, name):
    if DATA is None:
        pytest.skip(f"{SCENARIOS} not present yet (it comes from the Go helper via main)")
    sc = next(s for s in DATA["scenarios"] if s["name"] == name)
    _check_keys(sc, SCENARIO_KEYS, name)
    _check(sc, *await _run(sc, mock))
