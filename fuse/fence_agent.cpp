// fence_node; see fence_agent.h.
#include "fuse/fence_agent.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace lunfs {

Status fence_node(const FenceAgent& agent, uint32_t node) {
  const std::string input =
      "action=off\nplug=" + std::to_string(node) + "\nnodename=" + std::to_string(node) + "\n";
  int in[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return error(errno, "fence agent: pipe");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]);
    close(in[1]);
    return error(errno, "fence agent: pipe");
  }
  const pid_t pid = fork();
  if (pid < 0) return error(errno, "fence agent: fork");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(err[1], 2);
    if (int null = open("/dev/null", O_WRONLY); null >= 0) dup2(null, 1);
    execl(agent.path.c_str(), agent.path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(in[0]);
  close(err[1]);
  // The input is a few hundred bytes: it fits the pipe, so this never blocks.
  (void)!write(in[1], input.data(), input.size());
  close(in[1]);
  std::string said;
  const auto deadline = std::chrono::steady_clock::now() + agent.timeout;
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{err[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[512];
    const ssize_t n = read(err[0], buf, sizeof buf);
    if (n <= 0) break;  // the agent closed stderr: it has ended (or is about to)
    if (said.size() < 4096) said.append(buf, static_cast<size_t>(n));
  }
  close(err[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  while (!said.empty() && (said.back() == '\n' || said.back() == ' ')) said.pop_back();
  const std::string what = agent.path + " (action=off, plug=" + std::to_string(node) + ")";
  if (timed_out) return error(ETIMEDOUT, what + " did not finish within " + std::to_string(agent.timeout.count()) + " s");
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return Status::ok();
  const std::string how = WIFEXITED(status) ? "exited " + std::to_string(WEXITSTATUS(status))
                                            : "was killed by signal " + std::to_string(WTERMSIG(status));
  return error(EIO, what + " " + how + (said.empty() ? "" : ": " + said));
}

}  // namespace lunfs
