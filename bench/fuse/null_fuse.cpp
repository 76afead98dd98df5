// The FUSE "null" ceiling: a low-level FUSE server with one file, "/img", that answers
// reads with zeros and accepts writes without storing them. fio against it measures what
// the kernel <-> daemon transport alone costs, with the same session settings as
// mount.lunfs (multi-threaded, 1 MiB requests, async direct I/O, parallel direct writes,
// aligned write copy). At exit it reports how many writes the kernel had in flight at
// once: the check that FOPEN_PARALLEL_DIRECT_WRITES reaches the kernel.
// usage: null_fuse MOUNTPOINT SIZE_BYTES   (foreground; unmount to stop)
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <sys/stat.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "fs/device/aligned_buffer.h"
#include "fuse/open_reply.h"

namespace {

uint64_t g_size = 0;
constexpr fuse_ino_t kImg = 2;
std::atomic<int> g_writes_in_flight{0};
std::atomic<int> g_max_writes_in_flight{0};

void fill(fuse_ino_t ino, struct stat* st) {
  std::memset(st, 0, sizeof *st);
  st->st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st->st_mode = S_IFDIR | 0755;
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | 0644;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(g_size);
    st->st_blocks = static_cast<blkcnt_t>(g_size / 512);
  }
  st->st_blksize = 4096;
}

void op_init(void*, fuse_conn_info* conn) {
  conn->want |= FUSE_CAP_ASYNC_DIO | FUSE_CAP_ASYNC_READ;
  conn->max_write = 1 << 20;
}
void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (parent != FUSE_ROOT_ID || std::strcmp(name, "img") != 0) return (void)fuse_reply_err(req, ENOENT);
  fuse_entry_param e{};
  e.ino = kImg;
  e.attr_timeout = e.entry_timeout = 3600;
  fill(kImg, &e.attr);
  fuse_reply_entry(req, &e);
}
void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  fill(ino, &st);
  fuse_reply_attr(req, &st, 3600);
}
void op_open(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  if (fi->flags & O_DIRECT) fi->direct_io = 1;
  lunfs::reply_open(req, *fi);
}
void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t, fuse_file_info*) {
  static thread_local lunfs::AlignedBuffer zeros(1 << 20);
  fuse_reply_buf(req, reinterpret_cast<const char*>(zeros.data()), size);
}
void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t, fuse_file_info*) {
  // The same aligned copy mount.lunfs makes before an O_DIRECT write.
  int now = ++g_writes_in_flight;
  int seen = g_max_writes_in_flight.load();
  while (now > seen && !g_max_writes_in_flight.compare_exchange_weak(seen, now)) {
  }
  static thread_local lunfs::AlignedBuffer bounce(1 << 20);
  std::memcpy(bounce.data(), data, size);
  --g_writes_in_flight;
  fuse_reply_write(req, size);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: null_fuse MOUNTPOINT SIZE_BYTES\n");
    return 1;
  }
  g_size = std::strtoull(argv[2], nullptr, 0);
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.getattr = op_getattr;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  char arg0[] = "null_fuse", o[] = "-o", opts[] = "fsname=null,subtype=null";
  char* args[] = {arg0, o, opts};
  fuse_args fa = FUSE_ARGS_INIT(3, args);
  fuse_session* se = fuse_session_new(&fa, &ops, sizeof ops, nullptr);
  if (!se || fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[1]) != 0) return 1;
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 10);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  std::fprintf(stderr, "null_fuse: at most %d writes were in flight at once\n", g_max_writes_in_flight.load());
  return rc == 0 ? 0 : 1;
}
