#!/usr/bin/env bash
# fsync latency at QD1: fio 4 KiB writes, each followed by fdatasync (psync, O_DIRECT), on
#   raw      a LUN-sized file on the host file system, written in full beforehand (the baseline);
#   prealloc an image through mount.lunfs, written in full beforehand: overwrites, no journal;
#   append   a new file through mount.lunfs, appended to: every write allocates, so every
#            fdatasync is a journal commit.
# The three run back to back in each of ROUNDS rounds, so drift of the disk hits them alike.
# Prints mean latency per write+fdatasync (from IOPS), p99 of the write and of the fdatasync,
# and the ratio of each mean to raw's. Not a test (docs/journal.md has figures).
# usage: bench/journal/fsync_latency.sh BUILD_DIR WORK_DIR [SECONDS_PER_JOB] [ROUNDS]
set -euo pipefail
BIN=$(realpath "$1")/bin
W=$(realpath -m "$2")
RT=${3:-10}
ROUNDS=${4:-3}
SIZE_MIB=1024
mkdir -p "$W/mnt"
DAEMON=
cleanup() {
  if mountpoint -q "$W/mnt"; then fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; fi
  if [[ -n $DAEMON ]]; then
    for _ in $(seq 100); do kill -0 "$DAEMON" 2>/dev/null || break; sleep 0.1; done
    kill "$DAEMON" 2>/dev/null || true
  fi
  rm -f "$W/lun.img" "$W/raw.img" "$W"/fio-*.json
}
trap cleanup EXIT

LUN=$W/lun.img RAW=$W/raw.img
rm -f "$LUN" "$RAW"
truncate -s 4G "$LUN"
"$BIN/mkfs.lunfs" -q -f -t bench:fsync -j 2 "$LUN"
"$BIN/mount.lunfs" "$LUN" "$W/mnt" -o lockproto=nolock -f & DAEMON=$!
for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
mountpoint -q "$W/mnt" || { echo "mount.lunfs did not mount" >&2; exit 1; }
echo "writing the ${SIZE_MIB} MiB images (raw and through the mount) ..." >&2
dd if=/dev/zero of="$RAW" bs=1M count=$SIZE_MIB oflag=direct status=none
dd if=/dev/zero of="$W/mnt/prealloc.img" bs=1M count=$SIZE_MIB oflag=direct status=none
sync

# fio JSON -> "iops write_p99_us sync_p99_us"
parse() { python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))["jobs"][0]
w=j["write"]; s=j["sync"]
p=lambda d: d["percentile"]["99.000000"]/1000
print("%.1f %.1f %.1f"%(w["iops"], p(w["clat_ns"]), p(s["lat_ns"])))' "$1"; }
run() { # target file rw [extra]
  local out=$W/fio-$1.json
  fio --name="$1" --filename="$2" --rw="$3" --bs=4k --iodepth=1 --ioengine=psync --direct=1 --fdatasync=1 \
      --size=${SIZE_MIB}M --runtime="$RT" ${4:-} --output-format=json --output="$out" >/dev/null
  echo "$1 $(parse "$out")"
}
RESULTS=$W/fsync-results.txt
: > "$RESULTS"
for r in $(seq "$ROUNDS"); do
  run raw "$RAW" randwrite --time_based | tee -a "$RESULTS" >&2
  run prealloc "$W/mnt/prealloc.img" randwrite --time_based | tee -a "$RESULTS" >&2
  rm -f "$W/mnt/append.img"
  run append "$W/mnt/append.img" write --fallocate=none | tee -a "$RESULTS" >&2
done
python3 - "$RESULTS" <<'PY'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    t, iops, wp99, sp99 = line.split()
    rows.setdefault(t, []).append((float(iops), float(wp99), float(sp99)))
def med(t, i): return statistics.median(r[i] for r in rows[t])
raw_mean = 1e6 / med("raw", 0)
print("4 KiB write + fdatasync, QD1, median of %d rounds" % len(rows["raw"]))
print("%-9s %12s %14s %16s %12s" % ("target", "mean us/op", "write p99 us", "fdatasync p99 us", "mean / raw"))
for t in ("raw", "prealloc", "append"):
    mean = 1e6 / med(t, 0)
    print("%-9s %12.0f %14.0f %16.0f %12.2f" % (t, mean, med(t, 1), med(t, 2), mean / raw_mean))
PY
