// Several FileSystem instances on one memory device, each with its own journal slot, all
// coordinated only by glocks through the simulated lock service (sim_lock_manager.h):
// the multi-node simulation and the invalidation tests mount the core this way. The
// device counts writes and flushes, so a test can say what an action cost on the LUN.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "fs/core/filesystem.h"
#include "fsck/checker.h"
#include "journal/journal.h"
#include "mkfs/formatter.h"
#include "tests/core/sim_lock_manager.h"

namespace lunfs::testing {

// Counts the writes and flushes that reach the shared LUN.
class CountingDevice final : public BlockDevice {
 public:
  explicit CountingDevice(std::unique_ptr<BlockDevice> inner) : inner_(std::move(inner)) {}
  uint64_t size_bytes() const override { return inner_->size_bytes(); }
  uint32_t io_alignment() const override { return inner_->io_alignment(); }
  Status read(uint64_t offset, std::span<std::byte> buf) override { return inner_->read(offset, buf); }
  Status write(uint64_t offset, std::span<const std::byte> buf) override {
    writes_ += 1;
    return inner_->write(offset, buf);
  }
  Status flush() override {
    flushes_ += 1;
    return inner_->flush();
  }
  std::string describe() const override { return "counting " + inner_->describe(); }
  uint64_t writes() const { return writes_; }
  uint64_t flushes() const { return flushes_; }

 private:
  std::unique_ptr<BlockDevice> inner_;
  std::atomic<uint64_t> writes_{0}, flushes_{0};
};

struct SimLayout {
  uint64_t device_bytes = uint64_t{160} << 20;
  uint32_t block_size = 4096;
  uint32_t journal_mib = 8;
  uint32_t rgrp_mib = 32;
};

class SimCluster {
 public:
  SimCluster(uint32_t nodes, uint64_t seed, SimLayout layout = {}) : locks_(seed) {
    dev_ = std::make_unique<CountingDevice>(make_memory_device(layout.device_bytes));
    MkfsOptions o;
    o.cluster_name = "sim";
    o.fs_name = "fs";
    o.journals = nodes;
    o.journal_mib = layout.journal_mib;
    o.rgrp_mib = layout.rgrp_mib;
    o.block_size = layout.block_size;
    auto sb = plan_filesystem(*dev_, o);
    if (!sb) {
      ADD_FAILURE() << sb.status().to_string();
      return;
    }
    if (auto st = write_filesystem(*dev_, *sb); !st) {
      ADD_FAILURE() << st.to_string();
      return;
    }
    for (uint32_t i = 0; i < nodes; ++i) {
      auto& n = nodes_.emplace_back();
      n.lm = &locks_.add_node();
      auto j = journal::Journal::open(*dev_, *sb, i, {.commit_interval = std::chrono::milliseconds(0)});
      if (!j) {
        ADD_FAILURE() << j.status().to_string();
        return;
      }
      n.journal = std::move(*j);
      MountOptions mo;
      mo.slot = i;
      mo.noatime = true;  // atime is not compared, and relatime writes would blur the cost tests
      auto fs = FileSystem::mount(*dev_, *n.journal, *n.lm, mo);
      if (!fs) {
        ADD_FAILURE() << "node " << i << ": " << fs.status().to_string();
        return;
      }
      n.fs = std::move(*fs);
    }
    ok_ = true;
  }

  ~SimCluster() {
    for (auto& n : nodes_) n.fs.reset();
  }

  bool ok() const { return ok_; }
  size_t size() const { return nodes_.size(); }
  FileSystem& fs(size_t i) { return *nodes_.at(i).fs; }
  journal::Journal& journal(size_t i) { return *nodes_.at(i).journal; }
  SimLockTable::Node& lm(size_t i) { return *nodes_.at(i).lm; }
  SimLockTable& locks() { return locks_; }
  CountingDevice& dev() { return *dev_; }
  uint64_t root() const { return nodes_.front().fs->root(); }

  // Every node's journal written home, then fsck over the device: the error findings.
  std::vector<std::string> fsck_errors() {
    std::vector<std::string> out;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (auto st = nodes_[i].journal->checkpoint(); !st) out.push_back("checkpoint of node " + std::to_string(i) + ": " + st.to_string());
    }
    auto report = check_filesystem(*dev_);
    if (!report) {
      out.push_back(report.status().to_string());
      return out;
    }
    for (const auto& f : report->findings) {
      if (f.kind == FsckFinding::Kind::kError) out.push_back(f.text);
    }
    return out;
  }

  // Unmounts every node (each syncs and gives its locks back) and runs fsck.
  void expect_clean_unmount() {
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].fs) continue;
      EXPECT_TRUE(nodes_[i].fs->unmount()) << "node " << i;
      nodes_[i].fs.reset();
    }
    auto report = check_filesystem(*dev_);
    ASSERT_TRUE(report) << report.status().to_string();
    for (const auto& f : report->findings) {
      if (f.kind == FsckFinding::Kind::kError) ADD_FAILURE() << "fsck: " << f.text;
    }
    for (const auto& v : locks_.violations()) ADD_FAILURE() << "lock service: " << v;
  }

 private:
  struct Node {
    SimLockTable::Node* lm = nullptr;
    std::unique_ptr<journal::Journal> journal;
    std::unique_ptr<FileSystem> fs;
  };
  SimLockTable locks_;
  std::unique_ptr<CountingDevice> dev_;
  std::vector<Node> nodes_;  // declared last: the file systems go before the journals and the device
  bool ok_ = false;
};

}  // namespace lunfs::testing
