// The random file-operation engine: generation, the model, the run and the verifier.
#include "tests/crash/file_ops_workload.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>

#include "fs/device/aligned_buffer.h"
#include "tests/crash/fs_workload_support.h"
#include "tests/crash/held_write_device.h"

namespace lunfs::crash {

namespace {

std::string file_name(uint32_t id) { return "file" + std::to_string(id); }

// The chunk that op `version` writes at `offset` of file `file`.
std::string chunk_text(uint32_t file, uint64_t version, uint64_t offset) {
  std::string out;
  auto hex = [&](uint64_t v, int digits) {
    for (int d = digits - 1; d >= 0; --d) out.push_back("0123456789abcdef"[(v >> (4 * d)) & 15]);
  };
  hex(file, 2);
  out.push_back(':');
  hex(version, 4);
  out.push_back(':');
  hex(offset / kChunk, 8);
  return out;
}

struct ChunkId {
  uint32_t file;
  uint64_t version, offset;
};

std::optional<ChunkId> parse_chunk(std::string_view c) {
  if (c.size() != kChunk || c[2] != ':' || c[7] != ':') return std::nullopt;
  auto hex = [&](size_t from, size_t n, uint64_t* out) {
    *out = 0;
    for (size_t i = from; i < from + n; ++i) {
      const char ch = c[i];
      const int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
      if (v < 0) return false;
      *out = *out * 16 + static_cast<uint64_t>(v);
    }
    return true;
  };
  uint64_t file = 0, version = 0, index = 0;
  if (!hex(0, 2, &file) || !hex(3, 4, &version) || !hex(8, 8, &index)) return std::nullopt;
  return ChunkId{static_cast<uint32_t>(file), version, index * kChunk};
}

bool all_zero(std::string_view c) {
  return std::all_of(c.begin(), c.end(), [](char ch) { return ch == 0; });
}

// What a chunk that must not be where it is looks like, in words.
std::string describe_chunk(std::string_view c, const std::string& disk_fill) {
  if (auto id = parse_chunk(c)) {
    return "data of " + file_name(id->file) + " at offset " + std::to_string(id->offset) + " written by op " +
           std::to_string(id->version);
  }
  if (!disk_fill.empty() && disk_fill.find(c.substr(0, 4)) != std::string::npos) {
    return "the stale disk contents (fill marker \"" + std::string(c) + "\")";
  }
  return "unrecognised bytes";
}

// ---- the model ----------------------------------------------------------------------

struct FileState {
  bool exists = false;
  std::string data;            // its size is the file's size
  std::vector<bool> may_data;  // per block: false = certainly a hole (never written, punched, unwritten)

