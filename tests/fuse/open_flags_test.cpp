// Opening existing files through the mount, compared with the host's ext4: every scenario
// runs the same steps in the lunfs mount and in a fresh directory under /var/tmp, writes
// down what a program would see (errors, sizes, contents, whether mtime/ctime moved,
// reads through an mmap after a truncate), and the two transcripts must be equal. The
// kernel hands O_TRUNC to the server in OPEN (FUSE_CAP_ATOMIC_O_TRUNC) and sends no
// setattr, so a server that ignores it passes every create-write-read test and still
// leaves `echo hi > f` with the old tail.
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <grp.h>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "tests/fuse/mount_fixture.h"

namespace lunfs::testing {
namespace {

// A directory on the host's file system (ext4 here), removed at scope exit.
class HostDir {
 public:
  HostDir() {
    char tmpl[] = "/var/tmp/lunfs-ref-XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
    if (!path_.empty()) chmod(path_.c_str(), 0755);
  }
  ~HostDir() {
    if (!path_.empty()) run("rm -rf '" + path_ + "'");
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// What a scenario saw, one line per observation.
class Transcript {
 public:
  void line(const std::string& s) { out_ << s << "\n"; }
  // "ok" or the errno's name: the result of a call returning -1 on error.
  void result(const std::string& what, long rc) {
    line(what + " -> " + (rc < 0 ? std::string("errno ") + strerrorname_np(errno) : "ok " + std::to_string(rc)));
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

struct Times {
  struct timespec mtime {}, ctime {};
};

Times times_of(const std::string& p) {
  struct stat st {};
  stat(p.c_str(), &st);
  return {st.st_mtim, st.st_ctim};
}

bool same(const struct timespec& a, const struct timespec& b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

// Size, content and mode of `p`, and which of its times moved since `before`.
std::string state(const std::string& p, const Times& before) {
  struct stat st {};
  if (stat(p.c_str(), &st) != 0) return std::string("stat: ") + strerrorname_np(errno);
  Times now = times_of(p);
  std::string data;
  for (char c : read_file(p)) {
    if (c == '\0') data += "\\0";  // holes, readable in a failure message
    else data += c;
  }
  std::ostringstream o;
  o << "size " << st.st_size << " mode " << std::oct << (st.st_mode & 07777) << std::dec << " data '"
    << (data.size() <= 64 ? data : data.substr(0, 32) + "...(" + std::to_string(data.size()) + " bytes)") << "'"
    << " mtime " << (same(now.mtime, before.mtime) ? "kept" : "changed") << " ctime "
    << (same(now.ctime, before.ctime) ? "kept" : "changed");
  return o.str();
}

// Long enough for a coarse (jiffy) timestamp to move.
void tick() { std::this_thread::sleep_for(std::chrono::milliseconds(20)); }

sigjmp_buf probe_env;
void on_sigbus(int) { siglongjmp(probe_env, 1); }

// The byte at `p`, or "SIGBUS" when touching it raises one (a mapping beyond EOF).
std::string probe(const volatile char* p) {
  struct sigaction sa {}, old {};
  sa.sa_handler = on_sigbus;
  sigaction(SIGBUS, &sa, &old);
  // Only plain volatile scalars live across sigsetjmp (a std::string's locals may be
  // clobbered by the longjmp: GCC's -Wclobbered at -O1).
  volatile int value = 0;
  volatile bool faulted = false;
  if (sigsetjmp(probe_env, 1) == 0) {
    value = *p;
  } else {
    faulted = true;
  }
  sigaction(SIGBUS, &old, nullptr);
  return faulted ? std::string("SIGBUS") : std::to_string(value);
}

class OpenFlags : public LunfsMount {
 protected:
  // Runs `scenario` in the mount and on ext4; the transcripts must agree.
  void compare(const std::function<void(const std::string& root, Transcript& t)>& scenario) {
    HostDir host;
    ASSERT_FALSE(host.path().empty()) << "mkdtemp under /var/tmp failed";
    ASSERT_EQ(mkdir(path("t").c_str(), 0755), 0);
    Transcript lun, ext4;
    scenario(path("t"), lun);
    scenario(host.path(), ext4);
    EXPECT_EQ(lun.str(), ext4.str()) << "lunfs (first) and ext4 (second) differ";
    EXPECT_NE(ext4.str(), "");
  }
};

const std::pair<int, const char*> kFlags[] = {
    {O_WRONLY | O_TRUNC, "O_WRONLY|O_TRUNC"},
    {O_RDWR | O_TRUNC, "O_RDWR|O_TRUNC"},
    {O_RDONLY | O_TRUNC, "O_RDONLY|O_TRUNC"},
    {O_WRONLY | O_CREAT | O_TRUNC, "O_WRONLY|O_CREAT|O_TRUNC"},
    {O_RDWR | O_APPEND | O_TRUNC, "O_RDWR|O_APPEND|O_TRUNC"},
    {O_WRONLY | O_APPEND, "O_WRONLY|O_APPEND"},
    {O_WRONLY | O_CREAT | O_APPEND, "O_WRONLY|O_CREAT|O_APPEND"},
    {O_WRONLY | O_CREAT, "O_WRONLY|O_CREAT"},
    {O_WRONLY | O_CREAT | O_EXCL, "O_WRONLY|O_CREAT|O_EXCL"},
    {O_RDWR, "O_RDWR"},
    {O_RDONLY, "O_RDONLY"},
};

// Each flag set on an existing 17-byte file and on an existing empty one: what open and a
// write through the descriptor do, then the file.
TEST_F(OpenFlags, ReopenExistingFileMatchesExt4) {
  compare([](const std::string& root, Transcript& t) {
    for (const auto& [flags, name] : kFlags) {
      for (const std::string initial : {"hello world long\n", ""}) {
        const std::string f = root + "/f";
        if (!write_file(f, initial)) return t.line("setup failed");
        Times before = times_of(f);
        tick();
        std::string what = std::string(name) + " on " + std::to_string(initial.size()) + " bytes";
        int fd = open(f.c_str(), flags, 0644);
        t.result(what + ": open", fd);
        if (fd >= 0) {
          struct stat st {};
          fstat(fd, &st);
          t.line("  size after open " + std::to_string(st.st_size));
          if ((flags & O_ACCMODE) != O_RDONLY) t.result("  write 'hi\\n'", write(fd, "hi\n", 3));
          close(fd);
        }
        t.line("  " + state(f, before));
        unlink(f.c_str());
      }
    }
  });
}

// A second descriptor sees the truncation at once: reads end at the new EOF, its next
// write lands at its own offset (leaving a hole), an O_APPEND one appends at the new end.
TEST_F(OpenFlags, TruncateWhileAnotherDescriptorIsOpen) {
  compare([](const std::string& root, Transcript& t) {
    const std::string f = root + "/f";
    if (!write_file(f, std::string(10000, 'a'))) return t.line("setup failed");
    int keep = open(f.c_str(), O_RDWR);
    int app = open(f.c_str(), O_WRONLY | O_APPEND);
    t.result("lseek keep to 6000", lseek(keep, 6000, SEEK_SET));
    Times before = times_of(f);
    tick();
    int tr = open(f.c_str(), O_WRONLY | O_TRUNC);
    t.result("open O_WRONLY|O_TRUNC", tr >= 0 ? 0 : -1);
    struct stat st {};
    fstat(keep, &st);
    t.line("fstat through the other descriptor: size " + std::to_string(st.st_size));
    char buf[64];
    t.result("pread 64 at 0 through the other descriptor", pread(keep, buf, sizeof buf, 0));
    t.result("write 'xy' through the truncating descriptor", write(tr, "xy", 2));
    t.result("write 'K' through the other descriptor (offset 6000)", write(keep, "K", 1));
    t.result("write 'Z' through the O_APPEND descriptor", write(app, "Z", 1));
    std::string data = read_file(f);
    t.line("size " + std::to_string(data.size()) + " head '" + data.substr(0, 2) + "' byte 3 " +
           std::to_string(data.size() > 3 ? data[3] : -1) + " tail '" + data.substr(data.size() > 2 ? data.size() - 2 : 0) + "'");
    t.line(state(f, before));
    for (int fd : {keep, app, tr}) close(fd);
  });
}

// A shared mapping of the old contents: after the truncation, touching it beyond the new
// EOF raises SIGBUS; once the file grows again the mapping shows the new bytes.
TEST_F(OpenFlags, TruncateWhileMapped) {
  compare([](const std::string& root, Transcript& t) {
    const std::string f = root + "/f";
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    if (!write_file(f, std::string(3 * page, 'm'))) return t.line("setup failed");
    int fd = open(f.c_str(), O_RDONLY);
    void* m = mmap(nullptr, 3 * page, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) return t.line(std::string("mmap: ") + strerrorname_np(errno));
    const volatile char* p = static_cast<const char*>(m);
    t.line("before: [0] " + probe(p) + " [2 pages] " + probe(p + 2 * page));
    int tr = open(f.c_str(), O_RDWR | O_TRUNC);
    t.result("open O_RDWR|O_TRUNC", tr >= 0 ? 0 : -1);
    t.line("after truncate: [0] " + probe(p) + " [1 page] " + probe(p + page));
    t.result("write 100 bytes 'n'", write(tr, std::string(100, 'n').data(), 100));
    t.line("after write: [0] " + probe(p) + " [99] " + probe(p + 99) + " [100] " + probe(p + 100) + " [page-1] " +
           probe(p + page - 1) + " [1 page] " + probe(p + page));
    munmap(m, 3 * page);
    close(fd);
    close(tr);
    t.line("file: " + std::to_string(read_file(f).size()) + " bytes");
  });
}

// A caller without CAP_FSETID that truncates a setuid/setgid file through open loses both
// bits (the kernel's own setattr would do it, but with atomic O_TRUNC none is sent).
TEST_F(OpenFlags, TruncatingOpenByOtherUserClearsSetuid) {
  compare([](const std::string& root, Transcript& t) {
    for (int flags : {O_WRONLY | O_TRUNC, O_RDONLY | O_TRUNC, O_WRONLY | O_APPEND}) {
      const std::string f = root + "/s";
      if (!write_file(f, "data") || chmod(f.c_str(), 06777) != 0) return t.line("setup failed");
      Times before = times_of(f);
      tick();
      int rc = as_nobody([&] {
        int fd = open(f.c_str(), flags);
        if (fd < 0) return errno;
        close(fd);
        return 0;
      });
      t.line("open as nobody, flags " + std::to_string(flags) + ": " + std::to_string(rc));
      t.line("  " + state(f, before));
      unlink(f.c_str());
    }
  });
}

// The programs users run on files that exist already.
TEST_F(OpenFlags, ShellProgramsOverExistingFiles) {
  HostDir tarball;
  ASSERT_FALSE(tarball.path().empty());
  // One archive for both sides: short files, to be extracted over longer ones.
  ASSERT_EQ(run("cd " + tarball.path() + " && mkdir src && printf short > src/a && printf tiny > src/b && "
                "tar -cf t.tar -C src a b"), 0);
  const std::string tar = tarball.path() + "/t.tar";
  compare([&](const std::string& root, Transcript& t) {
    auto sh = [&](const std::string& cmd) {
      std::string out_file = tarball.path() + "/out";
      int rc = run("cd '" + root + "' && (" + cmd + ") > " + out_file + " 2>&1");
      t.line("$ " + cmd + "\n" + read_file(out_file) + "[exit " + std::to_string(WEXITSTATUS(rc)) + "]");
    };
    sh("echo hello world long > f; echo hi > f; cat f; stat -c %s f");
    sh("printf 'a%.0s' $(seq 5000) > g; printf 'tail\\n' >> g; wc -c < g; tail -c 5 g");
    sh("seq 1 30000 > big; seq 1 10 > small; cp small big; cmp small big && wc -c < big");
    sh("seq 1 30000 > big2; cat small > big2; wc -c < big2");
    sh("seq 1 9000 > a; seq 1 9000 > b; tar -xf " + tar + " && cat a b; echo; wc -c a b");
    sh("seq 1 9000 > a; seq 1 9000 > b; tar --overwrite -xf " + tar + " && cat a b; echo; wc -c a b");
    sh("seq 1 5000 > s; sed -i -e 's/^1/one/' -e '100,$d' s; wc -c < s; head -3 s; ls");
    sh("export HOME=" + tarball.path() + " GIT_CONFIG_NOSYSTEM=1; g='git -c user.name=t -c user.email=t@t "
       "-c init.defaultBranch=main'; $g init -q r && cd r && seq 1 1000 > x && $g add x && $g commit -qm one && "
       "echo short > x && $g commit -qam two && $g status --porcelain && $g show HEAD:x && "
       "$g show HEAD~1:x | wc -c && $g fsck --strict 2>&1 | grep -v '^Checking' ; $g gc -q && $g log --format=%s");
  });
}

class ReadOnlyOpen : public LunfsMount {
 protected:
  std::string mount_options() const override { return "lockproto=nolock,ro"; }
};

// Truncating opens on a read-only mount fail with EROFS and change nothing (as on any
// read-only Linux mount); plain reads work.
TEST_F(ReadOnlyOpen, TruncatingOpenIsRefused) {
  unmount_fs();
  mount_fs("lockproto=nolock");
  ASSERT_TRUE(write_file(path("f"), "persisted"));
  unmount_fs();
  mount_fs(mount_options());
  for (int flags : {O_WRONLY | O_TRUNC, O_RDONLY | O_TRUNC, O_RDWR | O_CREAT | O_TRUNC}) {
    EXPECT_EQ(open(path("f").c_str(), flags, 0644), -1) << flags;
    EXPECT_EQ(errno, EROFS) << flags;
  }
  EXPECT_EQ(read_file(path("f")), "persisted");
}

}  // namespace
}  // namespace lunfs::testing
