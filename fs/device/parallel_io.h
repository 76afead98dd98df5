// Runs independent block I/Os from several threads, so a tool that touches one block per
// resource group (mkfs, fsck) keeps the LUN's queue full instead of waiting ~0.4 ms per
// I/O: on a 16 TiB LUN that is 16,384 I/Os. BlockDevice implementations are thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

#include "fs/result.h"

namespace lunfs {

inline constexpr unsigned kParallelIoThreads = 16;

// Calls fn(i) for i in [0, count) from up to `threads` threads; returns the first error.
template <typename Fn>
Status parallel_for(size_t count, Fn fn, unsigned threads = kParallelIoThreads) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first_error;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < count;) {
      Status st = fn(i);
      if (!st) {
        std::lock_guard lock(mu);
        if (first_error) first_error = st;
        next = count;  // stop handing out work
      }
    }
  };
  unsigned n = static_cast<unsigned>(std::min<size_t>(threads, count));
  if (n <= 1) {
    worker();
    return first_error;
  }
  std::vector<std::thread> pool;
  pool.reserve(n);
  for (unsigned t = 0; t < n; ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  return first_error;
}

}  // namespace lunfs
