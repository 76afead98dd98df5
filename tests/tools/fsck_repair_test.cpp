// fsck.lunfs repairs: for every named corruption case, a repair leaves a file system that
// checks clean, whose undamaged files read back intact through the core (in place, or in
// /lost+found), and says file by file what was lost; -y, -p and -n as fsck(8); a repair
// cut at any write is finished by the next run; random metadata damage is repaired.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>

#include "fs/core/filesystem.h"
#include "fs/device/testing/fault_device.h"
#include "fs/metadata_log.h"
#include "fsck/checker.h"
#include "fsck/repair.h"
#include "mkfs/formatter.h"
#include "tests/support/temp_file.h"
#include "tests/tools/fsck_cases.h"

namespace lunfs {
namespace {

using namespace ondisk;
using testing::Corruption;
using testing::corruption_cases;
using testing::Populated;
using testing::run_command;
using testing::TempFile;

const std::string kFsck = std::string(LUNFS_BIN_DIR) + "/fsck.lunfs";
constexpr uint64_t kImageBytes = 64ull << 20;

std::string texts(const FsckReport& r) {
  std::string s;
  for (const auto& f : r.findings) s += f.text + "\n";
  return s;
}
std::string texts(const std::vector<RepairAction>& actions) {
  std::string s;
  for (const auto& a : actions) s += (a.safe ? "safe: " : "unsafe: ") + a.text + "\n";
  return s;
}

std::unique_ptr<BlockDevice> copy_of(BlockDevice& from) {
  auto to = make_memory_device(from.size_bytes());
  AlignedBuffer chunk(1 << 20);
  for (uint64_t off = 0; off < from.size_bytes(); off += chunk.size()) {
    EXPECT_TRUE(from.read(off, chunk.span()));
    EXPECT_TRUE(to->write(off, chunk.span()));
  }
  return to;
}

// Every file of the populated image not in `lost` reads back exactly through the core, by
// one of its names: in place, or under /lost+found/#INODE (itself, or a directory above it,
// reconnected there); the symbolic link still names its target.
void expect_intact(BlockDevice& dev, Populated& p, const std::vector<std::string>& lost) {
  WriteThroughLog log(dev);
  NoLockManager lm;
  MountOptions mo;
  mo.read_only = true;
  mo.logger = [](const std::string&) {};
  auto fs = FileSystem::mount(dev, log, lm, mo);
  ASSERT_TRUE(fs) << fs.status().to_string();
  std::map<std::string, uint64_t> known = {{"/images", p.images}, {"/isos", p.hashed}, {"/latest", p.link}};
  for (const auto& [path, ino] : p.files) known[path] = ino;
  auto walk = [&](uint64_t from, const std::string& rest) -> std::optional<uint64_t> {
    uint64_t cur = from;
    for (size_t pos = 1; pos < rest.size();) {
      const size_t end = std::min(rest.find('/', pos), rest.size());
      auto a = (*fs)->lookup(cur, rest.substr(pos, end - pos));
      if (!a) return std::nullopt;
      cur = a->ino;
      pos = end + 1;
    }
    return cur;
  };
  auto resolve = [&](const std::string& path) -> std::optional<uint64_t> {
    if (auto found = walk((*fs)->root(), path)) return found;
    auto lf = (*fs)->lookup((*fs)->root(), "lost+found");
    if (!lf) return std::nullopt;
    for (size_t cut = path.size(); cut != std::string::npos && cut > 0; cut = path.rfind('/', cut - 1)) {
      auto it = known.find(path.substr(0, cut));
      if (it == known.end()) continue;
      auto top = (*fs)->lookup(lf->ino, "#" + std::to_string(it->second));
      if (!top) continue;
      if (auto found = walk(top->ino, path.substr(cut))) return found;
    }
    return std::nullopt;
  };
  std::map<uint64_t, std::vector<std::string>> names;
  for (const auto& [path, ino] : p.files) {
    if (std::find(lost.begin(), lost.end(), path) == lost.end()) names[ino].push_back(path);
  }
  for (const auto& [ino, paths] : names) {
    std::optional<uint64_t> found;
    for (size_t i = 0; i < paths.size() && !found; ++i) found = resolve(paths[i]);
    ASSERT_TRUE(found) << paths[0] << " is gone, under every name";
    const std::string want = p.content(ino);
    std::string got(want.size() + 1, '\0');
    auto n = (*fs)->read(*found, 0, std::as_writable_bytes(std::span(got)));
    ASSERT_TRUE(n) << paths[0] << ": " << n.status().to_string();
    got.resize(*n);
    EXPECT_TRUE(got == want) << paths[0] << ": contents differ";
  }
  if (std::find(lost.begin(), lost.end(), "/latest") != lost.end()) {
    ASSERT_TRUE((*fs)->unmount());
    return;
  }
  auto link = resolve("/latest");
  ASSERT_TRUE(link) << "/latest is gone";
  auto target = (*fs)->readlink(*link);
  ASSERT_TRUE(target) << target.status().to_string();
  EXPECT_EQ(*target, "images/disk1.qcow2");
  ASSERT_TRUE((*fs)->unmount());
}

// The whole tree, as a user would walk it after the repair: every directory lists, every
// file reads to its end, every link resolves, without an error.
void expect_usable(BlockDevice& dev) {
  WriteThroughLog log(dev);
  NoLockManager lm;
  MountOptions mo;
  mo.read_only = true;
  mo.logger = [](const std::string&) {};
  auto fs = FileSystem::mount(dev, log, lm, mo);
  ASSERT_TRUE(fs) << fs.status().to_string();
  std::vector<std::pair<uint64_t, std::string>> todo{{(*fs)->root(), ""}};
  std::set<uint64_t> seen;
  while (!todo.empty()) {
    auto [dir, path] = todo.back();
    todo.pop_back();
    ASSERT_TRUE(seen.insert(dir).second) << path << ": a directory reached twice";
    std::vector<DirListing> list;
    Status st = (*fs)->readdir(dir, 0, [&](const DirListing& e) {
      if (e.name != "." && e.name != "..") list.push_back(e);
      return true;
    });
    ASSERT_TRUE(st) << "readdir " << path << ": " << st.to_string();
    for (const DirListing& e : list) {
      const std::string p = path + "/" + e.name;
      auto a = (*fs)->getattr(e.ino);
      ASSERT_TRUE(a) << p << ": " << a.status().to_string();
      if (S_ISDIR(a->mode)) {
        todo.push_back({e.ino, p});
      } else if (S_ISLNK(a->mode)) {
        ASSERT_TRUE((*fs)->readlink(e.ino)) << p;
      } else if (S_ISREG(a->mode)) {
        // Its head and its tail: a damaged size can make a file of exabytes of holes.
        std::vector<std::byte> buf(1 << 20);
        for (uint64_t off : {uint64_t{0}, a->size > buf.size() ? a->size - buf.size() : 0}) {
          auto n = (*fs)->read(e.ino, off, buf);
          ASSERT_TRUE(n) << p << ": " << n.status().to_string();
          EXPECT_EQ(*n, std::min<uint64_t>(buf.size(), a->size - off)) << p;
        }
      }
    }
  }
  ASSERT_TRUE((*fs)->unmount());
}

std::string base_name(const std::string& path) { return path.substr(path.rfind('/') + 1); }

class FsckRepair : public ::testing::TestWithParam<Corruption> {};

TEST_P(FsckRepair, YesRepairsThenTheCheckIsCleanAndUndamagedFilesAreIntact) {
  Populated p(kImageBytes);
  GetParam().damage(p);
  auto out = repair_filesystem(p.b.device());
  ASSERT_TRUE(out) << out.status().to_string();
  EXPECT_GT(out->first.errors(), 0u) << "the damage was not found";
  EXPECT_TRUE(out->wrote);
  EXPECT_EQ(out->last.errors(), 0u) << "left after repair:\n" << texts(out->last) << "repairs:\n" << texts(out->actions);
  auto again = check_filesystem(p.b.device());
  ASSERT_TRUE(again) << again.status().to_string();
  EXPECT_EQ(again->errors(), 0u) << texts(*again);
  // What was lost is reported file by file.
  const std::string actions = texts(out->actions);
  for (const auto& path : GetParam().lost) {
    uint64_t ino = 0;
    for (const auto& [p2, i] : p.files) ino = p2 == path ? i : ino;
    EXPECT_TRUE(actions.find("(inode " + std::to_string(ino) + ")") != std::string::npos ||
                actions.find(base_name(path)) != std::string::npos)
        << path << " lost without a word:\n" << actions;
  }
  ASSERT_NO_FATAL_FAILURE(expect_intact(p.b.device(), p, GetParam().lost));
  expect_usable(p.b.device());
}

INSTANTIATE_TEST_SUITE_P(Cases, FsckRepair, ::testing::ValuesIn(corruption_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

const Corruption& named(const std::string& name) {
  static const std::vector<Corruption> cases = corruption_cases();
  for (const auto& c : cases) {
    if (name == c.name) return c;
  }
  throw std::runtime_error("no corruption case " + name);
}

// A directory of 300 files written by the core loses its inode: the files land in a
// /lost+found too big to be inline (a hash table built by the repair), which the core then
// uses like any directory: more files go in, every file reads back, the check stays clean.
TEST(FsckRepair, ManyOrphansGoToAHashedLostAndFoundTheCoreCanUse) {
  auto dev = make_memory_device(kImageBytes);
  auto sb = plan_filesystem(*dev, testing::ImageBuilder::default_options());
  ASSERT_TRUE(sb) << sb.status().to_string();
  ASSERT_TRUE(write_filesystem(*dev, *sb));
  constexpr int kFiles = 300;
  auto content = [](int i) { return "file " + std::to_string(i) + std::string(static_cast<size_t>(i), 'x'); };
  auto mount = [&](MetadataLog& log, NoLockManager& lm) {
    MountOptions mo;
    mo.logger = [](const std::string&) {};
    return FileSystem::mount(*dev, log, lm, mo);
  };
  std::vector<uint64_t> inos;
  uint64_t many = 0;
  {
    WriteThroughLog log(*dev);
    NoLockManager lm;
    auto fs = mount(log, lm);
    ASSERT_TRUE(fs) << fs.status().to_string();
    auto d = (*fs)->mkdir((*fs)->root(), "many", 0755, {});
    ASSERT_TRUE(d);
    many = d->ino;
    for (int i = 0; i < kFiles; ++i) {
      auto a = (*fs)->mknod(many, "f" + std::to_string(i), S_IFREG | 0644, 0, {});
      ASSERT_TRUE(a);
      const std::string c = content(i);
      ASSERT_TRUE((*fs)->write(a->ino, 0, std::as_bytes(std::span(c))));
      inos.push_back(a->ino);
    }
    ASSERT_TRUE((*fs)->unmount());
  }
  AlignedBuffer block(4096);
  ASSERT_TRUE(dev->read(many * 4096, block.span()));
  block.span()[300] ^= std::byte{1};  // the checksum fails: the directory is gone
  ASSERT_TRUE(dev->write(many * 4096, block.span()));

  auto out = repair_filesystem(*dev);
  ASSERT_TRUE(out) << out.status().to_string();
  ASSERT_EQ(out->last.errors(), 0u) << texts(out->last) << texts(out->actions);
  WriteThroughLog log(*dev);
  NoLockManager lm;
  auto fs = mount(log, lm);
  ASSERT_TRUE(fs) << fs.status().to_string();
  auto lf = (*fs)->lookup((*fs)->root(), "lost+found");
  ASSERT_TRUE(lf);
  for (int i = 0; i < kFiles; ++i) {
    auto a = (*fs)->lookup(lf->ino, "#" + std::to_string(inos[static_cast<size_t>(i)]));
    ASSERT_TRUE(a) << "file " << i;
    std::string got(a->size, '\0');
    ASSERT_TRUE((*fs)->read(a->ino, 0, std::as_writable_bytes(std::span(got))));
    EXPECT_EQ(got, content(i));
  }
  for (int i = 0; i < 200; ++i) ASSERT_TRUE((*fs)->mknod(lf->ino, "new" + std::to_string(i), S_IFREG | 0644, 0, {}));
  ASSERT_TRUE((*fs)->unlink(lf->ino, "#" + std::to_string(inos[0])));
  ASSERT_TRUE((*fs)->unmount());
  auto again = check_filesystem(*dev);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->errors(), 0u) << texts(*again);
  EXPECT_EQ(again->inodes, 1u + 1 + kFiles - 1 + 200);  // root, lost+found, the files, the new ones
}

// A name "lost+found" that is taken by a file is not reused: orphans go to a new
// directory beside it, and the file stays.
TEST(FsckRepair, LostAndFoundTakenByAFileGetsAnotherName) {
  testing::ImageBuilder b(kImageBytes);
  const uint64_t dir = b.mkdir(b.root(), "d");
  const uint64_t orphan = b.create_file(dir, "f", 1, 1, 0);
  const uint64_t taken = b.create_file(b.root(), "lost+found", 1, 1, 0);
  b.finish();
  auto data = b.read_block(dir);  // d's inline entries emptied, as in the lost_file case
  uint32_t zero = 0;
  uint64_t zero64 = 0;
  std::memcpy(data.data() + 124, &zero, 4);
  std::memcpy(data.data() + 160, &zero64, 8);
  b.write_block(dir, data);
  b.reseal(dir);
  auto out = repair_filesystem(b.device());
  ASSERT_TRUE(out) << out.status().to_string();
  ASSERT_EQ(out->last.errors(), 0u) << texts(out->last) << texts(out->actions);
  EXPECT_NE(texts(out->actions).find("reconnected as /lost+found.1/#" + std::to_string(orphan)), std::string::npos)
      << texts(out->actions);
  WriteThroughLog log(b.device());
  NoLockManager lm;
  MountOptions mo;
  mo.read_only = true;
  mo.logger = [](const std::string&) {};
  auto fs = FileSystem::mount(b.device(), log, lm, mo);
  ASSERT_TRUE(fs) << fs.status().to_string();
  auto file = (*fs)->lookup((*fs)->root(), "lost+found");
  ASSERT_TRUE(file);
  EXPECT_EQ(file->ino, taken);
  auto lf = (*fs)->lookup((*fs)->root(), "lost+found.1");
  ASSERT_TRUE(lf);
  EXPECT_TRUE((*fs)->lookup(lf->ino, "#" + std::to_string(orphan)));
  ASSERT_TRUE((*fs)->unmount());
}

// ---- fsck.lunfs: -n, -y, -p and the admin's word ----

void save(BlockDevice& dev, const std::string& path) {
  auto file = FileBlockDevice::open(path);
  ASSERT_TRUE(file) << file.status().to_string();
  AlignedBuffer chunk(1 << 20);
  for (uint64_t off = 0; off < dev.size_bytes(); off += chunk.size()) {
    ASSERT_TRUE(dev.read(off, chunk.span()));
    const bool zeros = std::all_of(chunk.span().begin(), chunk.span().end(), [](std::byte b) { return b == std::byte{0}; });
    if (!zeros) {
      ASSERT_TRUE((*file)->write(off, chunk.span()));
    }
  }
  ASSERT_TRUE((*file)->flush());
}

std::string md5(const std::string& path) {
  std::string out;
  EXPECT_EQ(run_command("md5sum " + path, &out), 0) << out;
  return out.substr(0, 32);
}

TEST(FsckRepairCli, PreenMakesSafeRepairs) {
  Populated p(kImageBytes);
  named("leaked_block").damage(p);
  TempFile file(kImageBytes);
  ASSERT_NO_FATAL_FAILURE(save(p.b.device(), file.path()));
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -p --all-nodes-unmounted " + file.path(), &out), 1) << out;
  EXPECT_NE(out.find("repaired: resource group 0: bitmap rebuilt"), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 0) << out;
}

TEST(FsckRepairCli, UnsafeRepairsNeedYesAndTheAdminsWord) {
  Populated p(kImageBytes);
  named("lost_file").damage(p);
  TempFile file(kImageBytes);
  ASSERT_NO_FATAL_FAILURE(save(p.b.device(), file.path()));
  const std::string before = md5(file.path());
  std::string out;
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 4) << out;
  EXPECT_NE(out.find("is in no directory"), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " -y " + file.path(), &out), 4) << out;
  EXPECT_NE(out.find("not repairing"), std::string::npos) << out;
  EXPECT_NE(out.find("--all-nodes-unmounted"), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " -p --all-nodes-unmounted " + file.path(), &out), 4) << out;
  EXPECT_NE(out.find("UNEXPECTED INCONSISTENCY"), std::string::npos) << out;
  EXPECT_NE(out.find("NOT SAFE TO PREEN: file inode " + std::to_string(p.config) + " was in no directory"),
            std::string::npos) << out;
  EXPECT_EQ(md5(file.path()), before) << "a refused repair wrote";
  EXPECT_EQ(run_command(kFsck + " -y --all-nodes-unmounted " + file.path(), &out), 1) << out;
  EXPECT_NE(out.find("repaired: /lost+found created"), std::string::npos) << out;
  EXPECT_NE(out.find("reconnected as /lost+found/#" + std::to_string(p.config)), std::string::npos) << out;
  EXPECT_NE(out.find("0 error(s), 0 warning(s) after repair"), std::string::npos) << out;
  EXPECT_EQ(run_command(kFsck + " -n " + file.path(), &out), 0) << out;
  EXPECT_NE(out.find("0 error(s), 0 warning(s)"), std::string::npos) << out;
}