  bool block_may_hold_data(uint64_t b) const { return b < may_data.size() && may_data[b]; }
  void set_blocks(uint64_t first, uint64_t end, bool v) {
    if (end > may_data.size()) may_data.resize(end, false);
    for (uint64_t b = first; b < end; ++b) may_data[b] = v;
  }
  std::string_view chunk_at(uint64_t offset) const {
    static const std::string zeros(kChunk, '\0');
    return offset + kChunk <= data.size() ? std::string_view(data).substr(offset, kChunk) : std::string_view(zeros);
  }
};

using State = std::vector<std::shared_ptr<const FileState>>;  // by file id

void apply(FileState& f, const FileOp& op, uint64_t version, uint64_t bs) {
  const uint64_t o = op.offset, end = op.offset + op.length;
  switch (op.kind) {
    case FileOp::Kind::kCreate:
      f = FileState{};
      f.exists = true;
      break;
    case FileOp::Kind::kWrite:
      if (f.data.size() < end) f.data.resize(end, '\0');
      for (uint64_t c = o; c < end; c += kChunk) f.data.replace(c, kChunk, chunk_text(op.file, version, c));
      f.set_blocks(o / bs, (end - 1) / bs + 1, true);
      break;
    case FileOp::Kind::kFallocate:
      if (!op.keep_size && end > f.data.size()) f.data.resize(end, '\0');
      break;
    case FileOp::Kind::kPunchHole:
    case FileOp::Kind::kZeroRange: {
      // Punch stops at the end of the file; whole blocks inside the range become holes
      // (zero range: unwritten extents), partial edge blocks are zeroed in place.
      const uint64_t zend = op.kind == FileOp::Kind::kPunchHole ? std::min<uint64_t>(end, f.data.size()) : end;
      if (o < f.data.size()) std::fill(f.data.begin() + o, f.data.begin() + std::min<uint64_t>(zend, f.data.size()), '\0');
      if (op.kind == FileOp::Kind::kZeroRange && !op.keep_size && end > f.data.size()) f.data.resize(end, '\0');
      const uint64_t first_full = (o + bs - 1) / bs, end_full = zend / bs;
      if (end_full > first_full) f.set_blocks(first_full, end_full, false);
      break;
    }
    case FileOp::Kind::kTruncate:
      f.data.resize(op.offset, '\0');
      if (f.may_data.size() > (op.offset + bs - 1) / bs) f.may_data.resize((op.offset + bs - 1) / bs);
      break;
    case FileOp::Kind::kUnlink:
      f = FileState{};
      break;
  }
}

// states[k]: the files after ops 1..k.
std::vector<State> model_states(const std::vector<FileOp>& ops, uint64_t bs) {
  uint32_t files = 0;
  for (const FileOp& op : ops) files = std::max(files, op.file + 1);
  std::vector<State> states(1, State(files, std::make_shared<FileState>()));
  for (size_t k = 1; k <= ops.size(); ++k) {
    State next = states.back();
    const FileOp& op = ops[k - 1];
    auto changed = std::make_shared<FileState>(*next[op.file]);
    apply(*changed, op, k, bs);
    next[op.file] = std::move(changed);
    states.push_back(std::move(next));
  }
  return states;
}

// ---- generation -----------------------------------------------------------------------

class Generator {
 public:
  Generator(const FileOpsMix& mix, uint64_t seed) : mix_(mix), rng_(seed) {}

  std::vector<FileOp> generate(uint64_t count) {
    std::vector<FileOp> ops;
    while (ops.size() < count) {
      FileOp op;
      if (live_.size() < mix_.live_files) {
        op.kind = FileOp::Kind::kCreate;
        op.file = next_id_++;
        live_.push_back(op.file);
        size_[op.file] = 0;
      } else {
        op.file = live_[rng_() % live_.size()];
        const uint64_t size_before = size_[op.file];
        pick(op);
        op.begun_early = mix_.early_percent != 0 && may_begin_early(op, size_before, ops) &&
                         rng_() % 100 < mix_.early_percent;
        op.through_async = op.kind == FileOp::Kind::kWrite && mix_.async_writes;
      }
      if (rng_() % 100 < mix_.sync_percent || ops.size() + 1 == count) choose_sync(op);
      ops.push_back(op);
    }
    return ops;
  }

 private:
  static constexpr uint64_t kBlock = 4096;  // the crash checker formats 4 KiB blocks: aligned ops hit whole blocks

  uint64_t offset() {
    return rng_() % 2 ? rng_() % (mix_.max_size / kBlock) * kBlock : rng_() % (mix_.max_size / kChunk) * kChunk;
  }
  uint64_t length(uint64_t at) {
    uint64_t len = rng_() % 2 ? (1 + rng_() % 16) * kBlock : (1 + rng_() % 2048) * kChunk;
    return std::max(kChunk, std::min(len, mix_.max_size - at));
  }

