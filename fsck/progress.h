// The progress bar of the lunfs tools' long work (fsck's passes over every resource group,
// the journal sweep of `lunfs tune -U`): one line on stderr, redrawn in place at most ten
// times a second and erased when the work ends. Drawn only when both stdout and stderr are
// terminals, so logs and pipes never see it, and never when the tool is given -q.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lunfs {

class ProgressBar {
 public:
  // `tool` prefixes the line; `enabled` is the tool's wish (false under -q).
  ProgressBar(std::string tool, bool enabled);
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  // `phase` has done `done` of `total` units; a new phase is drawn at once.
  void update(const std::string& phase, uint64_t done, uint64_t total);
  // Erases the bar (before other output, and at the end).
  void finish();
  bool active() const { return enabled_; }

  // Whether stdout and stderr both are terminals.
  static bool on_terminal();

 private:
  std::string tool_;
  bool enabled_;
  bool drawn_ = false;
  std::string phase_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace lunfs
