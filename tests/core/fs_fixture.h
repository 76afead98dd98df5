// A fresh lunfs on a memory device for core tests that need a non-default layout (block
// size, device size), the real journal instead of WriteThroughLog, or mount options; every
// test ends with fsck's checker finding no error.
#pragma once

#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fs/device/testing/fault_device.h"
#include "fs/core/filesystem.h"
#include "fsck/checker.h"
#include "journal/journal.h"
#include "mkfs/formatter.h"

namespace lunfs::testing {

struct FsLayout {
  uint64_t device_bytes = uint64_t{512} << 20;
  uint32_t block_size = 4096;
  uint32_t journal_mib = 8;
  uint32_t rgrp_mib = 32;
  bool journal = false;  // the slot's journal (timer off: commits are explicit) or WriteThroughLog
  uint32_t journal_max_transaction_blocks = 0;  // 0: the journal's own limit
  bool faults = false;   // a FaultInjectingDevice over the memory device (crash())
  // The device to format instead of a memory device of device_bytes (a LUN file, a wrapper).
  std::function<std::unique_ptr<BlockDevice>()> make_device = {};
};

class FsFixture {
 public:
  // Formats and mounts; on failure `ok()` is false and the test should stop.
  explicit FsFixture(FsLayout layout, MountOptions mo = {}) : layout_(layout) {
    base_ = layout.make_device ? layout.make_device() : make_memory_device(layout.device_bytes);
    if (!base_) {
      ADD_FAILURE() << "no device";
      return;
    }
    if (layout.faults) fault_ = std::make_unique<FaultInjectingDevice>(*base_);
    dev_ = fault_ ? static_cast<BlockDevice*>(fault_.get()) : base_.get();
    MkfsOptions o;
    o.cluster_name = "test";
    o.fs_name = "corefs";
    o.journals = 2;
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
    sb_ = *sb;
    mount(mo);
  }

  bool ok() const { return fs_ != nullptr; }
  FileSystem& fs() { return *fs_; }
  BlockDevice& dev() { return *dev_; }
  FaultInjectingDevice& faults() { return *fault_; }
  journal::Journal* journal() { return journal_.get(); }
  uint64_t root() const { return fs_->root(); }

  void mount(MountOptions mo = {}) {
    fs_.reset();
    journal_.reset();
    if (layout_.journal) {
      auto j = journal::Journal::open(*dev_, sb_, 0, {.commit_interval = std::chrono::milliseconds(0),
                                               .max_transaction_blocks = layout_.journal_max_transaction_blocks});
      if (!j) {
        ADD_FAILURE() << j.status().to_string();
        return;
      }
      journal_ = std::move(*j);
      log_ = journal_.get();
    } else {
      write_through_ = std::make_unique<WriteThroughLog>(*dev_);
      log_ = write_through_.get();
    }
    auto fs = FileSystem::mount(*dev_, *log_, lm_, mo);
    if (!fs) {
      ADD_FAILURE() << fs.status().to_string();
      return;
    }
    fs_ = std::move(*fs);
  }

  // Power loss after the disk wrote every write it was given (the harshest case for data
  // written outside the journal): the mounted instance goes away without writing anything
  // more (its unmount fails on injected write errors); then mounts again, which replays
  // the journal.
  void crash_and_remount(MountOptions mo = {}) {
    ASSERT_TRUE(fault_) << "crash_and_remount needs FsLayout::faults";
    ASSERT_TRUE(fault_->crash(fault_->pending_writes()));
    fault_->fail_range(IoKind::kWrite, 0, dev_->size_bytes(), EIO);
    fs_.reset();
    journal_.reset();
    fault_->clear_faults();
    mount(mo);
  }

  // The mounted instance goes away as the machine would: whatever it still writes is up to
  // the device the test gave (a power cut makes it nothing). mount() comes back.
  void drop() {
    fs_.reset();
    journal_.reset();
  }

  // Unmounts and runs fsck; every error finding fails the test.
  void expect_clean() {
    ASSERT_TRUE(fs_->unmount());
    fs_.reset();
    auto report = check_filesystem(*dev_);
    ASSERT_TRUE(report) << report.status().to_string();
    for (const auto& f : report->findings) {
      if (f.kind == FsckFinding::Kind::kError) ADD_FAILURE() << "fsck: " << f.text;
    }
  }

  uint64_t mkfile(uint64_t dir, const std::string& name) {
    auto a = fs_->mknod(dir, name, S_IFREG | 0644, 0, {});
    EXPECT_TRUE(a) << name << ": " << a.status().to_string();
    return a ? a->ino : 0;
  }

 private:
  FsLayout layout_;
  ondisk::Superblock sb_;
  std::unique_ptr<BlockDevice> base_;
  std::unique_ptr<FaultInjectingDevice> fault_;
  BlockDevice* dev_ = nullptr;
  std::unique_ptr<journal::Journal> journal_;
  std::unique_ptr<WriteThroughLog> write_through_;
  MetadataLog* log_ = nullptr;
  NoLockManager lm_;
  std::unique_ptr<FileSystem> fs_;
};

}  // namespace lunfs::testing
