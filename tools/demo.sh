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
exec bazel-bin/gateway/evgate run --site gateway/sites/demo.yaml "$@"
