#!/usr/bin/env bash
# Installs every Debian package lunfs needs to build, test and benchmark (Debian 12, as root).
set -euo pipefail
packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libfuse3-dev fuse3
  corosync libcpg-dev libquorum-dev libcmap-dev libvotequorum-dev libqb-dev
  libxxhash-dev googletest libgtest-dev libbenchmark-dev
  iproute2 util-linux procps psmisc time
  fio qemu-utils gfs2-utils ocfs2-tools
  # tests/fuse/libvirt_pool_test.sh: virsh and libvirtd (its dir storage pool) on a mount
  libvirt-clients libvirt-daemon
  # the cluster tests print a hung daemon's thread stacks with it
  gdb
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
