#!/usr/bin/env bash
# Checks formatting of every C++ file (clang-format, .clang-format) and, for
# the files given as arguments, runs clang-tidy (.clang-tidy) with the same
# include paths and flags as the Bazel build. Run `bazel build //...` first
# so generated protobuf headers exist.
#   tools/lint.sh                     # format check of the whole tree
#   tools/lint.sh runtime/launcher.cc # + clang-tidy on that file
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

status=0
unformatted=$(git ls-files --cached --others --exclude-standard '*.cc' '*.h' | while read -r f; do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
if [ -n "$unformatted" ]; then
  echo "not clang-formatted (run clang-format -i on them):"
  echo "$unformatted" | sed 's/^/  /'
  status=1
fi

if [ $# -gt 0 ]; then
  bin=$(bazel info bazel-bin 2>/dev/null)
  flags=(-std=c++17 -I. -I"$bin" -I"$bin/proto" -I/usr/include/modbus -DNOMINMAX)
  clang-tidy --quiet "$@" -- "${flags[@]}" || status=1
fi
exit $status
