#!/usr/bin/env bash
# corpus_driver runs every corpus file, fails on a crashing input and on a
# missing corpus, and passes a clean corpus.
set -uo pipefail
driver="tools/fuzz/example_fuzzer_driver"
data="tools/fuzz/testdata"
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

out=$("$driver" --random_inputs=1000 "$data/example_fuzzer_corpus" 2>&1) || fail "clean corpus failed: $out"
grep <<<"$out" -q "2 corpus files" || fail "clean corpus: expected 2 corpus files: $out"
grep <<<"$out" -q "seed 20261121" || fail "the seed is not printed: $out"

"$driver" --random_inputs=0 "$data/example_crash_corpus" >/dev/null 2>&1 &&
  fail "a crashing corpus input passed"
"$driver" --random_inputs=0 "$data/no_such_corpus" >/dev/null 2>&1 &&
  fail "a missing corpus passed"
"$driver" --bogus "$data/example_fuzzer_corpus" >/dev/null 2>&1 && fail "an unknown flag was accepted"
# Deterministic: the same seed gives the same inputs, so the same summary.
a=$("$driver" --random_inputs=100 --seed=7 "$data/example_fuzzer_corpus" 2>&1 | tail -1)
b=$("$driver" --random_inputs=100 --seed=7 "$data/example_fuzzer_corpus" 2>&1 | tail -1)
[ "$a" = "$b" ] || fail "not deterministic: '$a' vs '$b'"

echo "$failures failures"
[ "$failures" -eq 0 ]
