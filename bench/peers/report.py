"""report.py: turns the runs of bench/peers/compare into medians, the
per-scenario tables, the barrage / peer ratio tables and compare.json.

Per run: CPU per request = (user + sys) / requests that succeeded;
throughput = succeeded requests / wall time from fork to exit; RSS = ru_maxrss.
In the handshake scenario the CPU per request is also given net of the
tool's start-up (a one-request run in the same mode): (CPU - start-up CPU) /
(requests - 1), which is what "CPU per full handshake" means; that net
figure is the one the ratio table and the chart use there."""

import statistics

TOOL_ORDER = ("barrage", "curl", "h2load", "wrk", "aiohttp")
TOOL_LABEL = {"barrage": "barrage", "curl": "libcurl multi", "h2load": "h2load (h1)",
              "wrk": "wrk", "aiohttp": "aiohttp"}
METRICS = ("cpu_us_per_req", "req_per_s", "maxrss_mb")


def derive(run):
    """Adds the per-run figures to a run record (a dict) and returns it."""
    ok = run["ok"]
    cpu = run["user_us"] + run["sys_us"]
    run["cpu_us"] = cpu
    run["cpu_us_per_req"] = cpu / ok if ok > 0 else None
    run["req_per_s"] = ok / run["wall_s"] if ok > 0 and run["wall_s"] > 0 else None
    run["maxrss_mb"] = run["maxrss_kb"] / 1024.0
    # What the client made nginx spend: fewer, fuller reads and writes cost less.
    run["nginx_cpu_us_per_req"] = run["nginx_cpu_s"] * 1e6 / ok if ok > 0 else None
    st = run.get("startup")
    if st and ok > 1:
        run["net_cpu_us_per_req"] = (cpu - st["cpu_us"]) / (ok - 1)
    return run


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def medians(runs):
    keys = ("cpu_us_per_req", "net_cpu_us_per_req", "req_per_s", "maxrss_mb", "ok", "wall_s",
            "nginx_requests", "nginx_conns", "startup_cpu_ms", "nginx_cpu_us_per_req")
    flat = [dict(r, nginx_requests=r["nginx"]["requests"], nginx_conns=r["nginx"]["conns"],
                 startup_cpu_ms=r["startup"]["cpu_us"] / 1000 if r.get("startup") else None)
            for r in runs]
    out = {k: _median([r.get(k) for r in flat]) for k in keys}
    out["errors"] = sum(r["errors"] for r in runs)  # a sum: one bad run must not hide
    return out


def headline_cpu(med):
    """The CPU figure compared across tools: net of start-up where there is one."""
    net = med.get("net_cpu_us_per_req")
    return net if net is not None else med.get("cpu_us_per_req")


def ratios(scenarios_out):
    """{scenario id: {peer: {cpu_per_req, throughput, rss}}}: barrage median / peer median."""
    out = {}
    for s in scenarios_out:
        b = s["tools"].get("barrage", {}).get("median")
        if not b:
            continue
        row = {}
        for peer, t in s["tools"].items():
            m = t.get("median")
            if peer == "barrage" or not m:
                continue

            def div(x, y):
                return x / y if x is not None and y else None
            row[peer] = {"cpu_per_req": div(headline_cpu(b), headline_cpu(m)),
                         "throughput": div(b["req_per_s"], m["req_per_s"]),
                         "rss": div(b["maxrss_mb"], m["maxrss_mb"])}
        out[s["id"]] = row
    return out


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def scenario_table(s, reps):
    hs = s["handshakes"]
    unit = "handshake" if hs else "req"
    head = (f"({s['id']}) {s['title']}: {s['path']}, medians of {reps} run(s)\n"
            f"{'tool':<14}{'requests':>10}{'errors*':>8}{'CPU µs/' + unit:>17}"
            + (f"{'net µs/hs':>11}{'start-up ms':>13}" if hs else "")
            + f"{'req/s':>10}{'max RSS MB':>12}{'nginx reqs':>12}{'nginx conns':>13}"
            f"{'nginx µs/req':>14}")
    lines = [head]
    foot = ("* errors: the sum over all runs; every other column is a median. nginx reqs and\n"
            "  conns are nginx's own counts; nginx µs/req is the CPU nginx spent per request")
    for tool in TOOL_ORDER:
        t = s["tools"].get(tool)
        if t is None:
            continue
        if "skipped" in t:
            lines.append(f"{TOOL_LABEL[tool]:<14}skipped: {t['skipped']}")
            continue
        m = t["median"]
        lines.append(f"{TOOL_LABEL[tool]:<14}{fmt(m['ok'], ',.0f'):>10}{fmt(m['errors'], ',.0f'):>8}"
                     f"{fmt(m['cpu_us_per_req'], ',.1f'):>17}"
                     + (f"{fmt(m['net_cpu_us_per_req'], ',.1f'):>11}{fmt(m['startup_cpu_ms'], ',.1f'):>13}"
                        if hs else "")
                     + f"{fmt(m['req_per_s'], ',.0f'):>10}{fmt(m['maxrss_mb'], ',.1f'):>12}"
                     f"{fmt(m['nginx_requests'], ',.0f'):>12}{fmt(m['nginx_conns'], ',.0f'):>13}"
                     f"{fmt(m['nginx_cpu_us_per_req'], ',.1f'):>14}")
    return "\n".join(lines + [foot])


def ratio_table(scenarios_out, rat):
    ids = [s["id"] for s in scenarios_out if s["id"] in rat]
    peers = [p for p in TOOL_ORDER if p != "barrage" and any(p in rat[i] for i in ids)]
    what = (("cpu_per_req", "CPU per request (d: per handshake, net of start-up); < 1: barrage uses less"),
            ("throughput", "throughput (requests/s); > 1: barrage completes more per second"),
            ("rss", "max RSS; < 1: barrage uses less memory"))
    lines = ["barrage / peer, median over median"]
    for key, title in what:
        lines.append(f"\n{title}\n{'vs':<14}" + "".join(f"{'(' + i + ')':>9}" for i in ids))
        for p in peers:
            cells = [rat[i].get(p, {}).get(key) for i in ids]
            lines.append(f"{TOOL_LABEL[p]:<14}" + "".join(f"{fmt(c, '.2f'):>9}" for c in cells))
    return "\n".join(lines)
