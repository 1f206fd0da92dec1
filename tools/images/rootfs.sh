#!/usr/bin/env bash
# Builds the layers of evgate's images as reproducible tarballs (sorted, fixed
# times and owners):
#
#   rootfs.sh base OUT.tar OUT.libs PROBE BINARY...
#     the shared base layer: exactly the shared libraries the binaries load
#     (their ldd closure, at the paths the dynamic loader looks in; glibc
#     2.34+ has the files and DNS name services built in, so no NSS module),
#     evgate-probe, a passwd/group with the non-root user 65532, and the
#     writable places /data (the service user's) and /tmp. No shell, no package
#     manager. OUT.libs lists the libraries.
#   rootfs.sh binary OUT.tar BASE.libs BINARY
#     one service's layer: its stripped binary in /usr/bin; fails if the binary
#     needs a library the base does not have.
#
# Every image is the base plus one binary layer, so the containers of a split
# site share the libraries' files, and with them the page cache.
set -euo pipefail

closure() {  # the libraries the loader resolves for the given binaries
  local b out
  for b in "$@"; do
    out=$(ldd "$b") || { echo "rootfs: ldd $b failed" >&2; return 1; }
    if grep -q "not found" <<<"$out"; then
      echo "rootfs: $(basename "$b") needs libraries this host lacks: $(grep "not found" <<<"$out")" >&2
      return 1
    fi
    echo "$out"
  done | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u
}

reproducible_tar() {  # OUT DIR [tar options...]
  local out=$1 dir=$2; shift 2
  tar --create --file "$out" --directory "$dir" --sort=name --mtime=@0 --numeric-owner \
    --owner=0 --group=0 --mode=u+rwX,go+rX,go-w "$@" .
}

mode=$1; shift
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

case $mode in
  base)
    out=$1 libs_out=$2 probe=$3; shift 3
    mkdir -p "$root/usr/bin" "$root/etc/evgate" "$root/data" "$root/tmp"
    strip -o "$root/usr/bin/evgate-probe" "$probe"
    libs=$(closure "$probe" "$@")
    for lib in $libs; do
      mkdir -p "$root$(dirname "$lib")"
      cp "$(readlink -f "$lib")" "$root$lib"  # the file, under the path ldd gave
    done
    [ -e "$root/lib64/ld-linux-x86-64.so.2" ] || { echo "rootfs: no dynamic loader in the closure" >&2; exit 1; }
    printf '%s\n' $libs > "$libs_out"
    cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/nonexistent:/sbin/nologin
evgate:x:65532:65532:evgate:/data:/sbin/nologin
PASSWD
    cat > "$root/etc/group" <<'GROUP'
root:x:0:
evgate:x:65532:
GROUP
    printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"
    reproducible_tar "$out" "$root" --exclude=./data --exclude=./tmp
    # The writable directories: /data owned by the service user, /tmp sticky.
    tar --append --file "$out" --directory "$root" --mtime=@0 --numeric-owner --no-recursion \
      --owner=65532 --group=65532 --mode=0750 ./data
    tar --append --file "$out" --directory "$root" --mtime=@0 --numeric-owner --no-recursion \
      --owner=0 --group=0 --mode=1777 ./tmp
    ;;
  binary)
    out=$1 base_libs=$2 binary=$3
    needed=$(closure "$binary")
    missing=$(comm -23 <(echo "$needed") <(sort -u "$base_libs"))
    if [ -n "$missing" ]; then
      echo "rootfs: $(basename "$binary") needs libraries the base layer lacks: $(tr "\n" " " <<<"$missing")" >&2
      exit 1
    fi
    mkdir -p "$root/usr/bin"
    strip -o "$root/usr/bin/$(basename "$binary")" "$binary"
    reproducible_tar "$out" "$root"
    ;;
  *)
    echo "usage: rootfs.sh base OUT.tar OUT.libs PROBE BINARY... | binary OUT.tar BASE.libs BINARY" >&2
    exit 2
    ;;
esac
