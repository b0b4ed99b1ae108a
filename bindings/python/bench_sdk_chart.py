"""The PNG of bench_sdk.py --out, drawn by gnuplot (as bench/peers/chart.py
does): per latency, one bar per variant for client CPU per request (log
scale: the variants span two orders of magnitude), wall time and peak RSS;
and the same figures as a Markdown table (table())."""
import os
import shutil
import subprocess
import tempfile

LABELS = {"sdk_httpx": "openai SDK, default httpx client",
          "sdk_barrage": "openai SDK, barrage transport",
          "aiohttp": "aiohttp + semaphore",
          "barrage_client": "barrage.Client.gather"}
COLOURS = {"sdk_httpx": "#7d3c98", "sdk_barrage": "#c0392b", "aiohttp": "#b7950b",
           "barrage_client": "#e67e22"}
PATH_LABEL = {"/": "latency 0", "/sleep/50": "latency 50 ms"}


def _data(path, doc, kinds, key):
    paths = list(dict.fromkeys(r["path"] for r in doc["rows"]))
    by = {(r["path"], r["kind"]): r for r in doc["rows"]}
    with open(path, "w") as f:
        f.write("latency " + " ".join(f'"{LABELS[k]}"' for k in kinds) + "\n")
        for p in paths:
            vals = [f"{by[(p, k)][key]:.6g}" if (p, k) in by else "NaN" for k in kinds]
            f.write(f'"{PATH_LABEL.get(p, p)}" ' + " ".join(vals) + "\n")


def draw(doc, png):
    """Writes `png`; returns None, or why there is no chart."""
    if shutil.which("gnuplot") is None:
        return "gnuplot is not installed (gnuplot-nox)"
    kinds = [k for k in LABELS if any(r["kind"] == k for r in doc["rows"])]
    n = len(kinds) + 1
    colours = " ".join(COLOURS[k] for k in kinds)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for key in ("cpu_us_per_req", "wall_s", "peak_rss_mib"):
            files[key] = os.path.join(tmp, f"{key}.dat")
            _data(files[key], doc, kinds, key)

        def panel(key, title, log, key_line="unset key"):
            return (f"set title \"{title}\"\n{key_line}\n"
                    + ("set logscale y\nset yrange [10:*]\n" if log else
                       "unset logscale y\nset yrange [0:*]\n")
                    + f"plot for [i=2:{n}] '{files[key]}' using i:xtic(1) title columnheader(i) "
                      f"lc rgb word(colours, i-1)\n")

        title = (f"{doc['n']:,} chat completions, {doc['inflight']:,} in flight, against nginx "
                 f"(client on CPU {doc['client_cpu']}, nginx on CPU {doc['nginx_cpu']}), "
                 f"{doc['when']}, load {doc['loadavg_before']} before")
        script = f"""set terminal pngcairo size 1500,540 font "sans,10"
set output '{png}'
colours = "{colours}"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set grid ytics
set multiplot layout 1,3 margins 0.05,0.98,0.08,0.85 spacing 0.06 title "{title}"
{panel("cpu_us_per_req", "client CPU µs per request (log; lower is better)", True,
       'set key top right font "sans,9"')}
{panel("wall_s", "wall time, s (lower is better)", False)}
{panel("peak_rss_mib", "client peak RSS, MiB (lower is better)", False)}
unset multiplot
"""
        p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    return None if p.returncode == 0 else f"gnuplot failed: {p.stderr.strip()}"


def table(doc):
    """The rows and ratios of bench_sdk.py's document as Markdown."""
    out = ["| latency | variant | wall s | req/s | client CPU µs/req | peak RSS MiB |",
           "|---|---|---|---|---|---|"]
    for r in doc["rows"]:
        out.append(f"| {PATH_LABEL.get(r['path'], r['path'])[8:]} | {LABELS[r['kind']]} | "
                   f"{r['wall_s']:.2f} | {r['rps']:,.0f} | {r['cpu_us_per_req']:,.0f} | "
                   f"{r['peak_rss_mib']:.1f} |")
    for f in doc.get("failures", []):
        out.append(f"| {PATH_LABEL.get(f['path'], f['path'])[8:]} | {LABELS[f['kind']]} | "
                   f"failed: {f['error']} | | | |")
    out += ["", "| latency | ratio | CPU/request | wall | peak RSS |", "|---|---|---|---|---|"]
    for x in doc["ratios"]:
        a, b = x["pair"].split("/")
        out.append(f"| {PATH_LABEL.get(x['path'], x['path'])[8:]} | {LABELS[a]} / {LABELS[b]} | "
                   f"{x['cpu']:.2f} | {x['wall']:.2f} | {x['rss']:.2f} |")
    return "\n".join(out)
