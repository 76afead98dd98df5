// Metadata benchmark: create, stat, readdir and unlink N empty files in one directory and
// in a tree (dirs of 1000 files), timing each phase. Run against a lunfs mount and a
// directory on the host's file system in the same run (run_bench.sh) to get ratios.
// usage: metadata_bench DIR N   -> prints "layout phase seconds ops_per_second" lines
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void report(const char* layout, const char* phase, double secs, long n) {
  std::printf("%s %s %.3f %.0f\n", layout, phase, secs, n / secs);
  std::fflush(stdout);
}

int run(const std::string& base, long n, bool tree) {
  const char* layout = tree ? "tree" : "flat";
  std::vector<std::string> dirs, files;
  if (mkdir(base.c_str(), 0755) != 0) return perror(base.c_str()), 1;
  long per_dir = tree ? 1000 : n;
  for (long d = 0; d * per_dir < n; ++d) {
    std::string dir = tree ? base + "/d" + std::to_string(d) : base;
    if (tree && mkdir(dir.c_str(), 0755) != 0) return perror(dir.c_str()), 1;
    dirs.push_back(dir);
    for (long i = d * per_dir; i < std::min(n, (d + 1) * per_dir); ++i) files.push_back(dir + "/file-" + std::to_string(i));
  }
  double t = now();
  for (const auto& f : files) {
    int fd = open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd < 0) return perror(f.c_str()), 1;
    close(fd);
  }
  report(layout, "create", now() - t, n);
  t = now();
  struct stat st;
  for (const auto& f : files) {
    if (stat(f.c_str(), &st) != 0) return perror(f.c_str()), 1;
  }
  report(layout, "stat", now() - t, n);
  t = now();
  long seen = 0;
  for (const auto& d : dirs) {
    DIR* dp = opendir(d.c_str());
    while (dirent* e = readdir(dp)) seen += e->d_name[0] != '.';
    closedir(dp);
  }
  if (seen < n) std::fprintf(stderr, "readdir saw %ld of %ld files\n", seen, n);
  report(layout, "readdir", now() - t, n);
  t = now();
  for (const auto& f : files) {
    if (unlink(f.c_str()) != 0) return perror(f.c_str()), 1;
  }
  report(layout, "unlink", now() - t, n);
  for (const auto& d : dirs) {
    if (d != base) rmdir(d.c_str());
  }
  rmdir(base.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: metadata_bench DIR N\n");
    return 1;
  }
  long n = std::atol(argv[2]);
  std::string dir = argv[1];
  if (run(dir + "/flat", n, false) != 0) return 1;
  return run(dir + "/tree", n, true);
}
