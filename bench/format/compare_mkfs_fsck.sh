#!/usr/bin/env bash
# Compares mkfs.lunfs with mkfs.gfs2 and mkfs.ocfs2 on a sparse 1 TiB image with 8
# journals, and fsck.lunfs -n with fsck.gfs2 -n and fsck.ocfs2 -fn on each fresh image.
# Runs are interleaved and repeated; the median wall time and peak memory are printed side
# by side with ratios, because these machines are noisy.
#
#   bench/format/compare_mkfs_fsck.sh [BUILD_DIR] [ROUNDS]     (default: build, 3)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
rounds=${2:-3}
bin=$(cd "$build/bin" && pwd)
size=${LUNFS_BENCH_SIZE:-1T}
work=$(mktemp -d /var/tmp/lunfs-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

for tool in mkfs.gfs2 mkfs.ocfs2 fsck.gfs2 fsck.ocfs2; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install gfs2-utils ocfs2-tools" >&2; exit 1; }
done

# measure NAME CMD...: appends "seconds maxrss_kib" to $work/NAME
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/t" "$@" </dev/null >/dev/null 2>"$work/err" || {
    echo "$name failed:" >&2; cat "$work/err" >&2; exit 1; }
  cat "$work/t" >>"$work/$name"
}

for ((r = 1; r <= rounds; r++)); do
  for fs in lunfs gfs2 ocfs2; do
    img=$work/$fs.img
    rm -f "$img"; truncate -s "$size" "$img"
    case $fs in
      lunfs) measure mkfs.lunfs "$bin/mkfs.lunfs" -q -t bench:fs -j 8 "$img"
             measure fsck.lunfs "$bin/fsck.lunfs" -n "$img" ;;
      gfs2)  measure mkfs.gfs2 mkfs.gfs2 -O -p lock_nolock -j 8 "$img"
             measure fsck.gfs2 fsck.gfs2 -n "$img" ;;
      ocfs2) measure mkfs.ocfs2 mkfs.ocfs2 -q -F -M local -N 8 "$img"
             measure fsck.ocfs2 fsck.ocfs2 -fn "$img" ;;
    esac
    rm -f "$img"
  done
done

median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
stat_of() { awk -v c="$2" '{print $c}' "$work/$1" | median; }

printf "%s image, 8 journals, %d interleaved rounds, medians\n\n" "$size" "$rounds"
printf "%-12s %10s %12s %14s %12s\n" tool seconds "peak MiB" "time vs lunfs" "mem vs lunfs"
for op in mkfs fsck; do
  base_t=$(stat_of "$op.lunfs" 1); base_m=$(stat_of "$op.lunfs" 2)
  for fs in lunfs gfs2 ocfs2; do
    t=$(stat_of "$op.$fs" 1); m=$(stat_of "$op.$fs" 2)
    awk -v n="$op.$fs" -v t="$t" -v m="$m" -v bt="$base_t" -v bm="$base_m" 'BEGIN {
      printf "%-12s %10.3f %12.1f %13.1fx %11.1fx\n", n, t, m / 1024, (bt > 0 ? t / bt : 0), m / bm }'
  done
done
