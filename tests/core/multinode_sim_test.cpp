// The deterministic multi-node simulation: three mounts of one device, random namespace,
// data and attribute operations from all of them, and after every step every node must
// see what a reference model says (the whole tree walked from each node: names, inode
// numbers, types, modes, link counts, sizes, contents, symlink targets, xattrs, "..")
// and agree on statfs; fsck over the device (every journal checkpointed) finds nothing.
// Memory pressure (a random held lock called back) is mixed in and must be harmless.
// Files are opened (a frontend reference) on some nodes and unlinked on others: an open
// file that lost its names must keep its data for its openers, and be freed (ESTALE on
// every node) when the last of them closes it (iopen glocks, decision 11).
//
// LUNFS_SIM_SEED=<n> runs that seed only, LUNFS_SIM_STEPS=<n> sets the steps per seed,
// LUNFS_SIM_FSCK_EVERY=<n> runs fsck every n steps (default every step). A failure
// prints the seed, the step and the operations so far.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/core/sim_cluster.h"

namespace lunfs::testing {
namespace {

uint64_t env_or(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : dflt;
}

// What the file system should hold.
struct MNode {
  uint32_t mode = 0;  // type and permissions
  std::string data;   // file contents or symlink target
  std::map<std::string, std::string> xattrs;
  std::map<std::string, uint64_t> entries;  // directories: name -> model id
  uint64_t parent = 0;                      // directories
  uint32_t links = 0;                       // entries naming it (files, symlinks)
  uint64_t ino = 0;
  bool is_dir() const { return S_ISDIR(mode); }
  bool is_reg() const { return S_ISREG(mode); }
};

class Simulation {
 public:
  // 1 KiB blocks: directories outgrow the inode and files their extent root after a few
  // dozen entries or extents, so leaves, hash blocks and extent nodes are in play.
  Simulation(uint64_t seed, uint32_t nodes)
      : seed_(seed), rng_(seed), cluster_(nodes, seed ^ 0x5eed, SimLayout{.block_size = 1024}) {
    if (!cluster_.ok()) return;
    bs_ = cluster_.fs(0).superblock().geometry.block_size;
    MNode root;
    root.mode = S_IFDIR | 0755;
    root.ino = cluster_.root();
    auto a = cluster_.fs(0).getattr(root.ino);
    if (a) root.mode = a->mode;
    model_[0] = root;
  }

  bool ok() const { return cluster_.ok(); }

  // Runs `steps` steps; false (with a failure reported) at the first divergence.
  bool run(uint64_t steps, uint64_t fsck_every) {
    for (step_ = 1; step_ <= steps; ++step_) {
      if (!one_step()) return false;
      if (!verify()) return false;
      if (fsck_every && step_ % fsck_every == 0) {
        auto errors = cluster_.fsck_errors();
        if (!errors.empty()) return fail("fsck: " + errors.front() + (errors.size() > 1 ? " (and more)" : ""));
      }
    }
    while (!opens_.empty()) {  // the last closes free what is left unlinked
      const Open o = opens_.back();
      opens_.pop_back();
      log_.push_back("node " + std::to_string(o.node) + ": close #" + std::to_string(o.ino) + " (end)");
      if (!expect(cluster_.fs(o.node).forget(o.ino, 1), 0, log_.back())) return false;
    }
    for (size_t i = 0; i < cluster_.size(); ++i) {
      for (const auto& [ino, data] : orphans_) {
        if (cluster_.fs(i).getattr(ino).err() != ESTALE) return fail("inode " + std::to_string(ino) + " not freed after its last close");
      }
    }
    cluster_.expect_clean_unmount();
    if (::testing::Test::HasFailure()) return fail("at unmount");
    return true;
  }

