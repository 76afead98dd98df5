// What the core-level benchmarks share: giving up with a message on an error a benchmark
// cannot go on from, and formatting a LUN for a fresh round (2 journals, defaults else).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "fs/device/block_device.h"
#include "fs/result.h"
#include "fs/format/superblock.h"
#include "mkfs/formatter.h"

namespace lunfs::bench {

[[noreturn]] inline void die(const std::string& what, const Status& st) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), st.to_string().c_str());
  std::exit(1);
}

template <typename T>
T must(Result<T> r, const std::string& what) {
  if (!r) die(what, r.status());
  return std::move(r).value();
}

inline ondisk::Superblock format_lun(BlockDevice& dev, const std::string& fs_name) {
  MkfsOptions mo;
  mo.cluster_name = "bench";
  mo.fs_name = fs_name;
  mo.journals = 2;
  auto sb = must(plan_filesystem(dev, mo), "mkfs");
  if (auto st = write_filesystem(dev, sb); !st) die("mkfs", st);
  return sb;
}

}  // namespace lunfs::bench
