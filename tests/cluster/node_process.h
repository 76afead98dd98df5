// A lunfs-dlm-node running inside a harness node, driven through its stdin/stdout.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

namespace lunfs::dlm::testing {

class NodeProcess {
 public:
  // Runs `harness exec NODE program LOCKSPACE [EXTRA]`.
  NodeProcess(const std::string& harness, int node, const std::string& program,
              const std::string& lockspace, const std::string& extra = "") {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::string n = std::to_string(node);
      if (extra.empty())
        execl(harness.c_str(), harness.c_str(), "exec", n.c_str(), program.c_str(),
              lockspace.c_str(), nullptr);
      else
        execl(harness.c_str(), harness.c_str(), "exec", n.c_str(), program.c_str(),
              lockspace.c_str(), extra.c_str(), nullptr);
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    to_ = in[1];
    from_ = out[0];
  }
  ~NodeProcess() { stop(); }
  NodeProcess(const NodeProcess&) = delete;
  NodeProcess& operator=(const NodeProcess&) = delete;

  // Sends a command; returns the first answer line ("ok …", "err …", "ready …"),
  // collecting "event …" lines on the way; "" on timeout or exit.
  std::string command(const std::string& cmd, std::chrono::milliseconds timeout) {
    std::string line = cmd + "\n";
    if (write(to_, line.data(), line.size()) != ssize_t(line.size())) return "";
    return answer(timeout);
  }
  std::string answer(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      std::string l;
      if (!read_line(deadline, &l)) return "";
      if (l.rfind("event ", 0) == 0) {
        events.push_back(l);
        continue;
      }
      return l;
    }
  }
  // Reads until the event line `event` arrives (or has already arrived).
  bool wait_event(const std::string& event, std::chrono::milliseconds timeout) {
    for (auto& e : events)
      if (e == event) return true;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string l;
    while (read_line(deadline, &l)) {
      if (l.rfind("event ", 0) == 0) events.push_back(l);
      if (l == event) return true;
    }
    return false;
  }
  // Every line up to and including one that starts with `last`.
  std::vector<std::string> lines_until(const std::string& last, std::chrono::milliseconds timeout) {
    std::vector<std::string> out;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string l;
    while (read_line(deadline, &l)) {
      if (l.rfind("event ", 0) == 0) {
        events.push_back(l);
        continue;
      }
      out.push_back(l);
      if (l.rfind(last, 0) == 0 || l.rfind("err", 0) == 0) break;
    }
    return out;
  }
  void stop() {
    if (pid_ <= 0) return;
    if (to_ >= 0) close(to_), to_ = -1;  // EOF: the program leaves the lock space
    for (int i = 0; i < 50 && waitpid(pid_, nullptr, WNOHANG) == 0; ++i) usleep(100000);
    if (waitpid(pid_, nullptr, WNOHANG) == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    pid_ = -1;
    if (from_ >= 0) close(from_), from_ = -1;
  }

  std::vector<std::string> events;

 private:
  bool read_line(std::chrono::steady_clock::time_point deadline, std::string* line) {
    for (;;) {
      auto nl = buf_.find('\n');
      if (nl != std::string::npos) {
        *line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || from_ < 0) return false;
      pollfd p{from_, POLLIN, 0};
      if (poll(&p, 1, int(left.count())) <= 0) continue;
      char b[4096];
      ssize_t n = read(from_, b, sizeof b);
      if (n <= 0) return false;
      buf_.append(b, size_t(n));
    }
  }

  pid_t pid_ = -1;
  int to_ = -1, from_ = -1;
  std::string buf_;
};

}  // namespace lunfs::dlm::testing
