// The progress bar (progress.h).
#include "fsck/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace lunfs {

ProgressBar::ProgressBar(std::string tool, bool enabled)
    : tool_(std::move(tool)), enabled_(enabled && on_terminal()) {}

bool ProgressBar::on_terminal() { return isatty(STDOUT_FILENO) == 1 && isatty(STDERR_FILENO) == 1; }

void ProgressBar::update(const std::string& phase, uint64_t done, uint64_t total) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const bool new_phase = phase != phase_;
  if (!new_phase && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  phase_ = phase;
  last_ = now;
  constexpr int kWidth = 30;
  const uint64_t permille = total ? std::min<uint64_t>(1000, done * 1000 / total) : 1000;
  std::string bar(kWidth, '.');
  for (int i = 0; i < static_cast<int>(permille * kWidth / 1000); ++i) bar[i] = '#';
  // \r and clear to the end of the line: a shorter phase name leaves nothing behind.
  std::fprintf(stderr, "\r\033[K%s: %s [%s] %3u%%", tool_.c_str(), phase.c_str(), bar.c_str(),
               static_cast<unsigned>(permille / 10));
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
  phase_.clear();
}

}  // namespace lunfs
