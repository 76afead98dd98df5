#!/usr/bin/env bash
# The main job: installs what lunfs needs, builds it, creates a LUN file, formats it with
# mkfs.lunfs and checks it with fsck.lunfs, showing each step's output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2

work=$(mktemp -d /var/tmp/lunfs-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
lun=$work/lun.img
echo
echo "== A 64 GiB LUN file (sparse) =="
truncate -s 64G "$lun"
ls -ls "$lun"
echo
echo "== mkfs.lunfs -t demo:vmstore -j 3 $lun =="
build/bin/mkfs.lunfs -t demo:vmstore -j 3 "$lun"
echo
echo "== What mkfs wrote: =="
du -h "$lun"
echo
echo "== fsck.lunfs -n -v $lun =="
build/bin/fsck.lunfs -n -v "$lun"
echo
echo "== mkfs.lunfs refuses to overwrite it without -f =="
build/bin/mkfs.lunfs -t demo:vmstore "$lun" || echo "(exit status $?)"
