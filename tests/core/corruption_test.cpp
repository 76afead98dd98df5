// Every metadata block of a populated file system is damaged in turn, and the core must
// take it like a production file system: mount (or refuse with an error), walk every
// file, then change things — and never crash (this runs under ASan/UBSan in CI), never
// hand out wrong data.
//
// Two kinds of damage per block:
//  - bytes overwritten, so the block's checksum fails: every file then reads back exactly
//    or fails with EIO, every listing, link target and xattr is exact or EIO, and a change
//    succeeds (and reads back) or fails with EIO or EROFS (withdraw);
//  - the same bytes behind a re-sealed, valid checksum, so only impossible values remain:
//    the core must still not crash or hang; what it returns cannot be judged block by
//    block, but anything it reports as an error must be a proper errno.
#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "fs/core/filesystem.h"
#include "fs/format/ondisk.h"
#include "fs/format/superblock.h"
#include "mkfs/formatter.h"
#include "tests/crash/crash_image.h"
#include "tests/support/image_builder.h"

namespace lunfs {
namespace {

using crash::CrashImage;
using crash::SectorLayer;

constexpr uint32_t kBs = 4096;

std::string pattern(const std::string& seed, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>('a' + (seed.size() * 7 + i / 61 + seed[0]) % 26);
  return s;
}

// What the populated file system holds, as paths.
struct Manifest {
  std::map<std::string, std::string> files;     // path -> content
  std::map<std::string, std::string> symlinks;  // path -> target
  std::map<std::string, std::set<std::string>> dirs;  // path -> names
  std::map<std::string, std::map<std::string, std::string>> xattrs;  // path -> name -> value
};

MountOptions quiet(bool read_only = false) {
  MountOptions o;
  o.read_only = read_only;
  o.logger = [](const std::string&) {};
  return o;
}

class Corruption : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    image_ = new std::vector<std::byte>();
    manifest_ = new Manifest();
    ASSERT_NO_FATAL_FAILURE(populate());
  }
  static void TearDownTestSuite() {
    delete image_;
    delete manifest_;
  }