 private:
  uint64_t pick(uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  std::string random_bytes(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>('a' + pick(26));
    return s;
  }

  bool fail(const std::string& what) {
    std::ostringstream out;
    out << "multi-node simulation failed: seed " << seed_ << ", step " << step_ << ": " << what
        << "\nreproduce: LUNFS_SIM_SEED=" << seed_ << " LUNFS_SIM_STEPS=" << step_
        << " core_multinode_tests --gtest_filter=MultiNodeSim.*\noperations:\n";
    for (size_t i = 0; i < log_.size(); ++i) out << "  " << (i + 1) << ": " << log_[i] << "\n";
    ADD_FAILURE() << out.str();
    return false;
  }

  // Model queries.
  std::vector<uint64_t> dirs() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : model_) if (n.is_dir()) out.push_back(id);
    return out;
  }
  struct Entry {
    uint64_t dir;
    std::string name;
    uint64_t id;
  };
  std::vector<Entry> entries() const {
    std::vector<Entry> out;
    for (const auto& [id, n] : model_) {
      for (const auto& [name, child] : n.entries) out.push_back({id, name, child});
    }
    return out;
  }
  std::vector<uint64_t> files() const {
    std::vector<uint64_t> out;
    for (const auto& [id, n] : model_) if (n.is_reg()) out.push_back(id);
    return out;
  }
  bool is_ancestor(uint64_t a, uint64_t d) const {
    for (uint64_t cur = d;; cur = model_.at(cur).parent) {
      if (cur == a) return true;
      if (cur == 0) return false;
    }
  }
  uint32_t nlink(const MNode& n) const {
    if (!n.is_dir()) return n.links;
    uint32_t sub = 0;
    for (const auto& [name, c] : n.entries) sub += model_.at(c).is_dir();
    return 2 + sub;
  }
  std::string path(uint64_t id) const {
    if (id == 0) return "/";
    const MNode& n = model_.at(id);
    if (n.is_dir()) {
      const MNode& p = model_.at(n.parent);
      for (const auto& [name, c] : p.entries) {
        if (c == id) return (n.parent == 0 ? "" : path(n.parent)) + "/" + name;
      }
    }
    return "#" + std::to_string(n.ino);
  }
  std::string where(uint64_t dir, const std::string& name) const {
    return (dir == 0 ? "" : path(dir)) + "/" + name;
  }
  std::string fresh_name(char kind) { return std::string(1, kind) + std::to_string(next_name_++); }
  void unlink_model(uint64_t dir, const std::string& name) {
    uint64_t id = model_[dir].entries.at(name);
    model_[dir].entries.erase(name);
    MNode& n = model_[id];
    if (n.is_dir()) {
      model_.erase(id);
    } else if (--n.links == 0) {
      for (const Open& o : opens_) {
        if (o.ino == n.ino) orphans_[n.ino] = n.data;  // open somewhere: the data stays
      }
      model_.erase(id);
    }
  }

  // Opens (a FUSE lookup's reference), closes, and reads of files unlinked while open.
  bool open_close_step(size_t node, FileSystem& fs, const std::string& on) {
    auto all_entries = entries();
    if (!opens_.empty() && chance(0.5)) {
      const size_t k = pick(opens_.size());
      const Open o = opens_[k];
      if (orphans_.count(o.ino) && chance(0.5)) {
        const std::string& want = orphans_[o.ino];
        log_.push_back("node " + std::to_string(o.node) + ": read open unlinked #" + std::to_string(o.ino));
        std::string buf(want.size() + 10, '\0');
        auto got = cluster_.fs(o.node).read(o.ino, 0, std::as_writable_bytes(std::span(buf.data(), buf.size())));
        if (!got) return fail(log_.back() + ": " + got.status().to_string());
        buf.resize(*got);
        if (buf != want) return fail(log_.back() + ": read " + std::to_string(buf.size()) + " bytes that differ");
        return true;
      }
      log_.push_back("node " + std::to_string(o.node) + ": close #" + std::to_string(o.ino));
      opens_.erase(opens_.begin() + static_cast<ptrdiff_t>(k));
      if (!expect(cluster_.fs(o.node).forget(o.ino, 1), 0, log_.back())) return false;
      bool still_open = std::any_of(opens_.begin(), opens_.end(), [&](const Open& x) { return x.ino == o.ino; });
      if (orphans_.count(o.ino) && !still_open) {
        orphans_.erase(o.ino);
        // The last user freed it: gone for every node.
        for (size_t i = 0; i < cluster_.size(); ++i) {
          auto a = cluster_.fs(i).getattr(o.ino);
          if (a.is_ok() || a.err() != ESTALE) {
            return fail(log_.back() + ": node " + std::to_string(i) + " still finds the inode after its last close (" +
                        (a ? std::string("nlink ") + std::to_string(a->nlink) : a.status().to_string()) + ")");
          }
        }
      }
      return true;
    }
    std::vector<Entry> regular;
    for (const Entry& e : all_entries) {
      if (model_.at(e.id).is_reg()) regular.push_back(e);
    }
    if (regular.empty()) return true;
    const Entry e = regular[pick(regular.size())];
    log_.push_back(on + "open " + where(e.dir, e.name));
    auto a = fs.lookup(model_[e.dir].ino, e.name, FileSystem::Ref::kHold);
    if (!expect(a.status(), 0, log_.back())) return false;
    opens_.push_back({node, a->ino});
    return true;
  }

