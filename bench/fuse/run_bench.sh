#!/usr/bin/env bash
# FUSE benchmarks of lunfs, each against its baseline measured in the same run:
#   fio (libaio, O_DIRECT) on a written 4 GiB image through mount.lunfs vs a 4 GiB file
#   on the host file system that holds the LUN file ("raw") vs the FUSE null server;
#   the same jobs on thin (sparse) images, first write pass; metadata (create, stat,
#   readdir, unlink of N files, flat and tree) through the mount vs the host file system.
#   The "-8thr" jobs are 8 threads doing blocking pread/pwrite on one file (QEMU's
#   aio=threads); the others are one libaio queue (aio=native).
# Jobs of one kind run back to back on each target (raw, lunfs, null) so that drift of the
# disk hits all of them alike. Results: WORK/results.tsv; a table with ratios on stdout.
# usage: bench/fuse/run_bench.sh BUILD_DIR WORK_DIR [FIO_RUNTIME_S] [META_FILES]
set -euo pipefail
BIN=$(realpath "$1")/bin
W=$(realpath -m "$2")
RT=${3:-10}
NMETA=${4:-100000}
mkdir -p "$W/mnt" "$W/null"
PIDS=()
cleanup() {
  for m in "$W/mnt" "$W/null"; do
    mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m"; }
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill "$p" 2>/dev/null || true
  done
  # The images are ~20 GB; results.tsv and the fio JSON stay.
  rm -f "$W/lun.img" "$W/raw.img" "$W/raw-thin.img"
}
trap cleanup EXIT

LUN=$W/lun.img RAW=$W/raw.img
rm -f "$LUN" "$RAW" "$W/raw-thin.img"
# Room for the written 4 GiB image and a whole 4 GiB thin image beside it (plus journals).
# Written in full, as a SAN LUN is: on a sparse LUN file every first write of lunfs to a
# LUN block would also be an allocation of the host file system, which takes the LUN
# file's inode lock exclusively (ext4 does, for direct writes into holes) and serialises
# lunfs's writes: the thin jobs measured 0.10x raw that way and 0.21x on a written LUN.
echo "writing the 12 GiB LUN file ..." >&2
dd if=/dev/zero of="$LUN" bs=1M count=12288 oflag=direct status=none
"$BIN/mkfs.lunfs" -q -f -t bench:fs -j 2 "$LUN"
"$BIN/mount.lunfs" "$LUN" "$W/mnt" -o lockproto=nolock -f & PIDS+=($!)
"$BIN/null_fuse" "$W/null" $((4 << 30)) 2>"$W/null.log" & PIDS+=($!)
for _ in $(seq 100); do mountpoint -q "$W/mnt" && mountpoint -q "$W/null" && break; sleep 0.1; done
mountpoint -q "$W/mnt" || { echo "mount.lunfs did not mount" >&2; exit 1; }

echo "writing the 4 GiB images (lunfs and raw) ..." >&2
dd if=/dev/zero of="$W/mnt/img" bs=1M count=4096 oflag=direct status=none
dd if=/dev/zero of="$RAW" bs=1M count=4096 oflag=direct status=none
sync

