#!/usr/bin/env bash
# Runs the demo site (gateway/sites/demo.yaml): installs what is missing,
# builds evgate and evgatectl, and hosts every service of this build in one
# process on 127.0.0.1:50051 until Ctrl-C. In another terminal:
#   bazel-bin/tools/evgatectl/evgatectl health
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tools/setup.sh
bazel build //gateway:evgate //tools/evgatectl
# The demo keeps its charge records where a real site would
# (services.session_database in demo.yaml); make that directory ours.
records=$(sed -n 's/^ *session_database: *//p' gateway/sites/demo.yaml)
records_dir=$(dirname "$records")
mkdir -p "$records_dir" 2>/dev/null || true
if ! [ -w "$records_dir" ]; then
  echo "demo: creating $records_dir for the charge records (sudo)"
  sudo install -d -o "$(id -u)" -g "$(id -g)" "$records_dir"
fi
exec bazel-bin/gateway/evgate run --site gateway/sites/demo.yaml "$@"