  // A 96 MiB file system with one of everything the core stores in metadata: inline and
  // extent-mapped files, an extent tree with a node block, inline and hashed directories,
  // symlinks, inline and block xattrs, an ACL. Kept as a flat image.
  static void populate() {
    auto dev = make_memory_device(96ull << 20);
    MkfsOptions o = testing::ImageBuilder::default_options();
    o.rgrp_mib = 32;  // three resource groups
    auto sb = plan_filesystem(*dev, o);
    ASSERT_TRUE(sb) << sb.status().to_string();
    ASSERT_TRUE(write_filesystem(*dev, *sb));
    csum_seed_ = sb->csum_seed;
    WriteThroughLog log(*dev);
    NoLockManager lm;
    auto fs = FileSystem::mount(*dev, log, lm, quiet());
    ASSERT_TRUE(fs) << fs.status().to_string();
    FileSystem& f = **fs;
    Manifest& m = *manifest_;
    auto file = [&](uint64_t dir, const std::string& dpath, const std::string& name,
                    const std::string& data) -> uint64_t {
      auto a = f.mknod(dir, name, S_IFREG | 0644, 0, {});
      EXPECT_TRUE(a) << a.status().to_string();
      if (!a) return 0;
      auto n = f.write(a->ino, 0, std::as_bytes(std::span(data)));
      EXPECT_TRUE(n && *n == data.size());
      m.files[dpath + "/" + name] = data;
      m.dirs[dpath].insert(name);
      return a->ino;
    };
    const uint64_t root = f.root();
    m.dirs[""];
    file(root, "", "tiny", "inline data, a few bytes");
    file(root, "", "small", pattern("small", 20000));
    // Every other block written: hundreds of extents, so the tree needs a node block.
    auto frag = f.mknod(root, "fragmented", S_IFREG | 0644, 0, {});
    ASSERT_TRUE(frag);
    std::string frag_content(600 * 8192 - 4096, '\0');
    for (uint64_t k = 0; k < 600; ++k) {
      std::string block = pattern("frag" + std::to_string(k), 4096);
      ASSERT_TRUE(f.write(frag->ino, k * 8192, std::as_bytes(std::span(block))));
      frag_content.replace(k * 8192, 4096, block);
    }
    m.files["/fragmented"] = frag_content;
    m.dirs[""].insert("fragmented");
    auto big = f.mkdir(root, "big", 0755, {});
    ASSERT_TRUE(big);
    m.dirs[""].insert("big");
    m.dirs["/big"];
    for (int i = 0; i < 160; ++i) {
      std::string name = "entry-" + std::to_string(i) + std::string(static_cast<size_t>(i % 40), 'x');
      file(big->ino, "/big", name, i % 10 == 0 ? pattern(name, 5000) : name);
    }
    auto sub = f.mkdir(root, "sub", 0755, {});
    ASSERT_TRUE(sub);
    m.dirs[""].insert("sub");
    m.dirs["/sub"];
    auto deeper = f.mkdir(sub->ino, "deeper", 0700, {});
    ASSERT_TRUE(deeper);
    m.dirs["/sub"].insert("deeper");
    m.dirs["/sub/deeper"];
    uint64_t tagged = file(deeper->ino, "/sub/deeper", "tagged", pattern("tagged", 9000));
    ASSERT_TRUE(f.setxattr(tagged, "user.short", "v1", 0));
    ASSERT_TRUE(f.setxattr(tagged, "user.long", pattern("xattr", 3000), 0));
    m.xattrs["/sub/deeper/tagged"] = {{"user.short", "v1"}, {"user.long", pattern("xattr", 3000)}};
    ASSERT_TRUE(f.symlink(root, "link", "sub/deeper/tagged", {}));
    m.symlinks["/link"] = "sub/deeper/tagged";
    m.dirs[""].insert("link");
    std::string long_target(3000, 't');
    ASSERT_TRUE(f.symlink(sub->ino, "longlink", long_target, {}));
    m.symlinks["/sub/longlink"] = long_target;
    m.dirs["/sub"].insert("longlink");
    ASSERT_TRUE(f.unmount());
    image_->resize(dev->size_bytes());
    ASSERT_TRUE(dev->read(0, std::span(*image_)));
  }

  // Blocks that carry a lunfs header: superblocks, slot structures, rgrp headers and
  // bitmaps, inodes, extent nodes, directory tables and leaves, xattr blocks.
  static std::vector<uint64_t> metadata_blocks() {
    std::vector<uint64_t> out;
    for (uint64_t b = 0; b * kBs < image_->size(); ++b) {
      auto block = std::span(*image_).subspan(b * kBs, kBs);
      if (ondisk::get<uint32_t>(block, 0) == ondisk::kMagic) out.push_back(b);
    }
    return out;
  }

  // The damaged block: 64 bytes at `offset` overwritten; `reseal` gives it a valid checksum
  // again.
  static SectorLayer damage(uint64_t blocknr, size_t offset, bool reseal) {
    std::vector<std::byte> block(image_->begin() + blocknr * kBs, image_->begin() + (blocknr + 1) * kBs);
    for (size_t i = 0; i < 64; ++i) block[offset + i] = std::byte{static_cast<uint8_t>(0xA5 ^ i)};
    if (reseal) {
      ondisk::BlockHeader h = ondisk::peek_header(block);
      const uint64_t seed = h.type == ondisk::BlockType::kSuperblock ? 0 : csum_seed_;
      ondisk::seal_block(block, h.type, h.blocknr, h.sequence, seed);
    }
    SectorLayer layer;
    layer.put(blocknr * kBs, block);
    return layer;
  }

 protected:
  static std::vector<std::byte>* image_;
  static Manifest* manifest_;
  static inline uint64_t csum_seed_ = 0;
};

std::vector<std::byte>* Corruption::image_ = nullptr;
Manifest* Corruption::manifest_ = nullptr;

// Walks and changes a mounted, damaged file system; returns the invariant violations.
class Walker {
 public:
  Walker(FileSystem& fs, const Manifest& m, bool strict) : fs_(fs), m_(m), strict_(strict) {}

