#!/usr/bin/env python3
"""Static checks of dashboards/ (run by //dashboards:dashboards_test) and the
query list the live test (//e2e:metrics_live_test) evaluates.

  check_dashboards.py lint DASHBOARDS_DIR
      every dashboard JSON: unique dashboard uids and titles, unique panel ids,
      every panel and target on the provisioned datasource uid, a relative
      time range, no per-panel time override; every metric a panel or an alert
      rule uses is in docs/metrics.md.
  check_dashboards.py queries DASHBOARDS_DIR
      prints one line per query: KIND<TAB>WHERE<TAB>EXPR, with Grafana's
      variables replaced by values Prometheus accepts ($__rate_interval -> 1m,
      $evse -> EVGATE_EVSE from the environment, default wb1) and each query
      variable's label_values(M, L) as `group by (L) (M)`.
"""
import json
import os
import re
import sys

import yaml

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# PromQL words that are not metric names.
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "on", "ignoring", "group_left",
    "group_right", "rate", "increase", "irate", "deriv", "histogram_quantile", "label_values",
    "vector", "or", "and", "unless", "le", "bool", "offset", "abs", "clamp_min", "group",
}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def provisioned_uid(root):
    data = load_yaml(os.path.join(root, "grafana", "provisioning", "datasources", "evgate.yaml"))
    return data["datasources"][0]["uid"]


def dashboards(root):
    folder = os.path.join(root, "grafana", "dashboards")
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                yield name, json.load(f)


def rules(root):
    data = load_yaml(os.path.join(root, "prometheus", "alerts.yml"))
    for group in data["groups"]:
        for rule in group["rules"]:
            yield rule


def substitute(expr):
    return (expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
            .replace("$evse", os.environ.get("EVGATE_EVSE", "wb1")))


def queries(root):
    """(kind, where, expr) for every panel target and every alert rule."""
    for name, d in dashboards(root):
        for p in d["panels"]:
            for t in p["targets"]:
                yield "panel", f"{name} #{p['id']} {p['title']} {t['refId']}", substitute(t["expr"])
        for v in d.get("templating", {}).get("list", []):
            q = v.get("query", {})
            if isinstance(q, dict) and "query" in q:
                # Grafana's label_values(METRIC, LABEL) as the PromQL that has
                # data exactly when the variable has values.
                m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q["query"].strip())
                expr = f"group by ({m.group(2)}) ({m.group(1)})" if m else q["query"]
                yield "variable", f"{name} ${v['name']}", expr
    for rule in rules(root):
        yield "alert", rule["alert"], " ".join(rule["expr"].split())


def metric_names(expr):
    """Metric names an expression reads (labels, functions and keywords left out)."""
    # Drop label matchers and strings, range/offset durations.
    bare = re.sub(r"\{[^}]*\}", " ", expr)
    bare = re.sub(r"\"[^\"]*\"", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for token in NAME.findall(bare):
        if token in PROMQL_WORDS or token.replace("e", "").isdigit():
            continue
        names.add(token)
    return names


def catalogue(root):
    """Series names of docs/metrics.md (histograms expanded)."""
    docs = os.path.join(os.path.dirname(os.path.abspath(root)), "docs", "metrics.md")
    names = {}
    with open(docs, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\| `([a-z_]+)` \| (\w+) \|", line)
            if m:
                names[m.group(1)] = m.group(2)
    return names


def catalogue_covers(names, cat):
    missing = []
    for n in names:
        if n == "up" or n in cat:
            continue
        base = next((n[: -len(s)] for s in HISTOGRAM_SUFFIXES if n.endswith(s)), None)
        if base is not None and cat.get(base) in ("histogram", "summary"):
            continue
        missing.append(n)
    return missing


def lint(root):
    errors = []
    uid = provisioned_uid(root)
    seen_uids, seen_titles = set(), set()
    for name, d in dashboards(root):
        for key, seen in (("uid", seen_uids), ("title", seen_titles)):
            if d.get(key) in seen or not d.get(key):
                errors.append(f"{name}: {key} {d.get(key)!r} missing or not unique")
            seen.add(d.get(key))
        t = d.get("time", {})
        if not str(t.get("from", "")).startswith("now") or not str(t.get("to", "")).startswith("now"):
            errors.append(f"{name}: time range {t} is not relative to now")
        ids = [p.get("id") for p in d["panels"]]
        if len(ids) != len(set(ids)) or None in ids:
            errors.append(f"{name}: panel ids {ids} missing or not unique")
        for p in d["panels"]:
            where = f"{name} panel {p.get('id')} ({p.get('title')})"
            if p.get("datasource", {}).get("uid") != uid:
                errors.append(f"{where}: datasource is not the provisioned uid {uid}")
            for key in ("timeFrom", "timeShift"):
                if p.get(key):
                    errors.append(f"{where}: {key} overrides the dashboard's time range")
            if not p.get("targets"):
                errors.append(f"{where}: no query")
            for t in p.get("targets", []):
                if t.get("datasource", {}).get("uid") != uid:
                    errors.append(f"{where} {t.get('refId')}: target datasource is not {uid}")
                if not t.get("expr", "").strip():
                    errors.append(f"{where} {t.get('refId')}: empty expression")
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query" and v.get("datasource", {}).get("uid") != uid:
                errors.append(f"{name} ${v.get('name')}: variable datasource is not {uid}")
    cat = catalogue(root)
    for kind, where, expr in queries(root):
        names = metric_names(expr)
        if not names:
            errors.append(f"{kind} {where}: reads no metric: {expr}")
        for n in catalogue_covers(names, cat):
            errors.append(f"{kind} {where}: {n} is not in docs/metrics.md")
    return errors


def main(argv):
    if len(argv) != 3 or argv[1] not in ("lint", "queries"):
        print(__doc__)
        return 2
    root = argv[2]
    if argv[1] == "queries":
        for kind, where, expr in queries(root):
            print(f"{kind}\t{where}\t{expr}")
        return 0
    errors = lint(root)
    for e in errors:
        print("FAIL:", e)
    print(f"{len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
