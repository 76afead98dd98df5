// The directory-growth workload: one directory grows from empty (inline entries) through
// the conversion to a hashed directory, many leaf splits and several hash-table doublings,
// while names are removed, with a directory fsync after every batch. Half the names are
// long (100..255 bytes), and a third are chosen so that their hashes share one table
// slot's prefix: that slot's leaf keeps splitting, which doubles the table several times
// with a couple of thousand names instead of the tens of thousands random names would
// need. Some names are hard links to earlier files, so unlinks drop link counts as well
// as free inodes.
//
// Every create, link and unlink is one transaction and the journal keeps a prefix of
// them, so after a crash the listing must be the acknowledged set after a prefix of the
// next batch's steps: acknowledged names present, names whose unlink was acknowledged
// gone, and no later step applied without every earlier one.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <map>
#include <memory>
#include <optional>
#include <random>

#include "fs/device/aligned_buffer.h"
#include "fs/format/dir_format.h"
#include "fs/format/inode_format.h"
#include "tests/crash/fs_workload_support.h"
#include "tests/crash/fs_workloads.h"

namespace lunfs::crash {

namespace {

constexpr uint32_t kAddsPerBatch = 36;
constexpr const char* kDir = "big";

struct Name {
  std::string name;
  uint32_t file = 0;  // names of one file are hard links
  uint64_t added_op = 0;
  size_t added_step = 0;
  uint64_t removed_op = 0;  // 0: never
  size_t removed_step = 0;
  bool live_after(uint64_t op) const { return added_op <= op && (removed_op == 0 || removed_op > op); }
};

struct Step {
  bool add;
  size_t name;  // index into names
};

// Op 1 creates the directory; op k >= 2 is batch k: adds and removals, then a directory fsync.
struct Plan {
  std::vector<Name> names;
  std::vector<std::vector<Step>> steps;  // by op
};

// `depth`: the table's depth at the conversion to a hashed directory.
Plan make_plan(uint64_t ops, uint64_t hash_seed, uint32_t depth, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Plan p;
  p.steps.resize(ops + 1);
  const uint32_t crowded_slot = 0x155 & ((1u << depth) - 1);  // the table slot a third of the names share
  std::vector<size_t> live;
  uint32_t files = 0;
  for (uint64_t k = 2; k <= ops; ++k) {
    for (uint32_t a = 0; a < kAddsPerBatch; ++a) {
      const size_t i = p.names.size();
      Name n;
      n.added_op = k;
      n.added_step = p.steps[k].size();
      if (i % 3 == 0) {
        const size_t len = 150 + rng() % 106;
        std::string base = 'c' + std::to_string(i) + "-";
        base.resize(len - 8, 'c');
        for (uint32_t counter = 0;; ++counter) {
          char suffix[9];
          std::snprintf(suffix, sizeof suffix, "%08x", counter);
          n.name = base + suffix;
          if (ondisk::dir_name_hash(hash_seed, n.name) >> (32 - depth) == crowded_slot) break;
        }
      } else if (i % 3 == 1) {
        n.name = "long" + std::to_string(i) + "-";
        n.name.resize(100 + rng() % 156, static_cast<char>('a' + i % 26));
      } else {
        n.name = 'n' + std::to_string(i);
      }
      n.file = live.empty() || rng() % 5 ? files++ : p.names[live[rng() % live.size()]].file;
      p.steps[k].push_back({true, i});
      p.names.push_back(n);
      live.push_back(i);
      if (rng() % 8 == 0) {  // most removals free an inode, which commits at once (flushes)
        const size_t pos = rng() % live.size();
        Name& gone = p.names[live[pos]];
        gone.removed_op = k;
        gone.removed_step = p.steps[k].size();
        p.steps[k].push_back({false, live[pos]});
        live.erase(live.begin() + static_cast<long>(pos));
      }
    }
  }
  return p;
}

// The directory's hash-table depth, read from its inode block.
Result<uint32_t> dir_depth(BlockDevice& dev, const ondisk::Superblock& sb, uint64_t ino) {
  AlignedBuffer b(sb.geometry.block_size);
  LUNFS_TRY(dev.read(ino * sb.geometry.block_size, b.span()));
  LUNFS_ASSIGN(ondisk::Inode d, ondisk::decode_inode(b.span(), ino, sb.csum_seed, sb.geometry));
  return d.dir_depth;
}

Status run_batch(FileSystem& fs, uint64_t dir, const Plan& p, uint64_t k, std::map<uint32_t, uint64_t>& inos) {
  for (const Step& s : p.steps[k]) {
    const Name& n = p.names[s.name];
    if (!s.add) {
      LUNFS_TRY(fs.unlink(dir, n.name));
      continue;
    }
    auto file = inos.find(n.file);
    Result<Attr> a = file == inos.end() ? fs.mknod(dir, n.name, S_IFREG | 0644, 0, Cred{})
                                        : fs.link(file->second, dir, n.name);
    if (!a) return error(a.err(), n.name.substr(0, 20) + "...: " + a.status().message());
    inos[n.file] = a->ino;
    LUNFS_TRY(fs.forget(a->ino, 1));
  }
  return fs.fsync(dir, false);
}

// Checks the listing against the plan: the names after op `acked` and a prefix of op
// acked+1's steps. Returns how many of those steps are applied.
Result<size_t> check_listing(FileSystem& fs, uint64_t dir, const Plan& p, uint64_t acked) {
  std::map<std::string, DirListing> listed;
  std::string dup;
  LUNFS_TRY(fs.readdir(dir, 0, [&](const DirListing& e) {
    if (e.name == "." || e.name == "..") return true;
    if (!listed.emplace(e.name, e).second) dup = e.name;
    return true;
  }));
  const std::string at = " (batches up to op " + std::to_string(acked) + " acknowledged)";
  if (!dup.empty()) return error(EIO, "name listed twice: " + dup.substr(0, 40) + at);
  const uint64_t next = acked + 1;
  // Every name not touched by the next batch is as acknowledged.
  std::map<std::string, const Name*> expected;
  std::vector<const Name*> in_flight;
  for (const Name& n : p.names) {
    const bool acked_live = n.live_after(acked);
    const bool listed_now = listed.count(n.name) != 0;
    if (n.added_op == next || n.removed_op == next) {
      in_flight.push_back(&n);
    } else if (acked_live && !listed_now) {
      return error(EIO, "acknowledged name missing: " + n.name.substr(0, 40) + "... (added in op " +
                            std::to_string(n.added_op) + ")" + at);
    } else if (!acked_live && listed_now) {
      return error(EIO, "name back after its acknowledged unlink: " + n.name.substr(0, 40) + "... (op " +
                            std::to_string(n.removed_op) + ")" + at);
    }
    if (listed_now) expected[n.name] = &n;
  }
  for (const auto& [name, e] : listed) {
    if (!expected.count(name)) return error(EIO, "unknown name listed: " + name.substr(0, 40) + at);
  }
  // The names the next batch touches must be as after its first `applied` steps, for some
  // `applied` (a name added and removed within the batch is absent both before and after).
  const size_t steps = next < p.steps.size() ? p.steps[next].size() : 0;
  auto present_after = [&](const Name& n, size_t applied) {
    const bool added = n.added_op < next || (n.added_op == next && n.added_step < applied);
    const bool removed = n.removed_op == next && n.removed_step < applied;
    return added && !removed;
  };
  std::optional<size_t> prefix;
  for (size_t applied = 0; applied <= steps && !prefix; ++applied) {
    if (std::all_of(in_flight.begin(), in_flight.end(),
                    [&](const Name* n) { return present_after(*n, applied) == (listed.count(n->name) != 0); })) {
      prefix = applied;
    }
  }
  if (!prefix) {
    std::string seen;
    for (const Name* n : in_flight) {
      seen += " " + std::string(n->added_op == next ? "add" : "remove") + " step " +
              std::to_string(n->added_op == next ? n->added_step : n->removed_step) + ": " +
              (listed.count(n->name) ? "listed" : "absent") + ";";
    }
    return error(EIO, "the names of op " + std::to_string(next) +
                          " are not as after any prefix of its steps (transactions):" + seen + at);
  }
  // Hard links: names of one file share an inode whose link count is their number.
  std::map<uint32_t, uint64_t> ino_of;
  std::map<uint64_t, std::pair<uint32_t, uint32_t>> links;  // ino -> (file, names)
  for (const auto& [name, e] : listed) {
    const uint32_t file = expected[name]->file;
    if (e.type != DT_REG) return error(EIO, name.substr(0, 40) + ": listed with type " + std::to_string(e.type) + at);
    auto [it, fresh] = ino_of.emplace(file, e.ino);
    if (it->second != e.ino) return error(EIO, name.substr(0, 40) + ": a link of another inode" + at);
    auto& l = links[e.ino];
    if (l.second && l.first != file) return error(EIO, name.substr(0, 40) + ": shares an inode with another file" + at);
    l = {file, l.second + 1};
  }
  for (const auto& [ino, l] : links) {
    LUNFS_ASSIGN(Attr a, fs.getattr(ino));
    if (!S_ISREG(a.mode) || a.nlink != l.second) {
      return error(EIO, "inode " + std::to_string(ino) + " has " + std::to_string(a.nlink) + " links, " +
                            std::to_string(l.second) + " names list it" + at);
    }
  }
  return *prefix;
}

}  // namespace

Scenario directory_growth_scenario(uint64_t ops) {
  auto plan = std::make_shared<Plan>();
  Scenario s;
  s.name = "directory growth";
  s.run = [plan, ops](RecordingDevice& dev, const ondisk::Superblock& sb) {
    const auto initial = static_cast<uint32_t>(std::countr_zero(ondisk::dir_hash_pointers_per_block(sb.geometry.block_size)));
    *plan = make_plan(ops, sb.dir_hash_seed, initial, 11);
    uint64_t dir = 0;
    LUNFS_TRY(with_mount(dev, sb, [&](FileSystem& fs) -> Status {
      LUNFS_ASSIGN(Attr d, fs.mkdir(fs.root(), kDir, 0755, Cred{}));
      dir = d.ino;
      LUNFS_TRY(fs.fsync(fs.root(), false));
      dev.mark(1);
      std::map<uint32_t, uint64_t> inos;
      for (uint64_t k = 2; k <= ops; ++k) {
        if (auto st = run_batch(fs, dir, *plan, k, inos); !st) {
          return error(st.err(), "op " + std::to_string(k) + ": " + st.message());
        }
        dev.mark(k);
      }
      return fs.forget(dir, 1);
    }));
    // The workload is only worth its crash points if the table did double.
    LUNFS_ASSIGN(uint32_t depth, dir_depth(dev, sb, dir));
    if (depth < initial + 2) {
      return error(EINVAL, "the directory's hash table has depth " + std::to_string(depth) + ", expected at least " +
                               std::to_string(initial + 2) + " (two doublings)");
    }
    return Status::ok();
  };
  s.recover = replay_slot;
  s.verify = [plan](BlockDevice& image, const ondisk::Superblock&, uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    return with_read_only_mount(image, [&](FileSystem& fs) -> Result<uint64_t> {
      auto d = fs.lookup(fs.root(), kDir);
      if (!d) {
        if (acked == 0 && d.err() == ENOENT) return uint64_t{0};
        return error(EIO, std::string(kDir) + ": " + d.status().to_string() + " (acked " + std::to_string(acked) + ")");
      }
      auto prefix = check_listing(fs, d->ino, *plan, acked);
      (void)fs.forget(d->ino, 1);
      if (!prefix) return prefix.status();
      return uint64_t{acked << 16 | *prefix};
    });
  };
  return s;
}

}  // namespace lunfs::crash