  std::vector<std::string> run() {
    for (const auto& [path, names] : m_.dirs) check_dir(path, names);
    for (const auto& [path, content] : m_.files) check_file(path, content);
    for (const auto& [path, target] : m_.symlinks) check_symlink(path, target);
    for (const auto& [path, values] : m_.xattrs) check_xattrs(path, values);
    change_things();
    return violations_;
  }

 private:
  // A failure that checksum damage may explain: EIO for the object, EROFS once withdrawn.
  void expect_errno(const std::string& what, const Status& st, std::initializer_list<int> allowed) {
    if (st.err() == 0 || st.err() < 0 || st.err() > 4095) {
      violations_.push_back(what + ": not an errno: " + st.to_string());
      return;
    }
    if (!strict_) return;
    for (int e : allowed) {
      if (st.err() == e) return;
    }
    violations_.push_back(what + ": " + st.to_string());
  }

  Result<uint64_t> resolve(const std::string& path) {
    uint64_t ino = fs_.root();
    size_t pos = 1;
    while (pos <= path.size() && !path.empty()) {
      size_t next = path.find('/', pos);
      std::string name = path.substr(pos, next == std::string::npos ? std::string::npos : next - pos);
      LUNFS_ASSIGN(Attr a, fs_.lookup(ino, name));
      (void)fs_.forget(a.ino, 1);
      ino = a.ino;
      if (next == std::string::npos) break;
      pos = next + 1;
    }
    return ino;
  }

  void check_dir(const std::string& path, const std::set<std::string>& names) {
    auto ino = resolve(path);
    if (!ino) return expect_errno("lookup " + path, ino.status(), {EIO});
    std::set<std::string> seen;
    Status st = fs_.readdir(*ino, 0, [&](const DirListing& e) {
      if (e.name != "." && e.name != "..") seen.insert(e.name);
      return seen.size() < 100000;
    });
    if (!st) return expect_errno("readdir " + path, st, {EIO});
    if (strict_ && seen != names) violations_.push_back("readdir " + path + ": listing differs from what was created");
  }

  void check_file(const std::string& path, const std::string& content) {
    auto ino = resolve(path);
    if (!ino) return expect_errno("lookup " + path, ino.status(), {EIO});
    std::string buf(content.size() + 4096, '\0');
    auto n = fs_.read(*ino, 0, std::as_writable_bytes(std::span(buf)));
    if (!n) return expect_errno("read " + path, n.status(), {EIO});
    buf.resize(*n);
    if (strict_ && buf != content) violations_.push_back("read " + path + ": wrong data, not EIO");
  }

  void check_symlink(const std::string& path, const std::string& target) {
    auto ino = resolve(path);
    if (!ino) return expect_errno("lookup " + path, ino.status(), {EIO});
    auto t = fs_.readlink(*ino);
    if (!t) return expect_errno("readlink " + path, t.status(), {EIO});
    if (strict_ && *t != target) violations_.push_back("readlink " + path + ": wrong target, not EIO");
  }

  void check_xattrs(const std::string& path, const std::map<std::string, std::string>& values) {
    auto ino = resolve(path);
    if (!ino) return expect_errno("lookup " + path, ino.status(), {EIO});
    for (const auto& [name, value] : values) {
      auto v = fs_.getxattr(*ino, name);
      if (!v) {
        expect_errno("getxattr " + path + " " + name, v.status(), {EIO});
      } else if (strict_ && *v != value) {
        violations_.push_back("getxattr " + path + " " + name + ": wrong value, not EIO");
      }
    }
  }

