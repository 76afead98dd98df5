#!/usr/bin/env bash
# A/B of builds on a thin image's first write pass: each round runs every build in turn on
# a fresh file system of one written LUN file, and for each job fio first on a fresh sparse
# file on the host (raw), then on a fresh sparse image in lunfs, back to back. Besides the
# ratio it prints the daemon's CPU (user + system, /proc/PID/stat) per request, which the
# disk's drift on a shared machine moves far less than the ratio.
# Jobs: 4 KiB random writes at QD32 and 1 MiB sequential writes at QD16, not time-based (a
# first pass: every write allocates). Needs ~11 GB in WORK_DIR.
# usage: bench/fuse/thin_ab.sh WORK_DIR ROUNDS RUNTIME_S NAME=BIN_DIR...
set -euo pipefail
W=$(realpath -m "$1")
ROUNDS=$2
RT=$3
shift 3
BUILDS=("$@")
mkdir -p "$W/mnt"
PID=
cleanup() {
  mountpoint -q "$W/mnt" && { fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; }
  [[ -n $PID ]] && { wait "$PID" 2>/dev/null || true; }
  rm -f "$W/lun.img" "$W/raw-thin.img"
}
trap cleanup EXIT
dd if=/dev/zero of="$W/lun.img" bs=1M count=8192 oflag=direct status=none

# one FILE RW BS DEPTH -> "value requests" (IOPS for 4k, MB/s for 1M)
one() {
  fio --name=j --filename="$1" --rw="$2" --bs="$3" --ioengine=libaio --iodepth="$4" --direct=1 \
      --size=3G --runtime="$RT" --output-format=json --output="$W/o.json" >/dev/null
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]["write"]
print("%.0f %d" % (j["bw_bytes"] / 1e6 if sys.argv[2] == "1M" else j["iops"], j["total_ios"]))' "$W/o.json" "$3"
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

echo -e "round\tbuild\tjob\traw\tlunfs\tlunfs/raw\tdaemon_cpu_us_per_request"
for r in $(seq "$ROUNDS"); do
  for nb in "${BUILDS[@]}"; do
    name=${nb%%=*}
    bin=${nb#*=}
    "$bin/mkfs.lunfs" -q -f -t bench:fs -j 2 "$W/lun.img"
    "$bin/mount.lunfs" "$W/lun.img" "$W/mnt" -o lockproto=nolock -f & PID=$!
    for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
    mountpoint -q "$W/mnt" || { echo "mount.lunfs did not mount" >&2; exit 1; }
    for job in "4k randwrite 32" "1M write 16"; do
      set -- $job
      rm -f "$W/raw-thin.img" "$W/mnt/thin.img"
      truncate -s 3G "$W/raw-thin.img" "$W/mnt/thin.img"
      read -r rv _ < <(one "$W/raw-thin.img" "$2" "$1" "$3")
      t0=$(cpu_ticks "$PID")
      read -r lv n < <(one "$W/mnt/thin.img" "$2" "$1" "$3")
      t1=$(cpu_ticks "$PID")
      python3 -c 'import sys; r, b, j, rv, lv, t, n, hz = sys.argv[1:]
print("%s\t%s\t%s\t%s\t%s\t%.2f\t%.0f" % (r, b, j, rv, lv, float(lv) / float(rv), float(t) * 1e6 / int(hz) / int(n)))' \
        "$r" "$name" "$1" "$rv" "$lv" "$((t1 - t0))" "$n" "$(getconf CLK_TCK)"
      rm -f "$W/raw-thin.img" "$W/mnt/thin.img"
    done
    fusermount3 -u "$W/mnt"
    wait "$PID"
    PID=
  done
done
