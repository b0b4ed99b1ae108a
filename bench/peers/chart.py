"""chart.py: the PNG of bench/peers/compare, drawn by gnuplot: per scenario,
one bar per tool for CPU per request (log scale: the tools span two orders
of magnitude), throughput and max RSS (log scale)."""

import os
import shutil
import subprocess

from report import TOOL_LABEL, TOOL_ORDER, headline_cpu

# One colour per tool, barrage's the strongest, the same in every panel.
COLOURS = {"barrage": "#c0392b", "curl": "#2e86c1", "h2load": "#7d3c98", "wrk": "#229954",
           "aiohttp": "#b7950b"}


def _data(path, scenarios_out, tools, value):
    with open(path, "w") as f:
        f.write("scenario " + " ".join(f'"{TOOL_LABEL[t]}"' for t in tools) + "\n")
        for s in scenarios_out:
            row = []
            for t in tools:
                m = s["tools"].get(t, {}).get("median")
                v = value(m) if m else None
                row.append("NaN" if v is None else f"{v:.6g}")
            f.write(f'"({s["id"]})" ' + " ".join(row) + "\n")


def draw(scenarios_out, reps, png, tmp):
    """Writes `png`; returns None, or why there is no chart."""
    if shutil.which("gnuplot") is None:
        return "gnuplot is not installed (gnuplot-nox)"
    tools = [t for t in TOOL_ORDER if any(t in s["tools"] and "median" in s["tools"][t]
                                          for s in scenarios_out)]
    files = {}
    for key, value in (("cpu", headline_cpu), ("rps", lambda m: m["req_per_s"]),
                       ("rss", lambda m: m["maxrss_mb"])):
        files[key] = os.path.join(tmp, f"{key}.dat")
        _data(files[key], scenarios_out, tools, value)
    n = len(tools) + 1
    legend = "   ".join(f"({s['id']}) {s['title']}" for s in scenarios_out).replace('"', "'")
    colours = " ".join(COLOURS[t] for t in tools)

    def panel(key, title, log, key_line="unset key"):
        return (f"set title \"{title}\"\n{key_line}\n"
                + ("set logscale y\nset yrange [1:*]\n" if log else "unset logscale y\nset yrange [0:*]\n")
                + f"plot for [i=2:{n}] '{files[key]}' using i:xtic(1) title columnheader(i) "
                  f"lc rgb word(colours, i-1)\n")

    script = f"""set terminal pngcairo size 1500,540 font "sans,10"
set output '{png}'
colours = "{colours}"
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set grid ytics
set xtics nomirror font "sans,9"
set multiplot layout 1,3 margins 0.05,0.98,0.08,0.85 spacing 0.06 title "barrage and its peers against one nginx (client pinned to CPU 0, nginx to CPU 1), medians of {reps}\\n{legend}"
{panel("cpu", "client CPU µs per request (lower is better; d: per handshake, net of start-up)", True,
       'set key top left font "sans,9"')}
{panel("rps", "requests per second (higher is better)", False)}
{panel("rss", "client max RSS, MB (lower is better)", True)}
unset multiplot
"""
    p = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    return None if p.returncode == 0 else f"gnuplot failed: {p.stderr.strip()}"
