#!/usr/bin/env bash
# The issue's fio targets in interleaved rounds: each round runs every job on the raw file
# and then on the lunfs image, back to back, so the disk's drift (±50% within minutes)
# hits both sides of a ratio alike; the medians over the rounds are what to quote.
# Jobs: 4 KiB random read/write at QD32 and QD1, 1 MiB sequential read/write at QD16 (on
# a 4 GiB image written in full, and a 4 GiB raw file), and the 4 KiB QD32 first write
# pass of a thin image and its 1 MiB QD16 sequential first pass (a fresh sparse file on each
# side for each).
# Results: WORK/rounds.tsv (round, job, raw, lunfs: IOPS or MB/s and mean latency in µs)
# and the medians on stdout. The LUN file is written in full first (a SAN LUN has no
# host-file-system allocation; see docs/performance.md). Needs ~17 GB in WORK.
# usage: bench/fuse/fio_rounds.sh BUILD_DIR WORK_DIR [ROUNDS] [RUNTIME_S] [thin]
# With "thin", only the thin images' jobs run (no 4 GiB images are written).
set -euo pipefail
BIN=$(realpath "$1")/bin
W=$(realpath -m "$2")
ROUNDS=${3:-5}
RT=${4:-4}
ONLY=${5:-all}
mkdir -p "$W/mnt"
PID=
cleanup() {
  mountpoint -q "$W/mnt" && { fusermount3 -u "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; }
  if [[ -n $PID ]]; then
    for _ in $(seq 50); do kill -0 "$PID" 2>/dev/null || break; sleep 0.1; done
    kill "$PID" 2>/dev/null || true
  fi
  rm -f "$W/lun.img" "$W/raw.img" "$W/raw-thin.img"
}
trap cleanup EXIT

echo "writing the 12 GiB LUN file and the 4 GiB images ..." >&2
dd if=/dev/zero of="$W/lun.img" bs=1M count=12288 oflag=direct status=none
"$BIN/mkfs.lunfs" -q -f -t bench:fs -j 2 "$W/lun.img"
"$BIN/mount.lunfs" "$W/lun.img" "$W/mnt" -o lockproto=nolock -f & PID=$!
for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
mountpoint -q "$W/mnt" || { echo "mount.lunfs did not mount" >&2; exit 1; }
if [[ $ONLY != thin ]]; then
  dd if=/dev/zero of="$W/mnt/img" bs=1M count=4096 oflag=direct status=none
  dd if=/dev/zero of="$W/raw.img" bs=1M count=4096 oflag=direct status=none
fi
sync

# fio FILE RW BS DEPTH [extra] -> "value latency_us" (IOPS for 4k, MB/s for 1M)
one() {
  fio --name=j --filename="$1" --rw="$2" --bs="$3" --ioengine=libaio --iodepth="$4" --direct=1 \
      --size=4G --runtime="$RT" ${5:-} --output-format=json --output="$W/o.json" >/dev/null
  python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
s = j["read"] if j["read"]["io_bytes"] > 0 else j["write"]
v = s["bw_bytes"] / 1e6 if sys.argv[2] == "1M" else s["iops"]
print("%.0f %.1f" % (v, s["clat_ns"]["mean"] / 1000))' "$W/o.json" "$3"
}
OUT=$W/rounds.tsv
echo -e "round\tjob\traw\tlunfs\traw_lat_us\tlunfs_lat_us" > "$OUT"
JOBS=("rand-read-4k-qd32 randread 4k 32" "rand-write-4k-qd32 randwrite 4k 32"
      "rand-read-4k-qd1 randread 4k 1" "rand-write-4k-qd1 randwrite 4k 1"
      "seq-read-1M-qd16 read 1M 16" "seq-write-1M-qd16 write 1M 16")
[[ $ONLY == thin ]] && JOBS=()
THIN_JOBS=("thin-rand-write-4k-qd32 randwrite 4k 32" "thin-seq-write-1M-qd16 write 1M 16")
for r in $(seq "$ROUNDS"); do
  for j in ${JOBS[@]+"${JOBS[@]}"}; do
    set -- $j
    read -r rv rl < <(one "$W/raw.img" "$2" "$3" "$4" --time_based)
    read -r lv ll < <(one "$W/mnt/img" "$2" "$3" "$4" --time_based)
    echo -e "$r\t$1\t$rv\t$lv\t$rl\t$ll" | tee -a "$OUT" >&2
  done
  for j in "${THIN_JOBS[@]}"; do
    set -- $j
    rm -f "$W/raw-thin.img" "$W/mnt/thin.img"
    truncate -s 4G "$W/raw-thin.img" "$W/mnt/thin.img"
    read -r rv rl < <(one "$W/raw-thin.img" "$2" "$3" "$4")
    read -r lv ll < <(one "$W/mnt/thin.img" "$2" "$3" "$4")
    echo -e "$r\t$1\t$rv\t$lv\t$rl\t$ll" | tee -a "$OUT" >&2
    rm -f "$W/raw-thin.img" "$W/mnt/thin.img"
  done
done

# Per job: the median of the rounds' lunfs/raw ratios; at QD1 also the median added latency.
python3 - "$OUT" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
jobs = list(dict.fromkeys(r["job"] for r in rows))
print("%-24s %-40s %s" % ("job", "lunfs/raw per round", "median (added µs at QD1)"))
for job in jobs:
    rs = [r for r in rows if r["job"] == job]
    ratios = [float(r["lunfs"]) / float(r["raw"]) for r in rs]
    line = "%-24s %-40s %.2f" % (job, " ".join("%.2f" % x for x in ratios), statistics.median(ratios))
    if job.endswith("qd1"):
        added = [float(r["lunfs_lat_us"]) - float(r["raw_lat_us"]) for r in rs]
        line += " (+%.0f µs; rounds %s)" % (statistics.median(added), " ".join("%.0f" % a for a in added))
    print(line)
PY