  void pick(FileOp& op) {
    const uint32_t weights[] = {mix_.write, mix_.fallocate, mix_.punch, mix_.zero_range, mix_.truncate,
                                next_id_ < 250 ? mix_.churn : 0};
    uint32_t total = 0;
    for (uint32_t w : weights) total += w;
    uint32_t r = static_cast<uint32_t>(rng_() % total), which = 0;
    while (r >= weights[which]) r -= weights[which++];
    uint64_t& size = size_[op.file];
    op.offset = offset();
    if (op.offset >= mix_.max_size) op.offset = mix_.max_size - kChunk;
    op.length = length(op.offset);
    const uint64_t end = op.offset + op.length;
    switch (which) {
      case 0:
        op.kind = FileOp::Kind::kWrite;
        size = std::max(size, end);
        break;
      case 1:
        op.kind = FileOp::Kind::kFallocate;
        op.keep_size = rng_() % 3 == 0;
        if (!op.keep_size) size = std::max(size, end);
        break;
      case 2:
        op.kind = FileOp::Kind::kPunchHole;
        op.keep_size = true;
        // Mostly inside the file, where a punch has an effect.
        if (size > kChunk && rng_() % 4) {
          op.offset = rng_() % (size / kChunk) * kChunk;
          op.length = length(op.offset);
        }
        break;
      case 3:
        op.kind = FileOp::Kind::kZeroRange;
        op.keep_size = rng_() % 3 == 0;
        if (!op.keep_size) size = std::max(size, end);
        break;
      case 4:
        op.kind = FileOp::Kind::kTruncate;
        op.offset = rng_() % 8 == 0 ? 0 : offset();
        op.length = 0;
        size = op.offset;
        break;
      default:
        op.kind = FileOp::Kind::kUnlink;
        op.offset = op.length = 0;
        live_.erase(std::find(live_.begin(), live_.end(), op.file));
        break;
    }
  }

  // The early write's data transfer must run outside the metadata mutex, which the op
  // ahead of it needs: a block-aligned write to a file past inline size (no inline data to
  // move under the mutex). It holds its file's glock shared meanwhile, so the op ahead may
  // only be another write if it is on the same file (truncate, fallocate and punch take
  // the glock exclusive).
  static bool may_begin_early(const FileOp& op, uint64_t size_before, const std::vector<FileOp>& ops) {
    if (op.kind != FileOp::Kind::kWrite || op.offset % kBlock || op.length % kBlock || size_before < kBlock) return false;
    if (ops.empty() || ops.back().begun_early) return false;
    return ops.back().file != op.file || ops.back().kind == FileOp::Kind::kWrite;
  }

  void choose_sync(FileOp& op) {
    if (op.kind == FileOp::Kind::kCreate || op.kind == FileOp::Kind::kUnlink || rng_() % 8 == 0) {
      op.sync = FileOp::Sync::kDirectoryFsync;
    } else {
      op.sync = rng_() % 2 ? FileOp::Sync::kFsync : FileOp::Sync::kFdatasync;
    }
  }

