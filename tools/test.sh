#!/usr/bin/env bash
# Runs evgate's whole test suite: installs what is missing, builds everything,
# runs every test, and ends with "N passed, M failed" counted from the
# individual test cases that ran (gtest cases and script tests alike).
# Exit status: 0 only if everything built and every test passed.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools/setup.sh || exit 1

bazel_flags=(--keep_going)
[ -n "${CI:-}" ] && bazel_flags+=(--noshow_progress --curses=no)

build_status=0
bazel build "${bazel_flags[@]}" //... || build_status=$?
# //:all_tests must hold every test, so `bazel test //:all_tests` is the suite.
outside=$(bazel query 'tests(//...) except attr(tags, manual, //...) except tests(//:all_tests)' 2>/dev/null)
if [ -n "$outside" ]; then
  echo "test.sh: not in //:all_tests (add a test_suite(name = \"tests\") to the package and list it in BUILD.bazel):" $outside >&2
  build_status=1
fi
test_status=0
# Tests always run: a result cached from another checkout is not a test run.
bazel test "${bazel_flags[@]}" --cache_test_results=no //... "$@" || test_status=$?

# Count results from every test target's XML report (tests tagged manual, the
# soaks run by hand, are not part of the suite); a target without a
# report (did not build, crashed before writing it) counts as one failure.
/usr/bin/python3 tools/count_test_results.py "$(bazel info bazel-testlogs 2>/dev/null)" \
  $(bazel query 'tests(//...) except attr(tags, manual, //...)' 2>/dev/null)
count_status=$?

if [ $build_status -ne 0 ] || [ $test_status -ne 0 ] || [ $count_status -ne 0 ]; then
  exit 1
fi
