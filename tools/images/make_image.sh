#!/usr/bin/env bash
# Makes one evgate image in podman from its root filesystem tarball
# (bazel //tools/images:NAME_rootfs): FROM scratch, uid 65532, the service
# binary as entrypoint reading /etc/evgate/site.yaml, OCI labels. Used by
# build.sh and by the container end-to-end tests.
#
#   make_image.sh NAME ROOTFS.tar VERSION REVISION
#
# Needs CONTAINERS_CONF=tools/images/containers.conf on a Debian 12 box.
set -euo pipefail

name=$1 rootfs=$2 version=$3 revision=$4
case $name in
  evgate) entrypoint='["/usr/bin/evgate", "run"]' title="evgate (every service in one process)" ;;
  *) entrypoint="[\"/usr/bin/$name\"]" title="evgate $name" ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$rootfs" "$work/rootfs.tar"
cat > "$work/Containerfile" <<CONTAINERFILE
FROM scratch
ADD rootfs.tar /
USER 65532:65532
WORKDIR /data
ENV TMPDIR=/tmp
EXPOSE 50051
ENTRYPOINT $entrypoint
CMD ["--site", "/etc/evgate/site.yaml", "--listen", "0.0.0.0:50051"]
LABEL org.opencontainers.image.title="$title" \\
      org.opencontainers.image.version="$version" \\
      org.opencontainers.image.revision="$revision"
CONTAINERFILE
podman build --quiet --tag "localhost/evgate/$name:$version" --tag "localhost/evgate/$name:latest" \
  "$work" >/dev/null
size=$(podman image inspect --format '{{.Size}}' "localhost/evgate/$name:$version")
printf 'images: localhost/evgate/%-24s %5s MB\n' "$name:$version" "$((size / 1000000))"