  // Creates, writes, renames and removes; what succeeded must read back.
  void change_things() {
    const std::initializer_list<int> damage = {EIO, EROFS};
    const uint64_t root = fs_.root();
    auto a = fs_.mknod(root, "new-file", S_IFREG | 0644, 0, {});
    if (!a) {
      expect_errno("create", a.status(), damage);
    } else {
      std::string data = pattern("new", 50000);
      auto n = fs_.write(a->ino, 0, std::as_bytes(std::span(data)));
      if (!n) {
        expect_errno("write new file", n.status(), damage);
      } else {
        std::string back(data.size(), '\0');
        auto r = fs_.read(a->ino, 0, std::as_writable_bytes(std::span(back)));
        if (!r) expect_errno("read new file", r.status(), damage);
        else if (strict_ && back != data) violations_.push_back("new file reads back wrong");
      }
      (void)fs_.forget(a->ino, 1);
    }
    if (auto big = resolve("/big")) {
      for (int i = 0; i < 40; ++i) {
        auto c = fs_.mknod(*big, "added-" + std::to_string(i), S_IFREG | 0644, 0, {});
        if (!c) {
          expect_errno("create in /big", c.status(), damage);
          break;
        }
        (void)fs_.forget(c->ino, 1);
      }
      if (Status st = fs_.unlink(*big, "entry-1x"); !st) expect_errno("unlink in /big", st, {EIO, EROFS, ENOENT});
    }
    if (Status st = fs_.rename(root, "small", root, "small-renamed", 0); !st) {
      expect_errno("rename", st, {EIO, EROFS, ENOENT});
    }
    if (Status st = fs_.unlink(root, "fragmented"); !st) expect_errno("unlink fragmented", st, {EIO, EROFS, ENOENT});
    if (auto t = resolve("/sub/deeper/tagged")) {
      if (Status st = fs_.setxattr(*t, "user.long", pattern("xattr2", 3500), 0); !st) {
        expect_errno("setxattr", st, damage);
      }
    }
    if (Status st = fs_.sync(); !st) expect_errno("sync", st, damage);
  }

  FileSystem& fs_;
  const Manifest& m_;
  bool strict_;
  std::vector<std::string> violations_;
};

// Damage lands twice in each block: among the fixed fields after the header (inode times,
// flags and sizes; rgrp counters; leaf depth and prefix) and in the body (inline data,
// extent-tree roots, directory entries, bitmaps).
constexpr size_t kDamageOffsets[] = {72, 272};

struct Tally {
  size_t mounted = 0, refused = 0, withdrawn = 0;
};

// Mounts the damaged disk, walks it and changes it, and adds what happened to `tally`.
void survive(CrashImage& disk, const Manifest& manifest, bool strict, Tally& tally) {
  WriteThroughLog log(disk);
  NoLockManager lm;
  auto fs = FileSystem::mount(disk, log, lm, quiet());
  if (!fs) {
    ++tally.refused;
    const int e = fs.status().err();
    EXPECT_TRUE(e > 0 && e < 4096) << fs.status().to_string();
    return;
  }
  ++tally.mounted;
  for (const auto& v : Walker(**fs, manifest, strict).run()) ADD_FAILURE() << v;
  tally.withdrawn += (*fs)->withdrawn();
  (void)(*fs)->unmount();  // may fail on a damaged disk; must not crash
}

void damage_every_block(const std::vector<std::byte>& image, const Manifest& manifest,
                        const std::vector<uint64_t>& blocks, bool reseal) {
  Tally tally;
  for (uint64_t b : blocks) {
    for (size_t offset : kDamageOffsets) {
      SCOPED_TRACE("damaged block " + std::to_string(b) + " at byte " + std::to_string(offset) +
                   (reseal ? " (re-sealed)" : ""));
      CrashImage disk(image, Corruption::damage(b, offset, reseal));
      survive(disk, manifest, !reseal, tally);
    }
  }
  std::printf("%zu blocks damaged twice%s: %zu mounts (%zu withdrawn), %zu refused\n", blocks.size(),
              reseal ? " behind valid checksums" : "", tally.mounted, tally.withdrawn, tally.refused);
  EXPECT_GT(tally.mounted, blocks.size()) << "most damage is local: the mount must survive it";
}

TEST_F(Corruption, ChecksumDamageGivesRightDataOrEioNeverWrongData) {
  auto blocks = metadata_blocks();
  ASSERT_GT(blocks.size(), 60u) << "the populated image has too few metadata blocks to mean anything";
  damage_every_block(*image_, *manifest_, blocks, false);
}

TEST_F(Corruption, ResealedDamageNeverCrashes) {
  damage_every_block(*image_, *manifest_, metadata_blocks(), true);
}

}  // namespace
}  // namespace lunfs
