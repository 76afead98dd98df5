// In-memory inodes; see inode.h.
#include "fs/core/inode.h"

#include <chrono>

#include "fs/core/volume.h"

namespace lunfs {

ondisk::Timespec now_timespec() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch()).count();
  return {ns / 1000000000, static_cast<uint32_t>(ns % 1000000000)};
}

void CoreInode::encode_into(Transaction& txn) {
  if (freed) return;
  auto img = txn.new_block();
  ondisk::encode_inode(d, img->span(), ino_, txn.sequence(), vol_.sb.csum_seed);
  txn.put(ino_, img);
  times_dirty = false;
}

void CoreInode::rollback() {
  // An inode created by the failed transaction has no valid block to go back to.
  freed = !load().is_ok();
}

Status CoreInode::load() {
  auto img = vol_.cache.get(ino_);
  if (!img) return img.status();
  auto dec = ondisk::decode_inode((*img)->span(), ino_, vol_.sb.csum_seed, vol_.g);
  if (!dec) {
    vol_.log_line("lunfs: " + dec.status().message());
    return dec.status();
  }
  d = std::move(*dec);
  return Status::ok();
}

Result<std::shared_ptr<CoreInode>> InodeCache::get(uint64_t ino) {
  auto it = map_.find(ino);
  if (it != map_.end() && it->second->stale) {
    CoreInode& node = *it->second;
    LUNFS_ASSIGN(bool live, vol_.alloc.is_inode(ino));
    if (!live) return error(ESTALE, "inode " + std::to_string(ino) + " was removed by another node");
    LUNFS_TRY(node.load());
    node.decoded_root.reset();
    node.decoded_root_source.clear();
    node.stale = false;
    return it->second;
  }
  if (it != map_.end() && !it->second->freed) return it->second;
  LUNFS_ASSIGN(bool live, vol_.alloc.is_inode(ino));
  if (!live) return error(ESTALE, "inode " + std::to_string(ino) + " does not exist (any more)");
  auto node = std::make_shared<CoreInode>(vol_, ino);
  LUNFS_TRY(node->load());
  map_[ino] = node;
  return node;
}

std::shared_ptr<CoreInode> InodeCache::create(uint64_t ino) {
  auto node = std::make_shared<CoreInode>(vol_, ino);
  map_[ino] = node;
  return node;
}

void InodeCache::forget(uint64_t ino) { map_.erase(ino); }

void InodeCache::invalidate(uint64_t ino) {
  auto it = map_.find(ino);
  if (it == map_.end()) return;
  if (it->second->refs == 0 || it->second->freed) {
    map_.erase(it);
    return;
  }
  it->second->stale = true;
  it->second->times_dirty = false;  // written by sync_times before the glock went
}

bool InodeCache::last_entry(uint64_t ino, uint64_t* parent, std::string* name) const {
  auto it = map_.find(ino);
  if (it == map_.end() || it->second->entry_parent == 0) return false;
  *parent = it->second->entry_parent;
  *name = it->second->entry_name;
  return true;
}

void InodeCache::release_iopen_pins() {
  for (auto& [ino, node] : map_) node->iopen.release();
}

Status InodeCache::sync_times(uint64_t ino) {
  auto it = map_.find(ino);
  if (it == map_.end()) return Status::ok();
  CoreInode& node = *it->second;
  if (!node.times_dirty || node.freed || node.stale || !vol_.check_writable()) return Status::ok();
  auto txn = vol_.begin();
  node.dirty(*txn);
  return txn->commit();
}

void InodeCache::reload_all() {
  for (auto& [ino, node] : map_) {
    if (node->freed || node->stale) continue;
    const ondisk::Inode before = node->d;
    if (!node->load()) {
      node->stale = true;  // read again (and reported) on next use
      continue;
    }
    if (node->times_dirty) {
      node->d.atime = before.atime;
      node->d.mtime = before.mtime;
      node->d.ctime = before.ctime;
    }
  }
}

std::vector<std::shared_ptr<CoreInode>> InodeCache::times_dirty() {
  std::vector<std::shared_ptr<CoreInode>> out;
  for (auto& [n, node] : map_) {
    if (node->times_dirty && !node->freed && !node->stale) out.push_back(node);
  }
  return out;
}

}  // namespace lunfs