// ---- A repair cut at every write ----

// The repair runs on a device whose k-th write fails (k = 1, 2, ...), and the power is
// lost there (keeping every write before it, or only what was flushed); the next run must
// finish the repair with nothing undamaged lost.
class FsckRepairCut : public ::testing::TestWithParam<const char*> {};

TEST_P(FsckRepairCut, TheNextRunFinishesIt) {
  const Corruption& c = named(GetParam());
  Populated p(kImageBytes);
  c.damage(p);
  size_t cuts = 0;
  for (uint64_t k = 1;; ++k) {
    SCOPED_TRACE("cut at write " + std::to_string(k));
    auto dev = copy_of(p.b.device());
    FaultInjectingDevice fault(*dev);
    fault.fail_nth(IoKind::kWrite, k);
    auto cut = repair_filesystem(fault);
    if (cut) {  // fewer than k writes: the repair completed
      EXPECT_EQ(cut->last.errors(), 0u) << texts(cut->last);
      break;
    }
    ++cuts;
    ASSERT_TRUE(fault.crash(k % 2 ? fault.pending_writes() : 0));
    auto next = repair_filesystem(*dev);
    ASSERT_TRUE(next) << next.status().to_string();
    ASSERT_EQ(next->last.errors(), 0u) << texts(next->last);
    ASSERT_NO_FATAL_FAILURE(expect_intact(*dev, p, c.lost));
    ASSERT_LT(k, 10000u);
  }
  EXPECT_GT(cuts, 3u) << "the repair made too few writes to cut";
}

