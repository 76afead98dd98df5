#!/usr/bin/env bash
# The libvirt `dir` storage pool of docs/vm-hosting.md, run for real on a lunfs mount: a
# private libvirtd (Debian's libvirt-daemon) in this script's own mount namespace, driven by
# virsh through pool-define-as, pool-build, pool-start, vol-create-as (thin and thick raw,
# qcow2 with preallocated metadata, a qcow2 overlay on a backing volume), vol-clone,
# vol-delete, pool-destroy and pool-undefine, checking each volume with qemu-img as a user
# would. Nothing of libvirt's state reaches the host: /run, /var/lib, /var/cache and /var/log
# are fresh tmpfs mounts in the namespace, /etc/libvirt is a copy, and the account
# libvirt-daemon-system would create (libvirt-qemu, which the QEMU driver needs at start) is
# added to a copy of /etc/passwd and /etc/group there. libvirtd is stopped by its pid and the
# namespace disappears with this script. The volumes stay in MOUNTPOINT/pool for the caller
# (tests/fuse/vm_image_test.cpp) to check from outside the namespace.
#
#   libvirt_pool_test.sh MOUNTPOINT     (as root)
#
# Exits 0 when every step did what docs/vm-hosting.md says; 2 when libvirt is not installed.
set -euo pipefail

mnt=${1:?usage: libvirt_pool_test.sh MOUNTPOINT}
mnt=$(realpath "$mnt")
for tool in libvirtd virsh qemu-img qemu-io unshare; do
  command -v "$tool" > /dev/null || { echo "libvirt_pool_test: $tool not found (install it with scripts/deps.sh)" >&2; exit 2; }
done
case $mnt/ in
  /run/* | /var/lib/* | /var/cache/* | /var/log/* | /etc/*)
    echo "libvirt_pool_test: $mnt is hidden by the namespace's own /run, /var and /etc mounts" >&2
    exit 2
    ;;
esac
if [[ ${LUNFS_LIBVIRT_NS:-} != 1 ]]; then
  LUNFS_LIBVIRT_NS=1 exec unshare -m --propagation private "$0" "$mnt"
fi

work=$(mktemp -d /tmp/lunfs-libvirt-XXXXXX)
daemon=
cleanup() {
  local rc=$?
  if [[ -n $daemon ]]; then
    kill "$daemon" 2> /dev/null || true
    for _ in $(seq 100); do
      kill -0 "$daemon" 2> /dev/null || break
      sleep 0.1
    done
    kill -9 "$daemon" 2> /dev/null || true
    wait "$daemon" 2> /dev/null || true
  fi
  if ((rc != 0)) && [[ -f $work/libvirtd.log ]]; then
    echo "libvirt_pool_test: libvirtd's log:" >&2
    tail -n 30 "$work/libvirtd.log" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

for d in /run /var/lib /var/cache /var/log; do mount -t tmpfs lunfs-libvirt "$d"; done
cp -a /etc/libvirt "$work/etc-libvirt"
mount --bind "$work/etc-libvirt" /etc/libvirt
cp /etc/passwd /etc/group "$work/"
getent passwd libvirt-qemu > /dev/null || echo "libvirt-qemu:x:64055:64055::/nonexistent:/usr/sbin/nologin" >> "$work/passwd"
getent group libvirt-qemu > /dev/null || echo "libvirt-qemu:x:64055:" >> "$work/group"
mount --bind "$work/passwd" /etc/passwd
mount --bind "$work/group" /etc/group

libvirtd > "$work/libvirtd.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do
  [[ -S /run/libvirt/libvirt-sock ]] && break
  kill -0 "$daemon" 2> /dev/null || break
  sleep 0.1
done
if [[ ! -S /run/libvirt/libvirt-sock ]]; then
  echo "libvirt_pool_test: libvirtd did not start:" >&2
  cat "$work/libvirtd.log" >&2
  exit 1
fi

step() {
  echo "+ $*" >&2
  "$@"
}
fail() {
  echo "libvirt_pool_test: $*" >&2
  exit 1
}
virsh() { command virsh -q -c qemu:///system "$@"; }

pool=$mnt/pool
step virsh pool-define-as lunfs dir --target "$pool"
step virsh pool-build lunfs
step virsh pool-start lunfs
[[ -d $pool ]] || fail "pool-build made no directory $pool"
info=$(virsh pool-info lunfs)
[[ $info =~ State:[[:space:]]+running ]] || fail "pool not running: $info"
# The pool's capacity is the file system's (statvfs through the mount).
capacity=$(virsh pool-info --bytes lunfs | awk '/^Capacity:/ {print $2}')
fs_bytes=$(($(stat -f -c '%b * %S' "$pool")))
[[ $capacity == "$fs_bytes" ]] || fail "pool capacity $capacity, the mount has $fs_bytes bytes"

step virsh vol-create-as lunfs golden.qcow2 64M --format qcow2 --prealloc-metadata
step qemu-io -f qcow2 -c "write -P 0x6c 0 4M" -c "write -P 0x75 40M 1M" "$pool/golden.qcow2" > /dev/null
step virsh vol-clone golden.qcow2 vm1.qcow2 --pool lunfs
step qemu-img compare -f qcow2 -F qcow2 "$pool/golden.qcow2" "$pool/vm1.qcow2"
step qemu-img check -q "$pool/vm1.qcow2"
# A linked clone: a thin qcow2 overlay whose backing file is the golden image.
step virsh vol-create-as lunfs vm2.qcow2 64M --format qcow2 --backing-vol golden.qcow2 --backing-vol-format qcow2
info=$(qemu-img info "$pool/vm2.qcow2")
[[ $info == *"backing file: $pool/golden.qcow2"* ]] || fail "vm2.qcow2 is not backed by golden.qcow2: $info"
step qemu-io -f qcow2 -c "write -P 0x32 8M 1M" "$pool/vm2.qcow2" > /dev/null
step qemu-io -f qcow2 -c "read -P 0x6c 0 4M" -c "read -P 0x32 8M 1M" -c "read -P 0x75 40M 1M" "$pool/vm2.qcow2" > /dev/null
step qemu-img check -q "$pool/vm2.qcow2"

step virsh vol-create-as lunfs thin.raw 32M --allocation 0 --format raw
step virsh vol-create-as lunfs thick.raw 32M --format raw
step virsh pool-refresh lunfs
alloc() { virsh vol-info --bytes --pool lunfs "$1" | awk '/^Allocation:/ {print $2}'; }
thin=$(alloc thin.raw)
thick=$(alloc thick.raw)
((thin < 1048576)) || fail "thin.raw allocates $thin bytes"
((thick >= 33554432)) || fail "thick.raw allocates only $thick bytes"
step virsh vol-list lunfs --details

step virsh vol-delete thin.raw --pool lunfs
[[ ! -e $pool/thin.raw ]] || fail "vol-delete left $pool/thin.raw"
step virsh pool-destroy lunfs
step virsh pool-undefine lunfs
echo "libvirt_pool_test: ok"
