// fsck pass 5: link counts and reachability: every entry names an inode of its type,
// every inode is named (or unlinked while open), directories form a tree under the root.
#include "fsck/checker_state.h"

#include <sys/stat.h>

#include "fs/format/dir_format.h"

namespace lunfs::fsck {

using namespace ondisk;

void Checker::check_links() {
  for (const EntryRef& e : entries_) {
    const std::string where = "directory " + n(e.dir) + " entry '" + e.name + "'";
    auto it = inodes_.find(e.target);
    if (it == inodes_.end()) {
      if (bad_inodes_.count(e.target)) continue;  // already reported as damaged
      error(where + " points at block " + n(e.target) + ", which is not an inode");
      continue;
    }
    InodeInfo& target = it->second;
    if (target.unlinked_state) error(where + " names inode " + n(e.target) + ", which is marked unlinked");
    if (dirent_type(target.mode) != e.type) {
      error(where + ": entry type " + n(e.type) + " differs from inode " + n(e.target) + "'s file type");
    }
    ++target.entry_refs;
    target.named_from = e.dir;
    if ((target.mode & S_IFMT) == S_IFDIR) {
      if (e.target == report_.sb.root_inode) error(where + " names the root directory");
      if (target.parent != e.dir) {
        error(where + ": directory " + n(e.target) + " says its parent is " + n(target.parent));
      }
      if (target.entry_refs > 1) error("directory " + n(e.target) + " is named by more than one entry");
      ++inodes_[e.dir].subdirs;
    }
  }
  for (const auto& [ino, info] : inodes_) {
    bool is_dir = (info.mode & S_IFMT) == S_IFDIR;
    bool is_root = ino == report_.sb.root_inode;
    if (info.unlinked_state) {
      warning("inode " + n(ino) + " was unlinked while open and is not freed yet (the next mount frees it)");
      continue;
    }
    if (!is_root && info.entry_refs == 0) {
      error("inode " + n(ino) + " is in no directory (lost file)");
      continue;
    }
    uint64_t expected = is_dir ? 2 + info.subdirs : info.entry_refs;
    if (info.nlink != expected) {
      error("inode " + n(ino) + ": link count " + n(info.nlink) + ", but " + n(expected) +
            (is_dir ? " expected from its subdirectories" : " directory entries name it"));
    }
  }
  // A directory cycle detached from the root has every directory named exactly once,
  // so follow parent pointers up from each directory.
  for (const auto& [ino, info] : inodes_) {
    if ((info.mode & S_IFMT) != S_IFDIR || info.unlinked_state) continue;
    uint64_t cur = ino;
    size_t steps = 0;
    while (cur != report_.sb.root_inode && steps++ <= inodes_.size()) {
      auto it = inodes_.find(cur);
      if (it == inodes_.end()) break;
      cur = it->second.parent;
    }
    if (cur != report_.sb.root_inode && steps > inodes_.size()) {
      error("directory " + n(ino) + " is in a loop of directories detached from the root");
    }
  }
}

}  // namespace lunfs::fsck
