#!/usr/bin/env bash
# The main job, on a fresh Debian 12 machine as root: installs what lunfs needs, builds it,
# creates a LUN file, formats and checks it, mounts it, keeps a VM image on it, and starts
# a local 3-node Corosync cluster whose nodes share locks through the lunfs lock manager,
# then mounts the LUN on all three nodes at once (lockproto=corosync): a VM image written
# on node 1 is read and checked on nodes 2 and 3.
# Everything it starts is stopped (by pid) and removed at the end, also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2
bin=$top/build/bin

work=$(mktemp -d /var/tmp/lunfs-demo.XXXXXX)
lun=$work/lun.img mnt=$work/mnt daemon=
export LUNFS_CLUSTER_PREFIX=lunfsdemo
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt"; fi
  [[ -n $daemon ]] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
  tests/cluster/lunfs-cluster down >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n== %s ==\n' "$*"; }

step "A 64 GiB LUN file (sparse)"
truncate -s 64G "$lun"
ls -ls "$lun"

# The lock table names the Corosync cluster that may mount it (the harness calls its cluster
# after LUNFS_CLUSTER_PREFIX).
step "mkfs.lunfs -t lunfsdemo:vmstore -j 3 LUN"
"$bin/mkfs.lunfs" -t lunfsdemo:vmstore -j 3 "$lun"
du -h "$lun"

step "fsck.lunfs -n -v LUN"
"$bin/fsck.lunfs" -n -v "$lun"

step "mkfs.lunfs refuses to overwrite it without -f"
"$bin/mkfs.lunfs" -t lunfsdemo:vmstore "$lun" || echo "(exit status $?)"

step "mount.lunfs LUN MOUNTPOINT -o lockproto=nolock"
mkdir -p "$mnt"
"$bin/mount.lunfs" "$lun" "$mnt" -f -o lockproto=nolock &
daemon=$!
for _ in $(seq 100); do mountpoint -q "$mnt" && break; sleep 0.1; done
findmnt "$mnt"

step "A VM image on it: qemu-img create, write through qemu-io, qemu-img check"
qemu-img create -f qcow2 "$mnt/vm1.qcow2" 20G
qemu-io -f qcow2 -c "write -P 0x5a 0 64M" -c "read -P 0x5a 0 64M" "$mnt/vm1.qcow2" | grep -v "^wrote\|^read" || true
qemu-img check "$mnt/vm1.qcow2"
qemu-img info "$mnt/vm1.qcow2" | head -5
mkdir "$mnt/iso" && head -c 8M /dev/urandom > "$mnt/iso/tools.iso"
ls -la "$mnt" && df -h "$mnt"

step "Unmount, then fsck.lunfs -n"
fusermount3 -u "$mnt"
wait "$daemon"; daemon=
"$bin/fsck.lunfs" -n "$lun"

step "A local 3-node Corosync cluster (network namespaces), quorum on every node"
tests/cluster/lunfs-cluster up 3
tests/cluster/lunfs-cluster status

step "The lock manager: node 1 holds vm1 in EX; node 2 cannot take it (NOQUEUE); the table"
node_tool=$top/build/dlm/tools/lunfs-dlm-node
fifo=$work/node1.in
mkfifo "$fifo"
tests/cluster/lunfs-cluster exec 1 "$node_tool" demo <"$fifo" >"$work/node1.out" 2>&1 &
exec 3>"$fifo"
echo "lock vm1 EX" >&3
for _ in $(seq 100); do grep -q "^ok" "$work/node1.out" && break; sleep 0.1; done
echo "node 1: $(grep -m1 '^ok\|^err' "$work/node1.out")"
printf 'lock vm1 PR noqueue\nquit\n' |
  tests/cluster/lunfs-cluster exec 2 "$node_tool" demo 2>&1 | sed 's/^/node 2: /'
tests/cluster/lunfs-cluster exec 1 "$bin/lunfs" locks demo
echo quit >&3
exec 3>&-
wait

step "Cluster mount: mount.lunfs LUN MOUNTPOINT -o lockproto=corosync on every node"
# Each node has its own mount namespace: all three mount on the same path.
for n in 1 2 3; do tests/cluster/lunfs-cluster exec $n "$bin/mount.lunfs" "$lun" "$mnt" -o lockproto=corosync; done
tests/cluster/lunfs-cluster exec 2 findmnt "$mnt"

step "Node 1 writes a VM image; nodes 2 and 3 read and check it"
tests/cluster/lunfs-cluster exec 1 qemu-img create -f qcow2 "$mnt/vm2.qcow2" 10G
tests/cluster/lunfs-cluster exec 1 qemu-io -f qcow2 -c "write -P 0xa7 0 32M" "$mnt/vm2.qcow2" | grep -v "^wrote" || true
tests/cluster/lunfs-cluster exec 1 sha256sum "$mnt/vm2.qcow2"
for n in 2 3; do
  echo "node $n:"
  tests/cluster/lunfs-cluster exec $n sha256sum "$mnt/vm2.qcow2"
  tests/cluster/lunfs-cluster exec $n qemu-img check "$mnt/vm2.qcow2"
  tests/cluster/lunfs-cluster exec $n qemu-io -r -f qcow2 -c "read -P 0xa7 0 32M" "$mnt/vm2.qcow2" | grep -v "^read"
done
tests/cluster/lunfs-cluster exec 3 ls -l "$mnt"

step "Unmount on every node, then fsck.lunfs -n"
for n in 1 2 3; do tests/cluster/lunfs-cluster exec $n umount "$mnt"; done
flock -x "$lun" true  # the daemons let go of the LUN when they have finished
"$bin/fsck.lunfs" -n "$lun"

step "Tear down"
tests/cluster/lunfs-cluster down
echo "done"
