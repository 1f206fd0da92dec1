#!/usr/bin/env bash
# promtool (Debian prometheus, installed by tools/setup.sh) on the alert rules
# and the scrape configurations.
set -uo pipefail
dir="${TEST_SRCDIR}/${TEST_WORKSPACE}/dashboards/prometheus"
command -v promtool >/dev/null || { echo "FAIL: promtool is not installed (tools/setup.sh)"; exit 1; }
failures=0
# promtool resolves rule_files relative to the file: work on a copy.
cp -L "$dir"/*.yml "$TEST_TMPDIR/" && cd "$TEST_TMPDIR" || exit 1
promtool check rules alerts.yml || failures=$((failures + 1))
promtool test rules alerts_test.yml || failures=$((failures + 1))
for config in prometheus-all-in-one.yml prometheus-split.yml; do
  promtool check config "$config" || failures=$((failures + 1))
done
# The unit tests must be able to fail: an alert whose `for` is dropped fires
# too early for the test.
sed 's/^        for: 1m$/        for: 0s/' alerts.yml > broken.yml
sed 's/^  - alerts.yml$/  - broken.yml/' alerts_test.yml > broken_test.yml
if promtool test rules broken_test.yml >/dev/null 2>&1; then
  echo "FAIL: the rule tests pass on rules without their 'for'"
  failures=$((failures + 1))
fi
[ "$failures" -eq 0 ] && echo "all alert checks passed"
exit "$failures"
