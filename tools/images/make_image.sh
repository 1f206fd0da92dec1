#!/usr/bin/env bash
# Makes one evgate image in podman from its layer (bazel //tools/images:*):
#
#   make_image.sh base BASE_LAYER.tar TAG REVISION
#     localhost/evgate/base:TAG, FROM scratch: the shared libraries,
#     evgate-probe, user 65532;
#   make_image.sh NAME NAME_LAYER.tar TAG REVISION
#     localhost/evgate/NAME:TAG, FROM that base: the binary as entrypoint,
#     running as uid 65532, reading /etc/evgate/site.yaml, OCI labels.
#
# Used by build.sh and the container end-to-end test. Needs
# CONTAINERS_CONF=tools/images/containers.conf on a Debian 12 box.
set -euo pipefail

name=$1 layer=$2 tag=$3 revision=$4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$layer" "$work/layer.tar"
labels="LABEL org.opencontainers.image.version=\"$tag\" org.opencontainers.image.revision=\"$revision\""
case $name in
  base)
    cat > "$work/Containerfile" <<CONTAINERFILE
FROM scratch
ADD layer.tar /
USER 65532:65532
WORKDIR /data
ENV TMPDIR=/tmp
$labels org.opencontainers.image.title="evgate base (shared libraries, evgate-probe)"
CONTAINERFILE
    ;;
  *)
    case $name in
      evgate) entrypoint='["/usr/bin/evgate", "run"]' title="evgate (every service in one process)" ;;
      *) entrypoint="[\"/usr/bin/$name\"]" title="evgate $name" ;;
    esac
    cat > "$work/Containerfile" <<CONTAINERFILE
FROM localhost/evgate/base:$tag
ADD layer.tar /
EXPOSE 50051
ENTRYPOINT $entrypoint
CMD ["--site", "/etc/evgate/site.yaml", "--listen", "0.0.0.0:50051"]
$labels org.opencontainers.image.title="$title"
CONTAINERFILE
    ;;
esac
podman build --quiet --pull=never --tag "localhost/evgate/$name:$tag" "$work" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "localhost/evgate/$name:$tag")
printf 'images: localhost/evgate/%-24s %5s MB\n' "$name:$tag" "$((size / 1000000))"
