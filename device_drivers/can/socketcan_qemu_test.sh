#!/usr/bin/env bash
# Runs SocketCanBus against a real kernel CAN stack: the build machine's
# kernel has no AF_CAN, so this boots Debian's kernel (linux-image-amd64:
# modules can, can-raw, can-dev, vcan) under qemu-system-x86_64 -accel tcg
# with an initramfs holding busybox, those modules and the guest test binary
# (with its shared-library closure), creates vcan0, runs the binary and passes
# or fails on the result the guest prints on its serial console.
#
#   socketcan_qemu_test.sh GUEST_TEST_BINARY
#
# Needs qemu-system-x86, linux-image-amd64, busybox-static and cpio
# (tools/packages.txt); fails with a message naming what is missing.
# EVGATE_QEMU_KERNEL=/boot/vmlinuz-VERSION picks a kernel (default: the newest
# /boot/vmlinuz-* whose modules include vcan).
set -uo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

guest_test=${1:-}
[ -n "$guest_test" ] && [ -x "$guest_test" ] || fail "usage: $0 GUEST_TEST_BINARY (got '${guest_test}')"
guest_test=$(readlink -f "$guest_test")

qemu=$(command -v qemu-system-x86_64) ||
  fail "qemu-system-x86_64 not found: install the Debian package qemu-system-x86 (tools/setup.sh)"
busybox=/bin/busybox
[ -x "$busybox" ] || fail "busybox not found: install the Debian package busybox-static (tools/setup.sh)"
ldd "$busybox" >/dev/null 2>&1 &&
  fail "$busybox is dynamically linked: install busybox-static, which the initramfs needs"
command -v cpio >/dev/null || fail "cpio not found: install the Debian package cpio (tools/setup.sh)"

# The kernel and its modules.
kernel=${EVGATE_QEMU_KERNEL:-}
if [ -z "$kernel" ]; then
  for candidate in $(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V -r); do
    version=${candidate#/boot/vmlinuz-}
    if ls /lib/modules/"$version"/kernel/drivers/net/can/vcan.ko* >/dev/null 2>&1; then
      kernel=$candidate
      break
    fi
  done
fi
[ -n "$kernel" ] ||
  fail "no kernel with the vcan module in /boot: install the Debian package linux-image-amd64 (tools/setup.sh)"
[ -r "$kernel" ] || fail "cannot read $kernel"
version=${kernel#/boot/vmlinuz-}
moddir=/lib/modules/$version
[ -f "$moddir/modules.dep" ] || fail "$moddir/modules.dep missing (kernel $version incomplete?)"

work=${TEST_TMPDIR:-$(mktemp -d)}/socketcan_qemu
rm -rf "$work"
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules,test}

# Modules in load order: each one's dependencies (modules.dep) first.
declare -A loaded=()
order=()
add_module() {
  local path=$1 dep
  [ -n "${loaded[$path]:-}" ] && return
  loaded[$path]=1
  for dep in $(awk -F': *' -v m="$path" '$1 == m { print $2 }' "$moddir/modules.dep"); do
    add_module "$dep"
  done
  order+=("$path")
}
for name in can can-raw vcan; do
  path=$(cd "$moddir" && ls kernel/net/can/"$name".ko* kernel/drivers/net/can/"$name".ko* 2>/dev/null | head -1)
  [ -n "$path" ] || fail "module $name not found under $moddir"
  add_module "$path"
done
: >"$root/modules/order"
for path in "${order[@]}"; do
  base=$(basename "$path")
  case "$path" in
    *.ko) cp "$moddir/$path" "$root/modules/$base" ;;
    *.ko.xz) xz -dc "$moddir/$path" >"$root/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$moddir/$path" >"$root/modules/${base%.zst}"; base=${base%.zst} ;;
    *) fail "unknown module format: $path" ;;
  esac
  echo "$base" >>"$root/modules/order"
done

# busybox, the test binary and every shared library it loads.
cp "$busybox" "$root/bin/busybox"
cp "$guest_test" "$root/test/guest_test"
ldd "$guest_test" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules/order); do
  insmod /modules/$m || echo "EVGATE-GUEST: insmod $m failed"
done
ip link add dev vcan0 type vcan && ip link set vcan0 up || echo "EVGATE-GUEST: vcan0 setup failed"
cd /test
TEST_TMPDIR=/tmp ./guest_test --gtest_color=no --gtest_output=xml:/tmp/guest.xml
status=$?
echo "EVGATE-GUEST-XML-BEGIN"
cat /tmp/guest.xml
echo "EVGATE-GUEST-XML-END"
echo "EVGATE-GUEST-RESULT: $status"
poweroff -f
EOF
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) >"$work/initramfs.cpio" || fail "cpio failed"

console=$work/console.txt
echo "booting $kernel under qemu (tcg) ..."
start=$(date +%s)
# TCG, not KVM: the same on every machine (nested KVM is not dependable).
timeout 240 "$qemu" -accel tcg -m 256M -smp 1 -nodefaults -no-user-config -display none \
  -no-reboot -serial "file:$console" -net none \
  -kernel "$kernel" -initrd "$work/initramfs.cpio" \
  -append "console=ttyS0 panic=-1 quiet" </dev/null
qemu_status=$?
echo "qemu exited ($qemu_status) after $(($(date +%s) - start)) s; guest console:"
tr -d '\r' <"$console" | sed '/^EVGATE-GUEST-XML-BEGIN/,/^EVGATE-GUEST-XML-END/d; s/^/  guest| /'

result=$(tr -d '\r' <"$console" | sed -n 's/^EVGATE-GUEST-RESULT: \([0-9]*\).*/\1/p' | tail -1)
[ $qemu_status -eq 124 ] && fail "qemu did not finish within 240 s"
[ -n "$result" ] || fail "the guest printed no result (kernel or init failed; console above)"
grep -q 'EVGATE-GUEST: ' "$console" && fail "guest setup failed (console above)"
[ "$result" = 0 ] || fail "guest test failed with status $result (console above)"
# Bazel's report then lists the guest's test cases instead of one script.
if [ -n "${XML_OUTPUT_FILE:-}" ]; then
  tr -d '\r' <"$console" | sed -n '/^EVGATE-GUEST-XML-BEGIN/,/^EVGATE-GUEST-XML-END/{//!p}' >"$XML_OUTPUT_FILE"
fi
echo "PASS: SocketCanBus on vcan0 in $version"
