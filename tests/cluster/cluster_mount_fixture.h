// The fixture of the cluster-mount tests: a 3-node (or larger) lunfs-cluster (real Corosync in network
// and mount namespaces) shares one LUN file, and nodes mount it with `mount.lunfs LUN MNT -o
// lockproto=corosync` as an admin types it (through `lunfs-cluster exec`). Every node mounts
// on the same path, inside its own mount namespace; a test reaches node N's view through
// /proc/<N's anchor>/root (`at(N, rel)`). The cluster is set up once per suite and torn down
// (`lunfs-cluster down`, which unmounts whatever is still mounted first) also when a test
// fails. Needs root, corosync and /dev/fuse; skipped otherwise.
//
// Each test file derives a fixture and names its cluster and how many nodes mount at setup:
//   class MyTest : public ClusterMountSuite {
//    protected:
//     static void SetUpTestSuite() { set_up_cluster("xx", 3); }
//   };
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace lunfs::testing {

inline const std::string kHarness = LUNFS_CLUSTER_HARNESS;
inline const std::string kBin = LUNFS_BIN_DIR;

struct Output {
  int status;
  std::string text;
};

// Every descriptor the tests open on a mount is O_CLOEXEC: the commands they start (popen)
// must not inherit it, or a daemon among them keeps that mount busy.
inline std::string read_all(const std::string& p) {
  const int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "<cannot open " + p + ": " + std::strerror(errno) + ">";
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) out.append(buf, size_t(n));
  close(fd);
  return out;
}

inline bool write_all(const std::string& p, const std::string& data) {
  int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  bool ok = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  return close(fd) == 0 && ok;
}