  const FileOpsMix& mix_;
  std::mt19937_64 rng_;
  std::vector<uint32_t> live_;
  std::map<uint32_t, uint64_t> size_;
  uint32_t next_id_ = 0;
};

// ---- run and verify -------------------------------------------------------------------

Status run_op(FileSystem& fs, std::map<uint32_t, uint64_t>& inos, const FileOp& op, uint64_t version) {
  const uint64_t root = fs.root();
  switch (op.kind) {
    case FileOp::Kind::kCreate: {
      LUNFS_ASSIGN(Attr a, fs.mknod(root, file_name(op.file), S_IFREG | 0644, 0, Cred{}));
      fs.hold(a.ino);  // the frontend's reference (an open file) until the unlink
      inos[op.file] = a.ino;
      break;
    }
    case FileOp::Kind::kWrite: {
      std::string payload;
      for (uint64_t c = op.offset; c < op.offset + op.length; c += kChunk) payload += chunk_text(op.file, version, c);
      LUNFS_TRY((op.through_async ? write_all_async : write_all)(fs, inos.at(op.file), op.offset, payload));
      break;
    }
    case FileOp::Kind::kFallocate:
      LUNFS_TRY(fs.fallocate(inos.at(op.file), op.keep_size ? kFallocKeepSize : 0, op.offset, op.length));
      break;
    case FileOp::Kind::kPunchHole:
      LUNFS_TRY(fs.fallocate(inos.at(op.file), kFallocPunchHole | kFallocKeepSize, op.offset, op.length));
      break;
    case FileOp::Kind::kZeroRange:
      LUNFS_TRY(fs.fallocate(inos.at(op.file), kFallocZeroRange | (op.keep_size ? kFallocKeepSize : 0), op.offset,
                             op.length));
      break;
    case FileOp::Kind::kTruncate: {
      SetAttr change;
      change.size = op.offset;
      LUNFS_TRY(fs.setattr(inos.at(op.file), change));
      break;
    }
    case FileOp::Kind::kUnlink:
      LUNFS_TRY(fs.unlink(root, file_name(op.file)));
      LUNFS_TRY(fs.forget(inos.at(op.file), 1));
      inos.erase(op.file);
      break;
  }
  switch (op.sync) {
    case FileOp::Sync::kNone: return Status::ok();
    case FileOp::Sync::kFsync: return fs.fsync(inos.at(op.file), false);
    case FileOp::Sync::kFdatasync: return fs.fsync(inos.at(op.file), true);
    case FileOp::Sync::kDirectoryFsync: return fs.fsync(root, false);
  }
  return Status::ok();
}

struct Interval {
  uint64_t begin, end;
};

// The data regions SEEK_DATA/SEEK_HOLE report.
Result<std::vector<Interval>> data_regions(FileSystem& fs, uint64_t ino, uint64_t size) {
  constexpr int kSeekData = 3, kSeekHole = 4;
  std::vector<Interval> out;
  uint64_t pos = 0;
  while (pos < size) {
    auto data = fs.lseek(ino, pos, kSeekData);
    if (!data && data.err() == ENXIO) break;
    LUNFS_ASSIGN(uint64_t d, std::move(data));
    LUNFS_ASSIGN(uint64_t h, fs.lseek(ino, d, kSeekHole));
    if (d < pos || h <= d || h > size) {
      return error(EIO, "lseek from " + std::to_string(pos) + " gave data at " + std::to_string(d) + ", hole at " +
                            std::to_string(h) + " (size " + std::to_string(size) + ")");
    }
    out.push_back({d, h});
    pos = h;
  }
  return out;
}

class Verifier {
 public:
  Verifier(const std::vector<FileOp>& ops, const std::vector<State>& states, const std::string& disk_fill, uint64_t bs)
      : ops_(ops), states_(states), disk_fill_(disk_fill), bs_(bs) {}

  // The disk must be in a state between op `acked` and the next sync.
  Result<uint64_t> check(FileSystem& fs, uint64_t acked) {
    uint64_t last = acked;
    while (last < ops_.size() && (last == acked || ops_[last - 1].sync == FileOp::Sync::kNone)) ++last;
    at_ = " (ops 1.." + std::to_string(acked) + " acknowledged, " + std::to_string(last - acked) + " in flight)";
    uint64_t state = 0;
    for (uint32_t f = 0; f < states_[0].size(); ++f) {
      std::vector<const FileState*> candidates;
      bool may_be_absent = false;
      for (uint64_t j = acked; j <= last; ++j) {
        if (states_[j][f]->exists) {
          candidates.push_back(states_[j][f].get());
        } else {
          may_be_absent = true;
        }
      }
      LUNFS_ASSIGN(uint64_t file_state, check_file(fs, f, candidates, may_be_absent));
      state = digest(std::to_string(file_state), state);
    }
    return state;
  }