INSTANTIATE_TEST_SUITE_P(Cases, FsckRepairCut,
                         ::testing::Values("lost_file", "primary_superblock_bit_flip", "extent_node_bit_flip",
                                           "bitmap_bit_flip", "dir_leaf_bit_flip", "two_files_share_a_block"));

// ---- Random damage ----

// Damages 1..3 random metadata blocks of the populated image per round (a bit flip, which
// fails the checksum, or bytes changed behind a valid checksum), repairs, checks again, and
// walks the whole tree through the core. After bit flips alone, every file whose own inode
// and extent node were spared must also read back intact (bytes changed behind a valid
// checksum can make a file claim another's blocks, and the lower inode number keeps them).
// CI runs a few seconds; LUNFS_FSCK_FUZZ_SECONDS and LUNFS_FSCK_FUZZ_SEED run longer or
// replay a failure (docs/journal.md, "fsck repairs").
TEST(FsckRepairFuzz, RandomMetadataDamageIsRepaired) {
  const char* env_seconds = std::getenv("LUNFS_FSCK_FUZZ_SECONDS");
  const char* env_seed = std::getenv("LUNFS_FSCK_FUZZ_SEED");
  const double seconds = env_seconds ? std::atof(env_seconds) : 3.0;
  const uint64_t seed = env_seed ? std::strtoull(env_seed, nullptr, 10) : std::random_device{}();
  std::mt19937_64 rng(seed);
  std::cerr << "fsck repair fuzz: LUNFS_FSCK_FUZZ_SEED=" << seed << "\n";
  Populated p(kImageBytes);
  const Geometry& g = p.b.sb().geometry;
  std::vector<uint64_t> blocks = {g.sb_block, g.backup_sb_block, g.statfs_block, g.statfs_delta(0), g.heartbeat(1),
                                  g.slot_header(1), g.rgrp(0).header, g.rgrp(0).header + 1, p.b.root(), p.images,
                                  p.hashed, p.link, p.b.extent_node_of(p.disk1), p.b.xattr_block_of(p.disk1)};
  for (uint64_t leaf : p.b.leaves_of(p.hashed)) blocks.push_back(leaf);
  for (const auto& [path, ino] : p.files) blocks.push_back(ino);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  size_t rounds = 0;
  while (rounds == 0 || std::chrono::steady_clock::now() < deadline) {
    auto dev = copy_of(p.b.device());
    std::string what;
    const int count = 1 + static_cast<int>(rng() % 3);
    bool superblock_hit = false;
    bool only_flips = true;  // every damaged block fails its checksum
    std::set<uint64_t> hit;
    for (int i = 0; i < count; ++i) {
      uint64_t block = blocks[rng() % blocks.size()];
      const bool sb = block == g.sb_block || block == g.backup_sb_block;
      if (sb && superblock_hit) continue;  // both superblocks gone is not repairable (exit 8)
      superblock_hit |= sb;
      hit.insert(block);
      AlignedBuffer data(g.block_size);
      ASSERT_TRUE(dev->read(block * g.block_size, data.span()));
      const size_t at = 32 + rng() % (g.block_size - 32);
      if (rng() % 2) {
        data.span()[at] ^= static_cast<std::byte>(1u << (rng() % 8));
        what += " flip@" + std::to_string(block) + "+" + std::to_string(at);
      } else {
        data.span()[at] = static_cast<std::byte>(rng());
        only_flips = false;
        const BlockHeader h = peek_header(data.span());
        seal_block(data.span(), h.type, h.blocknr, h.sequence,
                   h.type == BlockType::kSuperblock ? 0 : p.b.sb().csum_seed);
        what += " edit@" + std::to_string(block) + "+" + std::to_string(at);
      }
      ASSERT_TRUE(dev->write(block * g.block_size, data.span()));
    }
    SCOPED_TRACE("seed " + std::to_string(seed) + ", round " + std::to_string(rounds) + ":" + what);
    auto out = repair_filesystem(*dev);
    ASSERT_TRUE(out) << out.status().to_string();
    ASSERT_EQ(out->last.errors(), 0u) << "left:\n" << texts(out->last) << "repairs:\n" << texts(out->actions);
    auto again = check_filesystem(*dev);
    ASSERT_TRUE(again);
    ASSERT_EQ(again->errors(), 0u) << texts(*again);
    ASSERT_NO_FATAL_FAILURE(expect_usable(*dev));
    if (only_flips) {  // a file survives unless its own inode or extent node was hit
      std::vector<std::string> lost;
      for (const auto& [path, ino] : p.files) {
        if (hit.count(ino) || (ino == p.disk1 && hit.count(p.b.extent_node_of(p.disk1)))) lost.push_back(path);
      }
      if (hit.count(p.link)) lost.push_back("/latest");
      ASSERT_NO_FATAL_FAILURE(expect_intact(*dev, p, lost));
    }
    ++rounds;
  }
  RecordProperty("rounds", static_cast<int>(rounds));
}

}  // namespace
}  // namespace lunfs
