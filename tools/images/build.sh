#!/usr/bin/env bash
# Builds evgate's container images into podman: one per service plus the
# all-in-one `evgate`, each a shared base (FROM scratch: the shared libraries,
# evgate-probe, user 65532) and its binary (bazel //tools/images:layers).
# Nothing is pulled: no registry is needed or reachable.
#
#   tools/images/build.sh [--save FILE.tar] [IMAGE...]
#
# Images are tagged localhost/evgate/NAME:VERSION (VERSION from the file at
# the top) and :latest. --save writes them all into one archive for
# `k3s ctr images import` on the gateway box (docs/deploy.md).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
export CONTAINERS_CONF="$root/tools/images/containers.conf"

save=""
images=()
while [ $# -gt 0 ]; do
  case $1 in
    --save) save=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) images+=("$1"); shift ;;
  esac
done
all=(evgate device_drivers load_balancer session ocpp_bridge grid_controller metrics_exporter simulator)
[ ${#images[@]} -gt 0 ] || images=("${all[@]}")

command -v podman >/dev/null || { echo "images: podman is not installed (tools/setup.sh installs it)" >&2; exit 1; }
version=$(cat VERSION)
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then revision="$revision-dirty"; fi

# The base layer is the host's libraries: key it by what is installed.
host_libs=$(dpkg-query -W -f '${Package}=${Version}\n' | sha256sum | cut -c1-16)
bazel build -c opt --define=EVGATE_HOST_LIBS="$host_libs" //tools/images:layers
bin=$(bazel info -c opt --define=EVGATE_HOST_LIBS="$host_libs" bazel-bin 2>/dev/null)/tools/images
tools/images/make_image.sh base "$bin/base_layer.tar" "$version" "$revision"
for name in "${images[@]}"; do
  tools/images/make_image.sh "$name" "$bin/${name}_layer.tar" "$version" "$revision"
done
for name in base "${images[@]}"; do podman tag "localhost/evgate/$name:$version" "localhost/evgate/$name:latest"; done

if [ -n "$save" ]; then
  refs=()
  for name in base "${images[@]}"; do refs+=("localhost/evgate/$name:$version"); done
  podman save --multi-image-archive --output "$save" "${refs[@]}"
  echo "images: saved ${#refs[@]} images to $save"
fi
