#!/usr/bin/env bash
# Builds the root filesystem of one evgate image as a tarball: the service
# binary, evgate-probe, exactly the shared libraries they load (their ldd
# closure, at the paths the dynamic loader looks in), a passwd/group with the
# non-root user 65532, and the two writable places (/data for the database,
# /tmp). Nothing else: no shell, no package manager. Reproducible: sorted,
# fixed times and owners.
#
#   rootfs.sh OUT.tar BINARY PROBE
set -euo pipefail

out=$1 binary=$2 probe=$3
name=$(basename "$binary")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/bin" "$root/etc/evgate" "$root/data" "$root/tmp"
strip -o "$root/usr/bin/$name" "$binary"
strip -o "$root/usr/bin/evgate-probe" "$probe"

# The libraries the loader resolves for both binaries, plus glibc's NSS
# modules for files and DNS (dlopen'ed, so ldd does not list them).
libs=$( { ldd "$binary"; ldd "$probe"; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
nss=$(ls /lib/x86_64-linux-gnu/libnss_files.so.2 /lib/x86_64-linux-gnu/libnss_dns.so.2 2>/dev/null || true)
for lib in $libs $nss; do
  real=$(readlink -f "$lib")
  mkdir -p "$root$(dirname "$lib")"
  cp "$real" "$root$lib"
  # Some are found through /lib64 or /lib symlinks: keep the path ldd gave.
done
[ -e "$root/lib64/ld-linux-x86-64.so.2" ] || { echo "rootfs: no dynamic loader in the closure" >&2; exit 1; }

cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/nonexistent:/sbin/nologin
evgate:x:65532:65532:evgate:/data:/sbin/nologin
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
evgate:x:65532:
GROUP
printf 'hosts: files dns\n' > "$root/etc/nsswitch.conf"

tar --create --file "$out" --directory "$root" --sort=name --mtime=@0 --numeric-owner \
  --owner=0 --group=0 --mode=u+rwX,go+rX,go-w \
  --exclude=./data --exclude=./tmp .
# The writable directories: /data owned by the service user, /tmp sticky.
tar --append --file "$out" --directory "$root" --mtime=@0 --numeric-owner --no-recursion \
  --owner=65532 --group=65532 --mode=0750 ./data
tar --append --file "$out" --directory "$root" --mtime=@0 --numeric-owner --no-recursion \
  --owner=0 --group=0 --mode=1777 ./tmp