  // Checks an operation's outcome against the model's expectation (0 = success).
  bool expect(const Status& st, int want_errno, const std::string& what) {
    int got = st ? 0 : st.err();
    if (got != want_errno) {
      return fail(what + ": expected " + (want_errno ? std::string(strerror(want_errno)) : "success") + ", got " +
                  (st ? "success" : st.to_string()));
    }
    return true;
  }

  bool one_step() {
    // Memory pressure between operations.
    if (chance(0.08)) {
      std::string what;
      if (cluster_.locks().demote_random(&what)) log_.push_back("pressure: " + what);
    }
    const size_t node = pick(cluster_.size());
    FileSystem& fs = cluster_.fs(node);
    const std::string on = "node " + std::to_string(node) + ": ";
    auto all_dirs = dirs();
    auto all_entries = entries();
    auto all_files = files();
    if (chance(0.1)) return open_close_step(node, fs, on);
    const uint64_t r = pick(100);

    if (r < 14 || all_files.empty()) {  // create a file or symlink
      uint64_t dir = all_dirs[pick(all_dirs.size())];
      bool sym = chance(0.2);
      std::string name = fresh_name(sym ? 's' : 'f');
      MNode n;
      Result<Attr> a = error(EIO, "");
      if (sym) {
        n.mode = S_IFLNK | 0777;
        n.data = random_bytes(1 + pick(60));
        log_.push_back(on + "symlink " + where(dir, name) + " -> " + n.data);
        a = fs.symlink(model_[dir].ino, name, n.data, {});
      } else {
        n.mode = S_IFREG | 0644;
        log_.push_back(on + "create " + where(dir, name));
        a = fs.mknod(model_[dir].ino, name, n.mode, 0, {});
      }
      if (!expect(a.status(), 0, log_.back())) return false;
      n.ino = a->ino;
      n.links = 1;
      uint64_t id = next_id_++;
      model_[id] = n;
      model_[dir].entries[name] = id;
      return true;
    }
    if (r < 20) {  // mkdir
      uint64_t dir = all_dirs[pick(all_dirs.size())];
      std::string name = fresh_name('d');
      log_.push_back(on + "mkdir " + where(dir, name));
      auto a = fs.mkdir(model_[dir].ino, name, 0755, {});
      if (!expect(a.status(), 0, log_.back())) return false;
      MNode n;
      n.mode = S_IFDIR | 0755;
      n.ino = a->ino;
      n.parent = dir;
      uint64_t id = next_id_++;
      model_[id] = n;
      model_[dir].entries[name] = id;
      return true;
    }
    if (r < 16 && chance(0.3)) {  // a burst of creates: directories grow past inline into hashed leaves
      uint64_t dir = all_dirs[pick(all_dirs.size())];
      const size_t count = 10 + pick(30);
      log_.push_back(on + "create " + std::to_string(count) + " files in " + path(dir));
      for (size_t i = 0; i < count; ++i) {
        std::string name = fresh_name('f');
        auto a = fs.mknod(model_[dir].ino, name, S_IFREG | 0644, 0, {});
        if (!expect(a.status(), 0, log_.back() + ": " + name)) return false;
        MNode n;
        n.mode = S_IFREG | 0644;
        n.ino = a->ino;
        n.links = 1;
        uint64_t id = next_id_++;
        model_[id] = n;
        model_[dir].entries[name] = id;
      }
      return true;
    }
    if (r < 42 && chance(0.1)) {  // every other block: more extents than the inode holds
      uint64_t id = all_files[pick(all_files.size())];
      MNode& n = model_[id];
      const uint64_t first = pick(4), count = 20 + pick(60);
      log_.push_back(on + "write every other block of " + path(id) + " from block " + std::to_string(first) + ", " +
                     std::to_string(count) + " blocks");
      for (uint64_t b = first; b < first + 2 * count; b += 2) {
        std::string data = random_bytes(bs_);
        auto w = fs.write(n.ino, b * bs_, std::as_bytes(std::span(data.data(), data.size())));
        if (!expect(w.status(), 0, log_.back())) return false;
        if (n.data.size() < (b + 1) * bs_) n.data.resize((b + 1) * bs_, '\0');
        n.data.replace(b * bs_, bs_, data);
      }
      return true;
    }
    if (r < 42) {  // write
      uint64_t id = all_files[pick(all_files.size())];
      MNode& n = model_[id];
      uint64_t off = 0, len = 0;
      switch (pick(5)) {
        case 0: off = pick(n.data.size() + 100); len = 1 + pick(200); break;                // small
        case 1: off = pick(8) * bs_; len = bs_; break;                                     // one block
        case 2: off = pick(6) * bs_; len = (2 + pick(3)) * bs_; break;                     // several blocks
        case 3: off = n.data.size() + pick(2 * bs_); len = 1 + pick(bs_); break;            // extending
        default: off = n.data.empty() ? 0 : pick(n.data.size()); len = 1 + pick(3 * bs_ / 2); break;  // overwrite
      }
      std::string data = random_bytes(len);
      log_.push_back(on + "write " + path(id) + " at " + std::to_string(off) + " len " + std::to_string(len));
      auto w = fs.write(n.ino, off, std::as_bytes(std::span(data.data(), data.size())));
      if (!expect(w.status(), 0, log_.back())) return false;
      if (*w != len) return fail(log_.back() + ": short write " + std::to_string(*w));
      if (n.data.size() < off + len) n.data.resize(off + len, '\0');
      n.data.replace(off, len, data);
      return true;
    }
    if (r < 48) {  // truncate
      uint64_t id = all_files[pick(all_files.size())];
      MNode& n = model_[id];
      uint64_t size = pick(n.data.size() + 2 * bs_ + 1);
      log_.push_back(on + "truncate " + path(id) + " to " + std::to_string(size));
      SetAttr c;
      c.size = size;
      if (!expect(fs.setattr(n.ino, c).status(), 0, log_.back())) return false;
      n.data.resize(size, '\0');
      return true;
    }
    if (r < 54) {  // fallocate: allocate, keep size, punch
      uint64_t id = all_files[pick(all_files.size())];
      MNode& n = model_[id];
      uint64_t off = pick(n.data.size() + bs_), len = 1 + pick(3 * bs_);
      int mode = std::vector<int>{0, kFallocKeepSize, kFallocPunchHole | kFallocKeepSize}[pick(3)];
      log_.push_back(on + "fallocate " + path(id) + " mode " + std::to_string(mode) + " at " + std::to_string(off) +
                     " len " + std::to_string(len));
      if (!expect(fs.fallocate(n.ino, mode, off, len), 0, log_.back())) return false;
      if (mode & kFallocPunchHole) {
        for (uint64_t i = off; i < std::min<uint64_t>(off + len, n.data.size()); ++i) n.data[i] = '\0';
      } else if (!(mode & kFallocKeepSize) && off + len > n.data.size()) {
        n.data.resize(off + len, '\0');
      }
      return true;
    }
    if (r < 62) {  // unlink or rmdir
      if (all_entries.empty()) return true;
      const Entry e = all_entries[pick(all_entries.size())];
      const MNode& n = model_[e.id];
      if (n.is_dir()) {
        int want = n.entries.empty() ? 0 : ENOTEMPTY;
        log_.push_back(on + "rmdir " + where(e.dir, e.name));
        if (!expect(fs.rmdir(model_[e.dir].ino, e.name), want, log_.back())) return false;
        if (want == 0) unlink_model(e.dir, e.name);
      } else {
        log_.push_back(on + "unlink " + where(e.dir, e.name));
        if (!expect(fs.unlink(model_[e.dir].ino, e.name), 0, log_.back())) return false;
        unlink_model(e.dir, e.name);
      }
      return true;
    }
    if (r < 72) {  // rename
      if (all_entries.empty()) return true;
      const Entry src = all_entries[pick(all_entries.size())];
      const bool src_dir = model_[src.id].is_dir();
      uint64_t to_dir = all_dirs[pick(all_dirs.size())];
      std::string to_name;
      std::optional<uint64_t> dst;
      auto& targets = model_[to_dir].entries;
      if (!targets.empty() && chance(0.4)) {
        auto it = std::next(targets.begin(), static_cast<long>(pick(targets.size())));
        to_name = it->first;
        dst = it->second;
      } else {
        to_name = fresh_name(src_dir ? 'd' : (S_ISLNK(model_[src.id].mode) ? 's' : 'f'));
      }
      int want = 0;
      if (src_dir && is_ancestor(src.id, to_dir)) {
        want = EINVAL;
      } else if (dst && *dst != src.id) {
        const MNode& d = model_[*dst];
        if (src_dir && !d.is_dir()) want = ENOTDIR;
        else if (!src_dir && d.is_dir()) want = EISDIR;
        else if (d.is_dir() && !d.entries.empty()) want = ENOTEMPTY;
        else if (d.is_dir() && is_ancestor(*dst, src.dir)) want = ENOTEMPTY;  // not reached: non-empty
      }
      log_.push_back(on + "rename " + where(src.dir, src.name) + " -> " + where(to_dir, to_name));
      if (!expect(fs.rename(model_[src.dir].ino, src.name, model_[to_dir].ino, to_name, 0), want, log_.back())) {
        return false;
      }
      if (want) return true;
      if (dst && *dst == src.id) return true;  // two links of one file: nothing happens
      if (dst) unlink_model(to_dir, to_name);
      model_[src.dir].entries.erase(src.name);
      model_[to_dir].entries[to_name] = src.id;
      if (src_dir) model_[src.id].parent = to_dir;
      return true;
    }
    if (r < 77) {  // hard link
      std::vector<uint64_t> linkable;
      for (const auto& [id, n] : model_) if (!n.is_dir()) linkable.push_back(id);
      if (linkable.empty()) return true;
      uint64_t id = linkable[pick(linkable.size())];
      uint64_t dir = all_dirs[pick(all_dirs.size())];
      std::string name = fresh_name('l');
      log_.push_back(on + "link " + path(id) + " as " + where(dir, name));
      if (!expect(fs.link(model_[id].ino, model_[dir].ino, name).status(), 0, log_.back())) return false;
      model_[id].links += 1;
      model_[dir].entries[name] = id;
      return true;
    }
    if (r < 84) {  // chmod or utimes
      std::vector<uint64_t> ids;
      for (const auto& [id, n] : model_) if (!S_ISLNK(n.mode)) ids.push_back(id);
      uint64_t id = ids[pick(ids.size())];
      MNode& n = model_[id];
      SetAttr c;
      if (chance(0.6)) {
        uint32_t perm = static_cast<uint32_t>(0400 | pick(0400));
        c.mode = perm;
        log_.push_back(on + "chmod " + path(id) + " " + std::to_string(perm));
        n.mode = (n.mode & S_IFMT) | perm;
      } else {
        c.atime = ondisk::Timespec{static_cast<int64_t>(1000 + pick(100000)), 0};
        c.mtime = ondisk::Timespec{static_cast<int64_t>(1000 + pick(100000)), 0};
        log_.push_back(on + "utimes " + path(id));
      }
      return expect(fs.setattr(n.ino, c).status(), 0, log_.back());
    }
    if (r < 93) {  // xattrs
      std::vector<uint64_t> ids;
      for (const auto& [id, n] : model_) if (!S_ISLNK(n.mode)) ids.push_back(id);
      uint64_t id = ids[pick(ids.size())];
      MNode& n = model_[id];
      if (!n.xattrs.empty() && chance(0.35)) {
        auto it = std::next(n.xattrs.begin(), static_cast<long>(pick(n.xattrs.size())));
        std::string name = it->first;
        log_.push_back(on + "removexattr " + path(id) + " " + name);
        if (!expect(fs.removexattr(n.ino, name), 0, log_.back())) return false;
        n.xattrs.erase(name);
      } else {
        std::string name = "user.x" + std::to_string(pick(6));
        std::string value = random_bytes(pick(300));
        log_.push_back(on + "setxattr " + path(id) + " " + name + " (" + std::to_string(value.size()) + " bytes)");
        if (!expect(fs.setxattr(n.ino, name, value, 0), 0, log_.back())) return false;
        n.xattrs[name] = value;
      }
      return true;
    }
    // Reads from one node: they move locks around between the other steps' writes.
    uint64_t id = all_files.empty() ? 0 : all_files[pick(all_files.size())];
    if (id == 0) {
      log_.push_back(on + "readdir /");
      return check_node(node, 0, "/", 1);
    }
    log_.push_back(on + "read " + path(id));
    return check_file(node, model_[id], path(id));
  }

