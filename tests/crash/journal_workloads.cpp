// The journal-level workloads and their recovery/verification.
#include "tests/crash/journal_workloads.h"

#include <memory>
#include <random>

#include "fs/device/aligned_buffer.h"
#include "journal/check.h"
#include "journal/journal.h"
#include "journal/log_scan.h"
#include "journal/replay.h"
#include "journal/slot_tail.h"
#include "tests/crash/journal_model.h"

namespace lunfs::crash {

namespace {

using journal::Journal;
using journal::JournalOptions;

struct Env {
  RecordingDevice& dev;
  const ondisk::Superblock& sb;
  JournalModel& model;
  std::unique_ptr<Journal> j;
  uint64_t pool_base() const { return sb.geometry.rgrp(0).first_data + 512; }

  Status open(JournalOptions o) {
    o.commit_interval = std::chrono::milliseconds(0);  // deterministic: commits are explicit
    j.reset();
    LUNFS_ASSIGN(j, Journal::open(dev, sb, 0, o));
    return Status::ok();
  }
  Status track(uint64_t count) {
    LUNFS_TRY(model.remember_initial(dev, model.marker()));
    for (uint64_t i = 0; i < count; ++i) LUNFS_TRY(model.remember_initial(dev, pool_base() + i));
    return Status::ok();
  }
  Status submit(TransactionRecord txn) {
    LUNFS_TRY(j->submit(std::move(txn)));
    return Status::ok();
  }
  // commit() returned: every transaction submitted so far is acknowledged.
  Status commit() {
    LUNFS_TRY(j->commit());
    dev.mark(model.last());
    return Status::ok();
  }
  Status checkpoint() {
    LUNFS_TRY(j->checkpoint());
    dev.mark(model.last());
    return Status::ok();
  }
};

using Body = std::function<Status(Env&)>;

Scenario make(std::string name, uint64_t pool, JournalOptions options, Body body) {
  auto model = std::make_shared<std::unique_ptr<JournalModel>>();
  auto verified = std::make_shared<uint64_t>(0);
  Scenario s;
  s.name = std::move(name);
  s.run = [=](RecordingDevice& dev, const ondisk::Superblock& sb) -> Status {
    *model = std::make_unique<JournalModel>(sb);
    Env env{dev, sb, **model, nullptr};
    LUNFS_TRY(env.track(pool));
    LUNFS_TRY(env.open(options));
    return body(env);
  };
  s.recover = [](BlockDevice& image, const ondisk::Superblock& sb) -> Status {
    LUNFS_ASSIGN(journal::ReplayReport report, journal::replay(image, sb, 0));
    if (report.end == journal::LogEnd::kDamaged) return error(EIO, report.to_string());
    return Status::ok();
  };
  s.verify = [=](BlockDevice& image, const ondisk::Superblock& sb, uint64_t acked) -> Result<uint64_t> {
    LUNFS_ASSIGN(uint64_t state, (*model)->verify(image, acked));
    // The structures around the journal still decode, and the journal is clean.
    AlignedBuffer b(sb.geometry.block_size);
    LUNFS_TRY(image.read(sb.geometry.sb_block * sb.geometry.block_size, b.span()));
    if (auto d = ondisk::decode_superblock(b.span(), sb.geometry.sb_block); !d) return d.status();
    for (uint32_t slot = 0; slot < sb.geometry.journal_count; ++slot) {
      LUNFS_TRY(journal::read_slot_header(image, sb, slot));
    }
    // The journal is clean: nothing left to replay. Every 16th point also runs fsck's
    // journal check, whose sweep of the whole journal costs more than the rest together.
    LUNFS_ASSIGN(ondisk::SlotHeader header, journal::read_slot_header(image, sb, 0));
    LUNFS_ASSIGN(journal::ScanResult scan,
                 journal::scan_log(image, journal::JournalArea::of(sb, 0), header.tail_block, header.tail_sequence));
    if (!scan.txns.empty() || scan.end != journal::LogEnd::kClean) {
      return error(EIO, "journal not clean after replay: " + scan.end_reason);
    }
    if ((*verified)++ % 16 == 0) {
      journal::JournalCheck check = journal::check_journal(image, sb, 0);
      if (!check.findings.empty()) return error(EIO, "after replay, fsck says: " + check.findings[0].text);
    }
    return state;
  };
  return s;
}

}  // namespace

Scenario small_transactions_scenario() {
  return make("small transactions", 48, {}, [](Env& e) -> Status {
    std::mt19937_64 rng(11);
    for (int t = 1; t <= 300; ++t) {
      TransactionRecord txn = e.model.begin();
      for (int k = 0, n = 1 + rng() % 3; k < n; ++k) e.model.write_meta(txn, e.pool_base() + rng() % 48);
      LUNFS_TRY(e.submit(std::move(txn)));
      if (t % 3 == 0) LUNFS_TRY(e.commit());
      // A restart without checkpoint: open replays what the log holds.
      if (t == 150) LUNFS_TRY(e.open({}));
    }
    return Status::ok();
  });
}

Scenario overwrite_scenario() {
  return make("overwrites", 8, {}, [](Env& e) -> Status {
    for (int t = 1; t <= 200; ++t) {
      TransactionRecord txn = e.model.begin();
      for (uint64_t b = 0; b < 8; ++b) e.model.write_meta(txn, e.pool_base() + b);
      LUNFS_TRY(e.submit(std::move(txn)));
      LUNFS_TRY(e.commit());
      if (t % 60 == 0) LUNFS_TRY(e.checkpoint());
    }
    return Status::ok();
  });
}

Scenario revoke_reuse_scenario() {
  return make("revoke and reuse", 24, {}, [](Env& e) -> Status {
    enum State { kFree, kMeta, kData, kFreedUncommitted };
    std::vector<State> state(24, kFree);
    std::mt19937_64 rng(23);
    for (int t = 1; t <= 200; ++t) {
      TransactionRecord txn = e.model.begin();
      for (int k = 0; k < 3; ++k) {
        uint64_t i = rng() % 24;
        uint64_t b = e.pool_base() + i;
        switch (state[i]) {
          case kFree:
            if (rng() % 2) {
              e.model.write_meta(txn, b);
              state[i] = kMeta;
            } else {
              LUNFS_TRY(e.model.write_data(e.dev, b));  // ordered data, before submit
              state[i] = kData;
            }
            break;
          case kMeta:
            if (rng() % 3) {
              e.model.write_meta(txn, b);
            } else {
              e.model.free_block(txn, b);
              state[i] = kFreedUncommitted;
            }
            break;
          case kData:
            e.model.free_block(txn, b);
            state[i] = kFreedUncommitted;
            break;
          case kFreedUncommitted:  // not reusable before the freeing transaction commits
            break;
        }
      }
      LUNFS_TRY(e.submit(std::move(txn)));
      if (t % 2 == 0) {
        LUNFS_TRY(e.commit());
        for (State& s : state) {
          if (s == kFreedUncommitted) s = kFree;
        }
      }
    }
    return Status::ok();
  });
}

Scenario wraparound_scenario() {
  return make("wrap-around", 300, {}, [](Env& e) -> Status {
    std::mt19937_64 rng(37);
    for (int t = 1; t <= 200; ++t) {
      TransactionRecord txn = e.model.begin();
      for (int k = 0; k < 20; ++k) e.model.write_meta(txn, e.pool_base() + rng() % 300);
      LUNFS_TRY(e.submit(std::move(txn)));
      if (t % 2 == 0) LUNFS_TRY(e.commit());
      if (t % 40 == 0) LUNFS_TRY(e.checkpoint());
    }
    return Status::ok();
  });
}

Scenario full_journal_scenario() {
  JournalOptions o;
  o.max_transaction_blocks = 2000;  // of 2048: nearly every commit must checkpoint first
  return make("full journal", 500, o, [](Env& e) -> Status {
    std::mt19937_64 rng(41);
    for (int t = 1; t <= 24; ++t) {
      TransactionRecord txn = e.model.begin();
      for (int k = 0; k < 400; ++k) e.model.write_meta(txn, e.pool_base() + rng() % 500);
      LUNFS_TRY(e.submit(std::move(txn)));
      if (t % 2 == 0) LUNFS_TRY(e.commit());
    }
    return Status::ok();
  });
}

}  // namespace lunfs::crash
