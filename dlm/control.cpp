// Control socket server and client (see control.h). Access check: libqb hands the peer's
// credentials to connection_accept; anything but uid 0 is refused.
#include "dlm/control.h"

#include <qb/qbipcc.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>
#include <qb/qblog.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

namespace lunfs::dlm {

std::string control_service_name(const std::string& lockspace) {
  return "lunfs-dlm-" + lockspace;
}

namespace {

// qb_ipcs poll handlers carry no context: the one control loop of the process.
qb_loop_t* g_loop = nullptr;

int32_t dispatch_add(qb_loop_priority p, int32_t fd, int32_t events, void* data,
                     qb_ipcs_dispatch_fn_t fn) {
  return qb_loop_poll_add(g_loop, p, fd, events, data, fn);
}
int32_t dispatch_mod(qb_loop_priority p, int32_t fd, int32_t events, void* data,
                     qb_ipcs_dispatch_fn_t fn) {
  return qb_loop_poll_mod(g_loop, p, fd, events, data, fn);
}
int32_t dispatch_del(int32_t fd) { return qb_loop_poll_del(g_loop, fd); }
int32_t job_add(qb_loop_priority p, void* data, qb_loop_job_dispatch_fn fn) {
  return qb_loop_job_add(g_loop, p, data, fn);
}

class QbControlServer final : public ControlServer {
 public:
  explicit QbControlServer(std::map<int32_t, std::function<std::string()>> handlers)
      : handlers_(std::move(handlers)) {}
  ~QbControlServer() override {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (service_) qb_ipcs_destroy(service_);
    if (g_loop) qb_loop_destroy(g_loop);
    g_loop = nullptr;
  }

  Status start(const std::string& service) {
    if (g_loop) return Status::kBusy;
    g_loop = qb_loop_create();
    static qb_ipcs_service_handlers handlers = {accept, nullptr, process, nullptr, nullptr};
    service_ = qb_ipcs_create(service.c_str(), 0, QB_IPC_SOCKET, &handlers);
    if (!service_) return Status::kShutdown;
    static qb_ipcs_poll_handlers poll = {job_add, dispatch_add, dispatch_mod, dispatch_del};
    qb_ipcs_poll_handlers_set(service_, &poll);
    qb_ipcs_service_context_set(service_, this);
    qb_ipcs_enforce_buffer_size(service_, kControlMaxMessage);
    if (int32_t rc = qb_ipcs_run(service_); rc != 0) {
      qb_log(LOG_ERR, "control socket: qb_ipcs_run: %s", std::strerror(-rc));
      return Status::kShutdown;
    }
    qb_loop_timer_add(g_loop, QB_LOOP_LOW, 100'000'000, this, tick, nullptr);
    thread_ = std::thread([] { qb_loop_run(g_loop); });
    return Status::kOk;
  }

 private:
  static void tick(void* data) {
    auto* self = static_cast<QbControlServer*>(data);
    if (self->stop_) return qb_loop_stop(g_loop);
    qb_loop_timer_add(g_loop, QB_LOOP_LOW, 100'000'000, self, tick, nullptr);
  }
  static int32_t accept(qb_ipcs_connection_t*, uid_t uid, gid_t) {
    return uid == 0 ? 0 : -EACCES;  // lock tables name every file in use: root only
  }
  static int32_t process(qb_ipcs_connection_t* c, void* data, size_t size) {
    auto* self = static_cast<QbControlServer*>(qb_ipcs_connection_service_context_get(c));
    qb_ipc_request_header req{};
    std::memcpy(&req, data, std::min(size, sizeof req));
    qb_ipc_response_header head{};
    head.id = req.id;
    std::string body;
    if (auto h = self->handlers_.find(req.id); h != self->handlers_.end()) body = h->second();
    else head.error = -EINVAL;
    size_t room = kControlMaxMessage - sizeof head - 4096;
    if (body.size() > room) body = body.substr(0, room) + "\n(truncated)\n";
    head.size = int32_t(sizeof head + body.size());
    iovec iov[2] = {{&head, sizeof head}, {body.data(), body.size()}};
    qb_ipcs_response_sendv(c, iov, 2);
    return 0;
  }

  std::map<int32_t, std::function<std::string()>> handlers_;
  qb_ipcs_service_t* service_ = nullptr;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace

Status start_control_server(const std::string& lockspace, std::function<std::string()> dump,
                            std::unique_ptr<ControlServer>* out) {
  return start_control_service(control_service_name(lockspace), {{kControlDump, std::move(dump)}}, out);
}

Status control_dump(const std::string& lockspace, std::string* text) {
  return control_request(control_service_name(lockspace), kControlDump, text);
}

std::string mount_control_service_name(const struct stat& device) {
  if (S_ISBLK(device.st_mode)) return "lunfs-mount-b" + std::to_string(device.st_rdev);
  return "lunfs-mount-" + std::to_string(device.st_dev) + "-" + std::to_string(device.st_ino);
}

Status start_control_service(const std::string& service,
                             std::map<int32_t, std::function<std::string()>> handlers,
                             std::unique_ptr<ControlServer>* out) {
  auto s = std::make_unique<QbControlServer>(std::move(handlers));
  if (Status st = s->start(service); st != Status::kOk) return st;
  *out = std::move(s);
  return Status::kOk;
}

Status control_request(const std::string& service, int32_t id, std::string* text) {
  qb_ipcc_connection_t* c = qb_ipcc_connect(service.c_str(), kControlMaxMessage);
  if (!c) return errno == EACCES || errno == EPERM ? Status::kInvalid : Status::kNotFound;
  qb_ipc_request_header req{};
  req.id = id;
  req.size = sizeof req;
  iovec iov{&req, sizeof req};
  std::vector<char> buf(kControlMaxMessage);
  ssize_t n = qb_ipcc_sendv_recv(c, &iov, 1, buf.data(), buf.size(), 10000);
  qb_ipcc_disconnect(c);
  if (n < ssize_t(sizeof(qb_ipc_response_header))) return Status::kShutdown;
  qb_ipc_response_header head;
  std::memcpy(&head, buf.data(), sizeof head);
  if (head.error) return Status::kInvalid;
  text->assign(buf.data() + sizeof head, size_t(n) - sizeof head);
  return Status::kOk;
}

}  // namespace lunfs::dlm
