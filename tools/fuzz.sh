#!/usr/bin/env bash
# Runs one fuzz target under libFuzzer with AddressSanitizer and
# UndefinedBehaviorSanitizer (Debian clang 14 + libclang-rt-14-dev).
#
#   tools/fuzz.sh //pkg:<x>_fuzzer_lib RUNS [CORPUS_DIR] [-- LIBFUZZER_FLAGS...]
#
# RUNS is libFuzzer's -runs (executions; -1 = until a crash or Ctrl-C).
# CORPUS_DIR defaults to pkg/testdata/<x>_fuzzer_corpus; its files are the
# seeds and are never modified: libFuzzer's new inputs and any crash artifact
# go to a work directory (printed; $FUZZ_WORK_DIR to choose it). The final
# stats line (executions, time, coverage) is printed; exit status 0 means no
# crash, leak or sanitizer report.
#
# The clang build has its own Bazel output base (so switching compilers never
# discards the gcc build's cache), shared by all fuzz targets of a checkout;
# its Bazel server exits after two idle minutes.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

usage() {
  echo "usage: tools/fuzz.sh //pkg:<x>_fuzzer_lib RUNS [CORPUS_DIR] [-- LIBFUZZER_FLAGS...]" >&2
  exit 2
}
[ $# -ge 2 ] || usage
label=$1
runs=$2
shift 2
corpus=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
  corpus=$1
  shift
fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
extra=("$@")

[[ "$label" =~ ^//([A-Za-z0-9_/.-]*):([A-Za-z0-9_]+)_fuzzer_lib$ ]] ||
  { echo "fuzz.sh: '$label' is not a //pkg:<x>_fuzzer_lib label" >&2; usage; }
pkg=${BASH_REMATCH[1]}
name=${BASH_REMATCH[2]}
[[ "$runs" =~ ^-?[0-9]+$ ]] || { echo "fuzz.sh: RUNS must be a number" >&2; usage; }
corpus=${corpus:-$pkg/testdata/${name}_fuzzer_corpus}
[ -d "$corpus" ] || { echo "fuzz.sh: no corpus directory $corpus" >&2; exit 2; }
command -v clang >/dev/null || { echo "fuzz.sh: clang is missing; run tools/setup.sh" >&2; exit 2; }

output_base="${FUZZ_OUTPUT_BASE:-$HOME/.cache/evgate-fuzz/$(echo "$root" | md5sum | cut -c1-12)}"
sanitizers="address,undefined"
bazel_flags=(
  --repo_env=CC=clang
  "--//tools/fuzz:target=$label"
  --compilation_mode=opt
  --copt=-g
  --copt=-fno-omit-frame-pointer
  "--copt=-fsanitize=fuzzer-no-link,$sanitizers"
  --copt=-fno-sanitize-recover=all
  # clang warns about things gcc does not; the gcc build is the warning gate.
  --copt=-Wno-error
  "--linkopt=-fsanitize=fuzzer,$sanitizers"
  # Bazel links with clang, not clang++: UBSan's C++ part (vptr checks) needs this.
  --linkopt=-fsanitize-link-c++-runtime
)
echo "fuzz.sh: building $label with clang (output base $output_base)"
# --symlink_prefix=/: leave the checkout's bazel-bin pointing at the gcc build.
bazel --output_base="$output_base" --max_idle_secs=120 build --symlink_prefix=/ "${bazel_flags[@]}" \
  //tools/fuzz:fuzzer || exit 1
binary="$(bazel --output_base="$output_base" --max_idle_secs=120 info "${bazel_flags[@]}" bazel-bin 2>/dev/null)/tools/fuzz/fuzzer"
[ -x "$binary" ] || { echo "fuzz.sh: built binary not found ($binary)" >&2; exit 1; }

work=${FUZZ_WORK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/fuzz-$name.XXXXXX")}
mkdir -p "$work/corpus"
echo "fuzz.sh: $name: $runs runs, seeds $corpus, work dir $work"
start=$(date +%s)
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "$binary" -runs="$runs" -print_final_stats=1 -artifact_prefix="$work/" \
  "${extra[@]}" "$work/corpus" "$corpus" 2>&1 | tee "$work/fuzz.log"
status=${PIPESTATUS[0]}
end=$(date +%s)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log" | tail -1)
echo "fuzz.sh: $name: exit $status, ${execs:-?} executions in $((end - start)) s," \
  "$(find "$work" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' \
    -o -maxdepth 1 -name 'timeout-*' -o -maxdepth 1 -name 'oom-*' | wc -l) artifacts in $work"
exit "$status"