  bool check_file(size_t node, const MNode& m, const std::string& p) {
    FileSystem& fs = cluster_.fs(node);
    const std::string on = "node " + std::to_string(node) + ": " + p + ": ";
    std::string buf(m.data.size() + 17, '\0');
    auto got = fs.read(m.ino, 0, std::as_writable_bytes(std::span(buf.data(), buf.size())));
    if (!got) return fail(on + "read: " + got.status().to_string());
    buf.resize(*got);
    if (buf != m.data) {
      size_t at = 0;
      while (at < std::min(buf.size(), m.data.size()) && buf[at] == m.data[at]) ++at;
      return fail(on + "contents differ: read " + std::to_string(buf.size()) + " bytes, expected " +
                  std::to_string(m.data.size()) + ", first difference at byte " + std::to_string(at));
    }
    return true;
  }

  // One directory (and below) as node `node` sees it.
  bool check_node(size_t node, uint64_t id, const std::string& p, int depth) {
    FileSystem& fs = cluster_.fs(node);
    const MNode& m = model_.at(id);
    const std::string on = "node " + std::to_string(node) + ": " + p + ": ";
    auto a = fs.getattr(m.ino);
    if (!a) return fail(on + "getattr: " + a.status().to_string());
    if (a->mode != m.mode) return fail(on + "mode " + std::to_string(a->mode) + ", expected " + std::to_string(m.mode));
    if (a->nlink != nlink(m)) {
      return fail(on + "nlink " + std::to_string(a->nlink) + ", expected " + std::to_string(nlink(m)));
    }
    if (!m.is_dir() && a->size != m.data.size()) {
      return fail(on + "size " + std::to_string(a->size) + ", expected " + std::to_string(m.data.size()));
    }
    if (!S_ISLNK(m.mode)) {
      auto names = fs.listxattr(m.ino);
      if (!names) return fail(on + "listxattr: " + names.status().to_string());
      std::vector<std::string> want;
      for (const auto& [k, v] : m.xattrs) want.push_back(k);
      std::sort(names->begin(), names->end());
      if (*names != want) return fail(on + "xattr names differ (" + std::to_string(names->size()) + " vs " + std::to_string(want.size()) + ")");
      for (const auto& [k, v] : m.xattrs) {
        auto got = fs.getxattr(m.ino, k);
        if (!got) return fail(on + "getxattr " + k + ": " + got.status().to_string());
        if (*got != v) return fail(on + "xattr " + k + " differs");
      }
    }
    if (S_ISLNK(m.mode)) {
      auto t = fs.readlink(m.ino);
      if (!t) return fail(on + "readlink: " + t.status().to_string());
      if (*t != m.data) return fail(on + "symlink target '" + *t + "', expected '" + m.data + "'");
      return true;
    }
    if (m.is_reg()) return check_file(node, m, p);
    std::map<std::string, DirListing> listed;
    uint64_t dotdot = 0;
    auto st = fs.readdir(m.ino, 0, [&](const DirListing& e) {
      if (e.name == "..") dotdot = e.ino;
      if (e.name != "." && e.name != "..") listed.emplace(e.name, e);
      return true;
    });
    if (!st) return fail(on + "readdir: " + st.to_string());
    uint64_t want_parent = id == 0 ? m.ino : model_.at(m.parent).ino;
    if (dotdot != want_parent) {
      return fail(on + "'..' is " + std::to_string(dotdot) + ", expected " + std::to_string(want_parent));
    }
    if (listed.size() != m.entries.size()) {
      return fail(on + "readdir lists " + std::to_string(listed.size()) + " entries, expected " +
                  std::to_string(m.entries.size()));
    }
    for (const auto& [name, child] : m.entries) {
      auto it = listed.find(name);
      if (it == listed.end()) return fail(on + "readdir misses " + name);
      const MNode& c = model_.at(child);
      if (it->second.ino != c.ino) return fail(on + name + " lists inode " + std::to_string(it->second.ino));
      auto l = fs.lookup(m.ino, name);
      if (!l) return fail(on + "lookup " + name + ": " + l.status().to_string());
      if (l->ino != c.ino) return fail(on + "lookup " + name + " finds inode " + std::to_string(l->ino));
      if (depth < 64 && !check_node(node, child, (id == 0 ? "" : p) + "/" + name, depth + 1)) return false;
    }
    return true;
  }