RESULTS=$W/results.tsv
echo -e "group\tjob\ttarget\tMBps\tIOPS\tlat_us" > "$RESULTS"
# fio JSON -> "MB/s IOPS mean-completion-latency-us" of the job's read or write side.
parse() { python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))["jobs"][0]
s=j["read"] if j["read"]["io_bytes"]>0 else j["write"]
print("%.1f\t%.0f\t%.1f"%(s["bw_bytes"]/1e6, s["iops"], s["clat_ns"]["mean"]/1000))' "$1"; }
run_fio() { # group job target file rw bs depth|Nthr [extra]
  local out=$W/fio-$1-$2-$3.json queue="--ioengine=libaio --iodepth=$7"
  [[ $7 == *thr ]] && queue="--ioengine=psync --numjobs=${7%thr} --thread"
  fio --name="$2" --filename="$4" --rw="$5" --bs="$6" $queue --direct=1 \
      --size=4G --runtime="$RT" ${8:-} --group_reporting --output-format=json --output="$out" >/dev/null
  echo -e "$1\t$2\t$3\t$(parse "$out")" | tee -a "$RESULTS" >&2
}
JOBS=("seq-read-1M-qd16 read 1M 16" "seq-write-1M-qd16 write 1M 16"
      "rand-read-4k-qd1 randread 4k 1" "rand-read-4k-qd32 randread 4k 32"
      "rand-write-4k-qd1 randwrite 4k 1" "rand-write-4k-qd32 randwrite 4k 32"
      "rand-read-4k-8thr randread 4k 8thr" "rand-write-4k-8thr randwrite 4k 8thr")
for j in "${JOBS[@]}"; do
  set -- $j
  run_fio written "$1" raw "$RAW" "$2" "$3" "$4" --time_based
  run_fio written "$1" lunfs "$W/mnt/img" "$2" "$3" "$4" --time_based
  run_fio written "$1" null "$W/null/img" "$2" "$3" "$4" --time_based
done
# Thin images, first write pass: every block written once (until RT seconds are up).
for j in "seq-write-1M-qd16 write 1M 16" "rand-write-4k-qd32 randwrite 4k 32"; do
  set -- $j
  rm -f "$W/raw-thin.img" "$W/mnt/thin.img"
  truncate -s 4G "$W/raw-thin.img" "$W/mnt/thin.img"
  run_fio thin "$1" raw "$W/raw-thin.img" "$2" "$3" "$4"
  run_fio thin "$1" lunfs "$W/mnt/thin.img" "$2" "$3" "$4"
done
rm -f "$W/raw-thin.img" "$W/mnt/thin.img"

echo "metadata, $NMETA files ..." >&2
rm -rf "$W/host-meta" "$W/mnt/meta"
mkdir -p "$W/host-meta" "$W/mnt/meta"
for target in host lunfs; do
  dir=$W/host-meta
  [[ $target == lunfs ]] && dir=$W/mnt/meta
  "$BIN/metadata_bench" "$dir" "$NMETA" | while read -r layout phase secs ops; do
    echo -e "metadata-$layout\t$phase\t$target\t-\t$ops\t-" | tee -a "$RESULTS" >&2
  done
done

# The null server saw this many writes to its one file at once (parallel direct writes).
fusermount3 -u "$W/null" && for _ in $(seq 50); do [[ -s $W/null.log ]] && break; sleep 0.1; done
cat "$W/null.log" >&2

# Ratios: lunfs / baseline of each job. At QD1, own_us = lunfs latency - raw latency - the
# null server's latency: what lunfs's own work adds beyond the disk and the FUSE round trip.
python3 - "$RESULTS" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {(r["group"], r["job"], r["target"]): r for r in rows}
print("%-10s %-20s %12s %12s %12s %8s %10s %8s" % ("group", "job", "baseline", "lunfs", "null", "ratio", "added_us", "own_us"))
for (g, job, t), r in by.items():
    if t != "lunfs": continue
    base = by.get((g, job, "raw")) or by.get((g, job, "host"))
    null = by.get((g, job, "null"))
    key = "MBps" if job.startswith("seq") else "IOPS"
    b, l = float(base[key]), float(r[key])
    added = "-" if r["lat_us"] == "-" else "%.0f" % (float(r["lat_us"]) - float(base["lat_us"]))
    own = "-"
    if job.endswith("qd1") and null:
        own = "%.0f" % (float(r["lat_us"]) - float(base["lat_us"]) - float(null["lat_us"]))
    print("%-10s %-20s %12s %12s %12s %8.2f %10s %8s" % (g, job, base[key], r[key], null[key] if null else "-", l / b, added, own))
PY
