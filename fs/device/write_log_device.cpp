// WriteLogDevice; see write_log_device.h.
#include "fs/device/write_log_device.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <vector>

#include "fs/device/io_queue.h"

namespace lunfs {

namespace {

// Records a batch's writes when the batch completes, then tells the submitter.
class RecordedBatch final : public IoCompletion {
 public:
  RecordedBatch(const WriteLogDevice& log, IoCompletion& done, std::span<const IoTransfer> transfers)
      : log_(log), done_(done), submitted_(WriteLogDevice::now_ns()) {
    for (const IoTransfer& t : transfers)
      if (t.kind == IoTransfer::Kind::kWrite) writes_.push_back({t.offset, t.buf.size()});
  }
  void io_done(Status st) override {
    for (const auto& [offset, bytes] : writes_) log_.record('W', submitted_, offset, bytes, st);
    IoCompletion& done = done_;
    delete this;
    done.io_done(std::move(st));
  }

 private:
  const WriteLogDevice& log_;
  IoCompletion& done_;
  const uint64_t submitted_;
  std::vector<std::pair<uint64_t, uint64_t>> writes_;
};

class RecordedQueue final : public IoQueue {
 public:
  RecordedQueue(const WriteLogDevice& log, std::unique_ptr<IoQueue> inner) : log_(log), inner_(std::move(inner)) {}
  void submit(std::span<const IoTransfer> transfers, IoCompletion& done) override {
    bool writes = false;
    for (const IoTransfer& t : transfers) writes |= t.kind == IoTransfer::Kind::kWrite;
    if (!writes) return inner_->submit(transfers, done);
    inner_->submit(transfers, *new RecordedBatch(log_, done, transfers));
  }
  void drain() override { inner_->drain(); }
  // The inner queue completes every batch, so it runs the hook.
  void set_reap_hook(std::function<void()> hook) override { inner_->set_reap_hook(std::move(hook)); }

 private:
  const WriteLogDevice& log_;
  std::unique_ptr<IoQueue> inner_;
};

}  // namespace

Result<std::unique_ptr<WriteLogDevice>> WriteLogDevice::open(BlockDevice& inner, const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return error(errno, "write log " + path);
  return std::unique_ptr<WriteLogDevice>(new WriteLogDevice(inner, fd));
}

WriteLogDevice::~WriteLogDevice() { close(fd_); }

uint64_t WriteLogDevice::now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
}

void WriteLogDevice::record(char kind, uint64_t submitted_ns, uint64_t offset, uint64_t bytes,
                            const Status& st) const {
  char line[128];
  const int n = std::snprintf(line, sizeof line, "%c %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %d\n", kind,
                              submitted_ns, now_ns(), offset, bytes, st ? 0 : st.err());
  if (n > 0) (void)!::write(fd_, line, static_cast<size_t>(n));
}

Status WriteLogDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  const uint64_t submitted = now_ns();
  Status st = inner_.write(offset, buf);
  record('W', submitted, offset, buf.size(), st);
  return st;
}

Status WriteLogDevice::flush() {
  const uint64_t submitted = now_ns();
  Status st = inner_.flush();
  record('F', submitted, 0, 0, st);
  return st;
}

std::unique_ptr<IoQueue> WriteLogDevice::make_io_queue() {
  return std::make_unique<RecordedQueue>(*this, inner_.make_io_queue());
}

}  // namespace lunfs
