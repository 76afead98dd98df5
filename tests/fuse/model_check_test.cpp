// Randomised model-based checker: the same random operations run on the lunfs mount and
// on a reference directory on the host's file system; after every step the results
// (success or errno, bytes read) and the whole trees (types, sizes, contents, link
// counts, permissions, symlink targets, xattrs) must agree. A failure prints the seed and
// the operation log; replay with LUNFS_MODEL_SEED=<seed> (LUNFS_MODEL_STEPS=<n>).
// Files are reopened with the flags programs use (O_TRUNC, O_APPEND, O_CREAT|O_EXCL, ...),
// not only created and changed through pwrite/truncate: a server that ignored O_TRUNC in
// OPEN passed every other operation here.
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

struct Snapshot {
  std::map<std::string, std::string> entries;  // relative path -> description
};

std::string describe(const std::string& p, const struct stat& st) {
  std::ostringstream o;
  o << std::oct << (st.st_mode & 0177777) << std::dec << " nlink=" << st.st_nlink;
  if (S_ISREG(st.st_mode)) {
    o << " size=" << st.st_size << " data=";
    int fd = open(p.c_str(), O_RDONLY);
    std::string data(static_cast<size_t>(st.st_size), '\0');
    ssize_t n = fd >= 0 ? pread(fd, data.data(), data.size(), 0) : -1;
    if (fd >= 0) close(fd);
    o << (n == st.st_size ? std::to_string(std::hash<std::string>{}(data)) : "unreadable");
  } else if (S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = readlink(p.c_str(), buf, sizeof buf);
    o << " -> " << std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
  }
  if (!S_ISLNK(st.st_mode)) {
    char names[4096];
    ssize_t n = llistxattr(p.c_str(), names, sizeof names);
    std::vector<std::string> xs;
    for (ssize_t i = 0; i < n;) {
      std::string name(names + i);
      i += static_cast<ssize_t>(name.size()) + 1;
      if (name.rfind("user.", 0) != 0) continue;
      char v[512];
      ssize_t vn = lgetxattr(p.c_str(), name.c_str(), v, sizeof v);
      xs.push_back(name + "=" + std::string(v, vn > 0 ? static_cast<size_t>(vn) : 0));
    }
    std::sort(xs.begin(), xs.end());
    for (auto& x : xs) o << " " << x;
  }
  return o.str();
}

void walk(const std::string& root, const std::string& rel, Snapshot& s) {
  DIR* d = opendir((root + rel).c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == ".." || name == "lost+found") continue;
    std::string r = rel + "/" + name, p = root + r;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    s.entries[r] = describe(p, st);
    if (S_ISDIR(st.st_mode)) walk(root, r, s);
  }
  closedir(d);
}

class ModelCheck : public LunfsMount {
 protected:
  void SetUp() override {
    LunfsMount::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ref_ = dir_ + "/ref";
    ASSERT_EQ(mkdir(ref_.c_str(), 0755), 0);
    lun_root_ = mnt_ + "/model";
    ASSERT_EQ(mkdir(lun_root_.c_str(), 0755), 0);
  }
  std::string ref_, lun_root_;
};

// One random operation, applied to both roots; returns a description of its outcome.
class Runner {
 public:
  Runner(uint64_t seed, std::string a, std::string b) : rng_(seed), roots_{std::move(a), std::move(b)} {}

  std::string pick_path() {
    static const char* dirs[] = {"", "/d1", "/d2", "/d1/d3"};
    static const char* names[] = {"a", "b", "c", "f", "g", "h", "d1", "d3"};
    return std::string(dirs[rng_() % 4]) + "/" + names[rng_() % (rng_() % 8 ? 6 : 8)];
  }

  // Runs fn on both roots; results must match.
  template <typename F>
  std::string both(F fn) {
    std::string r[2];
    for (int i = 0; i < 2; ++i) {
      errno = 0;
      r[i] = fn(roots_[i], i);
    }
    if (r[0] != r[1]) mismatch_ = "result on lunfs: " + r[0] + " / reference: " + r[1];
    if (r[0].rfind("ok", 0) == 0) ++succeeded_;
    return r[0];
  }

  static std::string rc(long v) { return v < 0 ? std::string("errno ") + strerror(errno) : "ok " + std::to_string(v); }