inline std::string random_bytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class ClusterMountSuite : public ::testing::Test {
 protected:
  // `stem` (two letters) and this process's id name the cluster, its namespaces and the
  // lock table's cluster name, so suites of several test programs can run at once.
  // `nodes` Corosync nodes (3 unless a test needs more), -j `nodes + 1` journals.
  static void set_up_cluster(const std::string& stem, int nodes_mounted, int nodes = 3) {
    stem_ = stem;
    prctl(PR_SET_CHILD_SUBREAPER, 1);  // the daemons that mount.lunfs leaves behind
    if (geteuid() != 0) {
      skip_ = "needs root (namespaces, FUSE, corosync)";
      return;
    }
    if (std::system("command -v corosync >/dev/null 2>&1") != 0 || access("/dev/fuse", R_OK | W_OK) != 0) {
      skip_ = "needs corosync and /dev/fuse";
      return;
    }
    reap_clusters_of_dead_runs();
    char tmpl[] = "/var/tmp/lunfs-cluster-mount-XXXXXX";
    if (!mkdtemp(tmpl)) {
      setup_error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    lun_ = dir_ + "/lun.img";
    mnt_ = dir_ + "/mnt";
    mkdir(mnt_.c_str(), 0755);
    Output r = sh("truncate -s 2G " + lun_ + " && " + kBin + "/mkfs.lunfs -q -t " + prefix() + ":vmstore -j " +
                  std::to_string(nodes + 1) + " " + lun_);
    if (r.status != 0) {
      setup_error_ = "mkfs.lunfs: " + r.text;
      return;
    }
    r = sh(kHarness + " up " + std::to_string(nodes));
    if (r.status != 0) {
      setup_error_ = "lunfs-cluster up " + std::to_string(nodes) + ": " + r.text;
      return;
    }
    for (int n = 1; n <= nodes; ++n) {
      std::ifstream f("/run/lunfs-cluster/" + prefix() + "/n" + std::to_string(n) + "/anchor.pid");
      f >> anchors_[n];
    }
    for (int n = 1; n <= nodes_mounted; ++n) {
      r = mount(n, "");
      if (r.status != 0) {
        setup_error_ = "mount on node " + std::to_string(n) + ": " + r.text;
        return;
      }
    }
  }
  // A run killed from outside (a timeout's SIGKILL) never tears its cluster down: its
  // namespaces, corosyncs and daemons stay. Clusters of this suite's stem whose test
  // process (the number in the prefix) is gone are taken down before a new one starts.
  static void reap_clusters_of_dead_runs() {
    Output names = sh("ip netns list | awk '{print $1}' | sed -n 's/^\\(" + stem_ + "[0-9][0-9]*\\)-hub$/\\1/p'");
    std::istringstream lines(names.text);
    for (std::string prefix; std::getline(lines, prefix);) {
      const std::string pid = prefix.substr(stem_.size());
      if (pid.empty() || access(("/proc/" + pid).c_str(), F_OK) == 0) continue;
      std::system(("LUNFS_CLUSTER_PREFIX=" + prefix + " " + kHarness + " down >/dev/null 2>&1").c_str());
    }
  }
  static void TearDownTestSuite() {
    if (!skip_.empty()) return;
    expect_no_lock_table_divergence();
    Output r = sh(kHarness + " down");
    if (r.status != 0) std::fprintf(stderr, "lunfs-cluster down: %s\n", r.text.c_str());
    while (waitpid(-1, nullptr, WNOHANG) > 0) {}
    if (!dir_.empty() && !getenv("LUNFS_KEEP_TEST_DIR")) sh("rm -rf " + dir_);
  }
  void SetUp() override {
    if (!skip_.empty()) GTEST_SKIP() << "cluster mount tests skipped: " << skip_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
  }

  static std::string prefix() { return stem_ + std::to_string(getpid()); }
  // Runs `cmd` with the cluster's prefix, stdout and stderr together.
  static Output sh(const std::string& cmd) {
    std::string full = "LUNFS_CLUSTER_PREFIX=" + prefix() + " " + cmd + " 2>&1";
    Output out{-1, ""};
    if (FILE* f = popen(full.c_str(), "r")) {
      char b[4096];
      size_t n;
      while ((n = fread(b, 1, sizeof b, f)) > 0) out.text.append(b, n);
      int st = pclose(f);
      out.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    }
    return out;
  }
  // Every daemon logs to node<N>.log in the suite's directory unless the test names a log.
  // `env`: VAR=VALUE words the daemon runs with.
  static Output mount(int node, const std::string& extra_options, const std::string& env = "") {
    const std::string log = extra_options.find("logfile=") == std::string::npos ? ",logfile=" + log_of(node) : "";
    return sh(kHarness + " exec " + std::to_string(node) + " " + (env.empty() ? "" : "env " + env + " ") + kBin +
              "/mount.lunfs " + lun_ + " " + mnt_ + " -o lockproto=corosync" + log + extra_options);
  }
  static std::string log_of(int node) { return dir_ + "/node" + std::to_string(node) + ".log"; }
  // The lock manager compares every member's replica of the lock table after each
  // membership change and logs any difference (dlm/lockspace.cpp, "Divergence"): in any
  // suite, on any node, that is a failure. The nodes unmount one by one first, each leave
  // being a membership change whose digests the others compare.
  static void expect_no_lock_table_divergence() {
    for (const auto& [node, anchor] : anchors_) {
      Output u = sh(kHarness + " exec " + std::to_string(node) + " umount " + mnt_);
      if (u.status != 0 && u.text.find("not mounted") == std::string::npos)
        ADD_FAILURE() << "node " << node << ": umount: " << u.text << who_uses_the_mount(node);
    }
    Output r = wait_for_daemons_to_finish();
    if (r.status != 0) ADD_FAILURE() << "after every node unmounted: " << r.text;
    for (const auto& [node, anchor] : anchors_) {
      std::ifstream f(log_of(node));
      for (std::string line; std::getline(f, line);)
        if (line.find("lock table differs") != std::string::npos) ADD_FAILURE() << "node " << node << ": " << line;
    }
  }
  // The same for a node whose corosync was just (re)started: retried while it joins. A
  // join that times out is tried once more, said on stderr: a node restarted soon after
  // its recovery sometimes cannot join (docs/dlm.md, "Known issue"), which is not what the
  // suites that restart nodes test.
  static Output mount_when_joined(int node, const std::string& extra_options) {
    Output m = mount(node, extra_options);
    bool retried_join = false;
    for (int i = 0; i < 60 && m.status != 0; ++i) {
      const bool joining = m.text.find("cannot connect to corosync") != std::string::npos;
      const bool join_timed_out = m.text.find("cannot join lock space") != std::string::npos && !retried_join;
      if (!joining && !join_timed_out) break;
      if (join_timed_out) {
        retried_join = true;
        std::fprintf(stderr, "node %d: the lock space join timed out after a restart (known issue); mounting again\n",
                     node);
      }
      usleep(500'000);
      m = mount(node, extra_options);
    }
    return m;
  }
  // Node `node` booted again: its old mount dropped (lazily: its daemon may be dead), every
  // process of it killed, its corosync started, and the LUN mounted on it.
  static Output restart_and_mount(int node, const std::string& extra_options) {
    const std::string n = std::to_string(node);
    sh(kHarness + " exec " + n + " umount -l " + mnt_);
    sh(kHarness + " kill " + n);
    Output start = sh(kHarness + " start " + n);
    if (start.status != 0) return start;
    return mount_when_joined(node, extra_options);
  }
  // Waits for every daemon to let go of the LUN (they hold a shared claim until they have
  // finished unmounting) and runs `fsck.lunfs -n`: the output, or why it could not run.
  static Output fsck_after_daemons_finish() {
    Output r = wait_for_daemons_to_finish();
    if (r.status != 0) return r;
    return sh(kBin + "/fsck.lunfs -n " + lun_);
  }
  // Waits up to a minute for the daemons to let go of the LUN. If one does not, the reason
  // is in the daemon: the failure shows every mount.lunfs still running, with its threads'
  // stacks (gdb) or, without gdb, their kernel wait channels.
  static Output wait_for_daemons_to_finish() {
    Output r = sh("timeout 60 flock -x " + lun_ + " true");
    if (r.status == 0) return r;
    std::string text = "the daemons did not let go of the LUN within 60 s: " + r.text;
    Output pids = sh("pgrep -x mount.lunfs");
    std::istringstream lines(pids.text);
    for (std::string pid; std::getline(lines, pid);) {
      const std::string node = node_of_process(std::stoi(pid));
      if (node.rfind("node ", 0) != 0) continue;  // another suite's, or a zombie
      text += "\nmount.lunfs pid " + pid + " (" + node + "), still running:\n";
      Output stacks = sh("true; if command -v gdb >/dev/null; then timeout 30 gdb -batch -p " + pid +
                         " -ex 'thread apply all bt 12' 2>/dev/null | grep -E '^(Thread|#)'; else grep . /proc/" +
                         pid + "/task/*/wchan; fi");
      text += stacks.text;
    }
    return {r.status, text};
  }
  // Why node `node`'s mount is busy: the mounts at and under the mount point in its
  // namespace, and every process with its root, working directory or a descriptor there.
  static std::string who_uses_the_mount(int node) {
    const std::string root = at(node, "");
    struct stat mnt {};
    if (stat(root.c_str(), &mnt) != 0) return "\ncannot stat " + root + ": " + std::strerror(errno);
    std::string out = "\nmounts: " +
                      sh("grep -F ' " + mnt_ + "' /proc/" + std::to_string(anchors_[node]) + "/mountinfo").text;
    if (DIR* d = opendir("/proc")) {
      while (dirent* e = readdir(d)) {
        const std::string pid = e->d_name;
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        std::vector<std::string> refs = {"/proc/" + pid + "/cwd", "/proc/" + pid + "/root"};
        if (DIR* fds = opendir(("/proc/" + pid + "/fd").c_str())) {
          while (dirent* f = readdir(fds))
            if (f->d_name[0] != '.') refs.push_back("/proc/" + pid + "/fd/" + f->d_name);
          closedir(fds);
        }
        for (const std::string& ref : refs) {
          struct stat sb {};
          if (stat(ref.c_str(), &sb) == 0 && sb.st_dev == mnt.st_dev) {
            out += "pid " + pid + " (" + read_all("/proc/" + pid + "/comm").substr(0, 15) + ") " + ref + "\n";
          }
        }
      }
      closedir(d);
    }
    return out;
  }
  // "node N" for a process in node N's mount namespace, else "not in any node".
  static std::string node_of_process(pid_t pid) {
    char ns[64] = {}, want[64] = {};
    if (readlink(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), ns, sizeof ns - 1) <= 0) return "gone";
    for (const auto& [node, anchor] : anchors_) {
      std::memset(want, 0, sizeof want);
      if (readlink(("/proc/" + std::to_string(anchor) + "/ns/mnt").c_str(), want, sizeof want - 1) > 0 &&
          std::strcmp(ns, want) == 0)
        return "node " + std::to_string(node);
    }
    return "not in any node";
  }
  // The mount daemon of node `node` (the mount.lunfs whose mount namespace is the node's),
  // or 0.
  static pid_t daemon_of(int node) {
    char want[64] = {}, ns[64] = {};
    if (readlink(("/proc/" + std::to_string(anchors_[node]) + "/ns/mnt").c_str(), want, sizeof want - 1) <= 0) return 0;
    pid_t daemon = 0;
    if (DIR* d = opendir("/proc")) {
      while (dirent* e = readdir(d)) {
        const std::string pid = e->d_name;
        if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
        std::memset(ns, 0, sizeof ns);
        if (read_all("/proc/" + pid + "/comm") == "mount.lunfs\n" &&
            readlink(("/proc/" + pid + "/ns/mnt").c_str(), ns, sizeof ns - 1) > 0 && std::strcmp(ns, want) == 0) {
          daemon = std::stoi(pid);
        }
      }
      closedir(d);
    }
    return daemon;
  }
  // Nodes 1..`nodes` unmount one by one, each cleanly, and fsck finds nothing.
  static void expect_clean_after_every_node_unmounts(int nodes) {
    for (int n = 1; n <= nodes; ++n) {
      Output r = sh(kHarness + " exec " + std::to_string(n) + " umount " + mnt_);
      EXPECT_EQ(r.status, 0) << "node " << n << ": " << r.text;
    }
    Output r = fsck_after_daemons_finish();
    EXPECT_EQ(r.status, 0) << r.text;
  }
  // Node `node`'s view of `rel` under the mount point.
  static std::string at(int node, const std::string& rel) {
    return "/proc/" + std::to_string(anchors_[node]) + "/root" + mnt_ + "/" + rel;
  }

  static inline std::string stem_, skip_, setup_error_, dir_, lun_, mnt_;
  static inline std::map<int, pid_t> anchors_;
};

}  // namespace lunfs::testing
