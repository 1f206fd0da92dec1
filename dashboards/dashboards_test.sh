#!/usr/bin/env bash
# The dashboards are generated and lint clean; the lint catches what it
# claims to (a copy with a duplicate panel id, a foreign datasource and a
# metric that is not in the catalogue must fail).
set -uo pipefail
runfiles="${TEST_SRCDIR}/${TEST_WORKSPACE}"
py=/usr/bin/python3
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

"$py" "$runfiles/dashboards/generate.py" --check || fail "dashboards are not what generate.py writes"
"$py" "$runfiles/dashboards/check_dashboards.py" lint "$runfiles/dashboards" || fail "lint"

broken="$TEST_TMPDIR/broken"
mkdir -p "$broken/dashboards" "$broken/docs"
cp -rL "$runfiles/dashboards/." "$broken/dashboards/"
cp -L "$runfiles/docs/metrics.md" "$broken/docs/"
chmod -R u+w "$broken"
"$py" - "$broken/dashboards/grafana/dashboards/site-overview.json" <<'PYEOF'
import json, sys
path = sys.argv[1]
d = json.load(open(path))
d["panels"][1]["id"] = d["panels"][0]["id"]
d["panels"][2]["datasource"] = {"type": "prometheus", "uid": "someone-elses"}
d["panels"][3]["targets"][0]["expr"] = "evgate_not_a_metric"
d["time"] = {"from": "2026-01-01T00:00:00Z", "to": "now"}
json.dump(d, open(path, "w"))
PYEOF
out=$("$py" "$runfiles/dashboards/check_dashboards.py" lint "$broken/dashboards")
for expected in "panel ids" "someone-elses\|not the provisioned uid" "evgate_not_a_metric is not in docs/metrics.md" "not relative to now"; do
  grep <<<"$out" -q "$expected" || fail "lint did not report '$expected': $out"
done

[ "$failures" -eq 0 ] && echo "all dashboard checks passed"
exit "$failures"