  std::string step() {
    std::string p = pick_path(), q = pick_path();
    uint64_t off = rng_() % 300000, len = rng_() % 70000 + 1;
    char fill = static_cast<char>('a' + rng_() % 26);
    int op = static_cast<int>(rng_() % 18);
    std::ostringstream name;
    switch (op) {
      case 0: case 1: {
        name << "pwrite " << p << " off=" << off << " len=" << len << " '" << fill << "'";
        std::string data(len, fill);
        name << " -> " << both([&](const std::string& r, int) {
          int fd = open((r + p).c_str(), O_WRONLY | O_CREAT, 0644);
          if (fd < 0) return rc(-1);
          long n = pwrite(fd, data.data(), data.size(), static_cast<off_t>(off));
          std::string res = rc(n);
          close(fd);
          return res;
        });
        break;
      }
      case 2: {
        name << "pread " << p << " off=" << off << " len=" << len;
        name << " -> " << both([&](const std::string& r, int) {
          int fd = open((r + p).c_str(), O_RDONLY);
          if (fd < 0) return rc(-1);
          std::string buf(len, '\0');
          long n = pread(fd, buf.data(), buf.size(), static_cast<off_t>(off));
          close(fd);
          return rc(n) + (n > 0 ? " h=" + std::to_string(std::hash<std::string>{}(buf.substr(0, static_cast<size_t>(n)))) : "");
        });
        break;
      }
      case 3: {
        name << "truncate " << p << " " << off;
        name << " -> " << both([&](const std::string& r, int) { return rc(truncate((r + p).c_str(), static_cast<off_t>(off))); });
        break;
      }
      case 4: {
        static const int modes[] = {0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, FALLOC_FL_ZERO_RANGE};
        int mode = modes[rng_() % 4];
        name << "fallocate " << p << " mode=" << mode << " off=" << off << " len=" << len;
        name << " -> " << both([&](const std::string& r, int) {
          int fd = open((r + p).c_str(), O_WRONLY);
          if (fd < 0) return rc(-1);
          std::string res = rc(fallocate(fd, mode, static_cast<off_t>(off), static_cast<off_t>(len)));
          close(fd);
          return res;
        });
        break;
      }
      case 5: {
        name << "mkdir " << p << " -> " << both([&](const std::string& r, int) { return rc(mkdir((r + p).c_str(), 0755)); });
        break;
      }
      case 6: {
        name << "rmdir " << p << " -> " << both([&](const std::string& r, int) { return rc(rmdir((r + p).c_str())); });
        break;
      }
      case 7: {
        name << "unlink " << p << " -> " << both([&](const std::string& r, int) { return rc(unlink((r + p).c_str())); });
        break;
      }
      case 8: case 9: {
        static const unsigned flags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
        unsigned f = flags[rng_() % 4];
        name << "rename " << p << " " << q << " flags=" << f << " -> " << both([&](const std::string& r, int) {
          return rc(syscall(SYS_renameat2, AT_FDCWD, (r + p).c_str(), AT_FDCWD, (r + q).c_str(), f));
        });
        break;
      }
      case 10: {
        name << "link " << p << " " << q << " -> "
             << both([&](const std::string& r, int) { return rc(link((r + p).c_str(), (r + q).c_str())); });
        break;
      }
      case 11: {
        // Relative targets: opens follow them, and an absolute one would lead out to the host.
        const std::string target = q.substr(1);
        name << "symlink " << target << " " << p << " -> "
             << both([&](const std::string& r, int) { return rc(symlink(target.c_str(), (r + p).c_str())); });
        break;
      }
      case 12: {
        std::string v(rng_() % 100, fill);
        std::string x = "user.x" + std::to_string(rng_() % 3);
        name << "setxattr " << p << " " << x << " -> " << both([&](const std::string& r, int) {
          return rc(lsetxattr((r + p).c_str(), x.c_str(), v.data(), v.size(), 0));
        });
        break;
      }
      case 13: {
        std::string x = "user.x" + std::to_string(rng_() % 3);
        name << "removexattr " << p << " " << x << " -> "
             << both([&](const std::string& r, int) { return rc(lremovexattr((r + p).c_str(), x.c_str())); });
        break;
      }
      case 14: {
        uint32_t m = rng_() % 0777 | 0600;  // keep the owner able to read and write
        name << "chmod " << p << " " << std::oct << m << std::dec << " -> "
             << both([&](const std::string& r, int) { return rc(chmod((r + p).c_str(), m)); });
        break;
      }
      case 15: {
        name << "fsync " << p << " -> " << both([&](const std::string& r, int) {
          int fd = open((r + p).c_str(), O_RDONLY);
          if (fd < 0) return rc(-1);
          std::string res = rc(fsync(fd));
          close(fd);
          return res;
        });
        break;
      }
      case 16: case 17: {
        // Reopening an existing file the way programs do (shell redirections, editors,
        // lock files): the flags reach the server in OPEN/CREATE, not as a setattr.
        static const std::pair<int, const char*> flags[] = {
            {O_WRONLY | O_TRUNC, "O_WRONLY|O_TRUNC"},
            {O_RDWR | O_TRUNC, "O_RDWR|O_TRUNC"},
            {O_RDONLY | O_TRUNC, "O_RDONLY|O_TRUNC"},
            {O_WRONLY | O_CREAT | O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"},
            {O_WRONLY | O_APPEND, "O_WRONLY|O_APPEND"},
            {O_RDWR | O_APPEND | O_TRUNC, "O_RDWR|O_APPEND|O_TRUNC"},
            {O_WRONLY | O_CREAT, "O_WRONLY|O_CREAT"},
            {O_WRONLY | O_CREAT | O_EXCL, "O_WRONLY|O_CREAT|O_EXCL"},
        };
        const auto& [f, fname] = flags[rng_() % 8];
        const size_t wlen = rng_() % 3 == 0 ? 0 : rng_() % 9000 + 1;
        name << "open " << p << " " << fname << " write " << wlen << " '" << fill << "'";
        std::string data(wlen, fill);
        name << " -> " << both([&](const std::string& r, int) {
          int fd = open((r + p).c_str(), f, 0644);
          if (fd < 0) return rc(-1);
          struct stat st {};
          std::string res = "ok size after open " + std::to_string(fstat(fd, &st) == 0 ? st.st_size : -1);
          if (wlen > 0 && (f & O_ACCMODE) != O_RDONLY) res += ", write " + rc(write(fd, data.data(), data.size()));
          res += ", size " + std::to_string(fstat(fd, &st) == 0 ? st.st_size : -1);
          close(fd);
          return res;
        });
        break;
      }
    }
    return name.str();
  }

  std::string mismatch_;
  int succeeded_ = 0;

 private:
  std::mt19937_64 rng_;
  std::string roots_[2];
};

TEST_F(ModelCheck, RandomOperationsMatchReference) {
  uint64_t seed = 20261123;
  int steps = 1500;
  if (const char* s = getenv("LUNFS_MODEL_SEED")) seed = std::stoull(s);
  if (const char* s = getenv("LUNFS_MODEL_STEPS")) steps = std::stoi(s);
  for (const std::string& r : {lun_root_, ref_}) {
    for (const char* d : {"/d1", "/d2", "/d1/d3"}) ASSERT_EQ(mkdir((r + d).c_str(), 0755), 0);
  }
  Runner runner(seed, lun_root_, ref_);
  std::vector<std::string> log;
  for (int i = 0; i < steps; ++i) {
    log.push_back(runner.step());
    Snapshot a, b;
    walk(lun_root_, "", a);
    walk(ref_, "", b);
    std::string diff;
    for (auto& [p, d] : b.entries) {
      auto it = a.entries.find(p);
      if (it == a.entries.end()) diff += "  missing on lunfs: " + p + " (" + d + ")\n";
      else if (it->second != d) diff += "  " + p + ": lunfs " + it->second + " / reference " + d + "\n";
    }
    for (auto& [p, d] : a.entries) {
      if (!b.entries.count(p)) diff += "  only on lunfs: " + p + " (" + d + ")\n";
    }
    if (!runner.mismatch_.empty() || !diff.empty()) {
      std::string tail;
      for (size_t k = log.size() > 15 ? log.size() - 15 : 0; k < log.size(); ++k) tail += "  " + log[k] + "\n";
      FAIL() << "seed " << seed << " step " << i << ": " << runner.mismatch_ << "\n" << diff << "last operations:\n"
             << tail << "replay: LUNFS_MODEL_SEED=" << seed << " LUNFS_MODEL_STEPS=" << i + 1;
    }
  }
  // What the kernel's caches showed must also be what is on disk.
  unmount_fs();
  mount_fs(mount_options());
  Snapshot a, b;
  walk(lun_root_, "", a);
  walk(ref_, "", b);
  EXPECT_EQ(a.entries, b.entries) << "trees differ after remount (seed " << seed << ")";
  // The generator must exercise the file system, not just collect errors.
  std::printf("seed %llu: %d of %d operations succeeded on both\n", static_cast<unsigned long long>(seed),
              runner.succeeded_, steps);
  EXPECT_GT(runner.succeeded_, steps / 6);
}

}  // namespace
}  // namespace lunfs::testing
