// FileBlockDevice: aligned, O_DIRECT I/O on a block device or a regular file.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "fs/device/aligned_buffer.h"
#include "fs/device/block_device.h"

namespace lunfs {

namespace {

constexpr size_t kBounceChunk = 1 << 20;

// Full-length pread/pwrite: retries short transfers and EINTR.
template <typename Fn>
Status transfer_all(Fn fn, std::byte* data, size_t len, uint64_t offset, const char* op,
                    const std::string& path) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = fn(data + done, len - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      return error(err, std::string(op) + " " + path + " at byte " + std::to_string(offset + done));
    }
    if (n == 0) {
      return error(EIO, std::string(op) + " " + path + ": unexpected end of device at byte " +
                            std::to_string(offset + done));
    }
    done += static_cast<size_t>(n);
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<FileBlockDevice>> FileBlockDevice::open(const std::string& path,
                                                               FileDeviceOptions options) {
  std::unique_ptr<FileBlockDevice> dev(new FileBlockDevice());
  dev->path_ = path;
  dev->read_only_ = options.read_only;
  int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
  int fd = -1;
  if (options.direct) {
    fd = ::open(path.c_str(), flags | O_DIRECT);
    if (fd >= 0) {
      dev->direct_ = true;
    } else if (errno == EINVAL) {
      dev->fallback_note_ = path + ": the file system refuses O_DIRECT; using buffered I/O "
                            "with fdatasync barriers (fine for tests, not for a shared LUN)";
    } else {
      return error(errno, "cannot open " + path);
    }
  }
  if (fd < 0) {
    fd = ::open(path.c_str(), flags);
    if (fd < 0) return error(errno, "cannot open " + path);
  }
  dev->fd_ = fd;

  struct stat st {};
  if (fstat(fd, &st) != 0) return error(errno, "cannot stat " + path);
  if (S_ISBLK(st.st_mode)) {
    dev->is_block_device_ = true;
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) return error(errno, "BLKGETSIZE64 on " + path);
    dev->size_ = bytes;
    int sector = 512;
    if (ioctl(fd, BLKSSZGET, &sector) == 0 && sector > 0) dev->alignment_ = sector;
  } else if (S_ISREG(st.st_mode)) {
    dev->size_ = static_cast<uint64_t>(st.st_size);
    dev->alignment_ = 512;
#ifdef STATX_DIOALIGN
    struct statx stx {};
    if (dev->direct_ && statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align > 0) {
      dev->alignment_ = std::max<uint32_t>(512, stx.stx_dio_offset_align);
    }
#endif
  } else {
    return error(ENODEV, path + " is neither a block device nor a regular file");
  }
  return dev;
}

FileBlockDevice::~FileBlockDevice() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileBlockDevice::check_range(uint64_t offset, size_t len, const char* op) const {
  if (offset % alignment_ != 0 || len % alignment_ != 0) {
    return error(EINVAL, std::string(op) + " " + path_ + ": offset " + std::to_string(offset) +
                             " length " + std::to_string(len) + " not aligned to " +
                             std::to_string(alignment_));
  }
  if (offset > size_ || len > size_ - offset) {
    return error(ENOSPC, std::string(op) + " " + path_ + ": range at byte " +
                             std::to_string(offset) + " beyond the end of the device");
  }
  return Status::ok();
}

Status FileBlockDevice::read(uint64_t offset, std::span<std::byte> buf) {
  LUNFS_TRY(check_range(offset, buf.size(), "read"));
  auto do_read = [this](std::byte* p, size_t n, off_t off) { return ::pread(fd_, p, n, off); };
  if (!direct_ || is_aligned(buf.data(), kDirectIoMemoryAlignment)) {
    return transfer_all(do_read, buf.data(), buf.size(), offset, "read", path_);
  }
  AlignedBuffer bounce(std::min(buf.size(), kBounceChunk));
  for (size_t done = 0; done < buf.size();) {
    size_t n = std::min(bounce.size(), buf.size() - done);
    LUNFS_TRY(transfer_all(do_read, bounce.data(), n, offset + done, "read", path_));
    std::memcpy(buf.data() + done, bounce.data(), n);
    done += n;
  }
  return Status::ok();
}

Status FileBlockDevice::write(uint64_t offset, std::span<const std::byte> buf) {
  if (read_only_) return error(EROFS, path_ + " is open read-only");
  LUNFS_TRY(check_range(offset, buf.size(), "write"));
  auto do_write = [this](std::byte* p, size_t n, off_t off) { return ::pwrite(fd_, p, n, off); };
  if (!direct_ || is_aligned(buf.data(), kDirectIoMemoryAlignment)) {
    // pwrite does not modify the buffer; the cast only lets one helper serve both directions.
    return transfer_all(do_write, const_cast<std::byte*>(buf.data()), buf.size(), offset, "write",
                        path_);
  }
  AlignedBuffer bounce(std::min(buf.size(), kBounceChunk));
  for (size_t done = 0; done < buf.size();) {
    size_t n = std::min(bounce.size(), buf.size() - done);
    std::memcpy(bounce.data(), buf.data() + done, n);
    LUNFS_TRY(transfer_all(do_write, bounce.data(), n, offset + done, "write", path_));
    done += n;
  }
  return Status::ok();
}

Status FileBlockDevice::flush() {
  if (read_only_) return Status::ok();
  if (::fdatasync(fd_) != 0) return error(errno, "flush " + path_);
  return Status::ok();
}

std::string FileBlockDevice::describe() const {
  return path_ + " (" + (is_block_device_ ? "block device" : "file") + ", " +
         (direct_ ? "O_DIRECT" : "buffered") + ")";
}

}  // namespace lunfs
