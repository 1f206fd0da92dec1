#!/usr/bin/env python3
"""Renders evgate's Grafana dashboards from a live Prometheus into PNGs.

Grafana is not installable on the build machine, so this draws the panels of
dashboards/grafana/dashboards/*.json itself: it runs every panel's queries
against Prometheus (query_range for time series, an instant query for stats,
bar gauges and tables), writes one static HTML page per dashboard that plots
them with uPlot (npm, pinned in tools/packages.txt) in the dashboard's grid
layout, and screenshots each page with headless Chromium (Debian chromium).

  render.py PROMETHEUS_URL OUT_DIR [--minutes N] [--evse wb1]

tools/dashboards/render.sh starts the demo and a Prometheus and calls this.
"""
import argparse
import html
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "dashboards"))
import check_dashboards  # noqa: E402

UPLOT = os.path.join(ROOT, "node_modules", "uplot", "dist")
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]
CELL = 44  # px per grid row (Grafana's is 30 + margins)
WIDTH = 1600


def api(prom, path, params):
    url = f"{prom}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=20) as r:
        body = json.loads(r.read())
    if body.get("status") != "success":
        raise RuntimeError(f"{path} {params}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    out = fmt or "{{__name__}}"
    for k, v in labels.items():
        out = out.replace("{{" + k + "}}", v)
    while "{{" in out:  # a label the series does not have
        a = out.index("{{")
        b = out.index("}}", a) + 2
        out = out[:a] + out[b:]
    return out.strip()


def fmt_value(v, unit):
    suffix = {"amp": " A", "watt": " W", "kwatth": " kWh", "s": " s", "bytes": " B",
              "percent": " %", "reqps": " req/s", "ops": " /s"}.get(unit or "", "")
    if unit == "watt" and abs(v) >= 1000:
        return f"{v / 1000:.1f} kW"
    if unit == "bytes" and v >= 1 << 20:
        return f"{v / (1 << 20):.1f} MiB"
    if unit == "s" and 0 < abs(v) < 0.1:
        return f"{v * 1000:.2f} ms"
    if float(v).is_integer() or abs(v) >= 1000:
        return f"{v:.0f}" + suffix
    return f"{v:.1f}" + suffix


def mapped(v, defaults):
    for m in defaults.get("mappings", []):
        opt = m.get("options", {}).get(str(int(v)) if float(v).is_integer() else str(v))
        if opt:
            return opt.get("text"), opt.get("color")
    return None, None


def panel_data(prom, panel, start, end, step):
    series = []
    for t in panel["targets"]:
        expr = check_dashboards.substitute(t["expr"])
        if panel["type"] == "timeseries":
            for r in api(prom, "query_range", {"query": expr, "start": start, "end": end, "step": step}):
                series.append({"name": legend(t.get("legendFormat"), r["metric"]) or "value",
                               "points": [[float(ts), float(v)] for ts, v in r["values"]]})
        else:
            for r in api(prom, "query", {"query": expr, "time": end}):
                series.append({"name": legend(t.get("legendFormat"), r["metric"]),
                               "value": float(r["value"][1])})
    return series


def render_static(panel, series):
    d = panel["fieldConfig"]["defaults"]
    unit = d.get("unit")
    if not series:
        return '<div class="empty">no data</div>'
    if panel["type"] == "bargauge":
        top = max([abs(s["value"]) for s in series] + [1e-9])
        steps = d.get("thresholds", {}).get("steps", [])
        rows = []
        for s in series:
            color = COLORS[0]
            for st in steps:
                if st["value"] is None or s["value"] >= st["value"]:
                    color = st["color"]
            w = max(0.0, s["value"]) / top * 100
            rows.append(f'<div class="bar"><span class="bl">{html.escape(s["name"])}</span>'
                        f'<span class="bt"><span class="bf" style="width:{w:.1f}%;background:{color}">'
                        f'</span></span><span class="bv">{fmt_value(s["value"], unit)}</span></div>')
        return "".join(rows)
    if panel["type"] == "table":
        rows = "".join(f"<tr><td>{html.escape(s['name'])}</td><td>{fmt_value(s['value'], unit)}</td></tr>"
                       for s in series)
        return f"<table>{rows}</table>"
    cells = []
    for s in series:
        text, color = mapped(s["value"], d)
        steps = d.get("thresholds", {}).get("steps", [])
        if color is None and steps:
            for st in steps:
                if st["value"] is None or s["value"] >= st["value"]:
                    color = st["color"]
        text = text or fmt_value(s["value"], unit)
        mode = panel.get("options", {}).get("textMode", "auto")
        if mode == "name":  # Grafana: the series' name instead of its value
            text, name = s["name"], ""
        else:
            show = s["name"] and (mode == "value_and_name" or (mode == "auto" and len(series) > 1))
            name = f'<div class="sn">{html.escape(s["name"])}</div>' if show else ""
        style = f"background:{color}" if color else ""
        cells.append(f'<div class="stat" style="{style}">{name}<div class="sv">{html.escape(text)}</div></div>')
    return f'<div class="stats">{"".join(cells)}</div>'


def page(dashboard, panels, minutes):
    with open(os.path.join(UPLOT, "uPlot.iife.min.js"), encoding="utf-8") as f:
        js = f.read()
    with open(os.path.join(UPLOT, "uPlot.min.css"), encoding="utf-8") as f:
        css = f.read()
    col = WIDTH / 24
    blocks, charts = [], []
    height = 0
    for i, (p, series) in enumerate(panels):
        g = p["gridPos"]
        x, y, w, h = g["x"] * col, g["y"] * CELL, g["w"] * col - 8, g["h"] * CELL - 8
        height = max(height, y + h + 8)
        body = f'<div id="c{i}"></div>' if p["type"] == "timeseries" else render_static(p, series)
        blocks.append(f'<div class="panel" style="left:{x:.0f}px;top:{y:.0f}px;width:{w:.0f}px;'
                      f'height:{h:.0f}px"><div class="title">{html.escape(p["title"])}</div>{body}</div>')
        if p["type"] == "timeseries":
            charts.append({"id": f"c{i}", "w": int(w) - 12, "h": int(h) - 70,
                           "unit": p["fieldConfig"]["defaults"].get("unit", ""), "series": series})
    title = html.escape(f'{dashboard["title"]} — live demo, last {minutes} min')
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>{css}
body{{margin:0;background:#111217;color:#ccccdc;font:13px sans-serif;width:{WIDTH}px}}
h1{{font-size:17px;margin:10px 12px}}
#grid{{position:relative;height:{height}px;margin:0 4px}}
.panel{{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:3px;overflow:hidden;padding:6px;box-sizing:border-box}}
.title{{font-weight:600;margin-bottom:6px}}
.stats{{display:flex;flex-wrap:wrap;gap:4px;height:calc(100% - 22px)}}
.stat{{flex:1;min-width:70px;display:flex;flex-direction:column;justify-content:center;align-items:center;border-radius:2px;background:#22252b}}
.sv{{font-size:24px;font-weight:600;color:#fff}} .sn{{font-size:11px;color:#eee}}
.bar{{display:flex;align-items:center;margin:2px 0}} .bl{{width:150px;font-size:11px}}
.bt{{flex:1;height:12px;background:#22252b;margin:0 6px}} .bf{{display:block;height:100%}} .bv{{width:64px;text-align:right;font-size:11px}}
table{{width:100%;border-collapse:collapse}} td{{border-bottom:1px solid #2c3235;padding:3px}}
.empty{{color:#888;padding:20px;text-align:center}}
.u-legend{{font-size:11px;color:#ccccdc}} .u-legend th{{font-weight:normal}}
</style><script>{js}</script></head><body><h1>{title}</h1><div id="grid">{"".join(blocks)}</div>
<script>
const COLORS = {json.dumps(COLORS)};
function fmt(v, unit) {{
  if (v == null) return "";
  const a = Math.abs(v);
  if (unit === "s") return a === 0 ? "0" : a < 0.001 ? (v * 1e6).toFixed(0) + " µs" : a < 1 ? (v * 1e3).toFixed(1) + " ms" : v.toFixed(1) + " s";
  if (unit === "bytes") return (v / 1048576).toFixed(1) + " MiB";
  if (unit === "watt") return a >= 1000 ? (v / 1000).toFixed(1) + " kW" : v.toFixed(0) + " W";
  const suffix = {{amp: " A", kwatth: " kWh", percent: " %", reqps: "/s", ops: "/s"}}[unit] || "";
  return (Number.isInteger(v) ? v.toFixed(0) : a < 10 ? v.toFixed(2) : v.toFixed(1)) + suffix;
}}
const charts = {json.dumps(charts)};
for (const c of charts) {{
  const xs = [...new Set(c.series.flatMap(s => s.points.map(p => p[0])))].sort((a, b) => a - b);
  const data = [xs].concat(c.series.map(s => {{
    const m = new Map(s.points); return xs.map(x => m.has(x) ? m.get(x) : null); }}));
  const opts = {{width: c.w, height: c.h, legend: {{show: true}},
    axes: [{{stroke: "#ccccdc", grid: {{stroke: "#2c3235"}}}},
           {{stroke: "#ccccdc", grid: {{stroke: "#2c3235"}}, size: 84, values: (u, ticks) => ticks.map(v => fmt(v, c.unit))}}],
    series: [{{}}].concat(c.series.map((s, i) => ({{label: s.name, stroke: COLORS[i % COLORS.length], width: 1.5}})))}};
  new uPlot(opts, data, document.getElementById(c.id));
}}
document.title = "rendered";
</script></body></html>"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prometheus")
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=3)
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)  # Chromium resolves a relative path elsewhere
    os.makedirs(args.out, exist_ok=True)
    end = time.time()
    start = end - args.minutes * 60
    step = max(1, int(args.minutes * 60 / 300))
    for name, d in check_dashboards.dashboards(os.path.join(ROOT, "dashboards")):
        panels = [(p, panel_data(args.prometheus, p, start, end, step)) for p in d["panels"]]
        base = os.path.join(args.out, name.replace(".json", ""))
        with open(base + ".html", "w", encoding="utf-8") as f:
            f.write(page(d, panels, args.minutes))
        height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in d["panels"]) * CELL + 60
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--window-size={WIDTH},{height}", "--virtual-time-budget=5000",
                        f"--screenshot={base}.png", f"file://{base}.html"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.remove(base + ".html")
        print(f"{base}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