 private:
  Result<uint64_t> check_file(FileSystem& fs, uint32_t f, const std::vector<const FileState*>& candidates,
                              bool may_be_absent) {
    const std::string name = file_name(f);
    auto attr = fs.lookup(fs.root(), name);
    if (!attr && attr.err() != ENOENT) return error(EIO, name + ": lookup: " + attr.status().to_string() + at_);
    if (!attr) {
      if (!may_be_absent) return error(EIO, name + " is missing, its create was acknowledged" + at_);
      return uint64_t{0};
    }
    struct Forget {
      FileSystem& fs;
      uint64_t ino;
      ~Forget() { (void)fs.forget(ino, 1); }
    } forget{fs, attr->ino};
    if (candidates.empty()) return error(EIO, name + " exists, its unlink was acknowledged" + at_);
    const uint64_t size = attr->size;
    std::vector<const FileState*> sized;
    for (const FileState* c : candidates) {
      if (c->data.size() == size) sized.push_back(c);
    }
    if (sized.empty()) {
      return error(EIO, name + " has size " + std::to_string(size) + ", the acknowledged size is " +
                            std::to_string(candidates.front()->data.size()) + at_);
    }
    LUNFS_ASSIGN(std::string data, read_file(fs, attr->ino, size));
    LUNFS_ASSIGN(auto regions, data_regions(fs, attr->ino, size));
    size_t region = 0;  // the first data region that does not end before the chunk
    auto in_data = [&](uint64_t offset) {
      while (region < regions.size() && regions[region].end <= offset) ++region;
      return region < regions.size() && regions[region].begin <= offset;
    };
    for (uint64_t o = 0; o + kChunk <= size; o += kChunk) {
      const std::string_view got = std::string_view(data).substr(o, kChunk);
      const bool zero = all_zero(got);
      auto where = [&] { return name + " offset " + std::to_string(o); };
      if (!zero) {
        auto id = parse_chunk(got);
        if (!id || id->file != f || id->offset != o) {
          return error(EIO, where() + " exposes " + describe_chunk(got, disk_fill_) + at_);
        }
        if (!in_data(o)) return error(EIO, where() + " holds data but SEEK_HOLE reports a hole there" + at_);
      }
      if (std::none_of(candidates.begin(), candidates.end(), [&](const FileState* c) { return c->chunk_at(o) == got; })) {
        return error(EIO, where() + " holds " + (zero ? std::string("zeros") : describe_chunk(got, disk_fill_)) +
                              ", the acknowledged state has " +
                              (all_zero(candidates.front()->chunk_at(o))
                                   ? std::string("zeros")
                                   : describe_chunk(candidates.front()->chunk_at(o), disk_fill_)) +
                              at_);
      }
    }
    // Inline files (smaller than a block) are all data to SEEK; larger ones report holes
    // where no possible state has data.
    if (size > bs_) {
      for (uint64_t b = 0; b * bs_ < size; ++b) {
        const bool hole = std::none_of(candidates.begin(), candidates.end(),
                                       [&](const FileState* c) { return c->block_may_hold_data(b); });
        const uint64_t lo = b * bs_, hi = std::min(size, lo + bs_);
        const bool reported = std::any_of(regions.begin(), regions.end(),
                                          [&](const Interval& r) { return r.begin < hi && lo < r.end; });
        if (hole && reported) {
          return error(EIO, name + " block " + std::to_string(b) + " is a hole in every possible state, SEEK_DATA reports data" + at_);
        }
      }
    }
    return digest(data, size + 1);
  }

