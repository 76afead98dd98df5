// The driver of fsck.lunfs's checking passes, in order: superblocks, node slots, resource
// groups and their bitmaps, inodes (extent trees, xattrs, directories), link counts and
// reachability, block ownership against the bitmaps, and statfs totals. Each pass has its
// own file (checker_state.h lists them).
#include "fsck/checker.h"

#include <algorithm>

#include "fsck/checker_state.h"

namespace lunfs {

size_t FsckReport::errors() const {
  return std::count_if(findings.begin(), findings.end(),
                       [](const FsckFinding& f) { return f.kind == FsckFinding::Kind::kError; });
}
size_t FsckReport::warnings() const { return findings.size() - errors(); }
bool FsckReport::mentions(const std::string& needle) const {
  return std::any_of(findings.begin(), findings.end(),
                     [&](const FsckFinding& f) { return f.text.find(needle) != std::string::npos; });
}

namespace fsck {

using namespace ondisk;

Result<FsckReport> Checker::run() {
  LUNFS_TRY(load_superblock());
  const Geometry& g = report_.sb.geometry;
  phase("1/7 superblocks", 1);
  progress("Phase 1: superblocks (" + n(g.block_count) + " blocks of " + n(g.block_size) + " bytes)");
  if (dev_.size_bytes() < g.block_count * g.block_size) {
    error("the device (" + n(dev_.size_bytes()) + " bytes) is smaller than the file system (" +
          n(g.block_count * g.block_size) + " bytes): was the LUN shrunk?");
    return report_;  // nothing beyond the device's end can be read
  }
  if (have_primary_) compare_backup();
  phase("2/7 node slots", 1);
  progress("Phase 2: node slots (" + n(g.journal_count) + " journals)");
  check_slots();
  phase("3/7 resource groups", g.rgrp_count);
  progress("Phase 3: resource groups (" + n(g.rgrp_count) + ")");
  check_rgrps();
  phase("4/7 inodes", g.rgrp_count);
  progress("Phase 4: inodes, extent trees, directories, xattrs");
  check_inodes();
  phase("5/7 link counts", 1);
  progress("Phase 5: link counts and reachability");
  check_links();
  phase("6/7 block ownership", g.rgrp_count);
  progress("Phase 6: block ownership against the bitmaps");
  check_ownership();
  phase("7/7 statfs totals", 1);
  progress("Phase 7: statfs totals");
  check_statfs();
  step(1);
  return report_;
}

}  // namespace fsck

Result<FsckReport> check_filesystem(BlockDevice& dev, const FsckOptions& options) {
  return fsck::Checker(dev, options).run();
}

}  // namespace lunfs
