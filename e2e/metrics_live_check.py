#!/usr/bin/env python3
"""The live half of //e2e:metrics_live_test: talks to the real Prometheus that
scrapes the demo's metrics exporter.

  metrics_live_check.py scrape METRICS_URL DASHBOARDS_DIR [LATER...]
      the exporter's /metrics has every catalogue metric (docs/metrics.md) but
      the LATER ones (served only in a state the test reaches later), and
      nothing else.
  metrics_live_check.py serves METRICS_URL DASHBOARDS_DIR NAME...
      the exporter's /metrics has a sample of each named metric.
  metrics_live_check.py queries PROMETHEUS_URL DASHBOARDS_DIR
      every panel, variable and alert query of dashboards/ parses and runs;
      panels and variables return data; every metric an alert reads has data.
  metrics_live_check.py alerts PROMETHEUS_URL NAME...
      each named alert is pending or firing.
Exit 0 when all hold; prints one FAIL line per problem.
"""
import json
import os
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(sys.argv[3] if len(sys.argv) > 3 else ".", ""))
import check_dashboards  # noqa: E402  (dashboards/check_dashboards.py)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def query(prom, expr):
    return json.loads(get(f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})))


def families_served(metrics_url):
    text = get(metrics_url)
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def scrape(metrics_url, root, later):
    families = families_served(metrics_url)
    problems = [f"catalogue metric {n} is not in the live scrape"
                for n in check_dashboards.catalogue(root) if n not in families and n not in later]
    problems += [f"{n} is not in the catalogue" for n in later
                 if n not in check_dashboards.catalogue(root)]
    problems += [f"live metric {n} is not in the catalogue"
                 for n in sorted(families) if n not in check_dashboards.catalogue(root)]
    return problems


def queries(prom, root):
    problems = []
    count = 0
    for kind, where, expr in check_dashboards.queries(root):
        count += 1
        try:
            r = query(prom, expr)
        except Exception as e:  # HTTP 400 on a parse error
            problems.append(f"{kind} {where}: {expr}: {e}")
            continue
        if r.get("status") != "success":
            problems.append(f"{kind} {where}: {expr}: {r.get('error')}")
            continue
        if kind in ("panel", "variable"):
            if not r["data"]["result"]:
                problems.append(f"{kind} {where}: no data: {expr}")
            continue
        # An alert's expression is empty while the site is healthy; what must
        # have data is every metric it watches.
        for name in check_dashboards.metric_names(expr):
            if not query(prom, f"count({name})")["data"]["result"]:
                problems.append(f"alert {where}: {name} has no data")
    print(f"{count} queries evaluated")
    return problems


def alerts(prom, names):
    active = {a["labels"]["alertname"]: a["state"]
              for a in json.loads(get(f"{prom}/api/v1/alerts"))["data"]["alerts"]}
    return [f"alert {n} is not pending or firing (active: {active})" for n in names
            if active.get(n) not in ("pending", "firing")]


def main(argv):
    mode = argv[1]
    if mode == "scrape":
        problems = scrape(argv[2], argv[3], argv[4:])
    elif mode == "serves":
        served = families_served(argv[2])
        problems = [f"{n} is not in the live scrape" for n in argv[4:] if n not in served]
    elif mode == "queries":
        problems = queries(argv[2], argv[3])
    elif mode == "alerts":
        problems = alerts(argv[2], argv[4:])
    else:
        print(__doc__)
        return 2
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