  bool verify() {
    for (size_t node = 0; node < cluster_.size(); ++node) {
      if (!check_node(node, 0, "/", 1)) return false;
    }
    // What mount.lunfs's timer does every second on each node: with every delta folded
    // into the master, every node's statfs is the same (and fsck checks it is exact).
    for (size_t node = 0; node < cluster_.size(); ++node) {
      if (auto st = cluster_.fs(node).fold_statfs(); !st) return fail("statfs fold on node " + std::to_string(node) + ": " + st.to_string());
    }
    std::optional<FsStat> first;
    for (size_t node = 0; node < cluster_.size(); ++node) {
      auto s = cluster_.fs(node).statfs();
      if (!s) return fail("statfs on node " + std::to_string(node) + ": " + s.status().to_string());
      if (!first) {
        first = *s;
      } else if (s->free_blocks != first->free_blocks || s->files != first->files) {
        return fail("statfs on node " + std::to_string(node) + ": " + std::to_string(s->free_blocks) +
                    " free blocks, " + std::to_string(s->files) + " files; node 0: " +
                    std::to_string(first->free_blocks) + ", " + std::to_string(first->files));
      }
    }
    for (const auto& v : cluster_.locks().violations()) return fail("lock service: " + v);
    return true;
  }

  const uint64_t seed_;
  std::mt19937_64 rng_;
  SimCluster cluster_;
  uint32_t bs_ = 4096;
  std::map<uint64_t, MNode> model_;  // id 0 is the root
  struct Open {
    size_t node;
    uint64_t ino;
  };
  std::vector<Open> opens_;
  std::map<uint64_t, std::string> orphans_;  // ino -> data of files unlinked while open
  uint64_t next_id_ = 1;
  uint64_t next_name_ = 0;
  uint64_t step_ = 0;
  std::vector<std::string> log_;
};

TEST(MultiNodeSim, RandomOperationsAgreeOnEveryNode) {
  const uint64_t steps = env_or("LUNFS_SIM_STEPS", 250);
  const uint64_t fsck_every = env_or("LUNFS_SIM_FSCK_EVERY", 1);
  std::vector<uint64_t> seeds = {1, 2, 3, 4};
  if (std::getenv("LUNFS_SIM_SEED")) seeds = {env_or("LUNFS_SIM_SEED", 1)};
  for (uint64_t seed : seeds) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Simulation sim(seed, 3);
    ASSERT_TRUE(sim.ok());
    if (!sim.run(steps, fsck_every)) return;
  }
}

}  // namespace
}  // namespace lunfs::testing