  const std::vector<FileOp>& ops_;
  const std::vector<State>& states_;
  const std::string& disk_fill_;
  const uint64_t bs_;
  std::string at_;
};

}  // namespace

std::string FileOp::describe() const {
  static const char* const kinds[] = {"create", "write", "fallocate", "punch hole", "zero range", "truncate", "unlink"};
  std::string s = std::string(kinds[static_cast<int>(kind)]) + " " + file_name(file);
  if (kind == Kind::kTruncate) return s + " to " + std::to_string(offset);
  if (kind != Kind::kCreate && kind != Kind::kUnlink) {
    s += " [" + std::to_string(offset) + ", +" + std::to_string(length) + ")" + (keep_size ? " keep size" : "") +
         (through_async ? " async" : "");
  }
  return s;
}

std::vector<FileOp> generate_file_ops(const FileOpsMix& mix, uint64_t ops, uint64_t seed) {
  return Generator(mix, seed).generate(ops);
}

Scenario file_ops_scenario(std::string name, std::vector<FileOp> ops, std::string disk_fill) {
  auto shared_ops = std::make_shared<const std::vector<FileOp>>(std::move(ops));
  auto states = std::make_shared<std::vector<State>>();
  Scenario s;
  s.name = std::move(name);
  s.disk_fill = disk_fill;
  s.run = [shared_ops, disk_fill](RecordingDevice& dev, const ondisk::Superblock& sb) {
    if (!disk_fill.empty()) {
      // The check is only worth something if free space does hold the marker.
      const ondisk::RgrpLocation rg = sb.geometry.rgrp(0);
      AlignedBuffer free_block(sb.geometry.block_size);
      LUNFS_TRY(dev.read((rg.first_data + rg.data_blocks - 1) * sb.geometry.block_size, free_block.span()));
      if (std::string_view(reinterpret_cast<const char*>(free_block.data()), disk_fill.size()) != disk_fill) {
        return error(EINVAL, "free space does not hold the fill marker");
      }
    }
    HeldWriteDevice held(dev);
    return with_mount(held, sb, [&](FileSystem& fs) -> Status {
      std::map<uint32_t, uint64_t> inos;
      auto failed = [&](uint64_t k, const Status& st) {
        const FileOp& op = (*shared_ops)[k - 1];
        std::string history;  // what the file went through, for the report
        for (uint64_t i = 1; i < k; ++i) {
          if ((*shared_ops)[i - 1].file == op.file) history += "; op " + std::to_string(i) + ": " + (*shared_ops)[i - 1].describe();
        }
        return error(st.err(), "op " + std::to_string(k) + " (" + op.describe() + "): " + st.message() + history);
      };
      for (uint64_t k = 1; k <= shared_ops->size(); ++k) {
        const FileOp& op = (*shared_ops)[k - 1];
        if (op.begun_early) continue;  // ran with the op ahead of it
        const bool early_next = k < shared_ops->size() && (*shared_ops)[k].begun_early;
        Status early_status;
        std::thread early;
        if (early_next) {
          // Op k+1 starts first; its data write waits in the device until op k is done.
          held.arm();
          early = std::thread([&fs, &held, &early_status, &shared_ops, k, ids = inos]() mutable {
            early_status = run_op(fs, ids, (*shared_ops)[k], k + 1);
            held.finished();
          });
          if (!held.wait_until_held()) {
            early.join();
            return failed(k + 1, early_status ? error(EIO, "the write finished without writing data") : early_status);
          }
        }
        if (auto st = run_op(fs, inos, op, k); !st) {
          if (early_next) {
            held.release();
            early.join();
          }
          return failed(k, st);
        }
        if (op.sync != FileOp::Sync::kNone) dev.mark(k);
        if (!early_next) continue;
        held.release();
        early.join();
        if (held.timed_out()) return failed(k + 1, error(EDEADLK, "its data write was held inside the metadata mutex"));
        if (!early_status) return failed(k + 1, early_status);
        if ((*shared_ops)[k].sync != FileOp::Sync::kNone) dev.mark(k + 1);
      }
      for (const auto& [file, ino] : inos) LUNFS_TRY(fs.forget(ino, 1));
      return Status::ok();
    });
  };
  s.recover = replay_slot;
  s.verify = [shared_ops, states, disk_fill](BlockDevice& image, const ondisk::Superblock& sb,
                                             uint64_t acked) -> Result<uint64_t> {
    LUNFS_TRY(fsck_clean(image));
    if (states->empty()) *states = model_states(*shared_ops, sb.geometry.block_size);
    Verifier verifier(*shared_ops, *states, disk_fill, sb.geometry.block_size);
    return with_read_only_mount(image, [&](FileSystem& fs) { return verifier.check(fs, acked); });
  };
  return s;
}

}  // namespace lunfs::crash
